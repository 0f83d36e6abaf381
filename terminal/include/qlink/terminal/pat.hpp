// The optical terminal's pointing, acquisition and tracking (PAT) state machine and its control loops.
#pragma once

#include <array>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "qlink/hw/fine_pointing.hpp"
#include "qlink/hw/mount.hpp"
#include "qlink/hw/optical_transceiver.hpp"
#include "qlink/sim/clock.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"

namespace qlink::terminal {

enum class pat_state { idle, program_track, acquisition, coarse_track, fine_track, communication };
inline constexpr std::size_t pat_state_count = 6;
/// "IDLE", "PROGRAM_TRACK", "ACQUISITION", "COARSE_TRACK", "FINE_TRACK", "COMMUNICATION".
std::string_view to_string(pat_state s);

/// Why a transition happened.
enum class pat_reason {
    pass_start,          ///< armed and the target rose above the elevation mask
    mount_on_target,     ///< program track settled: mount within the settle tolerance
    beacon_detected,     ///< the camera saw the beacon during the scan
    coarse_converged,    ///< camera error below the hand-over threshold, quad cell usable
    fine_converged,      ///< quad-cell error below the communication threshold
    fine_lost,           ///< quad cell unusable or its error beyond the fine range: back to coarse
    signal_lost,         ///< beacon gone longer than the signal-loss timeout: laser off, re-acquire
    below_mask,          ///< the target set below the elevation mask: pass over
    ephemeris_lost,      ///< no valid ephemeris (LOS / propagation failure): pass over
    mount_fault,         ///< mount commands kept failing longer than the timeout: pass over
    stop_requested,      ///< operator stop
};
inline constexpr std::size_t pat_reason_count = 11;
std::string_view to_string(pat_reason r);

/// What the ephemeris says at one instant.
struct pat_target {
    bool valid = false;
    hw::az_el sky{};          ///< apparent direction (degrees)
    hw::tilt point_ahead{};   ///< where the transmit beam must lead the apparent direction
};

/// The pointing reference; PROGRAM_TRACK follows it open loop.
class pat_ephemeris {
public:
    virtual ~pat_ephemeris() = default;
    virtual pat_target at(sim::time_point t) const = 0;
};

/// SGP4 + station look angles. The point-ahead magnitude is the station's 2 v_perp / c,
/// its direction the apparent motion of the satellite on the sky (along the track).
/// Both objects must outlive the result.
std::unique_ptr<pat_ephemeris> create_sgp4_ephemeris(const sim::sgp4_propagator& sat,
                                                     const sim::ground_station& station);

/// Loop gains are of a type-2 loop: each loop integrates a rate command
///   rate = kp * e + ki * integral(e),   correction += rate * dt,
/// so a constant ephemeris bias and a constant drift (ramp) both leave no steady error.
/// As a continuous loop this is omega_n = sqrt(ki), zeta = kp / (2 sqrt(ki)), and the
/// closed-loop -3 dB bandwidth is 2.48 omega_n / 2 pi at zeta = 1 (the defaults).
struct pat_config {
    // Rates. The fine loop runs on every step(); the coarse loop (camera + mount correction)
    // at coarse_rate_hz; the mount is commanded at mount_rate_hz (a rotctld rotator >= 10 Hz).
    double fine_rate_hz = 1000.0;       ///< nominal step rate the gains are checked at, [100, 20000]
    double coarse_rate_hz = 100.0;      ///< camera frame rate, [1, fine_rate_hz]
    double mount_rate_hz = 1000.0;      ///< [1, fine_rate_hz]

    // Pass.
    double elevation_mask_deg = 10.0;   ///< [0, 89]
    bool flip_mount = false;            ///< 180-degree elevation mount (see hw::map_to_mount)

    // PROGRAM_TRACK.
    double settle_tolerance_rad = 100e-6;  ///< mount within this of its command counts as settled, > 0
    double settle_time_s = 0.1;            ///< ... for this long, >= 0

