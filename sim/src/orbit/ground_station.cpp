// Station geometry: validation, ENU look angles, range rate and acceleration, point-ahead.
#include "qlink/sim/ground_station.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <stdexcept>

namespace qlink::sim {

namespace {
constexpr double deg2rad = std::numbers::pi / 180.0;

vec3 cross(const vec3& a, const vec3& b) {
    return {a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]};
}
}  // namespace

std::string ground_station::validate(const config& c) {
    auto bad = [](const char* field, double v, const char* range) {
        return std::string("station ") + field + " " + std::to_string(v) + " outside the allowed range " + range;
    };
    if (!(c.latitude_deg >= -90.0 && c.latitude_deg <= 90.0)) return bad("latitude (deg)", c.latitude_deg, "[-90, 90]");
    if (!(c.longitude_deg >= -180.0 && c.longitude_deg < 360.0))
        return bad("longitude (deg)", c.longitude_deg, "[-180, 360)");
    if (!(c.altitude_m >= -500.0 && c.altitude_m <= 9000.0)) return bad("altitude (m)", c.altitude_m, "[-500, 9000]");
    return {};
}

ground_station::ground_station(const config& cfg) : cfg_(cfg) {
    if (auto e = validate(cfg); !e.empty()) throw std::invalid_argument(e);
    ecef_ = geodetic_to_ecef({cfg.latitude_deg, cfg.longitude_deg, cfg.altitude_m / 1000.0});
    const double lat = cfg.latitude_deg * deg2rad, lon = cfg.longitude_deg * deg2rad;
    east_ = {-std::sin(lon), std::cos(lon), 0.0};
    north_ = {-std::sin(lat) * std::cos(lon), -std::sin(lat) * std::sin(lon), std::cos(lat)};
    up_ = {std::cos(lat) * std::cos(lon), std::cos(lat) * std::sin(lon), std::sin(lat)};
}

look_angles ground_station::look(const vec3& sat, const vec3& vel) const {
    const vec3 rho = sub(sat, ecef_);
    look_angles la;
    la.range_km = norm(rho);
    const double e = dot(rho, east_), n = dot(rho, north_), u = dot(rho, up_);
    la.elevation_deg = std::asin(std::clamp(u / la.range_km, -1.0, 1.0)) / deg2rad;
    double az = std::atan2(e, n) / deg2rad;
    if (az < 0.0) az += 360.0;
    la.azimuth_deg = az;
    la.range_rate_km_s = dot(rho, vel) / la.range_km;
    return la;
}

pass_sample ground_station::observe(const sgp4_propagator& sat, time_point t) const {
    pass_sample s;
    s.t = t;
    const auto st = sat.propagate(t);
    s.error = st.error;
    if (!st.ok()) return s;
    const vec3 r = teme_to_ecef(st.r_km, t);
    const vec3 v = teme_to_ecef_velocity(st.r_km, st.v_km_s, t);
    s.look = look(r, v);
    s.subpoint = ecef_to_geodetic(r);

    // Range acceleration in the rotating frame, analytically: d/dt (rho.v / |rho|) with
    // the satellite's Earth-fixed acceleration taken from a +-0.5 s central difference
    // of its velocity (gravity changes slowly, so this is accurate to ~1e-9 km/s^2).
    const auto h = std::chrono::milliseconds{500};
    const auto a = sat.propagate(t - h), b = sat.propagate(t + h);
    if (a.ok() && b.ok()) {
        const vec3 va = teme_to_ecef_velocity(a.r_km, a.v_km_s, t - h);
        const vec3 vb = teme_to_ecef_velocity(b.r_km, b.v_km_s, t + h);
        const vec3 acc = {vb[0] - va[0], vb[1] - va[1], vb[2] - va[2]};  // per 1 s
        const vec3 rho = sub(r, ecef_);
        const double range = s.look.range_km;
        s.range_accel_km_s2 =
            (dot(v, v) + dot(rho, acc)) / range - s.look.range_rate_km_s * s.look.range_rate_km_s / range;
    }

    // Point-ahead uses the inertial relative velocity across the line of sight.
    const vec3 st_teme = ecef_to_teme(ecef_, t);
    const vec3 omega = {0.0, 0.0, earth_rotation_rad_s};
    const vec3 st_vel = cross(omega, st_teme);
    const vec3 rho_i = sub(st.r_km, st_teme);
    const vec3 vrel = sub(st.v_km_s, st_vel);
    const double rn = norm(rho_i);
    const vec3 u = {rho_i[0] / rn, rho_i[1] / rn, rho_i[2] / rn};
    const double along = dot(vrel, u);
    const vec3 vperp = {vrel[0] - along * u[0], vrel[1] - along * u[1], vrel[2] - along * u[2]};
    s.point_ahead_rad = 2.0 * norm(vperp) * 1e3 / speed_of_light_m_s;
    return s;
}

std::optional<ground_station::config> parse_station(std::string_view text, std::string& error) {
    const char* names[3] = {"latitude (deg)", "longitude (deg)", "altitude (m)"};
    double v[3] = {};
    std::size_t pos = 0;
    for (int i = 0; i < 3; ++i) {
        const auto comma = text.find(',', pos);
        if ((i < 2) != (comma != std::string_view::npos)) {
            error = "station '" + std::string(text) + "': expected LAT,LON,ALT (degrees, degrees, metres)";
            return std::nullopt;
        }
        std::string_view f = text.substr(pos, i < 2 ? comma - pos : std::string_view::npos);
        while (!f.empty() && f.front() == ' ') f.remove_prefix(1);
        while (!f.empty() && f.back() == ' ') f.remove_suffix(1);
        if (!f.empty() && f.front() == '+') f.remove_prefix(1);
        auto [p, ec] = std::from_chars(f.data(), f.data() + f.size(), v[i]);
        if (f.empty() || ec != std::errc{} || p != f.data() + f.size() || !std::isfinite(v[i])) {
            error = "station " + std::string(names[i]) + ": '" + std::string(f) + "' is not a number";
            return std::nullopt;
        }
        pos = comma + 1;
    }
    ground_station::config c;
    c.latitude_deg = v[0];
    c.longitude_deg = v[1];
    c.altitude_m = v[2];
    error = ground_station::validate(c);
    if (!error.empty()) return std::nullopt;
    return c;
}

}  // namespace qlink::sim
