// CCSDS CRC-16/CRC-32 by carry-less folding (PCLMULQDQ): table-free except for the <16-byte tail.
#include <immintrin.h>

#include "crc/crc_kernels.hpp"

namespace qlink::modem::detail {
namespace {

// Data is folded as big-endian 128-bit polynomials (first byte's MSB = highest degree), so every
// 16-byte load is byte-reversed. An accumulator X stands for "the message so far" modulo P; moving
// it D bits further is X_hi*(x^(D+64) mod P) ^ X_lo*(x^D mod P), both products below 2^96.
inline __m128i load_be(const std::uint8_t* p) {
    const __m128i rev = _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)), rev);
}

inline __m128i fold(__m128i x, __m128i k) {
    return _mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x11), _mm_clmulepi64_si128(x, k, 0x00));
}

template <class P, unsigned DistanceBits>
__m128i fold_constants() {
    constexpr std::uint64_t k_hi = P::xpow_mod(DistanceBits + 64);
    constexpr std::uint64_t k_lo = P::xpow_mod(DistanceBits);
    return _mm_set_epi64x(static_cast<long long>(k_hi), static_cast<long long>(k_lo));
}

inline std::uint64_t clmul_lo(std::uint64_t a, std::uint64_t b) {
    return static_cast<std::uint64_t>(_mm_cvtsi128_si64(
        _mm_clmulepi64_si128(_mm_cvtsi64_si128(static_cast<long long>(a)), _mm_cvtsi64_si128(static_cast<long long>(b)), 0x00)));
}
inline std::uint64_t clmul_hi(std::uint64_t a, std::uint64_t b) {
    return static_cast<std::uint64_t>(_mm_extract_epi64(
        _mm_clmulepi64_si128(_mm_cvtsi64_si128(static_cast<long long>(a)), _mm_cvtsi64_si128(static_cast<long long>(b)), 0x00), 1));
}

template <class P>
std::uint32_t update(std::uint32_t crc, const std::uint8_t* data, std::size_t n,
                     std::uint32_t (*tail)(std::uint32_t, const std::uint8_t*, std::size_t)) {
    constexpr unsigned w = P::width;
    if (n < 16) return tail(crc, data, n);

    // The running CRC enters as an xor into the first W message bits (no final xor, so the CRC
    // value is exactly the register state).
    const __m128i init = _mm_set_epi64x(static_cast<long long>(std::uint64_t{crc & P::mask} << (64 - w)), 0);
    __m128i x = _mm_xor_si128(load_be(data), init);
    std::size_t pos = 16;

    if (n >= 64) {
        // Four independent accumulators hide the PCLMULQDQ latency.
        __m128i x1 = load_be(data + 16), x2 = load_be(data + 32), x3 = load_be(data + 48);
        pos = 64;
        const __m128i k512 = fold_constants<P, 512>();
        for (; pos + 64 <= n; pos += 64) {
            x = _mm_xor_si128(fold(x, k512), load_be(data + pos));
            x1 = _mm_xor_si128(fold(x1, k512), load_be(data + pos + 16));
            x2 = _mm_xor_si128(fold(x2, k512), load_be(data + pos + 32));
            x3 = _mm_xor_si128(fold(x3, k512), load_be(data + pos + 48));
        }
        x = _mm_xor_si128(_mm_xor_si128(fold(x, fold_constants<P, 384>()), fold(x1, fold_constants<P, 256>())),
                          _mm_xor_si128(fold(x2, fold_constants<P, 128>()), x3));
    }
    const __m128i k128 = fold_constants<P, 128>();
    for (; pos + 16 <= n; pos += 16) x = _mm_xor_si128(fold(x, k128), load_be(data + pos));

    // Reduce: crc = X * x^W mod P. X*x^W = H*x^(64+W) + L*x^W; H*x^(64+W) -> H*(x^(64+W) mod P).
    const std::uint64_t h = static_cast<std::uint64_t>(_mm_extract_epi64(x, 1));
    const std::uint64_t l = static_cast<std::uint64_t>(_mm_cvtsi128_si64(x));
    constexpr std::uint64_t c1 = P::xpow_mod(64 + w);
    constexpr std::uint64_t c2 = P::xpow_mod(64);
    // Y = H*c1 ^ L*x^W, degree < 64 + W; split at x^64.
    const std::uint64_t y_lo = clmul_lo(h, c1) ^ (l << w);
    const std::uint64_t y_hi = clmul_hi(h, c1) ^ (l >> (64 - w));
    // Z = Y_hi*(x^64 mod P) ^ Y_lo, degree < 64 (2W <= 64).
    const std::uint64_t z = clmul_lo(y_hi, c2) ^ y_lo;
    // Barrett: q = floor(floor(Z / x^W) * mu / x^(64-W)) is floor(Z / P) exactly for deg Z < 64.
    constexpr std::uint64_t mu = P::barrett_mu();
    const std::uint64_t t1 = z >> w;
    const std::uint64_t t2_lo = clmul_lo(t1, mu), t2_hi = clmul_hi(t1, mu);
    const std::uint64_t q = (t2_lo >> (64 - w)) | (t2_hi << w);
    const std::uint32_t r = static_cast<std::uint32_t>((z ^ clmul_lo(q, P::p_full)) & P::mask);
    return tail(r, data + pos, n - pos);
}

}  // namespace

std::uint32_t crc16_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return update<crc16_params>(crc, data, n, crc16_update_generic);
}
std::uint32_t crc32_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return update<crc32_params>(crc, data, n, crc32_update_generic);
}

}  // namespace qlink::modem::detail
