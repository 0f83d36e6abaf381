// RF channel tests: Es/N0, Doppler offset and rate, phase noise, rain/shadowing measured from the output.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <numbers>
#include <random>
#include <stdexcept>
#include <vector>

#include "qlink/sim/rf_channel.hpp"

namespace qlink::sim {
namespace {

using cf = std::complex<float>;

std::vector<cf> qpsk(std::size_t n, std::size_t sps, std::uint64_t seed) {
    std::mt19937_64 r(seed);
    std::vector<cf> v(n * sps);
    const float a = static_cast<float>(std::sqrt(0.5));
    for (std::size_t i = 0; i < n; ++i) {
        cf s((r() & 1) ? a : -a, (r() & 2) ? a : -a);
        for (std::size_t k = 0; k < sps; ++k) v[i * sps + k] = s;
    }
    return v;
}

/// Least-squares fit of the unwrapped phase increments: mean frequency and its slope.
void fit_frequency(const std::vector<cf>& y, double fs, double& f_mid, double& rate) {
    const std::size_t n = y.size() - 1;
    double st = 0, sf = 0, stt = 0, stf = 0;
    for (std::size_t i = 0; i < n; ++i) {
        double f = std::arg(std::complex<double>(y[i + 1]) * std::conj(std::complex<double>(y[i]))) * fs /
                   (2 * std::numbers::pi);
        double t = (i + 0.5) / fs;
        st += t;
        sf += f;
        stt += t * t;
        stf += t * f;
    }
    rate = (n * stf - st * sf) / (n * stt - st * st);
    f_mid = sf / n;
}

TEST(rf_channel, measured_es_n0_matches_configuration) {
    for (double sps : {1.0, 4.0}) {
        for (double esn0 : {0.0, 15.0}) {
            rf_channel::config c;
            c.es_n0_db = esn0;
            c.samples_per_symbol = sps;
            c.seed = 61;
            auto ch = create_rf_channel(c);
            auto x = qpsk(1'000'000 / std::size_t(sps), std::size_t(sps), 7);
            std::vector<cf> y(x.size());
            ASSERT_TRUE(ch->process(x, y).ok);
            double ps = 0, pn = 0;
            for (std::size_t i = 0; i < x.size(); ++i) {
                ps += std::norm(x[i]);
                pn += std::norm(y[i] - x[i]);
            }
            ps /= x.size();
            pn /= x.size();
            // Es = P_s * sps, N0 = noise power per sample (bandwidth = sample rate); 1e6 samples: +-0.03 dB.
            double measured_db = 10 * std::log10(ps * sps / pn);
            EXPECT_NEAR(measured_db, esn0, 0.03) << "sps " << sps;
        }
    }
}

TEST(rf_channel, doppler_offset_and_rate_from_the_output) {
    rf_channel::config c;
    c.sample_rate_hz = 1e6;
    c.frequency_offset_hz = 12'345.0;
    c.frequency_rate_hz_s = -2'000.0;  // LEO S-band is a few hundred Hz/s, X-band a few kHz/s
    c.es_n0_db = 30.0;
    c.seed = 62;
    auto ch = create_rf_channel(c);
    std::vector<cf> x(1'000'000, cf(1.0f, 0.0f)), y(x.size());
    // In pieces: the phase must be continuous across calls.
    for (std::size_t off = 0; off < x.size(); off += 100'000)
        ASSERT_TRUE(ch->process({x.data() + off, 100'000}, {y.data() + off, 100'000}).ok);
    double f_mid, rate;
    fit_frequency(y, 1e6, f_mid, rate);
    // Expected mean over 1 s: f0 + fdot * 0.5 s. Phase noise at 30 dB SNR averages out over 1e6 steps.
    EXPECT_NEAR(f_mid, 12'345.0 - 1'000.0, 1.0);
    EXPECT_NEAR(rate, -2'000.0, 10.0);
    EXPECT_NEAR(ch->frequency_offset_hz(), 12'345.0 - 2'000.0, 1e-6);
    EXPECT_NEAR(ch->elapsed_s(), 1.0, 1e-9);

    // Doppler updated from the pass: no phase jump at the switch, new frequency after it.
    c.es_n0_db = 100.0;
    c.add_noise = false;
    auto clean = create_rf_channel(c);
    std::vector<cf> a(100'000, cf(1, 0)), b(100'000);
    clean->process({a.data(), 1000}, {b.data(), 1000});
    const cf last = b[999];
    const double f_before = clean->frequency_offset_hz();
    clean->set_doppler(-50'000.0, 0.0);
    EXPECT_DOUBLE_EQ(clean->frequency_offset_hz(), -50'000.0);
    clean->process(a, b);
    // liquid-dsp 1.5's NCO resolves the phase to ~3 mrad (sine table): allow 2 quantisation steps.
    // The step into the first new sample still runs at the old frequency (phase continuity).
    double step = std::arg(std::complex<double>(b[0]) * std::conj(std::complex<double>(last)));
    EXPECT_NEAR(step, 2 * std::numbers::pi * f_before / 1e6, 7e-3);
    step = std::arg(std::complex<double>(b[1]) * std::conj(std::complex<double>(b[0])));
    EXPECT_NEAR(step, 2 * std::numbers::pi * -50'000.0 / 1e6, 7e-3);
    double fm, r;
    fit_frequency(b, 1e6, fm, r);
    // Over 1e5 samples the table error contributes < 0.01 Hz to the mean frequency.
    EXPECT_NEAR(fm, -50'000.0, 0.02);
}

TEST(rf_channel, phase_noise_is_a_wiener_process_with_the_linewidth) {
    rf_channel::config c;
    c.sample_rate_hz = 1e6;
    c.phase_noise_linewidth_hz = 100.0;
    c.add_noise = false;
    c.seed = 63;
    auto ch = create_rf_channel(c);
    std::vector<cf> x(500'000, cf(1, 0)), y(x.size());
    ch->process(x, y);
    double s = 0, s2 = 0;
    for (std::size_t i = 0; i + 1 < y.size(); ++i) {
        double d = std::arg(std::complex<double>(y[i + 1]) * std::conj(std::complex<double>(y[i])));
        s += d;
        s2 += d * d;
    }
    double n = y.size() - 1, var = s2 / n - (s / n) * (s / n);
    // Increment variance 2 pi linewidth / fs; float NCO resolution adds < 1e-10 rad^2.
    EXPECT_NEAR(var / (2 * std::numbers::pi * 100.0 / 1e6), 1.0, 0.02);
}

TEST(rf_channel, rain_and_shadowing) {
    rf_channel::config c;
    c.add_noise = false;
    c.rain_attenuation_db = 3.0;
    auto ch = create_rf_channel(c);
    std::vector<cf> x(1000, cf(1, 0)), y(1000);
    ch->process(x, y);
    for (auto v : y) EXPECT_NEAR(std::norm(v), std::pow(10.0, -0.3), 1e-5);

    c.rain_attenuation_db = 2.0;
    c.shadowing_sigma_db = 4.0;
    c.shadowing_correlation_s = 1e-3;
    c.sample_rate_hz = 1e5;
    c.seed = 64;
    ch = create_rf_channel(c);
    std::vector<cf> xs(2'000'000, cf(1, 0)), ys(xs.size());
    ch->process(xs, ys);
    double m = 0, m2 = 0;
    for (auto v : ys) {
        double db = 10 * std::log10(std::norm(v));
        m += db;
        m2 += db * db;
    }
    m /= ys.size();
    double sd = std::sqrt(m2 / ys.size() - m * m);
    // 2e6 samples over 20 s with a 1 ms correlation: ~1e4 independent values, se(mean) ~ 0.04 dB.
    EXPECT_NEAR(m, -2.0, 0.15);
    EXPECT_NEAR(sd, 4.0, 0.15);
}

TEST(rf_channel, seeded_and_bad_input) {
    rf_channel::config c;
    c.seed = 65;
    c.phase_noise_linewidth_hz = 10;
    auto a = create_rf_channel(c), b = create_rf_channel(c);
    auto x = qpsk(1000, 1, 3);
    std::vector<cf> ya(1000), yb(1000);
    a->process(x, ya);
    b->process(x, yb);
    EXPECT_EQ(ya, yb);
    std::vector<cf> small(10);
    auto r = a->process(x, small);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.samples, 0u);
    EXPECT_TRUE(a->process({}, {}).ok);
    // In place.
    std::vector<cf> z = x;
    EXPECT_TRUE(a->process(z, z).ok);

    c = {};
    c.frequency_offset_hz = 600e3;  // beyond fs/2
    EXPECT_THROW(create_rf_channel(c), std::invalid_argument);
    c = {};
    c.phase_noise_linewidth_hz = -1;
    EXPECT_THROW(create_rf_channel(c), std::invalid_argument);
    c = {};
    c.samples_per_symbol = 0.5;
    EXPECT_THROW(create_rf_channel(c), std::invalid_argument);
    c = {};
    c.es_n0_db = NAN;
    EXPECT_THROW(create_rf_channel(c), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::sim
