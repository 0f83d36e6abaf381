// Tests qlinkd's mount selection: [terminal] mount keys, and the PAT runner driving Debian's real rotctld (dummy rotator).
#include "pat_runner.hpp"

#include "qlink/hw/mount.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/qlinkd_config.hpp"
#include "support/child_process.hpp"
#include "support/source_path.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <functional>
#include <mutex>
#include <numbers>
#include <sstream>
#include <thread>

namespace qlink::terminal {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

using qlink::test::sample_tle_path;

// Delft, as the demo's station.
constexpr double delft_lat = 52.0116, delft_lon = 4.3571;

std::string ground_config(const std::string& terminal_extra, const std::string& sim_epoch = "2026-11-28T13:00:00Z")
{
    return "[link]\nrole = \"ground\"\n[air]\nport = 4000\nsim_epoch = \"" + sim_epoch +
           "\"\n[keys]\nsource = \"memory\"\n[station]\nlat_deg = " + std::to_string(delft_lat) +
           "\nlon_deg = " + std::to_string(delft_lon) + "\nalt_m = 0\n[satellite]\ntle = \"" + sample_tle_path() +
           "\"\n[terminal]\npat = \"simulated\"\n" + terminal_extra;
}

std::string error_of(const std::string& text)
{
    try {
        parse_qlinkd_config(text);
    } catch (const qlinkd_config_error& e) {
        return e.what();
    }
    return "";
}

TEST(qlinkd_mount_config, simulated_by_default_rotctld_reads_its_keys)
{
    const auto sim = parse_qlinkd_config(ground_config(""));
    EXPECT_EQ(sim.terminal.mount, mount_kind::simulated);
    EXPECT_EQ(sim.terminal.mount_rate_hz, 1000.0);
    EXPECT_EQ(make_pat_config(sim).mount_rate_hz, 1000.0);
    EXPECT_EQ(sim.terminal.mount_limits.az_max_deg, 450.0);

    const auto def = parse_qlinkd_config(ground_config("mount = \"rotctld\"\n"));
    EXPECT_EQ(def.terminal.mount, mount_kind::rotctld);
    EXPECT_EQ(def.terminal.mount_rate_hz, 10.0);  // a real rotator's rate, wall clock
    EXPECT_EQ(def.terminal.mount_host, "127.0.0.1");
    EXPECT_EQ(def.terminal.mount_port, 4533);
    EXPECT_EQ(def.terminal.mount_timeout_ms, 1000.0);
    // The simulated gimbal twin the optics see keeps the rate COMMUNICATION needs.
    EXPECT_EQ(make_pat_config(def).mount_rate_hz, 1000.0);

    const auto c = parse_qlinkd_config(ground_config(
        "mount = \"rotctld\"\nmount_address = \"rotator.local:4600\"\nmount_rate_hz = 5\nmount_timeout_ms = 300\nmount_settle_deg = 2\n"
        "mount_az_min_deg = -180\nmount_az_max_deg = 270\nmount_el_min_deg = 0\nmount_el_max_deg = 180\nmount_flip = true\n"));
    EXPECT_EQ(c.terminal.mount_host, "rotator.local");
    EXPECT_EQ(c.terminal.mount_port, 4600);
    EXPECT_EQ(c.terminal.mount_rate_hz, 5.0);
    EXPECT_EQ(c.terminal.mount_timeout_ms, 300.0);
    EXPECT_EQ(c.terminal.mount_settle_deg, 2.0);
    EXPECT_EQ(def.terminal.mount_settle_deg, 0.5);
    EXPECT_EQ(c.terminal.mount_limits.az_min_deg, -180.0);
    EXPECT_EQ(c.terminal.mount_limits.az_max_deg, 270.0);
    EXPECT_EQ(c.terminal.mount_limits.el_max_deg, 180.0);
    EXPECT_TRUE(c.terminal.mount_flip);
    EXPECT_TRUE(make_pat_config(c).flip_mount);
}

TEST(qlinkd_mount_config, errors_name_the_key_and_what_is_allowed)
{
    const std::string minimal_space = "[link]\nrole = \"space\"\n[air]\nport = 4000\n[keys]\nsource = \"memory\"\n";
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {ground_config("mount = \"hamlib\"\n"), {"terminal.mount", "\"hamlib\"", "simulated, rotctld"}},
        {ground_config("mount = \"rotctld\"\nmount_address = \"127.0.0.1\"\n"), {"terminal.mount_address", "host:port"}},
        {ground_config("mount = \"rotctld\"\nmount_address = \"127.0.0.1:0\"\n"), {"terminal.mount_address", "host:port"}},
        {ground_config("mount_address = \"127.0.0.1:4533\"\n"), {"terminal.mount_address", "only used", "rotctld"}},
        {ground_config("mount_timeout_ms = 500\n"), {"terminal.mount_timeout_ms", "only used"}},
        {ground_config("mount_settle_deg = 1\n"), {"terminal.mount_settle_deg", "only used"}},
        {ground_config("mount = \"rotctld\"\nmount_settle_deg = 0\n"), {"terminal.mount_settle_deg", "0.01..20"}},
        {ground_config("mount = \"rotctld\"\nmount_rate_hz = 100\n"), {"terminal.mount_rate_hz", "1..50"}},
        {ground_config("mount = \"rotctld\"\nmount_timeout_ms = 10\n"), {"terminal.mount_timeout_ms", "50..10000"}},
        {ground_config("mount_rate_hz = 0.5\n"), {"terminal.mount_rate_hz", "1..20000"}},
        {minimal_space + "[terminal]\nmount = \"rotctld\"\n", {"terminal.mount", "terminal.pat", "simulated"}},
        {ground_config("mount_az_min_deg = 0\nmount_az_max_deg = 300\n"), {"terminal.mount_az_max_deg", "360"}},
        {ground_config("mount_el_max_deg = 200\n"), {"terminal.mount_el_max_deg", "90..180"}},
        {ground_config("mount_flip = true\n"), {"terminal.mount_el_max_deg", "mount_flip", "170"}},
        {ground_config("mount_flip = \"yes\"\n"), {"terminal.mount_flip", "true or false"}},
    };
    for (const auto& [text, needles] : cases) {
        const std::string e = error_of(text);
        ASSERT_FALSE(e.empty()) << text;
        for (const auto& n : needles) EXPECT_NE(e.find(n), std::string::npos) << "'" << n << "' not in: " << e;
    }
}

