// qlinkd's optical terminal: the PAT controller stepped on the relay's simulated time, and a real rotctld mount following it.
#include "pat_runner.hpp"

#include "daemon_log.hpp"

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

// A real mount moves in wall-clock time; the PAT runs on the relay's simulated time. The follower
// sends the real mount the PAT's latest command at terminal.mount_rate_hz of wall time, on its own
// thread so that a slow or silent rotctld never stalls the control loops. It only makes sense when
// the pass runs at real time: a relay running faster is refused (too_fast: mount stopped).
class mount_follower {
public:
    struct config {
        hw::rotctld_config device;
        double rate_hz = 10.0;
        double max_pace = 1.2;        ///< relay sim seconds per wall second above which the mount is stopped
        double probe_period_s = 1.0;  ///< position read-back (telemetry, and the probe while failing)
        double settle_deg = 0.5;      ///< the real mount is on its command within this (largest axis)
    };
    using event_fn = std::function<void(std::string_view event, const mount_snapshot&)>;

    mount_follower(const config& cfg, event_fn events)
        : cfg_(cfg), events_(std::move(events)), device_(hw::create_rotctld_mount(cfg.device)) {
        snap_.backend = "rotctld";
    }
    ~mount_follower() { shutdown(); }

    void start() { thread_ = std::thread([this] { loop(); }); }

    /// Stops the thread after sending a pending stop/park (the PAT's safe state on shutdown).
    void shutdown() {
        {
            std::lock_guard lk(mu_);
            quit_ = true;
        }
        cv_.notify_one();
        if (thread_.joinable()) thread_.join();
    }

    /// The PAT's mount command at simulated time t_s (PAT thread, every tick).
    void command(double t_s, hw::az_el axes) {
        const auto wall = steady::now();
        std::lock_guard lk(mu_);
        if (!have_latest_ || t_s < latest_t_) {
            ref_t_ = t_s;
            ref_ = axes;
        } else if (t_s - ref_t_ >= 0.25) {
            ref_t_ = latest_t_;
            ref_ = latest_;
        }
        latest_t_ = t_s;
        latest_ = axes;
        latest_wall_ = wall;
        have_latest_ = true;
        ++generation_;
    }

    /// The PAT ended its pass (or asked for park): the real mount stops where it is.
    void request_stop(bool park) {
        {
            std::lock_guard lk(mu_);
            (park ? park_pending_ : stop_pending_) = true;
            have_latest_ = false;
            near_ = false;
        }
        cv_.notify_one();
    }

    /// The relay's pace over the last window (worker thread).
    void set_pace(double pace) {
        std::unique_lock lk(mu_);
        snap_.pace = pace;
        const bool fast = pace > cfg_.max_pace;
        if (fast == too_fast_) return;
        too_fast_ = fast;
        if (fast) {
            ++snap_.pace_faults;
            snap_.last_error = "the pass runs at " + num(pace) + " x real time; a real mount needs the relay at --speed 1";
            stop_pending_ = true;
        }
        change_health_locked(lk);
    }

    bool healthy() const {
        std::lock_guard lk(mu_);
        return !too_fast_ && !device_fault_;
    }
    hw::mount_result health() const {
        std::lock_guard lk(mu_);
        if (too_fast_) return {hw::mount_errc::rejected, 0, snap_.last_error};
        if (device_fault_) return {fault_code_, 0, snap_.last_error};
        return {};
    }
    /// Where the PAT should believe the mount is: nullopt while the real mount is within
    /// settle_deg of its command (the simulated gimbal's micro-radian position then stands for it),
    /// else the real read-back (`known` false when there is none yet).
    std::optional<hw::az_el> far_position(bool& known) const {
        std::lock_guard lk(mu_);
        known = true;
        if (near_) return std::nullopt;
        known = snap_.position.has_value();
        return snap_.position;
    }
    void count_hold() {
        std::lock_guard lk(mu_);
        ++snap_.holds;
    }
    mount_snapshot snapshot() const {
        std::lock_guard lk(mu_);
        return snap_;
    }

private:
    using steady = std::chrono::steady_clock;

