// Generic (scalar) across-lanes Viterbi kernels: the reference the SIMD lane kernels must equal bit for bit.
#include "viterbi_lanes.hpp"

#include <algorithm>
#include <cstring>

namespace qlink::modem::conv_detail {

void lanes_branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    for (std::size_t t = 0; t < steps; ++t) {
        for (unsigned l = 0; l < n_lanes; ++l) {
            const int l0 = std::max<int>(pairs[2 * n_lanes * t + l], -127);
            const int l1 = std::max<int>(pairs[2 * n_lanes * t + n_lanes + l], -127);
            const int p0 = std::max(l0, 0), q0 = std::max(-l0, 0);
            const int p1 = std::max(l1, 0), q1 = std::max(-l1, 0);
            std::uint8_t* b = bm + t * 4 * n_lanes + l;
            b[0 * n_lanes] = static_cast<std::uint8_t>((q0 + q1) >> 2);
            b[1 * n_lanes] = static_cast<std::uint8_t>((q0 + p1) >> 2);
            b[2 * n_lanes] = static_cast<std::uint8_t>((p0 + q1) >> 2);
            b[3 * n_lanes] = static_cast<std::uint8_t>((p0 + p1) >> 2);
        }
    }
}

void lanes_transpose_generic(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst) {
    for (std::size_t t = 0; t < k; ++t)
        for (unsigned l = 0; l < n_lanes; ++l) {
            dst[2 * n_lanes * t + l] = src[l][2 * (c + t)];
            dst[2 * n_lanes * t + n_lanes + l] = src[l][2 * (c + t) + 1];
        }
}

void lanes_acs_generic(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                       std::uint8_t* decisions) {
    auto sat = [](unsigned a, unsigned b) { return static_cast<std::uint8_t>(std::min(a + b, 255u)); };
    std::uint8_t next[64 * n_lanes];
    for (std::size_t t = 0; t < steps; ++t) {
        const std::uint8_t* b = bm + t * 4 * n_lanes;
        alignas(32) std::uint8_t scratch[dec_row_bytes];
        std::uint8_t* d = decisions ? decisions + t * dec_row_bytes : scratch;
        std::memset(d, 0, dec_row_bytes);
        for (unsigned i = 0; i < 32; ++i) {
            const std::uint8_t* bmv = b + idx[i] * n_lanes;
            const std::uint8_t* bmc = b + (idx[i] ^ 3u) * n_lanes;
            // New states 2i and 2i + 1: group i / 4, bits 2 (i % 4) and 2 (i % 4) + 1.
            std::uint8_t* dx = d + (i / 4) * n_lanes;
            const unsigned bx = 2 * (i % 4);
            for (unsigned l = 0; l < n_lanes; ++l) {
                const std::uint8_t m0 = st.metric[i * n_lanes + l], m1 = st.metric[(i + 32) * n_lanes + l];
                const std::uint8_t x0 = sat(m0, bmv[l]), x1 = sat(m1, bmc[l]);
                const std::uint8_t y0 = sat(m0, bmc[l]), y1 = sat(m1, bmv[l]);
                next[2 * i * n_lanes + l] = std::min(x0, x1);
                next[(2 * i + 1) * n_lanes + l] = std::min(y0, y1);
                dx[l] = static_cast<std::uint8_t>(dx[l] | ((x0 <= x1) << bx) | ((y0 <= y1) << (bx + 1)));
            }
        }
        std::memcpy(st.metric, next, sizeof next);
        const unsigned phase = static_cast<unsigned>(st.step & 7u);
        if (phase == 3) {
            for (unsigned l = 0; l < n_lanes; ++l) {
                std::uint8_t m = 255;
                for (unsigned s = 0; s < 64; ++s) m = std::min(m, st.metric[s * n_lanes + l]);
                st.pending_min[l] = m;
            }
        } else if (phase == 7) {
            for (unsigned s = 0; s < 64; ++s)
                for (unsigned l = 0; l < n_lanes; ++l) {
                    std::uint8_t& m = st.metric[s * n_lanes + l];
                    m = static_cast<std::uint8_t>(m - std::min(m, st.pending_min[l]));
                }
        }
        ++st.step;
    }
}

namespace {

// Decision bit of lane l's state s in a row: 1 = the predecessor without the high bit.
unsigned dec_bit(const std::uint8_t* row, unsigned l, unsigned s) {
    return (row[(s >> 3) * n_lanes + l] >> (s & 7u)) & 1u;
}

unsigned trace_back_one(const std::uint8_t* row, unsigned l, unsigned s) {
    return (s >> 1) | ((dec_bit(row, l, s) ^ 1u) << 5);
}

}  // namespace

