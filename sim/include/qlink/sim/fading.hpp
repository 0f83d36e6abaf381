// Scintillation fading time series: log-normal or gamma-gamma marginal with a set coherence time, seeded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace qlink::sim {

/// What a streaming channel-gain source reports per call.
struct gain_result {
    std::size_t written = 0;   ///< samples written into the output span
    bool exhausted = false;    ///< a finite source (replay without looping) ran out
};

/// A stream of power gains (normalised intensity, mean 1) at a fixed sample rate.
/// Successive calls continue the same process; nothing is allocated per call.
class gain_source {
public:
    virtual ~gain_source() = default;
    virtual gain_result generate(std::span<float> out) = 0;
    virtual double sample_rate_hz() const = 0;
};

enum class fading_marginal { lognormal, gamma_gamma };

/// Intensity fading I(t), E[I] = 1, Var[I] = scintillation index. The normalised
/// autocovariance of I is 1/e at `coherence_time_s` (close to exponential in shape).
/// Construction: stationary AR(1) Gaussian processes mapped through the marginal's
/// quantile function (Gaussian copula); the Gaussian correlation is calibrated so the
/// correlation of I itself, not of the Gaussians, hits 1/e at the coherence time.
/// Gamma-gamma: I = X Y, X ~ Gamma(alpha, 1/alpha), Y ~ Gamma(beta, 1/beta), independent.
class fading_process : public gain_source {
public:
    struct config {
        fading_marginal marginal = fading_marginal::lognormal;
        double scintillation_index = 0.1;  ///< sigma_I^2 in (0, 20]; lognormal only (gamma-gamma derives it)
        double gg_alpha = 0.0;             ///< gamma-gamma alpha in [0.2, 1000]; 0: alpha = beta from scintillation_index
        double gg_beta = 0.0;              ///< gamma-gamma beta in [0.2, 1000]; 0 together with alpha
        double coherence_time_s = 1e-3;    ///< > 0, at least one sample period
        double sample_rate_hz = 10e3;      ///< > 0
        std::uint64_t seed = 1;
    };

    /// The scintillation index the marginal actually has (derived for gamma-gamma).
    virtual double scintillation_index() const = 0;
};

/// Throws std::invalid_argument naming the field and its allowed range.
std::unique_ptr<fading_process> create_fading_process(const fading_process::config& cfg);

/// Stationary unit-variance Gaussian AR(1) helper, exp(-1/(rate*tau)) correlation per sample.
/// Shared by fading, pointing and shadowing so the three have the same time behaviour.
class gauss_markov {
public:
    gauss_markov() = default;
    gauss_markov(double correlation_time_s, double sample_rate_hz);
    double coefficient() const { return a_; }
    double innovation_scale() const { return b_; }
    double step(double x, double white) const { return a_ * x + b_ * white; }

private:
    double a_ = 0.0;
    double b_ = 1.0;
};

}  // namespace qlink::sim
