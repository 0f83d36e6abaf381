// Generic (scalar) receive-chain kernels: the reference every ISA variant must match bit for bit, and the run-time choice.
#include "rf_rx_kernels.hpp"

namespace qlink::terminal::detail {

namespace {

// One complex product in the documented order (std::complex's operator* adds
// NaN/Inf recovery and may differ from the vector code).
inline void cmul(float ar, float ai, float br, float bi, float& re, float& im) {
    re = ar * br - ai * bi;
    im = ai * br + ar * bi;
}

float power_generic(const cf32* x, std::size_t n) {
    const float* f = reinterpret_cast<const float*>(x);
    float acc[8] = {};
    for (std::size_t i = 0; i < 2 * n; i += 8)
        for (unsigned l = 0; l < 8; ++l) acc[l] += f[i + l] * f[i + l];
    return ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

void rotate_generic(const cf32* in, cf32* out, std::size_t n, cf32* p, cf32 step) {
    const float* fi = reinterpret_cast<const float*>(in);
    float* fo = reinterpret_cast<float*>(out);
    float pr[4], pi[4];
    for (unsigned l = 0; l < 4; ++l) {
        pr[l] = p[l].real();
        pi[l] = p[l].imag();
    }
    const float sr = step.real(), si = step.imag();
    for (std::size_t i = 0; i < n; i += 4) {
        for (unsigned l = 0; l < 4; ++l) {
            float re, im;
            cmul(fi[2 * (i + l)], fi[2 * (i + l) + 1], pr[l], pi[l], re, im);
            fo[2 * (i + l)] = re;
            fo[2 * (i + l) + 1] = im;
            cmul(pr[l], pi[l], sr, si, re, im);
            pr[l] = re;
            pi[l] = im;
        }
    }
    for (unsigned l = 0; l < 4; ++l) p[l] = {pr[l], pi[l]};
}

cf32 dot_generic(const cf32* x, const float* taps2, std::size_t floats) {
    const float* f = reinterpret_cast<const float*>(x);
    float a0[8] = {}, a1[8] = {};
    for (std::size_t i = 0; i < floats; i += 16) {
        for (unsigned l = 0; l < 8; ++l) a0[l] += f[i + l] * taps2[i + l];
        for (unsigned l = 0; l < 8; ++l) a1[l] += f[i + 8 + l] * taps2[i + 8 + l];
    }
    float s[8];
    for (unsigned l = 0; l < 8; ++l) s[l] = a0[l] + a1[l];
    return {(s[0] + s[4]) + (s[2] + s[6]), (s[1] + s[5]) + (s[3] + s[7])};
}

}  // namespace

rx_kernels rx_kernels_generic() { return {modem::isa::generic, power_generic, rotate_generic, dot_generic}; }

std::optional<rx_kernels> rx_kernels_for(modem::isa level) {
    if (!modem::isa_supported(level)) return std::nullopt;
    switch (level) {
    case modem::isa::generic: return rx_kernels_generic();
#if defined(__x86_64__)
    case modem::isa::avx2: return rx_kernels_avx2();
#endif
    default: return std::nullopt;  // no sse41/avx512 variant: the caller steps down
    }
}

std::optional<rx_kernels> rx_kernels_for(std::string_view isa_name) {
    const auto want = modem::parse_isa(isa_name);
    if (!want) return std::nullopt;
    // Widest variant at or below the request that exists here.
    for (int l = static_cast<int>(*want); l >= 0; --l)
        if (auto k = rx_kernels_for(static_cast<modem::isa>(l))) return k;
    return rx_kernels_generic();
}

}  // namespace qlink::terminal::detail
