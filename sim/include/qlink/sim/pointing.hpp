// Pointing jitter: correlated Rayleigh radial error -> Gaussian-beam loss (beta-distributed when unbiased).
#pragma once

#include <cstdint>
#include <span>

#include "qlink/sim/channel_rng.hpp"
#include "qlink/sim/fading.hpp"

namespace qlink::sim {

/// Loss h = exp(-2 theta_e^2 / theta_d^2), theta_e the radial mispointing. With zero
/// bias theta_e is Rayleigh(sigma) and h ~ Beta(gamma, 1), gamma = theta_d^2 / (4 sigma^2),
/// mean theta_d^2 / (theta_d^2 + 4 sigma^2). Each axis is an AR(1) process with the given
/// correlation time (tracking loop bandwidth). Output is NOT normalised to mean 1: it is the loss.
class pointing_jitter : public gain_source {
public:
    struct config {
        double divergence_rad = 10e-6;      ///< 1/e^2 half-angle beam divergence, > 0
        double jitter_rad = 1e-6;           ///< rms per axis, >= 0
        double bias_rad = 0.0;              ///< static boresight error, >= 0
        double correlation_time_s = 5e-3;   ///< > 0
        double sample_rate_hz = 10e3;       ///< > 0
        std::uint64_t seed = 2;
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit pointing_jitter(const config& cfg);

    gain_result generate(std::span<float> out) override;
    double sample_rate_hz() const override { return cfg_.sample_rate_hz; }

    /// Analytic mean loss (with bias: E exp(-2|b + e|^2/theta_d^2) for a 2-D Gaussian e).
    double mean_loss() const;

private:
    config cfg_;
    gauss_markov ar_;
    double x_ = 0.0;
    double y_ = 0.0;
    channel_rng rng_;
};

}  // namespace qlink::sim
