// Soft-bit stream port: BPSK over AWGN as int8 LLRs (qlink soft-bit convention), framed for the modem.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>

namespace qlink::sim {

/// Wire format (little-endian), see docs/simulator.md:
///   header, once per connection, 32 bytes:
///     "QLSB" | u16 version=1 | u16 format=1 (int8 LLR) | u32 block_llrs | f32 esn0_db |
///     u64 seed | f32 llr_scale | u32 reserved=0
///   then blocks: u32 sequence | u32 count | count x int8 LLR
/// Bits are the big-endian bit order of successive std::mt19937_64(seed) outputs, so a
/// receiver can regenerate them; bit 0 -> +1 (BPSK), LLR = clamp(round(llr_scale * 2y/sigma^2)).
inline constexpr std::array<char, 4> stream_magic{'Q', 'L', 'S', 'B'};
inline constexpr std::size_t stream_header_size = 32;

/// The reference bit source the stream carries.
class stream_bit_source {
public:
    explicit stream_bit_source(std::uint64_t seed);
    std::uint8_t next();

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

class softbit_stream_server {
public:
    struct config {
        std::string bind_address = "127.0.0.1";
        std::uint16_t port = 4534;        // 0: any free port
        double esn0_db = 6.0;             // [-10, 40]
        std::uint64_t seed = 1;
        std::uint32_t block_llrs = 4096;  // [1, 1 << 20]
        double llr_scale = 2.0;           // (0, 100]
        double bits_per_second = 1e6;     // pacing per client; 0 = as fast as the client reads
        std::size_t max_clients = 16;
        /// Optional: the Es/N0 (dB) to use for each block, e.g. from the pass geometry and the
        /// mount's pointing. -infinity means no signal (noise only at the base Es/N0's sigma).
        /// Called on the service thread; must be thread safe. Empty: fixed esn0_db.
        std::function<double()> esn0_now_db;
    };

    static std::string validate(const config& cfg);
    virtual ~softbit_stream_server() = default;
    virtual std::uint16_t port() const = 0;
    virtual void stop() = 0;
};

/// Es/N0 of a pointed link: `esn0_at_1000km_db` on boresight at 1000 km, free-space range
/// loss 20 log10(range / 1000 km), and the parabolic antenna pattern loss
/// 12 (error / beamwidth)^2 dB (beamwidth = full width at half power). Below the horizon:
/// -infinity (no signal).
double pointed_esn0_db(double esn0_at_1000km_db, double range_km, double elevation_deg, double pointing_error_deg,
                       double beamwidth_deg);

/// Throws std::invalid_argument / std::runtime_error at the configuration edge.
std::unique_ptr<softbit_stream_server> start_softbit_stream_server(const softbit_stream_server::config& cfg);

}  // namespace qlink::sim
