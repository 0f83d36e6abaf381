// qlink's own block receiver: table-free carrier rotation, block AGC, polyphase RRC matched filter at 2 samples/symbol with a Gardner loop, Costas, LLRs.
//
// Per block of 256 samples: one power sum (AGC gain for the whole block), one
// carrier rotation that also applies the gain (phasors renormalised every
// block from a double-precision phase), appended to a short history. Then the
// timing loop walks a fractional strobe position through that history and
// evaluates the matched filter only where it is needed: at the strobe and half
// a symbol before it (Gardner's two samples per symbol), each one dot product
// of a polyphase sub-filter of the RRC prototype, so matched filtering and
// interpolation are one step. The Costas loop and LLR stage follow liquid's
// nco_crcf PLL semantics (frequency += e bw, phase += e sqrt(bw)), so the loop
// bandwidths mean the same as for the liquid engine.
#include "rf_rx_engine.hpp"
#include "rf_rx_kernels.hpp"

#include <complex>
// liquid.h maps its complex type onto std::complex when <complex> comes first.
#include <liquid/liquid.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::terminal::detail {

namespace {

constexpr double two_pi = 2.0 * std::numbers::pi;

class native_rx final : public rf_rx_engine {
public:
    explicit native_rx(const rf_demodulator::config& c);

    rf_demodulator::result demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) override;
    std::size_t max_llrs(std::size_t n) const override {
        // A symbol takes at least 7/8 of its nominal samples (the timing step is
        // clamped). Bounded by the buffers' capacity rather than their fill, so
        // the figure does not change from call to call (callers size once).
        return ((stage.size() + hist.size() + n) * 8 / (7 * k) + 4) * bps + pending_count;
    }
    void set_carrier_correction(double offset_hz, double rate_hz_s) override {
        f0 = offset_hz;
        rate = rate_hz_s;
        t_corr = 0.0;
        nco_active = true;
    }
    double carrier_correction_hz() const override { return f0 + rate * t_corr; }
    bool locked() const override { return costas.locked; }
    float lock_metric() const override { return costas.metric; }
    double residual_frequency_hz() const override {
        return double(dtheta) * (cfg.waveform.sample_rate_hz / k) / two_pi;
    }
    double es_n0_estimate_db() const override { return est.es_n0_db(); }
    float agc_gain() const override { return gain; }
    const rf_demodulator::counters& stats() const override { return st; }
    void reset() override;

private:
    static constexpr std::size_t block = 256;  // samples per AGC / carrier-phasor update
    static constexpr unsigned table_bits = 10;  // Costas phasor table: 1024 entries, <= 0.18 deg error

    void front_end(const cf32* in, cf32* out);
    void symbols(std::span<modem::llr_t> llrs, rf_demodulator::result& r);
    cf32 matched(double pos) const {
        const double fl = std::floor(pos);
        auto n = static_cast<std::ptrdiff_t>(fl);
        auto p = static_cast<unsigned>(std::lrint((pos - fl) * phases));
        if (p == phases) {
            ++n;
            p = 0;
        }
        return kern.dot(hist.data() + (n - std::ptrdiff_t(half)), bank.data() + std::size_t(p) * tap_floats, tap_floats);
    }
    cf32 track(cf32 in);

    rf_demodulator::config cfg;
    rx_kernels kern;
    unsigned k, bps, phases;
    std::size_t half;        // k * filter_delay: taps either side of the centre
    std::size_t tap_floats;  // 2 * (sub-filter length rounded up to 8)
    std::vector<float> bank;  // phases sub-filters, taps duplicated for complex samples
    std::vector<cf32> table;  // exp(-j 2 pi i / 1024)

    // Input staging (a block is processed only when full) and filtered history.
    std::vector<cf32> stage;
    std::size_t staged = 0;
    std::vector<cf32> hist;
    std::size_t hist_len = 0;

    // Doppler correction and AGC.
    double f0 = 0.0, rate = 0.0, t_corr = 0.0, nco_phase = 0.0;
    bool nco_active = false;
    float agc_beta;
    double agc_power = 0.0;
    bool agc_primed = false;
    float gain = 1.0f;

