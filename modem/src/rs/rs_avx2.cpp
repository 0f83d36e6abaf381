// Reed-Solomon kernels, AVX2: syndromes and Chien search with GF(2^8) constant multiplies by nibble shuffles.
#include <immintrin.h>

#include "rs/rs_gf.hpp"

namespace qlink::modem::detail {

namespace {

inline __m256i bcast_table(const std::uint8_t* p) {
    return _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256i ld(const std::uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// v * c for a constant c given by its nibble tables.
inline __m256i mul_const(__m256i v, const std::uint8_t* nib) {
    const __m256i m = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(v, m);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m);
    return _mm256_xor_si256(_mm256_shuffle_epi8(bcast_table(nib), lo), _mm256_shuffle_epi8(bcast_table(nib + 16), hi));
}

}  // namespace

void rs_syndromes_avx2(const std::uint8_t* rx, unsigned first, unsigned nroots, const std::array<std::uint8_t, 32>* nib,
                       const std::uint8_t* syn_nib, std::uint8_t* s) {
    // The data byte r is the same for all syndromes and the per-syndrome constants are fixed, so the
    // data byte picks the shuffle table and the constants' nibbles are the shuffle indices:
    // r * c = T_r,lo[c & 15] ^ T_r,hi[c >> 4]. nib[r] is laid out [T_lo | T_hi], so one 32-byte load
    // serves both halves: the low lane takes the low nibbles of 16 constants, the high lane their high
    // nibbles, and the two lanes are added at the end. E = 16 needs two such vectors, E = 8 one.
    __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
    __m256i b0 = _mm256_setzero_si256(), b1 = _mm256_setzero_si256();
    unsigned n = first;
    if (nroots > 16) {
        for (; n + 2 <= rs_n; n += 2) {
            const __m256i t0 = ld(nib[rx[n - first]].data());
            const __m256i t1 = ld(nib[rx[n + 1 - first]].data());
            const std::uint8_t* c = syn_nib + std::size_t{n} * 64;
            a0 = _mm256_xor_si256(a0, _mm256_shuffle_epi8(t0, ld(c)));
            b0 = _mm256_xor_si256(b0, _mm256_shuffle_epi8(t0, ld(c + 32)));
            a1 = _mm256_xor_si256(a1, _mm256_shuffle_epi8(t1, ld(c + 64)));
            b1 = _mm256_xor_si256(b1, _mm256_shuffle_epi8(t1, ld(c + 96)));
        }
        if (n < rs_n) {
            const __m256i t0 = ld(nib[rx[n - first]].data());
            const std::uint8_t* c = syn_nib + std::size_t{n} * 64;
            a0 = _mm256_xor_si256(a0, _mm256_shuffle_epi8(t0, ld(c)));
            b0 = _mm256_xor_si256(b0, _mm256_shuffle_epi8(t0, ld(c + 32)));
        }
    } else {
        for (; n + 2 <= rs_n; n += 2) {
            const __m256i t0 = ld(nib[rx[n - first]].data());
            const __m256i t1 = ld(nib[rx[n + 1 - first]].data());
            const std::uint8_t* c = syn_nib + std::size_t{n} * 64;
            a0 = _mm256_xor_si256(a0, _mm256_shuffle_epi8(t0, ld(c)));
            a1 = _mm256_xor_si256(a1, _mm256_shuffle_epi8(t1, ld(c + 64)));
        }
        if (n < rs_n) a0 = _mm256_xor_si256(a0, _mm256_shuffle_epi8(ld(nib[rx[n - first]].data()), ld(syn_nib + std::size_t{n} * 64)));
    }
    const __m256i a = _mm256_xor_si256(a0, a1), b = _mm256_xor_si256(b0, b1);
    const __m128i lo = _mm_xor_si128(_mm256_castsi256_si128(a), _mm256_extracti128_si256(a, 1));
    const __m128i hi = _mm_xor_si128(_mm256_castsi256_si128(b), _mm256_extracti128_si256(b, 1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(s + 16), hi);
}

unsigned rs_chien_avx2(const std::uint8_t* lambda, unsigned degree, unsigned max_power, std::uint8_t* roots,
                       unsigned max_roots) {
    // Lanes are 32 consecutive powers i; term k holds lambda_k * beta^(-k i) and moves to the next 32
    // powers by one constant multiply with beta^(-32 k).
    const gf_tables& t = gf();
    __m256i term[16];
    for (unsigned k = 1; k <= degree; ++k) term[k - 1] = mul_const(ld(t.chien_init[k].data()), t.nib[lambda[k]].data());
    const __m256i zero = _mm256_setzero_si256();
    const __m256i one = _mm256_set1_epi8(static_cast<char>(lambda[0]));
    unsigned found = 0;
    for (unsigned base = 0; base <= max_power; base += 32) {
        __m256i sum = one;
        for (unsigned k = 1; k <= degree; ++k) sum = _mm256_xor_si256(sum, term[k - 1]);
        auto mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(sum, zero)));
        if (max_power - base < 31) mask &= (std::uint32_t{2} << (max_power - base)) - 1;
        while (mask) {
            const unsigned l = static_cast<unsigned>(__builtin_ctz(mask));
            mask &= mask - 1;
            if (found < max_roots) roots[found] = static_cast<std::uint8_t>(base + l);
            ++found;
        }
        if (base + 32 > max_power) break;
        for (unsigned k = 1; k <= degree; ++k) term[k - 1] = mul_const(term[k - 1], t.nib[t.chien_step[k]].data());
    }
    return found;
}

}  // namespace qlink::modem::detail
