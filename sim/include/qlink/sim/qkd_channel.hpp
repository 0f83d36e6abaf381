// BB84 decoy-state photon channel: per-pulse detection events (skipping empty pulses) and analytic gain/QBER.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "qlink/sim/channel_rng.hpp"

namespace qlink::sim {

enum class intensity_class : std::uint8_t { signal = 0, decoy = 1, vacuum = 2 };

/// One pulse with at least one click at Bob. Basis 0 = Z (rectilinear), 1 = X (diagonal).
struct qkd_detection {
    std::uint64_t pulse_index = 0;
    intensity_class intensity = intensity_class::signal;
    std::uint8_t alice_basis = 0;
    std::uint8_t alice_bit = 0;
    std::uint8_t bob_basis = 0;
    std::uint8_t bob_bit = 0;
    std::uint8_t double_click = 0;   ///< both detectors clicked: bob_bit drawn at random (squashing)
};

/// Analytic expectations for one intensity class at one transmittance.
struct qkd_expectation {
    double gain = 0.0;        ///< Q: probability of >= 1 click per pulse (exact for this detector model)
    double qber = 0.0;        ///< E: error rate in the sifted (matched-basis) events
    double gain_lmc = 0.0;    ///< Lo-Ma-Chen 2005: Q = Y0 + 1 - e^{-eta mu}
    double qber_lmc = 0.0;    ///< E Q = e0 Y0 + e_d (1 - e^{-eta mu}), e0 = 1/2
};

class qkd_channel {
public:
    struct config {
        double pulse_rate_hz = 100e6;           ///< > 0
        std::array<double, 3> mean_photons{0.8, 0.1, 0.0};   ///< mu, nu, vacuum; >= 0, < 50
        std::array<double, 3> probabilities{0.5, 0.25, 0.25}; ///< each in [0,1], sum 1
        double alice_z_probability = 0.5;       ///< Alice's basis choice, [0, 1]
        double bob_z_probability = 0.5;         ///< Bob's basis choice (active), [0, 1]
        double detector_efficiency = 0.5;       ///< Bob's optics x detector, (0, 1]
        double dark_count_rate_hz = 25.0;       ///< per detector, >= 0
        double background_rate_hz = 0.0;        ///< detected background per detector, >= 0
        double gate_width_s = 2e-9;             ///< coincidence window that counts dark/background, > 0
        double misalignment_error = 0.01;       ///< e_d, [0, 0.5]
        std::uint64_t seed = 6;
    };

    struct result {
        std::uint64_t pulses = 0;        ///< pulses consumed (pulse_index advanced by this)
        std::size_t detections = 0;      ///< events written
        std::size_t double_clicks = 0;
        bool ok = true;
        const char* error = "";
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit qkd_channel(const config& cfg);

    /// Simulates up to `pulses` pulses at channel transmittance `eta` (atmosphere, geometry,
    /// fading; Bob's efficiency is applied on top). Stops early, with result.pulses < pulses,
    /// when `out` is full. eta outside [0,1] or NaN -> ok = false, nothing consumed.
    result simulate(double eta, std::uint64_t pulses, std::span<qkd_detection> out);

    /// Expected gain and QBER of class `c` at channel transmittance eta.
    qkd_expectation expected(double eta, intensity_class c) const;

    /// Per-detector probability of a dark or background click in one gate.
    double noise_click_probability() const { return p_noise_; }
    std::uint64_t next_pulse_index() const { return next_pulse_; }
    const config& get_config() const { return cfg_; }

private:
    config cfg_;
    double p_noise_ = 0.0;
    std::uint64_t next_pulse_ = 0;
    channel_rng rng_;
};

}  // namespace qlink::sim
