// Quad-cell error math and the simulated fast steering mirror + quad cell.
#include "qlink/hw/fine_pointing.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>

namespace qlink::hw {

std::string_view to_string(quad_cell_status s) {
    switch (s) {
    case quad_cell_status::ok: return "ok";
    case quad_cell_status::low_signal: return "low_signal";
    case quad_cell_status::saturated: return "saturated";
    case quad_cell_status::invalid: return "invalid";
    }
    return "unknown";
}

std::string_view to_string(fine_pointing_errc e) {
    switch (e) {
    case fine_pointing_errc::ok: return "ok";
    case fine_pointing_errc::clamped: return "clamped";
    case fine_pointing_errc::out_of_range: return "out_of_range";
    }
    return "unknown";
}

quad_cell_reading evaluate_quad_cell(const std::array<double, 4>& v, const quad_cell_thresholds& th) {
    quad_cell_reading r;
    r.v = v;
    bool saturated = false;
    for (double x : v) {
        if (!std::isfinite(x)) return r;  // invalid
        if (x >= th.saturation_v) saturated = true;
    }
    r.sum_v = v[0] + v[1] + v[2] + v[3];
    if (!(r.sum_v > 0.0) || r.sum_v < th.min_sum_v) {
        r.status = quad_cell_status::low_signal;
        return r;
    }
    r.ex = std::clamp((v[0] + v[3] - v[1] - v[2]) / r.sum_v, -1.0, 1.0);
    r.ey = std::clamp((v[0] + v[1] - v[2] - v[3]) / r.sum_v, -1.0, 1.0);
    r.status = saturated ? quad_cell_status::saturated : quad_cell_status::ok;
    return r;
}

double quad_cell_error(double theta_rad, double spot_radius_rad) {
    return std::erf(std::numbers::sqrt2 * theta_rad / spot_radius_rad);
}

double quad_cell_angle(double e, double spot_radius_rad) {
    // Inverse error function: Winitzki's closed form (relative error < 2e-3) refined by
    // Newton steps on erf, which converge quadratically from there for |e| <= 0.999.
    const double y = std::clamp(e, -0.999, 0.999);
    constexpr double a = 0.147;
    const double l = std::log(1.0 - y * y);
    const double b = 2.0 / (std::numbers::pi * a) + l / 2.0;
    double x = std::copysign(std::sqrt(std::sqrt(b * b - l / a) - b), y);
    for (int i = 0; i < 3; ++i) {
        const double f = std::erf(x) - y;
        x -= f / (2.0 / std::sqrt(std::numbers::pi) * std::exp(-x * x));
    }
    return x * spot_radius_rad / std::numbers::sqrt2;
}

std::string validate(const fine_pointing_limits& l) {
    if (!(l.fsm_range_rad > 0.0 && l.fsm_range_rad <= 0.05))
        return "fine_pointing.fsm_range_rad must be in (0, 0.05] rad";
    if (!(l.fsm_bandwidth_hz > 0.0 && l.fsm_bandwidth_hz <= 1e5))
        return "fine_pointing.fsm_bandwidth_hz must be in (0, 1e5] Hz";
    if (!(l.spot_radius_rad > 0.0 && l.spot_radius_rad <= 1e-3))
        return "fine_pointing.spot_radius_rad must be in (0, 1e-3] rad";
    if (!(l.gain_min > 0.0 && l.gain_min <= 1.0 && l.gain_max >= 1.0 && std::isfinite(l.gain_max)))
        return "fine_pointing.gain_min/gain_max must satisfy 0 < gain_min <= 1 <= gain_max";
    if (!(l.thresholds.saturation_v > 0.0 && std::isfinite(l.thresholds.saturation_v)))
        return "fine_pointing.thresholds.saturation_v must be > 0";
    if (!(l.thresholds.min_sum_v > 0.0 && l.thresholds.min_sum_v < l.thresholds.saturation_v))
        return "fine_pointing.thresholds.min_sum_v must be in (0, saturation_v)";
    return {};
}

namespace {

// Fraction of a 1-D Gaussian (1/e^2 radius w, centre c) falling in [lo, hi].
double strip(double lo, double hi, double c, double w) {
    const double k = std::numbers::sqrt2 / w;
    return 0.5 * (std::erf(k * (hi - c)) - std::erf(k * (lo - c)));
}

class sim_fine_pointing final : public fine_pointing {
public:
    sim_fine_pointing(const sim_fine_pointing_config& cfg, optical_scene& scene)
        : cfg_(cfg), scene_(scene), rng_(cfg.seed) {
        scene_.set_fsm_tilt({});
    }

