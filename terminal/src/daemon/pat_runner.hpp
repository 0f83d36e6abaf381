// qlinkd's optical terminal: PAT controller, simulated optics, SGP4 pointing on the relay's time, and the mount it drives.
#pragma once

#include "qlink/terminal/pat.hpp"
#include "qlink/terminal/qlinkd_config.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace qlink::terminal {

/// What telemetry shows of the mount. With terminal.mount = "rotctld" the real mount follows the
/// PAT's commands; its failures are counted here and put the PAT into its safe state.
struct mount_snapshot {
    std::string backend = "simulated";  ///< "simulated" or "rotctld"
    std::string health = "ok";          ///< "ok", "fault" (rotctld failing) or "too_fast" (pass faster than real time)
    std::string last_error;             ///< the last failure, empty before any
    hw::mount_counters device{};        ///< the rotctld client's counters (the simulated gimbal's otherwise)
    unsigned long failed_commands = 0;  ///< rotctld commands that failed, whatever the reason
    unsigned long faults = 0;           ///< changes into "fault"
    unsigned long pace_faults = 0;      ///< changes into "too_fast"
    unsigned long holds = 0;            ///< times the PAT was held idle until the mount recovered
    std::optional<hw::az_el> position;  ///< last read back from rotctld (`p`), mount axes, degrees
    std::optional<double> error_deg;    ///< that reading's largest axis difference to the command then in force
    std::optional<double> pace;         ///< relay simulated seconds per wall second over the last window
};

/// What telemetry shows of the PAT (a copy taken under the runner's lock).
struct pat_snapshot {
    std::string state = "IDLE";
    pat_counters counters{};
    std::optional<double> time_to_acquire_s;   ///< of the last acquisition
    std::optional<double> residual_error_rad;  ///< current pointing error estimate (tracking states)
    std::optional<double> communication_rms_rad;
    double sim_time = 0.0;                     ///< seconds since air.sim_epoch the PAT has reached
    double lag_s = 0.0;                        ///< how far behind the relay's time it is
    double skipped_s = 0.0;                    ///< simulated time skipped to bound the lag
    std::uint64_t transitions = 0;
    mount_snapshot mount;
};

/// Runs the controller on its own thread, off the air receive path: the air thread only appends
/// (sim_time, link_up) points; the runner steps the controller at fine_rate_hz through them with
/// the beacon visible exactly while the relay says the link is up (clouds, mask).
class pat_runner {
public:
    /// One line per PAT transition (never per tick): from, to, reason, sim_time, elevation.
    using transition_log = std::function<void(const pat_transition&, double sim_time_s, double elevation_deg)>;
    /// One line per change of the real mount's health (never per command): event "mount_fault",
    /// "mount_too_fast" or "mount_recovered", with the snapshot at that moment.
    using mount_log = std::function<void(std::string_view event, const mount_snapshot&)>;

    /// Throws qlinkd_config_error (bad TLE, station, or PAT settings). Does not connect to a real
    /// mount (start() does). Without `mount_events`, mount health changes go to stderr as qlinkd
    /// log lines (channel "hw") in the configured log format.
    pat_runner(const qlinkd_config& cfg, transition_log log, mount_log mount_events = nullptr);
    ~pat_runner();
    pat_runner(const pat_runner&) = delete;
    pat_runner& operator=(const pat_runner&) = delete;

    /// The relay's channel state up to `sim_time_s` (seconds since air.sim_epoch). Cheap, thread safe.
    void advance_to(double sim_time_s, bool link_up);
    /// Starts the worker thread (the controller is armed: a pass starts above the mask).
    void start();
    /// Stops and joins the worker; the controller ends any pass (laser off, mount stopped).
    void stop();

    pat_snapshot snapshot() const;

    /// Receiver gating: the ground terminal receives the downlink only while it points well enough
    /// (FINE_TRACK or COMMUNICATION). covered_until(): simulated time the controller has stepped to
    /// (what gate() can answer for). gate(): erases the LLRs of bits (bit i at t0 + i / bps) that fall
    /// where the terminal did not point and returns how many were not erasures already; calls come
    /// in time order (the record before t0 is dropped). Thread safe; one lock, one pass.
    double covered_until() const;
    std::size_t gate(double t0, double bps, std::span<std::int8_t> llrs);

private:
    struct impl;
    void worker();
    void run_to(double t_s, bool up);
    void publish(double target_s);

    std::unique_ptr<impl> impl_;
    transition_log log_;
    double period_s_ = 1e-3;
    double max_lag_s_ = 5.0;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::pair<double, bool>> pending_, work_;
    double latest_s_ = 0.0;
    bool stop_ = false;
    pat_snapshot snap_;
    double covered_s_ = 0.0;
    // Pointing changes (time, pointing) in time order, guarded by mu_; before the first: not pointing.
    std::vector<std::pair<double, bool>> pointing_;
    bool pointing_now_ = false;  // worker only
    std::thread thread_;

    void check_mount(double latest_s);
    void hold_if_mount_down();

    // Worker-only state.
    std::uint64_t ticks_ = 0;
    bool started_ = false;
    double skipped_s_ = 0.0;
    // Real mount: the relay's pace (sim seconds per wall second) over windows, and whether the PAT
    // is held idle (disarmed) until the mount answers again.
    bool pace_started_ = false;
    std::chrono::steady_clock::time_point pace_wall0_{};
    double pace_sim0_ = 0.0;
    bool held_for_mount_ = false;
};

}  // namespace qlink::terminal
