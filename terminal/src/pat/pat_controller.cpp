// The PAT state machine: program track, spiral acquisition, coarse (mount) and fine (FSM) type-2 tracking loops.
#include "qlink/terminal/pat.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace qlink::terminal {
namespace {

double seconds(sim::duration d) { return std::chrono::duration<double>(d).count(); }
double norm(hw::tilt t) { return std::hypot(t.x_rad, t.y_rad); }

// Jury test of z^2 + (a + b - 2) z + (1 - a), the type-2 loop around a one-sample-delay
// position actuator with a = kp T, b = ki T^2. Kept at a <= 1 (no negative real pole:
// the mirror's own lag and the mount's slew need phase margin the delay model lacks).
std::string check_loop(const char* name, double kp, double ki, double rate_hz) {
    const double t = 1.0 / rate_hz;
    const double a = kp * t;
    const double b = ki * t * t;
    if (!(kp > 0.0 && ki > 0.0 && std::isfinite(kp) && std::isfinite(ki)))
        return std::string("pat.") + name + "_kp/_ki must be > 0";
    if (!(a <= 1.0 && 4.0 - 2.0 * a - b > 0.0))
        return std::string("pat.") + name + "_kp/_ki: the loop is unstable or too aggressive at its rate " +
               "(need kp/rate <= 1 and 4 - 2 kp/rate - ki/rate^2 > 0)";
    return {};
}

}  // namespace

std::string_view to_string(pat_state s) {
    switch (s) {
    case pat_state::idle: return "IDLE";
    case pat_state::program_track: return "PROGRAM_TRACK";
    case pat_state::acquisition: return "ACQUISITION";
    case pat_state::coarse_track: return "COARSE_TRACK";
    case pat_state::fine_track: return "FINE_TRACK";
    case pat_state::communication: return "COMMUNICATION";
    }
    return "UNKNOWN";
}

std::string_view to_string(pat_reason r) {
    switch (r) {
    case pat_reason::pass_start: return "pass_start";
    case pat_reason::mount_on_target: return "mount_on_target";
    case pat_reason::beacon_detected: return "beacon_detected";
    case pat_reason::coarse_converged: return "coarse_converged";
    case pat_reason::fine_converged: return "fine_converged";
    case pat_reason::fine_lost: return "fine_lost";
    case pat_reason::signal_lost: return "signal_lost";
    case pat_reason::below_mask: return "below_mask";
    case pat_reason::ephemeris_lost: return "ephemeris_lost";
    case pat_reason::mount_fault: return "mount_fault";
    case pat_reason::stop_requested: return "stop_requested";
    }
    return "unknown";
}

std::string format(const pat_transition& t) {
    return sim::format_iso8601_utc(t.t) + " PAT " + std::string(to_string(t.from)) + " -> " +
           std::string(to_string(t.to)) + " (" + std::string(to_string(t.reason)) + ")";
}