    // ACQUISITION: Archimedean spiral r = pitch * phi / 2 pi at constant scan speed.
    double uncertainty_cone_rad = 1e-3;    ///< half-angle of the cone to scan, (0, 0.05]
    double spiral_pitch_rad = 200e-6;      ///< (0, 2 x camera half field]; overlap between turns
    double scan_speed_rad_s = 10e-3;       ///< (0, camera half field x coarse_rate_hz]
    double acquisition_timeout_s = 30.0;   ///< scanning this long without success counts a failure and rescans, > 0

    // COARSE_TRACK: mount correction from the camera centroid.
    double coarse_kp = 2.0 * 6.283185307179586;            ///< [1/s], zeta = 1 at omega_n = 2 pi x 1 Hz
    double coarse_ki = 6.283185307179586 * 6.283185307179586; ///< [1/s^2]
    double coarse_to_fine_rad = 10e-6;     ///< camera error to hand over to the FSM, > 0
    double converge_time_s = 0.1;          ///< errors must stay under a threshold this long, >= 0

    // FINE_TRACK: FSM tilt from the quad cell.
    double fine_kp = 2.0 * 125.66370614359172;              ///< [1/s], zeta = 1 at omega_n = 2 pi x 20 Hz
    double fine_ki = 125.66370614359172 * 125.66370614359172; ///< [1/s^2]
    double fine_to_comm_rad = 3e-6;        ///< rms quad-cell error (over converge_time_s) to start communicating, > 0
    double fine_exit_rad = 30e-6;          ///< quad-cell error beyond this leaves FINE_TRACK, > fine_to_comm_rad
    double fine_loss_time_s = 0.05;        ///< quad cell unusable this long leaves FINE_TRACK, >= 0

    // Safety and COMMUNICATION.
    double signal_loss_timeout_s = 0.5;    ///< beacon gone this long: laser off, re-acquisition, (0, 60]
    double mount_fault_timeout_s = 2.0;    ///< mount failing this long ends the pass, > 0
    double laser_power_w = 0.5;            ///< set when entering COMMUNICATION, >= 0
    double agc_low_fraction = 0.1;         ///< raise quad-cell gain when the brightest channel is below this x saturation
    double agc_high_fraction = 0.9;        ///< lower it above this; (2 low, 1)
    std::size_t transition_history = 256;  ///< transitions kept for transitions(), >= 1
};

/// Message naming the field and its allowed range (including an unstable loop), or empty.
std::string validate(const pat_config& cfg);

/// One logged transition.
struct pat_transition {
    sim::time_point t{};
    pat_state from = pat_state::idle;
    pat_state to = pat_state::idle;
    pat_reason reason = pat_reason::pass_start;
};

/// One line: "2026-...Z PAT ACQUISITION -> COARSE_TRACK (beacon_detected)".
std::string format(const pat_transition& t);

struct pat_counters {
    unsigned long steps = 0;
    std::array<unsigned long, pat_reason_count> transitions{};  ///< by reason
    std::array<unsigned long, pat_state_count> entered{};       ///< by destination state
    unsigned long passes = 0;
    unsigned long acquisitions = 0;           ///< successful (ACQUISITION -> COARSE_TRACK)
    unsigned long reacquisitions = 0;         ///< signal losses that sent the terminal back to ACQUISITION
    unsigned long acquisition_timeouts = 0;   ///< spirals that ran acquisition_timeout_s without a detection
    unsigned long beacon_dropouts = 0;        ///< beacon gaps while tracking (shorter or longer than the timeout)
    unsigned long laser_off_safety = 0;       ///< laser switched off because tracking was lost
    unsigned long quad_cell_saturations = 0;
    unsigned long gain_changes = 0;
    unsigned long fsm_clamps = 0;
    unsigned long mount_errors = 0;
    unsigned long bad_steps = 0;              ///< clock went backwards or jumped (> 1 s): loops held
};

struct pat_step_result {
    pat_state state = pat_state::idle;
    bool transitioned = false;
};

/// The PAT controller. Single-threaded: call step() once per tick (nominally fine_rate_hz)
/// from one thread; it reads the injected clock and talks to the hardware interfaces.
class pat_controller {
public:
    using transition_sink = std::function<void(const pat_transition&)>;

    /// Throws std::invalid_argument with validate()'s message. All references must outlive it.
    pat_controller(const pat_config& cfg, const sim::clock& clock, const pat_ephemeris& ephemeris, hw::mount& mount,
                   hw::fine_pointing& fine, hw::optical_transceiver& transceiver);