    // Timing loop (Gardner, PI filter); gains for acquisition and for tracking.
    double strobe;  // position of the next strobe in hist, samples
    double k1, k2, integ = 0.0;
    double k1_acq, k2_acq, k1_trk, k2_trk;
    cf32 y_prev{0.0f, 0.0f};
    float ted_power = 0.0f;

    // Costas loop, lock detector, estimates.
    float theta = 0.0f, dtheta = 0.0f, pll_alpha, pll_beta;
    float alpha;
    costas_detector costas;
    m2m4_estimator est;
    float llr_factor = 0.0f;
    rf_demodulator::counters st;

    std::vector<modem::llr_t> pending;  // LLRs that did not fit the caller's output
    std::size_t pending_head = 0, pending_count = 0;
};

native_rx::native_rx(const rf_demodulator::config& c)
    : cfg(c), k(c.waveform.samples_per_symbol), bps(bits_per_symbol(c.waveform.modulation)),
      phases(c.timing_filters), half(std::size_t(k) * c.waveform.filter_delay),
      agc_beta(1.0f - std::pow(1.0f - c.agc_bandwidth, float(block))), alpha(1.0f / float(c.lock_window)) {
    auto kernels = rx_kernels_for(c.isa);
    if (!kernels)
        throw std::invalid_argument("rf_demodulator: isa = '" + c.isa + "' not one of auto|generic|sse41|avx2|avx512");
    kern = *kernels;

    // RRC prototype at k * phases samples per symbol; sub-filter p evaluates the
    // matched filter at fractional offset p / phases of a sample.
    const unsigned m = c.waveform.filter_delay;
    const std::size_t proto_len = 2 * std::size_t(k) * phases * m + 1;
    std::vector<float> proto(proto_len);
    if (liquid_firdes_prototype(LIQUID_FIRFILT_RRC, k * phases, m, c.waveform.rolloff, 0.0f, proto.data()) != 0)
        throw std::runtime_error("rf_demodulator: liquid_firdes_prototype failed");
    const std::size_t len = 2 * half + 1;
    tap_floats = 2 * ((len + 7) / 8 * 8);
    bank.assign(std::size_t(phases) * tap_floats, 0.0f);
    // Unit noise gain on the on-time sub-filter.
    double e = 0.0;
    for (std::size_t a = 0; a < len; ++a) e += double(proto[(2 * half - a) * phases]) * proto[(2 * half - a) * phases];
    const float scale = static_cast<float>(1.0 / std::sqrt(e));
    for (unsigned p = 0; p < phases; ++p) {
        for (std::size_t a = 0; a < len; ++a) {
            const std::size_t idx = (2 * half - a) * phases + p;
            const float v = idx < proto_len ? proto[idx] * scale : 0.0f;
            bank[p * tap_floats + 2 * a] = v;
            bank[p * tap_floats + 2 * a + 1] = v;
        }
    }

    table.resize(std::size_t(1) << table_bits);
    for (std::size_t i = 0; i < table.size(); ++i) {
        const double ph = -two_pi * double(i) / double(table.size());
        table[i] = {static_cast<float>(std::cos(ph)), static_cast<float>(std::sin(ph))};
    }

    // Gardner loop, critically damped-ish (zeta = 1/sqrt 2), bandwidth BnT =
    // timing_bandwidth once the Costas loop has locked; the detector gain is
    // about 1.05 per symbol of timing error for RRC at these roll-offs
    // (normalised by the strobe power). Gear shift like the carrier's: until
    // lock BnT max(0.01, timing_bandwidth), which pulls the timing in within the
    // first frame from any start phase; locked, the narrow default 0.003
    // (rf_demodulator::resolved), because at 0.01 the loop's jitter slipped a
    // symbol about once per 2e6 symbols at BPSK 3 dB (issue 7).
    const double zeta = std::numbers::sqrt2 / 2.0, kp = 1.05;
    auto gains = [&](double bn, double& g1, double& g2) {
        const double th = bn / (zeta + 0.25 / zeta);
        const double d = 1.0 + 2.0 * zeta * th + th * th;
        g1 = 4.0 * zeta * th / d / kp;
        g2 = 4.0 * th * th / d / kp;
    };
    gains(std::max(0.01, double(c.timing_bandwidth)), k1_acq, k2_acq);
    gains(c.timing_bandwidth, k1_trk, k2_trk);

    stage.resize(block);
    hist.resize(block + 2 * (tap_floats / 2) + 4 * std::size_t(k) + 16);
    pending.resize((block + 16) * 2);
    reset();
    st = {};
}

