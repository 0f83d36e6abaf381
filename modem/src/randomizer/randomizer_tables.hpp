// Private: the CCSDS randomizer sequence unrolled so any 128-byte window of it is one contiguous load.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace qlink::modem::detail {

inline constexpr std::size_t rand_bits = 255 * 8;    // period in bits
inline constexpr std::size_t rand_window = 128;      // widest load a kernel makes past an offset

struct randomizer_tables {
    /// bytes[k] = sequence byte k mod 255, for k < 255 + rand_window.
    std::array<std::uint8_t, 255 + rand_window> bytes{};
    /// llr_mask[k] = 0xFF (flip) when sequence bit k mod 2040 is 1, else 0.
    std::array<std::int8_t, rand_bits + rand_window> llr_mask{};
};

/// Built once from the LFSR recurrence of h(x) = x^8+x^7+x^5+x^3+1, seed all ones:
/// b[n+8] = b[n+7] ^ b[n+5] ^ b[n+3] ^ b[n].
constexpr randomizer_tables make_randomizer_tables() {
    randomizer_tables t;
    std::array<std::uint8_t, rand_bits> bit{};
    for (std::size_t n = 0; n < 8; ++n) bit[n] = 1;
    for (std::size_t n = 0; n + 8 < rand_bits; ++n) bit[n + 8] = bit[n + 7] ^ bit[n + 5] ^ bit[n + 3] ^ bit[n];
    for (std::size_t k = 0; k < t.bytes.size(); ++k) {
        std::uint8_t v = 0;
        for (std::size_t b = 0; b < 8; ++b) v = static_cast<std::uint8_t>((v << 1) | bit[(k % 255) * 8 + b]);
        t.bytes[k] = v;
    }
    for (std::size_t k = 0; k < t.llr_mask.size(); ++k) t.llr_mask[k] = bit[k % rand_bits] ? std::int8_t{-1} : std::int8_t{0};
    return t;
}

inline constexpr randomizer_tables rand_tables = make_randomizer_tables();

void randomize_avx2(std::uint8_t* data, std::size_t n);
void randomize_llr_avx2(std::int8_t* soft, std::size_t n);

}  // namespace qlink::modem::detail
