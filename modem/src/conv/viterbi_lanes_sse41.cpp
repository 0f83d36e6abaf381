// SSE4.1 across-lanes Viterbi kernels: each state of the 32 trellises is two XMM registers (lanes 0..15, 16..31).
#include "viterbi_lanes.hpp"

#include <smmintrin.h>

#include <algorithm>
#include <cstring>

namespace qlink::modem::conv_detail {

void lanes_branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    const __m128i floor = _mm_set1_epi8(-127);
    const __m128i zero = _mm_setzero_si128();
    const __m128i low6 = _mm_set1_epi8(0x3f);
    auto quarter = [&](__m128i x, __m128i y) { return _mm_and_si128(_mm_srli_epi16(_mm_add_epi8(x, y), 2), low6); };
    for (std::size_t t = 0; t < steps; ++t) {
        for (unsigned h = 0; h < 2; ++h) {
            const auto* p = reinterpret_cast<const __m128i*>(pairs + t * 2 * n_lanes + h * 16);
            const __m128i l0 = _mm_max_epi8(_mm_loadu_si128(p), floor);
            const __m128i l1 = _mm_max_epi8(_mm_loadu_si128(p + 2), floor);
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

void lanes_transpose_sse41(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst) {
    std::size_t t = 0;
    // 8 steps of 16 lanes at a time: a 16 x 16 byte transpose in four rounds
    // of unpacks (see lanes_transpose_avx2, which does both halves at once).
    for (; t + 8 <= k; t += 8)
        for (unsigned half = 0; half < 2; ++half) {
            __m128i r[16], a[16];
            for (unsigned i = 0; i < 16; ++i)
                r[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[16 * half + i] + 2 * (c + t)));
            for (unsigned i = 0; i < 8; ++i) {
                a[2 * i] = _mm_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
                a[2 * i + 1] = _mm_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
            }
            for (unsigned j = 0; j < 4; ++j)
                for (unsigned h = 0; h < 2; ++h) {
                    r[4 * j + 2 * h] = _mm_unpacklo_epi16(a[4 * j + h], a[4 * j + 2 + h]);
                    r[4 * j + 2 * h + 1] = _mm_unpackhi_epi16(a[4 * j + h], a[4 * j + 2 + h]);
                }
            for (unsigned j = 0; j < 2; ++j)
                for (unsigned h = 0; h < 4; ++h) {
                    a[8 * j + 2 * h] = _mm_unpacklo_epi32(r[8 * j + h], r[8 * j + 4 + h]);
                    a[8 * j + 2 * h + 1] = _mm_unpackhi_epi32(r[8 * j + h], r[8 * j + 4 + h]);
                }
            std::int8_t* o = dst + 2 * n_lanes * t + 16 * half;
            for (unsigned h = 0; h < 8; ++h) {
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * n_lanes * h), _mm_unpacklo_epi64(a[h], a[8 + h]));
                _mm_storeu_si128(reinterpret_cast<__m128i*>(o + 2 * n_lanes * h + n_lanes),
                                 _mm_unpackhi_epi64(a[h], a[8 + h]));
            }
        }
    if (t < k) lanes_transpose_generic(src, c + t, k - t, dst + 2 * n_lanes * t);
}

