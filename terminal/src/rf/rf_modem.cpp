// The liquid-dsp RF modem: RRC modulator and the AGC/symsync/Costas demodulator with SNR-scaled LLRs.
#include "qlink/terminal/rf_modem.hpp"

#include "carrier_nco.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::terminal {

std::string_view to_string(rf_modulation m) {
    switch (m) {
    case rf_modulation::bpsk: return "bpsk";
    case rf_modulation::qpsk: return "qpsk";
    }
    return "?";
}

unsigned bits_per_symbol(rf_modulation m) { return m == rf_modulation::qpsk ? 2 : 1; }

std::string validate(const rf_waveform& w) {
    if (w.modulation != rf_modulation::bpsk && w.modulation != rf_modulation::qpsk)
        return "modulation: must be bpsk or qpsk";
    if (w.samples_per_symbol < 2 || w.samples_per_symbol > 64)
        return "samples_per_symbol: " + std::to_string(w.samples_per_symbol) + " not in [2, 64]";
    if (w.filter_delay < 2 || w.filter_delay > 32)
        return "filter_delay: " + std::to_string(w.filter_delay) + " not in [2, 32]";
    if (!(w.rolloff >= 0.1f && w.rolloff <= 1.0f)) return "rolloff: " + std::to_string(w.rolloff) + " not in [0.1, 1]";
    if (!(w.sample_rate_hz > 0.0) || !std::isfinite(w.sample_rate_hz)) return "sample_rate_hz: must be > 0";
    return {};
}

namespace {

void require(const std::string& problem, const char* who) {
    if (!problem.empty()) throw std::invalid_argument(std::string(who) + ": " + problem);
}

void require_range(const char* who, const char* field, double v, double lo, double hi) {
    if (!(v >= lo && v <= hi))
        throw std::invalid_argument(std::string(who) + ": " + field + " = " + std::to_string(v) + " not in [" +
                                    std::to_string(lo) + ", " + std::to_string(hi) + "]");
}

constexpr float inv_sqrt2 = 0.70710678118654752f;

}  // namespace

// ---------------------------------------------------------------------------------------------
// modulator

struct rf_modulator::impl {
    config cfg;
    unsigned k;
    unsigned bps;
    firinterp_crcf interp = nullptr;
    detail::carrier_nco nco;
    double power = 0.0;

    explicit impl(const config& c)
        : cfg(c), k(c.waveform.samples_per_symbol), bps(bits_per_symbol(c.waveform.modulation)),
          nco(c.waveform.sample_rate_hz) {
        interp = firinterp_crcf_create_prototype(LIQUID_FIRFILT_RRC, k, c.waveform.filter_delay, c.waveform.rolloff, 0.0f);
        if (!interp) throw std::runtime_error("rf_modulator: liquid-dsp firinterp_crcf_create_prototype failed");
        // The same prototype liquid builds inside: the mean output power of random
        // unit-energy symbols is sum(h^2) / k.
        std::vector<float> h(2 * k * c.waveform.filter_delay + 1);
        liquid_firdes_prototype(LIQUID_FIRFILT_RRC, k, c.waveform.filter_delay, c.waveform.rolloff, 0.0f, h.data());
        double e = 0.0;
        for (float v : h) e += double(v) * v;
        power = e / k * double(c.amplitude) * c.amplitude;
    }
    ~impl() { firinterp_crcf_destroy(interp); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void push(cf32 sym, cf32* out) { firinterp_crcf_execute(interp, sym, out); }
};

rf_modulator::rf_modulator(const config& cfg) {
    require(validate(cfg.waveform), "rf_modulator");
    require_range("rf_modulator", "amplitude", cfg.amplitude, 1e-9, 1e3);
    p_ = std::make_unique<impl>(cfg);
}
rf_modulator::~rf_modulator() = default;

rf_modulator::result rf_modulator::modulate(std::span<const std::uint8_t> bits, std::span<cf32> out) {
    const unsigned bps = p_->bps, k = p_->k;
    if (bits.size() % bps != 0) return {0, 0, false, "rf_modulator::modulate: bit count is not a multiple of bits per symbol"};
    const std::size_t symbols = bits.size() / bps;
    if (out.size() < symbols * k) return {0, 0, false, "rf_modulator::modulate: output holds fewer than symbols * samples_per_symbol"};
    const float a = p_->cfg.amplitude;
    for (std::size_t s = 0; s < symbols; ++s) {
        cf32 sym;
        if (bps == 1) {
            sym = {bits[s] ? -a : a, 0.0f};
        } else {
            const float q = a * inv_sqrt2;
            sym = {bits[2 * s] ? -q : q, bits[2 * s + 1] ? -q : q};
        }
        p_->push(sym, out.data() + s * k);
    }
    p_->nco.mix(out.data(), out.data(), symbols * k, false);
    return {bits.size(), symbols * k, true, nullptr};
}

rf_modulator::result rf_modulator::flush(std::span<cf32> out) {
    const std::size_t n = std::size_t(p_->cfg.waveform.filter_delay) * p_->k;
    if (out.size() < n) return {0, 0, false, "rf_modulator::flush: output holds fewer than filter_delay * samples_per_symbol"};
    for (unsigned s = 0; s < p_->cfg.waveform.filter_delay; ++s) p_->push(cf32{0.0f, 0.0f}, out.data() + s * p_->k);
    p_->nco.mix(out.data(), out.data(), n, false);
    return {0, n, true, nullptr};
}

void rf_modulator::set_carrier_offset(double offset_hz, double rate_hz_s) { p_->nco.set(offset_hz, rate_hz_s); }
double rf_modulator::sample_power() const { return p_->power; }
const rf_modulator::config& rf_modulator::cfg() const { return p_->cfg; }

// ---------------------------------------------------------------------------------------------
// demodulator

struct rf_demodulator::impl {
    static constexpr std::size_t chunk = 512;  // samples per inner step (buffers sized once)