namespace {

// Inserts b into the descending list ev[0, n) unless it is there; returns the new count.
unsigned insert_desc(std::uint32_t* ev, unsigned n, std::uint32_t b) {
    unsigned i = 0;
    while (i < n && ev[i] > b) ++i;
    if (i < n && ev[i] == b) return n;
    for (unsigned j = n; j > i; --j) ev[j] = ev[j - 1];
    ev[i] = b;
    return n + 1;
}

// Adds the values v[l] (lanes with use[l]) that lie in (lo, hi] to the descending list.
unsigned collect(const std::uint32_t* v, const bool* use, std::uint32_t lo, std::uint32_t hi, std::uint32_t* ev,
                 unsigned n) {
    for (unsigned l = 0; l < n_lanes; ++l)
        if (use[l] && v[l] > lo && v[l] <= hi) n = insert_desc(ev, n, v[l]);
    return n;
}

}  // namespace

void lanes_tail_events_of(const lanes_trace_plan& plan, lanes_tail_events& e) {
    bool active[n_lanes];
    e.hi = 0;
    e.lo = ~0u;
    for (unsigned l = 0; l < n_lanes; ++l) {
        active[l] = plan.tail_hi[l] != plan.tail_lo[l];
        e.hi_masked[l] = active[l] ? plan.tail_hi[l] : ~0u;
        e.lo_masked[l] = active[l] ? plan.tail_lo[l] : ~0u;
        if (!active[l]) continue;
        e.hi = std::max(e.hi, plan.tail_hi[l]);
        e.lo = std::min(e.lo, plan.tail_lo[l]);
    }
    e.n = 0;
    if (e.hi == 0) return;
    // Every boundary where some lane starts or is captured, plus lo itself (below every collected value).
    e.n = collect(plan.tail_hi, active, e.lo, e.hi, e.ev, 0);
    e.n = collect(plan.tail_lo, active, e.lo, e.hi, e.ev, e.n);
    e.ev[e.n++] = e.lo;
}

void lanes_own_events_of(const lanes_trace_plan& plan, const std::uint8_t* captured, lanes_own_events& e) {
    e.top = 0;
    for (unsigned l = 0; l < n_lanes; ++l) e.top = std::max(e.top, plan.own_top[l]);
    e.n = 0;
    if (e.top <= plan.bottom) return;
    for (unsigned l = 0; l < n_lanes; ++l)
        e.start[l] = plan.own_src[l] < n_lanes ? captured[plan.own_src[l]] : plan.own_state[l];
    bool all[n_lanes];
    std::fill(all, all + n_lanes, true);
    e.n = collect(plan.own_top, all, plan.bottom, e.top, e.ev, 0);
    e.ev[e.n++] = plan.bottom;
}

void lanes_traceback_generic(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words) {
    unsigned st[n_lanes] = {};
    unsigned captured[n_lanes] = {};
    // Tail pass.
    std::int64_t hi = -1, lo = -1;
    for (unsigned l = 0; l < n_lanes; ++l) {
        if (plan.tail_hi[l] == plan.tail_lo[l]) continue;
        hi = std::max<std::int64_t>(hi, plan.tail_hi[l]);
        lo = lo < 0 ? plan.tail_lo[l] : std::min<std::int64_t>(lo, plan.tail_lo[l]);
    }
    for (std::int64_t b = hi; lo >= 0 && b >= lo; --b) {
        for (unsigned l = 0; l < n_lanes; ++l) {
            if (plan.tail_hi[l] == plan.tail_lo[l]) continue;
            if (plan.tail_hi[l] == b) st[l] = plan.tail_state[l];
            if (plan.tail_lo[l] == b) captured[l] = st[l];
        }
        if (b == lo) break;
        const std::uint8_t* row = dec + dec_row_bytes * static_cast<std::size_t>(b - 1);
        for (unsigned l = 0; l < n_lanes; ++l) st[l] = trace_back_one(row, l, st[l]);
    }
    // Own pass.
    std::uint32_t top = 0;
    for (unsigned l = 0; l < n_lanes; ++l) top = std::max(top, plan.own_top[l]);
    if (top <= plan.bottom) return;
    // Bits gather in acc; every word row from the top one down to bottom's is
    // written whole (rows outside [bottom, top) as 0).
    std::uint32_t acc[n_lanes] = {};
    for (unsigned l = 0; l < n_lanes; ++l) st[l] = 0;
    for (std::uint32_t b = top; b > plan.bottom; --b) {
        for (unsigned l = 0; l < n_lanes; ++l)
            if (plan.own_top[l] == b) st[l] = plan.own_src[l] < n_lanes ? captured[plan.own_src[l]] : plan.own_state[l];
        const std::uint32_t u = b - 1;
        const std::uint8_t* row = dec + dec_row_bytes * u;
        const unsigned sh = 31 - (u & 31);
        for (unsigned l = 0; l < n_lanes; ++l) {
            acc[l] |= (st[l] & 1u) << sh;
            st[l] = trace_back_one(row, l, st[l]);
        }
        if ((u & 31) == 0 || u == plan.bottom)
            for (unsigned l = 0; l < n_lanes; ++l) {
                words[n_lanes * (u / 32) + l] = acc[l];
                acc[l] = 0;
            }
    }
}

}  // namespace qlink::modem::conv_detail
