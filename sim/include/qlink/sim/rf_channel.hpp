// RF channel at complex baseband: Doppler (offset + rate), phase noise, shadow/rain fading, AWGN at a set Es/N0.
#pragma once

#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace qlink::sim {

struct rf_result {
    std::size_t samples = 0;
    bool ok = true;
    const char* error = "";
};

/// y[n] = g[n] e^{j(phi_D[n] + phi_pn[n])} x[n] + w[n]
///   phi_D: carrier offset f(t) = f0 + fdot t integrated (liquid-dsp nco_crcf does the rotation);
///   phi_pn: Wiener phase noise, increment variance 2 pi linewidth / fs per sample;
///   g: optional log-normal shadowing (dB Gaussian, AR(1) correlated) plus a mean rain attenuation;
///   w: complex AWGN, variance N0 = signal_power * samples_per_symbol / (Es/N0) per sample.
class rf_channel {
public:
    struct config {
        double sample_rate_hz = 1e6;           ///< > 0
        double es_n0_db = 10.0;                ///< [-30, 100]
        double samples_per_symbol = 1.0;       ///< >= 1
        double signal_power = 1.0;             ///< mean |x|^2 the Es/N0 refers to, > 0
        bool add_noise = true;
        double frequency_offset_hz = 0.0;      ///< |f| < fs/2 at all times
        double frequency_rate_hz_s = 0.0;      ///< Doppler rate
        double phase_noise_linewidth_hz = 0.0; ///< >= 0 (3-dB Lorentzian linewidth)
        double rain_attenuation_db = 0.0;      ///< mean extra loss, >= 0
        double shadowing_sigma_db = 0.0;       ///< >= 0, 0 = off
        double shadowing_correlation_s = 0.1;  ///< > 0
        std::uint64_t seed = 5;
    };

    virtual ~rf_channel() = default;

    /// Applies the channel to in, writes out (same size; in and out may alias).
    virtual rf_result process(std::span<const std::complex<float>> in, std::span<std::complex<float>> out) = 0;

    /// Updates the Doppler profile from the pass (e.g. once per second); the phase is continuous.
    virtual void set_doppler(double offset_hz, double rate_hz_s) = 0;
    virtual void set_es_n0_db(double es_n0_db) = 0;

    /// Current instantaneous frequency offset [Hz] and elapsed time [s].
    virtual double frequency_offset_hz() const = 0;
    virtual double elapsed_s() const = 0;
    /// Noise variance per complex sample currently used.
    virtual double noise_variance() const = 0;
};

/// Throws std::invalid_argument naming the field and its allowed range.
std::unique_ptr<rf_channel> create_rf_channel(const rf_channel::config& cfg);

}  // namespace qlink::sim
