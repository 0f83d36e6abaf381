// Tests of OOK/PPM modulation and soft demodulation against the analytic Poisson and Gaussian expressions.
#include "qlink/modem/optical_mod.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace qlink::modem {
namespace {

double log_poisson(unsigned k, double mean) {
    if (mean <= 0.0) return k == 0 ? 0.0 : -INFINITY;
    return k * std::log(mean) - mean - std::lgamma(k + 1.0);
}

optical_config ppm(unsigned m, unsigned guard, const std::string& isa_name = "generic",
                   ppm_metric metric = ppm_metric::max_log) {
    optical_config c;
    c.format = optical_format::ppm;
    c.m = m;
    c.guard = guard;
    c.metric = metric;
    c.isa = isa_name;
    return c;
}

optical_config ook(const std::string& isa_name = "generic") {
    optical_config c;
    c.format = optical_format::ook;
    c.isa = isa_name;
    return c;
}

// Slots -> Poisson counts with mean Kb + Ks * pulse.
std::vector<std::uint16_t> photon_counts(const std::vector<std::uint8_t>& slots, double ks, double kb, std::mt19937_64& rng) {
    std::poisson_distribution<int> dark(kb), lit(ks + kb);
    std::vector<std::uint16_t> out(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i)
        out[i] = static_cast<std::uint16_t>(slots[i] ? lit(rng) : (kb > 0 ? dark(rng) : 0));
    return out;
}

std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

TEST(optical_modulate, ook_and_ppm_slot_patterns) {
    const std::vector<std::uint8_t> bits{0xA5, 0x3C};  // 1010 0101 0011 1100
    std::vector<std::uint8_t> slots(16);
    ASSERT_EQ(optical_modulate(ook(), bits, 16, slots).status, optical_status::ok);
    EXPECT_EQ(slots, (std::vector<std::uint8_t>{1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 0, 0}));
    // 16-PPM with 4 guard slots: symbols 0xA, 0x5, 0x3, 0xC.
    std::vector<std::uint8_t> ppm_slots(4 * 20);
    ASSERT_EQ(optical_modulate(ppm(16, 4), bits, 16, ppm_slots).status, optical_status::ok);
    for (unsigned s = 0; s < 4; ++s) {
        const unsigned sym[] = {0xA, 0x5, 0x3, 0xC};
        for (unsigned j = 0; j < 20; ++j) EXPECT_EQ(ppm_slots[s * 20 + j], j == sym[s] ? 1 : 0) << s << "," << j;
    }
    // Wrong lengths are errors, not crashes.
    EXPECT_EQ(optical_modulate(ppm(16, 4), bits, 15, ppm_slots).status, optical_status::bad_length);
    EXPECT_EQ(optical_modulate(ppm(16, 4), bits, 24, ppm_slots).status, optical_status::bad_length);
    std::vector<std::uint8_t> short_slots(79);
    EXPECT_EQ(optical_modulate(ppm(16, 4), bits, 16, short_slots).status, optical_status::bad_length);
}

TEST(optical_config, rejects_bad_values) {
    EXPECT_THROW(create_optical_demodulator(ppm(3, 0)), std::invalid_argument);
    EXPECT_THROW(create_optical_demodulator(ppm(512, 0)), std::invalid_argument);
    EXPECT_THROW(create_optical_demodulator(ppm(2, 0)), std::invalid_argument);
    auto c = ook();
    c.llr_scale = 0.0f;
    EXPECT_THROW(create_optical_demodulator(c), std::invalid_argument);
    c = ook("mips");
    EXPECT_THROW(create_optical_demodulator(c), std::invalid_argument);
}

TEST(optical_demod, ook_poisson_llr_matches_analytic_expression) {
    auto dem = create_optical_demodulator(ook());
    const poisson_estimate est{4.0f, 0.5f};
    std::vector<std::uint16_t> counts;
    for (unsigned k = 0; k < 20; ++k) counts.push_back(static_cast<std::uint16_t>(k));
    std::vector<llr_t> llr(counts.size());
    ASSERT_EQ(dem->demod_counts(counts, est, llr).status, optical_status::ok);
    for (unsigned k = 0; k < 20; ++k) {
        // ln P(k | dark) - ln P(k | pulsed) from the Poisson pmfs themselves.
        const double exact = log_poisson(k, 0.5) - log_poisson(k, 4.5);
        const double want = std::clamp(8.0 * exact, -127.0, 127.0);
        EXPECT_NEAR(llr[k], want, 0.51) << "k=" << k;
    }
    EXPECT_GT(llr[0], 0);   // no photon: bit 0 (dark) more likely
    EXPECT_LT(llr[3], 0);   // three photons against 0.5 background: a pulse
}

TEST(optical_demod, ppm_exact_llr_matches_brute_force_posterior) {
    auto dem = create_optical_demodulator(ppm(8, 0, "generic", ppm_metric::exact));
    const double ks = 3.0, kb = 0.7;
    std::mt19937_64 rng(3);
    std::vector<std::uint8_t> slots(8 * 40);
    const auto bytes = random_bytes(15, rng);
    optical_modulate(ppm(8, 0), bytes, 120, slots);
    const auto counts = photon_counts(slots, ks, kb, rng);
    std::vector<llr_t> llr(120);
    ASSERT_EQ(dem->demod_counts(counts, {3.0f, 0.7f}, llr).status, optical_status::ok);
    for (std::size_t s = 0; s < 40; ++s) {
        // Posterior of each symbol from the product of all slot pmfs.
        double p[8];
        for (unsigned sym = 0; sym < 8; ++sym) {
            double lp = 0;
            for (unsigned j = 0; j < 8; ++j) lp += log_poisson(counts[s * 8 + j], j == sym ? ks + kb : kb);
            p[sym] = std::exp(lp);
        }
        for (unsigned b = 0; b < 3; ++b) {
            double p0 = 0, p1 = 0;
            for (unsigned sym = 0; sym < 8; ++sym) ((sym >> (2 - b)) & 1 ? p1 : p0) += p[sym];
            const double want = std::clamp(8.0 * std::log(p0 / p1), -127.0, 127.0);
            EXPECT_NEAR(llr[s * 3 + b], want, 0.51) << "symbol " << s << " bit " << b;
        }
    }
}

TEST(optical_demod, ppm_max_log_agrees_in_sign_with_exact_and_is_bounded_by_it) {
    auto ml = create_optical_demodulator(ppm(16, 2, "generic"));
    auto ex = create_optical_demodulator(ppm(16, 2, "generic", ppm_metric::exact));
    std::mt19937_64 rng(4);
    std::vector<std::uint8_t> slots(18 * 500);
    optical_modulate(ppm(16, 2), random_bytes(250, rng), 2000, slots);
    const auto counts = photon_counts(slots, 5.0, 0.3, rng);
    std::vector<llr_t> a(2000), b(2000);
    ml->demod_counts(counts, {5.0f, 0.3f}, a);
    ex->demod_counts(counts, {5.0f, 0.3f}, b);
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::abs(b[i]) >= 20) {
            EXPECT_EQ(a[i] < 0, b[i] < 0) << i;
        }
        // Max-log overstates reliability at most by ln(M/2) nats.
        EXPECT_LE(std::abs(int{a[i]} - int{b[i]}), static_cast<int>(8.0 * std::log(8.0)) + 1) << i;
    }
}

