// Reference frames: TEME (SGP4's output) -> Earth-fixed (PEF/ECEF) -> WGS-84 geodetic.
#pragma once

#include <array>

#include "qlink/sim/clock.hpp"

namespace qlink::sim {

using vec3 = std::array<double, 3>;

/// WGS-84 ellipsoid and earth rotation (IERS conventional mean rate).
inline constexpr double wgs84_a_km = 6378.137;
inline constexpr double wgs84_f = 1.0 / 298.257223563;
inline constexpr double earth_rotation_rad_s = 7.292115146706979e-5;
inline constexpr double speed_of_light_m_s = 299792458.0;

/// Greenwich mean sidereal time, IAU 1982 model (the one SGP4's TEME is defined with), radians in [0, 2pi).
double gmst_rad(time_point t);

/// TEME -> pseudo Earth-fixed: a rotation by GMST about z. Polar motion (< 20 m at the
/// surface) is ignored, so ECEF here means PEF; that is far inside SGP4's own error.
vec3 teme_to_ecef(const vec3& r_teme, time_point t);
/// Velocity transform includes the earth-rotation term -omega x r.
vec3 teme_to_ecef_velocity(const vec3& r_teme, const vec3& v_teme, time_point t);
/// Inverse rotation (ECEF -> TEME) of a position.
vec3 ecef_to_teme(const vec3& r_ecef, time_point t);

struct geodetic {
    double latitude_deg = 0.0;   // geodetic, WGS-84
    double longitude_deg = 0.0;  // east positive
    double altitude_km = 0.0;    // above the ellipsoid
};

vec3 geodetic_to_ecef(const geodetic& g);
/// Iterative (Bowring-style) inversion, converges to < 1 mm in a few iterations.
geodetic ecef_to_geodetic(const vec3& r_ecef_km);

// Small vector helpers used across the orbit code.
inline vec3 sub(const vec3& a, const vec3& b) { return {a[0] - b[0], a[1] - b[1], a[2] - b[2]}; }
inline double dot(const vec3& a, const vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
double norm(const vec3& a);

}  // namespace qlink::sim
