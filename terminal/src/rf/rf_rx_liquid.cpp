// The liquid-dsp receive chain (agc_crcf, symsync_crcf, nco_crcf Costas): the peer qlink's own receiver is measured against.
#include "carrier_nco.hpp"
#include "rf_rx_engine.hpp"

#include <cmath>
#include <numbers>
#include <stdexcept>
#include <vector>

namespace qlink::terminal::detail {

namespace {


class liquid_rx final : public rf_rx_engine {
public:
    explicit liquid_rx(const rf_demodulator::config& c)
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
    ~liquid_rx() override { destroy(); }
    liquid_rx(const liquid_rx&) = delete;
    liquid_rx& operator=(const liquid_rx&) = delete;

    rf_demodulator::result demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) override;
    std::size_t max_llrs(std::size_t n) const override {
        // symsync gives n / k symbols give or take its timing adjustment per chunk; the
        // margin covers the worst case and whatever is still pending.
        const std::size_t chunks = (n + chunk - 1) / chunk;
        return (n / k + 4 * chunks + 4 + pending_count) * bps;
    }
    void set_carrier_correction(double offset_hz, double rate_hz_s) override { doppler.set(offset_hz, rate_hz_s); }
    double carrier_correction_hz() const override { return doppler.frequency_hz(); }
    bool locked() const override { return costas.locked; }
    float lock_metric() const override { return costas.metric; }
    double residual_frequency_hz() const override {
        const double symbol_rate = cfg.waveform.sample_rate_hz / k;
        return double(nco_crcf_get_frequency(carrier)) * symbol_rate / (2.0 * std::numbers::pi);
    }
    double es_n0_estimate_db() const override { return est.es_n0_db(); }
    float agc_gain() const override { return agc_crcf_get_gain(agc); }
    const rf_demodulator::counters& stats() const override { return st; }
    void reset() override;

private:
    static constexpr std::size_t chunk = 512;  // samples per inner step (buffers sized once)

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
    cf32 track(cf32 in);
    void emit(cf32 y, modem::llr_t* out) const {
        out[0] = modem::quantize_llr(llr_factor * y.real());
        if (bps == 2) out[1] = modem::quantize_llr(llr_factor * y.imag());
    }

    rf_demodulator::config cfg;
    unsigned k;
    unsigned bps;
    carrier_nco doppler;
    agc_crcf agc = nullptr;
    symsync_crcf sync = nullptr;
    nco_crcf carrier = nullptr;
    std::vector<cf32> buf;      // corrected + levelled samples of one chunk
    std::vector<cf32> symbols;  // symsync output of one chunk
    std::vector<cf32> pending;  // symbols that did not fit the caller's output
    std::size_t pending_head = 0, pending_count = 0;

    float alpha;       // 1 / lock_window
    costas_detector costas;
    m2m4_estimator est;
    float llr_factor = 0.0f;
    rf_demodulator::counters st;
};

void liquid_rx::reset() {
    agc_crcf_reset(agc);
    symsync_crcf_reset(sync);
    nco_crcf_reset(carrier);
    configure_objects();
    doppler.reset();
    pending_head = pending_count = 0;
    costas.reset();
    est.reset();
    llr_factor = 0.0f;
}

/// Costas loop, lock detector and SNR estimate for one matched-filter output;
/// returns the derotated symbol.
cf32 liquid_rx::track(cf32 in) {
    cf32 y;
    nco_crcf_mix_down(carrier, in, &y);
    const float re = y.real(), im = y.imag();
    const float mag2 = re * re + im * im;
    const float soft = bps == 2 ? 0.5f * llr_factor / cfg.llr_scale : 0.0f;  // QPSK: soft decisions
    const auto d = costas.step(re, im, mag2, bps, alpha, cfg.lock_on, cfg.lock_off, soft);
    nco_crcf_pll_step(carrier, d.err);
    nco_crcf_step(carrier);
    if (d.lock == costas_detector::change::acquired) {
        ++st.lock_acquired;
        nco_crcf_pll_set_bandwidth(carrier, cfg.carrier_bandwidth_locked);
    } else if (d.lock == costas_detector::change::lost) {
        ++st.lock_lost;
        nco_crcf_pll_set_bandwidth(carrier, cfg.carrier_bandwidth);
    }
    if (!costas.locked) ++st.symbols_unlocked;

    est.update(mag2, alpha);
    // On a fixed symbol cadence, so the LLRs do not depend on how the stream is cut.
    if (st.symbols % 64 == 0) llr_factor = est.llr_factor(bps, cfg.llr_scale);
    ++st.symbols;
    return y;
}

rf_demodulator::result liquid_rx::demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs) {
    rf_demodulator::result r;
    auto room = [&] { return (llrs.size() - r.llrs) / bps; };

    // Symbols left over from the last call go first, in order.
    while (pending_count > 0 && room() > 0) {
        emit(pending[pending_head], llrs.data() + r.llrs);
        r.llrs += bps;
        ++pending_head;
        --pending_count;
    }
    if (pending_count > 0) {
        r.output_full = true;
        return r;
    }
    pending_head = 0;

    while (r.samples < samples.size()) {
        // Size the chunk so its symbols fit the output (margin 4 for timing adjustment).
        const std::size_t fit = room();
        if (fit < 5) {
            r.output_full = true;
            break;
        }
        const std::size_t n = std::min({chunk, samples.size() - r.samples, (fit - 4) * k});
        const cf32* in = samples.data() + r.samples;
        doppler.mix(in, buf.data(), n, true);
        agc_crcf_execute_block(agc, buf.data(), static_cast<unsigned>(n), buf.data());
        unsigned ny = 0;
        symsync_crcf_execute(sync, buf.data(), static_cast<unsigned>(n), symbols.data(), &ny);
        for (unsigned i = 0; i < ny; ++i) {
            const cf32 y = track(symbols[i]);
            if (room() > 0) {
                emit(y, llrs.data() + r.llrs);
                r.llrs += bps;
            } else {
                pending[pending_count++] = y;
            }
        }
        r.samples += n;
        st.samples += n;
        if (pending_count > 0) {
            r.output_full = true;
            break;
        }
    }
    return r;
}

}  // namespace

std::unique_ptr<rf_rx_engine> create_liquid_rx(const rf_demodulator::config& cfg) {
    return std::make_unique<liquid_rx>(cfg);
}

}  // namespace qlink::terminal::detail
