// Private: the CCSDS CRC polynomials, compile-time folding constants and the per-ISA kernel entry points.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace qlink::modem::detail {

/// A non-reflected CRC of width W (16 or 32) with generator `poly` (x^W term implied).
template <unsigned W, std::uint32_t Poly>
struct crc_params {
    static constexpr unsigned width = W;
    static constexpr std::uint64_t p_full = (std::uint64_t{1} << W) | Poly;  // with the x^W term
    static constexpr std::uint64_t mask = (std::uint64_t{1} << W) - 1;

    /// x^n mod P.
    static constexpr std::uint64_t xpow_mod(unsigned n) {
        std::uint64_t r = 1;
        for (unsigned i = 0; i < n; ++i) {
            r <<= 1;
            if (r & (std::uint64_t{1} << W)) r ^= p_full;
        }
        return r;
    }
    /// floor(x^64 / P): the Barrett constant, degree 64 - W.
    static constexpr std::uint64_t barrett_mu() {
        std::uint64_t rem = 0, q = 0;
        for (int i = 64; i >= 0; --i) {
            rem = (rem << 1) | (i == 64 ? 1u : 0u);
            q <<= 1;
            if (rem & (std::uint64_t{1} << W)) {
                rem ^= p_full;
                q |= 1;
            }
        }
        return q;
    }
    /// Byte-at-a-time table of the generic kernel: crc of byte b placed in the top 8 bits.
    static constexpr std::array<std::uint32_t, 256> make_table() {
        std::array<std::uint32_t, 256> t{};
        for (unsigned b = 0; b < 256; ++b) {
            std::uint64_t c = std::uint64_t{b} << (W - 8);
            for (int k = 0; k < 8; ++k) c = (c & (std::uint64_t{1} << (W - 1))) ? ((c << 1) ^ Poly) & mask : (c << 1) & mask;
            t[b] = static_cast<std::uint32_t>(c);
        }
        return t;
    }
};

using crc16_params = crc_params<16, 0x1021>;
using crc32_params = crc_params<32, 0x20044009>;

std::uint32_t crc16_update_generic(std::uint32_t crc, const std::uint8_t* data, std::size_t n);
std::uint32_t crc32_update_generic(std::uint32_t crc, const std::uint8_t* data, std::size_t n);
std::uint32_t crc16_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n);
std::uint32_t crc32_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n);

}  // namespace qlink::modem::detail
