// The RF modem's public face: the liquid-dsp RRC modulator, and the demodulator's validation and engine choice.
#include "qlink/terminal/rf_modem.hpp"

#include "carrier_nco.hpp"
#include "rf_rx_engine.hpp"

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
// demodulator: validation, then the chosen engine

std::string_view to_string(rf_demod_engine e) {
    switch (e) {
    case rf_demod_engine::native: return "native";
    case rf_demod_engine::liquid: return "liquid";
    }
    return "?";
}

struct rf_demodulator::impl {
    config cfg;
    std::unique_ptr<detail::rf_rx_engine> engine;
};

rf_demodulator::config rf_demodulator::resolved(config c) {
    const bool qpsk = c.waveform.modulation == rf_modulation::qpsk;
    if (c.timing_bandwidth == 0.0f) c.timing_bandwidth = c.engine == rf_demod_engine::liquid ? 0.01f : 0.003f;
    if (c.carrier_bandwidth_locked == 0.0f) c.carrier_bandwidth_locked = qpsk ? 0.001f : 0.003f;
    if (c.lock_on == 0.0f) c.lock_on = qpsk ? 0.12f : 0.35f;
    if (c.lock_off == 0.0f) c.lock_off = qpsk ? 0.06f : 0.2f;
    if (c.lock_window == 0) c.lock_window = qpsk ? 1024 : 256;
    return c;
}

rf_demodulator::rf_demodulator(const config& given) {
    const char* who = "rf_demodulator";
    const config cfg = resolved(given);
    require(validate(cfg.waveform), who);
    if (cfg.engine != rf_demod_engine::native && cfg.engine != rf_demod_engine::liquid)
        throw std::invalid_argument("rf_demodulator: receiver must be native or liquid");
    require_range(who, "timing_filters", cfg.timing_filters, 4, 256);
    require_range(who, "timing_bandwidth", cfg.timing_bandwidth, 1e-9, 0.5);
    require_range(who, "carrier_bandwidth", cfg.carrier_bandwidth, 1e-9, 0.5);
    require_range(who, "carrier_bandwidth_locked", cfg.carrier_bandwidth_locked, 1e-9, 0.5);
    require_range(who, "agc_bandwidth", cfg.agc_bandwidth, 1e-9, 0.5);
    require_range(who, "llr_scale", cfg.llr_scale, 1e-6, 127.0);
    require_range(who, "lock_on", cfg.lock_on, 1e-6, 0.999);
    require_range(who, "lock_off", cfg.lock_off, 0.0, cfg.lock_on);
    require_range(who, "lock_window", cfg.lock_window, 16, 65536);
    p_ = std::make_unique<impl>();
    p_->cfg = cfg;
    p_->engine = cfg.engine == rf_demod_engine::native ? detail::create_native_rx(cfg) : detail::create_liquid_rx(cfg);
}
rf_demodulator::~rf_demodulator() = default;

std::size_t rf_demodulator::max_llrs(std::size_t n) const { return p_->engine->max_llrs(n); }
rf_demodulator::result rf_demodulator::demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) {
    return p_->engine->demodulate(samples, llrs);
}
void rf_demodulator::set_carrier_correction(double offset_hz, double rate_hz_s) {
    p_->engine->set_carrier_correction(offset_hz, rate_hz_s);
}
double rf_demodulator::carrier_correction_hz() const { return p_->engine->carrier_correction_hz(); }
bool rf_demodulator::locked() const { return p_->engine->locked(); }
float rf_demodulator::lock_metric() const { return p_->engine->lock_metric(); }
double rf_demodulator::residual_frequency_hz() const { return p_->engine->residual_frequency_hz(); }
double rf_demodulator::es_n0_estimate_db() const { return p_->engine->es_n0_estimate_db(); }
float rf_demodulator::agc_gain() const { return p_->engine->agc_gain(); }
const rf_demodulator::counters& rf_demodulator::stats() const { return p_->engine->stats(); }
const rf_demodulator::config& rf_demodulator::cfg() const { return p_->cfg; }
void rf_demodulator::reset() { p_->engine->reset(); }

}  // namespace qlink::terminal
