// qlinkd's simulated optical terminal: the PAT controller stepped on the relay's simulated time.
#include "pat_runner.hpp"

#include "qlink/hw/fine_pointing.hpp"
#include "qlink/hw/mount.hpp"
#include "qlink/hw/optical_transceiver.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <limits>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>

namespace qlink::terminal {

namespace {

double seconds(sim::duration d) { return std::chrono::duration<double>(d).count(); }

// SGP4 sampled on a 0.1 s grid and interpolated linearly. A controller tick asks for the
// direction several times (reference, mount lead, the scene's truth); propagating each time cost
// 13 us a tick (docs/performance.md), the grid makes a 1 kHz loop cheap. Over 0.1 s the
// interpolation error of a LEO track is a few urad, and truth and reference share it.
class grid_ephemeris final : public pat_ephemeris {
public:
    grid_ephemeris(const sim::sgp4_propagator& sat, const sim::ground_station& station, sim::time_point epoch)
        : sat_(sat), station_(station), epoch_(epoch), inner_(create_sgp4_ephemeris(sat, station)) {}

    pat_target at(sim::time_point t) const override { return interpolate(t).first; }
    double range_m(sim::time_point t) const { return interpolate(t).second; }

private:
    static constexpr double step_s = 0.1;
    struct knot {
        std::int64_t k = std::numeric_limits<std::int64_t>::min();
        pat_target target;
        double range_m = 0.0;
    };

    const knot& load(std::int64_t k) const {
        knot& slot = cache_[static_cast<std::size_t>(k & 3)];  // k, k+1 and a lead knot coexist
        if (slot.k != k) {
            const auto t = epoch_ + sim::seconds_d(static_cast<double>(k) * step_s);
            slot.k = k;
            slot.target = inner_->at(t);
            const sim::pass_sample s = station_.observe(sat_, t);
            slot.range_m = s.error == sim::sgp4_error::none ? s.look.range_km * 1e3 : 0.0;
        }
        return slot;
    }

    std::pair<pat_target, double> interpolate(sim::time_point t) const {
        const double x = seconds(t - epoch_) / step_s;
        const double fl = std::floor(x);
        const auto k = static_cast<std::int64_t>(fl);
        const double f = x - fl;
        const knot a = load(k);
        const knot& b = load(k + 1);
        pat_target out;
        out.valid = a.target.valid && b.target.valid;
        if (!out.valid) return {out, 0.0};
        double daz = b.target.sky.az_deg - a.target.sky.az_deg;
        if (daz > 180.0) daz -= 360.0;
        if (daz < -180.0) daz += 360.0;
        out.sky.az_deg = std::fmod(a.target.sky.az_deg + f * daz + 360.0, 360.0);
        out.sky.el_deg = a.target.sky.el_deg + f * (b.target.sky.el_deg - a.target.sky.el_deg);
        out.point_ahead = {a.target.point_ahead.x_rad + f * (b.target.point_ahead.x_rad - a.target.point_ahead.x_rad),
                           a.target.point_ahead.y_rad + f * (b.target.point_ahead.y_rad - a.target.point_ahead.y_rad)};
        return {out, a.range_m + f * (b.range_m - a.range_m)};
    }

