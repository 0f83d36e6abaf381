// Tests qlinkd's sample-level RF return link ([rf] radio = "sim"): the real pass relay
// (`qlink-sim serve --pass`, TX_LLR), two qlinkd processes, user data from ground to space.
#include "support/child_process.hpp"
#include "support/loopback.hpp"
#include "support/source_path.hpp"
#include "support/temp_dir.hpp"
#include "unit/terminal/daemon/qlinkd_proc.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using qlink::test::daemon_proc;
using qlink::test::qlinkd_proc_detail::slurp;

using qlink::test::sample_tle_path;

// `qlink-sim serve --pass` over Delft with the bundled TLE; its announced air port and pass start.
struct pass_relay {
    fs::path out;
    qlink::test::child_process proc;
    int air_port = 0;
    std::string pass_start;

    pass_relay(const fs::path& dir, double speed)
        : out(dir / "relay.out"),
          proc({"sh", "-c",
                "exec " + std::string(QLINK_SIM_BIN) + " serve --pass --tle " + sample_tle_path() +
                    " --station 52.0116,4.3571,0 --speed " + std::to_string(speed) +
                    " --start-when 2 --air-port 0 --qkd-port 0 --return-bps 20000 > " + out.string() + " 2>&1"})
    {
        for (int i = 0; i < 500 && (air_port == 0 || pass_start.empty()); ++i) {
            std::this_thread::sleep_for(20ms);
            const std::string text = slurp(out);
            if (const auto p = text.find("air-port "); p != std::string::npos) air_port = std::atoi(text.c_str() + p + 9);
            if (const auto p = text.find("pass start "); p != std::string::npos) {
                const auto e = text.find(' ', p + 11);
                if (e != std::string::npos) pass_start = text.substr(p + 11, e - p - 11);
            }
        }
    }
};

std::string qlinkd_config(const std::string& role, int air_port, const std::string& extra)
{
    return "[link]\nrole = \"" + role + "\"\ndrain_timeout_s = 5\n[air]\nport = " + std::to_string(air_port) +
           "\nconnect_timeout_s = 30\n" + extra +
           "[keys]\nsource = \"memory\"\nmemory_seed = 5\nmemory_keys = 5000\n[arq]\nrto_min_ms = 2000\n";
}

std::string ground_extra(const std::string& epoch, bool precompensate)
{
    return "sim_epoch = \"" + epoch + "\"\n[station]\nlat_deg = 52.0116\nlon_deg = 4.3571\nalt_m = 0\n[satellite]\ntle = \"" +
           sample_tle_path() + "\"\n[rf]\nradio = \"sim\"\nprecompensate_doppler = " + (precompensate ? "true" : "false") + "\n";
}

struct run_result {
    std::vector<std::uint8_t> got;
    json ground_status, space_status;
};