void native_rx::reset() {
    staged = 0;
    // The matched filter is centred; a history of 2 * half zeros makes the chain
    // behave like a causal filter (delay half): the first symbol comes out
    // after a few start-up symbols, never before the first strobe.
    std::fill(hist.begin(), hist.end(), cf32{0.0f, 0.0f});
    hist_len = 2 * half;
    f0 = rate = t_corr = nco_phase = 0.0;
    nco_active = false;
    agc_power = 0.0;
    agc_primed = false;
    gain = 1.0f;
    strobe = double(half) + k;
    integ = 0.0;
    k1 = k1_acq;
    k2 = k2_acq;
    y_prev = {0.0f, 0.0f};
    ted_power = 0.0f;
    theta = dtheta = 0.0f;
    pll_alpha = cfg.carrier_bandwidth;
    pll_beta = std::sqrt(cfg.carrier_bandwidth);
    costas.reset();
    est.reset();
    llr_factor = 0.0f;
    pending_head = pending_count = 0;
}

/// AGC and Doppler correction of one block into `out`.
void native_rx::front_end(const cf32* in, cf32* out) {
    const double fs = cfg.waveform.sample_rate_hz;
    const double w = nco_active ? -two_pi * (f0 + rate * (t_corr + 0.5 * double(block) / fs)) / fs : 0.0;
    const float p = kern.power(in, block) / float(block);
    const bool bad = !std::isfinite(p);
    if (!bad) {
        // One gain per block from the smoothed power: no per-sample log/exp.
        agc_power = agc_primed ? agc_power + agc_beta * (double(p) - agc_power) : double(p);
        agc_primed = true;
        gain = static_cast<float>(1.0 / std::sqrt(std::max(agc_power, 1e-30)));
    }
    if (bad) {
        // NaN/Inf from a broken front end: the block is dropped (zeros), the loops coast.
        std::fill(out, out + block, cf32{0.0f, 0.0f});
        ++st.blocks_zeroed;
    } else {
        cf32 ph[4];
        for (unsigned l = 0; l < 4; ++l) {
            const std::complex<double> z = std::polar(double(gain), nco_phase + w * l);
            ph[l] = {static_cast<float>(z.real()), static_cast<float>(z.imag())};
        }
        const std::complex<double> s = std::polar(1.0, 4.0 * w);
        kern.rotate(in, out, block, ph, {static_cast<float>(s.real()), static_cast<float>(s.imag())});
    }
    if (nco_active) {
        nco_phase = std::remainder(nco_phase + w * double(block), two_pi);
        t_corr += double(block) / fs;
    }
}

/// Costas loop, lock detector and SNR estimate for one matched-filter output.
cf32 native_rx::track(cf32 in) {
    const cf32 c = table[static_cast<std::size_t>(std::lrint(theta * float(table.size() / two_pi))) & (table.size() - 1)];
    const float re = in.real() * c.real() - in.imag() * c.imag();
    const float im = in.imag() * c.real() + in.real() * c.imag();
    const cf32 y{re, im};
    const float mag2 = re * re + im * im;
    const float soft = bps == 2 ? 0.5f * llr_factor / cfg.llr_scale : 0.0f;  // QPSK: soft decisions
    const auto d = costas.step(re, im, mag2, bps, alpha, cfg.lock_on, cfg.lock_off, soft);
    dtheta += d.err * pll_alpha;
    theta += d.err * pll_beta + dtheta;
    if (theta > float(std::numbers::pi) || theta < -float(std::numbers::pi))
        theta = static_cast<float>(std::remainder(double(theta), two_pi));
    if (d.lock == costas_detector::change::acquired) {
        ++st.lock_acquired;
        pll_alpha = cfg.carrier_bandwidth_locked;
        pll_beta = std::sqrt(cfg.carrier_bandwidth_locked);
        k1 = k1_trk;
        k2 = k2_trk;
    } else if (d.lock == costas_detector::change::lost) {
        ++st.lock_lost;
        pll_alpha = cfg.carrier_bandwidth;
        pll_beta = std::sqrt(cfg.carrier_bandwidth);
        k1 = k1_acq;
        k2 = k2_acq;
    }
    if (!costas.locked) ++st.symbols_unlocked;

    est.update(mag2, alpha);
    // On a fixed symbol cadence, so the LLRs do not depend on how the stream is cut.
    if (st.symbols % 64 == 0) llr_factor = est.llr_factor(bps, cfg.llr_scale);
    ++st.symbols;
    return y;
}

