// Tests of the quad-cell math, the simulated FSM + quad cell, and the simulated scene and transceiver.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <stdexcept>
#include <string>

#include "qlink/hw/fine_pointing.hpp"
#include "qlink/sim/optical_link.hpp"
#include "unit/hw/optical/optical_rig.hpp"

namespace qlink::hw {
namespace {

using test::fixed_truth;
using test::optical_rig;

constexpr az_el sky{120.0, 45.0};

TEST(quad_cell, numbering_and_formula) {
    const quad_cell_thresholds th{};
    // All light in quadrant 1 (upper right): ex = ey = +1.
    quad_cell_reading r = evaluate_quad_cell({1.0, 0.0, 0.0, 0.0}, th);
    EXPECT_EQ(r.status, quad_cell_status::ok);
    EXPECT_DOUBLE_EQ(r.ex, 1.0);
    EXPECT_DOUBLE_EQ(r.ey, 1.0);
    // Quadrant 3 (lower left): -1, -1; quadrant 2 (upper left): -1, +1; quadrant 4: +1, -1.
    r = evaluate_quad_cell({0.0, 0.0, 1.0, 0.0}, th);
    EXPECT_DOUBLE_EQ(r.ex, -1.0);
    EXPECT_DOUBLE_EQ(r.ey, -1.0);
    r = evaluate_quad_cell({0.0, 1.0, 0.0, 0.0}, th);
    EXPECT_DOUBLE_EQ(r.ex, -1.0);
    EXPECT_DOUBLE_EQ(r.ey, 1.0);
    r = evaluate_quad_cell({0.0, 0.0, 0.0, 1.0}, th);
    EXPECT_DOUBLE_EQ(r.ex, 1.0);
    EXPECT_DOUBLE_EQ(r.ey, -1.0);
    // (V1+V4-V2-V3)/sum and (V1+V2-V3-V4)/sum by hand.
    r = evaluate_quad_cell({0.1, 0.2, 0.3, 0.4}, th);
    EXPECT_NEAR(r.sum_v, 1.0, 1e-12);
    EXPECT_NEAR(r.ex, (0.1 + 0.4 - 0.2 - 0.3) / 1.0, 1e-12);
    EXPECT_NEAR(r.ey, (0.1 + 0.2 - 0.3 - 0.4) / 1.0, 1e-12);
}

TEST(quad_cell, saturation_low_signal_and_garbage) {
    const quad_cell_thresholds th{4.5, 0.02};
    quad_cell_reading r = evaluate_quad_cell({4.5, 1.0, 1.0, 1.0}, th);
    EXPECT_EQ(r.status, quad_cell_status::saturated);
    EXPECT_FALSE(r.usable());
    r = evaluate_quad_cell({0.004, 0.004, 0.004, 0.004}, th);
    EXPECT_EQ(r.status, quad_cell_status::low_signal);
    EXPECT_EQ(r.ex, 0.0);
    r = evaluate_quad_cell({-1.0, -1.0, 0.5, 0.5}, th);
    EXPECT_EQ(r.status, quad_cell_status::low_signal);
    r = evaluate_quad_cell({std::nan(""), 1.0, 1.0, 1.0}, th);
    EXPECT_EQ(r.status, quad_cell_status::invalid);
    r = evaluate_quad_cell({INFINITY, 1.0, 1.0, 1.0}, th);
    EXPECT_EQ(r.status, quad_cell_status::invalid);
    // Negative noise on a channel keeps the ratio bounded.
    r = evaluate_quad_cell({1.0, -0.5, 0.0, 0.0}, th);
    EXPECT_EQ(r.status, quad_cell_status::ok);
    EXPECT_LE(std::abs(r.ex), 1.0);
    EXPECT_LE(std::abs(r.ey), 1.0);
}

TEST(quad_cell, angle_inverts_the_gaussian_response) {
    const double w = 20e-6;
    for (double theta = -32e-6; theta <= 32e-6; theta += 0.5e-6) {
        const double e = quad_cell_error(theta, w);
        EXPECT_NEAR(quad_cell_angle(e, w), theta, 1e-10) << theta;
    }
    // Small-signal slope 2 sqrt(2) / (sqrt(pi) w).
    EXPECT_NEAR(quad_cell_error(1e-9, w) / 1e-9, 2.0 * std::sqrt(2.0) / (std::sqrt(M_PI) * w), 1.0);
    // Beyond the linear range the estimate saturates instead of blowing up.
    EXPECT_TRUE(std::isfinite(quad_cell_angle(1.0, w)));
    EXPECT_NEAR(quad_cell_angle(5.0, w), quad_cell_angle(0.999, w), 1e-15);
}

// Oracle: photons drawn from the Gaussian spot and counted per quadrant of the finite cell.
TEST(sim_fine_pointing, quad_cell_matches_a_photon_count_of_the_gaussian_spot) {
    sim_fine_pointing_config fc;
    fc.noise_v = 0.0;
    optical_rig rig(fixed_truth(sky), test::default_scene_config(), fc);
    const double w = fc.limits.spot_radius_rad;
    const double a = fc.cell_half_width_rad;
    std::mt19937_64 rng(42);
    std::normal_distribution<double> n(0.0, w / 2.0);  // intensity exp(-2 r^2/w^2): sigma = w/2
    const tilt offsets[] = {{0.0, 0.0}, {5e-6, -3e-6}, {-12e-6, 8e-6}, {30e-6, 0.0}, {90e-6, -20e-6}};
    for (const tilt& off : offsets) {
        rig.scene->set_disturbance(off);
        rig.advance(1e-3);
        const quad_cell_reading r = rig.fine->read_quad_cell();
        ASSERT_EQ(r.status, quad_cell_status::ok);
        double q[4] = {0, 0, 0, 0};
        const int photons = 200000;
        for (int i = 0; i < photons; ++i) {
            const double x = off.x_rad + n(rng);
            const double y = off.y_rad + n(rng);
            if (std::abs(x) > a || std::abs(y) > a) continue;
            q[x >= 0 ? (y >= 0 ? 0 : 3) : (y >= 0 ? 1 : 2)] += 1.0;
        }
        const double sum = q[0] + q[1] + q[2] + q[3];
        EXPECT_NEAR(r.ex, (q[0] + q[3] - q[1] - q[2]) / sum, 0.01) << off.x_rad;
        EXPECT_NEAR(r.ey, (q[0] + q[1] - q[2] - q[3]) / sum, 0.01) << off.y_rad;
        // Total power on the cell: the fraction inside it times the beacon power.
        const double p = rig.scene->now().beacon_power_w * fc.volts_per_watt;
        EXPECT_NEAR(r.sum_v / p, sum / photons, 0.01);
    }
}

TEST(sim_fine_pointing, spot_off_the_cell_is_low_signal) {
    optical_rig rig(fixed_truth(sky));
    rig.scene->set_disturbance({300e-6, 0.0});
    rig.advance(1e-3);
    EXPECT_EQ(rig.fine->read_quad_cell().status, quad_cell_status::low_signal);
    EXPECT_EQ(rig.fine->counters().low_signal, 1u);
}

TEST(sim_fine_pointing, strong_beacon_saturates_and_a_lower_gain_recovers) {
    sim_fine_pointing_config fc;
    fc.volts_per_watt = 1e9;  // a bright beacon into a high-gain amplifier
    optical_rig rig(fixed_truth(sky), test::default_scene_config(), fc);
    rig.advance(1e-3);
    quad_cell_reading r = rig.fine->read_quad_cell();
    EXPECT_EQ(r.status, quad_cell_status::saturated);
    EXPECT_EQ(rig.fine->counters().saturated, 1u);
    const double p = rig.scene->now().beacon_power_w * fc.volts_per_watt;
    ASSERT_GT(p / 64.0, fc.limits.thresholds.min_sum_v);
    double gain = 1.0;
    while (r.status == quad_cell_status::saturated && gain / 2 >= fc.limits.gain_min) {
        gain /= 2;
        ASSERT_TRUE(rig.fine->set_quad_cell_gain(gain));
        r = rig.fine->read_quad_cell();
    }
    EXPECT_EQ(r.status, quad_cell_status::ok) << "power " << p << " V at gain 1";
    EXPECT_EQ(rig.fine->set_quad_cell_gain(1000.0).code, fine_pointing_errc::out_of_range);
    EXPECT_EQ(rig.fine->set_quad_cell_gain(std::nan("")).code, fine_pointing_errc::out_of_range);
    EXPECT_DOUBLE_EQ(rig.fine->quad_cell_gain(), gain);
}

TEST(sim_fine_pointing, mirror_is_a_first_order_lag_within_its_range) {
    sim_fine_pointing_config fc;
    fc.limits.fsm_bandwidth_hz = 200.0;
    fc.limits.fsm_range_rad = 500e-6;
    optical_rig rig(fixed_truth(sky), test::default_scene_config(), fc);
    ASSERT_TRUE(rig.fine->command_mirror({100e-6, -50e-6}));
    const double tau = 1.0 / (2.0 * M_PI * 200.0);
    rig.advance(tau);
    tilt p = rig.fine->mirror_position();
    EXPECT_NEAR(p.x_rad, 100e-6 * (1.0 - std::exp(-1.0)), 1e-9);
    EXPECT_NEAR(p.y_rad, -50e-6 * (1.0 - std::exp(-1.0)), 1e-9);
    rig.advance(20 * tau);
    p = rig.fine->mirror_position();
    EXPECT_NEAR(p.x_rad, 100e-6, 1e-12);
    // The scene sees the mirror: the residual is the line-of-sight error minus the tilt.
    rig.scene->set_disturbance({120e-6, 0.0});
    rig.advance(1e-3);
    EXPECT_NEAR(rig.scene->now().residual.x_rad, 20e-6, 1e-10);

    const fine_pointing_result r = rig.fine->command_mirror({2e-3, 0.0});
    EXPECT_EQ(r.code, fine_pointing_errc::clamped);
    EXPECT_DOUBLE_EQ(rig.fine->mirror_command().x_rad, 500e-6);
    EXPECT_EQ(rig.fine->command_mirror({std::nan(""), 0.0}).code, fine_pointing_errc::out_of_range);
    EXPECT_DOUBLE_EQ(rig.fine->mirror_command().x_rad, 500e-6);
    EXPECT_EQ(rig.fine->counters().mirror_clamped, 1u);
    EXPECT_EQ(rig.fine->counters().rejected, 1u);
}

TEST(sim_transceiver, laser_and_point_ahead_refuse_out_of_range) {
    optical_rig rig(fixed_truth(sky));
    optical_transceiver& t = *rig.transceiver;
    EXPECT_FALSE(t.laser_on());
    EXPECT_TRUE(t.set_laser_power(0.5));
    EXPECT_EQ(t.set_laser_power(1.5).code, transceiver_errc::out_of_range);
    EXPECT_EQ(t.set_laser_power(-1.0).code, transceiver_errc::out_of_range);
    EXPECT_EQ(t.set_laser_power(std::nan("")).code, transceiver_errc::out_of_range);
    EXPECT_DOUBLE_EQ(t.laser_power_w(), 0.5);
    EXPECT_TRUE(t.set_laser(true));
    EXPECT_TRUE(t.laser_on());
    EXPECT_TRUE(t.set_laser(false));
    EXPECT_FALSE(t.laser_on());
    EXPECT_TRUE(t.set_point_ahead({50e-6, -20e-6}));
    EXPECT_EQ(t.set_point_ahead({500e-6, 0.0}).code, transceiver_errc::out_of_range);
    EXPECT_DOUBLE_EQ(t.point_ahead().x_rad, 50e-6);
    EXPECT_EQ(t.counters().rejected, 4u);
}

TEST(sim_transceiver, camera_sees_the_beacon_only_inside_its_field_and_above_threshold) {
    double loss = 1.0;
    optical_rig rig([&](sim::time_point) { return optical_truth{true, sky, 800e3, loss}; });
    optical_transceiver& t = *rig.transceiver;
    const double fov = t.limits().camera_fov_half_rad;
    rig.scene->set_disturbance({0.5 * fov, -0.3 * fov});
    rig.advance(0.01);
    camera_reading c = t.read_beacon_camera();
    ASSERT_TRUE(c.detected);
    EXPECT_NEAR(c.centroid.x_rad, 0.5 * fov, 6e-6);
    EXPECT_NEAR(c.centroid.y_rad, -0.3 * fov, 6e-6);
    rig.scene->set_disturbance({1.1 * fov, 0.0});
    rig.advance(0.01);
    EXPECT_FALSE(t.read_beacon_camera().detected);
    rig.scene->set_disturbance({});
    loss = 1e-6;  // a thick cloud
    rig.advance(0.01);
    EXPECT_FALSE(t.read_beacon_camera().detected);
    loss = 1.0;
    rig.advance(0.01);
    EXPECT_TRUE(t.read_beacon_camera().detected);
}

TEST(sim_transceiver, centroid_noise_has_the_configured_rms) {
    sim_transceiver_config tc;
    tc.camera_noise_rad = 2e-6;
    optical_rig rig(fixed_truth(sky), test::default_scene_config(), {}, tc);
    double sx = 0, sxx = 0;
    const int n = 4000;
    for (int i = 0; i < n; ++i) {
        rig.advance(0.01);
        const camera_reading c = rig.transceiver->read_beacon_camera();
        ASSERT_TRUE(c.detected);
        sx += c.centroid.x_rad;
        sxx += c.centroid.x_rad * c.centroid.x_rad;
    }
    const double mean = sx / n;
    const double rms = std::sqrt(sxx / n - mean * mean);
    EXPECT_NEAR(mean, 0.0, 4 * 2e-6 / std::sqrt(n));
    EXPECT_NEAR(rms, 2e-6, 0.1e-6);  // 5 %: the standard error of an rms over 4000 samples is 1.1 %
}

TEST(sim_transceiver, detector_power_is_the_channel_power_times_the_coupling) {
    sim_transceiver_config tc;
    optical_rig rig(fixed_truth(sky), test::default_scene_config(), {}, tc);
    rig.advance(0.01);
    const optical_scene::sample s = rig.scene->now();
    // Oracle: the sim optical channel's own link budget at this geometry.
    const sim::optical_link link(rig.scene->settings().downlink);
    const double expect = link.budget({45.0 * M_PI / 180.0, 800e3, 600.0}).rx_power_w;
    EXPECT_NEAR(s.signal_power_w / expect, 1.0, 1e-12);
    EXPECT_NEAR(rig.transceiver->read_detector().power_w / expect, 1.0, 1e-12);
    rig.scene->set_disturbance({tc.detector_fov_rad, 0.0});
    rig.advance(0.01);
    EXPECT_NEAR(rig.transceiver->read_detector().power_w / expect, std::exp(-2.0), 1e-9);
}

TEST(optical_scene, jitter_has_the_configured_rms_and_correlation) {
    optical_scene::config sc = test::default_scene_config();
    sc.jitter_rms_rad = 3e-6;
    sc.jitter_correlation_s = 0.01;
    optical_rig rig(fixed_truth(sky), sc);
    const int n = 20000;
    double sxx = 0, sxy = 0, prev = 0;
    for (int i = 0; i < n; ++i) {
        rig.advance(0.01);  // one correlation time per step: lag-1 correlation exp(-1)
        const double x = rig.scene->now().los_error.x_rad;
        sxx += x * x;
        if (i > 0) sxy += x * prev;
        prev = x;
    }
    EXPECT_NEAR(std::sqrt(sxx / n), 3e-6, 0.15e-6);
    EXPECT_NEAR(sxy / sxx, std::exp(-1.0), 0.03);
}

TEST(optical_scene, scintillation_keeps_the_mean_power) {
    optical_scene::config sc = test::default_scene_config();
    sc.scintillation_index = 0.2;
    optical_rig rig(fixed_truth(sky), sc);
    const sim::optical_link link(sc.beacon);
    const double mean = link.budget({45.0 * M_PI / 180.0, 800e3, 600.0}).rx_power_w;
    double s = 0, ss = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        rig.advance(0.02);
        const double p = rig.scene->now().beacon_power_w / mean;
        s += p;
        ss += p * p;
    }
    EXPECT_NEAR(s / n, 1.0, 0.03);
    EXPECT_NEAR(ss / n - (s / n) * (s / n), 0.2, 0.03);
}

TEST(optical_config, out_of_range_values_name_the_field) {
    auto expect_throw = [](auto make, const std::string& field) {
        try {
            make();
            ADD_FAILURE() << "no exception for " << field;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
        }
    };
    sim::sim_clock clock(sim::time_point{});
    auto m = create_sim_mount({}, clock);
    optical_scene::config sc = test::default_scene_config();
    sc.jitter_rms_rad = -1.0;
    expect_throw([&] { optical_scene s(sc, clock, *m, fixed_truth(sky)); }, "jitter_rms_rad");
    sc = test::default_scene_config();
    sc.beacon.tx_power_w = 0.0;
    expect_throw([&] { optical_scene s(sc, clock, *m, fixed_truth(sky)); }, "tx_power_w");
    expect_throw([&] { optical_scene s(test::default_scene_config(), clock, *m, {}); }, "truth");

    optical_scene scene(test::default_scene_config(), clock, *m, fixed_truth(sky));
    sim_fine_pointing_config fc;
    fc.limits.fsm_bandwidth_hz = 0.0;
    expect_throw([&] { create_sim_fine_pointing(fc, scene); }, "fsm_bandwidth_hz");
    fc = {};
    fc.limits.thresholds.min_sum_v = 10.0;
    expect_throw([&] { create_sim_fine_pointing(fc, scene); }, "min_sum_v");
    fc = {};
    fc.cell_half_width_rad = 1e-6;
    expect_throw([&] { create_sim_fine_pointing(fc, scene); }, "cell_half_width_rad");
    sim_transceiver_config tc;
    tc.limits.laser_max_power_w = 0.0;
    expect_throw([&] { create_sim_optical_transceiver(tc, scene); }, "laser_max_power_w");
    tc = {};
    tc.camera_threshold_w = std::nan("");
    expect_throw([&] { create_sim_optical_transceiver(tc, scene); }, "camera_threshold_w");
}

TEST(optical_scene, below_the_horizon_or_no_mount_means_no_beacon) {
    optical_rig rig(fixed_truth({120.0, -3.0}));
    rig.advance(0.01);
    EXPECT_FALSE(rig.scene->now().beacon_on);
    EXPECT_EQ(rig.scene->now().beacon_power_w, 0.0);
    EXPECT_FALSE(rig.transceiver->read_beacon_camera().detected);
    EXPECT_EQ(rig.fine->read_quad_cell().status, quad_cell_status::low_signal);
}

TEST(sky_offset, round_trips_and_uses_cross_elevation) {
    const az_el from{359.99, 60.0};
    const az_el to{0.01, 60.001};
    const tilt t = sky_offset(from, to);
    EXPECT_NEAR(t.x_rad, 0.02 * M_PI / 180.0 * 0.5, 1e-12);  // across north, scaled by cos(60 deg)
    EXPECT_NEAR(t.y_rad, 0.001 * M_PI / 180.0, 1e-12);
    const az_el back = apply_offset(from, t);
    EXPECT_NEAR(back.az_deg, 360.01, 1e-9);
    EXPECT_NEAR(back.el_deg, 60.001, 1e-9);
}

}  // namespace
}  // namespace qlink::hw