std::string validate(const pat_config& c) {
    auto in = [](double v, double lo, double hi) { return v >= lo && v <= hi; };
    if (!in(c.fine_rate_hz, 100.0, 20000.0)) return "pat.fine_rate_hz must be in [100, 20000] Hz";
    if (!in(c.coarse_rate_hz, 1.0, c.fine_rate_hz)) return "pat.coarse_rate_hz must be in [1, fine_rate_hz] Hz";
    if (!in(c.mount_rate_hz, 1.0, c.fine_rate_hz)) return "pat.mount_rate_hz must be in [1, fine_rate_hz] Hz";
    if (!in(c.elevation_mask_deg, 0.0, 89.0)) return "pat.elevation_mask_deg must be in [0, 89] deg";
    if (!(c.settle_tolerance_rad > 0.0 && c.settle_tolerance_rad <= 0.1))
        return "pat.settle_tolerance_rad must be in (0, 0.1] rad";
    if (!in(c.settle_time_s, 0.0, 60.0)) return "pat.settle_time_s must be in [0, 60] s";
    if (!(c.uncertainty_cone_rad > 0.0 && c.uncertainty_cone_rad <= 0.05))
        return "pat.uncertainty_cone_rad must be in (0, 0.05] rad";
    if (!(c.spiral_pitch_rad > 0.0 && c.spiral_pitch_rad <= c.uncertainty_cone_rad))
        return "pat.spiral_pitch_rad must be in (0, uncertainty_cone_rad] rad";
    if (!(c.scan_speed_rad_s > 0.0 && c.scan_speed_rad_s <= 1.0)) return "pat.scan_speed_rad_s must be in (0, 1] rad/s";
    if (!(c.acquisition_timeout_s > 0.0 && c.acquisition_timeout_s <= 3600.0))
        return "pat.acquisition_timeout_s must be in (0, 3600] s";
    if (std::string e = check_loop("coarse", c.coarse_kp, c.coarse_ki, c.coarse_rate_hz); !e.empty()) return e;
    if (std::string e = check_loop("fine", c.fine_kp, c.fine_ki, c.fine_rate_hz); !e.empty()) return e;
    if (!(c.coarse_to_fine_rad > 0.0 && c.coarse_to_fine_rad <= 1e-2))
        return "pat.coarse_to_fine_rad must be in (0, 0.01] rad";
    if (!in(c.converge_time_s, 0.0, 60.0)) return "pat.converge_time_s must be in [0, 60] s";
    if (!(c.fine_to_comm_rad > 0.0 && c.fine_to_comm_rad < c.fine_exit_rad))
        return "pat.fine_to_comm_rad must be in (0, fine_exit_rad) rad";
    if (!(c.fine_exit_rad <= 1e-2)) return "pat.fine_exit_rad must be <= 0.01 rad";
    if (!in(c.fine_loss_time_s, 0.0, 10.0)) return "pat.fine_loss_time_s must be in [0, 10] s";
    if (!(c.signal_loss_timeout_s > 0.0 && c.signal_loss_timeout_s <= 60.0))
        return "pat.signal_loss_timeout_s must be in (0, 60] s";
    if (!(c.mount_fault_timeout_s > 0.0 && c.mount_fault_timeout_s <= 600.0))
        return "pat.mount_fault_timeout_s must be in (0, 600] s";
    if (!(c.laser_power_w >= 0.0 && std::isfinite(c.laser_power_w))) return "pat.laser_power_w must be >= 0";
    if (!(c.agc_low_fraction > 0.0 && c.agc_high_fraction < 1.0 && 2.0 * c.agc_low_fraction < c.agc_high_fraction))
        return "pat.agc_low_fraction/agc_high_fraction must satisfy 0 < 2 low < high < 1";
    if (!in(static_cast<double>(c.transition_history), 1.0, 1e6)) return "pat.transition_history must be in [1, 1e6]";
    return {};
}

pat_controller::pat_controller(const pat_config& cfg, const sim::clock& clock, const pat_ephemeris& ephemeris,
                               hw::mount& mount, hw::fine_pointing& fine, hw::optical_transceiver& transceiver)
    : cfg_(cfg), clock_(clock), eph_(ephemeris), mount_(mount), fine_(fine), tx_(transceiver) {
    if (std::string e = validate(cfg_); !e.empty()) throw std::invalid_argument(e);
    // Checks against the hardware this controller drives.
    const double fov = tx_.limits().camera_fov_half_rad;
    if (cfg_.spiral_pitch_rad > 2.0 * fov)
        throw std::invalid_argument("pat.spiral_pitch_rad must be <= 2 x the camera half field of view (" +
                                    std::to_string(2.0 * fov) + " rad): the scan would leave gaps");
    if (cfg_.scan_speed_rad_s / cfg_.coarse_rate_hz > fov)
        throw std::invalid_argument("pat.scan_speed_rad_s must be <= camera half field x coarse_rate_hz (" +
                                    std::to_string(fov * cfg_.coarse_rate_hz) + " rad/s): frames would skip sky");
    const double quad_range = quad_range_rad();
    if (cfg_.fine_exit_rad > quad_range)
        throw std::invalid_argument("pat.fine_exit_rad must be <= the quad cell's range (" + std::to_string(quad_range) +
                                    " rad, 1.6 x its spot radius)");
    if (cfg_.coarse_to_fine_rad > 0.5 * quad_range)
        throw std::invalid_argument("pat.coarse_to_fine_rad must be <= half the quad cell's range (" +
                                    std::to_string(0.5 * quad_range) + " rad)");
    history_.reserve(cfg_.transition_history);
}

