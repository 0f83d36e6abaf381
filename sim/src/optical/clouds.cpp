// Clear/cloudy two-state Markov process with exponential sojourns, sampled at a fixed rate.
#include "qlink/sim/clouds.hpp"

#include <cmath>

#include "check.hpp"

namespace qlink::sim {

cloud_process::cloud_process(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
    using detail::check_range;
    check_range("mean_clear_s", cfg.mean_clear_s, 0.0, 1e9, true, false);
    check_range("mean_cloudy_s", cfg.mean_cloudy_s, 0.0, 1e9, true, false);
    check_range("cloudy_transmittance", cfg.cloudy_transmittance, 0.0, 1.0);
    check_range("sample_rate_hz", cfg.sample_rate_hz, 0.0, 1e12, true, false);
    // Start in the stationary law; by memorylessness the residual sojourn is again exponential.
    cloudy_ = rng_.uniform() < cloudy_fraction();
    remaining_s_ = draw_sojourn();
}

double cloud_process::draw_sojourn() {
    double mean = cloudy_ ? cfg_.mean_cloudy_s : cfg_.mean_clear_s;
    return -mean * std::log(rng_.uniform());
}

gain_result cloud_process::generate(std::span<float> out) {
    const double dt = 1.0 / cfg_.sample_rate_hz;
    const float cloudy_t = static_cast<float>(cfg_.cloudy_transmittance);
    for (auto& o : out) {
        o = cloudy_ ? cloudy_t : 1.0f;
        remaining_s_ -= dt;
        while (remaining_s_ <= 0.0) {
            cloudy_ = !cloudy_;
            remaining_s_ += draw_sojourn();
        }
    }
    return {out.size(), false};
}

}  // namespace qlink::sim
