// Burst preambles: random bits from a seeded xorshift64 (no sync marker in them; a modulated carrier the far loops lock on).
#pragma once

#include <cstdint>

namespace qlink::terminal::detail {

inline std::uint64_t preamble_state(std::uint64_t seed) { return (0x9E3779B97F4A7C15ull ^ seed) | 1u; }

inline std::uint8_t next_preamble_bit(std::uint64_t& x) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<std::uint8_t>(x & 1u);
}

}  // namespace qlink::terminal::detail
