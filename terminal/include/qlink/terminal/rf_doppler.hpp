// Carrier Doppler predicted from the ephemeris: what the RF receiver removes and the transmitter pre-compensates.
#pragma once

#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"

#include <string>

namespace qlink::terminal {

/// The Doppler of one carrier at one instant.
struct doppler_estimate {
    double offset_hz = 0.0;     ///< received minus transmitted frequency
    double rate_hz_s = 0.0;     ///< d(offset)/dt
    double elevation_deg = 0.0;
    double azimuth_deg = 0.0;
    bool ok = false;            ///< false when SGP4 failed (error names why)
    std::string error;
};

/// Predicts the downlink and uplink Doppler from an element set seen from a station.
/// Downlink: the station receives f_dl + offset, so the receiver removes `offset`.
/// Uplink: the satellite would receive f_ul + offset, so the station transmits
/// f_ul - offset (pre-compensation) and the satellite sees its nominal carrier.
class doppler_predictor {
public:
    struct config {
        double downlink_hz = 8.2e9;  ///< X-band downlink carrier, > 0
        double uplink_hz = 7.2e9;    ///< X-band uplink carrier, > 0
        /// Added to every requested time: the station clock's error against the
        /// ephemeris (simulates an imperfect prediction; 0 in operation).
        double time_bias_s = 0.0;
    };

    /// Throws std::invalid_argument naming the field (configuration edge).
    doppler_predictor(const sim::sgp4_propagator& sat, const sim::ground_station& station, const config& cfg);

    doppler_estimate downlink(sim::time_point t) const;
    doppler_estimate uplink(sim::time_point t) const;
    const config& cfg() const { return cfg_; }

private:
    doppler_estimate at(sim::time_point t, double carrier_hz) const;

    const sim::sgp4_propagator& sat_;
    const sim::ground_station& station_;
    config cfg_;
};

}  // namespace qlink::terminal
