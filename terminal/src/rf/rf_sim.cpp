// The simulated satellite behind the sim radio: coded downlink out, uplink through its own channel into an uncorrected receiver.
#include "qlink/terminal/rf_sim.hpp"

#include "rf_preamble.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qlink::terminal {

namespace {

const modem::chain_profile& require(const modem::chain_profile* p) {
    if (p == nullptr) throw std::invalid_argument("rf_sim_satellite: profile is required");
    return *p;
}

rf_demodulator::config demod_config(const rf_waveform& w) {
    rf_demodulator::config c;
    c.waveform = w;
    return c;
}

modem::chain_decoder::config decoder_config(const modem::chain_profile& p) {
    modem::chain_decoder::config c;
    c.profile = p;
    return c;
}

constexpr std::size_t chunk_samples = 16384;  // uplink Doppler refresh and demodulator step

}  // namespace

rf_sim_satellite::rf_sim_satellite(const doppler_predictor& truth, const config& cfg)
    : truth_(truth), cfg_(cfg), bps_(bits_per_symbol(cfg.waveform.modulation)), enc_(require(cfg.profile)),
      mod_({cfg.waveform, 1.0f}), demod_(demod_config(cfg.waveform)), dec_(decoder_config(*cfg.profile)) {
    frame_.resize(enc_.data_bytes());
    bits_.resize(std::max(enc_.max_frame_bits(), enc_.max_finish_bits()) + bps_);
    sim::rf_channel::config ch;
    ch.sample_rate_hz = cfg.waveform.sample_rate_hz;
    ch.samples_per_symbol = cfg.waveform.samples_per_symbol;
    ch.es_n0_db = cfg.es_n0_db;
    ch.signal_power = mod_.sample_power();
    ch.phase_noise_linewidth_hz = cfg.phase_noise_linewidth_hz;
    ch.seed = cfg.seed * 2 + 1;
    up_channel_ = sim::create_rf_channel(ch);
    if (cfg.waveform.modulation == rf_modulation::qpsk) resolver_.emplace(rf_phase_resolver::for_profile(*cfg.profile, cfg.waveform.modulation));
    if (!(cfg.preamble_s >= 0.0 && cfg.preamble_s <= 60.0)) throw std::invalid_argument("rf_sim_satellite: preamble_s not in [0, 60]");
    preamble_state_ = detail::preamble_state(cfg.seed);
    preamble_symbols_ = static_cast<std::uint64_t>(cfg.preamble_s * cfg.waveform.sample_rate_hz / cfg.waveform.samples_per_symbol);
    up_buf_.resize(chunk_samples);
    llrs_.resize(demod_.max_llrs(chunk_samples));
    out_.resize(dec_.frames_per_push() * dec_.data_bytes());
    reports_.resize(dec_.frames_per_push());
}

rf_sim_satellite::~rf_sim_satellite() = default;

hw::sim_radio_config rf_sim_satellite::radio_config() {
    hw::sim_radio_config r;
    r.channel.sample_rate_hz = cfg_.waveform.sample_rate_hz;
    r.channel.samples_per_symbol = cfg_.waveform.samples_per_symbol;
    r.channel.es_n0_db = cfg_.es_n0_db;
    r.channel.signal_power = mod_.sample_power();
    r.channel.phase_noise_linewidth_hz = cfg_.phase_noise_linewidth_hz;
    r.channel.seed = cfg_.seed * 2;
    r.drive_clock = true;
    r.source = [this](std::span<cf32> out) { source(out); };
    r.sink = [this](std::span<const cf32> in, const hw::tx_metadata& md) { sink(in, md); };
    r.doppler = [this](sim::time_point t) {
        const auto d = truth_.downlink(t);
        return std::pair{(d.ok ? d.offset_hz : 0.0) + cfg_.oscillator_error_hz, d.ok ? d.rate_hz_s : 0.0};
    };
    return r;
}

