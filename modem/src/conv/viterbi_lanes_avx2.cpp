// AVX2 across-lanes Viterbi kernels: one YMM register = one state of 32 independent trellises.
#include "viterbi_lanes.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace qlink::modem::conv_detail {

void lanes_branch_avx2(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    // Per 128-bit half: even bytes (first symbols) to the low 8, odd bytes to the high 8.
    const __m256i split = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15, 0, 2, 4, 6, 8, 10,
                                           12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
    const __m256i floor = _mm256_set1_epi8(-127);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i low6 = _mm256_set1_epi8(0x3f);
    for (std::size_t t = 0; t < steps; ++t) {
        const auto* p = reinterpret_cast<const __m256i*>(pairs + t * 2 * n_lanes);
        // a: lanes 0..15, b: lanes 16..31; quadwords reordered to [first | second] per register.
        const __m256i a = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(_mm256_loadu_si256(p), split), 0xd8);
        const __m256i b = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(_mm256_loadu_si256(p + 1), split), 0xd8);
        const __m256i l0 = _mm256_max_epi8(_mm256_permute2x128_si256(a, b, 0x20), floor);
        const __m256i l1 = _mm256_max_epi8(_mm256_permute2x128_si256(a, b, 0x31), floor);
        const __m256i p0 = _mm256_max_epi8(l0, zero), q0 = _mm256_max_epi8(_mm256_sub_epi8(zero, l0), zero);
        const __m256i p1 = _mm256_max_epi8(l1, zero), q1 = _mm256_max_epi8(_mm256_sub_epi8(zero, l1), zero);
        // Sums are <= 254, so byte adds do not wrap; the 16-bit shift leaks bits across bytes, masked off.
        auto quarter = [&](__m256i x, __m256i y) {
            return _mm256_and_si256(_mm256_srli_epi16(_mm256_add_epi8(x, y), 2), low6);
        };
        auto* o = reinterpret_cast<__m256i*>(bm + t * 4 * n_lanes);
        _mm256_storeu_si256(o + 0, quarter(q0, q1));
        _mm256_storeu_si256(o + 1, quarter(q0, p1));
        _mm256_storeu_si256(o + 2, quarter(p0, q1));
        _mm256_storeu_si256(o + 3, quarter(p0, p1));
    }
}

namespace {

struct butterfly_out {
    __m256i lo, hi;  // new states 2i, 2i + 1
    std::uint64_t dec;  // their decision words, 2i in the low half
};

__attribute__((always_inline)) inline butterfly_out butterfly(__m256i m0, __m256i m1, __m256i bv, __m256i bc) {
    const __m256i x0 = _mm256_adds_epu8(m0, bv), x1 = _mm256_adds_epu8(m1, bc);
    const __m256i y0 = _mm256_adds_epu8(m0, bc), y1 = _mm256_adds_epu8(m1, bv);
    const __m256i nx = _mm256_min_epu8(x0, x1), ny = _mm256_min_epu8(y0, y1);
    const std::uint64_t d =
        static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(nx, x0))) |
        (static_cast<std::uint64_t>(static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(ny, y0)))) << 32);
    return {nx, ny, d};
}

// One step; renormalisation by the step counter as in acs_generic.
void one_step(const __m256i* cur, __m256i* nxt, const __m256i* b, const unsigned* off, const unsigned* offc,
              std::uint32_t* d, __m256i& pend, std::uint64_t step) {
    for (unsigned i = 0; i < 32; ++i) {
        const butterfly_out o = butterfly(_mm256_load_si256(cur + i), _mm256_load_si256(cur + i + 32),
                                          _mm256_loadu_si256(b + off[i]), _mm256_loadu_si256(b + offc[i]));
        _mm256_store_si256(nxt + 2 * i, o.lo);
        _mm256_store_si256(nxt + 2 * i + 1, o.hi);
        std::memcpy(d + 2 * i, &o.dec, 8);  // little endian: words 2i, 2i + 1
    }
    const unsigned phase = static_cast<unsigned>(step & 7u);
    if (phase == 3) {
        __m256i m0 = _mm256_min_epu8(nxt[0], nxt[1]), m1 = _mm256_min_epu8(nxt[2], nxt[3]);
        for (unsigned s = 4; s < 64; s += 2) {
            m0 = _mm256_min_epu8(m0, nxt[s]);
            m1 = _mm256_min_epu8(m1, nxt[s + 1]);
        }
        pend = _mm256_min_epu8(m0, m1);
    } else if (phase == 7) {
        for (unsigned s = 0; s < 64; ++s) nxt[s] = _mm256_subs_epu8(nxt[s], pend);
    }
}