    const sim::sgp4_propagator& sat_;
    const sim::ground_station& station_;
    sim::time_point epoch_;
    std::unique_ptr<pat_ephemeris> inner_;
    mutable std::array<knot, 4> cache_{};
};

sim::tle load_tle(const qlinkd_config& cfg) {
    std::ifstream in(cfg.satellite.tle_file);
    if (!in) throw qlinkd_config_error("key 'satellite.tle': cannot read file " + cfg.satellite.tle_file);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto r = sim::parse_tle_text(ss.str());
    if (!r.ok()) throw qlinkd_config_error("key 'satellite.tle': " + cfg.satellite.tle_file + ": " + r.error);
    if (cfg.satellite.tle_name.empty()) return r.sets.front();
    for (const auto& t : r.sets) {
        if (t.name == cfg.satellite.tle_name) return t;
    }
    throw qlinkd_config_error("key 'satellite.name' = \"" + cfg.satellite.tle_name + "\" is not in " + cfg.satellite.tle_file);
}

sim::ground_station::config station_config(const qlinkd_config& cfg) {
    sim::ground_station::config g;
    g.name = "qlinkd";
    g.latitude_deg = cfg.station.lat_deg;
    g.longitude_deg = cfg.station.lon_deg;
    g.altitude_m = cfg.station.alt_m;
    if (const auto e = sim::ground_station::validate(g); !e.empty()) throw qlinkd_config_error("[station]: " + e);
    return g;
}

}  // namespace

struct pat_runner::impl {
    impl(const qlinkd_config& cfg)
        : epoch(*cfg.air.sim_epoch),
          clock(epoch),
          sat(sim::create_sgp4_propagator(load_tle(cfg))),
          station(station_config(cfg)),
          eph(*sat, station, epoch) {
        // The mount-model error the acquisition scan has to find: fixed size, seeded direction.
        std::mt19937_64 rng(cfg.terminal.seed);
        const double phi = std::uniform_real_distribution<double>(0.0, 2.0 * std::numbers::pi)(rng);
        const double b = cfg.terminal.pointing_bias_urad * 1e-6;
        bias = {b * std::cos(phi), b * std::sin(phi)};

        hw::sim_mount_config mc;
        mc.slew_rate_deg_s = cfg.terminal.mount_slew_deg_s;
        mount = hw::create_sim_mount(mc, clock);  // starts parked at the zenith

        // A LEO beacon (2 W, 1 mrad) into a 0.4 m telescope: a few hundred nW at 800 km.
        hw::optical_scene::config sc;
        sc.beacon.tx_power_w = 2.0;
        sc.beacon.tx_divergence_rad = 1e-3;
        sc.beacon.rx_aperture_diameter_m = 0.4;
        sc.downlink.rx_aperture_diameter_m = 0.4;
        sc.site_altitude_m = std::clamp(cfg.station.alt_m, 0.0, 8000.0);
        sc.seed = cfg.terminal.seed;
        scene = std::make_unique<hw::optical_scene>(sc, clock, *mount, [this](sim::time_point t) {
            const pat_target p = eph.at(t);
            const double r = eph.range_m(t);
            return hw::optical_truth{beacon_up && p.valid && p.sky.el_deg > 0.0, hw::apply_offset(p.sky, bias),
                                     r > 0.0 ? r : 1000e3, 1.0};
        });
        hw::sim_fine_pointing_config fc;
        fc.seed = cfg.terminal.seed + 1;
        fine = hw::create_sim_fine_pointing(fc, *scene);
        hw::sim_transceiver_config tc;
        tc.seed = cfg.terminal.seed + 2;
        transceiver = hw::create_sim_optical_transceiver(tc, *scene);
        pat = std::make_unique<pat_controller>(make_pat_config(cfg), clock, eph, *mount, *fine, *transceiver);
    }

    sim::time_point epoch;
    sim::sim_clock clock;
    std::unique_ptr<sim::sgp4_propagator> sat;
    sim::ground_station station;
    grid_ephemeris eph;
    hw::tilt bias{};
    bool beacon_up = false;  // worker thread only
    std::unique_ptr<hw::mount> mount;
    std::unique_ptr<hw::optical_scene> scene;
    std::unique_ptr<hw::fine_pointing> fine;
    std::unique_ptr<hw::optical_transceiver> transceiver;
    std::unique_ptr<pat_controller> pat;
};

pat_runner::pat_runner(const qlinkd_config& cfg, transition_log log)
    : log_(std::move(log)), period_s_(1.0 / cfg.terminal.fine_rate_hz), max_lag_s_(cfg.terminal.max_lag_s) {
    if (!cfg.air.sim_epoch) throw qlinkd_config_error("key 'air.sim_epoch' is required with terminal.pat = \"simulated\"");
    try {
        impl_ = std::make_unique<impl>(cfg);
    } catch (const std::invalid_argument& e) {
        throw qlinkd_config_error(std::string("[terminal]: ") + e.what());
    }
    impl_->pat->set_transition_sink([this](const pat_transition& t) {
        if (log_) log_(t, seconds(t.t - impl_->epoch), impl_->eph.at(t.t).sky.el_deg);
    });
}

pat_runner::~pat_runner() { stop(); }

void pat_runner::start() {
    impl_->pat->start();
    thread_ = std::thread([this] { worker(); });
}

void pat_runner::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) {
        thread_.join();
        impl_->pat->stop();
        double latest = 0.0;
        {
            std::lock_guard lk(mu_);
            latest = latest_s_;
        }
        publish(latest);
    }
}

