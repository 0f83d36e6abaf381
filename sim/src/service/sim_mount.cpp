// Simulated mount: each axis moves toward its target at the slew-rate limit.
#include "qlink/sim/sim_mount.hpp"

#include <cmath>
#include <stdexcept>

namespace qlink::sim {

std::string sim_mount::validate(const config& c) {
    if (!(c.slew_rate_deg_s > 0.0 && c.slew_rate_deg_s <= 360.0))
        return "mount slew rate " + std::to_string(c.slew_rate_deg_s) + " deg/s outside the allowed range (0, 360]";
    if (!(c.min_azimuth_deg >= -360.0 && c.max_azimuth_deg <= 720.0 && c.min_azimuth_deg < c.max_azimuth_deg))
        return "mount azimuth limits must satisfy -360 <= min < max <= 720";
    if (!(c.min_elevation_deg >= -10.0 && c.max_elevation_deg <= 180.0 && c.min_elevation_deg < c.max_elevation_deg))
        return "mount elevation limits must satisfy -10 <= min < max <= 180";
    auto inside = [&](const mount_position& p) {
        return p.azimuth_deg >= c.min_azimuth_deg && p.azimuth_deg <= c.max_azimuth_deg &&
               p.elevation_deg >= c.min_elevation_deg && p.elevation_deg <= c.max_elevation_deg;
    };
    if (!inside(c.park)) return "mount park position outside the azimuth/elevation limits";
    if (!inside(c.initial)) return "mount initial position outside the azimuth/elevation limits";
    return {};
}

sim_mount::sim_mount(const config& cfg, const clock& clk)
    : cfg_(cfg), clock_(clk), pos_(cfg.initial), target_(cfg.initial), last_(clk.now()) {
    if (auto e = validate(cfg); !e.empty()) throw std::invalid_argument(e);
}

void sim_mount::advance_locked() {
    const time_point now = clock_.now();
    if (now <= last_) return;
    const double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    const double step = cfg_.slew_rate_deg_s * dt;
    auto move = [step](double& p, double t) {
        const double d = t - p;
        p = std::fabs(d) <= step ? t : p + std::copysign(step, d);
    };
    move(pos_.azimuth_deg, target_.azimuth_deg);
    move(pos_.elevation_deg, target_.elevation_deg);
}

bool sim_mount::set_target(double az, double el) {
    if (!std::isfinite(az) || !std::isfinite(el) || az < cfg_.min_azimuth_deg || az > cfg_.max_azimuth_deg ||
        el < cfg_.min_elevation_deg || el > cfg_.max_elevation_deg)
        return false;
    std::lock_guard lock(mutex_);
    advance_locked();
    target_ = {az, el};
    return true;
}

mount_position sim_mount::position() {
    std::lock_guard lock(mutex_);
    advance_locked();
    return pos_;
}

mount_position sim_mount::target() {
    std::lock_guard lock(mutex_);
    return target_;
}

void sim_mount::stop() {
    std::lock_guard lock(mutex_);
    advance_locked();
    target_ = pos_;
}

void sim_mount::park() {
    std::lock_guard lock(mutex_);
    advance_locked();
    target_ = cfg_.park;
}

}  // namespace qlink::sim
