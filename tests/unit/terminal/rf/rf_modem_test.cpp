// Tests the liquid-dsp RF modem: BER through the sim RF channel against theory, Costas lock with an offset, LLR convention, bad input.
#include "qlink/terminal/rf_modem.hpp"
#include "rf_test_util.hpp"

#include <gtest/gtest.h>

#include "qlink/modem/cpu.hpp"

#include <algorithm>
#include <cmath>
#include <iostream>
#include <numbers>
#include <stdexcept>

namespace qlink::terminal {
namespace {

constexpr double fs = 1e6;
constexpr float inv_sqrt2_f = 0.70710678118654752f;

rf_waveform waveform(rf_modulation m) {
    rf_waveform w;
    w.modulation = m;
    w.samples_per_symbol = 4;
    w.sample_rate_hz = fs;
    return w;
}

struct link_run {
    test::ber_count ber;       // one alignment for the whole run
    test::ber_count windowed;  // re-aligned every 4096 symbols (slips counted)
    bool locked = false;
    double residual_hz = 0.0;
    double es_n0_est_db = 0.0;
    std::vector<modem::llr_t> llrs;
};

/// Modulates `symbols` random symbols, sends them through the sim RF channel and demodulates.
link_run run_link(rf_modulation m, std::size_t symbols, double es_n0_db, double offset_hz, double linewidth_hz,
                  std::uint64_t seed, rf_demodulator::config dcfg = {}) {
    const unsigned bps = bits_per_symbol(m);
    const auto bits = test::random_bits(symbols * bps, seed);
    rf_modulator mod({waveform(m), 1.0f});
    std::vector<cf32> tx(symbols * 4 + 7 * 4);
    EXPECT_TRUE(mod.modulate(bits, tx).ok);
    EXPECT_TRUE(mod.flush(std::span<cf32>(tx).subspan(symbols * 4)).ok);

    sim::rf_channel::config ch;
    ch.sample_rate_hz = fs;
    ch.es_n0_db = es_n0_db;
    ch.samples_per_symbol = 4;
    ch.signal_power = mod.sample_power();
    ch.frequency_offset_hz = offset_hz;
    ch.phase_noise_linewidth_hz = linewidth_hz;
    ch.seed = seed + 1;
    auto channel = sim::create_rf_channel(ch);
    EXPECT_TRUE(channel->process(tx, tx).ok);
    // A receiver gain the AGC has to take out.
    for (auto& x : tx) x *= 0.05f;

    dcfg.waveform = waveform(m);
    rf_demodulator demod(dcfg);
    link_run out;
    out.llrs.resize(demod.max_llrs(tx.size()));
    // Odd-sized calls: the stream must not depend on how it is cut.
    std::size_t done = 0, written = 0;
    const std::size_t cuts[] = {1, 777, 4096, 3, 10000};
    for (std::size_t c = 0; done < tx.size(); ++c) {
        const std::size_t n = std::min(cuts[c % 5], tx.size() - done);
        auto r = demod.demodulate(std::span<const cf32>(tx).subspan(done, n),
                                  std::span<modem::llr_t>(out.llrs).subspan(written));
        EXPECT_TRUE(r.ok);
        EXPECT_EQ(r.samples, n);
        done += r.samples;
        written += r.llrs;
    }
    out.llrs.resize(written);
    out.locked = demod.locked();
    out.residual_hz = demod.residual_frequency_hz();
    out.es_n0_est_db = demod.es_n0_estimate_db();
    out.ber = test::count_errors(bits, out.llrs, bps, 3000);
    out.windowed = test::count_errors_windowed(bits, out.llrs, bps, 3000);
    return out;
}

struct ber_point {
    rf_modulation m;
    double es_n0_db;
    rf_demod_engine rx = rf_demod_engine::native;
};

class rf_modem_ber : public ::testing::TestWithParam<ber_point> {};

// BER within an implementation loss of at most 0.6 dB of theory, and not better
// than theory at +0.3 dB (a receiver that beats coherent detection is a broken test).
TEST_P(rf_modem_ber, matches_theory_through_sim_channel) {
    const auto p = GetParam();
    // Enough symbols for >= 250 expected errors (at least 200000).
    const std::size_t symbols = std::clamp<std::size_t>(std::size_t(250.0 / test::theory_ber(p.m, p.es_n0_db)),
                                                        p.m == rf_modulation::bpsk ? 300000 : 200000, 1500000);
    rf_demodulator::config dc;
    dc.engine = p.rx;
    // The narrow tracking loop recommended for QPSK (see carrier_bandwidth_locked):
    // at the default 0.003 QPSK at 7 dB slips cycles on some seeds, with either engine.
    dc.carrier_bandwidth_locked = 0.001f;
    const auto run = run_link(p.m, symbols, p.es_n0_db, 1200.0, 10.0, 11, dc);
    const double measured = run.windowed.ber();
    std::cout << "[ " << to_string(p.rx) << " " << to_string(p.m) << " " << p.es_n0_db << " dB ] BER " << measured << " (theory "
              << test::theory_ber(p.m, p.es_n0_db) << ", " << run.windowed.errors << " errors in " << run.windowed.bits
              << " bits), slips " << run.windowed.slips << ", whole-run BER " << run.ber.ber() << "\n";
    // At most one slip (timing or cycle) per ~50000 symbols at these Es/N0.
    EXPECT_LE(run.windowed.slips, symbols / 50000) << "slips";
    const double worst = test::theory_ber(p.m, p.es_n0_db - 0.6);
    const double best = test::theory_ber(p.m, p.es_n0_db + 0.3);
    EXPECT_TRUE(run.locked);
    EXPECT_GE(run.windowed.errors, 100u) << "too few error events to judge";
    EXPECT_LE(measured, worst) << to_string(p.m) << " Es/N0 " << p.es_n0_db << " theory "
                               << test::theory_ber(p.m, p.es_n0_db);
    EXPECT_GE(measured, best) << to_string(p.m) << " Es/N0 " << p.es_n0_db;
    // The M2M4 estimate sees the channel's Es/N0 (matched-filter output) within 1 dB.
    EXPECT_NEAR(run.es_n0_est_db, p.es_n0_db, 1.0);
    RecordProperty("ber", std::to_string(measured));
}

// The native receiver on the theoretical curve at BPSK Eb/N0 2 to 8 dB and QPSK
// Eb/N0 4 and 7 dB (Es/N0 7, 10), and the liquid-dsp peer at the original points.
// Below these the receiver is out of its range: BPSK at 1 dB loses ~0.8 dB with
// cycle slips, QPSK under Es/N0 7 dB does not acquire (the lock metric stays
// under lock_on), for both engines.
INSTANTIATE_TEST_SUITE_P(points, rf_modem_ber,
                         ::testing::Values(ber_point{rf_modulation::bpsk, 2.0}, ber_point{rf_modulation::bpsk, 3.0},
                                           ber_point{rf_modulation::bpsk, 6.0}, ber_point{rf_modulation::bpsk, 8.0},
                                           ber_point{rf_modulation::qpsk, 7.0},
                                           ber_point{rf_modulation::qpsk, 10.0},
                                           ber_point{rf_modulation::bpsk, 3.0, rf_demod_engine::liquid},
                                           ber_point{rf_modulation::bpsk, 6.0, rf_demod_engine::liquid},
                                           ber_point{rf_modulation::qpsk, 7.0, rf_demod_engine::liquid},
                                           ber_point{rf_modulation::qpsk, 10.0, rf_demod_engine::liquid}),
                         [](const ::testing::TestParamInfo<ber_point>& p) {
                             return std::string(to_string(p.param.rx)) + "_" + std::string(to_string(p.param.m)) +
                                    "_" + std::to_string(int(p.param.es_n0_db)) + "dB";
                         });

TEST(rf_modem, costas_locks_onto_a_carrier_offset) {
    // 5 kHz is 2 % of the 250 ksym/s symbol rate: well outside the loop bandwidth,
    // inside its pull-in range.
    for (rf_modulation m : {rf_modulation::bpsk, rf_modulation::qpsk}) {
        const auto run = run_link(m, 30000, 15.0, 5000.0, 0.0, 21);
        EXPECT_TRUE(run.locked) << to_string(m);
        EXPECT_NEAR(run.residual_hz, 5000.0, 150.0) << to_string(m);  // instantaneous loop frequency: jitters
        EXPECT_EQ(run.ber.errors, 0u) << to_string(m);
        EXPECT_GT(run.ber.bits, 20000u);
    }
    // The opposite sign too.
    const auto neg = run_link(rf_modulation::bpsk, 30000, 15.0, -5000.0, 0.0, 22);
    EXPECT_TRUE(neg.locked);
    EXPECT_NEAR(neg.residual_hz, -5000.0, 150.0);
}

// The native receiver's output does not depend on the kernels' ISA: every
// variant this CPU runs gives the generic one's LLRs bit for bit, through a
// Doppler ramp the receiver corrects from the "ephemeris".
TEST(rf_modem, native_receiver_is_identical_on_every_isa) {
    for (rf_modulation m : {rf_modulation::bpsk, rf_modulation::qpsk}) {
        const unsigned bps = bits_per_symbol(m);
        const std::size_t symbols = 20000;
        const auto bits = test::random_bits(symbols * bps, 51);
        rf_modulator mod({waveform(m), 1.0f});
        std::vector<cf32> tx(symbols * 4);
        ASSERT_TRUE(mod.modulate(bits, tx).ok);
        sim::rf_channel::config ch;
        ch.sample_rate_hz = fs;
        ch.es_n0_db = 8.0;
        ch.samples_per_symbol = 4;
        ch.signal_power = mod.sample_power();
        ch.frequency_offset_hz = 40000.0;
        ch.frequency_rate_hz_s = -3000.0;
        ch.seed = 52;
        ASSERT_TRUE(sim::create_rf_channel(ch)->process(tx, tx).ok);

        std::vector<modem::llr_t> ref;
        for (modem::isa level : modem::supported_isas()) {
            rf_demodulator::config dc;
            dc.waveform = waveform(m);
            dc.isa = std::string(modem::to_string(level));
            rf_demodulator d(dc);
            d.set_carrier_correction(40000.0 + 30.0, -3000.0);  // ephemeris 30 Hz off: the Costas loop takes the rest
            std::vector<modem::llr_t> llr(d.max_llrs(tx.size()));
            const auto r = d.demodulate(tx, llr);
            ASSERT_EQ(r.samples, tx.size());
            llr.resize(r.llrs);
            EXPECT_TRUE(d.locked()) << modem::to_string(level);
            if (ref.empty()) {
                ref = llr;
                const auto ber = test::count_errors(bits, ref, bps, 2000);
                EXPECT_LT(ber.ber(), 3.0 * test::theory_ber(m, 8.0) + 1e-3) << to_string(m);
                EXPECT_GT(ber.bits, 15000u * bps);
            } else {
                EXPECT_EQ(llr, ref) << modem::to_string(level) << " differs from generic, " << to_string(m);
            }
        }
    }
}

/// Root-raised-cosine pulse, closed form (unit symbol period).
double rrc(double t, double beta) {
    constexpr double pi = std::numbers::pi;
    if (std::abs(t) < 1e-9) return 1.0 - beta + 4.0 * beta / pi;
    if (std::abs(std::abs(t) - 1.0 / (4.0 * beta)) < 1e-9)
        return beta / std::sqrt(2.0) * ((1.0 + 2.0 / pi) * std::sin(pi / (4.0 * beta)) +
                                        (1.0 - 2.0 / pi) * std::cos(pi / (4.0 * beta)));
    const double x = 4.0 * beta * t;
    return (std::sin(pi * t * (1.0 - beta)) + x * std::cos(pi * t * (1.0 + beta))) / (pi * t * (1.0 - x * x));
}

// The timing loop against a transmitter whose symbol clock is off: BPSK/QPSK
// built directly from the RRC formula at 4 (1 + ppm 1e-6) samples per symbol and a
// fractional start delay, i.e. the receiver's sample clock drifts against the
// symbols. The Gardner loop must follow without slipping a symbol.
TEST(rf_modem, timing_loop_follows_a_symbol_clock_offset) {
    for (double ppm : {-500.0, 200.0}) {
        for (rf_modulation m : {rf_modulation::bpsk, rf_modulation::qpsk}) {
            const unsigned bps = bits_per_symbol(m);
            const std::size_t symbols = 24000;
            const auto bits = test::random_bits(symbols * bps, 81);
            const double period = 4.0 * (1.0 + ppm * 1e-6), delay = 1.3, beta = 0.35;
            std::vector<cf32> x(std::size_t(double(symbols) * period) + 64);
            for (std::size_t s = 0; s < symbols; ++s) {
                const float a = bps == 1 ? 1.0f : inv_sqrt2_f;
                const cf32 sym{bits[s * bps] ? -a : a, bps == 1 ? 0.0f : (bits[s * bps + 1] ? -a : a)};
                const double centre = delay + double(s) * period;
                const auto lo = std::size_t(std::max(0.0, std::ceil(centre - 8.0 * period)));
                const auto hi = std::min(x.size(), std::size_t(centre + 8.0 * period) + 1);
                for (std::size_t n = lo; n < hi; ++n) x[n] += sym * float(rrc((double(n) - centre) / period, beta));
            }
            double power = 0.0;
            for (auto v : x) power += std::norm(v);
            sim::rf_channel::config ch;
            ch.sample_rate_hz = fs;
            ch.es_n0_db = 12.0;
            ch.samples_per_symbol = 4;
            ch.signal_power = power / double(x.size());
            ch.frequency_offset_hz = 700.0;
            ch.seed = 82;
            ASSERT_TRUE(sim::create_rf_channel(ch)->process(x, x).ok);
            rf_demodulator::config dc;
            dc.waveform = waveform(m);
            rf_demodulator d(dc);
            std::vector<modem::llr_t> llr(d.max_llrs(x.size()));
            const auto r = d.demodulate(x, llr);
            llr.resize(r.llrs);
            EXPECT_TRUE(d.locked()) << ppm << " ppm " << to_string(m);
            // One alignment for the whole run: any symbol slip would turn the rest into errors.
            const auto ber = test::count_errors(bits, llr, bps, 3000);
            EXPECT_GT(ber.bits, 20000u * bps);
            EXPECT_LT(ber.ber(), 1e-3) << ppm << " ppm " << to_string(m) << ", " << ber.errors << " errors";
        }
    }
}

TEST(rf_modem, noise_alone_does_not_lock) {
    rf_demodulator demod({});
    sim::rf_channel::config ch;
    ch.sample_rate_hz = fs;
    ch.es_n0_db = -30.0;  // noise variance 4000x the unit signal power: effectively noise only
    ch.samples_per_symbol = 4;
    auto channel = sim::create_rf_channel(ch);
    std::vector<cf32> x(200000, cf32{0.0f, 0.0f});
    channel->process(x, x);
    std::vector<modem::llr_t> llr(demod.max_llrs(x.size()));
    auto r = demod.demodulate(x, llr);
    EXPECT_EQ(r.samples, x.size());
    EXPECT_FALSE(demod.locked());
    EXPECT_EQ(demod.stats().lock_acquired, 0u);
}

TEST(rf_modem, llrs_follow_the_soft_bit_convention) {
    // Noiseless-ish BPSK: bit 0 -> positive LLR, bit 1 -> negative, no erasures,
    // large magnitude at high SNR.
    const auto run = run_link(rf_modulation::bpsk, 20000, 20.0, 0.0, 0.0, 31);
    ASSERT_EQ(run.ber.errors, 0u);
    ASSERT_GE(run.ber.bits, 10000u);
    std::size_t big = 0;
    for (std::size_t i = 5000; i < run.llrs.size(); ++i) big += std::abs(int(run.llrs[i])) >= 60;
    EXPECT_GT(big, (run.llrs.size() - 5000) * 9 / 10);
}

TEST(rf_modem, output_full_is_resumable) {
    rf_modulator mod({waveform(rf_modulation::qpsk), 1.0f});
    const auto bits = test::random_bits(4000, 41);
    std::vector<cf32> tx(2000 * 4);
    ASSERT_TRUE(mod.modulate(bits, tx).ok);
    rf_demodulator::config dc;
    dc.waveform = waveform(rf_modulation::qpsk);
    rf_demodulator a(dc), b(dc);
    std::vector<modem::llr_t> whole(a.max_llrs(tx.size()));
    const auto ra = a.demodulate(tx, whole);
    ASSERT_EQ(ra.samples, tx.size());
    // The same stream through a 10-LLR output window, resumed until all input is used.
    std::vector<modem::llr_t> pieces;
    std::size_t done = 0;
    std::vector<modem::llr_t> small(10);
    for (int guard = 0; guard < 100000; ++guard) {
        auto r = b.demodulate(std::span<const cf32>(tx).subspan(done), small);
        pieces.insert(pieces.end(), small.begin(), small.begin() + r.llrs);
        done += r.samples;
        if (done == tx.size() && !r.output_full) break;
    }
    ASSERT_EQ(done, tx.size());
    ASSERT_EQ(pieces.size(), ra.llrs);
    EXPECT_TRUE(std::equal(pieces.begin(), pieces.end(), whole.begin()));
}

TEST(rf_modem, bad_input_is_an_error_result) {
    rf_modulator mod({waveform(rf_modulation::qpsk), 1.0f});
    std::vector<cf32> out(8);
    const std::uint8_t three[3] = {0, 1, 1};
    auto r = mod.modulate(three, out);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(std::string(r.error).find("multiple"), std::string::npos);
    const std::uint8_t four[4] = {0, 1, 1, 0};
    r = mod.modulate(four, std::span<cf32>(out).first(7));
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(mod.flush(std::span<cf32>(out).first(3)).ok);

    rf_demodulator demod({});
    std::vector<modem::llr_t> none;
    auto d = demod.demodulate(std::span<const cf32>(out), none);
    EXPECT_TRUE(d.output_full);
    EXPECT_EQ(d.samples, 0u);
    auto e = demod.demodulate({}, none);
    EXPECT_TRUE(e.ok);
    EXPECT_EQ(e.samples, 0u);
    // NaN samples (a broken front end) must not crash or poison the LLR range.
    std::vector<cf32> nan(4096, cf32{std::nanf(""), 1.0f});
    std::vector<modem::llr_t> llr(demod.max_llrs(nan.size()));
    auto n = demod.demodulate(nan, llr);
    EXPECT_EQ(n.samples, nan.size());
    for (std::size_t i = 0; i < n.llrs; ++i) EXPECT_NE(llr[i], -128);
}

TEST(rf_modem, configuration_errors_name_the_field) {
    rf_modulator::config mc;
    mc.waveform.samples_per_symbol = 1;
    try {
        rf_modulator m(mc);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("samples_per_symbol"), std::string::npos);
    }
    rf_demodulator::config dc;
    dc.carrier_bandwidth = 0.0f;
    try {
        rf_demodulator d(dc);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("carrier_bandwidth"), std::string::npos);
    }
    dc = {};
    dc.lock_off = 0.5f;
    EXPECT_THROW(rf_demodulator{dc}, std::invalid_argument);
    dc = {};
    dc.isa = "neon";
    try {
        rf_demodulator d(dc);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("isa"), std::string::npos);
    }
}

}  // namespace
}  // namespace qlink::terminal
