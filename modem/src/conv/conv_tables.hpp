// Private tables of the convolutional code: generators in register order and puncturing patterns.
#pragma once

#include "qlink/modem/conv.hpp"

#include <cstdint>
#include <span>

namespace qlink::modem::conv_detail {

// The encoder register holds the newest input bit in bit 0 and the oldest in
// bit 6, so the generators are the bit-reversed octal numbers of the standard:
// G1 = 171 -> 0x4f, G2 = 133 -> 0x6d (libfec's V27POLYB and V27POLYA).
inline constexpr std::uint32_t poly_g1 = 0x4f;
inline constexpr std::uint32_t poly_g2 = 0x6d;

struct generators {
    std::uint32_t first;       // generator of the first emitted symbol
    std::uint32_t second;      // generator of the second emitted symbol
    std::uint32_t inv_first;   // 1 when the first symbol is inverted
    std::uint32_t inv_second;  // 1 when the second symbol is inverted
};

struct puncture_column {
    bool first;
    bool second;
};

struct puncture_pattern {
    std::span<const puncture_column> columns;  // one per info bit of the period
    std::uint32_t offset[8] = {};              // symbols sent before each column
    std::uint32_t symbols_per_period = 0;
};

/// Puncturing of the emitted (first, second) pair for this code's rate and convention.
puncture_pattern pattern_of(const conv_code& code);
generators generators_of(const conv_code& code);

}  // namespace qlink::modem::conv_detail