double pat_controller::quad_range_rad() const { return 1.6 * fine_.limits().spot_radius_rad; }

void pat_controller::start() { armed_ = true; }

void pat_controller::stop() {
    armed_ = false;
    if (state_ != pat_state::idle) end_pass(pat_reason::stop_requested, clock_.now());
    tx_.set_laser(false);
}

double pat_controller::communication_rms_rad() const {
    return comm_n_ ? std::sqrt(comm_sum_sq_ / static_cast<double>(comm_n_)) : 0.0;
}

std::vector<pat_transition> pat_controller::transitions() const {
    if (history_.size() < cfg_.transition_history) return history_;
    std::vector<pat_transition> out;
    out.reserve(history_.size());
    for (std::size_t i = 0; i < history_.size(); ++i) out.push_back(history_[(history_next_ + i) % history_.size()]);
    return out;
}

void pat_controller::reset_fine() {
    fine_x_ = fine_y_ = {};
    fsm_ = {};
    if (fine_.command_mirror(fsm_).code == hw::fine_pointing_errc::clamped) ++counters_.fsm_clamps;
    fine_bad_s_ = 0.0;
}

void pat_controller::enter(pat_state to, pat_reason why, sim::time_point now) {
    const pat_state from = state_;
    if (from == pat_state::communication && to != pat_state::communication) tx_.set_laser(false);
    state_ = to;
    state_since_ = now;
    settled_s_ = converged_s_ = fine_bad_s_ = 0.0;
    ++counters_.transitions[static_cast<std::size_t>(why)];
    ++counters_.entered[static_cast<std::size_t>(to)];

    switch (to) {
    case pat_state::idle: break;
    case pat_state::program_track:
        coarse_ = scan_ = {};
        coarse_x_ = coarse_y_ = {};
        reset_fine();
        beacon_last_seen_ = now;
        have_mount_cmd_ = false;
        if (hw::az_el pos; mount_.get_position(pos)) mount_az_ = pos.az_deg;  // unwrap from where it is
        else ++counters_.mount_errors;
        break;
    case pat_state::acquisition:
        // Re-acquisition scans around the last good correction, which is still the best guess.
        scan_ = {};
        scan_time_s_ = 0.0;
        attempt_since_ = now;
        coarse_x_ = coarse_y_ = {};
        reset_fine();
        break;
    case pat_state::coarse_track:
        reset_fine();
        break;
    case pat_state::fine_track:
        fine_x_ = fine_y_ = {};
        ms_err_ = cfg_.fine_exit_rad * cfg_.fine_exit_rad;
        break;
    case pat_state::communication:
        comm_sum_sq_ = 0.0;
        comm_n_ = 0;
        tx_.set_laser_power(std::min(cfg_.laser_power_w, tx_.limits().laser_max_power_w));
        tx_.set_laser(true);
        break;
    }

    const pat_transition t{now, from, to, why};
    if (history_.size() < cfg_.transition_history) {
        history_.push_back(t);
    } else {
        history_[history_next_] = t;
        history_next_ = (history_next_ + 1) % history_.size();
    }
    if (sink_) sink_(t);
}

void pat_controller::end_pass(pat_reason why, sim::time_point now) {
    tx_.set_laser(false);
    reset_fine();
    mount_.stop();
    scan_ = {};
    residual_ = {};
    have_mount_cmd_ = false;
    enter(pat_state::idle, why, now);
}