// Two steps t (even phase: no renormalisation after it) and t + 1 with the
// intermediate metrics in registers: butterflies q and q + 16 of step t make
// states 2q, 2q + 1, 2q + 32, 2q + 33, exactly the inputs of butterflies 2q
// and 2q + 1 of step t + 1. Mode: 0 nothing after t + 1, 1 take the minimum
// (phase 3), 2 subtract the pending minimum (phase 7).
template <int mode>
void two_steps(const __m256i* cur, __m256i* nxt, const __m256i* b0, const __m256i* b1, const unsigned* off,
               const unsigned* offc, std::uint32_t* d0, std::uint32_t* d1, __m256i& pend) {
    __m256i mn = _mm256_set1_epi8(-1);
    for (unsigned q = 0; q < 16; ++q) {
        const butterfly_out p = butterfly(_mm256_load_si256(cur + q), _mm256_load_si256(cur + q + 32),
                                          _mm256_loadu_si256(b0 + off[q]), _mm256_loadu_si256(b0 + offc[q]));
        const butterfly_out r = butterfly(_mm256_load_si256(cur + q + 16), _mm256_load_si256(cur + q + 48),
                                          _mm256_loadu_si256(b0 + off[q + 16]), _mm256_loadu_si256(b0 + offc[q + 16]));
        std::memcpy(d0 + 2 * q, &p.dec, 8);
        std::memcpy(d0 + 2 * q + 32, &r.dec, 8);
        butterfly_out u = butterfly(p.lo, r.lo, _mm256_loadu_si256(b1 + off[2 * q]), _mm256_loadu_si256(b1 + offc[2 * q]));
        butterfly_out v = butterfly(p.hi, r.hi, _mm256_loadu_si256(b1 + off[2 * q + 1]),
                                    _mm256_loadu_si256(b1 + offc[2 * q + 1]));
        std::memcpy(d1 + 4 * q, &u.dec, 8);
        std::memcpy(d1 + 4 * q + 2, &v.dec, 8);
        if constexpr (mode == 1) {
            mn = _mm256_min_epu8(mn, _mm256_min_epu8(_mm256_min_epu8(u.lo, u.hi), _mm256_min_epu8(v.lo, v.hi)));
        } else if constexpr (mode == 2) {
            u.lo = _mm256_subs_epu8(u.lo, pend);
            u.hi = _mm256_subs_epu8(u.hi, pend);
            v.lo = _mm256_subs_epu8(v.lo, pend);
            v.hi = _mm256_subs_epu8(v.hi, pend);
        }
        _mm256_store_si256(nxt + 4 * q, u.lo);
        _mm256_store_si256(nxt + 4 * q + 1, u.hi);
        _mm256_store_si256(nxt + 4 * q + 2, v.lo);
        _mm256_store_si256(nxt + 4 * q + 3, v.hi);
    }
    if constexpr (mode == 1) pend = mn;
}

// Fast path for the trellises this decoder builds: idx[i] is the canonical
// label can(i) = (G1 parity << 1) | G2 parity of old state i with input 0,
// mapped through one relabelling m of the 4 labels (an XOR for inverted
// symbols, a bit swap for the swapped order) with m[c ^ 3] = m[c] ^ 3. The
// butterfly's branch metric slots are then compile-time constants: the step's
// four metric vectors are loaded once in canonical order and no per-butterfly
// index load or address arithmetic is left in the loop. Same arithmetic as
// two_steps/one_step (and so acs_generic) in every lane.
constexpr unsigned can_label(unsigned i) {
    auto par = [](unsigned x) { return static_cast<unsigned>(__builtin_popcount(x) & 1); };
    return (par((2 * i) & 0x4fu) << 1) | par((2 * i) & 0x6du);
}