// Ground's user sends `data` (the return link's direction); reads at space until all of it came or
// the pass clock passed `until_sim_s`. (The RF return link is up from ~70 s, above the 5 degree mask.)
run_result run_return_link(const fs::path& dir, bool precompensate, const std::vector<std::uint8_t>& data, double until_sim_s)
{
    run_result r;
    pass_relay relay(dir, 8.0);  // slow enough for an ASan build on a loaded machine
    EXPECT_GT(relay.air_port, 0) << slurp(relay.out);
    EXPECT_FALSE(relay.pass_start.empty()) << slurp(relay.out);
    if (relay.air_port == 0 || relay.pass_start.empty()) return r;
    daemon_proc space(dir, "space", qlinkd_config("space", relay.air_port, ""));
    daemon_proc ground(dir, "ground", qlinkd_config("ground", relay.air_port, ground_extra(relay.pass_start, precompensate)));
    EXPECT_TRUE(space.wait_ready()) << space.log();
    EXPECT_TRUE(ground.wait_ready()) << ground.log();
    if (::testing::Test::HasFailure()) return r;

    const int in = qlink::test::connect_loopback(static_cast<std::uint16_t>(ground.tcp), 30);
    const int out = qlink::test::connect_loopback(static_cast<std::uint16_t>(space.tcp), 30);
    EXPECT_GE(in, 0);
    EXPECT_GE(out, 0);
    if (in < 0 || out < 0) return r;
    std::thread writer([&] {
        for (std::size_t off = 0; off < data.size();) {
            const ssize_t n = ::send(in, data.data() + off, data.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
    });
    timeval tv{0, 200000};
    ::setsockopt(out, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::vector<std::uint8_t> buf(65536);
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (r.got.size() < data.size() && std::chrono::steady_clock::now() < deadline) {
        const ssize_t n = ::recv(out, buf.data(), buf.size(), 0);
        if (n > 0) r.got.insert(r.got.end(), buf.begin(), buf.begin() + n);
        if (n > 0) continue;
        const json s = ground.status();
        if (s.is_object() && s["sim_time"].is_number() && s["sim_time"].get<double>() > until_sim_s) break;
    }
    r.ground_status = ground.status();
    r.space_status = space.status();
    ::shutdown(in, SHUT_RDWR);
    writer.join();
    ::close(in);
    ::close(out);
    EXPECT_NE(space.terminate(30s), -1);
    EXPECT_NE(ground.terminate(30s), -1);
    return r;
}

std::vector<std::uint8_t> payload(std::size_t n)
{
    std::mt19937_64 rng(11);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

TEST(qlinkd_rf, return_link_through_the_station_rf_chain_delivers_user_data)
{
    qlink::test::temp_dir dir("qlinkd-rf");
    const auto data = payload(16000);
    const run_result r = run_return_link(dir.path, true, data, 400.0);
    ASSERT_EQ(r.got.size(), data.size()) << "ground: " << r.ground_status.dump() << "\nspace: " << r.space_status.dump();
    EXPECT_TRUE(r.got == data);

    // The samples went through the whole chain: pre-compensation of a LEO uplink Doppler (tens of
    // kHz), the satellite's uncorrected receiver locked on what was left (its own 800 Hz oscillator
    // error, little else), the LLRs it demodulated forwarded by the relay.
    const json& rf = r.ground_status["rf"];
    ASSERT_TRUE(rf.is_object()) << r.ground_status.dump();
    std::cout << "ground /status rf: " << rf.dump() << '\n';
    EXPECT_GT(rf["samples"].get<double>(), 1e5);
    EXPECT_GT(rf["llrs"].get<double>(), 2.0 * 16000 * 8);
    EXPECT_GT(rf["max_uplink_doppler_hz"].get<double>(), 50e3);
    EXPECT_GT(std::abs(rf["doppler_precomp_hz"].get<double>()), 10e3);
    EXPECT_TRUE(rf["satellite_locked"].get<bool>());
    EXPECT_LT(std::abs(rf["satellite_residual_hz"].get<double>()), 2000.0);
    EXPECT_EQ(rf["radio_errors"].get<double>(), 0.0);
    EXPECT_GT(rf["es_n0_db"].get<double>(), 0.0);
    EXPECT_TRUE(r.space_status["rf"].is_null());
}

TEST(qlinkd_rf, without_doppler_precompensation_the_satellite_decodes_nothing)
{
    // Same run with the pre-compensation off: tens of kHz of uplink Doppler at 20 kbit/s are
    // outside the satellite receiver's pull-in; no frame of the return link decodes, nothing arrives.
    qlink::test::temp_dir dir("qlinkd-rf-off");
    const auto data = payload(16000);
    const run_result r = run_return_link(dir.path, false, data, 160.0);
    EXPECT_TRUE(r.got.empty()) << r.got.size() << " bytes arrived";
    const json& rf = r.ground_status["rf"];
    ASSERT_TRUE(rf.is_object()) << r.ground_status.dump();
    std::cout << "ground /status rf: " << rf.dump() << '\n';
    EXPECT_GT(rf["samples"].get<double>(), 1e5);
    EXPECT_EQ(rf["doppler_precomp_hz"].get<double>(), 0.0);
    EXPECT_EQ(r.space_status["frames"]["rx_ok"].get<double>(), 0.0) << r.space_status.dump();
}

TEST(qlinkd_rf, check_config_builds_the_rf_chain)
{
    qlink::test::temp_dir dir("qlinkd-rf-check");
    const fs::path cfg = dir.path / "ground.toml";
    std::ofstream(cfg) << qlinkd_config("ground", 4000, ground_extra("2026-11-28T21:55:43Z", true));
    int st = 0;
    const std::string out = qlink::test::qlinkd_proc_detail::run(std::string(QLINK_QLINKD_BIN) + " --config " + cfg.string() +
                                                                     " --check-config 2>&1", &st);
    EXPECT_EQ(st, 0) << out;
    EXPECT_NE(out.find("rf sim"), std::string::npos) << out;
    // A TLE that is not there is found by the check, not at the first connection.
    std::ofstream(cfg) << qlinkd_config("ground", 4000, "sim_epoch = \"2026-11-28T21:55:43Z\"\n[station]\nlat_deg = 52\n"
                                                       "lon_deg = 4\nalt_m = 0\n[satellite]\ntle = \"/nonexistent.tle\"\n"
                                                       "[rf]\nradio = \"sim\"\n");
    const std::string bad = qlink::test::qlinkd_proc_detail::run(std::string(QLINK_QLINKD_BIN) + " --config " + cfg.string() +
                                                                     " --check-config 2>&1", &st);
    EXPECT_EQ(st, 2) << bad;
    EXPECT_NE(bad.find("satellite.tle"), std::string::npos) << bad;
}

}  // namespace
