// AVX2 across-lanes Viterbi kernels: one YMM register = one state of 32 independent trellises.
#include "viterbi_lanes.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace qlink::modem::conv_detail {

void lanes_branch_avx2(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    const __m256i floor = _mm256_set1_epi8(-127);
    const __m256i zero = _mm256_setzero_si256();
    const __m256i low6 = _mm256_set1_epi8(0x3f);
    for (std::size_t t = 0; t < steps; ++t) {
        const auto* p = reinterpret_cast<const __m256i*>(pairs + t * 2 * n_lanes);
        const __m256i l0 = _mm256_max_epi8(_mm256_loadu_si256(p), floor);
        const __m256i l1 = _mm256_max_epi8(_mm256_loadu_si256(p + 1), floor);
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

void lanes_transpose_avx2(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst) {
    std::size_t t = 0;
    // 8 steps of 32 lanes at a time: two 16 x 16 byte transposes (lanes 0..15
    // in the low halves, 16..31 in the high halves) in four rounds of unpacks.
    for (; t + 8 <= k; t += 8) {
        __m256i r[16], a[16];
        for (unsigned i = 0; i < 16; ++i)
            r[i] = _mm256_inserti128_si256(
                _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src[i] + 2 * (c + t)))),
                _mm_loadu_si128(reinterpret_cast<const __m128i*>(src[i + 16] + 2 * (c + t))), 1);
        // Round 1: lanes 2i, 2i + 1 byte-interleaved; a[2i]: bytes 0..7, a[2i + 1]: bytes 8..15.
        for (unsigned i = 0; i < 8; ++i) {
            a[2 * i] = _mm256_unpacklo_epi8(r[2 * i], r[2 * i + 1]);
            a[2 * i + 1] = _mm256_unpackhi_epi8(r[2 * i], r[2 * i + 1]);
        }
        // Round 2: lanes 4j .. 4j + 3; r[4j + h]: bytes 4h .. 4h + 3.
        for (unsigned j = 0; j < 4; ++j)
            for (unsigned h = 0; h < 2; ++h) {
                r[4 * j + 2 * h] = _mm256_unpacklo_epi16(a[4 * j + h], a[4 * j + 2 + h]);
                r[4 * j + 2 * h + 1] = _mm256_unpackhi_epi16(a[4 * j + h], a[4 * j + 2 + h]);
            }
        // Round 3: lanes 8j .. 8j + 7; a[8j + h]: bytes 2h, 2h + 1.
        for (unsigned j = 0; j < 2; ++j)
            for (unsigned h = 0; h < 4; ++h) {
                a[8 * j + 2 * h] = _mm256_unpacklo_epi32(r[8 * j + h], r[8 * j + 4 + h]);
                a[8 * j + 2 * h + 1] = _mm256_unpackhi_epi32(r[8 * j + h], r[8 * j + 4 + h]);
            }
        // Round 4: all 16 lanes; byte b = symbol b % 2 of step t + b / 2.
        auto* o = reinterpret_cast<__m256i*>(dst + 2 * n_lanes * t);
        for (unsigned h = 0; h < 8; ++h) {
            _mm256_storeu_si256(o + 2 * h, _mm256_unpacklo_epi64(a[h], a[8 + h]));
            _mm256_storeu_si256(o + 2 * h + 1, _mm256_unpackhi_epi64(a[h], a[8 + h]));
        }
    }
    if (t < k) lanes_transpose_generic(src, c + t, k - t, dst + 2 * n_lanes * t);
}

