// PAT control loop rate: controller steps per second with the simulated hardware, with SGP4, and alone.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <memory>

#include "qlink/hw/fine_pointing.hpp"
#include "qlink/hw/mount.hpp"
#include "qlink/hw/optical_transceiver.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/pat.hpp"

namespace {

using namespace qlink;

const sim::time_point t0{std::chrono::seconds{1795903200}};

class linear_ephemeris final : public terminal::pat_ephemeris {
public:
    terminal::pat_target at(sim::time_point t) const override {
        const double s = std::chrono::duration<double>(t - t0).count();
        // Circling at 40 deg elevation, 0.3 deg/s: stays valid however many iterations run.
        return {true, {std::fmod(150.0 + 0.3 * s, 360.0), 40.0}, {40e-6, 0.0}};
    }
};

// Hardware doubles that answer at once with a centred, healthy beacon: the controller's own cost.
class null_mount final : public hw::mount {
public:
    hw::mount_result set_position(hw::az_el t) override { pos_ = t; return {}; }
    hw::mount_result get_position(hw::az_el& out) override { out = pos_; return {}; }
    hw::mount_result stop() override { return {}; }
    hw::mount_result park() override { return {}; }
    std::string_view name() const override { return "null"; }
    const hw::mount_limits& limits() const override { return limits_; }
    const hw::mount_counters& counters() const override { return counters_; }
private:
    hw::az_el pos_{150.0, 40.0};
    hw::mount_limits limits_;
    hw::mount_counters counters_;
};

class null_fine final : public hw::fine_pointing {
public:
    hw::fine_pointing_result command_mirror(hw::tilt t) override { cmd_ = t; return {}; }
    hw::tilt mirror_command() const override { return cmd_; }
    hw::tilt mirror_position() override { return cmd_; }
    hw::quad_cell_reading read_quad_cell() override {
        return hw::evaluate_quad_cell({0.5, 0.5, 0.5, 0.5}, limits_.thresholds);
    }
    hw::fine_pointing_result set_quad_cell_gain(double g) override { gain_ = g; return {}; }
    double quad_cell_gain() const override { return gain_; }
    std::string_view name() const override { return "null"; }
    const hw::fine_pointing_limits& limits() const override { return limits_; }
    const hw::fine_pointing_counters& counters() const override { return counters_; }
private:
    hw::tilt cmd_{};
    double gain_ = 1.0;
    hw::fine_pointing_limits limits_;
    hw::fine_pointing_counters counters_;
};

class null_transceiver final : public hw::optical_transceiver {
public:
    hw::transceiver_result set_laser(bool on) override { on_ = on; return {}; }
    hw::transceiver_result set_laser_power(double w) override { p_ = w; return {}; }
    bool laser_on() const override { return on_; }
    double laser_power_w() const override { return p_; }
    hw::transceiver_result set_point_ahead(hw::tilt t) override { pa_ = t; return {}; }
    hw::tilt point_ahead() const override { return pa_; }
    hw::detector_reading read_detector() override { return {1e-6, false}; }
    hw::camera_reading read_beacon_camera() override { return {true, {}, 1e-7, ++frame_}; }
    std::string_view name() const override { return "null"; }
    const hw::transceiver_limits& limits() const override { return limits_; }
    const hw::transceiver_counters& counters() const override { return counters_; }
private:
    bool on_ = false;
    double p_ = 0.0;
    hw::tilt pa_{};
    std::uint64_t frame_ = 0;
    hw::transceiver_limits limits_;
    hw::transceiver_counters counters_;
};

hw::optical_scene::config scene_config() {
    hw::optical_scene::config c;
    c.beacon.tx_power_w = 2.0;
    c.beacon.tx_divergence_rad = 1e-3;
    c.beacon.rx_aperture_diameter_m = 0.4;
    c.downlink.rx_aperture_diameter_m = 0.4;
    c.jitter_rms_rad = 2e-6;
    return c;
}

void report(benchmark::State& state) {
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["loop_hz"] = benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["headroom_vs_1kHz"] =
        benchmark::Counter(static_cast<double>(state.iterations()) / 1000.0, benchmark::Counter::kIsRate);
}

// Controller + simulated mount, scene (jitter, link budget), FSM, quad cell and camera,
// tracking in COMMUNICATION: what one simulated 1 kHz tick costs end to end.
void run_sim(benchmark::State& state, const terminal::pat_ephemeris& eph, double range_m) {
    sim::sim_clock clock(t0);
    hw::sim_mount_config mc;
    mc.initial = eph.at(t0).sky;
    auto mount = hw::create_sim_mount(mc, clock);
    hw::optical_scene scene(scene_config(), clock, *mount, [&](sim::time_point t) {
        const terminal::pat_target p = eph.at(t);
        return hw::optical_truth{p.valid, hw::apply_offset(p.sky, {200e-6, -100e-6}), range_m, 1.0};
    });
    auto fine = hw::create_sim_fine_pointing({}, scene);
    auto tx = hw::create_sim_optical_transceiver({}, scene);
    terminal::pat_controller pat({}, clock, eph, *mount, *fine, *tx);
    pat.start();
    for (int i = 0; i < 20000 && pat.state() != terminal::pat_state::communication; ++i) {
        pat.step();
        clock.advance(std::chrono::milliseconds(1));
    }
    if (pat.state() != terminal::pat_state::communication) {
        state.SkipWithError("did not reach COMMUNICATION");
        return;
    }
    for (auto _ : state) {
        clock.advance(std::chrono::milliseconds(1));
        benchmark::DoNotOptimize(pat.step());
    }
    if (pat.state() != terminal::pat_state::communication) state.SkipWithError("lost track during the run");
    report(state);
}

void BM_pat_step_sim_linear(benchmark::State& state) {
    linear_ephemeris eph;
    run_sim(state, eph, 800e3);
}

void BM_pat_step_sim_sgp4(benchmark::State& state) {
    const auto parsed = sim::parse_tle("1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9998",
                                       "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012");
    const auto sat = sim::create_sgp4_propagator(*parsed.value);
    const sim::ground_station station({"munich", 48.0785, 11.2795, 600.0});
    const auto eph = terminal::create_sgp4_ephemeris(*sat, station);
    run_sim(state, *eph, station.observe(*sat, t0).look.range_km * 1e3);
}

// The controller alone (hardware doubles answer instantly): its own share of a tick.
void BM_pat_step_controller_only(benchmark::State& state) {
    sim::sim_clock clock(t0);
    linear_ephemeris eph;
    null_mount mount;
    null_fine fine;
    null_transceiver tx;
    terminal::pat_controller pat({}, clock, eph, mount, fine, tx);
    pat.start();
    for (int i = 0; i < 5000; ++i) {
        pat.step();
        clock.advance(std::chrono::milliseconds(1));
    }
    for (auto _ : state) {
        clock.advance(std::chrono::milliseconds(1));
        benchmark::DoNotOptimize(pat.step());
    }
    report(state);
    state.SetLabel(std::string(pat.state_name()));
}

BENCHMARK(BM_pat_step_sim_linear);
BENCHMARK(BM_pat_step_sim_sgp4);
BENCHMARK(BM_pat_step_controller_only);

}  // namespace

BENCHMARK_MAIN();
