// The optical transceiver interface (laser, detector, beacon camera), the simulated optical scene, and its twin.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "qlink/hw/mount.hpp"
#include "qlink/sim/clock.hpp"
#include "qlink/sim/optical_link.hpp"

namespace qlink::hw {

/// A small two-axis angle in the telescope frame, radians: x is cross-elevation
/// (azimuth times cos(elevation), positive towards increasing azimuth), y is
/// elevation (positive up). Camera centroids, quad-cell errors, mirror tilts and
/// point-ahead all use this frame, so the loops add them without conversion.
struct tilt {
    double x_rad = 0.0;
    double y_rad = 0.0;
};

/// Offset (in the telescope frame at `from`) from direction `from` to direction `to`.
/// Small-angle, valid for offsets well below a degree.
tilt sky_offset(az_el from, az_el to);
/// The direction `offset` away from `from` (inverse of sky_offset for small offsets).
az_el apply_offset(az_el from, tilt offset);

// ---------------------------------------------------------------------------------------------
// Optical transceiver
// ---------------------------------------------------------------------------------------------

/// One frame of the beacon (acquisition/tracking) camera.
struct camera_reading {
    bool detected = false;     ///< a spot above the detection threshold inside the field of view
    tilt centroid{};           ///< spot centroid relative to the boresight (valid when detected)
    double spot_power_w = 0.0; ///< beacon power in the spot (0 when not detected)
    std::uint64_t frame = 0;   ///< frame counter
};

/// The communication detector behind the fast steering mirror.
struct detector_reading {
    double power_w = 0.0;      ///< optical power on the detector
    bool saturated = false;    ///< power above the detector's linear range (reading clipped)
};

enum class transceiver_errc { ok, out_of_range, fault };
std::string_view to_string(transceiver_errc e);

struct transceiver_result {
    transceiver_errc code = transceiver_errc::ok;
    std::string_view message;  ///< static text, empty when ok
    explicit operator bool() const { return code == transceiver_errc::ok; }
};

struct transceiver_limits {
    double laser_max_power_w = 1.0;       ///< uplink/communication laser, > 0
    double point_ahead_range_rad = 200e-6; ///< point-ahead mirror range per axis, > 0
    double camera_fov_half_rad = 150e-6;  ///< beacon camera half field of view (circular), > 0
};

struct transceiver_counters {
    unsigned long laser_on_commands = 0;
    unsigned long laser_off_commands = 0;
    unsigned long rejected = 0;           ///< out-of-range power / point-ahead commands refused
    unsigned long camera_frames = 0;
    unsigned long camera_detections = 0;
    unsigned long detector_reads = 0;
    unsigned long detector_saturations = 0;
};

class optical_transceiver {
public:
    virtual ~optical_transceiver() = default;
    /// Switches the laser. Switching it on with zero power set is allowed (emits nothing).
    virtual transceiver_result set_laser(bool on) = 0;
    /// Power in [0, laser_max_power_w]; out of range (or not finite) is refused and nothing changes.
    virtual transceiver_result set_laser_power(double watts) = 0;
    virtual bool laser_on() const = 0;
    virtual double laser_power_w() const = 0;
    /// Transmit point-ahead offset from the receive boresight; |x|,|y| <= point_ahead_range_rad.
    virtual transceiver_result set_point_ahead(tilt offset) = 0;
    virtual tilt point_ahead() const = 0;
    virtual detector_reading read_detector() = 0;
    virtual camera_reading read_beacon_camera() = 0;
    virtual std::string_view name() const = 0;
    virtual const transceiver_limits& limits() const = 0;
    virtual const transceiver_counters& counters() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Simulated optical scene: the world both simulated optical sensors look at
// ---------------------------------------------------------------------------------------------

/// The truth at one instant, supplied by the simulation (ephemeris plus its error, clouds ...).
struct optical_truth {
    bool beacon_on = true;     ///< false: below the horizon, blocked, or the beacon is off
    az_el sky{};               ///< true apparent direction of the satellite (degrees)
    double range_m = 1000e3;   ///< slant range, > 0
    double extra_loss = 1.0;   ///< further power factor in [0, 1] (clouds, attenuation)
};

using optical_truth_fn = std::function<optical_truth(sim::time_point)>;

/// Where the beam lands relative to the terminal, from the mount's position and the truth:
/// the line-of-sight error before the fast steering mirror (with jitter), and the beacon and
/// downlink powers from the sim optical channel (sim::optical_link budget at the geometry,
/// times extra_loss, times lognormal scintillation when enabled). Sampled once per clock
/// instant; both simulated sensors read the same sample, so they agree with each other.
class optical_scene {
public:
    struct config {
        sim::optical_link::config beacon{};   ///< satellite beacon to the ground station
        sim::optical_link::config downlink{}; ///< satellite communication signal to the ground station
        double site_altitude_m = 0.0;         ///< [0, 8000]
        double jitter_rms_rad = 2e-6;         ///< line-of-sight jitter per axis (mount vibration, tilt), [0, 1e-3]
        double jitter_correlation_s = 0.02;   ///< AR(1) correlation time of the jitter, > 0
        double scintillation_index = 0.0;     ///< 0 disables; lognormal, (0, 4]
        double scintillation_coherence_s = 5e-3; ///< > 0
        double scintillation_rate_hz = 2000.0;   ///< sample rate of the fading process, >= 10
        std::uint64_t seed = 7;
    };