// ---- against Debian's rotctld -m 1 (Hamlib 4.5 dummy rotator: starts at az 0 el 0, slews 6 deg/s
// per axis, refuses el > 90, reports two decimals) ----

/// A plain rotctld client of the test's own (not qlink's) for `p`.
class rotctl_probe {
public:
    explicit rotctl_probe(unsigned short port)
    {
        hw::rotctld_config c;
        c.port = port;
        c.timeout = 500ms;
        c.limits = {-360.0, 720.0, -90.0, 180.0};
        m_ = hw::create_rotctld_mount(c);
    }
    std::optional<hw::az_el> position()
    {
        hw::az_el p;
        if (!m_->get_position(p)) return std::nullopt;
        return p;
    }

private:
    std::unique_ptr<hw::mount> m_;
};

struct pass_point {
    sim::time_point start;  ///< sim_epoch: a time inside the pass
    double cost_deg = 0.0;  ///< the dummy's slew from (0, 0) to the pass there
};

class qlinkd_mount_rotctld : public ::testing::Test {
protected:
    void SetUp() override
    {
        std::ifstream in(sample_tle_path());
        std::stringstream ss;
        ss << in.rdbuf();
        const auto r = sim::parse_tle_text(ss.str());
        ASSERT_TRUE(r.ok()) << r.error;
        sat_ = sim::create_sgp4_propagator(r.sets.front());
        station_ = std::make_unique<sim::ground_station>(sim::ground_station::config{"delft", delft_lat, delft_lon, 0.0});
        port_ = test::free_tcp_port();
        start_rotctld();
    }

