// A 10-minute pass tracked through the rotctld port on the simulated clock (faster than real time).
#include "support/loopback.hpp"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/pass.hpp"
#include "qlink/sim/rotctld_server.hpp"

namespace {

using namespace qlink::sim;

int connect_to(std::uint16_t port) { return qlink::test::connect_loopback(port); }

std::string transact(int fd, const std::string& cmd, int lines) {
    if (send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size())) return {};
    std::string out;
    char c;
    while (lines > 0 && recv(fd, &c, 1, 0) == 1) {
        out += c;
        lines -= c == '\n';
    }
    return out;
}

TEST(tracking, mount_follows_a_pass_on_the_sim_clock) {
    const auto parsed = parse_tle("1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9998",
                                  "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012");
    ASSERT_TRUE(parsed.ok()) << parsed.error;
    const auto sat = create_sgp4_propagator(*parsed.value);
    const ground_station station({"munich", 48.0785, 11.2795, 600.0});
    // The 47 deg pass (oracle: AOS 2026-11-28T21:57:00, 11.3 minutes above the horizon).
    const auto found = find_next_pass(*sat, station, *parse_iso8601_utc("2026-11-28T21:30:00Z"));
    ASSERT_TRUE(found.pass);
    const pass_info p = *found.pass;
    ASSERT_GT(p.los - p.aos, std::chrono::minutes{10});
    ASSERT_GT(p.max_elevation_deg, 40.0);

    sim_clock clk(p.aos - std::chrono::seconds{60});
    sim_mount::config mc;
    mc.slew_rate_deg_s = 6.0;
    sim_mount mount(mc, clk);
    rotctld_server::config rc;
    rc.port = 0;
    auto srv = start_rotctld_server(rc, mount);
    const int fd = connect_to(srv->port());
    ASSERT_GE(fd, 0);

    // Pre-position at AOS, then command once per simulated second.
    const auto aos_look = station.observe(*sat, p.aos).look;
    char cmd[96];
    std::snprintf(cmd, sizeof cmd, "P %.4f %.4f\n", aos_look.azimuth_deg, std::max(0.0, aos_look.elevation_deg));
    ASSERT_EQ(transact(fd, cmd, 1), "RPRT 0\n");
    clk.advance(std::chrono::seconds{60});
    double worst = 0.0, last_az = aos_look.azimuth_deg;
    int steps = 0;
    for (time_point t = p.aos; t <= p.los; t += std::chrono::seconds{1}, ++steps) {
        const auto look = station.observe(*sat, t).look;
        const std::string reply = transact(fd, "p\n", 2);
        double az = 0, el = 0;
        ASSERT_EQ(std::sscanf(reply.c_str(), "%lf %lf", &az, &el), 2) << reply;
        // Pointing error against where the satellite is now (the mount was told 1 s ago).
        double daz = std::fmod(std::fabs(az - look.azimuth_deg), 360.0);
        daz = std::min(daz, 360.0 - daz);
        const double err = std::hypot(daz * std::cos(look.elevation_deg * M_PI / 180.0), el - look.elevation_deg);
        worst = std::max(worst, err);
        // Like any tracker, unwrap azimuth into the mount's [-180, 450] range so a pass
        // crossing north does not command a 360 deg slew.
        double cmd_az = look.azimuth_deg;
        while (cmd_az - last_az > 180.0 && cmd_az - 360.0 >= -180.0) cmd_az -= 360.0;
        while (last_az - cmd_az > 180.0 && cmd_az + 360.0 <= 450.0) cmd_az += 360.0;
        last_az = cmd_az;
        std::snprintf(cmd, sizeof cmd, "P %.4f %.4f\n", cmd_az, std::max(0.0, look.elevation_deg));
        ASSERT_EQ(transact(fd, cmd, 1), "RPRT 0\n") << cmd;
        clk.advance(std::chrono::seconds{1});
    }
    // LEO angular rate at 47 deg maximum elevation is below 1 deg/s: a 1 s command lag
    // with a 6 deg/s mount stays within about one second of motion.
    std::printf("tracked %d s, worst pointing error %.3f deg\n", steps, worst);
    EXPECT_GT(steps, 600);
    EXPECT_LT(worst, 1.0);
    close(fd);
    srv->stop();
}

}  // namespace
