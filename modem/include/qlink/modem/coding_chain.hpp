// The CCSDS TM concatenated coding chain, transmit and receive, as configured by a profile.
//
// Transmit: data -> CRC-16 FECF -> RS(255,255-2E) interleave I -> randomizer
//   -> ASM -> convolutional (continuous over the stream, punctured per profile)
//   -> channel interleaver -> channel bits (0/1; BPSK maps 0 -> +1).
// Receive, on soft values: deinterleave -> Viterbi (streaming; while the
//   synchroniser has no lock, every symbol alignment is tried over a window of
//   recent symbols and the window is replayed at the one that shows markers)
//   -> frame sync (inverted marker = inverted stream, corrected) -> derandomize
//   -> RS decode -> CRC check -> frames out with a report each.
// LDPC profiles: data -> CRC-16 FECF -> LDPC codeword -> randomizer -> 64-bit
//   ASM -> channel interleaver; receive: deinterleave -> frame sync on the
//   channel LLRs -> soft derandomize -> LLR normalisation -> LDPC decode -> CRC.
#pragma once

#include "qlink/modem/frame_sync.hpp"
#include "qlink/modem/interleaver.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace qlink::modem {

class chain_encoder {
public:
    struct result {
        std::size_t bits = 0;  ///< channel bits written
        bool ok = true;
        const char* error = nullptr;
    };

    /// Throws std::invalid_argument on an invalid profile.
    explicit chain_encoder(const chain_profile& profile, std::string isa = "auto");
    ~chain_encoder();
    chain_encoder(const chain_encoder&) = delete;
    chain_encoder& operator=(const chain_encoder&) = delete;

    /// User data bytes one frame carries.
    std::size_t data_bytes() const;
    /// Channel bits encode() may write for one frame, at most.
    std::size_t max_frame_bits() const;
    /// Channel bits finish() may write, at most.
    std::size_t max_finish_bits() const;

    /// One frame: exactly data_bytes() bytes in; channel bits (one per byte) out.
    result encode(std::span<const std::uint8_t> data, std::span<std::uint8_t> channel_bits);
    /// Ends the stream: the convolutional tail, then filler that pushes what
    /// the channel interleaver still holds through to the receiver.
    result finish(std::span<std::uint8_t> channel_bits);

