// Hufnagel-Valley slant-path turbulence: Cn2 moments, Rytov variances, Andrews-Phillips scintillation, r0, timescales.
#include "qlink/sim/turbulence.hpp"

#include <cmath>
#include <numbers>

#include "check.hpp"

namespace qlink::sim {

namespace {

/// Bufton wind profile with 5 m/s at the ground and a 30 m/s jet at 9.4 km (Andrews & Phillips 2005, ch. 12).
double bufton_wind(double h) {
    double x = (h - 9400.0) / 4800.0;
    return 5.0 + 30.0 * std::exp(-x * x);
}

/// Composite Simpson over [a, b] with n (even) panels.
template <class F>
double simpson(F f, double a, double b, int n) {
    double step = (b - a) / n;
    double s = f(a) + f(b);
    for (int i = 1; i < n; ++i) s += f(a + i * step) * ((i & 1) ? 4.0 : 2.0);
    return s * step / 3.0;
}

/// Integral of g(h) over [h0, top]: fine panels near the ground where the A e^{-h/100}
/// term lives, coarser above. Accurate to better than 1e-6 relative for the moments used here.
template <class F>
double integrate_profile(F g, double h0, double top) {
    double b1 = std::min(top, h0 + 2000.0);
    double total = simpson(g, h0, b1, 4000);
    if (top > b1) total += simpson(g, b1, top, 6000);
    return total;
}

}  // namespace

double hufnagel_valley::cn2(double h) const {
    double w = v_wind_m_s / 27.0;
    double h5 = 1e-5 * h;
    double h5_10 = std::pow(h5, 10.0);
    return 0.00594 * w * w * h5_10 * std::exp(-h / 1000.0) + 2.7e-16 * std::exp(-h / 1500.0) +
           a * std::exp(-h / 100.0);
}

double scintillation_index_plane(double s2) {
    double s125 = std::pow(s2, 1.2);  // sigma_R^{12/5} = (sigma_R^2)^{6/5}
    return std::exp(0.49 * s2 / std::pow(1.0 + 1.11 * s125, 7.0 / 6.0) +
                    0.51 * s2 / std::pow(1.0 + 0.69 * s125, 5.0 / 6.0)) -
           1.0;
}

double scintillation_index_spherical(double b2) {
    double b125 = std::pow(b2, 1.2);
    return std::exp(0.49 * b2 / std::pow(1.0 + 0.56 * b125, 7.0 / 6.0) +
                    0.51 * b2 / std::pow(1.0 + 0.69 * b125, 5.0 / 6.0)) -
           1.0;
}

void gamma_gamma_parameters_plane(double s2, double& alpha, double& beta) {
    double s125 = std::pow(s2, 1.2);
    alpha = 1.0 / (std::exp(0.49 * s2 / std::pow(1.0 + 1.11 * s125, 7.0 / 6.0)) - 1.0);
    beta = 1.0 / (std::exp(0.51 * s2 / std::pow(1.0 + 0.69 * s125, 5.0 / 6.0)) - 1.0);
}

turbulence_model::turbulence_model(const config& cfg) : cfg_(cfg) {
    using detail::check_range;
    check_range("profile.a", cfg.profile.a, 0.0, 1e-10);
    check_range("profile.v_wind_m_s", cfg.profile.v_wind_m_s, 0.0, 200.0);
    check_range("site_altitude_m", cfg.site_altitude_m, 0.0, 8000.0);
    check_range("top_altitude_m", cfg.top_altitude_m, cfg.site_altitude_m, 100e3, true, false);
    check_range("satellite_altitude_m", cfg.satellite_altitude_m, cfg.top_altitude_m, 1e9, true, false);
    check_range("tx_beam_radius_m", cfg.tx_beam_radius_m, 0.0, 10.0, true, false);
}

turbulence_state turbulence_model::evaluate(const query& q) const {
    using detail::check_range;
    check_range("wavelength_m", q.wavelength_m, 200e-9, 20e-6, true, true);
    check_range("elevation_rad", q.elevation_rad, 0.0, std::numbers::pi / 2, true, false);
    check_range("rx_aperture_diameter_m", q.rx_aperture_diameter_m, 0.0, 100.0);
    check_range("slew_rate_rad_s", q.slew_rate_rad_s, 0.0, 1.0);

    const double k = 2.0 * std::numbers::pi / q.wavelength_m;
    const double sec = 1.0 / std::sin(q.elevation_rad);  // sec(zenith angle)
    const double h0 = cfg_.site_altitude_m;
    const double top = cfg_.top_altitude_m;
    const double span_h = cfg_.satellite_altitude_m - h0;
    const auto& p = cfg_.profile;

    const double m0 = integrate_profile([&](double h) { return p.cn2(h); }, h0, top);
    const double m56 =
        integrate_profile([&](double h) { return p.cn2(h) * std::pow(h - h0, 5.0 / 6.0); }, h0, top);
    const double m56s = integrate_profile(
        [&](double h) {
            double z = h - h0;
            return p.cn2(h) * std::pow(z, 5.0 / 6.0) * std::pow(1.0 - z / span_h, 5.0 / 6.0);
        },
        h0, top);
    const double m2 = integrate_profile([&](double h) { return p.cn2(h) * (h - h0) * (h - h0); }, h0, top);
    // Transverse speed of the line of sight through each layer: wind plus the slew sweeping
    // the path at distance (h - h0) sec(zeta); added as if aligned (conservative).
    auto speed = [&](double h) { return bufton_wind(h) + q.slew_rate_rad_s * (h - h0) * sec; };
    const double mv =
        integrate_profile([&](double h) { return p.cn2(h) * std::pow(speed(h), 5.0 / 3.0); }, h0, top);

    turbulence_state s;
    const double k76 = std::pow(k, 7.0 / 6.0);
    const double sec116 = std::pow(sec, 11.0 / 6.0);
    s.r0_m = std::pow(0.423 * k * k * sec * m0, -3.0 / 5.0);
    s.rytov_plane = 2.25 * k76 * sec116 * m56;
    s.rytov_spherical = 2.25 * k76 * sec116 * m56s;
    gamma_gamma_parameters_plane(s.rytov_plane, s.gg_alpha, s.gg_beta);
    s.scintillation_height_m = m56 > 0.0 ? std::pow(m2 / m56, 6.0 / 7.0) : 0.0;
    s.phase_coherence_time_s = mv > 0.0 ? std::pow(2.91 * k * k * sec * mv, -3.0 / 5.0) : INFINITY;
    const double l_s = s.scintillation_height_m * sec;
    const double v_s = speed(h0 + s.scintillation_height_m);
    s.intensity_coherence_time_s = std::sqrt(q.wavelength_m * l_s) / v_s;

    if (q.direction == link_direction::downlink) {
        s.scintillation_point = scintillation_index_plane(s.rytov_plane);
        // Fried (1967) / Andrews & Phillips 2005 sec. 12.4: A = [1 + 1.1 (D^2 / (lambda h_s sec zeta))^{7/6}]^-1.
        const double d = q.rx_aperture_diameter_m;
        s.aperture_averaging =
            l_s > 0.0 ? 1.0 / (1.0 + 1.1 * std::pow(d * d / (q.wavelength_m * l_s), 7.0 / 6.0)) : 1.0;
    } else {
        // Uplink: a point source seen from orbit; the satellite aperture is far smaller than the
        // correlation width of the scintillation pattern up there, so no aperture averaging.
        s.scintillation_point = scintillation_index_spherical(s.rytov_spherical);
        s.aperture_averaging = 1.0;
        // Beam wander <r_c^2> = 0.54 L^2 (lambda / 2W0)^2 (2W0 / r0)^{5/3} (Andrews & Phillips 2005,
        // ch. 12), per axis half of it, as an angle seen from the ground.
        const double w0 = cfg_.tx_beam_radius_m;
        const double ratio = 2.0 * w0 / s.r0_m;
        s.beam_wander_rad = std::sqrt(0.27) * (q.wavelength_m / (2.0 * w0)) * std::pow(ratio, 5.0 / 6.0);
        // Short-term spread (Yura 1973): W_ST^2 = W^2 [1 + (2W0/r0)^{5/3} (1 - 0.62 (r0/2W0)^{1/3})^{6/5}].
        const double corr = 1.0 - 0.62 * std::pow(1.0 / ratio, 1.0 / 3.0);
        s.beam_spread_factor = 1.0 + std::pow(ratio, 5.0 / 3.0) * (corr > 0.0 ? std::pow(corr, 1.2) : 0.0);
    }
    s.scintillation = s.aperture_averaging * s.scintillation_point;
    return s;
}

}  // namespace qlink::sim
