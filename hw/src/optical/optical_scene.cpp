// The simulated optical scene (line-of-sight error, jitter, channel power) and the simulated transceiver over it.
#include "qlink/hw/optical_transceiver.hpp"
#include "qlink/sim/fading.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>

namespace qlink::hw {
namespace {

constexpr double deg = std::numbers::pi / 180.0;

double wrap180(double d) {
    d = std::fmod(d, 360.0);
    if (d > 180.0) d -= 360.0;
    if (d < -180.0) d += 360.0;
    return d;
}

// Below ~0.6 deg from the zenith, an azimuth offset stops meaning anything: cap 1/cos(el).
double safe_cos(double el_deg) { return std::max(std::cos(el_deg * deg), 0.01); }

bool finite(tilt t) { return std::isfinite(t.x_rad) && std::isfinite(t.y_rad); }

}  // namespace

tilt sky_offset(az_el from, az_el to) {
    return {wrap180(to.az_deg - from.az_deg) * deg * std::cos(from.el_deg * deg), (to.el_deg - from.el_deg) * deg};
}

az_el apply_offset(az_el from, tilt offset) {
    return {from.az_deg + offset.x_rad / safe_cos(from.el_deg) / deg, from.el_deg + offset.y_rad / deg};
}

std::string_view to_string(transceiver_errc e) {
    switch (e) {
    case transceiver_errc::ok: return "ok";
    case transceiver_errc::out_of_range: return "out_of_range";
    case transceiver_errc::fault: return "fault";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------

struct optical_scene::impl {
    impl(const config& cfg)
        : rng(cfg.seed), beacon(cfg.beacon), downlink(cfg.downlink) {
        if (cfg.scintillation_index > 0.0) {
            sim::fading_process::config f;
            f.marginal = sim::fading_marginal::lognormal;
            f.scintillation_index = cfg.scintillation_index;
            f.coherence_time_s = cfg.scintillation_coherence_s;
            f.sample_rate_hz = cfg.scintillation_rate_hz;
            f.seed = cfg.seed ^ 0x5c1e7ULL;
            fading = sim::create_fading_process(f);
        }
    }

    // Advances the fading process to dt later; returns the current intensity factor.
    double scintillation(double dt) {
        if (!fading) return 1.0;
        std::array<float, 64> buf{};
        const double n = std::ceil(dt * fading->sample_rate_hz());
        const std::size_t count = static_cast<std::size_t>(std::clamp(n, 1.0, 64.0));
        fading->generate(std::span<float>(buf.data(), count));
        return static_cast<double>(buf[count - 1]);
    }

    std::mt19937_64 rng;
    std::normal_distribution<double> normal{0.0, 1.0};
    sim::optical_link beacon;
    sim::optical_link downlink;
    std::unique_ptr<sim::fading_process> fading;
    double jx = 0.0;
    double jy = 0.0;
};

std::string optical_scene::validate(const config& c) {
    try {
        sim::optical_link b(c.beacon);
        sim::optical_link d(c.downlink);
    } catch (const std::invalid_argument& e) {
        return std::string("optical_scene.beacon/downlink: ") + e.what();
    }
    if (!(c.site_altitude_m >= 0.0 && c.site_altitude_m <= 8000.0))
        return "optical_scene.site_altitude_m must be in [0, 8000]";
    if (!(c.jitter_rms_rad >= 0.0 && c.jitter_rms_rad <= 1e-3))
        return "optical_scene.jitter_rms_rad must be in [0, 1e-3] rad";
    if (!(c.jitter_correlation_s > 0.0 && std::isfinite(c.jitter_correlation_s)))
        return "optical_scene.jitter_correlation_s must be > 0";
    if (!(c.scintillation_index >= 0.0 && c.scintillation_index <= 4.0))
        return "optical_scene.scintillation_index must be in [0, 4] (0 disables)";
    if (!(c.scintillation_coherence_s > 0.0 && std::isfinite(c.scintillation_coherence_s)))
        return "optical_scene.scintillation_coherence_s must be > 0";
    if (!(c.scintillation_rate_hz >= 10.0 && std::isfinite(c.scintillation_rate_hz)))
        return "optical_scene.scintillation_rate_hz must be >= 10";
    if (c.scintillation_index > 0.0 && c.scintillation_coherence_s * c.scintillation_rate_hz < 1.0)
        return "optical_scene.scintillation_coherence_s must be at least one sample of scintillation_rate_hz";
    return {};
}

optical_scene::optical_scene(const config& cfg, const sim::clock& clock, mount& m, optical_truth_fn truth)
    : cfg_(cfg), clock_(clock), mount_(m), truth_(std::move(truth)) {
    if (const std::string err = validate(cfg); !err.empty()) throw std::invalid_argument(err);
    if (!truth_) throw std::invalid_argument("optical_scene: the truth function is empty");
    impl_ = std::make_unique<impl>(cfg_);
}

optical_scene::~optical_scene() = default;

void optical_scene::set_fsm_tilt(tilt t) {
    fsm_ = t;
    last_.residual = {last_.los_error.x_rad - fsm_.x_rad, last_.los_error.y_rad - fsm_.y_rad};
}

const optical_scene::sample& optical_scene::now() {
    const sim::time_point t = clock_.now();
    if (have_sample_ && t <= last_.t) {
        last_.residual = {last_.los_error.x_rad - fsm_.x_rad, last_.los_error.y_rad - fsm_.y_rad};
        return last_;
    }
    impl& s = *impl_;
    const double sigma = cfg_.jitter_rms_rad;
    double dt = 0.0;
    if (!have_sample_) {
        s.jx = sigma * s.normal(s.rng);
        s.jy = sigma * s.normal(s.rng);
    } else {
        dt = std::chrono::duration<double>(t - last_.t).count();
        const double a = std::exp(-dt / cfg_.jitter_correlation_s);
        const double b = sigma * std::sqrt(std::max(0.0, 1.0 - a * a));
        s.jx = a * s.jx + b * s.normal(s.rng);
        s.jy = a * s.jy + b * s.normal(s.rng);
    }
    have_sample_ = true;

    sample out;
    out.t = t;
    const optical_truth truth = truth_(t);
    az_el axes;
    const mount_result mr = mount_.get_position(axes);
    out.mount_ok = static_cast<bool>(mr);
    const double scint = s.scintillation(dt);
    if (out.mount_ok) {
        const tilt e = sky_offset(mount_to_sky(axes), truth.sky);
        out.los_error = {e.x_rad + s.jx + disturbance_.x_rad, e.y_rad + s.jy + disturbance_.y_rad};
    } else {
        out.los_error = {1.0, 1.0};  // nowhere near: nothing lands on the sensors
    }
    const bool geometry_ok = truth.sky.el_deg > 0.0 && truth.sky.el_deg <= 90.0 && truth.range_m > 0.0 &&
                             std::isfinite(truth.range_m);
    out.beacon_on = truth.beacon_on && geometry_ok && out.mount_ok;
    if (out.beacon_on) {
        const sim::link_geometry geo{truth.sky.el_deg * deg, truth.range_m, cfg_.site_altitude_m};
        const double f = std::clamp(truth.extra_loss, 0.0, 1.0) * scint;
        out.beacon_power_w = s.beacon.budget(geo).rx_power_w * f;
        out.signal_power_w = s.downlink.budget(geo).rx_power_w * f;
    }
    out.residual = {out.los_error.x_rad - fsm_.x_rad, out.los_error.y_rad - fsm_.y_rad};
    last_ = out;
    return last_;
}

// ---------------------------------------------------------------------------------------------

namespace {

class sim_transceiver final : public optical_transceiver {
public:
    sim_transceiver(const sim_transceiver_config& cfg, optical_scene& scene)
        : cfg_(cfg), scene_(scene), rng_(cfg.seed) {}

    transceiver_result set_laser(bool on) override {
        if (on) ++counters_.laser_on_commands;
        else ++counters_.laser_off_commands;
        laser_on_ = on;
        return {};
    }

    transceiver_result set_laser_power(double watts) override {
        if (!(watts >= 0.0 && watts <= cfg_.limits.laser_max_power_w)) {
            ++counters_.rejected;
            return {transceiver_errc::out_of_range, "laser power outside [0, laser_max_power_w]"};
        }
        power_w_ = watts;
        return {};
    }

    bool laser_on() const override { return laser_on_; }
    double laser_power_w() const override { return power_w_; }

    transceiver_result set_point_ahead(tilt offset) override {
        const double r = cfg_.limits.point_ahead_range_rad;
        if (!finite(offset) || std::abs(offset.x_rad) > r || std::abs(offset.y_rad) > r) {
            ++counters_.rejected;
            return {transceiver_errc::out_of_range, "point-ahead outside the mirror's range"};
        }
        point_ahead_ = offset;
        return {};
    }

    tilt point_ahead() const override { return point_ahead_; }

    detector_reading read_detector() override {
        ++counters_.detector_reads;
        const optical_scene::sample& s = scene_.now();
        detector_reading r;
        if (s.beacon_on) {
            const double e2 = s.residual.x_rad * s.residual.x_rad + s.residual.y_rad * s.residual.y_rad;
            const double fov = cfg_.detector_fov_rad;
            r.power_w = s.signal_power_w * std::exp(-2.0 * e2 / (fov * fov));
        }
        if (r.power_w >= cfg_.detector_saturation_w) {
            r.power_w = cfg_.detector_saturation_w;
            r.saturated = true;
            ++counters_.detector_saturations;
        }
        return r;
    }

    camera_reading read_beacon_camera() override {
        const optical_scene::sample& s = scene_.now();
        camera_reading r;
        r.frame = ++counters_.camera_frames;
        const double fov = cfg_.limits.camera_fov_half_rad;
        const double ex = s.los_error.x_rad;
        const double ey = s.los_error.y_rad;
        const double nx = normal_(rng_);  // drawn every frame so the noise sequence does not depend on detections
        const double ny = normal_(rng_);
        if (s.beacon_on && s.beacon_power_w >= cfg_.camera_threshold_w && ex * ex + ey * ey <= fov * fov) {
            r.detected = true;
            r.centroid = {ex + cfg_.camera_noise_rad * nx, ey + cfg_.camera_noise_rad * ny};
            r.spot_power_w = s.beacon_power_w;
            ++counters_.camera_detections;
        }
        return r;
    }

    std::string_view name() const override { return "sim"; }
    const transceiver_limits& limits() const override { return cfg_.limits; }
    const transceiver_counters& counters() const override { return counters_; }

private:
    sim_transceiver_config cfg_;
    optical_scene& scene_;
    std::mt19937_64 rng_;
    std::normal_distribution<double> normal_{0.0, 1.0};
    transceiver_counters counters_;
    bool laser_on_ = false;
    double power_w_ = 0.0;
    tilt point_ahead_{};
};

std::string validate_transceiver(const sim_transceiver_config& c) {
    if (!(c.limits.laser_max_power_w > 0.0 && std::isfinite(c.limits.laser_max_power_w)))
        return "sim_transceiver.limits.laser_max_power_w must be > 0";
    if (!(c.limits.point_ahead_range_rad > 0.0 && c.limits.point_ahead_range_rad <= 0.01))
        return "sim_transceiver.limits.point_ahead_range_rad must be in (0, 0.01] rad";
    if (!(c.limits.camera_fov_half_rad > 0.0 && c.limits.camera_fov_half_rad <= 0.1))
        return "sim_transceiver.limits.camera_fov_half_rad must be in (0, 0.1] rad";
    if (!(c.camera_threshold_w > 0.0 && std::isfinite(c.camera_threshold_w)))
        return "sim_transceiver.camera_threshold_w must be > 0";
    if (!(c.camera_noise_rad >= 0.0 && c.camera_noise_rad <= 1e-3))
        return "sim_transceiver.camera_noise_rad must be in [0, 1e-3] rad";
    if (!(c.detector_fov_rad > 0.0 && c.detector_fov_rad <= 0.01))
        return "sim_transceiver.detector_fov_rad must be in (0, 0.01] rad";
    if (!(c.detector_saturation_w > 0.0 && std::isfinite(c.detector_saturation_w)))
        return "sim_transceiver.detector_saturation_w must be > 0";
    return {};
}

}  // namespace

std::unique_ptr<optical_transceiver> create_sim_optical_transceiver(const sim_transceiver_config& cfg,
                                                                    optical_scene& scene) {
    if (const std::string err = validate_transceiver(cfg); !err.empty()) throw std::invalid_argument(err);
    return std::make_unique<sim_transceiver>(cfg, scene);
}

}  // namespace qlink::hw
