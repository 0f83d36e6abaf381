// Atmospheric turbulence along a slant path: Hufnagel-Valley Cn2, Rytov variance, scintillation, r0, coherence times.
#pragma once

#include "qlink/sim/optical_link.hpp"

namespace qlink::sim {

/// Hufnagel-Valley profile (Andrews & Phillips 2005, ch. 12):
///   Cn2(h) = 0.00594 (v/27)^2 (1e-5 h)^10 e^{-h/1000} + 2.7e-16 e^{-h/1500} + A e^{-h/100}
/// HV5/7 is A = 1.7e-14 m^-2/3, v = 21 m/s (r0 ~ 5 cm, isoplanatic angle ~ 7 urad at 500 nm).
struct hufnagel_valley {
    double a = 1.7e-14;         ///< ground-level Cn2 [m^-2/3], >= 0
    double v_wind_m_s = 21.0;   ///< rms high-altitude wind speed [m/s], >= 0
    double cn2(double altitude_m) const;
};

/// Results for one geometry and wavelength.
struct turbulence_state {
    double r0_m = 0.0;                  ///< Fried parameter along the slant path (plane wave)
    double rytov_plane = 0.0;           ///< sigma_R^2, plane wave (downlink into a ground point receiver)
    double rytov_spherical = 0.0;       ///< beta_0^2, spherical wave (point source)
    double scintillation_point = 0.0;   ///< sigma_I^2 into a point receiver, all regimes
    double aperture_averaging = 1.0;    ///< A = sigma_I^2(D) / sigma_I^2(0), in (0, 1]
    double scintillation = 0.0;         ///< sigma_I^2 seen by the aperture (= A * point for the downlink)
    double gg_alpha = 0.0;              ///< gamma-gamma large-scale parameter (point receiver)
    double gg_beta = 0.0;               ///< gamma-gamma small-scale parameter (point receiver)
    double scintillation_height_m = 0.0; ///< effective turbulence height (Cn2 h^2 / Cn2 h^5/6 weighting)
    double phase_coherence_time_s = 0.0; ///< Greenwood-type tau_0 = 0.314 r0 / v_eff (wind + slew)
    double intensity_coherence_time_s = 0.0; ///< Fresnel zone / transverse speed at the scintillation height
    double beam_wander_rad = 0.0;       ///< uplink beam wander rms per axis (0 for the downlink)
    double beam_spread_factor = 1.0;    ///< uplink long-term spot area / diffraction spot area
};

class turbulence_model {
public:
    struct config {
        hufnagel_valley profile{};
        double site_altitude_m = 0.0;      ///< [0, 8000]
        double top_altitude_m = 30000.0;   ///< upper end of the Cn2 integrals, (site, 100 km]
        double satellite_altitude_m = 500e3; ///< for the spherical-wave weighting, > top
        double tx_beam_radius_m = 0.05;    ///< uplink transmit beam 1/e^2 radius W0, > 0
    };

    struct query {
        double wavelength_m = 1550e-9;      ///< (200 nm, 20 um)
        double elevation_rad = 1.5707963267948966; ///< (0, pi/2], above ~ 5 deg the sec(zeta) model holds
        link_direction direction = link_direction::downlink;
        double rx_aperture_diameter_m = 0.0; ///< 0: point receiver; >= 0
        double slew_rate_rad_s = 0.0;       ///< line-of-sight angular rate (LEO ~ 0.001..0.02), >= 0
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit turbulence_model(const config& cfg);

    turbulence_state evaluate(const query& q) const;

    const config& get_config() const { return cfg_; }

private:
    config cfg_;
};

/// Andrews & Phillips weak-to-strong scintillation index, zero inner scale.
double scintillation_index_plane(double rytov_plane);
double scintillation_index_spherical(double rytov_spherical);

/// Gamma-gamma alpha/beta from the plane-wave Rytov variance (Andrews & Phillips 2005, ch. 11)
/// so that 1/alpha + 1/beta + 1/(alpha beta) equals scintillation_index_plane().
void gamma_gamma_parameters_plane(double rytov_plane, double& alpha, double& beta);

}  // namespace qlink::sim