void pat_controller::lose_signal(sim::time_point now) {
    if (tx_.laser_on()) {
        tx_.set_laser(false);
        ++counters_.laser_off_safety;
    }
    ++counters_.reacquisitions;
    residual_ = {};
    enter(pat_state::acquisition, pat_reason::signal_lost, now);
}

hw::tilt pat_controller::spiral(double t_s) const {
    // r = b phi with b = pitch / 2 pi; at constant speed v, r dphi = v dt gives r = sqrt(2 b v t).
    const double b = cfg_.spiral_pitch_rad / (2.0 * std::numbers::pi);
    const double r = std::sqrt(2.0 * b * cfg_.scan_speed_rad_s * t_s);
    const double phi = r / b;
    return {r * std::cos(phi), r * std::sin(phi)};
}

bool pat_controller::command_mount(sim::time_point now, double lead_s) {
    // Commanded where the target will be at the next mount update: a position-only mount
    // interface then tracks a moving target without a lag at the update instants.
    const pat_target ahead = eph_.at(now + sim::seconds_d(lead_s));
    if (!ahead.valid) return true;  // the state check of this step handles it
    const hw::tilt offset{coarse_.x_rad + scan_.x_rad, coarse_.y_rad + scan_.y_rad};
    const hw::az_el sky = hw::apply_offset(ahead.sky, offset);
    hw::az_el axes;
    if (!hw::map_to_mount(sky, mount_az_, mount_.limits(), cfg_.flip_mount, axes)) return false;
    if (!mount_.set_position(axes)) return false;
    mount_az_ = axes.az_deg;
    have_mount_cmd_ = true;
    return true;
}

void pat_controller::type2(pi2& s, double kp, double ki, double e, double dt, double& out) {
    s.integral += ki * e * dt;
    out += (kp * e + s.integral) * dt;
}

void pat_controller::coarse_tick(const pat_target& target, sim::time_point now, double dt) {
    if (state_ == pat_state::program_track) {
        hw::az_el pos;
        if (!mount_.get_position(pos)) {
            ++counters_.mount_errors;
            return;
        }
        const hw::az_el want = hw::apply_offset(target.sky, coarse_);
        const double err = norm(hw::sky_offset(hw::mount_to_sky(pos), want));
        settled_s_ = err < cfg_.settle_tolerance_rad ? settled_s_ + dt : 0.0;
        if (have_mount_cmd_ && err < cfg_.settle_tolerance_rad && settled_s_ >= cfg_.settle_time_s)
            enter(pat_state::acquisition, pat_reason::mount_on_target, now);
        return;
    }

    const hw::camera_reading cam = tx_.read_beacon_camera();
    camera_sees_ = cam.detected;
    if (state_ == pat_state::acquisition) {
        if (cam.detected) {
            coarse_ = {coarse_.x_rad + scan_.x_rad + cam.centroid.x_rad,
                       coarse_.y_rad + scan_.y_rad + cam.centroid.y_rad};
            scan_ = {};
            last_tta_s_ = seconds(now - state_since_);
            ++counters_.acquisitions;
            beacon_last_seen_ = now;
            enter(pat_state::coarse_track, pat_reason::beacon_detected, now);
            return;
        }
        scan_time_s_ += dt;
        if (norm(spiral(scan_time_s_)) > cfg_.uncertainty_cone_rad) scan_time_s_ = 0.0;  // cone covered: rescan
        if (seconds(now - attempt_since_) >= cfg_.acquisition_timeout_s) {
            ++counters_.acquisition_timeouts;
            attempt_since_ = now;
            scan_time_s_ = 0.0;
        }
        scan_ = spiral(scan_time_s_);
        return;
    }

    // Tracking states: the coarse loop keeps the beacon centred on the camera (and so
    // keeps the mirror near the middle of its range in the fine states).
    if (!cam.detected) return;  // hold: the dropout timer in step() decides
    beacon_last_seen_ = now;
    type2(coarse_x_, cfg_.coarse_kp, cfg_.coarse_ki, cam.centroid.x_rad, dt, coarse_.x_rad);
    type2(coarse_y_, cfg_.coarse_kp, cfg_.coarse_ki, cam.centroid.y_rad, dt, coarse_.y_rad);
    if (state_ == pat_state::coarse_track) {
        residual_ = cam.centroid;
        const bool ok = norm(cam.centroid) < cfg_.coarse_to_fine_rad && quad_usable_;
        converged_s_ = ok ? converged_s_ + dt : 0.0;
        if (ok && converged_s_ >= cfg_.converge_time_s) enter(pat_state::fine_track, pat_reason::coarse_converged, now);
    }
}