/// Every symbol whose filter window lies in the history; LLRs to `llrs`, the rest pending.
void native_rx::symbols(std::span<modem::llr_t> llrs, rf_demodulator::result& r) {
    const double mid = 0.5 * k;
    const std::size_t win = tap_floats / 2;
    while (std::size_t(strobe) + 1 + win <= hist_len + half) {
        const cf32 y_mid = matched(strobe - mid);
        const cf32 y = matched(strobe);
        // Gardner: late strobes give e < 0. Normalised by the strobe power so the
        // loop gain does not follow the signal level.
        const cf32 d = y_prev - y;
        const float e = y_mid.real() * d.real() + y_mid.imag() * d.imag();
        const float pw = y.real() * y.real() + y.imag() * y.imag();
        ted_power += (ted_power > 0.0f ? 1.0f / 64.0f : 1.0f) * (pw - ted_power);
        const float en = ted_power > 1e-30f ? std::clamp(e / ted_power, -1.0f, 1.0f) : 0.0f;
        integ = std::clamp(integ + k2 * en, -0.05, 0.05);
        const double v = std::clamp(k1 * en + integ, -0.125, 0.125);
        strobe += k * (1.0 + v);
        y_prev = y;

        const cf32 s = track(y);
        modem::llr_t out[2];
        out[0] = modem::quantize_llr(llr_factor * s.real());
        if (bps == 2) out[1] = modem::quantize_llr(llr_factor * s.imag());
        if (pending_count == 0 && llrs.size() - r.llrs >= bps) {
            std::copy(out, out + bps, llrs.data() + r.llrs);
            r.llrs += bps;
        } else {
            std::copy(out, out + bps, pending.data() + pending_head + pending_count);
            pending_count += bps;
        }
    }
    // Keep what the next strobe's half-symbol-early window still needs.
    const double keep_from = std::floor(strobe - mid) - double(half) - 1.0;
    if (keep_from > 0.0) {
        const auto drop = static_cast<std::size_t>(keep_from);
        std::copy(hist.begin() + std::ptrdiff_t(drop), hist.begin() + std::ptrdiff_t(hist_len), hist.begin());
        hist_len -= drop;
        strobe -= double(drop);
    }
}

rf_demodulator::result native_rx::demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) {
    rf_demodulator::result r;
    // LLRs left over from the last call go first, in order.
    const std::size_t n_pending = std::min(pending_count, llrs.size());
    std::copy_n(pending.data() + pending_head, n_pending, llrs.data());
    r.llrs = n_pending;
    pending_head += n_pending;
    pending_count -= n_pending;
    if (pending_count > 0 || (!samples.empty() && llrs.size() - r.llrs < bps)) {
        r.output_full = !samples.empty() || pending_count > 0;
        return r;
    }
    pending_head = 0;

    while (r.samples < samples.size()) {
        const cf32* src;
        const std::size_t left = samples.size() - r.samples;
        if (staged == 0 && left >= block) {
            src = samples.data() + r.samples;
            r.samples += block;
        } else {
            const std::size_t take = std::min(block - staged, left);
            std::copy_n(samples.data() + r.samples, take, stage.data() + staged);
            staged += take;
            r.samples += take;
            if (staged < block) break;
            staged = 0;
            src = stage.data();
        }
        front_end(src, hist.data() + hist_len);
        hist_len += block;
        symbols(llrs, r);
        if (pending_count > 0) {
            r.output_full = true;
            break;
        }
    }
    st.samples += r.samples;
    return r;
}

}  // namespace

std::unique_ptr<rf_rx_engine> create_native_rx(const rf_demodulator::config& cfg) {
    return std::make_unique<native_rx>(cfg);
}

}  // namespace qlink::terminal::detail