namespace {

// One state of the 32 lanes: two XMM registers.
struct v2 {
    __m128i a, b;
};

__attribute__((always_inline)) inline v2 load2(const __m128i* p) { return {_mm_load_si128(p), _mm_load_si128(p + 1)}; }
__attribute__((always_inline)) inline v2 loadu2(const __m128i* p) { return {_mm_loadu_si128(p), _mm_loadu_si128(p + 1)}; }
__attribute__((always_inline)) inline void store2(__m128i* p, v2 v) {
    _mm_store_si128(p, v.a);
    _mm_store_si128(p + 1, v.b);
}
__attribute__((always_inline)) inline void storeu2(__m128i* p, v2 v) {
    _mm_storeu_si128(p, v.a);
    _mm_storeu_si128(p + 1, v.b);
}
__attribute__((always_inline)) inline v2 adds2(v2 x, v2 y) { return {_mm_adds_epu8(x.a, y.a), _mm_adds_epu8(x.b, y.b)}; }
__attribute__((always_inline)) inline v2 min2(v2 x, v2 y) { return {_mm_min_epu8(x.a, y.a), _mm_min_epu8(x.b, y.b)}; }
__attribute__((always_inline)) inline v2 subs2(v2 x, v2 y) { return {_mm_subs_epu8(x.a, y.a), _mm_subs_epu8(x.b, y.b)}; }
__attribute__((always_inline)) inline v2 eq2(v2 x, v2 y) { return {_mm_cmpeq_epi8(x.a, y.a), _mm_cmpeq_epi8(x.b, y.b)}; }
// Appends one decision mask (0x00 / 0xff bytes) to a byte of 8 decision bits:
// the k-th of 8 appends ends in bit k - 1 (pavgb halves and puts the mask's
// bit on top; the rounding term stays 0 until the 9th append).
__attribute__((always_inline)) inline v2 push2(v2 acc, v2 mask) {
    return {_mm_avg_epu8(acc.a, mask.a), _mm_avg_epu8(acc.b, mask.b)};
}

struct butterfly_out {
    v2 lo, hi;
    v2 dlo, dhi;  // decision masks of new states 2i, 2i + 1
};

__attribute__((always_inline)) inline butterfly_out butterfly(v2 m0, v2 m1, v2 bv, v2 bc) {
    const v2 x0 = adds2(m0, bv), x1 = adds2(m1, bc);
    const v2 y0 = adds2(m0, bc), y1 = adds2(m1, bv);
    const v2 nx = min2(x0, x1), ny = min2(y0, y1);
    return {nx, ny, eq2(nx, x0), eq2(ny, y0)};
}

// State s of the metrics at p[2s], p[2s + 1]; branch metric e of a step at b[2e];
// decision group g of a row at d[2g], d[2g + 1].
void one_step(const __m128i* cur, __m128i* nxt, const __m128i* b, const unsigned* off, const unsigned* offc,
              __m128i* d, v2& pend, std::uint64_t step) {
    const v2 zero = {_mm_setzero_si128(), _mm_setzero_si128()};
    v2 acc = zero;
    for (unsigned i = 0; i < 32; ++i) {
        const butterfly_out o = butterfly(load2(cur + 2 * i), load2(cur + 2 * (i + 32)), loadu2(b + off[i]),
                                          loadu2(b + offc[i]));
        store2(nxt + 4 * i, o.lo);
        store2(nxt + 4 * i + 2, o.hi);
        acc = push2(push2(acc, o.dlo), o.dhi);
        if (i % 4 == 3) {
            storeu2(d + 2 * (i / 4), acc);
            acc = zero;
        }
    }
    const unsigned phase = static_cast<unsigned>(step & 7u);
    if (phase == 3) {
        v2 m = load2(nxt);
        for (unsigned s = 1; s < 64; ++s) m = min2(m, load2(nxt + 2 * s));
        pend = m;
    } else if (phase == 7) {
        for (unsigned s = 0; s < 64; ++s) store2(nxt + 2 * s, subs2(load2(nxt + 2 * s), pend));
    }
}

// Two steps with the middle metrics in registers (see lanes_acs_avx2).
template <int mode>
void two_steps(const __m128i* cur, __m128i* nxt, const __m128i* b0, const __m128i* b1, const unsigned* off,
               const unsigned* offc, __m128i* d0, __m128i* d1, v2& pend) {
    const v2 zero = {_mm_setzero_si128(), _mm_setzero_si128()};
    v2 mn = {_mm_set1_epi8(-1), _mm_set1_epi8(-1)};
    v2 acc_p = zero, acc_r = zero, acc_uv = zero;
    for (unsigned q = 0; q < 16; ++q) {
        const butterfly_out p = butterfly(load2(cur + 2 * q), load2(cur + 2 * (q + 32)), loadu2(b0 + off[q]),
                                          loadu2(b0 + offc[q]));
        const butterfly_out r = butterfly(load2(cur + 2 * (q + 16)), load2(cur + 2 * (q + 48)),
                                          loadu2(b0 + off[q + 16]), loadu2(b0 + offc[q + 16]));
        // First step: states 2q, 2q + 1 (group q / 4) and 2q + 32, 2q + 33 (group 4 + q / 4).
        acc_p = push2(push2(acc_p, p.dlo), p.dhi);
        acc_r = push2(push2(acc_r, r.dlo), r.dhi);
        if (q % 4 == 3) {
            storeu2(d0 + 2 * (q / 4), acc_p);
            storeu2(d0 + 2 * (4 + q / 4), acc_r);
            acc_p = zero;
            acc_r = zero;
        }
        butterfly_out u = butterfly(p.lo, r.lo, loadu2(b1 + off[2 * q]), loadu2(b1 + offc[2 * q]));
        butterfly_out v = butterfly(p.hi, r.hi, loadu2(b1 + off[2 * q + 1]), loadu2(b1 + offc[2 * q + 1]));
        // Second step: states 4q .. 4q + 3 (group q / 2).
        acc_uv = push2(push2(push2(push2(acc_uv, u.dlo), u.dhi), v.dlo), v.dhi);
        if (q % 2 == 1) {
            storeu2(d1 + 2 * (q / 2), acc_uv);
            acc_uv = zero;
        }
        if constexpr (mode == 1) {
            mn = min2(mn, min2(min2(u.lo, u.hi), min2(v.lo, v.hi)));
        } else if constexpr (mode == 2) {
            u.lo = subs2(u.lo, pend);
            u.hi = subs2(u.hi, pend);
            v.lo = subs2(v.lo, pend);
            v.hi = subs2(v.hi, pend);
        }
        store2(nxt + 8 * q, u.lo);
        store2(nxt + 8 * q + 2, u.hi);
        store2(nxt + 8 * q + 4, v.lo);
        store2(nxt + 8 * q + 6, v.hi);
    }
    if constexpr (mode == 1) pend = mn;
}

}  // namespace

