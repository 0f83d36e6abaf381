// Tests the simulated mount's slew limits and the az/el mapping onto mount axes.
#include "qlink/hw/mount.hpp"

#include <gtest/gtest.h>

namespace qlink::hw {
namespace {

TEST(sim_mount, slews_at_the_configured_rates) {
    sim::sim_clock clock(sim::time_point{});
    sim_mount_config cfg;
    cfg.slew_rate_deg_s = 5.0;
    cfg.initial = {0.0, 10.0};
    auto m = create_sim_mount(cfg, clock);
    ASSERT_TRUE(m->set_position({100.0, 30.0}));
    clock.advance(sim::seconds_d(4.0));
    az_el pos;
    ASSERT_TRUE(m->get_position(pos));
    EXPECT_DOUBLE_EQ(pos.az_deg, 20.0);
    EXPECT_DOUBLE_EQ(pos.el_deg, 30.0);  // 20 degrees at 5 deg/s: arrived
    clock.advance(sim::seconds_d(100.0));
    ASSERT_TRUE(m->get_position(pos));
    EXPECT_DOUBLE_EQ(pos.az_deg, 100.0);
    EXPECT_DOUBLE_EQ(pos.el_deg, 30.0);
}

TEST(sim_mount, stop_holds_and_park_returns) {
    sim::sim_clock clock(sim::time_point{});
    sim_mount_config cfg;
    cfg.slew_rate_deg_s = 6.0;
    cfg.initial = {0.0, 0.0};
    cfg.park = {0.0, 90.0};
    auto m = create_sim_mount(cfg, clock);
    ASSERT_TRUE(m->set_position({60.0, 0.0}));
    clock.advance(sim::seconds_d(2.0));
    ASSERT_TRUE(m->stop());
    clock.advance(sim::seconds_d(10.0));
    az_el pos;
    ASSERT_TRUE(m->get_position(pos));
    EXPECT_DOUBLE_EQ(pos.az_deg, 12.0);
    ASSERT_TRUE(m->park());
    clock.advance(sim::seconds_d(60.0));
    ASSERT_TRUE(m->get_position(pos));
    EXPECT_DOUBLE_EQ(pos.az_deg, 0.0);
    EXPECT_DOUBLE_EQ(pos.el_deg, 90.0);
}

TEST(sim_mount, refuses_targets_outside_its_range) {
    sim::sim_clock clock(sim::time_point{});
    auto m = create_sim_mount({}, clock);
    mount_result r = m->set_position({10.0, 95.0});
    EXPECT_EQ(r.code, mount_errc::rejected);
    EXPECT_EQ(m->counters().rejected, 1u);
}

TEST(map_to_mount, continues_past_north_instead_of_unwinding) {
    mount_limits limits{0.0, 450.0, 0.0, 90.0};
    az_el out;
    ASSERT_TRUE(map_to_mount({10.0, 30.0}, 350.0, limits, false, out));
    EXPECT_DOUBLE_EQ(out.az_deg, 370.0);
    ASSERT_TRUE(map_to_mount({10.0, 30.0}, 40.0, limits, false, out));
    EXPECT_DOUBLE_EQ(out.az_deg, 10.0);
    // 100 degrees has no alternative below 450 other than itself.
    ASSERT_TRUE(map_to_mount({100.0, 30.0}, 440.0, limits, false, out));
    EXPECT_DOUBLE_EQ(out.az_deg, 100.0);
}

TEST(map_to_mount, flip_mode_and_round_trip) {
    mount_limits flip_limits{0.0, 360.0, 0.0, 180.0};
    az_el out;
    ASSERT_TRUE(map_to_mount({300.0, 70.0}, 100.0, flip_limits, true, out));
    EXPECT_DOUBLE_EQ(out.az_deg, 120.0);
    EXPECT_DOUBLE_EQ(out.el_deg, 110.0);
    az_el sky = mount_to_sky(out);
    EXPECT_NEAR(sky.az_deg, 300.0, 1e-9);
    EXPECT_NEAR(sky.el_deg, 70.0, 1e-9);
}

TEST(map_to_mount, reports_unreachable_directions) {
    mount_limits limits{0.0, 450.0, 0.0, 90.0};
    az_el out;
    EXPECT_FALSE(map_to_mount({10.0, 30.0}, 0.0, limits, true, out));  // flip needs el > 90
    mount_limits narrow{0.0, 180.0, 0.0, 90.0};
    EXPECT_FALSE(map_to_mount({270.0, 30.0}, 0.0, narrow, false, out));
}

}  // namespace
}  // namespace qlink::hw
