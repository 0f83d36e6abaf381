// Full LEO pass, AOS to LOS in one stream: the coded X-band downlink (BPSK 3 dB, QPSK 7 dB) stays locked through the whole Doppler profile (LABELS slow).
#include "rf_pass_sim.hpp"
#include "rf_test_util.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>

namespace qlink::terminal {
namespace {

/// Symbol slips of one receiver on a long BPSK stream (1500 Hz offset, 20 Hz phase noise,
/// fixed seeds, so every configuration sees the same samples): the hard decisions are
/// checked window by window against the sent bits at the current alignment, and a window
/// with more than 20 % errors is re-aligned (delay 0..60 symbols, either sign); a changed
/// delay is a timing slip, a changed sign a carrier slip.
struct slip_count {
    std::size_t symbols = 0, errors = 0, delay_changes = 0, sign_changes = 0;
    double ber() const { return symbols ? double(errors) / double(symbols) : 1.0; }
};

slip_count count_slips(rf_demodulator::config dc, double es_n0_db, std::size_t chunks) {
    constexpr std::size_t chunk_symbols = 1000000, win = 2048;
    rf_waveform wf;
    wf.samples_per_symbol = 4;
    wf.sample_rate_hz = 1e6;
    dc.waveform = wf;
    rf_modulator mod({wf, 1.0f});
    sim::rf_channel::config ch;
    ch.sample_rate_hz = 1e6;
    ch.es_n0_db = es_n0_db;
    ch.samples_per_symbol = 4;
    ch.signal_power = mod.sample_power();
    ch.frequency_offset_hz = 1500.0;
    ch.phase_noise_linewidth_hz = 20.0;
    ch.seed = 6;
    auto channel = sim::create_rf_channel(ch);
    rf_demodulator demod(dc);
    std::vector<cf32> x(chunk_symbols * 4);
    std::vector<modem::llr_t> llr(demod.max_llrs(x.size()));
    std::vector<std::uint8_t> tx, rx;  // every sent bit, every hard decision
    slip_count out;
    int delay = -1, sign = 0;
    std::size_t checked = 64;  // the first symbols are the loops' start-up
    auto errors = [&](std::size_t w0, int d, int sg) {
        std::size_t e = 0;
        for (std::size_t i = w0; i < w0 + win; ++i) e += std::size_t((rx[i] ^ std::uint8_t(sg)) != tx[i - std::size_t(d)]);
        return e;
    };
    for (std::size_t c = 0; c < chunks; ++c) {
        const auto bits = test::random_bits(chunk_symbols, 1000 + c);
        tx.insert(tx.end(), bits.begin(), bits.end());
        EXPECT_TRUE(mod.modulate(bits, x).ok);
        EXPECT_TRUE(channel->process(x, x).ok);
        for (std::size_t done = 0; done < x.size();) {
            const std::size_t n = std::min<std::size_t>(10000, x.size() - done);
            const auto r = demod.demodulate(std::span<const cf32>(x).subspan(done, n), llr);
            EXPECT_EQ(r.samples, n);
            for (std::size_t i = 0; i < r.llrs; ++i) rx.push_back(modem::hard_bit(llr[i]));
            done += r.samples;
        }
        while (checked + win <= std::min(rx.size(), tx.size())) {
            std::size_t e = delay >= 0 ? errors(checked, delay, sign) : win;
            if (e > win / 5) {
                int bd = delay, bs = sign;
                for (int d = 0; d <= 60 && std::size_t(d) <= checked; ++d)
                    for (int sg = 0; sg < 2; ++sg)
                        if (const std::size_t v = errors(checked, d, sg); v < e) {
                            e = v;
                            bd = d;
                            bs = sg;
                        }
                if (delay >= 0) {
                    out.delay_changes += bd != delay;
                    out.sign_changes += bs != sign;
                }
                delay = bd;
                sign = bs;
            }
            out.errors += e;
            out.symbols += win;
            checked += win;
        }
    }
    return out;
}

// The cause of the native engine's extra frame losses over the whole pass (issue 7): at
// timing_bandwidth 0.01 its Gardner loop slipped a symbol about once per 2e6 symbols at BPSK
// 3 dB (11 slips in 2e7 symbols; the pass has 1.7e8), each slip costing the frame around it,
// while liquid's symsync at 0.01 had none. With the per-engine default (native 0.003) the
// same stream has no slip, and the BER is below liquid's.
TEST(rf_pass, native_timing_loop_does_not_slip_at_bpsk_3db) {
    rf_demodulator::config dc;
    const auto native = count_slips(dc, 3.0, 16);
    std::cout << "[ native, default timing_bandwidth " << rf_demodulator::resolved(dc).timing_bandwidth << " ] "
              << native.symbols << " symbols, BER " << native.ber() << ", timing slips " << native.delay_changes
              << ", carrier slips " << native.sign_changes << "\n";
    EXPECT_GT(native.symbols, 15000000u);
    EXPECT_EQ(native.delay_changes, 0u);
    EXPECT_EQ(native.sign_changes, 0u);
    // Coherent theory 0.0229 at 3 dB; measured 0.0248 (2e7 symbols).
    EXPECT_LT(native.ber(), 0.0255);

    // The detector sees the slips it is there for: the old setting on the same samples.
    dc.timing_bandwidth = 0.01f;
    const auto wide = count_slips(dc, 3.0, 16);
    std::cout << "[ native, timing_bandwidth 0.01 ] BER " << wide.ber() << ", timing slips " << wide.delay_changes
              << "\n";
    EXPECT_GE(wide.delay_changes, 3u);
    EXPECT_GT(wide.ber(), native.ber());
}

test::downlink_report run_pass(rf_modulation m, double es_n0_db) {
    const test::pass_world w;
    EXPECT_TRUE(w.sat);
    if (!w.sat) return {};
    const double seconds = std::chrono::duration<double>(w.pass.los - w.pass.aos).count();
    EXPECT_GT(seconds, 300.0);
    test::downlink_options o;
    o.modulation = m;
    o.es_n0_db = es_n0_db;
    o.resolve_phase = true;  // as rf_receiver runs with config::phase
    o.seed = 99;
    const auto rep = test::run_downlink(w, w.pass.aos, seconds, o);
    std::cout << "[ full pass, " << to_string(m) << ", native receiver, max elevation " << w.pass.max_elevation_deg
              << " deg, Es/N0 " << es_n0_db << " dB ] " << rep << "\n";
    ::testing::Test::RecordProperty("fer", std::to_string(rep.fer()));
    // Where in the pass the lost frames are (time from AOS, Doppler and its rate there).
    const doppler_predictor truth(*w.sat, w.station, {o.carrier_hz, o.carrier_hz, 0.0});
    std::cout << "lost frames (s from AOS, Doppler kHz, rate Hz/s):";
    for (std::uint32_t f : rep.lost_frames) {
        const double t = (double(f) + 0.5) * rep.frame_seconds;
        const auto d = truth.downlink(w.pass.aos + sim::seconds_d(t));
        std::cout << " " << std::lround(t) << "/" << std::lround(d.offset_hz / 1e3) << "/" << std::lround(d.rate_hz_s);
    }
    std::cout << "\n";
    EXPECT_EQ(rep.lock_acquired, 1u);
    EXPECT_EQ(rep.lock_lost, 0u);
    EXPECT_TRUE(rep.locked_at_end);
    EXPECT_EQ(rep.frames_bad_data, 0u);
    EXPECT_GT(rep.max_abs_offset_hz, 180e3);
    EXPECT_GT(rep.max_abs_rate_hz_s, 2800.0);
    EXPECT_NEAR(rep.final_residual_hz, rep.expected_residual_hz, 200.0);
    return rep;
}

TEST(rf_pass, full_pass_stays_locked_from_aos_to_los) {
    const auto rep = run_pass(rf_modulation::bpsk, 3.0);
    // Measured (seed 99, native receiver, Release build): 10510 of 10512 frames, FER 1.9e-4
    // (the first frame, before lock, and the last, still in the decoder at LOS), lock never
    // lost, no carrier rotation. The liquid engine loses 12 on the same pass. Before the
    // native timing loop's default bandwidth went from 0.01 to 0.003 it lost 95 (FER 9.0e-3),
    // spread over the whole pass in ones and twos: symbol slips of its Gardner loop, see
    // native_timing_loop_does_not_slip_at_bpsk_3db. Bound: FER <= 1e-3 (11 frames).
    EXPECT_EQ(rep.phase_rotations, 0u);
    EXPECT_LE(rep.fer(), 1e-3) << rep;
}

TEST(rf_pass, qpsk_full_pass_stays_locked_from_aos_to_los) {
    const auto rep = run_pass(rf_modulation::qpsk, 7.0);
    // Measured (seed 99): 20532 of 21024 frames, FER 2.3e-2, lock never lost; 522 carrier
    // rotations (cycle slips through the 20 Hz phase noise, each undone by the resolver on
    // the next marker at the cost of about a frame). With the native timing loop at 0.01:
    // 20463, FER 2.7e-2, 588 rotations. Bound: FER <= 3e-2.
    EXPECT_LE(rep.fer(), 3e-2) << rep;
}

}  // namespace
}  // namespace qlink::terminal
