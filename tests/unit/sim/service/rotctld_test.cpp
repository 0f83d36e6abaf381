// Tests the simulated mount and the rotctld service, driven by Debian's real `rotctl` client.
#include "support/loopback.hpp"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/rotctld_server.hpp"

namespace {

using namespace qlink::sim;
using namespace std::chrono_literals;

time_point t0() { return *parse_iso8601_utc("2026-11-28T12:00:00Z"); }

TEST(sim_mount, slews_at_rate_limit_with_the_clock) {
    sim_clock clk(t0());
    sim_mount::config cfg;
    cfg.initial = {0.0, 0.0};
    cfg.slew_rate_deg_s = 6.0;
    sim_mount m(cfg, clk);
    ASSERT_TRUE(m.set_target(90.0, 45.0));
    clk.advance(5s);
    auto p = m.position();
    EXPECT_DOUBLE_EQ(p.azimuth_deg, 30.0);
    EXPECT_DOUBLE_EQ(p.elevation_deg, 30.0);
    clk.advance(5s);
    p = m.position();
    EXPECT_DOUBLE_EQ(p.azimuth_deg, 60.0);
    EXPECT_DOUBLE_EQ(p.elevation_deg, 45.0);  // reached and held, no overshoot
    m.stop();
    clk.advance(100s);
    EXPECT_DOUBLE_EQ(m.position().azimuth_deg, 60.0);
    EXPECT_FALSE(m.set_target(10.0, 91.0));
    EXPECT_FALSE(m.set_target(500.0, 10.0));
    EXPECT_FALSE(m.set_target(std::nan(""), 10.0));
    m.park();
    clk.advance(100s);
    EXPECT_DOUBLE_EQ(m.position().elevation_deg, 90.0);
    cfg.slew_rate_deg_s = -1.0;
    EXPECT_NE(sim_mount::validate(cfg).find("slew rate"), std::string::npos);
    EXPECT_THROW(sim_mount(cfg, clk), std::invalid_argument);
}

TEST(rotctld, protocol_replies_plain_and_extended) {
    sim_clock clk(t0());
    sim_mount m({}, clk);
    bool close = false;
    EXPECT_EQ(rotctld_reply("P 10 20", m, "info", close), "RPRT 0\n");
    clk.advance(100s);
    EXPECT_EQ(rotctld_reply("p", m, "info", close), "10.000000\n20.000000\n");
    EXPECT_EQ(rotctld_reply("\\get_pos", m, "info", close), "10.000000\n20.000000\n");
    EXPECT_EQ(rotctld_reply("+p", m, "info", close), "get_pos:\nAzimuth: 10.000000\nElevation: 20.000000\nRPRT 0\n");
    EXPECT_EQ(rotctld_reply(";p", m, "info", close), "get_pos:;Azimuth: 10.000000;Elevation: 20.000000;RPRT 0\n");
    EXPECT_EQ(rotctld_reply("+P 30 40", m, "info", close), "set_pos: 30 40\nRPRT 0\n");
    EXPECT_EQ(rotctld_reply("+\\set_pos 31 41\r", m, "info", close), "set_pos: 31 41\nRPRT 0\n");
    EXPECT_EQ(rotctld_reply("S", m, "info", close), "RPRT 0\n");
    EXPECT_EQ(rotctld_reply("+K", m, "info", close), "park:\nRPRT 0\n");
    EXPECT_EQ(rotctld_reply("_", m, "qlink sim", close), "qlink sim\n");
    EXPECT_EQ(rotctld_reply("+_", m, "qlink sim", close), "get_info:\nInfo: qlink sim\nRPRT 0\n");
    EXPECT_NE(rotctld_reply("\\dump_state", m, "", close).find("max_el=90.000000\n"), std::string::npos);
    EXPECT_FALSE(close);
    // Garbage, bad arguments, out of range, unknown and unmodelled commands.
    EXPECT_EQ(rotctld_reply("P abc 20", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("P 10", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("P 10 95", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("P 10 20 30", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("P nan 20", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("p extra", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("xyz", m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply(std::string("\x01\xff", 2), m, "", close), "RPRT -1\n");
    EXPECT_EQ(rotctld_reply("M 2 10", m, "", close), "RPRT -4\n");
    EXPECT_EQ(rotctld_reply("", m, "", close), "");
    EXPECT_EQ(rotctld_reply("q", m, "", close), "");
    EXPECT_TRUE(close);
}

struct run_result {
    int status;
    std::string out;
};

run_result run(const std::string& cmd) {
    run_result r{-1, {}};
    FILE* p = popen((cmd + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 512> buf{};
    while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
    r.status = pclose(p);
    return r;
}

std::string rotctl_cmd(std::uint16_t port) {
    return "rotctl -m 2 -r 127.0.0.1:" + std::to_string(port) + " ";
}

TEST(rotctld, real_rotctl_client_drives_the_simulated_mount) {
    ASSERT_EQ(run("command -v rotctl").status, 0) << "rotctl (Debian libhamlib-utils) is required";
    sim_clock clk(t0());
    sim_mount mount({}, clk);
    rotctld_server::config cfg;
    cfg.port = 0;
    cfg.info = "qlink test mount";
    auto srv = start_rotctld_server(cfg, mount);
    ASSERT_NE(srv->port(), 0);

    auto r = run(rotctl_cmd(srv->port()) + "P 10 20");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_DOUBLE_EQ(mount.target().azimuth_deg, 10.0);
    EXPECT_DOUBLE_EQ(mount.target().elevation_deg, 20.0);
    // Slewing from the initial (0, 90) at 6 deg/s: after 5 s az = 10 (arrived), el = 60.
    clk.advance(5s);
    r = run(rotctl_cmd(srv->port()) + "p");
    ASSERT_EQ(r.status, 0) << r.out;
    std::istringstream ss(r.out);
    double az = -1, el = -1;
    ss >> az >> el;
    EXPECT_NEAR(az, 10.0, 1e-3) << r.out;
    EXPECT_NEAR(el, 60.0, 1e-3) << r.out;

    r = run(rotctl_cmd(srv->port()) + "_");
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.out.find("qlink test mount"), std::string::npos) << r.out;
    r = run(rotctl_cmd(srv->port()) + "S K");
    EXPECT_EQ(r.status, 0) << r.out;
    EXPECT_DOUBLE_EQ(mount.target().elevation_deg, 90.0);  // parked
    // Out of range: the client reports the server's error.
    r = run(rotctl_cmd(srv->port()) + "P 10 95");
    EXPECT_NE(r.out.find("rror"), std::string::npos) << r.out;
    EXPECT_DOUBLE_EQ(mount.target().elevation_deg, 90.0);
    EXPECT_GE(srv->stats().connections.load(), 5u);
    srv->stop();
}

int connect_to(std::uint16_t port) { return qlink::test::connect_loopback(port); }

// Reads until `n` newlines or the peer closes (bounded by the receive timeout).
std::string read_lines(int fd, int n, bool* closed = nullptr) {
    std::string out;
    char c;
    int lines = 0;
    while (lines < n) {
        const auto k = recv(fd, &c, 1, 0);
        if (k <= 0) {
            if (closed) *closed = k == 0;
            break;
        }
        out += c;
        lines += c == '\n';
    }
    return out;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }

TEST(rotctld, garbage_and_disconnecting_clients_do_not_disturb_others) {
    sim_clock clk(t0());
    sim_mount mount({}, clk);
    rotctld_server::config cfg;
    cfg.port = 0;
    auto srv = start_rotctld_server(cfg, mount);

    const int good = connect_to(srv->port());
    ASSERT_GE(good, 0);
    send_all(good, "P 45 30\n");
    EXPECT_EQ(read_lines(good, 1), "RPRT 0\n");

    const int garbage = connect_to(srv->port());
    send_all(garbage, std::string("\x13\x37\xff\xfe junk\n", 10));
    EXPECT_EQ(read_lines(garbage, 1), "RPRT -1\n");
    send_all(garbage, "P 1 2 3 4\n");
    EXPECT_EQ(read_lines(garbage, 1), "RPRT -1\n");

    const int flood = connect_to(srv->port());
    send_all(flood, std::string(2000, 'A'));
    bool closed = false;
    EXPECT_EQ(read_lines(flood, 2, &closed), "RPRT -1\n");
    EXPECT_TRUE(closed);

    for (int i = 0; i < 20; ++i) {  // connect and vanish, some mid-line
        const int fd = connect_to(srv->port());
        if (i % 2) send_all(fd, "P 1");
        close(fd);
    }

    clk.advance(60s);
    send_all(good, "+p\n");
    EXPECT_EQ(read_lines(good, 4), "get_pos:\nAzimuth: 45.000000\nElevation: 30.000000\nRPRT 0\n");
    send_all(good, "q\n");
    EXPECT_EQ(read_lines(good, 1, &closed), "");
    EXPECT_TRUE(closed);
    close(good);
    close(garbage);
    close(flood);
    EXPECT_GE(srv->stats().errors.load(), 3u);
    srv->stop();
}

TEST(rotctld, refuses_bad_bind_address) {
    sim_clock clk(t0());
    sim_mount mount({}, clk);
    rotctld_server::config cfg;
    cfg.bind_address = "not-an-address";
    EXPECT_THROW(start_rotctld_server(cfg, mount), std::runtime_error);
}

}  // namespace
