// The receiver engines behind rf_demodulator: liquid-dsp objects (the peer) and qlink's own block receiver.
#pragma once

#include "qlink/terminal/rf_modem.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace qlink::terminal::detail {

/// One receive chain. rf_demodulator validates the configuration and forwards;
/// an engine is called per block of samples, never per sample.
class rf_rx_engine {
public:
    virtual ~rf_rx_engine() = default;
    virtual rf_demodulator::result demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) = 0;
    virtual std::size_t max_llrs(std::size_t n) const = 0;
    virtual void set_carrier_correction(double offset_hz, double rate_hz_s) = 0;
    virtual double carrier_correction_hz() const = 0;
    virtual bool locked() const = 0;
    virtual float lock_metric() const = 0;
    virtual double residual_frequency_hz() const = 0;
    virtual double es_n0_estimate_db() const = 0;
    virtual float agc_gain() const = 0;
    virtual const rf_demodulator::counters& stats() const = 0;
    virtual void reset() = 0;
};

/// M2M4 moments of the matched-filter output, the Es/N0 estimate and the LLR
/// scale both engines derive from them (constant-modulus constellations).
struct m2m4_estimator {
    double m2 = 0.0, m4 = 0.0;
    bool primed = false;

    void update(float mag2, float alpha) {
        if (!primed) {
            m2 = mag2;
            m4 = double(mag2) * mag2;
            primed = true;
        } else {
            m2 += alpha * (mag2 - m2);
            m4 += alpha * (double(mag2) * mag2 - m4);
        }
    }
    void reset() { *this = {}; }
    /// Signal power S = sqrt(2 M2^2 - M4) (0 when the moments say noise only).
    double signal() const {
        const double s = 2.0 * m2 * m2 - m4;
        return s > 0.0 ? std::sqrt(s) : 0.0;
    }
    double es_n0_db() const {
        const double s = signal(), n = m2 - s;
        if (!(s > 0.0)) return -100.0;
        if (!(n > 0.0)) return 100.0;
        return 10.0 * std::log10(s / n);
    }
    /// int8 LLR per unit of matched-filter output: llr_scale * 4 a / N, a the
    /// per-dimension amplitude (the natural LLR of one BPSK dimension).
    float llr_factor(unsigned bps, float llr_scale) const {
        const double s = std::clamp(signal(), 1e-3 * m2, m2 * (1.0 - 1e-4));
        const double n = m2 - s;
        if (!(n > 0.0) || !(m2 > 0.0)) return 0.0f;
        const double a = bps == 1 ? std::sqrt(s) : std::sqrt(s / 2.0);
        return static_cast<float>(llr_scale * 4.0 * a / n);
    }
};

/// The decision-directed Costas phase detector, its lock detector and gear shift, shared by
/// both engines (each applies the error to its own loop filter). One call per symbol, on the
/// carrier-derotated matched-filter output y = (re, im).
struct costas_detector {
    float amp = 1.0f;  ///< running mean |y| for phase-detector normalisation
    float metric = 0.0f;
    bool locked = false;

    enum class change { none, acquired, lost };
    struct output {
        float err;  ///< phase error, clipped to [-1, 1]
        change lock;
    };

    /// `soft_gain` > 0 (QPSK): decisions are soft, clamp(soft_gain * y, -1, 1) per dimension, a
    /// piecewise-linear tanh of half the natural LLR (soft_gain = 2 a / N). Near the threshold a
    /// hard decision is wrong often enough to add as much noise as the phase error itself; the
    /// soft one weights it down, which is what lets a QPSK loop hold at Es/N0 4-6 dB. 0: hard.
    output step(float re, float im, float mag2, unsigned bps, float alpha, float lock_on, float lock_off,
                float soft_gain = 0.0f) {
        constexpr float inv_sqrt2 = 0.70710678118654752f;
        amp += alpha * (std::sqrt(mag2) - amp);
        const float norm = amp > 1e-12f ? 1.0f / amp : 0.0f;
        float err, m;
        if (bps == 1) {
            err = (re >= 0.0f ? im : -im) * norm;
            m = mag2 > 0.0f ? (re * re - im * im) / mag2 : 0.0f;
        } else {
            const float dr = soft_gain > 0.0f ? std::clamp(soft_gain * re, -1.0f, 1.0f) : (re >= 0.0f ? 1.0f : -1.0f);
            const float di = soft_gain > 0.0f ? std::clamp(soft_gain * im, -1.0f, 1.0f) : (im >= 0.0f ? 1.0f : -1.0f);
            err = (dr * im - di * re) * norm * inv_sqrt2;
            // y^4 of a QPSK point (phase pi/4 + n pi/2) is -|y|^4.
            const float r2 = re * re - im * im, i2 = 2.0f * re * im;
            m = mag2 > 0.0f ? -(r2 * r2 - i2 * i2) / (mag2 * mag2) : 0.0f;
        }
        // Large errors are noise or cycle slips: clip so one outlier cannot kick the loop.
        err = std::clamp(err, -1.0f, 1.0f);
        // Gear shift (the caller narrows or widens its loop): a wide loop pulls the carrier
        // in, a narrow one tracks it with little phase jitter (few cycle slips at low Es/N0).
        metric += alpha * (m - metric);
        change c = change::none;
        if (!locked && metric > lock_on) {
            locked = true;
            c = change::acquired;
        } else if (locked && metric < lock_off) {
            locked = false;
            c = change::lost;
        }
        return {err, c};
    }
    void reset() { *this = {}; }
};

std::unique_ptr<rf_rx_engine> create_liquid_rx(const rf_demodulator::config& cfg);
/// Throws std::invalid_argument for an unknown cfg.isa.
std::unique_ptr<rf_rx_engine> create_native_rx(const rf_demodulator::config& cfg);

}  // namespace qlink::terminal::detail
