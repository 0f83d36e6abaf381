// Simulated mount: slew-rate-limited axes moving in the injected clock's time.
#include "qlink/hw/mount.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>

namespace qlink::hw {
namespace {

class sim_mount final : public mount {
public:
    sim_mount(const sim_mount_config& cfg, const sim::clock& clock)
        : cfg_(cfg), clock_(clock), pos_(cfg.initial), target_(cfg.initial), last_(clock.now()) {}

    mount_result set_position(az_el target) override {
        std::lock_guard lock(mutex_);
        ++counters_.commands;
        const mount_limits& l = cfg_.limits;
        if (!(target.az_deg >= l.az_min_deg && target.az_deg <= l.az_max_deg && target.el_deg >= l.el_min_deg &&
              target.el_deg <= l.el_max_deg)) {
            ++counters_.rejected;
            return {mount_errc::rejected, -1, "target outside the mount's range"};
        }
        advance();
        target_ = target;
        moving_ = true;
        return {};
    }

    mount_result get_position(az_el& out) override {
        std::lock_guard lock(mutex_);
        ++counters_.commands;
        advance();
        out = pos_;
        return {};
    }

    mount_result stop() override {
        std::lock_guard lock(mutex_);
        ++counters_.commands;
        advance();
        target_ = pos_;
        moving_ = false;
        return {};
    }

    mount_result park() override {
        std::lock_guard lock(mutex_);
        ++counters_.commands;
        advance();
        target_ = cfg_.park;
        moving_ = true;
        return {};
    }

    std::string_view name() const override { return "sim"; }
    const mount_limits& limits() const override { return cfg_.limits; }
    const mount_counters& counters() const override { return counters_; }

private:
    static double step_toward(double from, double to, double max_step) {
        const double d = to - from;
        return std::abs(d) <= max_step ? to : from + std::copysign(max_step, d);
    }

    void advance() {
        const sim::time_point now = clock_.now();
        const double dt = std::chrono::duration<double>(now - last_).count();
        last_ = now;
        if (!moving_ || dt <= 0) return;
        pos_.az_deg = step_toward(pos_.az_deg, target_.az_deg, cfg_.az_rate_deg_s * dt);
        pos_.el_deg = step_toward(pos_.el_deg, target_.el_deg, cfg_.el_rate_deg_s * dt);
        if (pos_.az_deg == target_.az_deg && pos_.el_deg == target_.el_deg) moving_ = false;
    }

    sim_mount_config cfg_;
    const sim::clock& clock_;
    std::mutex mutex_;
    mount_counters counters_;
    az_el pos_;
    az_el target_;
    sim::time_point last_;
    bool moving_ = false;
};

}  // namespace

std::unique_ptr<mount> create_sim_mount(const sim_mount_config& cfg, const sim::clock& clock) {
    return std::make_unique<sim_mount>(cfg, clock);
}

std::string_view to_string(mount_errc e) {
    switch (e) {
    case mount_errc::ok: return "ok";
    case mount_errc::rejected: return "rejected";
    case mount_errc::timeout: return "timeout";
    case mount_errc::disconnected: return "disconnected";
    case mount_errc::protocol: return "protocol";
    case mount_errc::out_of_range: return "out_of_range";
    }
    return "?";
}

bool map_to_mount(az_el sky, double current_az_deg, const mount_limits& limits, bool flip, az_el& out) {
    double az = std::fmod(sky.az_deg, 360.0);
    if (az < 0) az += 360.0;
    double el = sky.el_deg;
    if (flip) {
        az = std::fmod(az + 180.0, 360.0);
        el = 180.0 - el;
    }
    if (el < limits.el_min_deg || el > limits.el_max_deg) return false;
    bool found = false;
    double best = 0.0;
    for (double candidate : {az - 360.0, az, az + 360.0}) {
        if (candidate < limits.az_min_deg || candidate > limits.az_max_deg) continue;
        if (!found || std::abs(candidate - current_az_deg) < std::abs(best - current_az_deg)) best = candidate;
        found = true;
    }
    if (!found) return false;
    out = {best, el};
    return true;
}

az_el mount_to_sky(az_el axes) {
    double az = axes.az_deg;
    double el = axes.el_deg;
    if (el > 90.0) {
        el = 180.0 - el;
        az += 180.0;
    }
    az = std::fmod(az, 360.0);
    if (az < 0) az += 360.0;
    return {az, el};
}

}  // namespace qlink::hw