namespace {

// Appends one decision mask (0x00 / 0xff bytes) to bytes of 8 decision bits:
// the k-th of 8 appends ends in bit k - 1 (pavgb halves and puts the mask's
// bit on top; the rounding term stays 0 until a 9th append).
__attribute__((always_inline)) inline __m256i push(__m256i acc, __m256i mask) { return _mm256_avg_epu8(acc, mask); }

struct butterfly_out {
    __m256i lo, hi;    // new states 2i, 2i + 1
    __m256i dlo, dhi;  // their decision masks
};

__attribute__((always_inline)) inline butterfly_out butterfly(__m256i m0, __m256i m1, __m256i bv, __m256i bc) {
    const __m256i x0 = _mm256_adds_epu8(m0, bv), x1 = _mm256_adds_epu8(m1, bc);
    const __m256i y0 = _mm256_adds_epu8(m0, bc), y1 = _mm256_adds_epu8(m1, bv);
    const __m256i nx = _mm256_min_epu8(x0, x1), ny = _mm256_min_epu8(y0, y1);
    return {nx, ny, _mm256_cmpeq_epi8(nx, x0), _mm256_cmpeq_epi8(ny, y0)};
}

__attribute__((always_inline)) inline void store_dec(__m256i* d, unsigned g, __m256i acc) {
    _mm256_storeu_si256(d + g, acc);
}

// One step; renormalisation by the step counter as in acs_generic. d: the row's 8 decision groups.
void one_step(const __m256i* cur, __m256i* nxt, const __m256i* b, const unsigned* off, const unsigned* offc,
              __m256i* d, __m256i& pend, std::uint64_t step) {
    __m256i acc = _mm256_setzero_si256();
    for (unsigned i = 0; i < 32; ++i) {
        const butterfly_out o = butterfly(_mm256_load_si256(cur + i), _mm256_load_si256(cur + i + 32),
                                          _mm256_loadu_si256(b + off[i]), _mm256_loadu_si256(b + offc[i]));
        _mm256_store_si256(nxt + 2 * i, o.lo);
        _mm256_store_si256(nxt + 2 * i + 1, o.hi);
        acc = push(push(acc, o.dlo), o.dhi);  // states 2i, 2i + 1: group i / 4
        if (i % 4 == 3) {
            store_dec(d, i / 4, acc);
            acc = _mm256_setzero_si256();
        }
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
// (phase 3), 2 subtract the pending minimum (phase 7). Decisions: step t's
// states 2q, 2q + 1 go to group q / 4 and 2q + 32, 2q + 33 to group
// 4 + q / 4; step t + 1's states 4q .. 4q + 3 to group q / 2.
template <int mode>
void two_steps(const __m256i* cur, __m256i* nxt, const __m256i* b0, const __m256i* b1, const unsigned* off,
               const unsigned* offc, __m256i* d0, __m256i* d1, __m256i& pend) {
    __m256i mn = _mm256_set1_epi8(-1);
    __m256i acc_p = _mm256_setzero_si256(), acc_r = acc_p, acc_uv = acc_p;
    for (unsigned q = 0; q < 16; ++q) {
        const butterfly_out p = butterfly(_mm256_load_si256(cur + q), _mm256_load_si256(cur + q + 32),
                                          _mm256_loadu_si256(b0 + off[q]), _mm256_loadu_si256(b0 + offc[q]));
        const butterfly_out r = butterfly(_mm256_load_si256(cur + q + 16), _mm256_load_si256(cur + q + 48),
                                          _mm256_loadu_si256(b0 + off[q + 16]), _mm256_loadu_si256(b0 + offc[q + 16]));
        acc_p = push(push(acc_p, p.dlo), p.dhi);
        acc_r = push(push(acc_r, r.dlo), r.dhi);
        if (q % 4 == 3) {
            store_dec(d0, q / 4, acc_p);
            store_dec(d0, 4 + q / 4, acc_r);
            acc_p = _mm256_setzero_si256();
            acc_r = acc_p;
        }
        butterfly_out u = butterfly(p.lo, r.lo, _mm256_loadu_si256(b1 + off[2 * q]), _mm256_loadu_si256(b1 + offc[2 * q]));
        butterfly_out v = butterfly(p.hi, r.hi, _mm256_loadu_si256(b1 + off[2 * q + 1]),
                                    _mm256_loadu_si256(b1 + offc[2 * q + 1]));
        acc_uv = push(push(push(push(acc_uv, u.dlo), u.dhi), v.dlo), v.dhi);
        if (q % 2 == 1) {
            store_dec(d1, q / 2, acc_uv);
            acc_uv = _mm256_setzero_si256();
        }
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
constexpr unsigned can_label(unsigned i) { return lanes_can_label(i); }

struct step_bm {
    __m256i v[4];  // branch metric vectors in canonical label order
    __m256i n[4];  // 255 - v
};

__attribute__((always_inline)) inline step_bm load_bm(const __m256i* b, const unsigned* m) {
    step_bm r;
    const __m256i ones = _mm256_set1_epi8(-1);
    for (unsigned c = 0; c < 4; ++c) {
        r.v[c] = _mm256_loadu_si256(b + m[c]);
        r.n[c] = _mm256_xor_si256(r.v[c], ones);
    }
    return r;
}

// Saturating byte add m + b. Zen 3 runs vpaddusb and vpavgb on two of its four
// vector ALU pipes only (measured: 2 per cycle, shared; vpminub, vpaddb,
// vpcmpeqb: 4), and they are 6 of a butterfly's 10 operations. alt: the same
// sum as min(m, 255 - b) + b, two operations any of the four pipes runs
// (m + b > 255 exactly when m > 255 - b, then the sum is 255).
template <bool alt>
__attribute__((always_inline)) inline __m256i sat_add(__m256i m, __m256i b, __m256i nb) {
    if constexpr (alt) return _mm256_add_epi8(_mm256_min_epu8(m, nb), b);
    else return _mm256_adds_epu8(m, b);
}

// Butterfly i of one step with constant labels; its two decision masks are
// appended to acc. alt: x1 = m1 + bc through sat_add<true>. Used for 2 of a
// quad's 4 butterflies: ACS microbenchmark (best of 3000, alternating builds)
// 9.91 -> 9.82 us per 304 steps, ~1 %; an experimental build gave 9.72, and
// 9.78 with 1 of 4, 9.88 with 3 of 4 (more ops than pipe time saved).
template <unsigned i, bool keep, bool alt = false>
__attribute__((always_inline)) inline void fly(__m256i m0, __m256i m1, const step_bm& b, __m256i& lo, __m256i& hi,
                                              __m256i& acc) {
    constexpr unsigned cv = can_label(i), cc = can_label(i) ^ 3u;
    const __m256i x0 = _mm256_adds_epu8(m0, b.v[cv]), x1 = sat_add<alt>(m1, b.v[cc], b.n[cc]);
    const __m256i y0 = _mm256_adds_epu8(m0, b.v[cc]), y1 = _mm256_adds_epu8(m1, b.v[cv]);
    lo = _mm256_min_epu8(x0, x1);
    hi = _mm256_min_epu8(y0, y1);
    if constexpr (keep) acc = push(push(acc, _mm256_cmpeq_epi8(lo, x0)), _mm256_cmpeq_epi8(hi, y0));
}

struct dec_acc {
    __m256i p, r, uv;  // see two_steps
};

template <int mode, bool keep, unsigned q>
__attribute__((always_inline)) inline void quad_fast(const __m256i* cur, __m256i* nxt, const step_bm& b0,
                                                    const step_bm& b1, __m256i* d0, __m256i* d1, __m256i pend,
                                                    dec_acc& acc) {
    __m256i p_lo, p_hi, r_lo, r_hi, u_lo, u_hi, v_lo, v_hi;
    if constexpr (q % 4 == 0) acc.p = acc.r = _mm256_setzero_si256();
    if constexpr (q % 2 == 0) acc.uv = _mm256_setzero_si256();
    fly<q, keep, true>(_mm256_load_si256(cur + q), _mm256_load_si256(cur + q + 32), b0, p_lo, p_hi, acc.p);
    fly<q + 16, keep, true>(_mm256_load_si256(cur + q + 16), _mm256_load_si256(cur + q + 48), b0, r_lo, r_hi,
                            acc.r);
    if constexpr (keep && q % 4 == 3) {
        store_dec(d0, q / 4, acc.p);
        store_dec(d0, 4 + q / 4, acc.r);
    }
    fly<2 * q, keep>(p_lo, r_lo, b1, u_lo, u_hi, acc.uv);
    fly<2 * q + 1, keep>(p_hi, r_hi, b1, v_lo, v_hi, acc.uv);
    if constexpr (keep && q % 2 == 1) store_dec(d1, q / 2, acc.uv);
    if constexpr (mode == 2) {
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

template <int mode, bool keep, unsigned... q>
__attribute__((always_inline)) inline void two_steps_fast_impl(const __m256i* cur, __m256i* nxt, const step_bm& b0,
                                                              const step_bm& b1, __m256i* d0, __m256i* d1,
                                                              __m256i pend, std::integer_sequence<unsigned, q...>) {
    dec_acc acc;
    (quad_fast<mode, keep, q>(cur, nxt, b0, b1, d0, d1, pend, acc), ...);
}

// Two steps; mode 2: less the pending minimum after the second (phase 7),
// mode 0: nothing (the phase 3 minimum is min_pass). keep = false: the same
// metrics, no decisions computed or stored (rows no traceback reads). Not
// inlined and 64-byte aligned: inlined into lanes_acs_avx2, the speed of
// identical code moved by ~12 % with where the linker happened to place that
// function after unrelated changes elsewhere.
template <int mode, bool keep>
__attribute__((noinline, aligned(64))) void two_steps_fast(const __m256i* cur, __m256i* nxt, const __m256i* b,
                                                           const unsigned* m, __m256i* d0, __m256i pend) {
    const step_bm b0 = load_bm(b, m), b1 = load_bm(b + 4, m);
    two_steps_fast_impl<mode, keep>(cur, nxt, b0, b1, d0, d0 + 8, pend, std::make_integer_sequence<unsigned, 16>{});
}

// Phase 3 of the renormalisation: the smallest of the 64 metrics, per lane.
__m256i min_pass(const __m256i* v) {
    __m256i a = _mm256_min_epu8(v[0], v[1]), c = _mm256_min_epu8(v[2], v[3]);
    for (unsigned s = 4; s < 64; s += 4) {
        a = _mm256_min_epu8(a, _mm256_min_epu8(v[s], v[s + 1]));
        c = _mm256_min_epu8(c, _mm256_min_epu8(v[s + 2], v[s + 3]));
    }
    return _mm256_min_epu8(a, c);
}


constexpr auto can_labels = [] {
    std::array<std::uint8_t, 32> t{};
    for (unsigned i = 0; i < 32; ++i) t[i] = static_cast<std::uint8_t>(can_label(i));
    return t;
}();

// The relabelling m with idx[i] == m[can_label(i)] for every i, if there is one. Runs once per
// kernel call (every <= 64 steps), so the labels come from a table.
bool canonical_map(const std::uint8_t* idx, unsigned* m) {
    bool seen[4] = {};
    for (unsigned i = 0; i < 32; ++i) {
        const unsigned c = can_labels[i];
        if (seen[c] && m[c] != idx[i]) return false;
        seen[c] = true;
        m[c] = idx[i] & 3u;
    }
    for (unsigned c = 0; c < 4; ++c)
        if (!seen[c] || m[c ^ 3u] != (m[c] ^ 3u)) return false;
    return true;
}

// canonical_map through the state's cache (1: fast path with map, 2: none).
bool canonical_map_cached(lanes_state& st, const std::uint8_t* idx, unsigned* m) {
    const __m256i key = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(idx));
    const __m256i old = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.cache_idx));
    if (st.cache == 0 || _mm256_movemask_epi8(_mm256_cmpeq_epi8(key, old)) != -1) {
        const bool ok = canonical_map(idx, m);
        _mm256_store_si256(reinterpret_cast<__m256i*>(st.cache_idx), key);
        for (unsigned c = 0; c < 4; ++c) st.cache_map[c] = static_cast<std::uint8_t>(ok ? m[c] : 0);
        st.cache = ok ? 1 : 2;
        return ok;
    }
    for (unsigned c = 0; c < 4; ++c) m[c] = st.cache_map[c];
    return st.cache == 1;
}

}  // namespace

bool lanes_canonical_map_avx2(lanes_state& st, const std::uint8_t* idx, unsigned* m) {
    return canonical_map_cached(st, idx, m);
}

void lanes_acs_avx2(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                    std::uint8_t* decisions) {
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
    // Without a decision buffer the slow paths write theirs to a scratch pair of rows.
    const bool keep = decisions != nullptr;
    __m256i scratch[16];
    auto* dec = reinterpret_cast<__m256i*>(decisions);  // 8 vectors per row
    auto drow = [&](std::size_t t) { return keep ? dec + 8 * t : scratch; };
    std::size_t t = 0;
    if ((step & 1u) && steps) {
        one_step(cur, nxt, b, off, offc, drow(0), pend, step);
        ++step;
        ++t;
        swap();
    }
    unsigned m[4];
    if (canonical_map_cached(st, idx, m)) {
        for (; t + 2 <= steps; t += 2, step += 2) {
            __m256i* d0 = drow(t);
            const unsigned phase1 = static_cast<unsigned>((step + 1) & 7u);
            // The subtraction (phase 7) is folded into the 2-step, before its
            // stores; the minimum (phase 3) is a pass that only loads. Both
            // folded (three variants per keep) took ~4 % more ACS time (code
            // size is the suspect, not proven), both as passes also ~4 % (the
            // subtraction pass stores all 64 metrics again). Microbenchmark
            // of this kernel, best of 3000 runs, alternating builds.
            if (keep) {
                if (phase1 == 7) two_steps_fast<2, true>(cur, nxt, b + 4 * t, m, d0, pend);
                else two_steps_fast<0, true>(cur, nxt, b + 4 * t, m, d0, pend);
            } else {
                if (phase1 == 7) two_steps_fast<2, false>(cur, nxt, b + 4 * t, m, d0, pend);
                else two_steps_fast<0, false>(cur, nxt, b + 4 * t, m, d0, pend);
            }
            if (phase1 == 3) pend = min_pass(nxt);
            swap();
        }
    }
    for (; t + 2 <= steps; t += 2, step += 2) {
        const __m256i* b0 = b + 4 * t;
        __m256i* d0 = drow(t);
        const unsigned phase1 = static_cast<unsigned>((step + 1) & 7u);
        if (phase1 == 3) two_steps<1>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 8, pend);
        else if (phase1 == 7) two_steps<2>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 8, pend);
        else two_steps<0>(cur, nxt, b0, b0 + 4, off, offc, d0, d0 + 8, pend);
        swap();
    }
    if (t < steps) {
        one_step(cur, nxt, b + 4 * t, off, offc, drow(t), pend, step);
        ++step;
        swap();
    }
    if (cur != reinterpret_cast<__m256i*>(st.metric)) std::memcpy(st.metric, buf, sizeof buf);
    _mm256_store_si256(reinterpret_cast<__m256i*>(st.pending_min), pend);
    st.step = step;
}

namespace {

// One traceback step of all 32 lanes (one per byte) over one decision row.
// A lane's state s (0..63) is carried split: idx = s & 7 and three flag
// bytes f5, f4, f3 whose bit 7 is set when state bit 5, 4, 3 is clear. Each
// lane's group byte is selected by bits 3, 4, 5 (three levels of blends on
// the flags) and its bit by idx (a byte shuffle). A step shifts the state
// right by one and puts the decision on top, so the next step's f4 and f3 are
// this step's f5 and f4, and its f5 is the decision just read: the flags need
// no shifts to form blend masks, and the loop-carried chain is ~3
// single-cycle operations per row. No gathers. (Blends, shifts and shuffles
// share two of Zen 3's four vector pipes; this form needs 9 of them per row
// instead of 12.)
struct trace_consts {
    __m256i pow2 = _mm256_setr_epi8(1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32, 64, -128, 1, 2, 4, 8, 16, 32,
                                    64, -128, 1, 2, 4, 8, 16, 32, 64, -128);
    __m256i low2 = _mm256_set1_epi8(3);
    __m256i low3 = _mm256_set1_epi8(7);
    __m256i c4 = _mm256_set1_epi8(4);
    __m256i c8 = _mm256_set1_epi8(8);
    __m256i c16 = _mm256_set1_epi8(16);
    __m256i c32 = _mm256_set1_epi8(32);
    __m256i c127 = _mm256_set1_epi8(127);
};

struct trace_state {
    __m256i idx, f5, f4, f3;
};

__attribute__((always_inline)) inline trace_state split_state(__m256i s, const trace_consts& k) {
    const __m256i zero = _mm256_setzero_si256();
    return {_mm256_and_si256(s, k.low3), _mm256_cmpeq_epi8(_mm256_and_si256(s, k.c32), zero),
            _mm256_cmpeq_epi8(_mm256_and_si256(s, k.c16), zero), _mm256_cmpeq_epi8(_mm256_and_si256(s, k.c8), zero)};
}

__attribute__((always_inline)) inline __m256i join_state(trace_state t, const trace_consts& k) {
    // A flag byte is 0x00 or has bit 7 set; only bit 7 counts, so test it with a blend.
    const __m256i hi = _mm256_or_si256(
        _mm256_blendv_epi8(k.c32, _mm256_setzero_si256(), t.f5),
        _mm256_or_si256(_mm256_blendv_epi8(k.c16, _mm256_setzero_si256(), t.f4),
                        _mm256_blendv_epi8(k.c8, _mm256_setzero_si256(), t.f3)));
    return _mm256_or_si256(t.idx, hi);
}

__attribute__((always_inline)) inline trace_state trace_row(const std::uint8_t* dec, std::size_t u, trace_state t,
                                                           const trace_consts& k) {
    const auto* row = reinterpret_cast<const __m256i*>(dec + dec_row_bytes * u);
    // f3 set: state bit 3 clear, the even group of each pair.
    const __m256i a0 = _mm256_blendv_epi8(_mm256_loadu_si256(row + 1), _mm256_loadu_si256(row + 0), t.f3);
    const __m256i a1 = _mm256_blendv_epi8(_mm256_loadu_si256(row + 3), _mm256_loadu_si256(row + 2), t.f3);
    const __m256i a2 = _mm256_blendv_epi8(_mm256_loadu_si256(row + 5), _mm256_loadu_si256(row + 4), t.f3);
    const __m256i a3 = _mm256_blendv_epi8(_mm256_loadu_si256(row + 7), _mm256_loadu_si256(row + 6), t.f3);
    const __m256i b0 = _mm256_blendv_epi8(a1, a0, t.f4), b1 = _mm256_blendv_epi8(a3, a2, t.f4);
    const __m256i g = _mm256_blendv_epi8(b1, b0, t.f5);  // f5 set: bit 5 clear, groups 0..3
    const __m256i bit = _mm256_shuffle_epi8(k.pow2, t.idx);  // 1 << (s & 7)
    // Nonzero (bit set) -> >= 128: bit 7 is the decision (set: the predecessor without the high bit).
    const __m256i f = _mm256_adds_epu8(_mm256_and_si256(g, bit), k.c127);
    // (s >> 1) & 7: bits 1, 2 of idx and state bit 3 (f3 clear) into bit 2. 16-bit shift: idx < 8 leaks nothing.
    const __m256i half = _mm256_and_si256(_mm256_srli_epi16(t.idx, 1), k.low2);
    return {_mm256_or_si256(half, _mm256_andnot_si256(_mm256_cmpgt_epi8(_mm256_setzero_si256(), t.f3), k.c4)), f,
            t.f5, t.f4};
}

// Byte lanes whose value in `v` equals b, as a blend mask.
__attribute__((always_inline)) inline __m256i lanes_at(const std::uint32_t* v, std::uint32_t b) {
    alignas(32) std::uint8_t m[n_lanes];
    for (unsigned l = 0; l < n_lanes; ++l) m[l] = v[l] == b ? 0xff : 0;
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

__attribute__((always_inline)) inline __m256i bytes_of(const std::uint32_t* v) {
    alignas(32) std::uint8_t m[n_lanes];
    for (unsigned l = 0; l < n_lanes; ++l) m[l] = static_cast<std::uint8_t>(v[l]);
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(m));
}

// 32 rows of lane bit words (slot i = row 32k + 31 - i, bit L = lane L) ->
// one word per lane (row 32k + i in bit 31 - i): a 32 x 32 bit transpose as a
// byte transpose followed by 32 movemasks.
void store_words(const std::uint32_t* slots, std::uint32_t* out) {
    const __m256i by_byte = _mm256_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5,
                                             9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    const __m256i pair = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    __m256i v[4];
    for (unsigned m = 0; m < 4; ++m)  // qword b of v[m]: byte b of slots 8m .. 8m + 7
        v[m] = _mm256_permutevar8x32_epi32(
            _mm256_shuffle_epi8(_mm256_load_si256(reinterpret_cast<const __m256i*>(slots + 8 * m)), by_byte), pair);
    const __m256i t0 = _mm256_unpacklo_epi64(v[0], v[1]), t1 = _mm256_unpackhi_epi64(v[0], v[1]);
    const __m256i t2 = _mm256_unpacklo_epi64(v[2], v[3]), t3 = _mm256_unpackhi_epi64(v[2], v[3]);
    const __m256i x[4] = {_mm256_permute2x128_si256(t0, t2, 0x20), _mm256_permute2x128_si256(t1, t3, 0x20),
                          _mm256_permute2x128_si256(t0, t2, 0x31), _mm256_permute2x128_si256(t1, t3, 0x31)};
    for (unsigned b = 0; b < 4; ++b) {  // x[b] byte i: byte b (lanes 8b .. 8b + 7) of slot i
        out[8 * b + 7] = static_cast<std::uint32_t>(_mm256_movemask_epi8(x[b]));
        out[8 * b + 6] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 1)));
        out[8 * b + 5] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 2)));
        out[8 * b + 4] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 3)));
        out[8 * b + 3] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 4)));
        out[8 * b + 2] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 5)));
        out[8 * b + 1] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 6)));
        out[8 * b + 0] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(x[b], 7)));
    }
}

}  // namespace