void lanes_acs_sse41(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                     std::uint8_t* decisions) {
    alignas(32) std::uint8_t buf[64 * n_lanes];
    __m128i* cur = reinterpret_cast<__m128i*>(st.metric);
    __m128i* nxt = reinterpret_cast<__m128i*>(buf);
    unsigned off[32], offc[32];
    for (unsigned i = 0; i < 32; ++i) {
        off[i] = 2u * idx[i];
        offc[i] = 2u * (idx[i] ^ 3u);
    }
    v2 pend = load2(reinterpret_cast<const __m128i*>(st.pending_min));
    std::uint64_t step = st.step;
    auto swap = [&] {
        __m128i* tmp = cur;
        cur = nxt;
        nxt = tmp;
    };
    const auto* b = reinterpret_cast<const __m128i*>(bm);
    // Without a decision buffer the decisions go to a scratch pair of rows.
    __m128i scratch[32];
    auto* dec = reinterpret_cast<__m128i*>(decisions);  // 16 vectors per row
    const std::size_t row_step = decisions ? 16 : 0;
    if (!decisions) dec = scratch;
    std::size_t t = 0;
    if ((step & 1u) && steps) {
        one_step(cur, nxt, b, off, offc, dec, pend, step);
        ++step;
        ++t;
        swap();
    }
    for (; t + 2 <= steps; t += 2, step += 2) {
        const __m128i* b0 = b + 8 * t;
        __m128i* d0 = dec + row_step * t;
        const unsigned phase1 = static_cast<unsigned>((step + 1) & 7u);
        if (phase1 == 3) two_steps<1>(cur, nxt, b0, b0 + 8, off, offc, d0, d0 + 16, pend);
        else if (phase1 == 7) two_steps<2>(cur, nxt, b0, b0 + 8, off, offc, d0, d0 + 16, pend);
        else two_steps<0>(cur, nxt, b0, b0 + 8, off, offc, d0, d0 + 16, pend);
        swap();
    }
    if (t < steps) {
        one_step(cur, nxt, b + 8 * t, off, offc, dec + row_step * t, pend, step);
        ++step;
        swap();
    }
    if (cur != reinterpret_cast<__m128i*>(st.metric)) std::memcpy(st.metric, buf, sizeof buf);
    store2(reinterpret_cast<__m128i*>(st.pending_min), pend);
    st.step = step;
}