double ppm_uncoded_ber_no_background(double ks) { return 0.5 * std::exp(-ks); }

TEST(optical_demod, uncoded_ppm_ber_matches_theory_without_background) {
    // Kb = 0: a symbol is lost only when no signal photon arrives (e^-Ks);
    // then every bit LLR is 0 and decides 0, wrong for half the bits.
    for (unsigned m : {4u, 64u, 256u}) {
        auto dem = create_optical_demodulator(ppm(m, m / 4, "generic"));
        std::mt19937_64 rng(5 + m);
        const unsigned bps = static_cast<unsigned>(std::log2(m));
        const std::size_t nsym = 40000 / bps * (m > 64 ? 1 : 2);
        const std::size_t nbits = nsym * bps;
        const auto bytes = random_bytes((nbits + 7) / 8, rng);
        std::vector<std::uint8_t> slots(nsym * (m + m / 4));
        ASSERT_EQ(optical_modulate(ppm(m, m / 4), bytes, nbits, slots).status, optical_status::ok);
        const double ks = 2.0;
        const auto counts = photon_counts(slots, ks, 0.0, rng);
        std::vector<llr_t> llr(nbits);
        ASSERT_EQ(dem->demod_counts(counts, {static_cast<float>(ks), 0.0f}, llr).status, optical_status::ok);
        std::size_t errors = 0;
        for (std::size_t i = 0; i < nbits; ++i) errors += hard_bit(llr[i]) != ((bytes[i >> 3] >> (7 - (i & 7))) & 1);
        const double ber = static_cast<double>(errors) / static_cast<double>(nbits);
        const double theory = ppm_uncoded_ber_no_background(ks);
        // Binomial standard deviation of the estimate, 5 sigma.
        const double tol = 5.0 * std::sqrt(theory / static_cast<double>(nbits));
        EXPECT_NEAR(ber, theory, tol) << "M=" << m;
    }
}

