// Statistical tests (fixed seeds) of the fading, pointing-jitter and cloud processes.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "qlink/sim/clouds.hpp"
#include "qlink/sim/fading.hpp"
#include "qlink/sim/pointing.hpp"
#include "qlink/sim/turbulence.hpp"

namespace qlink::sim {
namespace {

struct moments {
    double mean = 0, var = 0;
};

moments measure(const std::vector<float>& v) {
    double s = 0, s2 = 0;
    for (float x : v) s += x;
    double m = s / v.size();
    for (float x : v) s2 += (x - m) * (x - m);
    return {m, s2 / v.size()};
}

double autocovariance(const std::vector<float>& v, std::size_t lag, const moments& mo) {
    double s = 0;
    for (std::size_t i = 0; i + lag < v.size(); ++i) s += (v[i] - mo.mean) * (v[i + lag] - mo.mean);
    return s / (v.size() - lag) / mo.var;
}

std::vector<float> run(gain_source& src, std::size_t n) {
    std::vector<float> v(n);
    // Odd chunk sizes: the process must continue seamlessly across calls.
    std::size_t done = 0, chunk = 777;
    while (done < n) {
        std::size_t k = std::min(chunk, n - done);
        auto r = src.generate(std::span<float>(v.data() + done, k));
        EXPECT_EQ(r.written, k);
        done += k;
        chunk = chunk * 3 % 10007 + 1;
    }
    return v;
}

struct fading_case {
    fading_marginal marginal;
    double si;       // configured scintillation index (lognormal / alpha = beta)
    double alpha;    // explicit gamma-gamma parameters, 0 = derived
    double beta;
    std::uint64_t seed;
};

class fading_statistics : public ::testing::TestWithParam<fading_case> {};

// 2e6 samples at 10 kS/s with a 1 ms coherence time (10 samples): the effective number of
// independent samples is ~1e5, so the standard error of the variance is ~1-3 %; tolerances:
// mean within 1 %, scintillation index within 5 %, autocorrelation at the coherence time 1/e +- 0.02.
TEST_P(fading_statistics, marginal_and_correlation) {
    const auto& p = GetParam();
    fading_process::config c;
    c.marginal = p.marginal;
    c.scintillation_index = p.si;
    c.gg_alpha = p.alpha;
    c.gg_beta = p.beta;
    c.coherence_time_s = 1e-3;
    c.sample_rate_hz = 10e3;
    c.seed = p.seed;
    auto f = create_fading_process(c);
    double target = f->scintillation_index();
    if (p.alpha > 0) target = 1 / p.alpha + 1 / p.beta + 1 / (p.alpha * p.beta);
    if (p.alpha == 0) {
        EXPECT_NEAR(target, p.si, 1e-3 * p.si);  // the table reproduces the marginal
    }
    auto v = run(*f, 2'000'000);
    for (float x : v) ASSERT_TRUE(x >= 0.0f && std::isfinite(x));
    auto m = measure(v);
    EXPECT_NEAR(m.mean, 1.0, 0.01);
    EXPECT_NEAR(m.var / target, 1.0, 0.05) << "measured scintillation index " << m.var << " target " << target;
    EXPECT_NEAR(autocovariance(v, 10, m), std::exp(-1.0), 0.02);
    // Shorter lags are more, longer lags less correlated.
    EXPECT_GT(autocovariance(v, 3, m), 0.6);
    EXPECT_LT(autocovariance(v, 40, m), 0.1);
}

INSTANTIATE_TEST_SUITE_P(
    sim, fading_statistics,
    ::testing::Values(fading_case{fading_marginal::lognormal, 0.06, 0, 0, 11},   // HV5/7 1550 nm zenith
                      fading_case{fading_marginal::lognormal, 0.4, 0, 0, 12},
                      fading_case{fading_marginal::gamma_gamma, 0.2, 0, 0, 13},
                      fading_case{fading_marginal::gamma_gamma, 1.0, 0, 0, 14},
                      fading_case{fading_marginal::gamma_gamma, 0, 4.04, 1.94, 15}));  // 1550 nm at 10 deg

TEST(fading, same_seed_same_samples_and_gamma_gamma_from_turbulence) {
    turbulence_model m({});
    turbulence_model::query q;
    q.elevation_rad = 0.3;
    auto t = m.evaluate(q);
    fading_process::config c;
    c.marginal = fading_marginal::gamma_gamma;
    c.gg_alpha = t.gg_alpha;
    c.gg_beta = t.gg_beta;
    c.seed = 99;
    auto a = create_fading_process(c), b = create_fading_process(c);
    EXPECT_NEAR(a->scintillation_index(), t.scintillation_point, 2e-3 * t.scintillation_point);
    std::vector<float> x(5000), y(5000);
    a->generate(x);
    b->generate(y);
    EXPECT_EQ(x, y);
    c.seed = 100;
    auto d = create_fading_process(c);
    d->generate(y);
    EXPECT_NE(x, y);
}

TEST(fading, bad_configuration_throws) {
    fading_process::config c;
    c.scintillation_index = -0.1;
    EXPECT_THROW(create_fading_process(c), std::invalid_argument);
    c = {};
    c.coherence_time_s = 1e-6;  // shorter than one sample at 10 kS/s
    EXPECT_THROW(create_fading_process(c), std::invalid_argument);
    c = {};
    c.sample_rate_hz = 0;
    EXPECT_THROW(create_fading_process(c), std::invalid_argument);
    c = {};
    c.marginal = fading_marginal::gamma_gamma;
    c.gg_alpha = 0.01;
    c.gg_beta = 3;
    EXPECT_THROW(create_fading_process(c), std::invalid_argument);
    std::vector<float> empty;
    EXPECT_EQ(create_fading_process({})->generate(empty).written, 0u);
}

TEST(pointing, unbiased_mean_loss_is_theta2_over_theta2_plus_4sigma2) {
    for (double ratio : {0.2, 0.5, 1.0}) {
        pointing_jitter::config c;
        c.divergence_rad = 10e-6;
        c.jitter_rad = ratio * 10e-6;
        c.correlation_time_s = 1e-3;
        c.sample_rate_hz = 10e3;
        c.seed = 21;
        pointing_jitter p(c);
        double expect = 1.0 / (1.0 + 4 * ratio * ratio);
        EXPECT_NEAR(p.mean_loss(), expect, 1e-12);
        auto v = run(p, 1'000'000);
        auto m = measure(v);
        // ~1e5 independent samples of a variable in [0,1]: mean within 1 % relative.
        EXPECT_NEAR(m.mean / expect, 1.0, 0.01) << ratio;
        // Beta(gamma, 1): variance gamma / ((gamma + 1)^2 (gamma + 2)), gamma = theta^2 / (4 sigma^2).
        double g = 1.0 / (4 * ratio * ratio);
        EXPECT_NEAR(m.var / (g / ((g + 1) * (g + 1) * (g + 2))), 1.0, 0.05) << ratio;
        for (float x : v) ASSERT_TRUE(x > 0.0f && x <= 1.0f);
    }
}

TEST(pointing, biased_mean_loss) {
    pointing_jitter::config c;
    c.divergence_rad = 10e-6;
    c.jitter_rad = 3e-6;
    c.bias_rad = 4e-6;
    c.correlation_time_s = 1e-3;
    c.seed = 22;
    pointing_jitter p(c);
    auto m = measure(run(p, 1'000'000));
    EXPECT_NEAR(m.mean / p.mean_loss(), 1.0, 0.01);
    c.divergence_rad = 0;
    EXPECT_THROW(pointing_jitter{c}, std::invalid_argument);
}

TEST(clouds, cloudy_fraction_and_mean_durations) {
    cloud_process::config c;
    c.mean_clear_s = 2.0;
    c.mean_cloudy_s = 1.0;
    c.cloudy_transmittance = 0.05f;
    c.sample_rate_hz = 100.0;
    c.seed = 31;
    cloud_process cl(c);
    auto v = run(cl, 2'000'000);  // 20000 s, ~6700 clear/cloudy cycles
    std::size_t cloudy = 0, runs_clear = 0, runs_cloudy = 0;
    for (std::size_t i = 0; i < v.size(); ++i) {
        bool cd = v[i] < 0.5f;
        cloudy += cd;
        if (i + 1 == v.size() || (v[i + 1] < 0.5f) != cd) (cd ? runs_cloudy : runs_clear) += 1;
    }
    double frac = double(cloudy) / v.size();
    // Fraction 1/3: the standard error over ~6700 cycles is ~0.005; accept +- 0.02.
    EXPECT_NEAR(frac, 1.0 / 3.0, 0.02);
    double mean_cloudy_s = cloudy / 100.0 / runs_cloudy, mean_clear_s = (v.size() - cloudy) / 100.0 / runs_clear;
    EXPECT_NEAR(mean_cloudy_s, 1.0, 0.06);
    EXPECT_NEAR(mean_clear_s, 2.0, 0.12);
    for (float x : v) ASSERT_TRUE(x == 1.0f || x == 0.05f);
    c.mean_clear_s = -1;
    EXPECT_THROW(cloud_process{c}, std::invalid_argument);
}

}  // namespace
}  // namespace qlink::sim