    void start_rotctld()
    {
        rotctld_ = std::make_unique<test::child_process>(
            std::vector<std::string>{"rotctld", "-m", "1", "-T", "127.0.0.1", "-t", std::to_string(port_)});
        ASSERT_TRUE(test::wait_for_tcp(port_)) << "rotctld did not start (is libhamlib-utils installed?)";
    }

    sim::look_angles look(sim::time_point t) const { return station_->observe(*sat_, t).look; }

    /// A second of the first pass above 30 degrees after the TLE epoch where the satellite is above
    /// 20 degrees for the next minute and nearest (in the dummy's slew) to where the dummy starts: the
    /// dummy slews at 6 deg/s, so the test waits cost / 6 s before the mount can be on the track.
    pass_point pick_start() const
    {
        sim::pass_search_config pc;
        pc.elevation_mask_deg = 10.0;
        auto t = std::chrono::time_point_cast<std::chrono::nanoseconds>(sat_->elements().epoch());
        std::optional<sim::pass_info> pass;
        for (int i = 0; i < 20 && !pass; ++i) {
            const auto r = sim::find_next_pass(*sat_, *station_, t, pc);
            if (!r.pass) break;
            if (r.pass->max_elevation_deg > 30.0) pass = r.pass;
            t = r.pass->los;
        }
        EXPECT_TRUE(pass.has_value());
        pass_point best{};
        best.cost_deg = 1e9;
        if (!pass) return best;
        for (auto s = pass->aos; s + 60s < pass->los; s += 1s) {
            const auto a = look(s);
            if (a.elevation_deg < 20.0 || look(s + 60s).elevation_deg < 20.0) continue;
            const double az = a.azimuth_deg > 180.0 ? a.azimuth_deg - 360.0 : a.azimuth_deg;  // limits -180..450
            const double cost = std::max(std::abs(az), a.elevation_deg);
            if (cost < best.cost_deg) best = {s, cost};
        }
        return best;
    }

    qlinkd_config make_config(const pass_point& p) const
    {
        auto c = parse_qlinkd_config(ground_config("mount = \"rotctld\"\nmount_address = \"127.0.0.1:" + std::to_string(port_) +
                                                       "\"\nmount_timeout_ms = 300\nmount_az_min_deg = -180\n",
                                                   sim::format_iso8601_utc(p.start)));
        c.terminal.max_lag_s = 30.0;  // an ASan build on a loaded machine may fall behind: never skip
        return c;
    }

    /// Angle between where the mount looks and the ephemeris (degrees, small-angle).
    double pointing_error_deg(hw::az_el axes, const sim::look_angles& want) const
    {
        const hw::az_el sky = hw::mount_to_sky(axes);
        double daz = sky.az_deg - want.azimuth_deg;
        daz -= 360.0 * std::round(daz / 360.0);
        const double c = std::cos(want.elevation_deg * std::numbers::pi / 180.0);
        return std::hypot(daz * c, sky.el_deg - want.elevation_deg);
    }

    /// Feeds the runner the relay's time at `speed` x wall clock (link up), every 20 ms, from where
    /// it was, until `done` or `max` wall time; returns whether `done` held.
    bool feed(pat_runner& r, double speed, std::chrono::milliseconds max, const std::function<bool()>& done = {})
    {
        const auto t0 = steady::now();
        const double sim0 = sim_s_;
        while (steady::now() - t0 < max) {
            sim_s_ = sim0 + speed * std::chrono::duration<double>(steady::now() - t0).count();
            r.advance_to(sim_s_, true);
            if (done && done()) return true;
            std::this_thread::sleep_for(20ms);
        }
        return !done;
    }

