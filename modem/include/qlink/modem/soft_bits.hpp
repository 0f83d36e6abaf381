// The project's one soft-bit convention: saturating int8 LLRs, sign = bit.
//
//   llr = clamp(round(scale * ln(P(b=0) / P(b=1))), -127, +127)
//
// * positive  -> bit 0 more likely; negative -> bit 1 more likely, so the hard
//   decision is the sign bit: bit = (llr < 0).
// * 0 is an erasure (punctured or unknown), -128 is never produced.
// * BPSK maps bit 0 -> +1 and bit 1 -> -1, so a received BPSK amplitude is
//   already an LLR up to the factor 2/sigma^2.
// Packed bytes are MSB first, as CCSDS transmits them.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace qlink::modem {

using llr_t = std::int8_t;

inline constexpr llr_t llr_max = 127;
inline constexpr llr_t llr_erasure = 0;

/// Saturates any integer to the LLR range [-127, 127].
constexpr llr_t saturate_llr(int v) { return static_cast<llr_t>(std::clamp(v, -127, 127)); }

/// Quantises a real-valued LLR (already scaled) with rounding and saturation.
inline llr_t quantize_llr(float v) {
    if (!(v == v)) return llr_erasure;  // NaN carries no information
    return saturate_llr(static_cast<int>(std::lrint(std::clamp(v, -127.0f, 127.0f))));
}

/// Hard decision: the sign bit.
constexpr std::uint8_t hard_bit(llr_t v) { return v < 0 ? 1 : 0; }

/// The LLR a perfectly known bit gets.
constexpr llr_t bit_to_llr(std::uint8_t bit, llr_t magnitude = llr_max) {
    return bit ? static_cast<llr_t>(-magnitude) : magnitude;
}

/// Expands packed bytes (MSB first) into one LLR per bit of the given magnitude.
/// `out.size()` bits are written; `packed` must hold at least that many bits.
inline void unpack_to_llr(std::span<const std::uint8_t> packed, std::span<llr_t> out,
                          llr_t magnitude = llr_max) {
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = bit_to_llr((packed[i >> 3] >> (7 - (i & 7))) & 1, magnitude);
}

namespace detail {

// Eight bytes from memory as one word, byte 0 in the low bits on any host.
inline std::uint64_t load_le64(const void* p) {
    std::uint64_t v;
    std::memcpy(&v, p, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
    return v;
}

// Gathers bit 0 of each byte of `w` (byte 0 = first in memory) into one byte, byte 0 as its MSB.
// The multiplier puts byte i's bit at position 63 + 8i - 9j for its byte j; only i == j lands in
// the top byte (at 63 - i) and no two products share a position, so nothing carries.
constexpr std::uint8_t gather_msb_first(std::uint64_t w) {
    return static_cast<std::uint8_t>((w * 0x8040201008040201ULL) >> 56);
}

inline constexpr std::uint64_t low_bit_of_each_byte = 0x0101010101010101ULL;

}  // namespace detail

/// Packs the hard decisions of `soft` into bytes (MSB first); a trailing
/// partial byte and any bytes beyond are zero. Eight decisions per step (the
/// sign bits gathered with one multiply), so it keeps up with the decoders.
inline void pack_hard_decisions(std::span<const llr_t> soft, std::span<std::uint8_t> packed) {
    const std::size_t whole = std::min(soft.size() / 8, packed.size());
    for (std::size_t b = 0; b < whole; ++b)
        packed[b] = detail::gather_msb_first((detail::load_le64(soft.data() + 8 * b) >> 7) &
                                             detail::low_bit_of_each_byte);
    std::fill(packed.begin() + static_cast<std::ptrdiff_t>(whole), packed.end(), std::uint8_t{0});
    for (std::size_t i = 8 * whole; i < soft.size(); ++i)
        packed[i >> 3] |= static_cast<std::uint8_t>(hard_bit(soft[i]) << (7 - (i & 7)));
}

/// Packs bits given one per byte (0/1; only bit 0 counts) into bytes, MSB first.
inline void pack_bits(std::span<const std::uint8_t> bits, std::span<std::uint8_t> packed) {
    const std::size_t whole = std::min(bits.size() / 8, packed.size());
    for (std::size_t b = 0; b < whole; ++b)
        packed[b] = detail::gather_msb_first(detail::load_le64(bits.data() + 8 * b) &
                                             detail::low_bit_of_each_byte);
    std::fill(packed.begin() + static_cast<std::ptrdiff_t>(whole), packed.end(), std::uint8_t{0});
    for (std::size_t i = 8 * whole; i < bits.size(); ++i)
        packed[i >> 3] |= static_cast<std::uint8_t>((bits[i] & 1) << (7 - (i & 7)));
}

/// Unpacks bytes into one bit per byte (0/1), MSB first.
inline void unpack_bits(std::span<const std::uint8_t> packed, std::span<std::uint8_t> bits) {
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = (packed[i >> 3] >> (7 - (i & 7))) & 1;
}

}  // namespace qlink::modem
