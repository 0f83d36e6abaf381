// Pass search: coarse elevation scan, bisection for AOS/LOS, golden-section for the maximum.
#include "qlink/sim/pass.hpp"

#include <cmath>

namespace qlink::sim {

namespace {

struct elevation_fn {
    const sgp4_propagator& sat;
    const ground_station& station;
    double mask;
    mutable sgp4_error error = sgp4_error::none;

    double operator()(time_point t) const {
        const auto st = sat.propagate(t);
        if (!st.ok()) {
            error = st.error;
            return -90.0 - mask;
        }
        const vec3 r = teme_to_ecef(st.r_km, t);
        return station.look(r, r).elevation_deg - mask;
    }
};

// f(lo) and f(hi) have opposite signs; returns the crossing to within tol.
time_point bisect(const elevation_fn& f, time_point lo, time_point hi, duration tol) {
    const bool lo_up = f(lo) > 0.0;
    while (hi - lo > tol) {
        const time_point mid = lo + (hi - lo) / 2;
        if ((f(mid) > 0.0) == lo_up) lo = mid;
        else hi = mid;
    }
    return lo + (hi - lo) / 2;
}

time_point golden_max(const elevation_fn& f, time_point a, time_point b, duration tol) {
    constexpr double inv_phi = 0.6180339887498949;
    auto lerp = [](time_point x, time_point y, double w) {
        return x + std::chrono::duration_cast<duration>(std::chrono::duration<double, std::nano>(
                       w * static_cast<double>((y - x).count())));
    };
    time_point c = lerp(b, a, inv_phi), d = lerp(a, b, inv_phi);
    double fc = f(c), fd = f(d);
    while (b - a > tol) {
        if (fc > fd) {
            b = d;
            d = c;
            fd = fc;
            c = lerp(b, a, inv_phi);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = lerp(a, b, inv_phi);
            fd = f(d);
        }
    }
    return a + (b - a) / 2;
}

std::string check_config(const pass_search_config& cfg) {
    if (!(cfg.elevation_mask_deg >= -5.0 && cfg.elevation_mask_deg <= 89.0))
        return "elevation mask " + std::to_string(cfg.elevation_mask_deg) + " deg outside the allowed range [-5, 89]";
    if (cfg.coarse_step <= duration::zero() || cfg.coarse_step > std::chrono::minutes{5})
        return "coarse step must be in (0, 5 min]";
    if (cfg.tolerance <= duration::zero()) return "tolerance must be positive";
    if (cfg.horizon <= duration::zero()) return "search horizon must be positive";
    return {};
}

}  // namespace

pass_search_result find_next_pass(const sgp4_propagator& sat, const ground_station& station, time_point start,
                                  const pass_search_config& cfg) {
    pass_search_result res;
    if (res.error = check_config(cfg); !res.error.empty()) return res;
    const elevation_fn f{sat, station, cfg.elevation_mask_deg};
    const time_point end = start + cfg.horizon;

    time_point t = start;
    double prev = f(t);
    // A pass already in progress does not count: wait for it to end.
    while (prev > 0.0 && t < end) {
        t += cfg.coarse_step;
        prev = f(t);
    }
    if (prev > 0.0 && f.error == sgp4_error::none) {
        res.error = "the satellite stays above the elevation mask for the whole search window (no AOS to report)";
        return res;
    }
    for (; t < end; t += cfg.coarse_step) {
        const time_point next = t + cfg.coarse_step;
        const double cur = f(next);
        if (f.error != sgp4_error::none) {
            res.error = "propagation failed during pass search: " + std::string(to_string(f.error));
            return res;
        }
        if (prev <= 0.0 && cur > 0.0) {
            pass_info p;
            p.aos = bisect(f, t, next, cfg.tolerance);
            // Find LOS on the coarse grid, then refine.
            time_point a = next;
            double fa = cur;
            while (fa > 0.0 && a < end + std::chrono::hours{1}) {
                const double fb = f(a + cfg.coarse_step);
                if (fb <= 0.0) break;
                a += cfg.coarse_step;
                fa = fb;
            }
            p.los = bisect(f, a, a + cfg.coarse_step, cfg.tolerance);
            p.max_elevation_time = golden_max(f, p.aos, p.los, cfg.tolerance);
            p.max_elevation_deg = f(p.max_elevation_time) + cfg.elevation_mask_deg;
            p.aos_azimuth_deg = station.observe(sat, p.aos).look.azimuth_deg;
            p.los_azimuth_deg = station.observe(sat, p.los).look.azimuth_deg;
            if (f.error != sgp4_error::none) {
                res.error = "propagation failed during pass search: " + std::string(to_string(f.error));
                return res;
            }
            res.pass = p;
            return res;
        }
        prev = cur;
    }
    return res;
}

std::vector<pass_info> find_passes(const sgp4_propagator& sat, const ground_station& station, time_point start,
                                   time_point end, const pass_search_config& cfg) {
    std::vector<pass_info> out;
    time_point t = start;
    while (t < end) {
        pass_search_config c = cfg;
        c.horizon = end - t;
        const auto r = find_next_pass(sat, station, t, c);
        if (!r.pass || r.pass->aos >= end) break;
        out.push_back(*r.pass);
        t = r.pass->los + std::chrono::seconds{1};
    }
    return out;
}

}  // namespace qlink::sim