TEST(optical_demod, uncoded_ook_poisson_ber_matches_theory) {
    const double ks = 6.0, kb = 0.4;
    auto dem = create_optical_demodulator(ook());
    std::mt19937_64 rng(6);
    const std::size_t n = 200000;
    const auto bytes = random_bytes(n / 8, rng);
    std::vector<std::uint8_t> slots(n);
    optical_modulate(ook(), bytes, n, slots);
    const auto counts = photon_counts(slots, ks, kb, rng);
    std::vector<llr_t> llr(n);
    dem->demod_counts(counts, {static_cast<float>(ks), static_cast<float>(kb)}, llr);
    std::size_t errors = 0;
    for (std::size_t i = 0; i < n; ++i) errors += hard_bit(llr[i]) != slots[i];
    // Decide "pulse" when the quantised LLR is negative: 8 (Ks - k a) < -0.5.
    const double a = std::log1p(ks / kb);
    double p_false = 0, p_miss = 0;
    for (unsigned k = 0; k < 60; ++k) {
        const bool pulse = 8.0 * (ks - k * a) < -0.5;
        if (pulse) p_false += std::exp(log_poisson(k, kb));
        else p_miss += std::exp(log_poisson(k, ks + kb));
    }
    const double theory = 0.5 * (p_false + p_miss);
    const double ber = static_cast<double>(errors) / static_cast<double>(n);
    EXPECT_NEAR(ber, theory, 5.0 * std::sqrt(theory / static_cast<double>(n)));
}

TEST(optical_demod, uncoded_ook_gaussian_ber_matches_q_function) {
    auto dem = create_optical_demodulator(ook());
    std::mt19937_64 rng(7);
    const std::size_t n = 200000;
    const double mu0 = 0.1, mu1 = 1.1, sigma = 0.3;
    const auto bytes = random_bytes(n / 8, rng);
    std::vector<std::uint8_t> slots(n);
    optical_modulate(ook(), bytes, n, slots);
    std::normal_distribution<double> noise(0.0, sigma);
    std::vector<float> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>((slots[i] ? mu1 : mu0) + noise(rng));
    std::vector<llr_t> llr(n);
    ASSERT_EQ(dem->demod_samples(y, {0.1f, 0.3f, 1.1f, 0.3f}, llr).status, optical_status::ok);
    std::size_t errors = 0;
    for (std::size_t i = 0; i < n; ++i) errors += hard_bit(llr[i]) != slots[i];
    const double theory = 0.5 * std::erfc((mu1 - mu0) / (2.0 * sigma) / std::sqrt(2.0));
    const double ber = static_cast<double>(errors) / static_cast<double>(n);
    EXPECT_NEAR(ber, theory, 5.0 * std::sqrt(theory / static_cast<double>(n)));
    // The LLR of a sample equals the Gaussian log-likelihood ratio.
    std::vector<float> one{0.8f};
    std::vector<llr_t> l1(1);
    dem->demod_samples(one, {0.1f, 0.3f, 1.1f, 0.3f}, l1);
    const double want = 8.0 * ((0.8 - 1.1) * (0.8 - 1.1) - (0.8 - 0.1) * (0.8 - 0.1)) / (2 * 0.09);
    EXPECT_NEAR(l1[0], std::clamp(want, -127.0, 127.0), 0.51);
}

TEST(optical_demod, tracking_follows_a_fade) {
    // Two blocks, the second 6 dB weaker: the estimates follow and the LLR
    // magnitudes of the weak block shrink.
    for (bool guard : {false, true}) {
        auto cfg = ppm(16, guard ? 4 : 0);
        auto dem = create_optical_demodulator(cfg);
        std::mt19937_64 rng(8);
        const std::size_t nsym = 4096, per = 16 + (guard ? 4 : 0);
        std::vector<std::uint8_t> slots(nsym * per);
        optical_modulate(cfg, random_bytes(nsym / 2, rng), nsym * 4, slots);
        for (double ks : {8.0, 2.0}) {
            const double kb = 0.2;
            const auto counts = photon_counts(slots, ks, kb, rng);
            const auto est = dem->estimate_counts(counts);
            EXPECT_NEAR(est.signal, ks, 0.08 * ks) << "guard " << guard;
            EXPECT_NEAR(est.background, kb, 0.05) << "guard " << guard;
        }
    }
    auto dem = create_optical_demodulator(ook());
    std::mt19937_64 rng(9);
    const std::size_t n = 1 << 15;
    std::vector<std::uint8_t> slots(n);
    optical_modulate(ook(), random_bytes(n / 8, rng), n, slots);
    double mean_mag[2];
    int idx = 0;
    for (double ks : {10.0, 2.5}) {
        const auto counts = photon_counts(slots, ks, 0.5, rng);
        const auto est = dem->estimate_counts(counts);
        EXPECT_NEAR(est.signal, ks, 0.1 * ks);
        EXPECT_NEAR(est.background, 0.5, 0.15);
        std::vector<llr_t> llr(n);
        ASSERT_EQ(dem->demod_counts_tracked(counts, llr).status, optical_status::ok);
        double sum = 0;
        for (auto v : llr) sum += std::abs(v);
        mean_mag[idx++] = sum / n;
    }
    EXPECT_LT(mean_mag[1], 0.7 * mean_mag[0]);
    // Gaussian tracking, signal-dependent variance.
    std::normal_distribution<double> n0(0.05, 0.1), n1(1.0, 0.25);
    std::vector<float> y(n);
    for (std::size_t i = 0; i < n; ++i) y[i] = static_cast<float>(slots[i] ? n1(rng) : n0(rng));
    const auto g = dem->estimate_samples(y);
    EXPECT_NEAR(g.mu0, 0.05, 0.02);
    EXPECT_NEAR(g.mu1, 1.0, 0.03);
    EXPECT_NEAR(g.sigma0, 0.1, 0.02);
    EXPECT_NEAR(g.sigma1, 0.25, 0.03);
}

