// Cloud blockage per site: a clear/cloudy two-state Markov process with settable mean durations.
#pragma once

#include <cstdint>
#include <span>

#include "qlink/sim/channel_rng.hpp"
#include "qlink/sim/fading.hpp"

namespace qlink::sim {

/// Continuous-time two-state Markov chain sampled at a fixed rate: clear and cloudy sojourns
/// are exponential with the given means; the long-run cloudy fraction is
/// mean_cloudy / (mean_clear + mean_cloudy). The first state is drawn from that stationary law.
/// Output: transmittance 1 when clear, cloudy_transmittance when cloudy.
class cloud_process : public gain_source {
public:
    struct config {
        double mean_clear_s = 600.0;        ///< > 0
        double mean_cloudy_s = 300.0;       ///< > 0
        double cloudy_transmittance = 0.0;  ///< [0, 1]
        double sample_rate_hz = 10.0;       ///< > 0
        std::uint64_t seed = 3;
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit cloud_process(const config& cfg);

    gain_result generate(std::span<float> out) override;
    double sample_rate_hz() const override { return cfg_.sample_rate_hz; }

    bool cloudy() const { return cloudy_; }
    double cloudy_fraction() const { return cfg_.mean_cloudy_s / (cfg_.mean_clear_s + cfg_.mean_cloudy_s); }

private:
    double draw_sojourn();
    config cfg_;
    channel_rng rng_;
    bool cloudy_ = false;
    double remaining_s_ = 0.0;   ///< time left in the current state
};

}  // namespace qlink::sim