struct step_bm {
    __m256i v[4];  // branch metric vectors in canonical label order
};

__attribute__((always_inline)) inline step_bm load_bm(const __m256i* b, const unsigned* m) {
    return {{_mm256_loadu_si256(b + m[0]), _mm256_loadu_si256(b + m[1]), _mm256_loadu_si256(b + m[2]),
             _mm256_loadu_si256(b + m[3])}};
}

__attribute__((always_inline)) inline __m256i dmask(__m256i nx, __m256i x0) {
    return _mm256_cmpeq_epi8(nx, x0);
}

// Butterfly i of one step with constant labels; decisions stored as two 32-bit words.
template <unsigned i>
__attribute__((always_inline)) inline void fly(__m256i m0, __m256i m1, const step_bm& b, __m256i& lo, __m256i& hi,
                                              std::uint32_t* d) {
    const __m256i bv = b.v[can_label(i)], bc = b.v[can_label(i) ^ 3u];
    const __m256i x0 = _mm256_adds_epu8(m0, bv), x1 = _mm256_adds_epu8(m1, bc);
    const __m256i y0 = _mm256_adds_epu8(m0, bc), y1 = _mm256_adds_epu8(m1, bv);
    lo = _mm256_min_epu8(x0, x1);
    hi = _mm256_min_epu8(y0, y1);
    d[2 * i] = static_cast<std::uint32_t>(_mm256_movemask_epi8(dmask(lo, x0)));
    d[2 * i + 1] = static_cast<std::uint32_t>(_mm256_movemask_epi8(dmask(hi, y0)));
}

template <int mode, unsigned q>
__attribute__((always_inline)) inline void quad_fast(const __m256i* cur, __m256i* nxt, const step_bm& b0,
                                                    const step_bm& b1, std::uint32_t* d0, std::uint32_t* d1,
                                                    __m256i& mn, __m256i pend) {
    __m256i p_lo, p_hi, r_lo, r_hi, u_lo, u_hi, v_lo, v_hi;
    fly<q>(_mm256_load_si256(cur + q), _mm256_load_si256(cur + q + 32), b0, p_lo, p_hi, d0);
    fly<q + 16>(_mm256_load_si256(cur + q + 16), _mm256_load_si256(cur + q + 48), b0, r_lo, r_hi, d0);
    fly<2 * q>(p_lo, r_lo, b1, u_lo, u_hi, d1);
    fly<2 * q + 1>(p_hi, r_hi, b1, v_lo, v_hi, d1);
    if constexpr (mode == 1) {
        mn = _mm256_min_epu8(mn, _mm256_min_epu8(_mm256_min_epu8(u_lo, u_hi), _mm256_min_epu8(v_lo, v_hi)));
    } else if constexpr (mode == 2) {
        u_lo = _mm256_subs_epu8(u_lo, pend);
        u_hi = _mm256_subs_epu8(u_hi, pend);
        v_lo = _mm256_subs_epu8(v_lo, pend);
        v_hi = _mm256_subs_epu8(v_hi, pend);
    }
    _mm256_store_si256(nxt + 4 * q, u_lo);
    _mm256_store_si256(nxt + 4 * q + 1, u_hi);
    _mm256_store_si256(nxt + 4 * q + 2, v_lo);
    _mm256_store_si256(nxt + 4 * q + 3, v_hi);
}

