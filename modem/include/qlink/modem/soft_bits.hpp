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
#include <cmath>
#include <cstddef>
#include <cstdint>
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

/// Packs the hard decisions of `soft` into bytes (MSB first); a trailing
/// partial byte is zero-padded.
inline void pack_hard_decisions(std::span<const llr_t> soft, std::span<std::uint8_t> packed) {
    std::fill(packed.begin(), packed.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < soft.size(); ++i)
        packed[i >> 3] |= static_cast<std::uint8_t>(hard_bit(soft[i]) << (7 - (i & 7)));
}

/// Packs bits given one per byte (0/1) into bytes, MSB first.
inline void pack_bits(std::span<const std::uint8_t> bits, std::span<std::uint8_t> packed) {
    std::fill(packed.begin(), packed.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < bits.size(); ++i)
        packed[i >> 3] |= static_cast<std::uint8_t>((bits[i] & 1) << (7 - (i & 7)));
}

/// Unpacks bytes into one bit per byte (0/1), MSB first.
inline void unpack_bits(std::span<const std::uint8_t> packed, std::span<std::uint8_t> bits) {
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = (packed[i >> 3] >> (7 - (i & 7))) & 1;
}

}  // namespace qlink::modem