    /// Waits (bounded) until the runner's PAT has caught up with the fed time.
    void settle(pat_runner& r)
    {
        for (int i = 0; i < 100 && r.snapshot().sim_time < sim_s_ - 0.05; ++i) std::this_thread::sleep_for(10ms);
    }

    std::unique_ptr<sim::sgp4_propagator> sat_;
    std::unique_ptr<sim::ground_station> station_;
    unsigned short port_ = 0;
    std::unique_ptr<test::child_process> rotctld_;
    double sim_s_ = 0.0;
};

struct event_record {
    std::mutex mu;
    std::vector<std::string> events;
    std::vector<std::pair<pat_transition, double>> transitions;  ///< with the runner's sim_time
    void add(const pat_transition& t, double sim_s)
    {
        std::lock_guard lk(mu);
        transitions.emplace_back(t, sim_s);
    }
    std::vector<std::pair<pat_transition, double>> get_transitions()
    {
        std::lock_guard lk(mu);
        return transitions;
    }
    void add(std::string_view e)
    {
        std::lock_guard lk(mu);
        events.emplace_back(e);
    }
    std::vector<std::string> get()
    {
        std::lock_guard lk(mu);
        return events;
    }
};

TEST_F(qlinkd_mount_rotctld, program_track_commands_the_real_mount_and_survives_a_rotctld_restart)
{
    const pass_point p = pick_start();
    ASSERT_LT(p.cost_deg, 60.0) << "no pass segment the dummy can reach within 10 s";
    event_record ev;
    pat_runner runner(
        make_config(p), [&](const pat_transition& t, double sim_s, double) { ev.add(t, sim_s); },
        [&](std::string_view e, const mount_snapshot&) { ev.add(e); });
    const auto wall0 = steady::now();
    runner.start();
    rotctl_probe probe(port_);

    // Slew from (0, 0) at 6 deg/s, then track.
    const auto arrive = std::chrono::milliseconds(static_cast<int>(p.cost_deg / 6.0 * 1000.0) + 2500);
    feed(runner, 1.0, arrive);

    // Three looks 0.4 s apart: the dummy is on the ephemeris each time (it moved between them).
    // 0.1 deg: the dummy's 0.01-degree steps, the command lead (0.1 s at < 1 deg/s here) and the
    // instant of the `p` against the PAT's time; a dummy left behind or commanded elsewhere is off
    // by degrees (it starts 'cost' degrees away).
    for (int i = 0; i < 3; ++i) {
        feed(runner, 1.0, 400ms);
        settle(runner);
        const double t = runner.snapshot().sim_time;
        const auto pos = probe.position();
        ASSERT_TRUE(pos.has_value());
        const auto want = look(p.start + sim::seconds_d(t));
        std::cout << "t " << t << " s: dummy az " << pos->az_deg << " el " << pos->el_deg << ", SGP4 az " << want.azimuth_deg
                  << " el " << want.elevation_deg << ": " << pointing_error_deg(*pos, want) << " deg off (start cost "
                  << p.cost_deg << " deg)\n";
        EXPECT_LT(pointing_error_deg(*pos, want), 0.1)
            << "t " << t << " s: mount az " << pos->az_deg << " el " << pos->el_deg << ", ephemeris az " << want.azimuth_deg
            << " el " << want.elevation_deg;
    }
    {
        const auto s = runner.snapshot();
        EXPECT_EQ(s.mount.backend, "rotctld");
        EXPECT_EQ(s.mount.health, "ok");
        EXPECT_EQ(s.mount.failed_commands, 0u);
        // mount_rate_hz = 10 (wall): a p and a P per cycle, not the PAT's 1000 commands a second.
        const double wall_s = std::chrono::duration<double>(steady::now() - wall0).count();
        std::cout << s.mount.device.commands << " rotctld commands in " << wall_s << " s\n";
        EXPECT_GT(static_cast<double>(s.mount.device.commands), 0.5 * 2 * 10 * wall_s);
        EXPECT_LT(static_cast<double>(s.mount.device.commands), 1.25 * 2 * 10 * wall_s + 5);
        EXPECT_NE(s.state, "IDLE");
        ASSERT_TRUE(s.mount.position.has_value());
        ASSERT_TRUE(s.mount.error_deg.has_value());
        EXPECT_LT(*s.mount.error_deg, 0.5);
    }

    // rotctld dies mid-pass: the failure is counted and logged once, the PAT ends the pass with the
    // mount stopped and is held idle; nothing crashes.
    rotctld_->kill(SIGKILL);
    const bool went_idle = feed(runner, 1.0, 8000ms, [&] {
        const auto s = runner.snapshot();
        return s.mount.health == "fault" && s.state == "IDLE" && s.mount.holds >= 1;
    });
    auto s = runner.snapshot();
    EXPECT_TRUE(went_idle) << "health " << s.mount.health << " state " << s.state;
    EXPECT_GE(s.mount.faults, 1u);
    EXPECT_GE(s.mount.failed_commands, 1u);
    EXPECT_FALSE(s.mount.last_error.empty());
    EXPECT_GE(s.counters.transitions[static_cast<std::size_t>(pat_reason::mount_fault)], 1u);
    EXPECT_GE(s.counters.mount_errors, 1u);
    // Held, not restarting a pass every mount_fault_timeout_s.
    const auto passes_held = s.counters.passes;
    feed(runner, 1.0, 1500ms);
    EXPECT_EQ(runner.snapshot().counters.passes, passes_held);
    EXPECT_EQ(runner.snapshot().state, "IDLE");

    // Back: the probe notices, the PAT starts the pass again and the new dummy (at 0, 0) is commanded
    // onto the track.
    start_rotctld();
    const bool back = feed(runner, 1.0, 8000ms, [&] {
        const auto x = runner.snapshot();
        return x.mount.health == "ok" && x.state != "IDLE" && x.mount.device.commands > s.mount.device.commands + 5;
    });
    s = runner.snapshot();
    EXPECT_TRUE(back) << "health " << s.mount.health << " state " << s.state;
    EXPECT_GE(s.mount.device.reconnects, 1u);
    EXPECT_EQ(s.counters.passes, passes_held + 1);
    // The simulated gimbal was only stopped and is near the track, the new dummy starts at (0, 0):
    // PROGRAM_TRACK ends (mount_on_target) only once the real mount is within mount_settle_deg,
    // i.e. after its slew (cost / 6 s), not when the gimbal twin is there.
    // (sim_time of the last pass start, of the first mount_on_target after it; -1 when none)
    auto restart_times = [&] {
        double started = -1.0, settled = -1.0;
        for (const auto& [t, at] : ev.get_transitions()) {
            if (t.reason == pat_reason::pass_start) {
                started = at;
                settled = -1.0;
            }
            if (t.reason == pat_reason::mount_on_target && started >= 0.0 && settled < 0.0) settled = at;
        }
        return std::pair{started, settled};
    };
    const bool on_target = feed(runner, 1.0, std::chrono::milliseconds(static_cast<int>(p.cost_deg / 6.0 * 1000.0) + 4000),
                                [&] { return restart_times().second >= 0.0; });
    const auto [started, settled] = restart_times();
    EXPECT_TRUE(on_target) << "pass start at " << started << " s";
    EXPECT_GE(settled - started, p.cost_deg / 6.0 - 1.0) << "pass start at " << started << " s, on target at " << settled;
    // ... and the new dummy is on the track again.
    feed(runner, 1.0, 1000ms);
    settle(runner);
    rotctl_probe probe2(port_);
    const double t_back = runner.snapshot().sim_time;
    const auto moved = probe2.position();
    ASSERT_TRUE(moved.has_value());
    const auto want = look(p.start + sim::seconds_d(t_back));
    EXPECT_LT(pointing_error_deg(*moved, want), 0.1) << "az " << moved->az_deg << " el " << moved->el_deg;

    const auto events = ev.get();
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events[0], "mount_fault");  // once per change, not per failed command
    EXPECT_EQ(events[1], "mount_recovered");
    runner.stop();
}