void pat_controller::agc(const hw::quad_cell_reading& q, sim::time_point now) {
    if (q.status == hw::quad_cell_status::saturated) ++counters_.quad_cell_saturations;
    if (q.status == hw::quad_cell_status::invalid) return;
    if (seconds(now - last_gain_change_) < 5e-3) return;  // let a change settle before the next
    const hw::fine_pointing_limits& lim = fine_.limits();
    const double vmax = std::max(std::max(q.v[0], q.v[1]), std::max(q.v[2], q.v[3]));
    const double sat = lim.thresholds.saturation_v;
    const double g = fine_.quad_cell_gain();
    double want = g;
    if (q.status == hw::quad_cell_status::saturated || vmax > cfg_.agc_high_fraction * sat) want = g / 2.0;
    else if (vmax < cfg_.agc_low_fraction * sat &&
             (q.status == hw::quad_cell_status::ok ||
              // Too faint to use at all while the camera says the spot is on the cell.
              (state_ == pat_state::coarse_track && camera_sees_ && norm(residual_) < cfg_.coarse_to_fine_rad)))
        want = g * 2.0;
    want = std::clamp(want, lim.gain_min, lim.gain_max);
    if (want != g && fine_.set_quad_cell_gain(want)) {
        ++counters_.gain_changes;
        last_gain_change_ = now;
    }
}

void pat_controller::fine_tick(sim::time_point now, double dt) {
    const hw::quad_cell_reading q = fine_.read_quad_cell();
    agc(q, now);
    quad_usable_ = q.usable();
    hw::tilt e{};
    if (quad_usable_) {
        beacon_last_seen_ = now;
        const double w = fine_.limits().spot_radius_rad;
        e = {hw::quad_cell_angle(q.ex, w), hw::quad_cell_angle(q.ey, w)};
    }
    if (state_ == pat_state::coarse_track) return;

    const bool in_range = quad_usable_ && norm(e) <= cfg_.fine_exit_rad;
    if (!in_range) {
        // The beacon gone from both sensors is a dropout (handled by the signal-loss timer);
        // the camera still seeing it while the cell does not means the fine loop lost it.
        if (quad_usable_ || camera_sees_) fine_bad_s_ += dt;
        if (fine_bad_s_ > cfg_.fine_loss_time_s) {
            if (state_ == pat_state::communication && tx_.laser_on()) ++counters_.laser_off_safety;
            residual_ = {};
            enter(pat_state::coarse_track, pat_reason::fine_lost, now);
        }
        return;
    }
    fine_bad_s_ = 0.0;
    residual_ = e;
    const pi2 ix = fine_x_;
    const pi2 iy = fine_y_;
    type2(fine_x_, cfg_.fine_kp, cfg_.fine_ki, e.x_rad, dt, fsm_.x_rad);
    type2(fine_y_, cfg_.fine_kp, cfg_.fine_ki, e.y_rad, dt, fsm_.y_rad);
    const hw::fine_pointing_result r = fine_.command_mirror(fsm_);
    if (r.code == hw::fine_pointing_errc::clamped) {
        // Anti-windup: at the range edge, hold the integrators and the command where it was.
        ++counters_.fsm_clamps;
        fine_x_ = ix;
        fine_y_ = iy;
        fsm_ = fine_.mirror_command();
    }
    const double e2 = e.x_rad * e.x_rad + e.y_rad * e.y_rad;
    const double alpha = cfg_.converge_time_s > 0.0 ? std::min(1.0, dt / (cfg_.converge_time_s / 3.0)) : 1.0;
    ms_err_ += (e2 - ms_err_) * alpha;
    if (state_ == pat_state::fine_track) {
        converged_s_ += dt;
        if (converged_s_ >= cfg_.converge_time_s && std::sqrt(ms_err_) < cfg_.fine_to_comm_rad)
            enter(pat_state::communication, pat_reason::fine_converged, now);
    } else {
        comm_sum_sq_ += e2;
        ++comm_n_;
    }
}