    struct sample {
        sim::time_point t{};
        bool beacon_on = false;
        tilt los_error{};          ///< beacon direction minus boresight, before the FSM, incl. jitter
        tilt residual{};           ///< after the FSM: los_error - fsm tilt (what the quad cell sees)
        double beacon_power_w = 0.0;
        double signal_power_w = 0.0;
        bool mount_ok = true;      ///< false when the mount position could not be read
    };

    /// Message naming the field and its allowed range, or empty.
    static std::string validate(const config& cfg);
    /// Throws std::invalid_argument (configuration edge). Clock and mount must outlive the scene.
    optical_scene(const config& cfg, const sim::clock& clock, mount& m, optical_truth_fn truth);
    ~optical_scene();
    optical_scene(const optical_scene&) = delete;
    optical_scene& operator=(const optical_scene&) = delete;

    /// The sample at the clock's now (computed on the first call at a new instant).
    const sample& now();
    /// Mirror tilt currently applied in the beam path (written by the simulated fine pointing).
    void set_fsm_tilt(tilt t);
    tilt fsm_tilt() const { return fsm_; }
    /// Adds a fixed line-of-sight offset (tests: a step disturbance, e.g. a mount kick).
    void set_disturbance(tilt d) { disturbance_ = d; }
    const config& settings() const { return cfg_; }

private:
    struct impl;
    config cfg_;
    const sim::clock& clock_;
    mount& mount_;
    optical_truth_fn truth_;
    tilt fsm_{};
    tilt disturbance_{};
    sample last_{};
    bool have_sample_ = false;
    std::unique_ptr<impl> impl_;
};

/// Simulated transceiver over a scene.
struct sim_transceiver_config {
    transceiver_limits limits{};
    double camera_threshold_w = 1e-11;   ///< beacon power the camera needs to detect the spot, > 0
    double camera_noise_rad = 1e-6;      ///< centroid noise rms per axis, >= 0
    double detector_fov_rad = 20e-6;     ///< 1/e^2 coupling half-angle of the detector behind the FSM, > 0
    double detector_saturation_w = 1e-3; ///< > 0
    std::uint64_t seed = 11;
};

/// Throws std::invalid_argument naming the bad field. The scene must outlive the transceiver.
std::unique_ptr<optical_transceiver> create_sim_optical_transceiver(const sim_transceiver_config& cfg,
                                                                    optical_scene& scene);

}  // namespace qlink::hw
