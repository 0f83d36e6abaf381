// CCSDS pseudo-randomizer (131.0-B §10): h(x) = x^8+x^7+x^5+x^3+1, all-ones seed, restarted at each ASM.
#pragma once

#include <cstdint>
#include <span>

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/soft_bits.hpp"

namespace qlink::modem {

inline constexpr std::size_t ccsds_randomizer_period = 255;  ///< bytes (2040 bits)

/// One period of the sequence, starting FF 48 0E C0 9A ...
std::span<const std::uint8_t, ccsds_randomizer_period> ccsds_randomizer_sequence();

/// XORs the sequence (restarted at byte 0) into a whole frame, in place. Its own inverse.
void ccsds_randomize(std::span<std::uint8_t> frame);

/// Soft-bit derandomization: one LLR per bit, MSB first; the sign of every LLR whose sequence
/// bit is 1 is flipped. An (illegal) -128 input is treated as -127 so the output stays in ±127.
void ccsds_randomize_llr(std::span<llr_t> soft);

/// Explicit-ISA entry points (tests, benchmarks): generic or avx2; a level this CPU lacks or
/// without its own kernel runs the best implemented kernel below it.
void ccsds_randomize(std::span<std::uint8_t> frame, isa level);
void ccsds_randomize_llr(std::span<llr_t> soft, isa level);

}  // namespace qlink::modem