void lanes_traceback_avx2(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words) {
    const trace_consts k;
    alignas(32) std::uint8_t captured[n_lanes] = {};
    // Tail pass.
    lanes_tail_events te;
    lanes_tail_events_of(plan, te);
    if (te.hi > 0) {
        const __m256i start = bytes_of(plan.tail_state);
        trace_state t = split_state(_mm256_setzero_si256(), k);
        __m256i cap = _mm256_setzero_si256();
        std::uint32_t b = te.hi;
        for (unsigned e = 0; e < te.n; ++e) {
            for (; b > te.ev[e]; --b) t = trace_row(dec, b - 1, t, k);
            const __m256i s = _mm256_blendv_epi8(join_state(t, k), start, lanes_at(te.hi_masked, b));
            cap = _mm256_blendv_epi8(cap, s, lanes_at(te.lo_masked, b));
            t = split_state(s, k);
        }
        _mm256_store_si256(reinterpret_cast<__m256i*>(captured), cap);
    }
    // Own pass.
    lanes_own_events oe;
    lanes_own_events_of(plan, captured, oe);
    if (oe.top <= plan.bottom) return;
    const __m256i start = bytes_of(oe.start);
    alignas(32) std::uint32_t slots[32] = {};
    trace_state t = split_state(_mm256_setzero_si256(), k);
    std::uint32_t b = oe.top;
    for (unsigned e = 0; e < oe.n; ++e) {
        for (; b > oe.ev[e]; --b) {
            const std::uint32_t u = b - 1;
            slots[31 - (u & 31)] = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_slli_epi16(t.idx, 7)));
            t = trace_row(dec, u, t, k);
            if ((u & 31) == 0) {
                store_words(slots, words + n_lanes * static_cast<std::size_t>(u >> 5));
                std::fill(slots, slots + 32, 0u);
            }
        }
        if (b > plan.bottom) t = split_state(_mm256_blendv_epi8(join_state(t, k), start, lanes_at(plan.own_top, b)), k);
    }
    if (plan.bottom & 31) store_words(slots, words + n_lanes * static_cast<std::size_t>(plan.bottom >> 5));
}

}  // namespace qlink::modem::conv_detail
