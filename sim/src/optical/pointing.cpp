// Pointing jitter: two AR(1) axes (Rayleigh radial error with optional bias) through the Gaussian beam profile.
#include "qlink/sim/pointing.hpp"

#include <cmath>

#include "check.hpp"
#include "gauss.hpp"

namespace qlink::sim {

pointing_jitter::pointing_jitter(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
    using detail::check_range;
    check_range("divergence_rad", cfg.divergence_rad, 0.0, 0.1, true, false);
    check_range("jitter_rad", cfg.jitter_rad, 0.0, 0.1);
    check_range("bias_rad", cfg.bias_rad, 0.0, 0.1);
    check_range("sample_rate_hz", cfg.sample_rate_hz, 0.0, 1e12, true, false);
    check_range("correlation_time_s", cfg.correlation_time_s, 0.0, 1e6, true, false);
    ar_ = gauss_markov(cfg.correlation_time_s, cfg.sample_rate_hz);
    const detail::ziggurat_normal normal;
    x_ = normal(rng_);
    y_ = normal(rng_);
}

gain_result pointing_jitter::generate(std::span<float> out) {
    const double a = ar_.coefficient(), b = ar_.innovation_scale();
    const double s = cfg_.jitter_rad, bias = cfg_.bias_rad;
    const double k = -2.0 / (cfg_.divergence_rad * cfg_.divergence_rad);
    const detail::ziggurat_normal normal;
    double x = x_, y = y_;
    for (auto& o : out) {
        x = a * x + b * normal(rng_);
        y = a * y + b * normal(rng_);
        double ex = bias + s * x, ey = s * y;
        o = static_cast<float>(std::exp(k * (ex * ex + ey * ey)));
    }
    x_ = x;
    y_ = y;
    return {out.size(), false};
}

double pointing_jitter::mean_loss() const {
    double t2 = cfg_.divergence_rad * cfg_.divergence_rad;
    double d = t2 + 4.0 * cfg_.jitter_rad * cfg_.jitter_rad;
    return t2 / d * std::exp(-2.0 * cfg_.bias_rad * cfg_.bias_rad / d);
}

}  // namespace qlink::sim