    static std::string num(double v) { return daemon_log::num(v); }

    /// Health is "too_fast" over "fault" over "ok"; one event per change. Called with mu_ held;
    /// the event goes out without it.
    void change_health_locked(std::unique_lock<std::mutex>& lk) {
        const char* h = too_fast_ ? "too_fast" : device_fault_ ? "fault" : "ok";
        if (snap_.health == h) return;
        snap_.health = h;
        const mount_snapshot copy = snap_;
        lk.unlock();
        if (events_) events_(copy.health == "ok" ? "mount_recovered" : copy.health == "fault" ? "mount_fault" : "mount_too_fast", copy);
        lk.lock();
    }

    void record(const hw::mount_result& r) {
        std::unique_lock lk(mu_);
        snap_.device = device_->counters();
        if (r) {
            if (!device_fault_) return;
            device_fault_ = false;
        } else {
            ++snap_.failed_commands;
            snap_.last_error = r.message;
            fault_code_ = r.code;
            if (device_fault_) return;
            device_fault_ = true;
            ++snap_.faults;
        }
        change_health_locked(lk);
    }

    void loop() {
        ::pthread_setname_np(::pthread_self(), "qlinkd-mount");
        const auto period = std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(1.0 / cfg_.rate_hz));
        const auto probe_period =
            std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(cfg_.probe_period_s));
        auto next = steady::now();
        auto next_probe = next;
        std::uint64_t sent_generation = 0;
        // The last command rotctld accepted (have_sent: there is one); a plain pair, not std::optional,
        // which GCC 12 -O3 reports as maybe-uninitialized.
        hw::az_el last_sent{};
        bool have_sent = false;
        for (;;) {
            bool stop = false, park = false, fast = false, have = false, quit = false;
            hw::az_el target{};
            std::uint64_t gen = 0;
            {
                std::unique_lock lk(mu_);
                cv_.wait_until(lk, next, [this] { return quit_ || stop_pending_ || park_pending_; });
                quit = quit_;
                stop = std::exchange(stop_pending_, false);
                park = std::exchange(park_pending_, false);
                fast = too_fast_;
                have = have_latest_;
                gen = generation_;
                if (have) target = lead(steady::now(), period);
            }
            if (park) {
                record(device_->park());
                have_sent = false;
            } else if (stop) {
                record(device_->stop());
                have_sent = false;
            }
            if (quit) return;
            const auto now = steady::now();
            if (now < next) continue;  // woken early for a stop: keep the command rhythm
            next += period;
            if (next <= now) next = now + period;

            // While tracking, every cycle reads the position and then sends the command (as Gpredict
            // does): the tracking error is known at the command rate, and Hamlib's dummy rotator
            // (rotctld -m 1, the dry run) only advances its slew when it is read. Otherwise the
            // read is a once-a-second probe: telemetry, and noticing that a failed mount is back.
            bool command = !fast && have && gen != sent_generation;
            if (command || now >= next_probe) {
                next_probe = now + probe_period;
                hw::az_el pos{};
                const hw::mount_result r = device_->get_position(pos);
                record(r);
                // The link to rotctld just failed: a P now would wait out a second timeout.
                if (r.code == hw::mount_errc::timeout || r.code == hw::mount_errc::disconnected) command = false;
                if (r) {
                    std::lock_guard lk(mu_);
                    snap_.position = pos;
                    if (have_sent) {
                        snap_.error_deg = std::max(std::abs(pos.az_deg - last_sent.az_deg), std::abs(pos.el_deg - last_sent.el_deg));
                        near_ = *snap_.error_deg <= cfg_.settle_deg;
                    } else {
                        snap_.error_deg.reset();
                        near_ = false;
                    }
                }
            }
            if (command) {
                sent_generation = gen;
                const hw::mount_result r = device_->set_position(target);
                record(r);
                if (r) {
                    last_sent = target;
                    have_sent = true;
                }
            }
        }
    }

    /// Where the PAT's target will be one command period from now: the latest command moved on at
    /// the rate of the last quarter second (a position-only rotator then has no lag at the update
    /// instants, as the PAT does for its own gimbal). Called with mu_ held.
    hw::az_el lead(steady::time_point now, steady::duration period) const {
        hw::az_el out = latest_;
        const double span = latest_t_ - ref_t_;
        if (span > 0.05) {
            const double ahead = std::min(1.0, std::chrono::duration<double>(now - latest_wall_ + period).count());
            constexpr double max_rate = 30.0;  // deg/s; a scan restart or re-wrap is not a velocity
            const double vaz = std::clamp((latest_.az_deg - ref_.az_deg) / span, -max_rate, max_rate);
            const double vel = std::clamp((latest_.el_deg - ref_.el_deg) / span, -max_rate, max_rate);
            out.az_deg += vaz * ahead;
            out.el_deg += vel * ahead;
        }
        const hw::mount_limits& lim = cfg_.device.limits;
        out.az_deg = std::clamp(out.az_deg, lim.az_min_deg, lim.az_max_deg);
        out.el_deg = std::clamp(out.el_deg, lim.el_min_deg, lim.el_max_deg);
        return out;
    }

    config cfg_;
    event_fn events_;
    std::unique_ptr<hw::mount> device_;  // follower thread only (after start)
    std::thread thread_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool quit_ = false;
    bool stop_pending_ = false;
    bool park_pending_ = false;
    bool have_latest_ = false;
    double latest_t_ = 0.0, ref_t_ = 0.0;
    hw::az_el latest_{}, ref_{};
    steady::time_point latest_wall_{};
    std::uint64_t generation_ = 0;
    bool too_fast_ = false;
    bool device_fault_ = false;
    bool near_ = false;  ///< last read-back within settle_deg of the command then in force
    hw::mount_errc fault_code_ = hw::mount_errc::ok;
    mount_snapshot snap_;
};

