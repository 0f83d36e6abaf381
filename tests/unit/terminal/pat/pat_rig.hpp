// PAT test rig: a moving target with ephemeris errors, the simulated hardware, and the controller.
#pragma once

#include <cmath>
#include <memory>
#include <random>

#include "qlink/terminal/pat.hpp"
#include "unit/hw/optical/optical_rig.hpp"

namespace qlink::terminal::test {

/// A target crossing the sky at constant angular rates (degrees and degrees/s from t0),
/// with a point-ahead of fixed size along the motion. Invalid below the horizon.
class linear_ephemeris final : public pat_ephemeris {
public:
    linear_ephemeris(sim::time_point t0, hw::az_el start, double az_rate_deg_s, double el_rate_deg_s,
                     double point_ahead_rad = 50e-6)
        : t0_(t0), start_(start), az_rate_(az_rate_deg_s), el_rate_(el_rate_deg_s), pa_(point_ahead_rad) {}

    pat_target at(sim::time_point t) const override {
        const double s = std::chrono::duration<double>(t - t0_).count();
        pat_target out;
        out.sky = {std::fmod(start_.az_deg + az_rate_ * s + 360.0, 360.0), start_.el_deg + el_rate_ * s};
        out.valid = valid_ && out.sky.el_deg > -5.0;
        const double vx = az_rate_ * std::cos(out.sky.el_deg * M_PI / 180.0);
        const double n = std::hypot(vx, el_rate_);
        if (n > 0) out.point_ahead = {pa_ * vx / n, pa_ * el_rate_ / n};
        return out;
    }
    bool valid_ = true;

private:
    sim::time_point t0_;
    hw::az_el start_;
    double az_rate_, el_rate_, pa_;
};

/// What the simulation gets wrong on purpose: the true direction is the ephemeris'
/// at t + time_error, offset by a pointing bias (mount model error), in the telescope frame.
struct ephemeris_error {
    double time_error_s = 0.0;
    hw::tilt bias{};
};

/// Uniform in a disc of radius r (the cone the acquisition scan must cover).
inline ephemeris_error random_error(std::mt19937_64& rng, double bias_radius_rad, double time_error_s) {
    std::uniform_real_distribution<double> u(0.0, 1.0);
    const double r = bias_radius_rad * std::sqrt(u(rng));
    const double phi = 2.0 * M_PI * u(rng);
    return {time_error_s * (2.0 * u(rng) - 1.0), {r * std::cos(phi), r * std::sin(phi)}};
}

struct pat_rig {
    pat_rig(std::unique_ptr<pat_ephemeris> eph_in, ephemeris_error err, pat_config cfg = {},
            hw::optical_scene::config scene_cfg = hw::test::default_scene_config(),
            hw::sim_fine_pointing_config fp_cfg = {}, hw::sim_transceiver_config tx_cfg = {},
            double range_m = 800e3)
        : eph(std::move(eph_in)),
          hw_rig(
              [this, err, range_m](sim::time_point t) {
                  const pat_target p = eph->at(t + sim::seconds_d(err.time_error_s));
                  return hw::optical_truth{beacon_on && p.valid, hw::apply_offset(p.sky, err.bias), range_m, loss};
              },
              scene_cfg, fp_cfg, tx_cfg, start_axes(*eph)),
          pat(cfg, hw_rig.clock, *eph, *hw_rig.mount_, *hw_rig.fine, *hw_rig.transceiver) {}

    // The mount starts on the ephemeris direction at the rig's start time (1795903200).
    static hw::az_el start_axes(const pat_ephemeris& e) {
        return e.at(sim::time_point{std::chrono::seconds{1795903200}}).sky;
    }

    sim::time_point now() const { return hw_rig.clock.now(); }

    /// Steps at `rate_hz` until `pred` holds or `seconds` pass; returns the elapsed time or -1.
    template <typename Pred>
    double run_until(Pred pred, double seconds, double rate_hz = 1000.0) {
        const auto t0 = now();
        const int n = static_cast<int>(seconds * rate_hz);
        for (int i = 0; i < n; ++i) {
            pat.step();
            if (pred()) return std::chrono::duration<double>(now() - t0).count();
            hw_rig.advance(1.0 / rate_hz);
        }
        return -1.0;
    }

    void run(double seconds, double rate_hz = 1000.0) {
        run_until([] { return false; }, seconds, rate_hz);
    }

    /// True radial pointing error after the mirror (what the link sees).
    double true_residual() { return std::hypot(hw_rig.scene->now().residual.x_rad, hw_rig.scene->now().residual.y_rad); }

    bool beacon_on = true;
    double loss = 1.0;
    std::unique_ptr<pat_ephemeris> eph;
    hw::test::optical_rig hw_rig;
    pat_controller pat;
};

inline std::unique_ptr<pat_ephemeris> leo_like_track() {
    // 0.3 deg/s in azimuth and 0.1 deg/s in elevation at 40 deg: a mid-elevation LEO pass.
    return std::make_unique<linear_ephemeris>(sim::time_point{std::chrono::seconds{1795903200}}, hw::az_el{150.0, 40.0},
                                              0.3, 0.1);
}

}  // namespace qlink::terminal::test