    fine_pointing_result command_mirror(tilt t) override {
        ++counters_.mirror_commands;
        if (!std::isfinite(t.x_rad) || !std::isfinite(t.y_rad)) {
            ++counters_.rejected;
            return {fine_pointing_errc::out_of_range, "mirror command is not finite"};
        }
        advance();
        const double r = cfg_.limits.fsm_range_rad;
        const tilt c{std::clamp(t.x_rad, -r, r), std::clamp(t.y_rad, -r, r)};
        command_ = c;
        if (c.x_rad != t.x_rad || c.y_rad != t.y_rad) {
            ++counters_.mirror_clamped;
            return {fine_pointing_errc::clamped, "mirror command beyond the range, held at the edge"};
        }
        return {};
    }

    tilt mirror_command() const override { return command_; }

    tilt mirror_position() override {
        advance();
        return position_;
    }

    quad_cell_reading read_quad_cell() override {
        ++counters_.quad_cell_reads;
        advance();
        const optical_scene::sample& s = scene_.now();
        const double w = cfg_.limits.spot_radius_rad;
        const double a = cfg_.cell_half_width_rad;
        const double p = s.beacon_on ? s.beacon_power_w * cfg_.volts_per_watt * gain_ : 0.0;
        const double xp = strip(0.0, a, s.residual.x_rad, w);
        const double xm = strip(-a, 0.0, s.residual.x_rad, w);
        const double yp = strip(0.0, a, s.residual.y_rad, w);
        const double ym = strip(-a, 0.0, s.residual.y_rad, w);
        const double sat = cfg_.limits.thresholds.saturation_v;
        std::array<double, 4> v{p * xp * yp, p * xm * yp, p * xm * ym, p * xp * ym};
        for (double& x : v) x = std::clamp(x + cfg_.noise_v * normal_(rng_), -sat, sat);
        const quad_cell_reading r = evaluate_quad_cell(v, cfg_.limits.thresholds);
        if (r.status == quad_cell_status::saturated) ++counters_.saturated;
        if (r.status == quad_cell_status::low_signal) ++counters_.low_signal;
        return r;
    }

    fine_pointing_result set_quad_cell_gain(double gain) override {
        if (!(gain >= cfg_.limits.gain_min && gain <= cfg_.limits.gain_max)) {
            ++counters_.rejected;
            return {fine_pointing_errc::out_of_range, "quad-cell gain outside [gain_min, gain_max]"};
        }
        gain_ = gain;
        return {};
    }

    double quad_cell_gain() const override { return gain_; }
    std::string_view name() const override { return "sim"; }
    const fine_pointing_limits& limits() const override { return cfg_.limits; }
    const fine_pointing_counters& counters() const override { return counters_; }

private:
    // First-order response to the held command, exact over any step of the clock.
    void advance() {
        const sim::time_point t = scene_.now().t;
        if (have_t_ && t > last_t_) {
            const double dt = std::chrono::duration<double>(t - last_t_).count();
            const double k = 1.0 - std::exp(-2.0 * std::numbers::pi * cfg_.limits.fsm_bandwidth_hz * dt);
            position_.x_rad += (command_.x_rad - position_.x_rad) * k;
            position_.y_rad += (command_.y_rad - position_.y_rad) * k;
        }
        if (!have_t_ || t > last_t_) last_t_ = t;
        have_t_ = true;
        scene_.set_fsm_tilt(position_);
    }

    sim_fine_pointing_config cfg_;
    optical_scene& scene_;
    std::mt19937_64 rng_;
    std::normal_distribution<double> normal_{0.0, 1.0};
    fine_pointing_counters counters_;
    tilt command_{};
    tilt position_{};
    double gain_ = 1.0;
    sim::time_point last_t_{};
    bool have_t_ = false;
};

}  // namespace

std::unique_ptr<fine_pointing> create_sim_fine_pointing(const sim_fine_pointing_config& cfg, optical_scene& scene) {
    if (std::string err = validate(cfg.limits); !err.empty()) throw std::invalid_argument("sim_" + err);
    if (!(cfg.cell_half_width_rad > cfg.limits.spot_radius_rad && cfg.cell_half_width_rad <= 0.05))
        throw std::invalid_argument("sim_fine_pointing.cell_half_width_rad must be in (spot_radius_rad, 0.05] rad");
    if (!(cfg.volts_per_watt > 0.0 && std::isfinite(cfg.volts_per_watt)))
        throw std::invalid_argument("sim_fine_pointing.volts_per_watt must be > 0");
    if (!(cfg.noise_v >= 0.0 && cfg.noise_v < cfg.limits.thresholds.saturation_v))
        throw std::invalid_argument("sim_fine_pointing.noise_v must be in [0, thresholds.saturation_v)");
    return std::make_unique<sim_fine_pointing>(cfg, scene);
}

}  // namespace qlink::hw