template <int mode, unsigned... q>
__attribute__((always_inline)) inline void two_steps_fast_impl(const __m256i* cur, __m256i* nxt, const step_bm& b0,
                                                              const step_bm& b1, std::uint32_t* d0,
                                                              std::uint32_t* d1, __m256i& pend,
                                                              std::integer_sequence<unsigned, q...>) {
    __m256i mn = _mm256_set1_epi8(-1);
    (quad_fast<mode, q>(cur, nxt, b0, b1, d0, d1, mn, pend), ...);
    if constexpr (mode == 1) pend = mn;
}

template <int mode>
void two_steps_fast(const __m256i* cur, __m256i* nxt, const __m256i* b, const unsigned* m, std::uint32_t* d0,
                    __m256i& pend) {
    const step_bm b0 = load_bm(b, m), b1 = load_bm(b + 4, m);
    two_steps_fast_impl<mode>(cur, nxt, b0, b1, d0, d0 + 64, pend, std::make_integer_sequence<unsigned, 16>{});
}

// The relabelling m with idx[i] == m[can_label(i)] for every i, if there is one.
bool canonical_map(const std::uint8_t* idx, unsigned* m) {
    bool seen[4] = {};
    for (unsigned i = 0; i < 32; ++i) {
        const unsigned c = can_label(i);
        if (seen[c] && m[c] != idx[i]) return false;
        seen[c] = true;
        m[c] = idx[i] & 3u;
    }
    for (unsigned c = 0; c < 4; ++c)
        if (!seen[c] || m[c ^ 3u] != (m[c] ^ 3u)) return false;
    return true;
}

}  // namespace

void lanes_acs_avx2(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                    std::uint32_t* decisions) {
    alignas(32) std::uint8_t buf[64 * n_lanes];
    __m256i* cur = reinterpret_cast<__m256i*>(st.metric);
    __m256i* nxt = reinterpret_cast<__m256i*>(buf);
    unsigned off[32], offc[32];
    for (unsigned i = 0; i < 32; ++i) {
        off[i] = idx[i];
        offc[i] = idx[i] ^ 3u;
    }
    __m256i pend = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.pending_min));
    std::uint64_t step = st.step;
    auto swap = [&] {
        __m256i* tmp = cur;
        cur = nxt;
        nxt = tmp;
    };
    const auto* b = reinterpret_cast<const __m256i*>(bm);
    std::size_t t = 0;
    if ((step & 1u) && steps) {
        one_step(cur, nxt, b, off, offc, decisions, pend, step);
        ++step;
        ++t;
        swap();
    }
    unsigned m[4];
    if (canonical_map(idx, m)) {
        for (; t + 2 <= steps; t += 2, step += 2) {
            const unsigned phase1 = static_cast<unsigned>((step + 1) & 7u);
            std::uint32_t* d0 = decisions + 64 * t;
            if (phase1 == 3) two_steps_fast<1>(cur, nxt, b + 4 * t, m, d0, pend);
            else if (phase1 == 7) two_steps_fast<2>(cur, nxt, b + 4 * t, m, d0, pend);
            else two_steps_fast<0>(cur, nxt, b + 4 * t, m, d0, pend);
            swap();
        }
    }
    for (; t + 2 <= steps; t += 2, step += 2) {
        const __m256i* b0 = b + 4 * t;
        std::uint32_t* d0 = decisions + 64 * t;
        const unsigned phase1 = static_cast<unsigned>((step + 1) & 7u);
        if (phase1 == 3) two_steps<1>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 64, pend);
        else if (phase1 == 7) two_steps<2>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 64, pend);
        else two_steps<0>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 64, pend);
        swap();
    }
    if (t < steps) {
        one_step(cur, nxt, b + 4 * t, off, offc, decisions + 64 * t, pend, step);
        ++step;
        swap();
    }
    if (cur != reinterpret_cast<__m256i*>(st.metric)) std::memcpy(st.metric, buf, sizeof buf);
    _mm256_store_si256(reinterpret_cast<__m256i*>(st.pending_min), pend);
    st.step = step;
}

