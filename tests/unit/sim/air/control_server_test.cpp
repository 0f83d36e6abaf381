// Tests the simulator's control port: scripted clouds reach the world's samples, over a real socket too.
#include <array>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "qlink/sim/control_server.hpp"
#include "qlink/sim/pass_world.hpp"

namespace {

using namespace qlink::sim;

pass_world make_world() {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    std::ifstream in(std::string(d ? d : ".") + "/sim/data/qlinksat-1.tle");
    std::stringstream ss;
    ss << in.rdbuf();
    const auto p = parse_tle_text(ss.str());
    EXPECT_TRUE(p.ok()) << p.error;
    pass_world::config c;
    c.clouds.mean_cloudy_s = 1e-3;  // practically no random clouds: what blocks the link is scripted
    c.clouds.mean_clear_s = 1e9;
    return pass_world(p.sets.front(), c);
}

// Mid-pass: the optical link is up unless a cloud blocks it.
double mid_pass(const pass_world& w) { return 0.5 * (w.aos_s() + w.los_s()); }

TEST(pass_world_scripted_clouds, block_data_and_quantum_links_only_inside_the_interval) {
    auto w = make_world();
    const double t = mid_pass(w);
    ASSERT_TRUE(w.at(t).link_up);
    ASSERT_GT(w.at(t).qkd_transmittance, 0.0);
    ASSERT_TRUE(w.add_cloud(t, 8.0));
    for (double u : {t, t + 4.0, t + 7.99}) {
        const auto s = w.at(u);
        EXPECT_TRUE(s.cloud_blocked) << u;
        EXPECT_FALSE(s.link_up) << u;
        EXPECT_EQ(s.photons_per_slot, 0.0) << u;
        EXPECT_EQ(s.qkd_transmittance, 0.0) << u;
        EXPECT_TRUE(s.return_up) << u;  // RF goes through clouds
    }
    EXPECT_TRUE(w.at(t - 0.5).link_up);
    EXPECT_TRUE(w.at(t + 8.0).link_up);
}

TEST(pass_world_scripted_clouds, refuses_bad_intervals_and_more_than_the_limit) {
    auto w = make_world();
    EXPECT_FALSE(w.add_cloud(10.0, 0.0));
    EXPECT_FALSE(w.add_cloud(10.0, -1.0));
    EXPECT_FALSE(w.add_cloud(10.0, 3601.0));
    EXPECT_FALSE(w.add_cloud(std::nan(""), 1.0));
    for (std::size_t i = 0; i < pass_world::max_scripted_clouds; ++i) EXPECT_TRUE(w.add_cloud(double(i), 0.5));
    EXPECT_FALSE(w.add_cloud(500.0, 1.0));
    EXPECT_TRUE(w.at(mid_pass(w)).link_up);  // the refused one added nothing
}

TEST(sim_control, replies_to_each_command_and_names_what_is_wrong) {
    auto w = make_world();
    pass_clock clk(w.duration_s(), 10.0);
    bool close = false;
    EXPECT_EQ(sim_control_reply("time", w, clk, close), "OK time 0.000\n");
    EXPECT_EQ(sim_control_reply("cloud 5", w, clk, close), "OK cloud 0.000 5.000\n");
    const double t = mid_pass(w);
    const std::string at = std::to_string(t);
    EXPECT_EQ(sim_control_reply("cloud " + at + " 6.5", w, clk, close).rfind("OK cloud ", 0), 0u);
    EXPECT_FALSE(w.at(t + 3).link_up);
    EXPECT_TRUE(w.at(t + 7).link_up);
    EXPECT_EQ(sim_control_reply("cloud 0", w, clk, close).rfind("ERR cloud: duration_s", 0), 0u);
    EXPECT_EQ(sim_control_reply("cloud x 5", w, clk, close).rfind("ERR cloud: at_s", 0), 0u);
    EXPECT_EQ(sim_control_reply("cloud 1 2 3", w, clk, close).rfind("ERR unknown", 0), 0u);
    EXPECT_EQ(sim_control_reply("launch", w, clk, close).rfind("ERR unknown", 0), 0u);
    EXPECT_EQ(sim_control_reply("cloud \x01", w, clk, close).rfind("ERR not a text line", 0), 0u);
    EXPECT_FALSE(close);
    EXPECT_EQ(sim_control_reply("help", w, clk, close).rfind("OK commands", 0), 0u);
    EXPECT_EQ(sim_control_reply("", w, clk, close), "");
    EXPECT_EQ(sim_control_reply("quit", w, clk, close), "");
    EXPECT_TRUE(close);
}

std::string talk(int fd, const std::string& line) {
    EXPECT_EQ(::send(fd, line.data(), line.size(), MSG_NOSIGNAL), static_cast<ssize_t>(line.size()));
    std::string reply;
    char c = 0;
    while (::recv(fd, &c, 1, 0) == 1) {
        reply += c;
        if (c == '\n') break;
    }
    return reply;
}

TEST(sim_control, serves_over_loopback_tcp_and_survives_garbage) {
    auto w = make_world();
    pass_clock clk(w.duration_s(), 10.0);
    auto srv = start_control_server({}, w, clk);
    ASSERT_NE(srv->port(), 0);
    auto connect = [&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        timeval tv{5, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(srv->port());
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        return fd;
    };
    const int fd = connect();
    const double t = mid_pass(w);
    EXPECT_EQ(talk(fd, "cloud " + std::to_string(t) + " 4\r\n").rfind("OK cloud ", 0), 0u);
    EXPECT_FALSE(w.at(t + 1).link_up);
    EXPECT_EQ(talk(fd, "bogus\n").rfind("ERR", 0), 0u);
    // A line over the limit is refused and that connection closed; others are unaffected.
    const int fd2 = connect();
    EXPECT_EQ(talk(fd2, std::string(400, 'x') + "\n"), "ERR line too long\n");
    ::close(fd2);
    EXPECT_EQ(talk(fd, "time\n"), "OK time 0.000\n");
    ::close(fd);
    EXPECT_EQ(srv->stats().connections.load(), 2u);
    EXPECT_EQ(srv->stats().errors.load(), 2u);
    srv->stop();
}

}  // namespace
