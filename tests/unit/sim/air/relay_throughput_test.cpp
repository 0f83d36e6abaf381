// Measures the air relay's downlink capacity in bits per wall second (label slow; figures in docs/performance.md, "Full pass").
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "qlink/sim/air_relay.hpp"

namespace {

using namespace qlink::sim;

// A named default config (a temporary one trips GCC 12's -Wmaybe-uninitialized at -O3).
const pass_world::config& default_config() {
    static const pass_world::config c;
    return c;
}

// CPU seconds of the whole process (relay thread, client threads): on a shared machine the wall
// figure says what this run got, the CPU figure what the relay costs.
double cpu_seconds() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec * 1e-6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec * 1e-6;
}

// Unpaced (line rate x speed far above what the host can do): the relay runs as fast as its
// channel processing and loopback TCP allow. Correctness is asserted, speed only printed.
TEST(air_relay_throughput, downlink_bits_per_wall_second) {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    std::ifstream in(std::string(d ? d : ".") + "/sim/data/qlinksat-1.tle");
    std::stringstream ss;
    ss << in.rdbuf();
    const tle el = parse_tle_text(ss.str()).sets.front();
    const pass_world def(el, default_config());
    pass_world::config wc;
    wc.start = def.pass().max_elevation_time - std::chrono::seconds(60);  // link up: photon counting on every bit
    const pass_world world(el, wc);
    pass_clock clock(world.duration_s(), 1.0, 2);  // speed 1: the pass stays in the link-up minute
    air_relay::config rc;
    rc.downlink_bps = 1e9;  // pacing at 1 Gbit/s x 1: never the limit here
    rc.return_bps = 1e9;
    auto relay = start_air_relay(rc, world, clock);
    air_client::config cc;
    cc.port = relay->port();
    cc.io_timeout_ms = 60000;
    cc.max_message_bits = 1u << 17;
    std::string err;
    cc.role = air_role::ground;
    auto ground = air_client::connect(cc, err);
    ASSERT_TRUE(ground) << err;
    cc.role = air_role::space;
    auto space = air_client::connect(cc, err);
    ASSERT_TRUE(space) << err;

    const std::size_t msg_bits = 65536, messages = 400;  // 26 Mbit
    std::vector<std::uint8_t> packed(msg_bits / 8);
    std::mt19937_64 g(1);
    for (auto& b : packed) b = static_cast<std::uint8_t>(g());
    const auto t0 = std::chrono::steady_clock::now();
    const double cpu0 = cpu_seconds();
    std::thread tx([&] {
        for (std::size_t m = 0; m < messages; ++m) ASSERT_TRUE(space->send_packed(packed, msg_bits).ok());
    });
    std::size_t got = 0, erased = 0;
    air_message msg;
    while (got < msg_bits * messages) {
        const auto r = ground->receive(msg);
        ASSERT_TRUE(r.ok()) << r.error;
        got += msg.llrs.size();
        for (auto v : msg.llrs) erased += v == 0;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    tx.join();
    const double cpu = cpu_seconds() - cpu0;
    EXPECT_EQ(got, msg_bits * messages);
    EXPECT_LT(erased, got / 2);  // the link was up: real photon-counting LLRs, not erasures
    std::printf("air relay downlink: %zu bits in %.3f s wall = %.3g bit/s; %.3f CPU s (relay + both clients) = %.3g bit "
                "per CPU second (link up, %zu-bit messages)\n",
                got, wall, got / wall, cpu, got / cpu, msg_bits);
    RecordProperty("downlink_bits_per_wall_second", std::to_string(got / wall));
}

}  // namespace
