// Tests the pass world's numbers against the orbit, link-budget, turbulence, jitter and cloud models it is built from.
#include <cmath>
#include <fstream>
#include <numbers>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/pass_world.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/stream_server.hpp"

namespace {

using namespace qlink::sim;

// A named default config (a temporary one trips GCC 12's -Wmaybe-uninitialized at -O3).
const pass_world::config& default_config() {
    static const pass_world::config c;
    return c;
}

tle bundled_tle() {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    std::ifstream in(std::string(d ? d : ".") + "/sim/data/qlinksat-1.tle");
    std::stringstream ss;
    ss << in.rdbuf();
    auto p = parse_tle_text(ss.str());
    EXPECT_TRUE(p.ok()) << p.error;
    return p.sets.front();
}

// The default world is built once: every test reads the same seeded pass.
const pass_world& default_world() {
    static const pass_world w(bundled_tle(), default_config());
    return w;
}

TEST(pass_world, default_start_is_aos_minus_30_s_of_first_good_pass_after_epoch) {
    const auto& w = default_world();
    const auto el = bundled_tle();
    const ground_station st(default_config().station);
    const auto sat = create_sgp4_propagator(el);
    // The first pass after the epoch reaching 30 deg, found independently.
    time_point from = el.epoch();
    pass_info p{};
    for (int i = 0; i < 20; ++i) {
        const auto f = find_next_pass(*sat, st, from);
        ASSERT_TRUE(f.pass);
        p = *f.pass;
        if (p.max_elevation_deg >= 30.0) break;
        from = p.los;
    }
    EXPECT_EQ(w.pass().aos, p.aos);
    EXPECT_NEAR(std::chrono::duration<double>(p.aos - w.start()).count(), 30.0, 1e-6);
    EXPECT_NEAR(w.aos_s(), 30.0, 1e-6);
    EXPECT_NEAR(w.duration_s(), w.los_s() + 10.0, 1e-6);
    EXPECT_GT(w.pass().max_elevation_deg, 30.0);
    // A pass of about ten minutes, as the demo needs.
    EXPECT_GT(w.los_s() - w.aos_s(), 400.0);
    EXPECT_LT(w.los_s() - w.aos_s(), 900.0);
    EXPECT_NEAR(w.at(w.aos_s()).elevation_deg, 0.0, 0.05);
    EXPECT_NEAR(w.at(w.los_s()).elevation_deg, 0.0, 0.05);
}

TEST(pass_world, geometry_matches_sgp4_and_station_between_grid_points) {
    const auto& w = default_world();
    const ground_station st(default_config().station);
    const auto sat = create_sgp4_propagator(bundled_tle());
    for (double t : {0.0, 31.37, 200.5, 333.25, 401.9, w.duration_s() - 0.3}) {
        const auto ref = st.observe(*sat, w.start() + seconds_d(t));
        const auto s = w.at(t);
        EXPECT_NEAR(s.elevation_deg, ref.look.elevation_deg, 0.01) << t;
        EXPECT_NEAR(s.range_km, ref.look.range_km, 0.05) << t;
        double daz = std::fabs(s.azimuth_deg - ref.look.azimuth_deg);
        daz = std::min(daz, 360.0 - daz);
        EXPECT_LT(daz, 0.05) << t;
    }
}

TEST(pass_world, optical_numbers_follow_the_link_budget_and_fading_factors) {
    const auto& w = default_world();
    const auto& c = w.settings();
    auto dl = c.downlink;
    dl.pointing_jitter_rad = c.pointing_jitter_rad;
    const optical_link link(dl);
    const optical_link qlink_(c.quantum);
    int checked = 0;
    for (double t = 0.0; t < w.duration_s(); t += 7.3) {
        const auto s = w.at(t);
        EXPECT_EQ(s.above_mask, s.elevation_deg >= c.optical_mask_deg);
        EXPECT_EQ(s.link_up, s.above_mask && !s.cloud_blocked);
        if (!s.above_mask) {
            EXPECT_EQ(s.photons_per_slot, 0.0);
            EXPECT_EQ(s.qkd_transmittance, 0.0);
            continue;
        }
        const link_geometry g{s.elevation_deg * std::numbers::pi / 180.0, s.range_km * 1e3, 0.0};
        const auto b = link.budget(g);
        // Budgets are tabulated once a second and interpolated: well inside 0.01 dB.
        EXPECT_NEAR(s.mean_rx_power_dbm, b.rx_power_dbm, 0.01);
        const double factor = s.scintillation * s.pointing_loss * s.cloud_transmittance;
        if (s.link_up) {
            EXPECT_NEAR(s.rx_power_dbm, b.rx_power_dbm + 10.0 * std::log10(factor), 0.01);
            EXPECT_NEAR(s.photons_per_slot, c.detector_efficiency * b.rx_photons_per_s * factor / c.optical_slot_rate_hz,
                        0.003 * s.photons_per_slot);
            const auto qb = qlink_.budget(g);
            EXPECT_NEAR(s.qkd_transmittance, qb.rx_power_w / c.quantum.tx_power_w * s.scintillation,
                        0.003 * s.qkd_transmittance);
        } else {
            EXPECT_LT(s.rx_power_dbm, -250.0);
        }
        // Scintillation index from the turbulence model at this elevation and aperture.
        turbulence_model::config tc;
        const turbulence_model tm(tc);
        turbulence_model::query q;
        q.elevation_rad = g.elevation_rad;
        q.rx_aperture_diameter_m = dl.rx_aperture_diameter_m;
        EXPECT_NEAR(s.scintillation_index, tm.evaluate(q).scintillation, 0.02 * s.scintillation_index);
        ++checked;
    }
    EXPECT_GT(checked, 50);
    // Mid-pass the OOK receiver sees tens of photons per slot, near the mask a few.
    const auto peak = w.at(w.aos_s() + 0.5 * (w.los_s() - w.aos_s()));
    EXPECT_GT(link.budget({peak.elevation_deg * std::numbers::pi / 180.0, peak.range_km * 1e3, 0.0}).rx_photons_per_s *
                  c.detector_efficiency / c.optical_slot_rate_hz,
              20.0);
}

TEST(pass_world, fading_statistics_match_the_models) {
    const auto& w = default_world();
    const double rate = w.settings().sample_rate_hz;
    double sum_z = 0, sum_z2 = 0, sum_i = 0, sum_h = 0;
    std::size_t n = 0;
    for (double t = w.aos_s(); t < w.los_s(); t += 1.0 / rate) {
        const auto s = w.at(t);
        if (!s.above_mask) continue;
        const double s2 = std::log1p(s.scintillation_index);
        const double z = (std::log(s.scintillation) + 0.5 * s2) / std::sqrt(s2);
        sum_z += z, sum_z2 += z * z, sum_i += s.scintillation, sum_h += s.pointing_loss;
        ++n;
    }
    ASSERT_GT(n, 30000u);
    const double mean_z = sum_z / n, var_z = sum_z2 / n - mean_z * mean_z;
    // ln I is Gaussian with the log-normal parameters of sigma_I^2; correlated samples (coherence
    // 5 grid steps) leave ~n/10 independent ones: tolerances are > 5 standard errors.
    EXPECT_NEAR(mean_z, 0.0, 0.1);
    EXPECT_NEAR(var_z, 1.0, 0.1);
    EXPECT_NEAR(sum_i / n, 1.0, 0.05);
    // Jitter loss normalised by the analytic Beta mean (pointing_jitter::mean_loss) averages 1;
    // 0.3 s correlation leaves ~2000 independent samples, sd of h/mean ~ 0.4 -> 5 sigma ~ 0.05.
    EXPECT_NEAR(sum_h / n, 1.0, 0.06);
}

TEST(pass_world, default_pass_has_a_cloud_interruption_and_a_deep_fade) {
    const auto& w = default_world();
    const double dt = 1.0 / w.settings().sample_rate_hz;
    int clouds = 0, deep_fades = 0;
    double cloud_start = -1, fade_start = -1;
    for (double t = 0.0; t < w.duration_s(); t += dt) {
        const auto s = w.at(t);
        // A cloud interruption of a few seconds while the satellite is above the mask.
        if (s.above_mask && s.cloud_blocked && cloud_start < 0) cloud_start = t;
        if (!s.cloud_blocked && cloud_start >= 0) {
            if (t - cloud_start >= 2.0 && t - cloud_start <= 15.0) ++clouds;
            cloud_start = -1;
        }
        if (s.cloud_blocked) {
            EXPECT_FALSE(s.link_up);
            EXPECT_EQ(s.photons_per_slot, 0.0);
            EXPECT_EQ(s.qkd_transmittance, 0.0);
        }
        // A deep fade: >= 10 dB under the mean budget for >= 50 ms with the link up.
        const bool deep = s.link_up && s.rx_power_dbm <= s.mean_rx_power_dbm - 10.0;
        if (deep && fade_start < 0) fade_start = t;
        if (!deep && fade_start >= 0) {
            if (t - fade_start >= 0.05 - 1e-9) ++deep_fades;
            fade_start = -1;
        }
    }
    EXPECT_GE(clouds, 1);
    EXPECT_GE(deep_fades, 1);
}

TEST(pass_world, return_link_esn0_follows_range) {
    const auto& w = default_world();
    for (double t = 0.0; t < w.duration_s(); t += 11.0) {
        const auto s = w.at(t);
        EXPECT_EQ(s.return_up, s.elevation_deg >= w.settings().rf_mask_deg);
        if (s.return_up) {
            EXPECT_NEAR(s.return_esn0_db, w.settings().return_esn0_at_1000km_db - 20.0 * std::log10(s.range_km / 1000.0),
                        1e-9);
        }
    }
}

TEST(pass_world, seeded_reproducible_and_explicit_start_honoured) {
    pass_world::config c;
    c.seed = 99;
    const pass_world a(bundled_tle(), c), b(bundled_tle(), c);
    c.seed = 100;
    const pass_world other(bundled_tle(), c);
    int differ = 0;
    for (double t = 100.0; t < 600.0; t += 3.1) {
        EXPECT_EQ(a.at(t).rx_power_dbm, b.at(t).rx_power_dbm);
        differ += a.at(t).scintillation != other.at(t).scintillation;
    }
    EXPECT_GT(differ, 100);
    pass_world::config e;
    e.start = default_world().start() + std::chrono::seconds(100);
    const pass_world late(bundled_tle(), e);
    EXPECT_EQ(late.start(), *e.start);
    EXPECT_NEAR(late.at(0.0).elevation_deg, default_world().at(100.0).elevation_deg, 1e-9);
    // Out-of-range times clamp instead of reading outside the grid.
    EXPECT_EQ(late.at(-5.0).t, 0.0);
    EXPECT_EQ(late.at(1e9).t, late.duration_s());
    EXPECT_EQ(late.at(std::nan("")).t, 0.0);
}

TEST(pass_world, bad_configuration_names_the_field) {
    pass_world::config c;
    c.sample_rate_hz = 0.0;
    try {
        pass_world w(bundled_tle(), c);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("sample_rate_hz"), std::string::npos);
    }
    c = {};
    c.station.latitude_deg = 95.0;
    EXPECT_THROW(pass_world(bundled_tle(), c), std::invalid_argument);
    c = {};
    c.min_pass_elevation_deg = 89.9;  // no such pass within a week
    EXPECT_THROW(pass_world(bundled_tle(), c), std::runtime_error);
}

}  // namespace