TEST_F(qlinkd_mount_rotctld, a_pass_faster_than_real_time_stops_the_real_mount)
{
    const pass_point p = pick_start();
    event_record ev;
    pat_runner runner(make_config(p), nullptr, [&](std::string_view e, const mount_snapshot&) { ev.add(e); });
    runner.start();
    rotctl_probe probe(port_);

    // The demo's relay runs at --speed 15; at 3 x real time the mount is already refused.
    const bool refused = feed(runner, 3.0, 6000ms, [&] { return runner.snapshot().mount.health == "too_fast"; });
    auto s = runner.snapshot();
    ASSERT_TRUE(refused) << "health " << s.mount.health;
    ASSERT_TRUE(s.mount.pace.has_value());
    EXPECT_NEAR(*s.mount.pace, 3.0, 0.5);
    EXPECT_EQ(s.mount.pace_faults, 1u);
    EXPECT_NE(s.mount.last_error.find("--speed 1"), std::string::npos) << s.mount.last_error;

    // Stopped (S): the dummy no longer moves, and the PAT ends its pass. It was still slewing
    // toward the track (which it had not reached), so without the stop it would go on moving.
    feed(runner, 3.0, 600ms);
    const auto a = probe.position();
    ASSERT_TRUE(a.has_value());
    EXPECT_TRUE(a->az_deg != 0.0 || a->el_deg != 0.0) << "the mount was never commanded";
    EXPECT_GT(pointing_error_deg(*a, look(p.start + sim::seconds_d(runner.snapshot().sim_time))), 1.0)
        << "the dummy reached the track before the refusal: pick a farther start (cost " << p.cost_deg << " deg)";
    feed(runner, 3.0, 500ms, [&] { return runner.snapshot().state == "IDLE"; });
    std::this_thread::sleep_for(300ms);
    const auto b = probe.position();
    ASSERT_TRUE(a && b);
    EXPECT_NEAR(a->az_deg, b->az_deg, 0.011);
    EXPECT_NEAR(a->el_deg, b->el_deg, 0.011);
    feed(runner, 3.0, 2000ms, [&] { return runner.snapshot().state == "IDLE"; });
    EXPECT_EQ(runner.snapshot().state, "IDLE");
    const auto events = ev.get();
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events[0], "mount_too_fast");
    runner.stop();
}

