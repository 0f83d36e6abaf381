// Transmit and receive link pipelines: AOS frames -> SDLS -> coding chain, and soft bits back to packets.
//
// TX: packets queued on the VCs' packers -> aos_transmitter builds the next frame (idle when nothing
//     is queued) -> sdls_transmitter protects it -> chain_encoder (CRC-16 FECF, RS, randomizer, ASM,
//     convolutional code, channel interleaver) -> channel bits, one per byte.
// RX: int8 LLRs -> chain_decoder (deinterleave, Viterbi, sync, derandomize, RS, CRC) -> frames with a
//     good CRC -> aos_receiver (header, SDLS verify + decrypt, frame count) -> packets to the sink.
// The AOS frame is the chain's RS message: its FECF is the CRC the chain computes and checks, so the
// frame layer does not compute it a second time. Per block nothing is allocated. Modem has no clock:
// stage timing uses the clock the caller injects (none: not timed).
#pragma once

#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/coding_chain.hpp"
#include "qlink/modem/key_source.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/modem/sdls.hpp"
#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace qlink::modem {

/// Monotonic nanoseconds, injected for stage timing; empty = stages are not timed.
using link_clock_ns = std::function<std::uint64_t()>;

/// Time spent in one stage and how often it ran.
struct link_stage_time {
    std::uint64_t ns = 0;
    std::uint64_t calls = 0;
};

/// AOS layout of the frames a profile carries: frame = the chain's RS message, FECF by the chain.
aos_layout link_frame_layout(const chain_profile& profile, bool security);

class tx_link_pipeline {
public:
    struct config {
        chain_profile profile;      ///< e.g. *find_profile(default_profile_name)
        std::string isa = "auto";
        std::uint8_t spacecraft_id = 0;
        std::vector<aos_transmitter::vc_config> channels{{1, 0}};
        bool security = true;
        /// Frame security; `layout` is filled in by the pipeline.
        sdls_transmitter::config sdls{};
        link_clock_ns clock_ns;
    };
    struct counters {
        std::uint64_t frames = 0;        ///< frames encoded, idle ones included
        std::uint64_t idle_frames = 0;
        std::uint64_t held_frames = 0;   ///< blocks sent idle because a frame waits for a key
        std::uint64_t bits = 0;
        link_stage_time frame_build;     ///< packing + header (protect excluded)
        link_stage_time protect;
        link_stage_time encode;
    };
    struct result {
        std::size_t bits = 0;            ///< channel bits written
        bool idle = false;               ///< an idle frame went out
        security_status status = security_status::ok;  ///< keys_exhausted: data waits for a key
        bool ok = true;
        const char* error = nullptr;
    };

    /// Throws std::invalid_argument on an invalid profile, layout or VC list, or security without keys.
    tx_link_pipeline(const config& cfg, link_key_source* keys);
    ~tx_link_pipeline();
    tx_link_pipeline(const tx_link_pipeline&) = delete;
    tx_link_pipeline& operator=(const tx_link_pipeline&) = delete;

    const aos_layout& layout() const;
    /// M_PDU packet zone bytes per frame (what the packets of one frame may occupy).
    std::size_t packet_zone() const;
    /// Upper bound of next_block()'s output, in channel bits.
    std::size_t max_block_bits() const;
    std::size_t max_finish_bits() const;
    /// The packer of a VC (queue packets here); nullptr for an unknown VCID.
    mpdu_packer* channel(std::uint8_t vcid);

    /// Builds, protects and encodes the next frame. `channel_bits` must hold max_block_bits().
    result next_block(std::span<std::uint8_t> channel_bits);
    /// End of the stream (convolutional tail, interleaver flush).
    result finish(std::span<std::uint8_t> channel_bits);

    const counters& stats() const;
    /// nullptr without security.
    const sdls_transmitter* security() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

class rx_link_pipeline {
public:
    struct config {
        chain_profile profile;
        std::string isa = "auto";
        unsigned viterbi_traceback = 96;
        unsigned search_tolerance = 3;
        unsigned lock_tolerance = 6;
        unsigned flywheel_count = 3;
        std::uint8_t spacecraft_id = 0;
        std::vector<std::uint8_t> vcids{1};
        std::size_t max_packet_length = 1u << 20;
        bool security = true;
        /// Frame security; `layout` is filled in by the pipeline.
        sdls_receiver::config sdls{};
        link_clock_ns clock_ns;
    };
    struct counters {
        std::uint64_t frames_ok = 0;     ///< CRC good, handed to the frame layer
        std::uint64_t frames_bad = 0;    ///< synchronised but RS or CRC refused them
        /// Alignment searches the chain decoder ran to find the stream again (chain().realignments).
        /// The name is kept for callers: the decoder is no longer replaced after an outage, it
        /// reacquires by itself (coding_chain.hpp).
        std::uint64_t decoder_restarts = 0;
        link_stage_time decode;          ///< chain: deinterleave .. CRC
        link_stage_time frames;          ///< frame layer incl. verify and the packet sink
        link_stage_time verify;          ///< SDLS alone
    };
    struct result {
        std::size_t consumed = 0;
        std::size_t frames = 0;          ///< frames out of the synchroniser
        std::size_t frames_ok = 0;
        bool ok = true;
        const char* error = nullptr;
    };

    /// Throws std::invalid_argument on an invalid configuration or security without keys.
    rx_link_pipeline(const config& cfg, link_key_source* keys, aos_receiver::sink on_packet);
    ~rx_link_pipeline();
    rx_link_pipeline(const rx_link_pipeline&) = delete;
    rx_link_pipeline& operator=(const rx_link_pipeline&) = delete;

    const aos_layout& layout() const;
    /// Soft channel bits in, all of them consumed; packets go to the sink. Allocation-free.
    result push(std::span<const llr_t> soft);
    /// End of the stream: drains the Viterbi traceback.
    result finish();
    /// A frame that bypasses the coding chain (already CRC-checked; modified in place by decryption).
    void on_frame(std::span<std::uint8_t> frame);

    const counters& stats() const;
    /// Chain decoder counters.
    const chain_decoder_counters& chain() const;
    const aos_rx_counters& frames() const;
    /// nullptr without security.
    const sdls_receiver* security() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

}  // namespace qlink::modem
