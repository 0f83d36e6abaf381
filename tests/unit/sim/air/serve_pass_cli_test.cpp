// Tests `qlink-sim serve --pass` as a process: parseable port lines, clients served to END_OF_PASS, clean exit, bad options.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/air_client.hpp"
#include "qlink/sim/pass_world.hpp"

namespace {

using namespace qlink::sim;

// A named default config (a temporary one trips GCC 12's -Wmaybe-uninitialized at -O3).
const pass_world::config& default_config() {
    static const pass_world::config c;
    return c;
}

std::string src(const std::string& rel) {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    return std::string(d ? d : ".") + "/" + rel;
}

struct run_result {
    int exit_code = -1;
    std::string out;
};

run_result run(const std::string& args) {
    run_result r;
    FILE* p = popen((std::string(QLINK_SIM_EXE) + " " + args + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 512> buf{};
    while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
    const int st = pclose(p);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

TEST(serve_pass_cli, bad_options_are_one_line_and_exit_2) {
    for (const char* args : {"serve --pass", "serve --pass --tle /nonexistent.tle", "serve --pass --tle TLE --speed 0",
                             "serve --pass --tle TLE --downlink-bps abc", "serve --pass --tle TLE --bogus 1",
                             "serve --pass --tle TLE --station 95,0,0", "serve --pass --tle TLE --cloud 10",
                             "serve --pass --tle TLE --cloud a:5", "serve --pass --tle TLE --cloud 10:0",
                             "serve --pass --tle TLE --cloud 10:5,20", "serve --pass --tle TLE --control-port x"}) {
        std::string a = args;
        if (auto k = a.find("TLE"); k != std::string::npos) a.replace(k, 3, src("sim/data/qlinksat-1.tle"));
        const auto r = run(a);
        EXPECT_EQ(r.exit_code, 2) << a << "\n" << r.out;
        EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << a << "\n" << r.out;
    }
}

TEST(serve_pass_cli, prints_ports_serves_a_short_pass_and_exits_after_it) {
    std::ifstream in(src("sim/data/qlinksat-1.tle"));
    std::stringstream ss;
    ss << in.rdbuf();
    const pass_world def(parse_tle_text(ss.str()).sets.front(), default_config());
    const std::string start = format_iso8601_utc(def.pass().los - std::chrono::seconds(5));
    const std::string cmd = std::string(QLINK_SIM_EXE) + " serve --pass --tle " + src("sim/data/qlinksat-1.tle") +
                            " --station 52.0116,4.3571,0 --start " + start +
                            " --speed 50 --start-when 2 --downlink-bps 20000 --return-bps 2000 --seed 3 --exit-after-pass";
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_TRUE(p);
    int air_port = -1, qkd_port = -1;
    bool ready = false;
    std::array<char, 512> buf{};
    while (!ready && fgets(buf.data(), buf.size(), p)) {
        const std::string line = buf.data();
        std::sscanf(line.c_str(), "air-port %d", &air_port);
        std::sscanf(line.c_str(), "qkd-port %d", &qkd_port);
        ready = line == "ready\n";
    }
    ASSERT_TRUE(ready);
    ASSERT_GT(air_port, 0);
    ASSERT_GT(qkd_port, 0);
    air_client::config c;
    c.port = static_cast<std::uint16_t>(air_port);
    c.io_timeout_ms = 20000;
    std::string err;
    c.role = air_role::ground;
    auto g = air_client::connect(c, err);
    ASSERT_TRUE(g) << err;
    EXPECT_EQ(g->downlink_bps(), 20000.0);
    EXPECT_EQ(g->return_bps(), 2000.0);
    c.role = air_role::space;
    auto s = air_client::connect(c, err);  // the second client starts the clock
    ASSERT_TRUE(s) << err;
    std::vector<std::uint8_t> bits(2000, 1);
    ASSERT_TRUE(s->send_bits(bits).ok());
    air_message m;
    air_io_result r;
    std::size_t llrs = 0;
    for (int i = 0; i < 1000; ++i) {
        r = g->receive(m);
        if (!r.ok()) break;
        llrs += m.llrs.size();
    }
    EXPECT_EQ(r.status, air_status::end_of_pass);
    EXPECT_EQ(llrs, bits.size());
    EXPECT_EQ(s->receive(m).status, air_status::end_of_pass);
    g.reset();
    s.reset();
    while (fgets(buf.data(), buf.size(), p)) {
    }
    const int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

}  // namespace