namespace {

// The blend traceback of lanes_traceback_avx2 (see there for the state split and the selects),
// each 32-lane vector as two XMM halves (lanes 0..15 and 16..31), traced in the same loop.
struct trace_consts {
    __m128i pow2 = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    __m128i low4 = _mm_set1_epi8(0x0f);
    __m128i low5 = _mm_set1_epi8(0x1f);
    __m128i c16 = _mm_set1_epi8(16);
    __m128i c32 = _mm_set1_epi8(32);
    __m128i c127 = _mm_set1_epi8(127);
};

struct trace_half {
    __m128i base, f;
};

struct trace_state {
    trace_half h[2];
};

inline trace_half split_half(__m128i s, const trace_consts& k) {
    return {_mm_and_si128(s, k.low5), _mm_cmpeq_epi8(_mm_and_si128(s, k.c32), _mm_setzero_si128())};
}

inline __m128i join_half(trace_half t, const trace_consts& k) {
    return _mm_blendv_epi8(_mm_or_si128(t.base, k.c32), t.base, t.f);
}

inline trace_half trace_half_row(const std::uint8_t* row, trace_half t, const trace_consts& k) {
    auto grp = [&](unsigned g) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + g * n_lanes)); };
    const __m128i m3 = _mm_slli_epi16(t.base, 4), m4 = _mm_slli_epi16(t.base, 3);
    const __m128i a0 = _mm_blendv_epi8(grp(0), grp(1), m3);
    const __m128i a1 = _mm_blendv_epi8(grp(2), grp(3), m3);
    const __m128i a2 = _mm_blendv_epi8(grp(4), grp(5), m3);
    const __m128i a3 = _mm_blendv_epi8(grp(6), grp(7), m3);
    const __m128i b0 = _mm_blendv_epi8(a0, a1, m4), b1 = _mm_blendv_epi8(a2, a3, m4);
    const __m128i g = _mm_blendv_epi8(b1, b0, t.f);
    const __m128i bit = _mm_shuffle_epi8(k.pow2, t.base);
    const __m128i f = _mm_adds_epu8(_mm_and_si128(g, bit), k.c127);
    const __m128i half = _mm_and_si128(_mm_srli_epi16(t.base, 1), k.low4);
    return {_mm_blendv_epi8(_mm_or_si128(half, k.c16), half, t.f), f};
}

inline trace_state trace_row(const std::uint8_t* dec, std::size_t u, trace_state t, const trace_consts& k) {
    const std::uint8_t* row = dec + dec_row_bytes * u;
    return {{trace_half_row(row, t.h[0], k), trace_half_row(row + 16, t.h[1], k)}};
}

struct vec32 {
    __m128i h[2];
};

inline trace_state split_state(vec32 s, const trace_consts& k) { return {{split_half(s.h[0], k), split_half(s.h[1], k)}}; }
inline vec32 join_state(const trace_state& t, const trace_consts& k) {
    return {{join_half(t.h[0], k), join_half(t.h[1], k)}};
}
inline vec32 blend32(vec32 a, vec32 b, vec32 m) {
    return {{_mm_blendv_epi8(a.h[0], b.h[0], m.h[0]), _mm_blendv_epi8(a.h[1], b.h[1], m.h[1])}};
}
inline vec32 load32(const std::uint8_t* m) {
    return {{_mm_loadu_si128(reinterpret_cast<const __m128i*>(m)), _mm_loadu_si128(reinterpret_cast<const __m128i*>(m + 16))}};
}

// Byte lanes whose value in `v` equals b, as a blend mask.
inline vec32 lanes_at(const std::uint32_t* v, std::uint32_t b) {
    std::uint8_t m[n_lanes];
    for (unsigned l = 0; l < n_lanes; ++l) m[l] = v[l] == b ? 0xff : 0;
    return load32(m);
}

inline vec32 bytes_of(const std::uint32_t* v) {
    std::uint8_t m[n_lanes];
    for (unsigned l = 0; l < n_lanes; ++l) m[l] = static_cast<std::uint8_t>(v[l]);
    return load32(m);
}

