// A frequency-ramped carrier rotation (Doppler pre-compensation / correction) on liquid-dsp's nco_crcf.
#pragma once

#include <complex>
// liquid.h maps its complex type onto std::complex when <complex> comes first.
#include <liquid/liquid.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <stdexcept>

namespace qlink::terminal::detail {

/// Rotates a stream by offset + rate * t. The frequency is refreshed every
/// `step` samples at the middle of the step, which tracks a 3 kHz/s ramp to
/// well under 1 Hz at any sample rate used here; the phase never jumps.
class carrier_nco {
public:
    explicit carrier_nco(double sample_rate_hz) : fs_(sample_rate_hz), nco_(nco_crcf_create(LIQUID_VCO)) {
        if (!nco_) throw std::runtime_error("liquid-dsp nco_crcf_create failed");
    }
    ~carrier_nco() { nco_crcf_destroy(nco_); }
    carrier_nco(const carrier_nco&) = delete;
    carrier_nco& operator=(const carrier_nco&) = delete;

    void set(double offset_hz, double rate_hz_s) {
        f0_ = offset_hz;
        rate_ = rate_hz_s;
        t_ = 0.0;
        active_ = true;
    }
    double frequency_hz() const { return f0_ + rate_ * t_; }
    bool active() const { return active_; }
    void reset() {
        nco_crcf_reset(nco_);
        f0_ = rate_ = t_ = 0.0;
        count_ = 0;
        active_ = false;
    }

    /// in and out may alias. `down` removes the offset, otherwise adds it.
    void mix(const std::complex<float>* in, std::complex<float>* out, std::size_t n, bool down) {
        if (!active_) {
            if (in != out) std::copy(in, in + n, out);
            return;
        }
        const double w_per_hz = 2.0 * std::numbers::pi / fs_;
        // Refresh points fall on fixed sample counts, so the output does not depend
        // on how the caller cuts the stream.
        for (std::size_t i = 0, m = 0; i < n; i += m) {
            m = std::min(step - std::size_t(count_ % step), n - i);
            const double f = f0_ + rate_ * (t_ + 0.5 * double(m) / fs_);
            nco_crcf_set_frequency(nco_, static_cast<float>(w_per_hz * f));
            // liquid takes non-const input pointers but only reads them.
            auto* x = const_cast<std::complex<float>*>(in + i);
            if (down)
                nco_crcf_mix_block_down(nco_, x, out + i, static_cast<unsigned>(m));
            else
                nco_crcf_mix_block_up(nco_, x, out + i, static_cast<unsigned>(m));
            t_ += double(m) / fs_;
            count_ += m;
        }
    }

private:
    static constexpr std::size_t step = 64;
    double fs_;
    nco_crcf nco_;
    double f0_ = 0.0, rate_ = 0.0, t_ = 0.0;
    std::uint64_t count_ = 0;
    bool active_ = false;
};

}  // namespace qlink::terminal::detail