    config cfg;
    unsigned k;
    unsigned bps;
    detail::carrier_nco doppler;
    agc_crcf agc = nullptr;
    symsync_crcf sync = nullptr;
    nco_crcf carrier = nullptr;
    std::vector<cf32> buf;      // corrected + levelled samples of one chunk
    std::vector<cf32> symbols;  // symsync output of one chunk
    std::vector<cf32> pending;  // symbols that did not fit the caller's output
    std::size_t pending_head = 0, pending_count = 0;

    // Loop and estimator state.
    float alpha;        // 1 / lock_window
    float amp = 1.0f;   // running mean |y| for phase-detector normalisation
    float metric = 0.0f;
    double m2 = 0.0, m4 = 0.0;  // M2M4 moments
    float llr_factor = 0.0f;
    bool estimates_primed = false;
    bool is_locked = false;
    counters stats;

    explicit impl(const config& c)
        : cfg(c), k(c.waveform.samples_per_symbol), bps(bits_per_symbol(c.waveform.modulation)),
          doppler(c.waveform.sample_rate_hz), alpha(1.0f / float(c.lock_window)) {
        agc = agc_crcf_create();
        sync = symsync_crcf_create_rnyquist(LIQUID_FIRFILT_RRC, k, c.waveform.filter_delay, c.waveform.rolloff,
                                            c.timing_filters);
        carrier = nco_crcf_create(LIQUID_VCO);
        if (!agc || !sync || !carrier) {
            destroy();
            throw std::runtime_error("rf_demodulator: liquid-dsp object creation failed");
        }
        buf.resize(chunk);
        // symsync emits about chunk / k symbols; one per input sample is a hard upper bound.
        symbols.resize(chunk);
        pending.resize(chunk);
        configure_objects();
    }
    ~impl() { destroy(); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void destroy() {
        if (agc) agc_crcf_destroy(agc);
        if (sync) symsync_crcf_destroy(sync);
        if (carrier) nco_crcf_destroy(carrier);
        agc = nullptr;
        sync = nullptr;
        carrier = nullptr;
    }

    void configure_objects() {
        agc_crcf_set_bandwidth(agc, cfg.agc_bandwidth);
        symsync_crcf_set_lf_bw(sync, cfg.timing_bandwidth);
        symsync_crcf_set_output_rate(sync, 1);
        nco_crcf_pll_set_bandwidth(carrier, cfg.carrier_bandwidth);
    }

    void reset_loops() {
        agc_crcf_reset(agc);
        symsync_crcf_reset(sync);
        nco_crcf_reset(carrier);
        configure_objects();
        doppler.reset();
        pending_head = pending_count = 0;
        amp = 1.0f;
        metric = 0.0f;
        m2 = m4 = 0.0;
        llr_factor = 0.0f;
        estimates_primed = false;
        is_locked = false;
    }

    /// Costas loop, lock detector and SNR estimate for one matched-filter output;
    /// returns the derotated symbol.
    cf32 track(cf32 in) {
        cf32 y;
        nco_crcf_mix_down(carrier, in, &y);
        const float re = y.real(), im = y.imag();
        const float mag2 = re * re + im * im;
        const float mag = std::sqrt(mag2);
        amp += alpha * (mag - amp);
        const float norm = amp > 1e-12f ? 1.0f / amp : 0.0f;
        float err, m;
        if (bps == 1) {
            err = (re >= 0.0f ? im : -im) * norm;
            m = mag2 > 0.0f ? (re * re - im * im) / mag2 : 0.0f;
        } else {
            err = ((re >= 0.0f ? im : -im) - (im >= 0.0f ? re : -re)) * norm * inv_sqrt2;
            // y^4 of a QPSK point (phase pi/4 + n pi/2) is -|y|^4.
            const cf32 y2 = y * y;
            const cf32 y4 = y2 * y2;
            m = mag2 > 0.0f ? -y4.real() / (mag2 * mag2) : 0.0f;
        }
        // Large errors are noise or cycle slips: clip so one outlier cannot kick the loop.
        err = std::clamp(err, -1.0f, 1.0f);
        nco_crcf_pll_step(carrier, err);
        nco_crcf_step(carrier);

        // Gear shift: a wide loop pulls the carrier in, a narrow one tracks it
        // with little phase jitter (few cycle slips at low Es/N0).
        metric += alpha * (m - metric);
        if (!is_locked && metric > cfg.lock_on) {
            is_locked = true;
            ++stats.lock_acquired;
            nco_crcf_pll_set_bandwidth(carrier, cfg.carrier_bandwidth_locked);
        } else if (is_locked && metric < cfg.lock_off) {
            is_locked = false;
            ++stats.lock_lost;
            nco_crcf_pll_set_bandwidth(carrier, cfg.carrier_bandwidth);
        }
        if (!is_locked) ++stats.symbols_unlocked;

        // M2M4 SNR estimate (constant-modulus constellations): S = sqrt(2 M2^2 - M4), N = M2 - S.
        if (!estimates_primed) {
            m2 = mag2;
            m4 = double(mag2) * mag2;
            estimates_primed = true;
        } else {
            m2 += alpha * (mag2 - m2);
            m4 += alpha * (double(mag2) * mag2 - m4);
        }
        // On a fixed symbol cadence, so the LLRs do not depend on how the stream is cut.
        if (stats.symbols % 64 == 0) update_llr_factor();
        ++stats.symbols;
        return y;
    }

    void update_llr_factor() {
        double s = 2.0 * m2 * m2 - m4;
        s = s > 0.0 ? std::sqrt(s) : 0.0;
        s = std::clamp(s, 1e-3 * m2, m2 * (1.0 - 1e-4));
        const double n = m2 - s;
        if (!(n > 0.0) || !(m2 > 0.0)) {
            llr_factor = 0.0f;
            return;
        }
        // Natural LLR per dimension = 4 a y / N, a the per-dimension amplitude.
        const double a = bps == 1 ? std::sqrt(s) : std::sqrt(s / 2.0);
        llr_factor = static_cast<float>(cfg.llr_scale * 4.0 * a / n);
    }

    void emit(cf32 y, modem::llr_t* out) {
        out[0] = modem::quantize_llr(llr_factor * y.real());
        if (bps == 2) out[1] = modem::quantize_llr(llr_factor * y.imag());
    }
};

rf_demodulator::rf_demodulator(const config& cfg) {
    const char* who = "rf_demodulator";
    require(validate(cfg.waveform), who);
    require_range(who, "timing_filters", cfg.timing_filters, 4, 256);
    require_range(who, "timing_bandwidth", cfg.timing_bandwidth, 1e-9, 0.5);
    require_range(who, "carrier_bandwidth", cfg.carrier_bandwidth, 1e-9, 0.5);
    require_range(who, "carrier_bandwidth_locked", cfg.carrier_bandwidth_locked, 1e-9, 0.5);
    require_range(who, "agc_bandwidth", cfg.agc_bandwidth, 1e-9, 0.5);
    require_range(who, "llr_scale", cfg.llr_scale, 1e-6, 127.0);
    require_range(who, "lock_on", cfg.lock_on, 1e-6, 0.999);
    require_range(who, "lock_off", cfg.lock_off, 0.0, cfg.lock_on);
    require_range(who, "lock_window", cfg.lock_window, 16, 65536);
    p_ = std::make_unique<impl>(cfg);
}
rf_demodulator::~rf_demodulator() = default;

std::size_t rf_demodulator::max_llrs(std::size_t n) const {
    // symsync gives n / k symbols give or take its timing adjustment per chunk; the
    // margin covers the worst case and whatever is still pending.
    const std::size_t chunks = (n + impl::chunk - 1) / impl::chunk;
    return (n / p_->k + 4 * chunks + 4 + p_->pending_count) * p_->bps;
}

rf_demodulator::result rf_demodulator::demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) {
    impl& d = *p_;
    result r;
    const unsigned bps = d.bps;
    auto room = [&] { return (llrs.size() - r.llrs) / bps; };

    // Symbols left over from the last call go first, in order.
    while (d.pending_count > 0 && room() > 0) {
        d.emit(d.pending[d.pending_head], llrs.data() + r.llrs);
        r.llrs += bps;
        ++d.pending_head;
        --d.pending_count;
    }
    if (d.pending_count > 0) {
        r.output_full = true;
        return r;
    }
    d.pending_head = 0;

    while (r.samples < samples.size()) {
        // Size the chunk so its symbols fit the output (margin 4 for timing adjustment).
        const std::size_t fit = room();
        if (fit < 5) {
            r.output_full = true;
            break;
        }
        const std::size_t n = std::min({impl::chunk, samples.size() - r.samples, (fit - 4) * d.k});
        const cf32* in = samples.data() + r.samples;
        d.doppler.mix(in, d.buf.data(), n, true);
        agc_crcf_execute_block(d.agc, d.buf.data(), static_cast<unsigned>(n), d.buf.data());
        unsigned ny = 0;
        symsync_crcf_execute(d.sync, d.buf.data(), static_cast<unsigned>(n), d.symbols.data(), &ny);
        for (unsigned i = 0; i < ny; ++i) {
            const cf32 y = d.track(d.symbols[i]);
            if (room() > 0) {
                d.emit(y, llrs.data() + r.llrs);
                r.llrs += bps;
            } else {
                d.pending[d.pending_count++] = y;
            }
        }
        r.samples += n;
        d.stats.samples += n;
        if (d.pending_count > 0) {
            r.output_full = true;
            break;
        }
    }
    return r;
}

void rf_demodulator::set_carrier_correction(double offset_hz, double rate_hz_s) { p_->doppler.set(offset_hz, rate_hz_s); }
double rf_demodulator::carrier_correction_hz() const { return p_->doppler.frequency_hz(); }
bool rf_demodulator::locked() const { return p_->is_locked; }
float rf_demodulator::lock_metric() const { return p_->metric; }
double rf_demodulator::residual_frequency_hz() const {
    const double symbol_rate = p_->cfg.waveform.sample_rate_hz / p_->k;
    return double(nco_crcf_get_frequency(p_->carrier)) * symbol_rate / (2.0 * std::numbers::pi);
}
double rf_demodulator::es_n0_estimate_db() const {
    const double m2 = p_->m2;
    double s = 2.0 * m2 * m2 - p_->m4;
    s = s > 0.0 ? std::sqrt(s) : 0.0;
    const double n = m2 - s;
    if (!(s > 0.0)) return -100.0;
    if (!(n > 0.0)) return 100.0;
    return 10.0 * std::log10(s / n);
}
float rf_demodulator::agc_gain() const { return agc_crcf_get_gain(p_->agc); }
const rf_demodulator::counters& rf_demodulator::stats() const { return p_->stats; }
const rf_demodulator::config& rf_demodulator::cfg() const { return p_->cfg; }
void rf_demodulator::reset() { p_->reset_loops(); }

}  // namespace qlink::terminal