// What the PAT controller drives with a real mount: the simulated gimbal twin (the optics model needs
// a micro-radian mount; a rotctld rotator reports 0.01 degree) plus the follower. Commands go to both;
// a failing real mount makes every command fail, so the controller's own mount-fault logic ends the
// pass with the mount stopped.
class followed_mount final : public hw::mount {
public:
    followed_mount(hw::mount& twin, mount_follower& follower, const sim::clock& clock, sim::time_point epoch)
        : twin_(twin), follower_(follower), clock_(clock), epoch_(epoch) {}

    hw::mount_result set_position(hw::az_el target) override {
        hw::mount_result r = twin_.set_position(target);
        if (!r) return r;
        follower_.command(seconds(clock_.now() - epoch_), target);
        return follower_.health();
    }
    /// The PAT settles PROGRAM_TRACK (and unwraps azimuth) on this: the real mount's read-back
    /// until it is within terminal.mount_settle_deg of its command, so "mount_on_target" means the
    /// real mount is there; then the simulated gimbal, which the optics see.
    hw::mount_result get_position(hw::az_el& out) override {
        bool known = false;
        const std::optional<hw::az_el> real = follower_.far_position(known);
        if (!real && known) return twin_.get_position(out);
        if (!real) return {hw::mount_errc::timeout, 0, "no position read back from rotctld yet"};
        out = *real;
        return {};
    }
    hw::mount_result stop() override {
        follower_.request_stop(false);
        return twin_.stop();
    }
    hw::mount_result park() override {
        follower_.request_stop(true);
        return twin_.park();
    }
    std::string_view name() const override { return "rotctld"; }
    const hw::mount_limits& limits() const override { return twin_.limits(); }
    const hw::mount_counters& counters() const override { return twin_.counters(); }

private:
    hw::mount& twin_;
    mount_follower& follower_;
    const sim::clock& clock_;
    sim::time_point epoch_;
};

}  // namespace

struct pat_runner::impl {
    impl(const qlinkd_config& cfg, mount_follower::event_fn mount_events)
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

