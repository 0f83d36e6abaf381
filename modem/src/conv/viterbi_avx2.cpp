// AVX2 Viterbi ACS kernels: the 64 8-bit path metrics in two YMM registers, one or two trellises per loop.
#include "viterbi_kernels.hpp"

#include <immintrin.h>

#include <cstring>

namespace qlink::modem::conv_detail {
namespace {

// Path metrics of one trellis held in registers across a kernel call.
struct trellis {
    __m256i a;     // states 0..31
    __m256i b;     // states 32..63
    __m256i pend;  // pending renormalisation minimum, broadcast
    std::uint64_t step;

    explicit trellis(const acs_state& st)
        : a(_mm256_load_si256(reinterpret_cast<const __m256i*>(st.metric))),
          b(_mm256_load_si256(reinterpret_cast<const __m256i*>(st.metric + 32))),
          pend(_mm256_set1_epi8(static_cast<char>(st.pending_min))), step(st.step) {}

    void store(acs_state& st) const {
        _mm256_store_si256(reinterpret_cast<__m256i*>(st.metric), a);
        _mm256_store_si256(reinterpret_cast<__m256i*>(st.metric + 32), b);
        st.pending_min = static_cast<std::uint8_t>(_mm256_cvtsi256_si32(pend) & 0xff);
        st.step = step;
    }

    __attribute__((always_inline)) inline std::uint64_t acs(const std::uint8_t* bm4, __m256i ix, __m256i ic) {
        std::int32_t word;
        std::memcpy(&word, bm4, 4);
        const __m256i b4 = _mm256_set1_epi32(word);
        const __m256i bm = _mm256_shuffle_epi8(b4, ix);
        const __m256i bmc = _mm256_shuffle_epi8(b4, ic);
        const __m256i x0 = _mm256_adds_epu8(a, bm), x1 = _mm256_adds_epu8(b, bmc);
        const __m256i y0 = _mm256_adds_epu8(a, bmc), y1 = _mm256_adds_epu8(b, bm);
        const __m256i nx = _mm256_min_epu8(x0, x1);    // new states 2i
        const __m256i ny = _mm256_min_epu8(y0, y1);    // new states 2i + 1
        const __m256i dx = _mm256_cmpeq_epi8(nx, x0);  // 0xff where the low predecessor won
        const __m256i dy = _mm256_cmpeq_epi8(ny, y0);
        // Interleaving gives [0..15 | 32..47] and [16..31 | 48..63].
        const __m256i lo = _mm256_unpacklo_epi8(nx, ny);
        const __m256i hi = _mm256_unpackhi_epi8(nx, ny);
        a = _mm256_permute2x128_si256(lo, hi, 0x20);
        b = _mm256_permute2x128_si256(lo, hi, 0x31);
        const std::uint64_t u = static_cast<std::uint32_t>(_mm256_movemask_epi8(dx)) |
                                (static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(dy))) << 32);
        const unsigned phase = static_cast<unsigned>(step & 7u);
        if (phase == 3) {
            __m256i m = _mm256_min_epu8(a, b);
            m = _mm256_min_epu8(m, _mm256_permute2x128_si256(m, m, 0x01));
            m = _mm256_min_epu8(m, _mm256_srli_si256(m, 8));
            m = _mm256_min_epu8(m, _mm256_srli_si256(m, 4));
            m = _mm256_min_epu8(m, _mm256_srli_si256(m, 2));
            m = _mm256_min_epu8(m, _mm256_srli_si256(m, 1));
            pend = _mm256_shuffle_epi8(m, _mm256_setzero_si256());
        } else if (phase == 7) {
            a = _mm256_subs_epu8(a, pend);
            b = _mm256_subs_epu8(b, pend);
        }
        ++step;
        return ~u;
    }
};

}  // namespace

void acs_avx2(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
              std::uint64_t* decisions) {
    const __m256i ix = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
    const __m256i ic = _mm256_xor_si256(ix, _mm256_set1_epi8(3));
    trellis tr(st);
    for (std::size_t t = 0; t < steps; ++t) decisions[t] = tr.acs(bm4 + 4 * t, ix, ic);
    tr.store(st);
}

void acs_dual_avx2(acs_state& a, acs_state& b, const std::uint8_t* idx, const std::uint8_t* bm_a,
                   const std::uint8_t* bm_b, std::size_t steps, std::uint64_t* dec_a, std::uint64_t* dec_b) {
    const __m256i ix = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
    const __m256i ic = _mm256_xor_si256(ix, _mm256_set1_epi8(3));
    trellis ta(a), tb(b);
    for (std::size_t t = 0; t < steps; ++t) {
        dec_a[t] = ta.acs(bm_a + 4 * t, ix, ic);
        dec_b[t] = tb.acs(bm_b + 4 * t, ix, ic);
    }
    ta.store(a);
    tb.store(b);
}

}  // namespace qlink::modem::conv_detail
