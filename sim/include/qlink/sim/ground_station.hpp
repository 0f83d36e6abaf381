// A ground station on the WGS-84 ellipsoid and what it sees: azimuth, elevation, range, Doppler, point-ahead.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "qlink/sim/frames.hpp"
#include "qlink/sim/sgp4.hpp"

namespace qlink::sim {

/// Topocentric view of a satellite from a station.
struct look_angles {
    double azimuth_deg = 0.0;      // from north, clockwise, [0, 360)
    double elevation_deg = 0.0;    // above the local horizontal (ellipsoid normal)
    double range_km = 0.0;
    double range_rate_km_s = 0.0;  // positive = receding
};

/// Everything the link needs at one instant.
struct pass_sample {
    time_point t;
    look_angles look;
    double range_accel_km_s2 = 0.0;
    double point_ahead_rad = 0.0;  // 2 v_perp / c, v_perp relative to the station, inertial frame
    geodetic subpoint;             // satellite's geodetic position
    sgp4_error error = sgp4_error::none;
};

class ground_station {
public:
    struct config {
        std::string name = "station";
        double latitude_deg = 0.0;   // [-90, 90]
        double longitude_deg = 0.0;  // [-180, 360)
        double altitude_m = 0.0;     // [-500, 9000]
    };

    /// Returns an error message naming the field and its allowed range, or empty if valid.
    static std::string validate(const config& cfg);
    /// Throws std::invalid_argument with validate()'s message: configuration edge only.
    explicit ground_station(const config& cfg);

    const config& settings() const { return cfg_; }
    const vec3& ecef_km() const { return ecef_; }

    /// Look angles of an Earth-fixed satellite state (km, km/s).
    look_angles look(const vec3& sat_ecef_km, const vec3& sat_ecef_vel_km_s) const;
    /// Propagates and looks; `error` of the result tells when SGP4 failed.
    pass_sample observe(const sgp4_propagator& sat, time_point t) const;

private:
    config cfg_;
    vec3 ecef_{};
    // Rows of the ECEF -> ENU rotation.
    vec3 east_{}, north_{}, up_{};
};

/// Parses "LAT,LON,ALT" (degrees, degrees, metres) into a config; on failure returns
/// nullopt and a message naming the field and its range.
std::optional<ground_station::config> parse_station(std::string_view text, std::string& error);

/// Received-minus-transmitted frequency for a carrier: approaching (range rate < 0) gives a
/// positive shift. First order in v/c (the second-order term is < 1e-9 relative at LEO).
inline double doppler_shift_hz(double carrier_hz, double range_rate_km_s) {
    return -carrier_hz * range_rate_km_s * 1e3 / speed_of_light_m_s;
}
/// Rate of the Doppler shift, Hz/s, from the range acceleration.
inline double doppler_rate_hz_s(double carrier_hz, double range_accel_km_s2) {
    return -carrier_hz * range_accel_km_s2 * 1e3 / speed_of_light_m_s;
}

}  // namespace qlink::sim