    /// Arms the controller: the next step with the target above the mask starts a pass.
    void start();
    /// Ends any pass (laser off, mount stopped, mirror centred) and disarms.
    void stop();
    pat_step_result step();

    pat_state state() const { return state_; }
    std::string_view state_name() const { return to_string(state_); }
    bool armed() const { return armed_; }

    /// Last pointing error estimate in the telescope frame: quad cell in FINE_TRACK and
    /// COMMUNICATION, camera in COARSE_TRACK, zero otherwise.
    hw::tilt residual_error() const { return residual_; }
    /// RMS (radial) of the quad-cell error over the current/last COMMUNICATION period.
    double communication_rms_rad() const;
    /// ACQUISITION entry to beacon detection, seconds, of the last acquisition (negative before any).
    double last_time_to_acquire_s() const { return last_tta_s_; }
    /// Mount correction (coarse loop state) and mirror command, for telemetry.
    hw::tilt coarse_correction() const { return coarse_; }
    hw::tilt scan_offset() const { return scan_; }
    const pat_counters& counters() const { return counters_; }
    /// The most recent transitions, oldest first (bounded by transition_history).
    std::vector<pat_transition> transitions() const;
    /// Called on every transition (e.g. qlinkd's "link" log channel); never per tick.
    void set_transition_sink(transition_sink sink) { sink_ = std::move(sink); }
    const pat_config& settings() const { return cfg_; }

private:
    struct pi2 {  // type-2 loop state per axis
        double integral = 0.0;
    };
    static void type2(pi2& s, double kp, double ki, double e, double dt, double& out);

    void enter(pat_state to, pat_reason why, sim::time_point now);
    void end_pass(pat_reason why, sim::time_point now);
    void lose_signal(sim::time_point now);
    bool command_mount(sim::time_point now, double lead_s);
    void coarse_tick(const pat_target& target, sim::time_point now, double dt);
    void fine_tick(sim::time_point now, double dt);
    void agc(const hw::quad_cell_reading& q, sim::time_point now);
    void reset_fine();
    double quad_range_rad() const;
    hw::tilt spiral(double t_s) const;

    pat_config cfg_;
    const sim::clock& clock_;
    const pat_ephemeris& eph_;
    hw::mount& mount_;
    hw::fine_pointing& fine_;
    hw::optical_transceiver& tx_;
    transition_sink sink_;

    pat_state state_ = pat_state::idle;
    bool armed_ = false;
    bool have_last_ = false;
    sim::time_point last_step_{};
    sim::time_point state_since_{};
    sim::time_point next_coarse_{};
    sim::time_point next_mount_{};
    sim::time_point last_coarse_{};
    bool have_coarse_ = false;

    // Pointing state (telescope frame).
    hw::tilt coarse_{};      ///< mount correction from the camera loop (also the spiral centre)
    hw::tilt scan_{};        ///< spiral offset while acquiring
    hw::tilt fsm_{};         ///< mirror command
    pi2 coarse_x_, coarse_y_, fine_x_, fine_y_;
    hw::tilt residual_{};
    bool have_mount_cmd_ = false;
    double mount_az_ = 0.0;  ///< last commanded mount azimuth (for the 450-degree mapping)

    // Sensors and timers.
    bool camera_sees_ = false;
    bool quad_usable_ = false;
    double settled_s_ = 0.0;
    double converged_s_ = 0.0;
    double fine_bad_s_ = 0.0;
    double scan_time_s_ = 0.0;
    sim::time_point attempt_since_{};
    sim::time_point beacon_last_seen_{};
    bool dropout_counted_ = false;
    bool mount_failing_ = false;
    sim::time_point mount_fail_since_{};
    sim::time_point last_gain_change_{};
    double ms_err_ = 0.0;    ///< running mean square quad-cell error for FINE_TRACK -> COMMUNICATION
    double comm_sum_sq_ = 0.0;
    unsigned long comm_n_ = 0;
    double last_tta_s_ = -1.0;

    pat_counters counters_;
    std::vector<pat_transition> history_;
    std::size_t history_next_ = 0;
};

}  // namespace qlink::terminal
