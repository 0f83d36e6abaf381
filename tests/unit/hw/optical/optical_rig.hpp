// Test rig: sim clock, sim mount, optical scene, simulated fine pointing and transceiver wired together.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "qlink/hw/fine_pointing.hpp"
#include "qlink/hw/mount.hpp"
#include "qlink/hw/optical_transceiver.hpp"
#include "qlink/sim/clock.hpp"

namespace qlink::hw::test {

/// Defaults give a LEO beacon of a few hundred nW at 800 km: a 1 mrad (1/e^2 half-angle),
/// 2 W beacon into a 0.4 m telescope; the downlink is the sim's 10 urad, 1 W default.
inline optical_scene::config default_scene_config() {
    optical_scene::config c;
    c.beacon.tx_power_w = 2.0;
    c.beacon.tx_divergence_rad = 1e-3;
    c.beacon.rx_aperture_diameter_m = 0.4;
    c.downlink.rx_aperture_diameter_m = 0.4;
    c.site_altitude_m = 600.0;
    c.jitter_rms_rad = 0.0;
    return c;
}

struct optical_rig {
    explicit optical_rig(optical_truth_fn truth_fn, optical_scene::config scene_cfg = default_scene_config(),
                         sim_fine_pointing_config fp_cfg = {}, sim_transceiver_config tx_cfg = {},
                         az_el mount_start = {120.0, 45.0}, double slew_deg_s = 6.0)
        : clock(sim::time_point{std::chrono::seconds{1795903200}}) {
        sim_mount_config mc;
        mc.initial = mount_start;
        mc.slew_rate_deg_s = slew_deg_s;
        mount_ = create_sim_mount(mc, clock);
        scene = std::make_unique<optical_scene>(scene_cfg, clock, *mount_, std::move(truth_fn));
        fine = create_sim_fine_pointing(fp_cfg, *scene);
        transceiver = create_sim_optical_transceiver(tx_cfg, *scene);
    }

    void advance(double seconds) { clock.advance(sim::seconds_d(seconds)); }

    sim::sim_clock clock;
    std::unique_ptr<mount> mount_;
    std::unique_ptr<optical_scene> scene;
    std::unique_ptr<fine_pointing> fine;
    std::unique_ptr<optical_transceiver> transceiver;
};

/// A satellite fixed at one direction (pointing tests that need no motion).
inline optical_truth_fn fixed_truth(az_el sky, double range_m = 800e3, double extra_loss = 1.0) {
    return [=](sim::time_point) { return optical_truth{true, sky, range_m, extra_loss}; };
}

}  // namespace qlink::hw::test
