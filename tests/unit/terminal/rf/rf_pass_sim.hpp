// Test helper: a coded BPSK/QPSK downlink through the sim RF channel with the pass Doppler, received with ephemeris correction and the phase resolver.
#pragma once

#include "qlink/modem/coding_chain.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/rf_channel.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/rf_doppler.hpp"
#include "qlink/terminal/rf_modem.hpp"
#include "qlink/terminal/rf_phase.hpp"
#include "support/source_path.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace qlink::terminal::test {

using qlink::test::source_path;

/// QLINKSAT-1 (the repository's synthetic 500 km SSO element set) over a station,
/// and its highest pass in the day after the epoch: the one with the largest
/// Doppler rate (about 3 kHz/s at 8.2 GHz near zenith).
struct pass_world {
    std::unique_ptr<sim::sgp4_propagator> sat;
    sim::ground_station station{{"oberpfaffenhofen", 48.0785, 11.2805, 600.0}};
    sim::pass_info pass{};

    pass_world() {
        std::ifstream in(source_path("sim/data/qlinksat-1.tle"));
        std::stringstream ss;
        ss << in.rdbuf();
        auto f = sim::parse_tle_text(ss.str());
        if (!f.ok() || f.sets.empty()) {
            ADD_FAILURE() << "cannot read sim/data/qlinksat-1.tle: " << f.error;
            return;
        }
        sat = sim::create_sgp4_propagator(f.sets[0]);
        const auto start = *sim::parse_iso8601_utc("2026-11-28T12:00:00Z");
        // The first pass above 80 deg in the week after the epoch (else the highest).
        const auto passes = sim::find_passes(*sat, station, start, start + std::chrono::hours(24 * 7));
        for (const auto& p : passes) {
            if (p.max_elevation_deg > pass.max_elevation_deg) pass = p;
            if (p.max_elevation_deg > 80.0) break;
        }
    }
};

/// One pass_world for a test binary (SGP4 pass search once).
inline const pass_world& shared_world() {
    static const pass_world w;
    return w;
}

struct downlink_options {
    rf_modulation modulation = rf_modulation::bpsk;
    double es_n0_db = 3.0;
    double sample_rate_hz = 1e6;          ///< 4 samples/symbol -> 250 ksym/s
    double carrier_hz = 8.2e9;
    double lo_offset_hz = 1500.0;         ///< station oscillator error (not in the prediction)
    double ephemeris_time_bias_s = 0.05;  ///< prediction evaluated this far off the truth
    double phase_noise_linewidth_hz = 20.0;
    bool correct_doppler = true;
    double update_interval_s = 0.01;      ///< channel truth and receiver correction refresh
    std::uint64_t seed = 7;
    /// rf_phase_resolver on the LLRs (what rf_receiver does with config::phase); QPSK needs it.
    bool resolve_phase = false;
    rf_demodulator::config demod{};  ///< waveform overwritten
};

struct downlink_report {
    std::size_t frames_sent = 0;
    std::size_t frames_good = 0;      ///< decoded, CRC good and equal to what was sent
    std::size_t frames_bad_data = 0;  ///< reported good but different from what was sent (must stay 0)
    double seconds = 0.0;
    double time_to_lock_s = -1.0;
    std::uint64_t lock_acquired = 0;
    std::uint64_t lock_lost = 0;
    bool locked_at_end = false;
    std::uint64_t phase_rotations = 0;  ///< rotation changes the resolver undid (initial ambiguity + cycle slips)
    std::uint64_t symbols_unlocked = 0;
    double max_abs_offset_hz = 0.0;   ///< largest Doppler the channel applied
    double max_abs_rate_hz_s = 0.0;
    double max_abs_residual_hz = 0.0; ///< largest carrier the Costas loop tracked after lock
    double final_residual_hz = 0.0;   ///< the loop's mean frequency over the last 30 %
    double expected_residual_hz = 0.0;///< what it should be: LO offset + (truth - prediction) at the end
    double frame_seconds = 0.0;           ///< air time of one frame (all the same length)
    std::vector<std::uint32_t> lost_frames;  ///< sequence numbers never decoded good (where in the pass)
    double fer() const { return frames_sent ? 1.0 - double(frames_good) / double(frames_sent) : 1.0; }
};

