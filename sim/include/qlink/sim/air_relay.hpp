// The air relay: the TCP port (QAIR1) where ground and space qlinkd exchange coded bits through the pass's channels.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qlink/sim/air_client.hpp"
#include "qlink/sim/channel_rng.hpp"
#include "qlink/sim/pass_world.hpp"
#include "qlink/sim/photon_receiver.hpp"

namespace qlink::sim {

/// What one channel call did.
struct air_channel_result {
    std::size_t llrs = 0;
    std::size_t erased = 0;       ///< LLRs forced to 0 because the link was down
    std::size_t hard_errors = 0;  ///< LLR sign (0 counted as an error) disagreeing with the sent bit
    air_link_info info;           ///< state at the first bit (what the RX_LLR trailer carries)
    bool ok = true;
    const char* error = "";
};

/// Space -> ground optical downlink: each coded bit is one OOK slot ("on" = 1) counted by
/// photon_receiver with the pass world's detected signal and noise per slot at the bit's sim
/// time; LLRs from ook_llr() with the per-sample signal level (a receiver tracking the fade).
/// Bits while the optical link is down become erasures (0).
class air_downlink_channel {
public:
    /// llr_scale multiplies the natural-log OOK LLR before rounding to int8, (0, 100].
    air_downlink_channel(const pass_world& world, double llr_scale, std::uint64_t seed);
    /// Bits `packed` (MSB first, nbits), the first at sim time t0, at `bps` bits per sim second.
    /// llr.size() >= nbits. Grows its scratch buffers once to the largest nbits seen.
    air_channel_result process(double t0, double bps, std::span<const std::uint8_t> packed, std::size_t nbits,
                               std::span<std::int8_t> llr);

private:
    const pass_world& world_;
    double scale_;
    photon_receiver rx_;
    std::vector<std::uint8_t> bits_;
    std::vector<std::uint32_t> counts_;
};

/// Ground -> space RF return link: BPSK (bit 0 -> +1) over AWGN at the world's return Es/N0,
/// LLR = clamp(round(llr_scale * 2 y / sigma^2)). Erasures below the RF mask.
class air_return_channel {
public:
    air_return_channel(const pass_world& world, double llr_scale, std::uint64_t seed);
    air_channel_result process(double t0, double bps, std::span<const std::uint8_t> packed, std::size_t nbits,
                               std::span<std::int8_t> llr);

private:
    const pass_world& world_;
    double scale_;
    channel_rng rng_;
};

/// TX_LLR: LLRs a client demodulated with its own RF chain (the channel it ran itself) cross
/// unchanged while the sender's link is up (downlink: optical up; return: above the RF mask) and
/// become erasures while it is down. `downlink` picks which link's state applies.
air_channel_result air_gate_llrs(const pass_world& world, bool downlink, double t0, double bps,
                                 std::span<const std::int8_t> in, std::span<std::int8_t> out);

class air_relay {
public:
    struct config {
        std::string bind_address = "127.0.0.1";  ///< loopback unless asked otherwise
        std::uint16_t port = 0;                  ///< 0: any free port (see port())
        double downlink_bps = 100e3;             ///< coded bits per sim second, (0, 1e9]
        double return_bps = 10e3;                ///< coded bits per sim second, (0, 1e9]
        double downlink_llr_scale = 4.0;         ///< (0, 100]
        double return_llr_scale = 1.5;           ///< (0, 100]
        double read_ahead_s = 0.25;              ///< sim seconds of bits a client may be ahead of pacing, (0, 60]
        std::size_t max_queue_bytes = 8u << 20;  ///< per client's outgoing queue; beyond it the relay stops
                                                 ///< reading the other side (backpressure), >= 1 MiB
        /// Kernel receive buffer per client socket, bytes, [2048, 16 MiB]. The relay reads at the
        /// line rate; whatever a client writes beyond that waits in this buffer, and each byte
        /// there is channel time the link's ARQ sees as round trip (Linux autotuning grew it to
        /// 6 MB: 480 s of a 100 kbit/s downlink). The kernel doubles the value.
        std::size_t socket_buffer_bytes = 8192;
        double hello_timeout_s = 5.0;            ///< wall seconds for the hello line, > 0
        std::uint64_t seed = 1;
    };

    struct counters {
        std::atomic<std::uint64_t> connections{0};     ///< accepted hellos
        std::atomic<std::uint64_t> rejected{0};        ///< bad hello, role already taken, hello timeout
        std::atomic<std::uint64_t> protocol_errors{0}; ///< clients dropped for garbage after the hello
        std::atomic<std::uint64_t> disconnects{0};     ///< clients that went away
        std::atomic<std::uint64_t> bits_in[2]{};       ///< by sender role (0 ground, 1 space)
        std::atomic<std::uint64_t> llrs_in[2]{};       ///< TX_LLR, by sender role
        std::atomic<std::uint64_t> llrs_out[2]{};      ///< by receiver role
        std::atomic<std::uint64_t> erased[2]{};        ///< by receiver role
        std::atomic<std::uint64_t> dropped_bits{0};    ///< bits whose receiver was not connected
        std::atomic<std::uint64_t> end_of_pass_sent{0};
    };

    static std::string validate(const config& cfg);
    virtual ~air_relay() = default;
    virtual std::uint16_t port() const = 0;
    /// Stops accepting, closes every connection, joins the service thread.
    virtual void stop() = 0;
    virtual const counters& stats() const = 0;
};

/// Binds and serves on a background thread. Throws std::invalid_argument (config) or
/// std::runtime_error (cannot bind). `world` and `clock` must outlive the relay; every valid
/// hello counts as a client on the clock.
std::unique_ptr<air_relay> start_air_relay(const air_relay::config& cfg, const pass_world& world, pass_clock& clock);

}  // namespace qlink::sim
