// TEME -> ECEF rotation with GMST (IAU 1982) and WGS-84 geodetic conversions.
#include "qlink/sim/frames.hpp"

#include <cmath>
#include <numbers>

namespace qlink::sim {

namespace {
constexpr double deg2rad = std::numbers::pi / 180.0;
constexpr double twopi = 2.0 * std::numbers::pi;
}  // namespace

double norm(const vec3& a) { return std::sqrt(dot(a, a)); }

double gmst_rad(time_point t) {
    // Days since J2000.0 computed from integer nanoseconds so the fraction keeps
    // its precision (a Julian date double only resolves ~40 us).
    constexpr std::int64_t j2000_unix_ns = 946728000LL * 1000000000LL;  // 2000-01-01T12:00:00Z
    const std::int64_t ns = t.time_since_epoch().count() - j2000_unix_ns;
    const double tut1 = static_cast<double>(ns) / 86400.0e9 / 36525.0;
    double gmst_s = -6.2e-6 * tut1 * tut1 * tut1 + 0.093104 * tut1 * tut1 +
                    (876600.0 * 3600.0 + 8640184.812866) * tut1 + 67310.54841;
    double g = std::fmod(gmst_s * deg2rad / 240.0, twopi);
    if (g < 0.0) g += twopi;
    return g;
}

vec3 teme_to_ecef(const vec3& r, time_point t) {
    const double g = gmst_rad(t);
    const double c = std::cos(g), s = std::sin(g);
    return {c * r[0] + s * r[1], -s * r[0] + c * r[1], r[2]};
}

vec3 ecef_to_teme(const vec3& r, time_point t) {
    const double g = gmst_rad(t);
    const double c = std::cos(g), s = std::sin(g);
    return {c * r[0] - s * r[1], s * r[0] + c * r[1], r[2]};
}

vec3 teme_to_ecef_velocity(const vec3& r, const vec3& v, time_point t) {
    const vec3 rp = teme_to_ecef(r, t);
    const vec3 vp = teme_to_ecef(v, t);
    return {vp[0] + earth_rotation_rad_s * rp[1], vp[1] - earth_rotation_rad_s * rp[0], vp[2]};
}

vec3 geodetic_to_ecef(const geodetic& g) {
    const double lat = g.latitude_deg * deg2rad, lon = g.longitude_deg * deg2rad;
    const double e2 = wgs84_f * (2.0 - wgs84_f);
    const double sl = std::sin(lat);
    const double n = wgs84_a_km / std::sqrt(1.0 - e2 * sl * sl);
    return {(n + g.altitude_km) * std::cos(lat) * std::cos(lon), (n + g.altitude_km) * std::cos(lat) * std::sin(lon),
            (n * (1.0 - e2) + g.altitude_km) * sl};
}

geodetic ecef_to_geodetic(const vec3& r) {
    const double e2 = wgs84_f * (2.0 - wgs84_f);
    const double p = std::hypot(r[0], r[1]);
    geodetic g;
    g.longitude_deg = std::atan2(r[1], r[0]) / deg2rad;
    double lat = std::atan2(r[2], p * (1.0 - e2));
    double n = wgs84_a_km;
    for (int i = 0; i < 8; ++i) {
        const double sl = std::sin(lat);
        n = wgs84_a_km / std::sqrt(1.0 - e2 * sl * sl);
        lat = std::atan2(r[2] + n * e2 * sl, p);
    }
    const double sl = std::sin(lat), cl = std::cos(lat);
    // Altitude formula stable at all latitudes (poles included).
    g.altitude_km = p * cl + r[2] * sl - wgs84_a_km * std::sqrt(1.0 - e2 * sl * sl);
    g.latitude_deg = lat / deg2rad;
    return g;
}

}  // namespace qlink::sim
