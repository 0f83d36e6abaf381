// AVX2 kernels of the optical demodulator: OOK Poisson LLRs (16 slots per step) and PPM per-bit slot maxima.
#include "optical_kernels.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

namespace qlink::modem::detail {
namespace {

void ook_poisson_avx2(const std::uint16_t* counts, std::size_t n, float c0, float c1, std::int8_t* out) {
    const __m256 vc0 = _mm256_set1_ps(c0), vc1 = _mm256_set1_ps(c1);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i k = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(counts + i));
        const __m256i k0 = _mm256_cvtepu16_epi32(_mm256_castsi256_si128(k));
        const __m256i k1 = _mm256_cvtepu16_epi32(_mm256_extracti128_si256(k, 1));
        // Same operation order as the scalar kernel (multiply, then subtract; no FMA).
        __m256 v0 = _mm256_sub_ps(vc0, _mm256_mul_ps(_mm256_cvtepi32_ps(k0), vc1));
        __m256 v1 = _mm256_sub_ps(vc0, _mm256_mul_ps(_mm256_cvtepi32_ps(k1), vc1));
        v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
        v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)), 0xD8);
        const __m128i b = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), b);
    }
    for (; i < n; ++i) {
        const float t = static_cast<float>(counts[i]) * c1;
        out[i] = static_cast<std::int8_t>(std::lrint(std::clamp(c0 - t, -127.0f, 127.0f)));
    }
}

std::uint16_t hmax(__m256i v) {
    const __m128i m = _mm_max_epu16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    // max = ~min(~x): minpos finds the horizontal minimum of eight u16.
    const __m128i inv = _mm_xor_si128(m, _mm_set1_epi16(-1));
    return static_cast<std::uint16_t>(~_mm_cvtsi128_si32(_mm_minpos_epu16(inv)));
}

void ppm_maxima_avx2(const std::uint16_t* counts, std::size_t nsym, unsigned m, unsigned bits, std::size_t stride,
                     std::uint16_t* max0, std::uint16_t* max1) {
    if (m < 16) {
        optical_kernels_generic().ppm_maxima(counts, nsym, m, bits, stride, max0, max1);
        return;
    }
    const unsigned nb = m / 16;
    // Lane masks for the four low bits of the slot index inside a 16-slot vector.
    alignas(32) static constexpr std::uint16_t lane_bit[4][16] = {
        {0, 0xffff, 0, 0xffff, 0, 0xffff, 0, 0xffff, 0, 0xffff, 0, 0xffff, 0, 0xffff, 0, 0xffff},
        {0, 0, 0xffff, 0xffff, 0, 0, 0xffff, 0xffff, 0, 0, 0xffff, 0xffff, 0, 0, 0xffff, 0xffff},
        {0, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff},
        {0, 0, 0, 0, 0, 0, 0, 0, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff},
    };
    __m256i blk[16];
    for (std::size_t s = 0; s < nsym; ++s) {
        const std::uint16_t* c = counts + s * stride;
        std::uint16_t* m0 = max0 + s * bits;
        std::uint16_t* m1 = max1 + s * bits;
        __m256i all = _mm256_setzero_si256();
        for (unsigned b = 0; b < nb; ++b) {
            blk[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + 16 * b));
            all = _mm256_max_epu16(all, blk[b]);
        }
        // Counts are >= 0, so masking lanes to zero never raises a maximum.
        for (unsigned p = 0; p < 4; ++p) {
            const __m256i mask = _mm256_load_si256(reinterpret_cast<const __m256i*>(lane_bit[p]));
            m0[bits - 1 - p] = hmax(_mm256_andnot_si256(mask, all));
            m1[bits - 1 - p] = hmax(_mm256_and_si256(mask, all));
        }
        for (unsigned p = 4; p < bits; ++p) {
            __m256i a0 = _mm256_setzero_si256(), a1 = a0;
            for (unsigned b = 0; b < nb; ++b) {
                if ((b >> (p - 4)) & 1)
                    a1 = _mm256_max_epu16(a1, blk[b]);
                else
                    a0 = _mm256_max_epu16(a0, blk[b]);
            }
            m0[bits - 1 - p] = hmax(a0);
            m1[bits - 1 - p] = hmax(a1);
        }
    }
}

// 16 LLRs per step; the same float operations as the scalar kernel
// (convert, multiply, clamp, round to nearest even), so the bits agree.
void ppm_llr_avx2(const std::uint16_t* max0, const std::uint16_t* max1, std::size_t n, float c1, std::int8_t* out) {
    const __m256 vc1 = _mm256_set1_ps(c1);
    const __m256 lo = _mm256_set1_ps(-127.0f), hi = _mm256_set1_ps(127.0f);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(max0 + i));
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(max1 + i));
        const __m256i d0 = _mm256_sub_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(a)),
                                            _mm256_cvtepu16_epi32(_mm256_castsi256_si128(b)));
        const __m256i d1 = _mm256_sub_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(a, 1)),
                                            _mm256_cvtepu16_epi32(_mm256_extracti128_si256(b, 1)));
        __m256 v0 = _mm256_mul_ps(_mm256_cvtepi32_ps(d0), vc1);
        __m256 v1 = _mm256_mul_ps(_mm256_cvtepi32_ps(d1), vc1);
        v0 = _mm256_min_ps(_mm256_max_ps(v0, lo), hi);
        v1 = _mm256_min_ps(_mm256_max_ps(v1, lo), hi);
        const __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(_mm256_cvtps_epi32(v0), _mm256_cvtps_epi32(v1)), 0xD8);
        const __m128i r = _mm_packs_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), r);
    }
    for (; i < n; ++i) {
        const float v = std::clamp(static_cast<float>(int{max0[i]} - int{max1[i]}) * c1, -127.0f, 127.0f);
        out[i] = static_cast<std::int8_t>(std::lrint(v));
    }
}

}  // namespace

const optical_kernels& optical_kernels_avx2() {
    static constexpr optical_kernels k{ook_poisson_avx2, ppm_maxima_avx2, ppm_llr_avx2};
    return k;
}

}  // namespace qlink::modem::detail
