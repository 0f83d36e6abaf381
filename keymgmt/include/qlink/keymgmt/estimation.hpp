// Parameter estimation: binary entropy, Lo-Ma-Chen decoy bounds, Lim et al. (2014) finite-key length.
#pragma once

#include <array>
#include <cstdint>

#include "qlink/keymgmt/qkd_events.hpp"

namespace qlink::keymgmt {

/// h(p) = -p log2 p - (1-p) log2 (1-p); 0 outside (0, 1), 1 at 1/2.
double binary_entropy(double p);

/// Source settings both ends agree on: mean photon number and choice probability per intensity
/// class, indexed by intensity_class. Lim et al. need mu[0] > mu[1] + mu[2] and mu[1] > mu[2] >= 0.
struct decoy_settings {
    std::array<double, intensity_count> mu{0.5, 0.2, 0.0};
    std::array<double, intensity_count> prob{0.4, 0.4, 0.2};
};

/// True when the settings satisfy the conditions of the bounds (and probabilities are in (0, 1]).
bool decoy_settings_valid(const decoy_settings& s);

/// Asymptotic vacuum + weak decoy bounds (Lo, Ma & Chen, PRL 94, 230504, 2005), signal = mu,
/// decoy = nu, vacuum class gives Y0. Gains Q and error rates E are per intensity class.
struct lmc_bounds {
    double y0 = 0;        ///< Vacuum yield.
    double y1_lower = 0;  ///< Single-photon yield lower bound.
    double e1_upper = 1;  ///< Single-photon error rate upper bound (clamped to [0, 0.5]).
    double q1_lower = 0;  ///< Single-photon gain of the signal: Y1 * mu * exp(-mu).
    bool valid = false;   ///< False when the data give no positive Y1 bound.
};
lmc_bounds lmc_decoy_bounds(const decoy_settings& s, const std::array<double, intensity_count>& gain,
                            const std::array<double, intensity_count>& error_rate);

/// Observed counts for the finite-key bound: Z = key bits (after the QBER sample is removed),
/// X = test bits, m_x = X-basis errors, all per intensity class.
struct finite_key_counts {
    std::array<std::uint64_t, intensity_count> n_z{};
    std::array<std::uint64_t, intensity_count> n_x{};
    std::array<std::uint64_t, intensity_count> m_x{};
};

struct finite_key_params {
    double eps_sec = 1e-10;  ///< Secrecy parameter.
    double eps_cor = 1e-15;  ///< Correctness parameter (error verification hash collision).
};

/// Every intermediate of Lim et al., PRA 89, 022307 (2014), eqs. (2)-(5):
///   l = floor(s_z0 + s_z1 - s_z1 h(phi_z) - lambda_ec - 6 log2(21/eps_sec) - log2(2/eps_cor)).
struct finite_key_result {
    double s_z0 = 0, s_z1 = 0;  ///< Lower bounds on vacuum and single-photon Z events.
    double s_x0 = 0, s_x1 = 0;  ///< Same in X.
    double v_x1 = 0;            ///< Upper bound on single-photon X errors.
    double phi_z = 0.5;         ///< Upper bound on the single-photon phase-error rate in Z.
    double length_real = 0;     ///< The bracket before floor.
    std::int64_t length = 0;    ///< Secret key length in bits (<= 0 means no key).
    bool valid = false;         ///< False when the bounds are meaningless (no single-photon events).
};

finite_key_result lim2014_key_length(const decoy_settings& s, const finite_key_counts& c,
                                     double lambda_ec_bits, const finite_key_params& eps);

}  // namespace qlink::keymgmt
