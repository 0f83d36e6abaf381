// QKD photon channel tests: simulated gains/QBERs vs the analytic decoy-state expressions; a Micius-like pass.
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "qlink/sim/qkd_channel.hpp"

namespace qlink::sim {
namespace {

struct tally {
    std::array<std::uint64_t, 3> clicks{}, sifted{}, errors{}, doubles{};
    std::uint64_t pulses = 0;
    std::uint64_t last_index = 0;
    bool ordered = true;
};

tally run(qkd_channel& ch, double eta, std::uint64_t pulses, std::size_t buffer = 4096) {
    std::vector<qkd_detection> buf(buffer);
    tally t;
    bool first = true;
    while (t.pulses < pulses) {
        auto r = ch.simulate(eta, pulses - t.pulses, buf);
        EXPECT_TRUE(r.ok);
        t.pulses += r.pulses;
        for (std::size_t i = 0; i < r.detections; ++i) {
            const auto& d = buf[i];
            int c = static_cast<int>(d.intensity);
            if (!first && d.pulse_index <= t.last_index) t.ordered = false;
            first = false;
            t.last_index = d.pulse_index;
            ++t.clicks[c];
            t.doubles[c] += d.double_click;
            if (d.alice_basis == d.bob_basis) {
                ++t.sifted[c];
                t.errors[c] += d.alice_bit != d.bob_bit;
            }
        }
    }
    return t;
}

/// |observed - expected| within 5 binomial standard deviations (false-alarm ~6e-7 per check).
void expect_binomial(std::uint64_t observed, double n, double p, const char* what) {
    double mean = n * p, sd = std::sqrt(n * p * (1 - p));
    EXPECT_NEAR(double(observed), mean, 5 * sd + 1) << what;
}

TEST(qkd_channel, simulated_gain_and_qber_match_the_analytic_expressions) {
    qkd_channel::config c;
    c.dark_count_rate_hz = 5e4;   // exaggerated noise so the Y0 terms are visible in 1e8 pulses
    c.background_rate_hz = 5e4;
    c.gate_width_s = 1e-9;
    c.misalignment_error = 0.03;
    c.seed = 71;
    for (double eta : {1e-2, 1e-3}) {
        qkd_channel ch(c);
        const std::uint64_t n = 100'000'000;
        auto t = run(ch, eta, n);
        EXPECT_EQ(t.pulses, n);
        EXPECT_TRUE(t.ordered);
        EXPECT_EQ(ch.next_pulse_index(), n);
        for (int k = 0; k < 3; ++k) {
            auto e = ch.expected(eta, static_cast<intensity_class>(k));
            // Every pulse is independently of class k and clicks: Binomial(n, p_k Q_k).
            expect_binomial(t.clicks[k], double(n), c.probabilities[k] * e.gain, "gain");
            // Sifted errors: Binomial(sifted, E_k).
            expect_binomial(t.errors[k], double(t.sifted[k]), e.qber, "qber");
            // Basis choices are independent of the click: half the clicks are sifted.
            expect_binomial(t.sifted[k], double(t.clicks[k]), 0.5, "sifting");
            // The exact model and Lo-Ma-Chen agree to first order in the small quantities.
            EXPECT_NEAR(e.gain / e.gain_lmc, 1.0, 2e-3);
            EXPECT_NEAR(e.qber, e.qber_lmc, 2e-3);
        }
        // Vacuum pulses only click on noise, and those are wrong half the time.
        EXPECT_NEAR(ch.expected(eta, intensity_class::vacuum).qber, 0.5, 1e-12);
    }
}

TEST(qkd_channel, double_clicks_and_basis_bias) {
    qkd_channel::config c;
    c.mean_photons = {5.0, 1.0, 0.0};
    c.alice_z_probability = 0.9;
    c.bob_z_probability = 0.8;
    c.misalignment_error = 0.1;
    c.seed = 72;
    qkd_channel ch(c);
    const double eta = 0.5;
    auto t = run(ch, eta, 2'000'000);
    // With m = eta * eff * mu = 1.25 photons both detectors often fire (squashed to a random bit).
    const double m = eta * c.detector_efficiency * 5.0, p = ch.noise_click_probability();
    double p_both = (1 - (1 - p) * std::exp(-m * 0.9)) * (1 - (1 - p) * std::exp(-m * 0.1));
    double p_both_mismatch = std::pow(1 - (1 - p) * std::exp(-m * 0.5), 2);
    double sift = 0.9 * 0.8 + 0.1 * 0.2;
    double expect_doubles = (sift * p_both + (1 - sift) * p_both_mismatch) / ch.expected(eta, intensity_class::signal).gain;
    expect_binomial(t.doubles[0], double(t.clicks[0]), expect_doubles, "double clicks");
    expect_binomial(t.sifted[0], double(t.clicks[0]), sift, "biased sifting");
    expect_binomial(t.errors[0], double(t.sifted[0]), ch.expected(eta, intensity_class::signal).qber, "qber");
}

TEST(qkd_channel, reproducible_bounded_and_rejects_bad_input) {
    qkd_channel::config c;
    c.seed = 73;
    qkd_channel a(c), b(c);
    std::vector<qkd_detection> x(100), y(100);
    auto ra = a.simulate(0.01, 1'000'000, x), rb = b.simulate(0.01, 1'000'000, y);
    ASSERT_EQ(ra.detections, rb.detections);
    for (std::size_t i = 0; i < ra.detections; ++i) {
        EXPECT_EQ(x[i].pulse_index, y[i].pulse_index);
        EXPECT_EQ(x[i].bob_bit, y[i].bob_bit);
    }
    // The span filled up: the call stopped at the last detection it could store.
    EXPECT_EQ(ra.detections, 100u);
    EXPECT_EQ(ra.pulses, x[99].pulse_index + 1);
    EXPECT_LT(ra.pulses, 1'000'000u);

    EXPECT_FALSE(a.simulate(1.5, 10, x).ok);
    EXPECT_FALSE(a.simulate(NAN, 10, x).ok);
    EXPECT_EQ(a.simulate(0.01, 10, {}).pulses, 0u);
    auto silent = a.simulate(0.0, 1000, x);  // eta 0 with noise: only noise clicks
    EXPECT_TRUE(silent.ok);
    c.dark_count_rate_hz = 0;
    qkd_channel dark(c);
    auto none = dark.simulate(0.0, 1'000'000'000'000ull, x);
    EXPECT_EQ(none.pulses, 1'000'000'000'000ull);
    EXPECT_EQ(none.detections, 0u);

    auto bad = [](auto mutate) {
        qkd_channel::config k;
        mutate(k);
        try {
            qkd_channel ch(k);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("<accepted>");
    };
    EXPECT_NE(bad([](auto& k) { k.probabilities = {0.5, 0.5, 0.5}; }).find("sum of probabilities"), std::string::npos);
    EXPECT_NE(bad([](auto& k) { k.probabilities = {1.2, -0.2, 0.0}; }).find("probabilities[signal]"), std::string::npos);
    EXPECT_NE(bad([](auto& k) { k.dark_count_rate_hz = -1; }).find("dark_count_rate_hz"), std::string::npos);
    EXPECT_NE(bad([](auto& k) { k.misalignment_error = 0.7; }).find("[0, 0.5]"), std::string::npos);
    EXPECT_NE(bad([](auto& k) { k.pulse_rate_hz = 0; }).find("pulse_rate_hz"), std::string::npos);
    EXPECT_NE(bad([](auto& k) { k.mean_photons[1] = -0.1; }).find("mean_photons[decoy]"), std::string::npos);
}

// Micius-like scenario (Liao et al., Nature 549, 43 (2017)): 500 km orbit, slant range 645-1200 km,
// 100 MHz decoy-state source, mu/nu/vacuum = 0.8/0.1/0 sent with probability 0.5/0.25/0.25; published
// channel loss ~22 dB at 645 km and ~35 dB at 1200 km; sifted key of order 10 kbit/s near 645 km and
// ~1 kbit/s at 1200 km with QBER 1-3 %.
// Our assumptions (not published figures): Bob's optics x detector efficiency 0.1, 100 counts/s dark +
// background per detector in a 2 ns window, misalignment 1.5 %. "Sifted key" counts signal-state pulses
// with matched bases (the decoy and vacuum pulses go to parameter estimation).
TEST(qkd_channel, micius_like_pass_rates_and_qber) {
    qkd_channel::config c;
    c.pulse_rate_hz = 100e6;
    c.mean_photons = {0.8, 0.1, 0.0};
    c.probabilities = {0.5, 0.25, 0.25};
    c.detector_efficiency = 0.1;
    c.dark_count_rate_hz = 25;
    c.background_rate_hz = 75;
    c.gate_width_s = 2e-9;
    c.misalignment_error = 0.015;
    c.seed = 74;
    struct point {
        double range_km, loss_db, seconds, rate_lo, rate_hi;
    };
    for (auto pt : {point{645, 22, 1, 5e3, 25e3}, point{1200, 35, 10, 0.3e3, 3e3}}) {
        qkd_channel ch(c);
        const double eta = std::pow(10.0, -pt.loss_db / 10);
        auto t = run(ch, eta, std::uint64_t(c.pulse_rate_hz * pt.seconds), 1 << 16);
        double sifted_rate = t.sifted[0] / pt.seconds;
        double qber = double(t.errors[0]) / t.sifted[0];
        auto e = ch.expected(eta, intensity_class::signal);
        double expected_rate = c.pulse_rate_hz * 0.5 * 0.5 * e.gain;
        RecordProperty("sifted_rate_" + std::to_string(int(pt.range_km)), std::to_string(sifted_rate));
        EXPECT_GT(sifted_rate, pt.rate_lo) << pt.range_km << " km";
        EXPECT_LT(sifted_rate, pt.rate_hi) << pt.range_km << " km";
        EXPECT_GT(qber, 0.01) << pt.range_km << " km";
        EXPECT_LT(qber, 0.03) << pt.range_km << " km";
        EXPECT_NEAR(sifted_rate / expected_rate, 1.0, 5.0 / std::sqrt(expected_rate * pt.seconds));
        EXPECT_NEAR(qber, e.qber, 5 * std::sqrt(e.qber / t.sifted[0]));
    }
}

}  // namespace
}  // namespace qlink::sim