TEST_F(qlinkd_mount_rotctld, no_rotctld_at_start_is_one_log_line_and_a_held_pat)
{
    rotctld_->kill(SIGKILL);  // nothing listens on the configured port
    const pass_point p = pick_start();
    ::testing::internal::CaptureStderr();
    {
        // Without a mount event sink the runner logs as qlinkd does (logfmt, channel hw).
        pat_runner runner(make_config(p), nullptr);
        runner.start();
        const bool held = feed(runner, 1.0, 6000ms, [&] { return runner.snapshot().mount.holds >= 1; });
        const auto s = runner.snapshot();
        EXPECT_TRUE(held) << "health " << s.mount.health << " state " << s.state;
        EXPECT_EQ(s.mount.health, "fault");
        EXPECT_EQ(s.state, "IDLE");
        EXPECT_EQ(s.mount.faults, 1u);
        EXPECT_NE(s.mount.last_error.find("127.0.0.1:" + std::to_string(port_)), std::string::npos) << s.mount.last_error;
        runner.stop();
    }
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_NE(err.find("chan=hw"), std::string::npos) << err;
    EXPECT_NE(err.find("event=mount_fault"), std::string::npos) << err;
    std::size_t n = 0;
    for (auto at = err.find("event=mount_fault"); at != std::string::npos; at = err.find("event=mount_fault", at + 1)) ++n;
    EXPECT_EQ(n, 1u) << err;  // once per change, not per failed command
}

}  // namespace
}  // namespace qlink::terminal
