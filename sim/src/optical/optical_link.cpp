// Optical link budget: Gaussian-beam gains, free-space loss, Kasten-Young air mass, pointing and uplink spreading.
#include "qlink/sim/optical_link.hpp"

#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>

#include "check.hpp"

namespace qlink::sim {

namespace {
constexpr double planck_h = 6.62607015e-34;
constexpr double light_c = 299792458.0;
double to_db(double x) { return 10.0 * std::log10(x); }
}  // namespace

double air_mass_kasten_young(double elevation_rad) {
    detail::check_range("elevation_rad", elevation_rad, 0.0, std::numbers::pi / 2, false, false);
    // Kasten & Young (1989), written with the elevation h in degrees (zenith angle 90 - h):
    // AM = 1 / (sin h + 0.50572 (h + 6.07995)^-1.6364); finite (~38) at the horizon.
    double h_deg = elevation_rad * 180.0 / std::numbers::pi;
    return 1.0 / (std::sin(elevation_rad) + 0.50572 * std::pow(h_deg + 6.07995, -1.6364));
}

double atmospheric_transmittance(double zenith_transmittance, double elevation_rad) {
    detail::check_range("zenith_transmittance", zenith_transmittance, 0.0, 1.0, true, false);
    return std::pow(zenith_transmittance, air_mass_kasten_young(elevation_rad));
}

double mean_jitter_loss(double divergence_rad, double jitter_rad) {
    double t2 = divergence_rad * divergence_rad;
    return t2 / (t2 + 4.0 * jitter_rad * jitter_rad);
}

optical_link::optical_link(const config& cfg) : cfg_(cfg) {
    using detail::check_range;
    check_range("wavelength_m", cfg.wavelength_m, 200e-9, 20e-6, true, true);
    check_range("tx_power_w", cfg.tx_power_w, 0.0, 1e6, true, false);
    check_range("tx_divergence_rad", cfg.tx_divergence_rad, 0.0, 0.1, true, false);
    check_range("tx_optics_efficiency", cfg.tx_optics_efficiency, 0.0, 1.0, true, false);
    check_range("rx_aperture_diameter_m", cfg.rx_aperture_diameter_m, 0.0, 100.0, true, false);
    check_range("rx_obscuration_ratio", cfg.rx_obscuration_ratio, 0.0, 1.0, false, true);
    check_range("rx_optics_efficiency", cfg.rx_optics_efficiency, 0.0, 1.0, true, false);
    check_range("zenith_transmittance", cfg.zenith_transmittance, 0.0, 1.0, true, false);
    check_range("pointing_bias_rad", cfg.pointing_bias_rad, 0.0, 0.1);
    check_range("pointing_jitter_rad", cfg.pointing_jitter_rad, 0.0, 0.1);
    check_range("turbulence_beam_wander_rad", cfg.turbulence_beam_wander_rad, 0.0, 0.1);
    check_range("turbulence_spread_factor", cfg.turbulence_spread_factor, 1.0, 1e6);
}

link_budget optical_link::budget(const link_geometry& geo) const {
    using detail::check_range;
    check_range("elevation_rad", geo.elevation_rad, 0.0, std::numbers::pi / 2, true, false);
    check_range("slant_range_m", geo.slant_range_m, 0.0, 1e9, true, false);
    check_range("site_altitude_m", geo.site_altitude_m, 0.0, 8000.0);

    const double lambda = cfg_.wavelength_m;
    const double theta = cfg_.tx_divergence_rad;
    const double d = cfg_.rx_aperture_diameter_m;
    const double l = geo.slant_range_m;
    link_budget b;
    b.tx_power_dbm = to_db(cfg_.tx_power_w * 1e3);
    b.tx_optics_db = to_db(cfg_.tx_optics_efficiency);
    // On-axis far-field intensity of a Gaussian beam 2P/(pi theta^2 L^2) over the isotropic P/(4 pi L^2).
    b.tx_gain_db = to_db(8.0 / (theta * theta));
    b.free_space_db = 2.0 * to_db(lambda / (4.0 * std::numbers::pi * l));
    b.rx_gain_db = to_db(std::pow(std::numbers::pi * d / lambda, 2) *
                         (1.0 - cfg_.rx_obscuration_ratio * cfg_.rx_obscuration_ratio));
    b.atmosphere_db = to_db(atmospheric_transmittance(cfg_.zenith_transmittance, geo.elevation_rad));
    // Static offset on the Gaussian profile, then the mean over a zero-mean 2-D Gaussian jitter whose
    // per-axis variance is the tracking jitter plus (uplink) turbulent beam wander.
    const double jitter2 = cfg_.pointing_jitter_rad * cfg_.pointing_jitter_rad +
                           (cfg_.direction == link_direction::uplink
                                ? cfg_.turbulence_beam_wander_rad * cfg_.turbulence_beam_wander_rad
                                : 0.0);
    const double t2 = theta * theta;
    const double s = t2 + 4.0 * jitter2;
    const double pointing = (t2 / s) * std::exp(-2.0 * cfg_.pointing_bias_rad * cfg_.pointing_bias_rad / s);
    b.pointing_db = to_db(pointing);
    b.turbulence_db = cfg_.direction == link_direction::uplink ? -to_db(cfg_.turbulence_spread_factor) : 0.0;
    b.rx_optics_db = to_db(cfg_.rx_optics_efficiency);
    b.rx_power_dbm = b.tx_power_dbm + b.tx_optics_db + b.tx_gain_db + b.free_space_db + b.rx_gain_db +
                     b.atmosphere_db + b.pointing_db + b.turbulence_db + b.rx_optics_db;
    b.rx_power_w = std::pow(10.0, b.rx_power_dbm / 10.0) * 1e-3;
    b.rx_photons_per_s = b.rx_power_w * lambda / (planck_h * light_c);
    return b;
}

std::string link_budget::to_string() const {
    char buf[1024];
    std::snprintf(buf, sizeof buf,
                  "%-28s %10.2f dBm\n%-28s %10.2f dB\n%-28s %10.2f dB\n%-28s %10.2f dB\n%-28s %10.2f dB\n"
                  "%-28s %10.2f dB\n%-28s %10.2f dB\n%-28s %10.2f dB\n%-28s %10.2f dB\n%-28s %10.2f dBm\n"
                  "%-28s %10.3e W\n%-28s %10.3e /s\n",
                  "transmit power", tx_power_dbm, "transmit optics", tx_optics_db, "transmit gain", tx_gain_db,
                  "free-space loss", free_space_db, "receive gain", rx_gain_db, "atmosphere (clear sky)",
                  atmosphere_db, "pointing", pointing_db, "turbulence beam spreading", turbulence_db,
                  "receive optics", rx_optics_db, "received power", rx_power_dbm, "received power", rx_power_w,
                  "received photons", rx_photons_per_s);
    return buf;
}

}  // namespace qlink::sim