void pat_runner::advance_to(double sim_time_s, bool link_up) {
    if (!std::isfinite(sim_time_s)) return;
    {
        std::lock_guard lk(mu_);
        // Consecutive points with the same link state are one interval: keeps the queue as short
        // as the number of link edges whatever the message rate.
        if (!pending_.empty() && pending_.back().second == link_up) {
            pending_.back().first = std::max(pending_.back().first, sim_time_s);
        } else {
            pending_.emplace_back(sim_time_s, link_up);
        }
        latest_s_ = std::max(latest_s_, sim_time_s);
    }
    cv_.notify_one();
}

void pat_runner::run_to(double t_s, bool up) {
    impl_->beacon_up = up;
    auto tick_time = [this](std::uint64_t n) {
        return impl_->epoch + sim::seconds_d(static_cast<double>(n) * period_s_);
    };
    if (!started_) {
        started_ = true;
        impl_->clock.set(tick_time(0));
        impl_->pat->step();
    }
    while (static_cast<double>(ticks_ + 1) * period_s_ <= t_s) {
        ++ticks_;
        impl_->clock.set(tick_time(ticks_));
        impl_->pat->step();
    }
}

void pat_runner::worker() {
    ::pthread_setname_np(::pthread_self(), "qlinkd-pat");  // its CPU time shows per thread in /proc
    for (;;) {
        double latest = 0.0;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return stop_ || !pending_.empty(); });
            if (stop_) return;
            work_.swap(pending_);
            latest = latest_s_;
        }
        // Too far behind the relay (a loaded machine): jump instead of falling further behind.
        // The controller holds its loops across the jump (its clock moved > 1 s).
        const double now_s = static_cast<double>(ticks_) * period_s_;
        if (latest - now_s > max_lag_s_) {
            const auto to = static_cast<std::uint64_t>(std::floor((latest - 0.5 * max_lag_s_) / period_s_));
            skipped_s_ += static_cast<double>(to - ticks_) * period_s_;
            ticks_ = to;
        }
        for (const auto& [t, up] : work_) run_to(t, up);
        work_.clear();
        publish(latest);
    }
}

void pat_runner::publish(double target_s) {
    const pat_controller& p = *impl_->pat;
    pat_snapshot s;
    s.state = std::string(p.state_name());
    s.counters = p.counters();
    if (p.last_time_to_acquire_s() >= 0.0) s.time_to_acquire_s = p.last_time_to_acquire_s();
    const pat_state st = p.state();
    if (st == pat_state::coarse_track || st == pat_state::fine_track || st == pat_state::communication) {
        s.residual_error_rad = std::hypot(p.residual_error().x_rad, p.residual_error().y_rad);
    }
    if (s.counters.entered[static_cast<std::size_t>(pat_state::communication)] > 0) {
        s.communication_rms_rad = p.communication_rms_rad();
    }
    s.sim_time = static_cast<double>(ticks_) * period_s_;
    s.lag_s = std::max(0.0, target_s - s.sim_time);
    s.skipped_s = skipped_s_;
    for (auto n : s.counters.transitions) s.transitions += n;
    std::lock_guard lk(mu_);
    snap_ = std::move(s);
}

pat_snapshot pat_runner::snapshot() const {
    std::lock_guard lk(mu_);
    return snap_;
}

}  // namespace qlink::terminal
