// SSE4.1 Viterbi kernels: branch metrics for 8 steps per vector, 64-state ACS in four XMM registers.
#include "viterbi_kernels.hpp"

#include <immintrin.h>

#include <cstring>

namespace qlink::modem::conv_detail {

void branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm4) {
    const __m128i floor = _mm_set1_epi8(-127);
    const __m128i zero = _mm_setzero_si128();
    const __m128i low6 = _mm_set1_epi8(0x3f);
    // After interleaving (q, p) per symbol, each step's dword is [q0 p0 q1 p1].
    const __m128i first = _mm_setr_epi8(0, 0, 1, 1, 4, 4, 5, 5, 8, 8, 9, 9, 12, 12, 13, 13);
    const __m128i second = _mm_setr_epi8(2, 3, 2, 3, 6, 7, 6, 7, 10, 11, 10, 11, 14, 15, 14, 15);
    std::size_t t = 0;
    for (; t + 8 <= steps; t += 8) {
        __m128i l = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pairs + 2 * t));
        l = _mm_max_epi8(l, floor);
        const __m128i p = _mm_max_epi8(l, zero);
        const __m128i q = _mm_max_epi8(_mm_sub_epi8(zero, l), zero);
        const __m128i lo = _mm_unpacklo_epi8(q, p);
        const __m128i hi = _mm_unpackhi_epi8(q, p);
        // Sums are at most 254, so byte adds do not wrap; the shift leaks
        // neighbour bits into bits 6..7, which the mask removes.
        __m128i s0 = _mm_add_epi8(_mm_shuffle_epi8(lo, first), _mm_shuffle_epi8(lo, second));
        __m128i s1 = _mm_add_epi8(_mm_shuffle_epi8(hi, first), _mm_shuffle_epi8(hi, second));
        s0 = _mm_and_si128(_mm_srli_epi16(s0, 2), low6);
        s1 = _mm_and_si128(_mm_srli_epi16(s1, 2), low6);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bm4 + 4 * t), s0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(bm4 + 4 * t + 16), s1);
    }
    if (t < steps) branch_generic(pairs + 2 * t, steps - t, bm4 + 4 * t);
}

void acs_sse41(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
               std::uint64_t* decisions) {
    __m128i a0 = _mm_load_si128(reinterpret_cast<const __m128i*>(st.metric));
    __m128i a1 = _mm_load_si128(reinterpret_cast<const __m128i*>(st.metric + 16));
    __m128i b0 = _mm_load_si128(reinterpret_cast<const __m128i*>(st.metric + 32));
    __m128i b1 = _mm_load_si128(reinterpret_cast<const __m128i*>(st.metric + 48));
    const __m128i three = _mm_set1_epi8(3);
    const __m128i i0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx));
    const __m128i i1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(idx + 16));
    const __m128i c0 = _mm_xor_si128(i0, three);
    const __m128i c1 = _mm_xor_si128(i1, three);
    __m128i pend = _mm_set1_epi8(static_cast<char>(st.pending_min));
    std::uint64_t step = st.step;
    for (std::size_t t = 0; t < steps; ++t) {
        std::int32_t word;
        std::memcpy(&word, bm4 + 4 * t, 4);
        const __m128i b4 = _mm_set1_epi32(word);
        const __m128i bm0 = _mm_shuffle_epi8(b4, i0), bmc0 = _mm_shuffle_epi8(b4, c0);
        const __m128i bm1 = _mm_shuffle_epi8(b4, i1), bmc1 = _mm_shuffle_epi8(b4, c1);
        // Butterflies 0..15 (old states a0 / b0) and 16..31 (a1 / b1).
        const __m128i x0 = _mm_adds_epu8(a0, bm0), x0b = _mm_adds_epu8(b0, bmc0);
        const __m128i y0 = _mm_adds_epu8(a0, bmc0), y0b = _mm_adds_epu8(b0, bm0);
        const __m128i x1 = _mm_adds_epu8(a1, bm1), x1b = _mm_adds_epu8(b1, bmc1);
        const __m128i y1 = _mm_adds_epu8(a1, bmc1), y1b = _mm_adds_epu8(b1, bm1);
        const __m128i nx0 = _mm_min_epu8(x0, x0b), ny0 = _mm_min_epu8(y0, y0b);
        const __m128i nx1 = _mm_min_epu8(x1, x1b), ny1 = _mm_min_epu8(y1, y1b);
        // 0xff where the low predecessor won (ties included).
        const __m128i dx0 = _mm_cmpeq_epi8(nx0, x0), dy0 = _mm_cmpeq_epi8(ny0, y0);
        const __m128i dx1 = _mm_cmpeq_epi8(nx1, x1), dy1 = _mm_cmpeq_epi8(ny1, y1);
        a0 = _mm_unpacklo_epi8(nx0, ny0);  // states 0..15
        a1 = _mm_unpackhi_epi8(nx0, ny0);  // 16..31
        b0 = _mm_unpacklo_epi8(nx1, ny1);  // 32..47
        b1 = _mm_unpackhi_epi8(nx1, ny1);  // 48..63
        const std::uint64_t w0 = static_cast<std::uint32_t>(_mm_movemask_epi8(dx0));
        const std::uint64_t w1 = static_cast<std::uint32_t>(_mm_movemask_epi8(dx1));
        const std::uint64_t w2 = static_cast<std::uint32_t>(_mm_movemask_epi8(dy0));
        const std::uint64_t w3 = static_cast<std::uint32_t>(_mm_movemask_epi8(dy1));
        decisions[t] = ~(w0 | (w1 << 16) | (w2 << 32) | (w3 << 48));
        const unsigned phase = static_cast<unsigned>(step & 7u);
        if (phase == 3) {
            __m128i m = _mm_min_epu8(_mm_min_epu8(a0, a1), _mm_min_epu8(b0, b1));
            m = _mm_min_epu8(m, _mm_srli_si128(m, 8));
            m = _mm_min_epu8(m, _mm_srli_si128(m, 4));
            m = _mm_min_epu8(m, _mm_srli_si128(m, 2));
            m = _mm_min_epu8(m, _mm_srli_si128(m, 1));
            pend = _mm_shuffle_epi8(m, _mm_setzero_si128());
        } else if (phase == 7) {
            a0 = _mm_subs_epu8(a0, pend);
            a1 = _mm_subs_epu8(a1, pend);
            b0 = _mm_subs_epu8(b0, pend);
            b1 = _mm_subs_epu8(b1, pend);
        }
        ++step;
    }
    _mm_store_si128(reinterpret_cast<__m128i*>(st.metric), a0);
    _mm_store_si128(reinterpret_cast<__m128i*>(st.metric + 16), a1);
    _mm_store_si128(reinterpret_cast<__m128i*>(st.metric + 32), b0);
    _mm_store_si128(reinterpret_cast<__m128i*>(st.metric + 48), b1);
    st.pending_min = static_cast<std::uint8_t>(_mm_cvtsi128_si32(pend) & 0xff);
    st.step = step;
}

}  // namespace qlink::modem::conv_detail
