// Optical link budget of a satellite laser link (downlink/uplink): path loss, Gaussian-beam gains, atmosphere, pointing.
#pragma once

#include <string>

namespace qlink::sim {

enum class link_direction { downlink, uplink };

/// Geometry at one instant, as plain inputs (the orbit code computes them).
struct link_geometry {
    double elevation_rad = 0.0;      ///< elevation of the satellite seen from the station, (0, pi/2]
    double slant_range_m = 0.0;      ///< station-satellite distance, > 0
    double site_altitude_m = 0.0;    ///< station height above sea level, [0, 8000]
};

/// Atmospheric transmittance at elevation `elevation_rad` from the zenith one,
/// scaled by the Kasten-Young (1989) relative air mass: T = T_zenith^AM.
double air_mass_kasten_young(double elevation_rad);
double atmospheric_transmittance(double zenith_transmittance, double elevation_rad);

/// A link budget, every term in dB (gains positive, losses negative) so that
/// rx_power_dbm = tx_power_dbm + sum of the terms.
struct link_budget {
    double tx_power_dbm = 0.0;
    double tx_optics_db = 0.0;        ///< transmitter optics efficiency
    double tx_gain_db = 0.0;          ///< Gaussian beam gain 8/theta^2 (theta: 1/e^2 half-angle divergence)
    double free_space_db = 0.0;       ///< (lambda / 4 pi L)^2
    double rx_gain_db = 0.0;          ///< (pi D / lambda)^2, reduced by the central obscuration
    double atmosphere_db = 0.0;       ///< clear-sky transmittance at this elevation
    double pointing_db = 0.0;         ///< static mispointing + mean jitter loss (incl. uplink beam wander)
    double turbulence_db = 0.0;       ///< uplink long-term beam spreading (0 for the downlink)
    double rx_optics_db = 0.0;        ///< receiver optics and coupling efficiency
    double rx_power_dbm = 0.0;        ///< mean received power
    double rx_power_w = 0.0;
    double rx_photons_per_s = 0.0;    ///< rx power / (h c / lambda)

    /// A printable table, one term per line with its value in dB.
    std::string to_string() const;
};

class optical_link {
public:
    struct config {
        link_direction direction = link_direction::downlink;
        double wavelength_m = 1550e-9;          ///< (200 nm, 20 um)
        double tx_power_w = 1.0;                ///< > 0
        double tx_divergence_rad = 10e-6;       ///< 1/e^2 intensity half-angle, > 0
        double tx_optics_efficiency = 0.8;      ///< (0, 1]
        double rx_aperture_diameter_m = 0.6;    ///< > 0
        double rx_obscuration_ratio = 0.0;      ///< central obstruction diameter / aperture, [0, 1)
        double rx_optics_efficiency = 0.5;      ///< (0, 1]
        double zenith_transmittance = 0.9;      ///< clear-sky zenith transmittance at this wavelength, (0, 1]
        double pointing_bias_rad = 0.0;         ///< static mispointing, >= 0
        double pointing_jitter_rad = 0.0;       ///< rms jitter per axis, >= 0
        double turbulence_beam_wander_rad = 0.0; ///< uplink beam wander rms per axis (from turbulence_model), >= 0
        double turbulence_spread_factor = 1.0;  ///< uplink long-term/short-term beam area ratio, >= 1
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit optical_link(const config& cfg);

    /// The mean link budget at this geometry; throws std::invalid_argument for
    /// out-of-range geometry (configuration edge: the pass is geometry, not data).
    link_budget budget(const link_geometry& geo) const;

    const config& get_config() const { return cfg_; }

private:
    config cfg_;
};

/// Mean of the jitter loss exp(-2 theta_e^2 / theta_d^2) for a Rayleigh radial
/// error with per-axis rms sigma: theta_d^2 / (theta_d^2 + 4 sigma^2).
double mean_jitter_loss(double divergence_rad, double jitter_rad);

}  // namespace qlink::sim
