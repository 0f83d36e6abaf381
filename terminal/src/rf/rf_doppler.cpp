// Doppler prediction from SGP4 + station geometry (range rate and range acceleration at the carrier).
#include "qlink/terminal/rf_doppler.hpp"

#include <cmath>
#include <stdexcept>

namespace qlink::terminal {

doppler_predictor::doppler_predictor(const sim::sgp4_propagator& sat, const sim::ground_station& station,
                                     const config& cfg)
    : sat_(sat), station_(station), cfg_(cfg) {
    if (!(cfg.downlink_hz > 0.0) || !std::isfinite(cfg.downlink_hz))
        throw std::invalid_argument("doppler_predictor: downlink_hz must be > 0");
    if (!(cfg.uplink_hz > 0.0) || !std::isfinite(cfg.uplink_hz))
        throw std::invalid_argument("doppler_predictor: uplink_hz must be > 0");
    if (!(std::abs(cfg.time_bias_s) <= 3600.0))
        throw std::invalid_argument("doppler_predictor: time_bias_s not in [-3600, 3600]");
}

doppler_estimate doppler_predictor::at(sim::time_point t, double carrier_hz) const {
    doppler_estimate e;
    const sim::pass_sample s = station_.observe(sat_, t + sim::seconds_d(cfg_.time_bias_s));
    if (s.error != sim::sgp4_error::none) {
        e.error = "SGP4: " + std::string(sim::to_string(s.error));
        return e;
    }
    e.offset_hz = sim::doppler_shift_hz(carrier_hz, s.look.range_rate_km_s);
    e.rate_hz_s = sim::doppler_rate_hz_s(carrier_hz, s.range_accel_km_s2);
    e.elevation_deg = s.look.elevation_deg;
    e.azimuth_deg = s.look.azimuth_deg;
    e.ok = true;
    return e;
}

doppler_estimate doppler_predictor::downlink(sim::time_point t) const { return at(t, cfg_.downlink_hz); }
doppler_estimate doppler_predictor::uplink(sim::time_point t) const { return at(t, cfg_.uplink_hz); }

}  // namespace qlink::terminal
