// The QKD port (QKD1): per-block BB84 decoy-state detection events for qkmd alice and bob, driven by the pass world.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "qlink/sim/pass_world.hpp"
#include "qlink/sim/qkd_channel.hpp"

namespace qlink::sim {

// Wire format (little-endian), see docs/simulator.md "QKD port":
//   client -> server: "QKD1 alice\n" | "QKD1 bob\n";  server -> client: "OK <pulse_rate_hz>\n" | "ERR <reason>\n"
//   then server -> client blocks: 56-byte header + count x 16-byte records
//     u32 magic 0x42444B51 ("QKDB") | u32 flags (bit0 end of pass, bit1 link down the whole block) |
//     u64 block_id | f64 sim_time (block start) | u64 pulses_sent[3] (signal, decoy, vacuum; bob: 0) |
//     u32 count | u32 reserved 0
//     record: u64 pulse (index within the block) | u8 intensity (bob: 0xFF) | u8 basis (0 Z, 1 X) | u8 bit | u8[5] 0
inline constexpr std::uint32_t qkd_block_magic = 0x42444B51u;
inline constexpr std::size_t qkd_block_header_size = 56;
inline constexpr std::size_t qkd_record_size = 16;
inline constexpr std::uint32_t qkd_flag_end_of_pass = 1u;
inline constexpr std::uint32_t qkd_flag_link_down = 2u;

struct qkd_block_header {
    std::uint32_t flags = 0;
    std::uint64_t block_id = 0;
    double sim_time = 0.0;
    std::array<std::uint64_t, 3> pulses_sent{};
    std::uint32_t count = 0;
};

struct qkd_record {
    std::uint64_t pulse = 0;
    std::uint8_t intensity = 0xFF;
    std::uint8_t basis = 0;
    std::uint8_t bit = 0;
};

void encode_qkd_block_header(const qkd_block_header& h, std::span<std::uint8_t, qkd_block_header_size> out);
/// False on a bad magic.
bool decode_qkd_block_header(std::span<const std::uint8_t, qkd_block_header_size> in, qkd_block_header& h);
void encode_qkd_record(const qkd_record& r, std::span<std::uint8_t, qkd_record_size> out);
qkd_record decode_qkd_record(std::span<const std::uint8_t, qkd_record_size> in);

class qkd_server {
public:
    struct config {
        std::string bind_address = "127.0.0.1";
        std::uint16_t port = 0;                   ///< 0: any free port
        double block_s = 1.0;                     ///< sim seconds per block, [0.01, 60]
        qkd_channel::config channel{};            ///< source, detectors; seed is overridden from `seed`
        std::size_t max_queue_bytes = 64u << 20;  ///< per client; a block that does not fit is dropped (counted)
        double hello_timeout_s = 5.0;
        std::uint64_t seed = 1;
    };

    struct counters {
        std::atomic<std::uint64_t> connections{0};
        std::atomic<std::uint64_t> rejected{0};         ///< bad hello, role taken, hello timeout
        std::atomic<std::uint64_t> protocol_errors{0};  ///< clients that sent anything after the hello
        std::atomic<std::uint64_t> disconnects{0};
        std::atomic<std::uint64_t> blocks{0};           ///< blocks generated
        std::atomic<std::uint64_t> detections{0};
        std::atomic<std::uint64_t> dropped_blocks{0};   ///< per client, queue full
    };

    static std::string validate(const config& cfg);
    virtual ~qkd_server() = default;
    virtual std::uint16_t port() const = 0;
    virtual void stop() = 0;
    virtual const counters& stats() const = 0;
};

/// Serves on a background thread; blocks are generated as sim time passes each block's end and
/// sent to the alice and bob connected at that moment (same block_id at both). After the pass a
/// final empty block with the end-of-pass flag is sent. Throws std::invalid_argument /
/// std::runtime_error at the configuration edge.
std::unique_ptr<qkd_server> start_qkd_server(const qkd_server::config& cfg, const pass_world& world, pass_clock& clock);

}  // namespace qlink::sim