/// Streams coded frames from `t0` for `seconds` through the channel (truth: the
/// pass Doppler + LO offset) and the receiver (correction: the predictor with a
/// time bias), decoding with the default chain profile.
inline downlink_report run_downlink(const pass_world& w, sim::time_point t0, double seconds,
                                    const downlink_options& o) {
    using namespace qlink::modem;
    downlink_report rep;
    const double fs = o.sample_rate_hz;
    rf_waveform wf;
    wf.modulation = o.modulation;
    wf.sample_rate_hz = fs;
    const unsigned bps = bits_per_symbol(o.modulation);
    rf_modulator mod({wf, 1.0f});
    rf_demodulator::config dc = o.demod;
    dc.waveform = wf;
    rf_demodulator demod(dc);

    const doppler_predictor truth(*w.sat, w.station, {o.carrier_hz, o.carrier_hz, 0.0});
    const doppler_predictor predicted(*w.sat, w.station, {o.carrier_hz, o.carrier_hz, o.ephemeris_time_bias_s});

    sim::rf_channel::config ch;
    ch.sample_rate_hz = fs;
    ch.es_n0_db = o.es_n0_db;
    ch.samples_per_symbol = 4;
    ch.signal_power = mod.sample_power();
    ch.phase_noise_linewidth_hz = o.phase_noise_linewidth_hz;
    ch.seed = o.seed;
    const auto d0 = truth.downlink(t0);
    ch.frequency_offset_hz = d0.offset_hz + o.lo_offset_hz;
    ch.frequency_rate_hz_s = d0.rate_hz_s;
    auto channel = sim::create_rf_channel(ch);

    const chain_profile& profile = *find_profile(default_profile_name);
    std::optional<rf_phase_resolver> resolver;
    if (o.resolve_phase) resolver.emplace(rf_phase_resolver::for_profile(profile, o.modulation));
    chain_encoder enc(profile);
    chain_decoder::config dec_cfg;
    dec_cfg.profile = profile;
    chain_decoder dec(dec_cfg);
    const std::size_t db = enc.data_bytes();
    std::vector<std::uint8_t> data(db), bits(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    std::vector<cf32> samples(bits.size() / bps * 4);
    std::vector<llr_t> llrs(demod.max_llrs(samples.size()));
    std::vector<std::uint8_t> out(dec.frames_per_push() * db);
    std::vector<chain_frame_report> reports(dec.frames_per_push());
    std::mt19937_64 rng(o.seed + 100);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<bool> got;

    auto check_frames = [&](const chain_decoder::result& r) {
        for (std::size_t f = 0; f < r.frames; ++f) {
            if (!reports[f].ok) continue;
            const std::uint8_t* d = out.data() + f * db;
            const std::uint32_t seq = (std::uint32_t(d[0]) << 24) | (std::uint32_t(d[1]) << 16) |
                                      (std::uint32_t(d[2]) << 8) | d[3];
            if (seq < sent.size() && std::equal(d, d + db, sent[seq].begin())) {
                ++rep.frames_good;
                got[seq] = true;
            } else
                ++rep.frames_bad_data;
        }
    };
    auto decode = [&](std::span<const llr_t> soft) { dec.push_all(soft, out, reports, check_frames); };

    const std::size_t update_samples = static_cast<std::size_t>(o.update_interval_s * fs);
    const std::size_t total = static_cast<std::size_t>(seconds * fs);
    std::size_t n_done = 0, next_update = 0, resid_count = 0;
    double resid_sum = 0.0;
    bool ending = false;
    while (n_done < total) {
        std::size_t nbits;
        if (!ending && n_done + enc.max_frame_bits() / bps * 4 < total) {
            const auto seq = static_cast<std::uint32_t>(sent.size());
            for (auto& b : data) b = static_cast<std::uint8_t>(rng());
            data[0] = std::uint8_t(seq >> 24);
            data[1] = std::uint8_t(seq >> 16);
            data[2] = std::uint8_t(seq >> 8);
            data[3] = std::uint8_t(seq);
            sent.push_back(data);
            got.push_back(false);
            nbits = enc.encode(data, bits).bits;
            rep.frame_seconds = double(nbits / bps * 4) / fs;
        } else {
            ending = true;
            nbits = enc.finish(bits).bits;
            if (nbits == 0) break;
        }
        const std::size_t ns = nbits / bps * 4;
        mod.modulate(std::span<const std::uint8_t>(bits).first(nbits), samples);
        // Channel and receiver in pieces that end on the Doppler refresh points.
        for (std::size_t pos = 0; pos < ns;) {
            if (n_done >= next_update) {
                const sim::time_point t = t0 + sim::seconds_d(double(n_done) / fs);
                const auto d = truth.downlink(t);
                channel->set_doppler(d.offset_hz + o.lo_offset_hz, d.rate_hz_s);
                rep.max_abs_offset_hz = std::max(rep.max_abs_offset_hz, std::abs(d.offset_hz));
                rep.max_abs_rate_hz_s = std::max(rep.max_abs_rate_hz_s, std::abs(d.rate_hz_s));
                if (o.correct_doppler) {
                    const auto p = predicted.downlink(t);
                    demod.set_carrier_correction(p.offset_hz, p.rate_hz_s);
                }
                next_update += update_samples;
            }
            const std::size_t n = std::min(ns - pos, next_update - n_done);
            std::span<cf32> s(samples.data() + pos, n);
            channel->process(s, s);
            const auto r = demod.demodulate(s, llrs);
            EXPECT_EQ(r.samples, n);
            if (resolver) resolver->process(std::span<llr_t>(llrs).first(r.llrs));
            decode(std::span<const llr_t>(llrs).first(r.llrs));
            if (demod.locked() && rep.time_to_lock_s < 0.0) rep.time_to_lock_s = double(n_done + n) / fs;
            if (demod.locked())
                rep.max_abs_residual_hz = std::max(rep.max_abs_residual_hz, std::abs(demod.residual_frequency_hz()));
            if (n_done * 10 >= total * 7) {  // mean loop frequency over the last 30 %
                resid_sum += demod.residual_frequency_hz();
                ++resid_count;
            }
            pos += n;
            n_done += n;
        }
        if (ending) break;
    }
    const auto fr = dec.finish(out, reports);
    check_frames(fr);
    rep.frames_sent = sent.size();
    for (std::size_t i = 0; i < got.size(); ++i)
        if (!got[i]) rep.lost_frames.push_back(static_cast<std::uint32_t>(i));
    rep.seconds = double(n_done) / fs;
    rep.lock_acquired = demod.stats().lock_acquired;
    rep.lock_lost = demod.stats().lock_lost;
    rep.locked_at_end = demod.locked();
    rep.symbols_unlocked = demod.stats().symbols_unlocked;
    if (resolver) rep.phase_rotations = resolver->stats().rotation_changes;
    rep.final_residual_hz = resid_count ? resid_sum / double(resid_count) : demod.residual_frequency_hz();
    const sim::time_point t_end = t0 + sim::seconds_d(rep.seconds);
    rep.expected_residual_hz = o.lo_offset_hz + truth.downlink(t_end).offset_hz -
                               (o.correct_doppler ? predicted.downlink(t_end).offset_hz : 0.0);
    return rep;
}

inline std::ostream& operator<<(std::ostream& os, const downlink_report& r) {
    return os << "frames " << r.frames_good << "/" << r.frames_sent << " (FER " << r.fer() << "), lock after "
              << r.time_to_lock_s << " s, acquired " << r.lock_acquired << " lost " << r.lock_lost << ", max |Doppler| "
              << r.max_abs_offset_hz << " Hz, max |rate| " << r.max_abs_rate_hz_s << " Hz/s, max |residual| "
              << r.max_abs_residual_hz << " Hz, phase rotations " << r.phase_rotations << ", final residual " << r.final_residual_hz << " Hz (expected "
              << r.expected_residual_hz << ") over " << r.seconds << " s";
}

}  // namespace qlink::terminal::test