        const hw::mount_limits& lim = cfg.terminal.mount_limits;
        hw::sim_mount_config mc;
        mc.slew_rate_deg_s = cfg.terminal.mount_slew_deg_s;
        mc.limits = lim;
        mc.park = mc.initial = {std::clamp(0.0, lim.az_min_deg, lim.az_max_deg), std::clamp(90.0, lim.el_min_deg, lim.el_max_deg)};
        gimbal = hw::create_sim_mount(mc, clock);  // starts parked at the zenith
        mount = gimbal.get();
        if (cfg.terminal.mount == mount_kind::rotctld) {
            mount_follower::config fc;
            fc.device.host = cfg.terminal.mount_host;
            fc.device.port = cfg.terminal.mount_port;
            fc.device.timeout = std::chrono::milliseconds(static_cast<long>(cfg.terminal.mount_timeout_ms));
            fc.device.limits = lim;
            fc.rate_hz = cfg.terminal.mount_rate_hz;
            fc.settle_deg = cfg.terminal.mount_settle_deg;
            follower = std::make_unique<mount_follower>(fc, std::move(mount_events));
            followed = std::make_unique<followed_mount>(*gimbal, *follower, clock, epoch);
            mount = followed.get();
        }

        // A LEO beacon (2 W, 1 mrad) into a 0.4 m telescope: a few hundred nW at 800 km.
        hw::optical_scene::config sc;
        sc.beacon.tx_power_w = 2.0;
        sc.beacon.tx_divergence_rad = 1e-3;
        sc.beacon.rx_aperture_diameter_m = 0.4;
        sc.downlink.rx_aperture_diameter_m = 0.4;
        sc.site_altitude_m = std::clamp(cfg.station.alt_m, 0.0, 8000.0);
        sc.seed = cfg.terminal.seed;
        scene = std::make_unique<hw::optical_scene>(sc, clock, *gimbal, [this](sim::time_point t) {
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
    std::unique_ptr<hw::mount> gimbal;             // the simulated gimbal (the optics' pointing truth)
    std::unique_ptr<mount_follower> follower;      // rotctld only
    std::unique_ptr<followed_mount> followed;      // rotctld only: gimbal + follower
    hw::mount* mount = nullptr;                    // what the PAT drives
    std::unique_ptr<hw::optical_scene> scene;
    std::unique_ptr<hw::fine_pointing> fine;
    std::unique_ptr<hw::optical_transceiver> transceiver;
    std::unique_ptr<pat_controller> pat;
};

pat_runner::pat_runner(const qlinkd_config& cfg, transition_log log, mount_log mount_events)
    : log_(std::move(log)), period_s_(1.0 / cfg.terminal.fine_rate_hz), max_lag_s_(cfg.terminal.max_lag_s) {
    if (!cfg.air.sim_epoch) throw qlinkd_config_error("key 'air.sim_epoch' is required with terminal.pat = \"simulated\"");
    if (!mount_events) {
        auto mlog = std::make_shared<daemon_log>(cfg.log.json, cfg.log.debug);
        mlog->set_role(std::string(role_name(cfg.link.role)));
        const std::string address = cfg.terminal.mount_host + ":" + std::to_string(cfg.terminal.mount_port);
        mount_events = [mlog, address](std::string_view event, const mount_snapshot& m) {
            const std::string ev(event);
            if (ev == "mount_recovered") {
                mlog->info("hw", "mount_recovered", {{"mount", "rotctld"}, {"address", address}});
            } else {
                mlog->warn("hw", ev.c_str(), {{"mount", "rotctld"}, {"address", address}, {"health", m.health},
                                             {"error", m.last_error}, {"action", "the PAT ends the pass (mount stopped) and waits for the mount"}});
            }
        };
    }
    try {
        impl_ = std::make_unique<impl>(cfg, std::move(mount_events));
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
    if (impl_->follower) impl_->follower->start();
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
        // Sends the stop the controller just asked for (safe state), then ends the follower's thread.
        if (impl_->follower) impl_->follower->shutdown();
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
        const pat_step_result r = impl_->pat->step();
        if (r.transitioned) {
            // A pass ended while the real mount is down: hold before the next tick starts another.
            if (r.state == pat_state::idle) hold_if_mount_down();
            const bool pointing = r.state == pat_state::fine_track || r.state == pat_state::communication;
            if (pointing != pointing_now_) {
                pointing_now_ = pointing;
                std::lock_guard lk(mu_);
                pointing_.emplace_back(static_cast<double>(ticks_) * period_s_, pointing);
            }
        }
    }
}

double pat_runner::covered_until() const {
    std::lock_guard lk(mu_);
    return covered_s_;
}

std::size_t pat_runner::gate(double t0, double bps, std::span<std::int8_t> llrs) {
    if (!(bps > 0.0) || llrs.empty()) return 0;
    std::lock_guard lk(mu_);
    // The state at t0: the last change at or before it (none: not pointing yet).
    std::size_t k = 0;
    while (k < pointing_.size() && pointing_[k].first <= t0) ++k;
    bool pointing = k > 0 && pointing_[k - 1].second;
    // Forget what is older than t0 (keep the change that sets the state at t0).
    if (k > 1) {
        pointing_.erase(pointing_.begin(), pointing_.begin() + static_cast<std::ptrdiff_t>(k - 1));
        k = 1;
    }
    std::size_t erased = 0, i = 0;
    const std::size_t n = llrs.size();
    while (i < n) {
        // Bits up to the next change: those with t0 + j / bps < change time.
        std::size_t end = n;
        if (k < pointing_.size()) {
            const double e = std::ceil((pointing_[k].first - t0) * bps);
            end = std::min(n, static_cast<std::size_t>(std::max(e, static_cast<double>(i))));
        }
        if (!pointing) {
            // Counted: what the gate took (LLRs the relay already erased, link down, are not).
            for (std::size_t j = i; j < end; ++j) {
                erased += llrs[j] != 0;
                llrs[j] = 0;
            }
        }
        i = end;
        if (k < pointing_.size()) pointing = pointing_[k++].second;
    }
    return erased;
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
        check_mount(latest);
        publish(latest);
    }
}

void pat_runner::check_mount(double latest_s) {
    mount_follower* f = impl_->follower.get();
    if (f == nullptr) return;
    // The relay's pace, measured on its own time stamps against the wall clock over 3 s windows:
    // long enough that message jitter on a loaded machine stays well inside the 1.2 limit.
    const auto wall = std::chrono::steady_clock::now();
    if (!pace_started_ || latest_s < pace_sim0_) {
        pace_started_ = true;
        pace_wall0_ = wall;
        pace_sim0_ = latest_s;
    } else if (const double dt = std::chrono::duration<double>(wall - pace_wall0_).count(); dt >= 3.0) {
        f->set_pace((latest_s - pace_sim0_) / dt);
        pace_wall0_ = wall;
        pace_sim0_ = latest_s;
    }
    if (f->healthy()) {
        if (held_for_mount_) {
            impl_->pat->start();
            held_for_mount_ = false;
        }
    } else if (impl_->pat->state() == pat_state::idle) {
        hold_if_mount_down();
    }
}

void pat_runner::hold_if_mount_down() {
    // A failing mount: once the controller has ended the pass (mount_fault, mount stopped), keep it
    // disarmed so it does not start a pass every mount_fault_timeout_s; check_mount re-arms it when
    // the mount answers.
    mount_follower* f = impl_->follower.get();
    if (f == nullptr || held_for_mount_ || f->healthy()) return;
    impl_->pat->stop();
    held_for_mount_ = true;
    f->count_hold();
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
    if (impl_->follower) {
        s.mount = impl_->follower->snapshot();
    } else {
        s.mount.device = impl_->gimbal->counters();
    }
    std::lock_guard lk(mu_);
    covered_s_ = s.sim_time;
    snap_ = std::move(s);
}

pat_snapshot pat_runner::snapshot() const {
    std::lock_guard lk(mu_);
    return snap_;
}

}  // namespace qlink::terminal
