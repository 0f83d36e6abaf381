// The simulated mount behind hw::mount, and the az/el mapping onto mount axes.
#include "qlink/hw/mount.hpp"
#include "qlink/sim/sim_mount.hpp"

#include <algorithm>
#include <cmath>

namespace qlink::hw {
namespace {

class sim_mount_adapter final : public mount {
public:
    sim_mount_adapter(const sim_mount_config& cfg, const sim::clock& clock)
        : limits_(cfg.limits), model_(to_model(cfg), clock) {}

    mount_result set_position(az_el target) override {
        ++counters_.commands;
        if (!model_.set_target(target.az_deg, target.el_deg)) {
            ++counters_.rejected;
            return {mount_errc::rejected, -1, "target outside the mount's range"};
        }
        return {};
    }

    mount_result get_position(az_el& out) override {
        ++counters_.commands;
        const sim::mount_position p = model_.position();
        out = {p.azimuth_deg, p.elevation_deg};
        return {};
    }

    mount_result stop() override {
        ++counters_.commands;
        model_.stop();
        return {};
    }

    mount_result park() override {
        ++counters_.commands;
        model_.park();
        return {};
    }

    std::string_view name() const override { return "sim"; }
    const mount_limits& limits() const override { return limits_; }
    const mount_counters& counters() const override { return counters_; }

private:
    static sim::sim_mount::config to_model(const sim_mount_config& c) {
        sim::sim_mount::config m;
        m.min_azimuth_deg = c.limits.az_min_deg;
        m.max_azimuth_deg = c.limits.az_max_deg;
        m.min_elevation_deg = c.limits.el_min_deg;
        m.max_elevation_deg = c.limits.el_max_deg;
        m.slew_rate_deg_s = c.slew_rate_deg_s;
        m.park = {c.park.az_deg, c.park.el_deg};
        m.initial = {c.initial.az_deg, c.initial.el_deg};
        return m;
    }

    mount_limits limits_;
    mount_counters counters_;
    sim::sim_mount model_;
};

}  // namespace

std::unique_ptr<mount> create_sim_mount(const sim_mount_config& cfg, const sim::clock& clock) {
    return std::make_unique<sim_mount_adapter>(cfg, clock);
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
