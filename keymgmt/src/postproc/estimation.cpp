// Parameter estimation: Lo-Ma-Chen decoy bounds and the Lim et al. (2014) finite-key length.
#include "qlink/keymgmt/estimation.hpp"

#include <algorithm>
#include <cmath>

namespace qlink::keymgmt {

double binary_entropy(double p) {
    if (!(p > 0.0) || !(p < 1.0)) return 0.0;
    return -p * std::log2(p) - (1.0 - p) * std::log2(1.0 - p);
}

bool decoy_settings_valid(const decoy_settings& s) {
    for (std::size_t k = 0; k < intensity_count; ++k) {
        if (!(s.prob[k] > 0.0 && s.prob[k] <= 1.0) || !(s.mu[k] >= 0.0) || !std::isfinite(s.mu[k])) return false;
    }
    return s.mu[0] > s.mu[1] + s.mu[2] && s.mu[1] > s.mu[2];
}

lmc_bounds lmc_decoy_bounds(const decoy_settings& s, const std::array<double, intensity_count>& gain,
                            const std::array<double, intensity_count>& error_rate) {
    lmc_bounds b;
    const double mu = s.mu[0], nu = s.mu[1];
    b.y0 = std::max(0.0, gain[2]);
    const double denom = mu * nu - nu * nu;
    if (!(denom > 0.0)) return b;
    b.y1_lower = mu / denom *
                 (gain[1] * std::exp(nu) - gain[0] * std::exp(mu) * nu * nu / (mu * mu) -
                  (mu * mu - nu * nu) / (mu * mu) * b.y0);
    if (!(b.y1_lower > 0.0)) {
        b.y1_lower = 0.0;
        return b;
    }
    b.e1_upper = std::clamp((error_rate[1] * gain[1] * std::exp(nu) - 0.5 * b.y0) / (b.y1_lower * nu), 0.0, 0.5);
    b.q1_lower = b.y1_lower * mu * std::exp(-mu);
    b.valid = true;
    return b;
}

namespace {

// Lim et al. eq. (4) with the photon-number probabilities tau_n of eq. (2).
double tau(const decoy_settings& s, int n) {
    double t = 0.0;
    for (std::size_t k = 0; k < intensity_count; ++k) {
        t += s.prob[k] * std::exp(-s.mu[k]) * std::pow(s.mu[k], n) / std::tgamma(n + 1.0);
    }
    return t;
}

struct hoeffding {
    std::array<double, intensity_count> plus{}, minus{};
};

// n^{+-}_k = e^{mu_k} / p_k (n_k +- sqrt(n / 2 ln(21 / eps_sec))), n = total over k.
hoeffding bounds(const decoy_settings& s, const std::array<std::uint64_t, intensity_count>& c, double eps_sec) {
    double total = 0.0;
    for (auto v : c) total += static_cast<double>(v);
    const double delta = std::sqrt(total / 2.0 * std::log(21.0 / eps_sec));
    hoeffding h;
    for (std::size_t k = 0; k < intensity_count; ++k) {
        const double f = std::exp(s.mu[k]) / s.prob[k];
        h.plus[k] = f * (static_cast<double>(c[k]) + delta);
        h.minus[k] = f * (static_cast<double>(c[k]) - delta);
    }
    return h;
}

// Vacuum and single-photon lower bounds, Lim et al. eqs. (2) and (3).
void s0_s1(const decoy_settings& s, const hoeffding& h, double& s0, double& s1) {
    const double mu1 = s.mu[0], mu2 = s.mu[1], mu3 = s.mu[2];
    const double t0 = tau(s, 0), t1 = tau(s, 1);
    s0 = std::max(0.0, t0 * (mu2 * h.minus[2] - mu3 * h.plus[1]) / (mu2 - mu3));
    const double bracket =
        h.minus[1] - h.plus[2] - (mu2 * mu2 - mu3 * mu3) / (mu1 * mu1) * (h.plus[0] - s0 / t0);
    s1 = std::max(0.0, t1 * mu1 * bracket / (mu1 * (mu2 - mu3) - mu2 * mu2 + mu3 * mu3));
}

}  // namespace

finite_key_result lim2014_key_length(const decoy_settings& s, const finite_key_counts& c, double lambda_ec_bits,
                                     const finite_key_params& eps) {
    finite_key_result r;
    if (!decoy_settings_valid(s) || !(eps.eps_sec > 0.0 && eps.eps_sec < 1.0) ||
        !(eps.eps_cor > 0.0 && eps.eps_cor < 1.0)) {
        return r;
    }
    s0_s1(s, bounds(s, c.n_z, eps.eps_sec), r.s_z0, r.s_z1);
    s0_s1(s, bounds(s, c.n_x, eps.eps_sec), r.s_x0, r.s_x1);
    const hoeffding m = bounds(s, c.m_x, eps.eps_sec);
    const double mu2 = s.mu[1], mu3 = s.mu[2];
    r.v_x1 = std::max(0.0, tau(s, 1) * (m.plus[1] - m.minus[2]) / (mu2 - mu3));
    if (!(r.s_z1 > 0.0) || !(r.s_x1 > 0.0)) return r;
    // phi_z <= v/s + gamma(eps_sec, v/s, s_z1, s_x1), eq. (5); the ratio is kept away from 0 so
    // the (1-b) b log(1 / ((1-b) b)) term stays finite (it tends to 0 there).
    const double b = std::clamp(r.v_x1 / r.s_x1, 1e-9, 0.5);
    const double cz = r.s_z1, dx = r.s_x1;
    const double gamma = std::sqrt((cz + dx) * (1.0 - b) * b / (cz * dx * std::log(2.0)) *
                                   std::log2((cz + dx) / (cz * dx * (1.0 - b) * b) * 21.0 * 21.0 /
                                             (eps.eps_sec * eps.eps_sec)));
    r.phi_z = std::min(0.5, r.v_x1 / r.s_x1 + gamma);
    r.length_real = r.s_z0 + r.s_z1 - r.s_z1 * binary_entropy(r.phi_z) - lambda_ec_bits -
                    6.0 * std::log2(21.0 / eps.eps_sec) - std::log2(2.0 / eps.eps_cor);
    r.valid = std::isfinite(r.length_real);
    r.length = r.valid ? static_cast<std::int64_t>(std::floor(std::max(r.length_real, -1e18))) : 0;
    return r;
}

}  // namespace qlink::keymgmt