TEST(optical_demod, bad_input_is_an_error_result) {
    auto dem = create_optical_demodulator(ppm(16, 4));
    std::vector<std::uint16_t> counts(20 * 3);
    std::vector<llr_t> llr(12);
    EXPECT_EQ(dem->demod_counts(counts, {1, 1}, llr).status, optical_status::ok);
    std::vector<llr_t> wrong(11);
    EXPECT_EQ(dem->demod_counts(counts, {1, 1}, wrong).status, optical_status::bad_length);
    std::vector<std::uint16_t> partial(59);
    EXPECT_EQ(dem->demod_counts(partial, {1, 1}, llr).status, optical_status::bad_length);
    EXPECT_EQ(dem->demod_counts({}, {1, 1}, {}).status, optical_status::bad_length);
    EXPECT_EQ(dem->demod_counts(counts, {-1.0f, 1}, llr).status, optical_status::bad_estimate);
    EXPECT_EQ(dem->demod_counts(counts, {NAN, 1}, llr).status, optical_status::bad_estimate);
    std::vector<float> y(60, NAN);
    EXPECT_EQ(dem->demod_samples(y, {0, 0, 1, 1}, llr).status, optical_status::bad_estimate);
    EXPECT_EQ(dem->demod_samples(y, {0, 1, 1, 1}, llr).status, optical_status::ok);
    for (auto v : llr) EXPECT_EQ(v, 0);  // NaN samples carry no information
    // An estimate on a block with no signal yields erasures, not garbage.
    std::vector<std::uint16_t> zeros(60, 0);
    EXPECT_EQ(dem->demod_counts_tracked(zeros, llr).status, optical_status::ok);
    for (auto v : llr) EXPECT_EQ(v, 0);
}

class optical_isa : public ::testing::TestWithParam<isa> {};

TEST_P(optical_isa, matches_generic_bit_for_bit) {
    const std::string name(to_string(GetParam()));
    std::mt19937_64 rng(10);
    for (unsigned m : {4u, 16u, 32u, 256u}) {
        for (unsigned guard : {0u, 3u}) {
            auto ref = create_optical_demodulator(ppm(m, guard, "generic"));
            auto dut = create_optical_demodulator(ppm(m, guard, name));
            const unsigned bps = static_cast<unsigned>(std::log2(m));
            const std::size_t nsym = 301;
            std::vector<std::uint8_t> slots(nsym * (m + guard));
            optical_modulate(ppm(m, guard), random_bytes((nsym * bps + 7) / 8, rng), nsym * bps, slots);
            auto counts = photon_counts(slots, 3.0, 0.8, rng);
            counts[5] = 65535;  // extreme count
            std::vector<llr_t> a(nsym * bps), b(a.size());
            ref->demod_counts(counts, {3.0f, 0.8f}, a);
            dut->demod_counts(counts, {3.0f, 0.8f}, b);
            ASSERT_EQ(a, b) << "M=" << m << " guard=" << guard;
        }
    }
    auto ref = create_optical_demodulator(ook());
    auto dut = create_optical_demodulator(ook(name));
    std::vector<std::uint16_t> counts(1000 + 7);
    for (auto& c : counts) c = static_cast<std::uint16_t>(rng() % 40);
    counts[3] = 65535;
    std::vector<llr_t> a(counts.size()), b(counts.size());
    for (poisson_estimate est : {poisson_estimate{4.0f, 0.5f}, poisson_estimate{0.3f, 2.0f}, poisson_estimate{20.0f, 0.0f}}) {
        ref->demod_counts(counts, est, a);
        dut->demod_counts(counts, est, b);
        ASSERT_EQ(a, b);
    }
}

INSTANTIATE_TEST_SUITE_P(isas, optical_isa, ::testing::ValuesIn(supported_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });

}  // namespace
}  // namespace qlink::modem
