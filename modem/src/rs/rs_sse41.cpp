// Reed-Solomon kernels, SSSE3/SSE4.1 (x86-64-v2 baseline): 16-lane syndromes and Chien search.
#include <immintrin.h>

#include "rs/rs_gf.hpp"

namespace qlink::modem::detail {

namespace {

inline __m128i ld(const std::uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }

inline __m128i mul_const(__m128i v, const std::uint8_t* nib) {
    const __m128i m = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_and_si128(v, m);
    const __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
    return _mm_xor_si128(_mm_shuffle_epi8(ld(nib), lo), _mm_shuffle_epi8(ld(nib + 16), hi));
}

}  // namespace

void rs_syndromes_sse41(const std::uint8_t* rx, unsigned first, unsigned nroots, const std::array<std::uint8_t, 32>* nib,
                        const std::uint8_t* syn_nib, std::uint8_t* s) {
    // Same scheme as the AVX2 kernel with the low- and high-nibble products in separate registers.
    __m128i a = _mm_setzero_si128(), b = _mm_setzero_si128();
    if (nroots > 16) {
        for (unsigned n = first; n < rs_n; ++n) {
            const std::uint8_t* t = nib[rx[n - first]].data();
            const __m128i tl = ld(t), th = ld(t + 16);
            const std::uint8_t* c = syn_nib + std::size_t{n} * 64;
            a = _mm_xor_si128(a, _mm_xor_si128(_mm_shuffle_epi8(tl, ld(c)), _mm_shuffle_epi8(th, ld(c + 16))));
            b = _mm_xor_si128(b, _mm_xor_si128(_mm_shuffle_epi8(tl, ld(c + 32)), _mm_shuffle_epi8(th, ld(c + 48))));
        }
    } else {
        for (unsigned n = first; n < rs_n; ++n) {
            const std::uint8_t* t = nib[rx[n - first]].data();
            const std::uint8_t* c = syn_nib + std::size_t{n} * 64;
            a = _mm_xor_si128(a, _mm_xor_si128(_mm_shuffle_epi8(ld(t), ld(c)), _mm_shuffle_epi8(ld(t + 16), ld(c + 16))));
        }
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s), a);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s + 16), b);
}

unsigned rs_chien_sse41(const std::uint8_t* lambda, unsigned degree, unsigned max_power, std::uint8_t* roots,
                        unsigned max_roots) {
    const gf_tables& t = gf();
    __m128i term[16];
    for (unsigned k = 1; k <= degree; ++k) term[k - 1] = mul_const(ld(t.chien_init[k].data()), t.nib[lambda[k]].data());
    const __m128i zero = _mm_setzero_si128();
    const __m128i one = _mm_set1_epi8(static_cast<char>(lambda[0]));
    unsigned found = 0;
    for (unsigned base = 0; base <= max_power; base += 16) {
        __m128i sum = one;
        for (unsigned k = 1; k <= degree; ++k) sum = _mm_xor_si128(sum, term[k - 1]);
        auto mask = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(sum, zero)));
        if (max_power - base < 15) mask &= (std::uint32_t{2} << (max_power - base)) - 1;
        while (mask) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(mask));
            mask &= mask - 1;
            if (found < max_roots) roots[found] = static_cast<std::uint8_t>(base + l);
            ++found;
        }
        if (base + 16 > max_power) break;
        for (unsigned k = 1; k <= degree; ++k) term[k - 1] = mul_const(term[k - 1], t.nib[t.chien_step16[k]].data());
    }
    return found;
}

}  // namespace qlink::modem::detail
