// AVX2 interleaved-codeblock syndromes: up to four codewords per pass, constants loaded once per position.
#include "chain/rs_check.hpp"

#include "rs/rs_gf.hpp"

#include <immintrin.h>

namespace qlink::modem::detail {
namespace {

inline __m256i ld(const std::uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Codewords g .. g+M-1. The data byte picks the multiplication table (low-nibble half in the low
// lane, high-nibble half in the high lane) and the constants' nibbles index it, so one shuffle
// multiplies a symbol by 16 constants; the two lanes are added at the end. `wide`: 2E = 32.
template <unsigned M, bool wide>
void group(const rs_block_args& a, unsigned g, std::uint8_t* s) {
    __m256i lo[M], hi[M];
    for (unsigned w = 0; w < M; ++w) lo[w] = hi[w] = _mm256_setzero_si256();
    const unsigned il = a.il;
    const std::uint8_t* row = a.block + g;
    for (unsigned n = a.first; n < rs_n; ++n, row += il) {
        const std::uint8_t* c = a.syn_nib + std::size_t{n} * 64;
        const __m256i c0 = ld(c);
        if constexpr (wide) {
            const __m256i c1 = ld(c + 32);
            for (unsigned w = 0; w < M; ++w) {
                const __m256i t = ld(a.nib[row[w]].data());
                lo[w] = _mm256_xor_si256(lo[w], _mm256_shuffle_epi8(t, c0));
                hi[w] = _mm256_xor_si256(hi[w], _mm256_shuffle_epi8(t, c1));
            }
        } else {
            for (unsigned w = 0; w < M; ++w)
                lo[w] = _mm256_xor_si256(lo[w], _mm256_shuffle_epi8(ld(a.nib[row[w]].data()), c0));
        }
    }
    for (unsigned w = 0; w < M; ++w) {
        std::uint8_t* out = s + (g + w) * rs_check_roots;
        const __m128i l = _mm_xor_si128(_mm256_castsi256_si128(lo[w]), _mm256_extracti128_si256(lo[w], 1));
        const __m128i h = _mm_xor_si128(_mm256_castsi256_si128(hi[w]), _mm256_extracti128_si256(hi[w], 1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out), l);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), wide ? h : _mm_setzero_si128());
    }
}

template <bool wide>
void all_groups(const rs_block_args& a, std::uint8_t* s) {
    unsigned g = 0;
    for (; g + 4 <= a.il; g += 4) group<4, wide>(a, g, s);
    switch (a.il - g) {
    case 3: group<3, wide>(a, g, s); break;
    case 2: group<2, wide>(a, g, s); break;
    case 1: group<1, wide>(a, g, s); break;
    default: break;
    }
}

}  // namespace

void rs_block_syndromes_avx2(const rs_block_args& a, std::uint8_t* s) {
    if (a.nroots > 16)
        all_groups<true>(a, s);
    else
        all_groups<false>(a, s);
}

}  // namespace qlink::modem::detail
