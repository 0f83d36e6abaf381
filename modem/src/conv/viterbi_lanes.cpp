// Generic (scalar) across-lanes Viterbi kernels: the reference the SIMD lane kernels must equal bit for bit.
#include "viterbi_lanes.hpp"

#include <algorithm>
#include <cstring>

namespace qlink::modem::conv_detail {

void lanes_branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm) {
    for (std::size_t t = 0; t < steps; ++t) {
        for (unsigned l = 0; l < n_lanes; ++l) {
            const int l0 = std::max<int>(pairs[(t * n_lanes + l) * 2], -127);
            const int l1 = std::max<int>(pairs[(t * n_lanes + l) * 2 + 1], -127);
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

void lanes_acs_generic(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                       std::uint32_t* decisions) {
    auto sat = [](unsigned a, unsigned b) { return static_cast<std::uint8_t>(std::min(a + b, 255u)); };
    std::uint8_t next[64 * n_lanes];
    for (std::size_t t = 0; t < steps; ++t) {
        const std::uint8_t* b = bm + t * 4 * n_lanes;
        std::uint32_t* d = decisions + t * 64;
        for (unsigned i = 0; i < 32; ++i) {
            const std::uint8_t* bmv = b + idx[i] * n_lanes;
            const std::uint8_t* bmc = b + (idx[i] ^ 3u) * n_lanes;
            std::uint32_t dx = 0, dy = 0;
            for (unsigned l = 0; l < n_lanes; ++l) {
                const std::uint8_t m0 = st.metric[i * n_lanes + l], m1 = st.metric[(i + 32) * n_lanes + l];
                const std::uint8_t x0 = sat(m0, bmv[l]), x1 = sat(m1, bmc[l]);
                const std::uint8_t y0 = sat(m0, bmc[l]), y1 = sat(m1, bmv[l]);
                next[2 * i * n_lanes + l] = std::min(x0, x1);
                next[(2 * i + 1) * n_lanes + l] = std::min(y0, y1);
                dx |= static_cast<std::uint32_t>(x0 <= x1) << l;
                dy |= static_cast<std::uint32_t>(y0 <= y1) << l;
            }
            d[2 * i] = dx;
            d[2 * i + 1] = dy;
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

void lanes_traceback_generic(const std::uint32_t* dec, const lanes_trace_plan& plan, std::uint32_t* words) {
    std::int64_t rows = 0;
    for (unsigned l = 0; l < n_lanes; ++l) rows = std::max<std::int64_t>(rows, std::int64_t{plan.top[l]} + plan.lift[l]);
    unsigned st[n_lanes];
    std::uint32_t acc[n_lanes] = {};
    for (unsigned l = 0; l < n_lanes; ++l) st[l] = plan.end_state[l];
    for (std::int64_t u = rows; u-- > std::int64_t{plan.bottom};) {
        for (unsigned l = 0; l < n_lanes; ++l) {
            const unsigned s = st[l];
            acc[l] = (acc[l] >> 1) | ((s & 1u) << 31);
            const std::int64_t t = u - plan.lift[l];
            unsigned bit = 0;
            if (t >= 0 && t < std::int64_t{plan.top[l]}) {
                const bool crossed = t >= std::int64_t{plan.cross[l]};
                const std::uint32_t* d = dec + 64 * static_cast<std::size_t>(crossed ? t - plan.delta[l] : t);
                bit = (d[s] >> (crossed ? plan.src[l] : l)) & 1u;
            }
            st[l] = (s >> 1) | ((bit ^ 1u) << 5);
        }
        if ((u & 31) == 0)
            for (unsigned l = 0; l < n_lanes; ++l) {
                words[n_lanes * static_cast<std::size_t>(u >> 5) + l] = acc[l];
                acc[l] = 0;
            }
    }
}

}  // namespace qlink::modem::conv_detail
