// Tests the PAT's gating of the downlink receiver: LLRs pass only where the terminal pointed (FINE_TRACK or COMMUNICATION).
#include "pat_runner.hpp"

#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/qlinkd_config.hpp"
#include "support/source_path.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>
#include <vector>

namespace qlink::terminal {
namespace {

using namespace std::chrono_literals;

using qlink::test::sample_tle_path;

constexpr double delft_lat = 52.0116, delft_lon = 4.3571;

// Two minutes after AOS of the first pass above 30 degrees after the TLE's epoch: well above the mask.
std::string epoch_inside_the_pass()
{
    std::ifstream in(sample_tle_path());
    std::stringstream ss;
    ss << in.rdbuf();
    const auto r = sim::parse_tle_text(ss.str());
    EXPECT_TRUE(r.ok()) << r.error;
    if (!r.ok()) return "2026-11-28T13:00:00Z";
    const auto sat = sim::create_sgp4_propagator(r.sets.front());
    const sim::ground_station station({"delft", delft_lat, delft_lon, 0.0});
    sim::pass_search_config pc;
    pc.elevation_mask_deg = 10.0;
    auto t = std::chrono::time_point_cast<std::chrono::nanoseconds>(sat->elements().epoch());
    for (int i = 0; i < 20; ++i) {
        const auto p = sim::find_next_pass(*sat, station, t, pc);
        if (!p.pass) break;
        if (p.pass->max_elevation_deg > 30.0) return sim::format_iso8601_utc(p.pass->aos + 120s);
        t = p.pass->los;
    }
    ADD_FAILURE() << "no pass above 30 degrees";
    return "2026-11-28T13:00:00Z";
}

qlinkd_config ground(const std::string& epoch)
{
    auto c = parse_qlinkd_config("[link]\nrole = \"ground\"\n[air]\nport = 4000\nsim_epoch = \"" + epoch +
                                 "\"\n[keys]\nsource = \"memory\"\n[station]\nlat_deg = " + std::to_string(delft_lat) +
                                 "\nlon_deg = " + std::to_string(delft_lon) + "\nalt_m = 0\n[satellite]\ntle = \"" +
                                 sample_tle_path() + "\"\n[terminal]\npat = \"simulated\"\n");
    c.terminal.max_lag_s = 600.0;  // never skip: the test reads every step's state
    return c;
}

// Feeds the relay's channel state up to t (in 0.1 s steps) and waits (bounded) until the PAT stepped there.
bool run_until(pat_runner& r, double& fed, double t, bool link_up)
{
    for (; fed < t; fed = std::min(t, fed + 0.1)) r.advance_to(fed + 0.1 > t ? t : fed + 0.1, link_up);
    for (int i = 0; i < 12000 && r.covered_until() < t - 1e-9; ++i) std::this_thread::sleep_for(10ms);
    return r.covered_until() >= t - 1e-9;
}

std::size_t zeros(const std::vector<std::int8_t>& v, std::size_t from, std::size_t to)
{
    return static_cast<std::size_t>(std::count(v.begin() + static_cast<std::ptrdiff_t>(from), v.begin() + static_cast<std::ptrdiff_t>(to), 0));
}

TEST(pat_gate, downlink_passes_only_while_the_terminal_points)
{
    const qlinkd_config cfg = ground(epoch_inside_the_pass());
    pat_runner r(cfg, nullptr);
    r.start();
    constexpr double bps = 100.0;  // one LLR per 10 ms of simulated time

    // From the start: program track, then the acquisition scan; the downlink waits for fine pointing.
    double fed = 0.0;
    ASSERT_TRUE(run_until(r, fed, 60.0, true));
    ASSERT_EQ(r.snapshot().state, "COMMUNICATION");
    std::vector<std::int8_t> llrs(6000, 40);
    const std::size_t erased = r.gate(0.0, bps, llrs);
    EXPECT_EQ(erased, zeros(llrs, 0, llrs.size()));
    // Erased at the start (not pointing yet) and not at the end (pointing), one edge between unless
    // the loops dropped out and came back; every erased LLR is 0 and every other one untouched.
    EXPECT_EQ(llrs.front(), 0);
    EXPECT_EQ(llrs.back(), 40);
    EXPECT_GT(erased, 0u);
    EXPECT_LT(erased, 5000u);
    const auto first_kept = std::find(llrs.begin(), llrs.end(), 40) - llrs.begin();
    EXPECT_EQ(zeros(llrs, static_cast<std::size_t>(first_kept), llrs.size()), 0u);
    for (auto v : llrs) ASSERT_TRUE(v == 0 || v == 40);
    std::cout << "pointing from " << static_cast<double>(first_kept) / bps << " s (" << erased << " of 6000 LLRs erased), "
              << r.snapshot().transitions << " PAT transitions, time to acquire " << r.snapshot().time_to_acquire_s.value_or(-1) << " s\n";

    // A cloud: the beacon is gone, after signal_loss_timeout_s (0.5 s) the terminal re-acquires and
    // nothing it receives counts until it points again.
    ASSERT_TRUE(run_until(r, fed, 63.0, false));
    std::vector<std::int8_t> cloud(300, -40);
    const std::size_t e2 = r.gate(60.0, bps, cloud);
    EXPECT_EQ(zeros(cloud, 0, 40), 0u);     // 60.0 .. 60.4 s: still pointing (the loss timeout runs)
    EXPECT_EQ(zeros(cloud, 100, 300), 200u);  // 61 .. 63 s: re-acquiring
    EXPECT_EQ(e2, zeros(cloud, 0, 300));

    // The beacon back: pointing again within seconds, the downlink passes again.
    ASSERT_TRUE(run_until(r, fed, 90.0, true));
    std::vector<std::int8_t> after(2700, 40);
    r.gate(63.0, bps, after);
    EXPECT_EQ(after.back(), 40);
    EXPECT_EQ(after.front(), 0);
    r.stop();

    // LLRs that were erasures already (the relay's link-down) are not counted as the gate's.
    std::vector<std::int8_t> mixed(100, 0);
    mixed[10] = 5;
    EXPECT_EQ(r.gate(90.0, 1e9, mixed), 0u);  // 90 s: pointing
    EXPECT_EQ(mixed[10], 5);

    // Bad calls do nothing.
    std::vector<std::int8_t> none;
    EXPECT_EQ(r.gate(90.0, bps, none), 0u);
    EXPECT_EQ(r.gate(90.0, 0.0, after), 0u);
}

}  // namespace
}  // namespace qlink::terminal