void rf_sim_satellite::source(std::span<cf32> out) {
    for (std::size_t i = 0; i < out.size();) {
        if (pending_pos_ == pending_.size()) {
            std::size_t nbits = 0;
            if (preamble_symbols_ > 0) {
                // Random symbols: no marker for the synchroniser, a modulated carrier for the loops.
                const std::size_t symbols = std::min<std::uint64_t>(preamble_symbols_, bits_.size() / bps_);
                nbits = symbols * bps_;
                for (std::size_t k = 0; k < nbits; ++k) bits_[k] = detail::next_preamble_bit(preamble_state_);
                preamble_symbols_ -= symbols;
            } else if (!done_ && cfg_.next_frame && cfg_.next_frame(frame_)) {
                nbits = enc_.encode(frame_, bits_).bits;
                ++frames_sent_;
            } else if (!done_) {
                done_ = true;
                nbits = enc_.finish(bits_).bits;
                nbits = (nbits + bps_ - 1) / bps_ * bps_;  // whole symbols (the pad bit is 0)
            }
            const std::size_t sps = cfg_.waveform.samples_per_symbol;
            if (nbits > 0) {
                pending_.resize(nbits / bps_ * sps);
                mod_.modulate(std::span<const std::uint8_t>(bits_).first(nbits), pending_);
            } else if (done_) {
                std::fill(out.begin() + static_cast<std::ptrdiff_t>(i), out.end(), cf32{});  // silent
                return;
            }
            pending_pos_ = 0;
            if (pending_.empty()) continue;
        }
        const std::size_t n = std::min(out.size() - i, pending_.size() - pending_pos_);
        std::copy_n(pending_.begin() + static_cast<std::ptrdiff_t>(pending_pos_), n, out.begin() + static_cast<std::ptrdiff_t>(i));
        pending_pos_ += n;
        i += n;
    }
}

void rf_sim_satellite::sink(std::span<const cf32> in, const hw::tx_metadata& md) {
    if (md.has_time) up_t_ns_ = md.time_ns;
    const double fs = cfg_.waveform.sample_rate_hz;
    for (std::size_t pos = 0; pos < in.size();) {
        const std::size_t n = std::min(chunk_samples, in.size() - pos);
        const auto d = truth_.uplink(sim::time_point{} + sim::duration{up_t_ns_});
        if (d.ok) {
            up_channel_->set_doppler(d.offset_hz + cfg_.oscillator_error_hz, d.rate_hz_s);
            up_.max_abs_doppler_hz = std::max(up_.max_abs_doppler_hz, std::abs(d.offset_hz));
        }
        std::span<cf32> buf(up_buf_.data(), n);
        up_channel_->process(in.subspan(pos, n), buf);
        for (std::size_t done = 0; done < n;) {
            const auto r = demod_.demodulate(std::span<const cf32>(buf).subspan(done), llrs_);
            if (resolver_) resolver_->process(std::span<modem::llr_t>(llrs_).first(r.llrs));
            decode(std::span<const modem::llr_t>(llrs_).first(r.llrs));
            done += r.samples;
            if (r.samples == 0) break;
        }
        up_.samples += n;
        up_t_ns_ += static_cast<std::int64_t>(std::llround(double(n) / fs * 1e9));
        pos += n;
    }
    up_.locked = demod_.locked();
    up_.residual_hz = demod_.residual_frequency_hz();
    up_.lock_acquired = demod_.stats().lock_acquired;
}

void rf_sim_satellite::take(const modem::chain_decoder::result& r) {
    for (std::size_t f = 0; f < r.frames; ++f) {
        if (!reports_[f].ok) {
            ++up_.frames_failed;
            continue;
        }
        ++up_.frames_ok;
        if (cfg_.on_frame) cfg_.on_frame(std::span<const std::uint8_t>(out_).subspan(f * dec_.data_bytes(), dec_.data_bytes()));
    }
}

void rf_sim_satellite::decode(std::span<const modem::llr_t> llrs) {
    if (cfg_.on_llrs) {
        if (!llrs.empty()) cfg_.on_llrs(llrs);
        return;
    }
    dec_.push_all(llrs, out_, reports_, [this](const modem::chain_decoder::result& r) { take(r); });
}

void rf_sim_satellite::finish_uplink() {
    // The satellite keeps listening after the burst: 50 ms of channel noise carry the last
    // symbols out of its filters before the decoder flushes.
    // The loop's state is reported as it was on the signal.
    const uplink_stats on_signal = up_;
    std::vector<cf32> quiet(static_cast<std::size_t>(0.05 * cfg_.waveform.sample_rate_hz));
    sink(quiet, hw::tx_metadata{});
    up_.samples = on_signal.samples;
    up_.locked = on_signal.locked;
    up_.residual_hz = on_signal.residual_hz;
    take(dec_.finish(out_, reports_));
}

}  // namespace qlink::terminal