// 32 rows of lane bit words (slot i = row 32k + 31 - i, bit L = lane L) -> one word per lane
// (row 32k + i in bit 31 - i): per 16 slots and lane byte, a byte gather then 8 movemasks.
void store_words(const std::uint32_t* slots, std::uint32_t* out) {
    const __m128i by_byte = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    std::uint32_t w[n_lanes] = {};
    for (unsigned s = 0; s < 2; ++s) {
        __m128i v[4];
        for (unsigned m = 0; m < 4; ++m)  // dword b of v[m]: byte b of slots 16s + 4m .. 16s + 4m + 3
            v[m] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(slots + 16 * s + 4 * m)), by_byte);
        const __m128i t0 = _mm_unpacklo_epi32(v[0], v[1]), t1 = _mm_unpackhi_epi32(v[0], v[1]);
        const __m128i t2 = _mm_unpacklo_epi32(v[2], v[3]), t3 = _mm_unpackhi_epi32(v[2], v[3]);
        // x[b] byte i: byte b (lanes 8b .. 8b + 7) of slot 16s + i.
        const __m128i x[4] = {_mm_unpacklo_epi64(t0, t2), _mm_unpackhi_epi64(t0, t2), _mm_unpacklo_epi64(t1, t3),
                              _mm_unpackhi_epi64(t1, t3)};
        for (unsigned b = 0; b < 4; ++b) {
            auto put = [&](unsigned bitpos, __m128i y) {
                w[8 * b + bitpos] |= static_cast<std::uint32_t>(_mm_movemask_epi8(y)) << (16 * s);
            };
            put(7, x[b]);
            put(6, _mm_slli_epi16(x[b], 1));
            put(5, _mm_slli_epi16(x[b], 2));
            put(4, _mm_slli_epi16(x[b], 3));
            put(3, _mm_slli_epi16(x[b], 4));
            put(2, _mm_slli_epi16(x[b], 5));
            put(1, _mm_slli_epi16(x[b], 6));
            put(0, _mm_slli_epi16(x[b], 7));
        }
    }
    std::memcpy(out, w, sizeof w);
}

}  // namespace

void lanes_traceback_sse41(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words) {
    const trace_consts k;
    const vec32 zero{{_mm_setzero_si128(), _mm_setzero_si128()}};
    std::uint8_t captured[n_lanes] = {};
    // Tail pass.
    lanes_tail_events te;
    lanes_tail_events_of(plan, te);
    if (te.hi > 0) {
        const vec32 start = bytes_of(plan.tail_state);
        trace_state t = split_state(zero, k);
        vec32 cap = zero;
        std::uint32_t b = te.hi;
        for (unsigned e = 0; e < te.n; ++e) {
            for (; b > te.ev[e]; --b) t = trace_row(dec, b - 1, t, k);
            const vec32 s = blend32(join_state(t, k), start, lanes_at(te.hi_masked, b));
            cap = blend32(cap, s, lanes_at(te.lo_masked, b));
            t = split_state(s, k);
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(captured), cap.h[0]);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(captured + 16), cap.h[1]);
    }
    // Own pass.
    lanes_own_events oe;
    lanes_own_events_of(plan, captured, oe);
    if (oe.top <= plan.bottom) return;
    const vec32 start = bytes_of(oe.start);
    std::uint32_t slots[32] = {};
    trace_state t = split_state(zero, k);
    std::uint32_t b = oe.top;
    for (unsigned e = 0; e < oe.n; ++e) {
        for (; b > oe.ev[e]; --b) {
            const std::uint32_t u = b - 1;
            slots[31 - (u & 31)] = static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(t.h[0].base, 7))) |
                                   static_cast<std::uint32_t>(_mm_movemask_epi8(_mm_slli_epi16(t.h[1].base, 7))) << 16;
            t = trace_row(dec, u, t, k);
            if ((u & 31) == 0) {
                store_words(slots, words + n_lanes * static_cast<std::size_t>(u >> 5));
                std::fill(slots, slots + 32, 0u);
            }
        }
        if (b > plan.bottom) t = split_state(blend32(join_state(t, k), start, lanes_at(plan.own_top, b)), k);
    }
    if (plan.bottom & 31) store_words(slots, words + n_lanes * static_cast<std::size_t>(plan.bottom >> 5));
}

}  // namespace qlink::modem::conv_detail
