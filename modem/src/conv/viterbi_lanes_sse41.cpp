// SSE4.1 across-lanes Viterbi kernels: each state of the 32 trellises is two XMM registers (lanes 0..15, 16..31).
#include "viterbi_lanes.hpp"

#include <smmintrin.h>

#include <cstring>

namespace qlink::modem::conv_detail {

void lanes_branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    // Even bytes (first symbols) to the low 8, odd bytes to the high 8.
    const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m128i floor = _mm_set1_epi8(-127);
    const __m128i zero = _mm_setzero_si128();
    const __m128i low6 = _mm_set1_epi8(0x3f);
    auto quarter = [&](__m128i x, __m128i y) { return _mm_and_si128(_mm_srli_epi16(_mm_add_epi8(x, y), 2), low6); };
    for (std::size_t t = 0; t < steps; ++t) {
        for (unsigned h = 0; h < 2; ++h) {
            const auto* p = reinterpret_cast<const __m128i*>(pairs + t * 2 * n_lanes + h * n_lanes);
            const __m128i a = _mm_shuffle_epi8(_mm_loadu_si128(p), split);
            const __m128i b = _mm_shuffle_epi8(_mm_loadu_si128(p + 1), split);
            const __m128i l0 = _mm_max_epi8(_mm_unpacklo_epi64(a, b), floor);
            const __m128i l1 = _mm_max_epi8(_mm_unpackhi_epi64(a, b), floor);
            const __m128i p0 = _mm_max_epi8(l0, zero), q0 = _mm_max_epi8(_mm_sub_epi8(zero, l0), zero);
            const __m128i p1 = _mm_max_epi8(l1, zero), q1 = _mm_max_epi8(_mm_sub_epi8(zero, l1), zero);
            auto* o = reinterpret_cast<__m128i*>(bm + t * 4 * n_lanes + h * 16);
            _mm_storeu_si128(o + 0, quarter(q0, q1));
            _mm_storeu_si128(o + 2, quarter(q0, p1));
            _mm_storeu_si128(o + 4, quarter(p0, q1));
            _mm_storeu_si128(o + 6, quarter(p0, p1));
        }
    }
}

void lanes_acs_sse41(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                     std::uint32_t* decisions) {
    alignas(32) std::uint8_t buf[64 * n_lanes];
    __m128i* cur = reinterpret_cast<__m128i*>(st.metric);
    __m128i* nxt = reinterpret_cast<__m128i*>(buf);
    unsigned off[32], offc[32];
    for (unsigned i = 0; i < 32; ++i) {
        off[i] = 2u * idx[i];
        offc[i] = 2u * (idx[i] ^ 3u);
    }
    __m128i pend[2] = {_mm_load_si128(reinterpret_cast<const __m128i*>(st.pending_min)),
                       _mm_load_si128(reinterpret_cast<const __m128i*>(st.pending_min + 16))};
    std::uint64_t step = st.step;
    for (std::size_t t = 0; t < steps; ++t) {
        const auto* b = reinterpret_cast<const __m128i*>(bm + t * 4 * n_lanes);
        std::uint32_t* d = decisions + t * 64;
        for (unsigned i = 0; i < 32; ++i) {
            std::uint32_t dx = 0, dy = 0;
            for (unsigned h = 0; h < 2; ++h) {
                const __m128i m0 = _mm_load_si128(cur + 2 * i + h), m1 = _mm_load_si128(cur + 2 * (i + 32) + h);
                const __m128i bv = _mm_loadu_si128(b + off[i] + h), bc = _mm_loadu_si128(b + offc[i] + h);
                const __m128i x0 = _mm_adds_epu8(m0, bv), x1 = _mm_adds_epu8(m1, bc);
                const __m128i y0 = _mm_adds_epu8(m0, bc), y1 = _mm_adds_epu8(m1, bv);
                const __m128i nx = _mm_min_epu8(x0, x1), ny = _mm_min_epu8(y0, y1);
                _mm_store_si128(nxt + 4 * i + h, nx);
                _mm_store_si128(nxt + 4 * i + 2 + h, ny);
                dx |= static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(nx, x0))) << (16 * h);
                dy |= static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(ny, y0))) << (16 * h);
            }
            d[2 * i] = dx;
            d[2 * i + 1] = dy;
        }
        const unsigned phase = static_cast<unsigned>(step & 7u);
        if (phase == 3) {
            for (unsigned h = 0; h < 2; ++h) {
                __m128i m = nxt[h];
                for (unsigned s = 1; s < 64; ++s) m = _mm_min_epu8(m, nxt[2 * s + h]);
                pend[h] = m;
            }
        } else if (phase == 7) {
            for (unsigned s = 0; s < 128; ++s) nxt[s] = _mm_subs_epu8(nxt[s], pend[s & 1]);
        }
        ++step;
        __m128i* tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    if (cur != reinterpret_cast<__m128i*>(st.metric)) std::memcpy(st.metric, buf, sizeof buf);
    _mm_store_si128(reinterpret_cast<__m128i*>(st.pending_min), pend[0]);
    _mm_store_si128(reinterpret_cast<__m128i*>(st.pending_min + 16), pend[1]);
    st.step = step;
}

}  // namespace qlink::modem::conv_detail