pat_step_result pat_controller::step() {
    const sim::time_point now = clock_.now();
    ++counters_.steps;
    const pat_state before = state_;
    double dt = 0.0;
    if (have_last_) {
        dt = seconds(now - last_step_);
        if (dt < 0.0 || dt > 1.0) {
            ++counters_.bad_steps;  // clock stepped backwards or stalled: hold the loops this tick
            dt = 0.0;
        }
    }
    if (!have_last_ || now > last_step_) last_step_ = now;
    have_last_ = true;

    const pat_target target = eph_.at(now);
    if (state_ == pat_state::idle) {
        if (armed_ && target.valid && target.sky.el_deg >= cfg_.elevation_mask_deg) {
            ++counters_.passes;
            mount_failing_ = false;
            next_mount_ = next_coarse_ = now;
            enter(pat_state::program_track, pat_reason::pass_start, now);
        } else {
            return {state_, false};
        }
    }
    if (!target.valid) {
        end_pass(pat_reason::ephemeris_lost, now);
        return {state_, true};
    }
    if (target.sky.el_deg < cfg_.elevation_mask_deg) {
        end_pass(pat_reason::below_mask, now);
        return {state_, true};
    }

    // Transmit point-ahead, clamped into the mirror's range.
    const double pa = tx_.limits().point_ahead_range_rad;
    tx_.set_point_ahead({std::clamp(target.point_ahead.x_rad, -pa, pa), std::clamp(target.point_ahead.y_rad, -pa, pa)});

    if (now >= next_mount_) {
        const double period = 1.0 / cfg_.mount_rate_hz;
        if (command_mount(now, period)) {
            mount_failing_ = false;
        } else {
            ++counters_.mount_errors;
            if (!mount_failing_) mount_fail_since_ = now;
            mount_failing_ = true;
            if (seconds(now - mount_fail_since_) > cfg_.mount_fault_timeout_s) {
                end_pass(pat_reason::mount_fault, now);
                return {state_, true};
            }
        }
        next_mount_ += sim::seconds_d(period);
        if (next_mount_ <= now) next_mount_ = now + sim::seconds_d(period);
    }

    if (now >= next_coarse_) {
        const double period = 1.0 / cfg_.coarse_rate_hz;
        const double cdt = have_coarse_ ? std::min(seconds(now - last_coarse_), 1.0) : period;
        have_coarse_ = true;
        last_coarse_ = now;
        coarse_tick(target, now, cdt);
        next_coarse_ += sim::seconds_d(period);
        if (next_coarse_ <= now) next_coarse_ = now + sim::seconds_d(period);
    }

    if (state_ == pat_state::coarse_track || state_ == pat_state::fine_track || state_ == pat_state::communication)
        fine_tick(now, dt);

    // Beacon gone from every sensor: a dropout; beyond the timeout the laser goes off (eye
    // safety) and the terminal scans again around its last good correction.
    if (state_ == pat_state::coarse_track || state_ == pat_state::fine_track || state_ == pat_state::communication) {
        const double gone = seconds(now - beacon_last_seen_);
        if (gone > 1.5 / cfg_.coarse_rate_hz && !dropout_counted_) {
            dropout_counted_ = true;
            ++counters_.beacon_dropouts;
        } else if (gone == 0.0) {
            dropout_counted_ = false;
        }
        if (gone > cfg_.signal_loss_timeout_s) lose_signal(now);
    }
    return {state_, state_ != before};
}

}  // namespace qlink::terminal