void lanes_traceback_avx2(const std::uint32_t* dec, const lanes_trace_plan& plan, std::uint32_t* words) {
    // 8 lanes per register, four groups. Per row only the masked gather of
    // each lane's decision word and 4 logic ops are on the dependency chain;
    // the row offsets, masks and lane bits come from the loop counter.
    // Rows and counts stay below 2^31, so signed compares are exact.
    __m256i st[4], acc[4], own_bit[4], src_bit[4], top[4], lift[4], cross[4], delta64[4];
    std::int64_t rows = 0;
    for (unsigned l = 0; l < n_lanes; ++l) rows = std::max<std::int64_t>(rows, std::int64_t{plan.top[l]} + plan.lift[l]);
    const __m256i one = _mm256_set1_epi32(1);
    for (unsigned g = 0; g < 4; ++g) {
        auto ld = [g](const std::uint32_t* a) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(a + 8 * g)); };
        st[g] = ld(plan.end_state);
        acc[g] = _mm256_setzero_si256();
        own_bit[g] = _mm256_sllv_epi32(
            one, _mm256_setr_epi32(8 * g, 8 * g + 1, 8 * g + 2, 8 * g + 3, 8 * g + 4, 8 * g + 5, 8 * g + 6, 8 * g + 7));
        src_bit[g] = _mm256_sllv_epi32(one, ld(plan.src));
        top[g] = ld(plan.top);
        lift[g] = ld(plan.lift);
        cross[g] = ld(plan.cross);
        delta64[g] = _mm256_slli_epi32(ld(plan.delta), 6);
    }
    const __m256i minus1 = _mm256_set1_epi32(-1);
    const __m256i c32 = _mm256_set1_epi32(32);
    const auto* base = reinterpret_cast<const int*>(dec);
    for (std::int64_t u = rows; u-- > std::int64_t{plan.bottom};) {
        if (u >= 16) {
            // The rows are read backwards and the gathers form a dependency
            // chain: fetch the row 16 steps ahead (large batches overflow L2).
            const char* p = reinterpret_cast<const char*>(dec + 64 * (u - 16));
            for (unsigned k = 0; k < 4; ++k) _mm_prefetch(p + 64 * k, _MM_HINT_T0);
        }
        const __m256i uv = _mm256_set1_epi32(static_cast<int>(u));
        for (unsigned g = 0; g < 4; ++g) {
            acc[g] = _mm256_or_si256(_mm256_srli_epi32(acc[g], 1), _mm256_slli_epi32(_mm256_and_si256(st[g], one), 31));
            const __m256i t = _mm256_sub_epi32(uv, lift[g]);
            const __m256i active = _mm256_and_si256(_mm256_cmpgt_epi32(top[g], t), _mm256_cmpgt_epi32(t, minus1));
            const __m256i crossed = _mm256_cmpgt_epi32(_mm256_add_epi32(t, one), cross[g]);  // t >= cross
            // Lanes without a row here read row 0 (masked off anyway): every address stays inside dec.
            const __m256i row = _mm256_and_si256(
                _mm256_sub_epi32(_mm256_slli_epi32(t, 6), _mm256_and_si256(crossed, delta64[g])), active);
            const __m256i bit = _mm256_blendv_epi8(own_bit[g], src_bit[g], crossed);
            const __m256i w =
                _mm256_mask_i32gather_epi32(_mm256_setzero_si256(), base, _mm256_add_epi32(row, st[g]), active, 4);
            // Bit clear (or no row): the predecessor with the high bit.
            const __m256i high = _mm256_and_si256(_mm256_cmpeq_epi32(_mm256_and_si256(w, bit), _mm256_setzero_si256()), c32);
            st[g] = _mm256_or_si256(_mm256_srli_epi32(st[g], 1), high);
        }
        if ((u & 31) == 0)
            for (unsigned g = 0; g < 4; ++g) {
                _mm256_storeu_si256(reinterpret_cast<__m256i*>(words + n_lanes * static_cast<std::size_t>(u >> 5) + 8 * g),
                                    acc[g]);
                acc[g] = _mm256_setzero_si256();
            }
    }
}

}  // namespace qlink::modem::conv_detail
