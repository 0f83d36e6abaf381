// CCSDS pseudo-randomizer, AVX2: 128 bytes (or LLRs) per step against the unrolled sequence.
#include <immintrin.h>

#include "randomizer/randomizer_tables.hpp"

namespace qlink::modem::detail {

namespace {
inline __m256i ld(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline void st(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }
}  // namespace

void randomize_avx2(std::uint8_t* data, std::size_t n) {
    const std::uint8_t* seq = rand_tables.bytes.data();
    std::size_t o = 0, i = 0;
    for (; i + 128 <= n; i += 128) {
        st(data + i, _mm256_xor_si256(ld(data + i), ld(seq + o)));
        st(data + i + 32, _mm256_xor_si256(ld(data + i + 32), ld(seq + o + 32)));
        st(data + i + 64, _mm256_xor_si256(ld(data + i + 64), ld(seq + o + 64)));
        st(data + i + 96, _mm256_xor_si256(ld(data + i + 96), ld(seq + o + 96)));
        o += 128;
        if (o >= 255) o -= 255;
    }
    for (; i + 32 <= n; i += 32) {
        st(data + i, _mm256_xor_si256(ld(data + i), ld(seq + o)));
        o += 32;
        if (o >= 255) o -= 255;
    }
    for (; i < n; ++i) {
        data[i] ^= seq[o];
        if (++o == 255) o = 0;
    }
}

void randomize_llr_avx2(std::int8_t* soft, std::size_t n) {
    const std::int8_t* mask = rand_tables.llr_mask.data();
    const __m256i floor = _mm256_set1_epi8(-127);
    std::size_t o = 0, i = 0;
    // (x ^ m) - m negates where m = -1; the clamp keeps an illegal -128 from wrapping.
    auto flip = [&](std::size_t at, std::size_t off) {
        const __m256i m = ld(mask + off);
        const __m256i x = _mm256_max_epi8(ld(soft + at), floor);
        st(soft + at, _mm256_sub_epi8(_mm256_xor_si256(x, m), m));
    };
    for (; i + 128 <= n; i += 128) {
        flip(i, o);
        flip(i + 32, o + 32);
        flip(i + 64, o + 64);
        flip(i + 96, o + 96);
        o += 128;
        if (o >= rand_bits) o -= rand_bits;
    }
    for (; i + 32 <= n; i += 32) {
        flip(i, o);
        o += 32;
        if (o >= rand_bits) o -= rand_bits;
    }
    for (; i < n; ++i) {
        const int v = soft[i] < -127 ? -127 : soft[i];
        soft[i] = static_cast<std::int8_t>(mask[o] ? -v : v);
        if (++o == rand_bits) o = 0;
    }
}

}  // namespace qlink::modem::detail
