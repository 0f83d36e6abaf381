// Fine pointing: the fast steering mirror + quad-cell interface, the quad-cell error math, and the simulated twin.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "qlink/hw/optical_transceiver.hpp"

namespace qlink::hw {

// Quadrant numbering. Looking at the cell face along the incoming light, x to the right
// (cross-elevation, the telescope frame's x) and y up (elevation), the quadrants are
// numbered like the mathematical ones:
//
//        2 | 1
//       ---+---
//        3 | 4
//
// so ex = (V1+V4-V2-V3)/sum is right minus left and ey = (V1+V2-V3-V4)/sum is top minus
// bottom: a spot in quadrant 1 gives ex > 0 and ey > 0, and a positive error means the
// beam arrives from +x/+y of the boresight (the mirror must tilt by +ex, +ey to centre it).

struct quad_cell_thresholds {
    double saturation_v = 4.5;  ///< a channel at or above this is clipped by the amplifier, > 0
    double min_sum_v = 0.02;    ///< below this sum the ratios are noise, (0, saturation_v)
};

enum class quad_cell_status { ok, low_signal, saturated, invalid };
std::string_view to_string(quad_cell_status s);

struct quad_cell_reading {
    std::array<double, 4> v{};  ///< V1..V4 in volts (quadrant numbering above)
    double sum_v = 0.0;
    double ex = 0.0;            ///< (V1+V4-V2-V3)/sum, in [-1, 1]; 0 unless status is ok or saturated
    double ey = 0.0;            ///< (V1+V2-V3-V4)/sum
    quad_cell_status status = quad_cell_status::invalid;
    bool usable() const { return status == quad_cell_status::ok; }
};

/// Normalised errors and status from four channel voltages. Non-finite or negative-sum
/// input is `invalid`, a channel at the saturation level is `saturated` (ratios still filled
/// but biased), a sum below min_sum_v is `low_signal` (ratios left at 0).
quad_cell_reading evaluate_quad_cell(const std::array<double, 4>& v, const quad_cell_thresholds& th);

/// A Gaussian spot of 1/e^2 radius w on a gapless cell larger than the spot gives
/// ex = erf(sqrt(2) theta_x / w). quad_cell_error is that response, quad_cell_angle its
/// inverse (|e| is clamped to 0.999, about 1.65 w: beyond it the cell only tells the side).
double quad_cell_error(double theta_rad, double spot_radius_rad);
double quad_cell_angle(double e, double spot_radius_rad);

/// Mechanical/optical limits of a fine pointing unit, in line-of-sight angle.
struct fine_pointing_limits {
    double fsm_range_rad = 1e-3;      ///< +- per axis, > 0
    double fsm_bandwidth_hz = 300.0;  ///< small-signal -3 dB bandwidth of the mirror, > 0
    double spot_radius_rad = 20e-6;   ///< 1/e^2 spot radius on the cell, as an angle, > 0
    double gain_min = 1.0 / 64.0;     ///< quad-cell amplifier gain range, 0 < min <= 1 <= max
    double gain_max = 64.0;
    quad_cell_thresholds thresholds{};
};

enum class fine_pointing_errc { ok, clamped, out_of_range };
std::string_view to_string(fine_pointing_errc e);

struct fine_pointing_result {
    fine_pointing_errc code = fine_pointing_errc::ok;
    std::string_view message;  ///< static text, empty when ok
    explicit operator bool() const { return code == fine_pointing_errc::ok; }
};

struct fine_pointing_counters {
    unsigned long mirror_commands = 0;
    unsigned long mirror_clamped = 0;    ///< commands beyond the range, executed at the range edge
    unsigned long rejected = 0;          ///< not-finite commands, gains out of range
    unsigned long quad_cell_reads = 0;
    unsigned long saturated = 0;
    unsigned long low_signal = 0;
};

class fine_pointing {
public:
    virtual ~fine_pointing() = default;
    /// Commands the mirror tilt. Beyond the range the mirror goes to the edge and the result
    /// is `clamped`; a non-finite value is `out_of_range` and nothing moves.
    virtual fine_pointing_result command_mirror(tilt t) = 0;
    virtual tilt mirror_command() const = 0;
    /// Measured mirror position (strain gauges on a real FSM).
    virtual tilt mirror_position() = 0;
    virtual quad_cell_reading read_quad_cell() = 0;
    /// Quad-cell amplifier gain in [gain_min, gain_max]; else `out_of_range`, nothing changes.
    virtual fine_pointing_result set_quad_cell_gain(double gain) = 0;
    virtual double quad_cell_gain() const = 0;
    virtual std::string_view name() const = 0;
    virtual const fine_pointing_limits& limits() const = 0;
    virtual const fine_pointing_counters& counters() const = 0;
};

/// Message naming the field and its allowed range, or empty.
std::string validate(const fine_pointing_limits& limits);

/// Simulated FSM + quad cell over an optical scene: the mirror is a first-order low pass
/// with the configured bandwidth, clamped to its range; the cell sees a Gaussian spot at the
/// scene's residual error with the beacon power, integrated over each finite quadrant
/// (gap-less, square, half-width cell_half_width_rad), plus white electronic noise.
struct sim_fine_pointing_config {
    fine_pointing_limits limits{};
    double cell_half_width_rad = 100e-6;   ///< > spot_radius_rad
    double volts_per_watt = 1e7;           ///< responsivity x transimpedance at gain 1, > 0
    double noise_v = 1e-3;                 ///< rms per channel, >= 0
    std::uint64_t seed = 5;
};

/// Throws std::invalid_argument naming the bad field. The scene must outlive the result.
std::unique_ptr<fine_pointing> create_sim_fine_pointing(const sim_fine_pointing_config& cfg, optical_scene& scene);

}  // namespace qlink::hw
