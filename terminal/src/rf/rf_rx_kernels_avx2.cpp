// AVX2 receive-chain kernels: the generic ones' exact operation order on 8-float registers.
#include "rf_rx_kernels.hpp"

#include <immintrin.h>

namespace qlink::terminal::detail {

namespace {

// (a.re b.re - a.im b.im, a.im b.re + a.re b.im) for 4 interleaved complex pairs.
inline __m256 cmul(__m256 a, __m256 b) {
    const __m256 br = _mm256_moveldup_ps(b);
    const __m256 bi = _mm256_movehdup_ps(b);
    const __m256 a_swap = _mm256_permute_ps(a, 0xb1);
    return _mm256_addsub_ps(_mm256_mul_ps(a, br), _mm256_mul_ps(a_swap, bi));
}

float power_avx2(const cf32* x, std::size_t n) {
    const float* f = reinterpret_cast<const float*>(x);
    __m256 acc = _mm256_setzero_ps();
    for (std::size_t i = 0; i < 2 * n; i += 8) {
        const __m256 v = _mm256_loadu_ps(f + i);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(v, v));
    }
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));  // l0+l4 ..
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));  // (l0+l4)+(l2+l6), (l1+l5)+(l3+l7)
    return _mm_cvtss_f32(t) + _mm_cvtss_f32(_mm_shuffle_ps(t, t, 1));
}

void rotate_avx2(const cf32* in, cf32* out, std::size_t n, cf32* p, cf32 step) {
    const float* fi = reinterpret_cast<const float*>(in);
    float* fo = reinterpret_cast<float*>(out);
    __m256 ph = _mm256_loadu_ps(reinterpret_cast<const float*>(p));
    const __m256 st = _mm256_setr_ps(step.real(), step.imag(), step.real(), step.imag(), step.real(), step.imag(),
                                     step.real(), step.imag());
    for (std::size_t i = 0; i < 2 * n; i += 8) {
        _mm256_storeu_ps(fo + i, cmul(_mm256_loadu_ps(fi + i), ph));
        ph = cmul(ph, st);
    }
    _mm256_storeu_ps(reinterpret_cast<float*>(p), ph);
}

cf32 dot_avx2(const cf32* x, const float* taps2, std::size_t floats) {
    const float* f = reinterpret_cast<const float*>(x);
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    for (std::size_t i = 0; i < floats; i += 16) {
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(f + i), _mm256_loadu_ps(taps2 + i)));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(f + i + 8), _mm256_loadu_ps(taps2 + i + 8)));
    }
    const __m256 s8 = _mm256_add_ps(a0, a1);
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
    alignas(16) float r[4];
    _mm_store_ps(r, t);
    return {r[0], r[1]};
}

}  // namespace

rx_kernels rx_kernels_avx2() { return {modem::isa::avx2, power_avx2, rotate_avx2, dot_avx2}; }

}  // namespace qlink::terminal::detail
