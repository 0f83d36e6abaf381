// Files of the qlink tool: payload framing and the channel stream formats (bits, f32, i8).
#pragma once

#include "qlink/modem/coding_chain.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::terminal::cli {

/// bits: packed hard bits, MSB first, last byte zero-padded.
/// f32: one IEEE float32 (little endian) per channel bit, +1.0 = bit 0.
/// i8: one int8 per channel bit, LLR convention (positive = 0, 0 = erasure).
enum class stream_format { bits, f32, i8 };
std::optional<stream_format> parse_stream_format(std::string_view s);
std::string_view to_string(stream_format f);

/// Every frame's data field starts with this header: 4-byte sequence number
/// (big endian, from 0) and 2-byte count of payload bytes that follow; the
/// rest of the data field is filled with 0x00.
inline constexpr std::size_t file_frame_header = 6;

/// Whole files in and out; false with `error` naming the file.
bool read_file_bytes(const std::string& path, std::vector<std::uint8_t>& data, std::string& error);
bool write_file_bytes(const std::string& path, std::span<const std::uint8_t> data, std::string& error);

/// Frames the payload takes in the file framing (at least one, for an empty payload).
std::uint64_t file_frame_count(std::size_t payload_bytes, std::size_t data_bytes);
/// Writes frame f of `payload` (header, bytes, zero fill) into `data` (a frame's data field).
void fill_file_frame(std::span<const std::uint8_t> payload, std::uint64_t f, std::span<std::uint8_t> data);

/// Puts the payload back together from decoded frames in the file framing: in sequence order,
/// repeats ignored, gaps counted. Frames that failed decoding or carry a bad length are counted.
struct file_assembler {
    std::vector<std::uint8_t> payload;
    std::uint64_t frames_ok = 0;
    std::uint64_t frames_failed = 0;
    std::uint64_t missing = 0;
    std::uint64_t duplicates = 0;
    std::uint32_t first_seq = 0;
    std::uint32_t last_seq = 0;
    bool last_frame_short = false;
    void take(std::span<const std::uint8_t> data, bool ok);
};

struct encode_summary {
    std::uint64_t payload_bytes = 0;
    std::uint64_t frames = 0;
    std::uint64_t channel_bits = 0;
};
std::optional<encode_summary> encode_file(const modem::chain_profile& profile, const std::string& in,
                                          const std::string& out, stream_format fmt, std::string& error);

struct decode_summary {
    std::uint64_t payload_bytes = 0;
    std::uint64_t frames_ok = 0;
    std::uint64_t frames_failed = 0;   ///< delivered by sync but RS/CRC failed, or bad header
    std::uint64_t missing = 0;         ///< gaps in the sequence between first_seq and last_seq
    std::uint64_t duplicates = 0;      ///< sequence numbers seen before (ignored)
    std::uint32_t first_seq = 0;
    std::uint32_t last_seq = 0;
    bool last_frame_short = false;
    modem::chain_decoder_counters counters{};
};
std::optional<decode_summary> decode_file(const modem::chain_profile& profile, const std::string& in,
                                          const std::string& out, stream_format fmt, std::string& error);

}  // namespace qlink::terminal::cli
