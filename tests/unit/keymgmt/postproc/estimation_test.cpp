// Tests keymgmt/src/postproc/estimation.cpp: decoy bounds against an analytic channel model, finite-key behaviour.
#include <gtest/gtest.h>

#include <cmath>

#include "qlink/keymgmt/estimation.hpp"

namespace qlink::keymgmt {
namespace {

// Loss eta, background yield y0, misalignment ed: the textbook model of Lo, Ma & Chen,
// Y_n = 1 - (1 - y0)(1 - eta)^n, e_n Y_n = y0 / 2 + ed (Y_n - y0).
struct channel {
    double eta = 0.1, y0 = 1e-4, ed = 0.015;
    double gain(double mu) const { return 1.0 - (1.0 - y0) * std::exp(-eta * mu); }
    double error_rate(double mu) const { return (0.5 * y0 + ed * (gain(mu) - y0)) / gain(mu); }
    double y1() const { return 1.0 - (1.0 - y0) * (1.0 - eta); }
    double e1() const { return (0.5 * y0 + ed * (y1() - y0)) / y1(); }
};

TEST(estimation, binary_entropy_values) {
    EXPECT_DOUBLE_EQ(binary_entropy(0.5), 1.0);
    EXPECT_DOUBLE_EQ(binary_entropy(0.0), 0.0);
    EXPECT_DOUBLE_EQ(binary_entropy(1.0), 0.0);
    EXPECT_NEAR(binary_entropy(0.11), 0.4999, 1e-4);
    EXPECT_NEAR(binary_entropy(0.02), 0.14144, 1e-5);
}

TEST(estimation, settings_validity) {
    decoy_settings s;
    EXPECT_TRUE(decoy_settings_valid(s));
    s.mu = {0.3, 0.2, 0.15};  // mu1 <= mu2 + mu3
    EXPECT_FALSE(decoy_settings_valid(s));
    s = {};
    s.prob[2] = 0.0;
    EXPECT_FALSE(decoy_settings_valid(s));
}

TEST(estimation, lmc_bounds_bracket_the_true_single_photon_values) {
    for (double eta : {0.3, 0.1, 0.01}) {
        const channel ch{eta, 1e-5, 0.02};
        decoy_settings s;
        s.mu = {0.5, 0.1, 0.0};
        const auto b = lmc_decoy_bounds(s, {ch.gain(0.5), ch.gain(0.1), ch.gain(0.0)},
                                        {ch.error_rate(0.5), ch.error_rate(0.1), ch.error_rate(0.0)});
        ASSERT_TRUE(b.valid);
        EXPECT_LE(b.y1_lower, ch.y1() * (1 + 1e-12));
        EXPECT_GE(b.y1_lower, 0.9 * ch.y1()) << eta;  // weak decoy: the bound is tight
        EXPECT_GE(b.e1_upper, ch.e1() * (1 - 1e-12));
        EXPECT_LE(b.e1_upper, 1.15 * ch.e1()) << eta;
        EXPECT_NEAR(b.y0, ch.y0, 1e-15);
    }
    // No decoy signal at all: no bound.
    EXPECT_FALSE(lmc_decoy_bounds(decoy_settings{}, {0.01, 0.0, 0.0}, {0.02, 0.02, 0.5}).valid);
}

// Expected counts of N pulses through `ch`, basis probability pz in both ends.
finite_key_counts expected_counts(const decoy_settings& s, const channel& ch, double n_pulses, double pz) {
    finite_key_counts c;
    for (std::size_t k = 0; k < intensity_count; ++k) {
        const double q = ch.gain(s.mu[k]);
        c.n_z[k] = static_cast<std::uint64_t>(std::llround(n_pulses * s.prob[k] * pz * pz * q));
        c.n_x[k] = static_cast<std::uint64_t>(std::llround(n_pulses * s.prob[k] * (1 - pz) * (1 - pz) * q));
        c.m_x[k] = static_cast<std::uint64_t>(std::llround(static_cast<double>(c.n_x[k]) * ch.error_rate(s.mu[k])));
    }
    return c;
}

TEST(estimation, finite_key_bounds_approach_the_truth_for_large_blocks) {
    const decoy_settings s;
    const channel ch{0.1, 1e-5, 0.015};
    const finite_key_params eps{1e-10, 1e-15};
    double prev_rate = -1;
    for (double n : {3e7, 3e8, 3e9, 3e11}) {
        const auto c = expected_counts(s, ch, n, 0.5);
        const auto r = lim2014_key_length(s, c, 0.0, eps);
        ASSERT_TRUE(r.valid) << n;
        double tau1 = 0;
        for (std::size_t k = 0; k < intensity_count; ++k) tau1 += s.prob[k] * std::exp(-s.mu[k]) * s.mu[k];
        const double true_s1 = n * 0.25 * tau1 * ch.y1();
        EXPECT_LE(r.s_z1, true_s1) << n;
        EXPECT_GE(r.phi_z, ch.e1()) << n;
        double nz = 0;
        for (auto v : c.n_z) nz += static_cast<double>(v);
        const double rate = static_cast<double>(r.length) / nz;
        EXPECT_GT(rate, prev_rate) << "finite-size penalty must shrink with the block";
        prev_rate = rate;
        if (n == 3e11) {
            EXPECT_GE(r.s_z1, 0.85 * true_s1);
            EXPECT_LE(r.phi_z, ch.e1() + 0.01);
        }
        // The bracket is exactly Lim et al.'s expression of the returned intermediates.
        const double expect = r.s_z0 + r.s_z1 - r.s_z1 * binary_entropy(r.phi_z) - 6 * std::log2(21 / eps.eps_sec) -
                              std::log2(2 / eps.eps_cor);
        EXPECT_NEAR(r.length_real, expect, 1e-6 * std::abs(expect));
    }
}

TEST(estimation, leak_and_errors_shorten_the_key) {
    const decoy_settings s;
    const finite_key_params eps;
    const auto c = expected_counts(s, channel{0.1, 1e-5, 0.015}, 1e9, 0.5);
    const auto a = lim2014_key_length(s, c, 0.0, eps);
    const auto b = lim2014_key_length(s, c, 12345.0, eps);
    EXPECT_NEAR(a.length_real - b.length_real, 12345.0, 1e-6);
    const auto noisy = lim2014_key_length(s, expected_counts(s, channel{0.1, 1e-5, 0.04}, 1e9, 0.5), 0.0, eps);
    EXPECT_LT(noisy.length, a.length);
    EXPECT_GT(noisy.phi_z, a.phi_z);
    // Far too few events: no key.
    EXPECT_LE(lim2014_key_length(s, expected_counts(s, channel{}, 1e5, 0.5), 0.0, eps).length, 0);
    // Tighter secrecy costs key.
    EXPECT_LT(lim2014_key_length(s, c, 0.0, {1e-15, 1e-15}).length, a.length);
}

}  // namespace
}  // namespace qlink::keymgmt