    const chain_profile& profile() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

/// What the receiver concluded about one frame.
struct chain_frame_report {
    bool ok = false;            ///< RS/LDPC decoded and the CRC (if any) matches: the data is good
    bool rs_ok = false;         ///< RS profiles only (false with LDPC)
    bool crc_ok = false;
    unsigned rs_corrected = 0;  ///< symbols corrected over the codeblock
    unsigned rs_failed_codewords = 0;
    bool ldpc_ok = false;             ///< LDPC profiles: every parity check satisfied
    unsigned ldpc_iterations = 0;     ///< LDPC iterations run on this codeblock
    unsigned ldpc_corrected_bits = 0; ///< transmitted bits whose decision differs from the channel's (when ldpc_ok)
    sync_frame_info sync{};
};

struct chain_decoder_counters {
    std::uint64_t channel_symbols = 0;
    std::uint64_t decoded_bits = 0;     ///< Viterbi output bits (or channel symbols without inner code)
    std::uint64_t realignments = 0;     ///< alignment searches (each decodes a window at every symbol phase)
    std::uint64_t false_locks = 0;      ///< searches started because locked frames kept failing RS/CRC
    std::uint64_t frames = 0;           ///< frames delivered by the synchroniser
    std::uint64_t frames_ok = 0;
    std::uint64_t frames_no_room = 0;   ///< frames dropped because the caller's output was full (a bug if nonzero)
    std::uint64_t rs_corrected = 0;     ///< symbols
    std::uint64_t rs_failed_frames = 0;
    std::uint64_t rs_failed_codewords = 0;
    std::uint64_t crc_failed = 0;       ///< RS/LDPC said fine but the FECF does not match
    std::uint64_t ldpc_iterations = 0;  ///< sum over codeblocks
    std::uint64_t ldpc_failed_frames = 0;   ///< syndrome not satisfied after the iteration limit
    std::uint64_t ldpc_corrected_bits = 0;  ///< over the codeblocks that decoded
    sync_counters sync{};
};

class chain_decoder {
public:
    struct config {
        chain_profile profile;
        std::string isa = "auto";
        /// Decoded bits without a marker in CHECK/LOCK after which the inner decoder's
        /// symbol alignment is searched (0: 1.25 sync periods). A search decodes the
        /// last ~2 sync periods of channel symbols at every symbol phase (2 at r=1/2,
        /// 8 at r=7/8), takes the phase showing two markers a period apart, and
        /// replays those symbols, so frames in that window are not lost.
        std::size_t branch_sync_bits = 0;
        /// Consecutive frames failing RS/CRC in CHECK/LOCK/FLYWHEEL after which the
        /// alignment is searched again (a false lock); 0: never.
        unsigned false_lock_frames = 8;
        unsigned viterbi_traceback = 96;
        /// Decoded bits the streaming Viterbi decides at a time (viterbi_decoder::config::
        /// stream_window) while a push still has symbols to go. With viterbi_decide_on_push
        /// this sets throughput and memory only (32768 runs the decoder ~1.2-1.4x faster
        /// than 8192 (the chain behind it ~1.14x): less run-in, traceback tail and setup per
        /// bit; ~0.8 MB of decisions and symbol history, 8192: ~0.35 MB). Without it frames
        /// also come out up to this many bits (+ traceback) after their symbols went in
        /// (32768 at 5 kbit/s: ~6.6 s).
        std::size_t viterbi_window = 32768;
        /// At the end of a push that consumed all its symbols (not while the alignment is
        /// being searched, and with room for decide_frames() more frames in the output),
        /// the Viterbi decides every bit it can (viterbi_decoder::decide: all but the last
        /// traceback + 0..7 steps) and the frames they complete come out of this push, so a
        /// frame is delayed by the traceback, not by the window (on a 5 kbit/s link: 20 ms
        /// instead of up to 1.6 s at 8192). While locked, a push whose decidable bits
        /// cannot complete the next frame skips the decision (it would only cost: a short
        /// stretch has its own run-in and tail), so a caller pushing small slices at a high
        /// rate pays about one decision per frame; pushing whole buffers costs nothing.
        /// false: frames wait for whole windows (or finish()), and the output does not
        /// depend on how the symbols are cut into pushes.
        bool viterbi_decide_on_push = true;
        /// Synchroniser tolerances (marker bit errors) after the inner decoder.
        unsigned search_tolerance = 3;
        unsigned lock_tolerance = 6;
        unsigned flywheel_count = 3;
        /// LDPC profiles: the marker is judged on the raw channel LLRs, at a
        /// channel bit error rate up to about 0.1 at the codes' thresholds
        /// (6.4 of 64 marker bits on average), so these replace the two above.
        unsigned ldpc_search_tolerance = 12;
        unsigned ldpc_lock_tolerance = 16;
        unsigned ldpc_max_iterations = 25;  ///< early termination on the syndrome
        /// Each codeblock's LLRs are rescaled so their mean magnitude is about
        /// this (the int8 decoder's working point; min-sum itself is scale
        /// free, its message cap and saturation are not). 0: used as given.
        unsigned ldpc_llr_target = 16;
    };
    struct result {
        std::size_t consumed = 0;
        std::size_t frames = 0;
        bool output_full = false;
        bool ok = true;
        const char* error = nullptr;
    };

    /// Throws std::invalid_argument on a bad configuration.
    explicit chain_decoder(const config& cfg);
    ~chain_decoder();
    chain_decoder(const chain_decoder&) = delete;
    chain_decoder& operator=(const chain_decoder&) = delete;

    std::size_t data_bytes() const;
    /// push() works in slices and starts a slice only while `data_out` and
    /// `reports` have room for this many more frames; give at least this much
    /// (data_bytes() each) and call again with what was not consumed.
    std::size_t frames_per_push() const;
    /// Room (frames) a push must have left at its end for the Viterbi decision of
    /// config::viterbi_decide_on_push (<= frames_per_push(); 0 without an inner code).
    std::size_t decide_frames() const;

    /// Soft channel symbols in; every frame the synchroniser delivers comes
    /// out (data_bytes() each, corrected where RS could, as received where not)
    /// with its report. Allocation-free.
    result push(std::span<const llr_t> soft, std::span<std::uint8_t> data_out, std::span<chain_frame_report> reports);
    /// All of `soft` through push(), slice after slice; `take(result)` is called after each push
    /// while its frames are in `data_out`/`reports`. Returns the first result that consumed
    /// nothing without being full (an error: !ok), else the last one.
    template <typename Take>
    result push_all(std::span<const llr_t> soft, std::span<std::uint8_t> data_out,
                    std::span<chain_frame_report> reports, Take&& take) {
        result r;
        for (std::size_t pos = 0; pos < soft.size(); pos += r.consumed) {
            r = push(soft.subspan(pos), data_out, reports);
            take(r);
            if (r.consumed == 0 && !r.output_full) break;
        }
        return r;
    }
    /// End of stream: drains the Viterbi traceback.
    result finish(std::span<std::uint8_t> data_out, std::span<chain_frame_report> reports);

    const chain_decoder_counters& counters() const;
    const config& cfg() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

}  // namespace qlink::modem
