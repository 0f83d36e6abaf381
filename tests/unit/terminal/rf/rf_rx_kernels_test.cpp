// Tests the native receiver's SIMD kernels: every ISA variant this CPU runs against the generic one bit for bit, and the generic one against double-precision references.
#include "rf/rf_rx_kernels.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace qlink::terminal::detail {
namespace {

std::vector<cf32> random_samples(std::size_t n, std::uint64_t seed, float scale = 1.0f) {
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> g(0.0f, scale);
    std::vector<cf32> x(n);
    for (auto& v : x) v = {g(rng), g(rng)};
    return x;
}

bool same_bits(cf32 a, cf32 b) { return std::memcmp(&a, &b, sizeof a) == 0; }

class rx_kernel_isa : public ::testing::TestWithParam<modem::isa> {
protected:
    void SetUp() override {
        auto k = rx_kernels_for(GetParam());
        if (!k || k->level != GetParam()) GTEST_SKIP() << "no " << modem::to_string(GetParam()) << " kernels here";
        kern = *k;
    }
    rx_kernels kern{};
    rx_kernels ref = rx_kernels_generic();
};

TEST_P(rx_kernel_isa, power_matches_generic_bit_for_bit) {
    for (std::size_t n : {4u, 8u, 12u, 256u, 1024u}) {
        const auto x = random_samples(n, 100 + n, 3.0f);
        const float a = kern.power(x.data(), n), b = ref.power(x.data(), n);
        EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0) << n << ": " << a << " vs " << b;
    }
}

TEST_P(rx_kernel_isa, rotate_matches_generic_bit_for_bit) {
    const std::size_t n = 256;
    const auto x = random_samples(n + 3, 7);
    const double w = 0.0123;
    cf32 p1[4], p2[4];
    for (unsigned l = 0; l < 4; ++l) p1[l] = p2[l] = std::polar(0.7f, float(0.3 + w * l));
    const cf32 step = std::polar(1.0f, float(4 * w));
    std::vector<cf32> a(n + 3), b(n + 3);
    // Unaligned input and output.
    kern.rotate(x.data() + 1, a.data() + 3, n, p1, step);
    ref.rotate(x.data() + 1, b.data() + 3, n, p2, step);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_bits(a[i + 3], b[i + 3])) << i;
    for (unsigned l = 0; l < 4; ++l) EXPECT_TRUE(same_bits(p1[l], p2[l]));
    // In place.
    std::vector<cf32> c(x.begin() + 1, x.begin() + 1 + n);
    for (unsigned l = 0; l < 4; ++l) p1[l] = std::polar(0.7f, float(0.3 + w * l));
    kern.rotate(c.data(), c.data(), n, p1, step);
    for (std::size_t i = 0; i < n; ++i) ASSERT_TRUE(same_bits(c[i], b[i + 3])) << i;
}

TEST_P(rx_kernel_isa, dot_matches_generic_bit_for_bit) {
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::size_t taps : {8u, 16u, 64u, 120u}) {
        std::vector<float> t2(2 * taps);
        for (std::size_t a = 0; a < taps; ++a) t2[2 * a] = t2[2 * a + 1] = u(rng);
        const auto x = random_samples(taps + 5, taps);
        for (std::size_t off = 0; off < 5; ++off) {
            const cf32 a = kern.dot(x.data() + off, t2.data(), 2 * taps);
            const cf32 b = ref.dot(x.data() + off, t2.data(), 2 * taps);
            ASSERT_TRUE(same_bits(a, b)) << taps << "/" << off << ": " << a << " vs " << b;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(isas, rx_kernel_isa, ::testing::ValuesIn(modem::supported_isas()),
                         [](const auto& p) { return std::string(modem::to_string(p.param)); });

// The reference itself, against sums in double: relative error of float accumulation.
TEST(rx_kernels_generic, match_double_precision_sums) {
    const auto k = rx_kernels_generic();
    const auto x = random_samples(1024, 9, 2.0f);
    double pw = 0.0;
    for (auto v : x) pw += double(v.real()) * v.real() + double(v.imag()) * v.imag();
    EXPECT_NEAR(k.power(x.data(), x.size()), pw, 1e-5 * pw);

    std::vector<float> t2(2 * 64);
    std::vector<double> taps(64);
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (std::size_t a = 0; a < 64; ++a) taps[a] = t2[2 * a] = t2[2 * a + 1] = u(rng);
    std::complex<double> want = 0.0;
    for (std::size_t a = 0; a < 64; ++a) want += std::complex<double>(x[a]) * taps[a];
    const cf32 got = k.dot(x.data(), t2.data(), t2.size());
    EXPECT_NEAR(got.real(), want.real(), 1e-4);
    EXPECT_NEAR(got.imag(), want.imag(), 1e-4);

    // 1024 samples rotated by a recursion from exact lane phasors stay within
    // 5e-5 of exact rotation (the receiver renormalises every 256).
    const double w = -0.37;
    cf32 p[4];
    for (unsigned l = 0; l < 4; ++l) p[l] = std::polar(1.0f, float(w * l));
    std::vector<cf32> y(x.size());
    k.rotate(x.data(), y.data(), x.size(), p, std::polar(1.0f, float(4 * w)));
    double worst = 0.0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        const auto exact = std::complex<double>(x[i]) * std::polar(1.0, w * double(i));
        worst = std::max(worst, std::abs(exact - std::complex<double>(y[i])) / std::abs(exact));
    }
    EXPECT_LT(worst, 5e-5);
}

TEST(rx_kernels, override_strings) {
    EXPECT_EQ(rx_kernels_for("generic")->level, modem::isa::generic);
    EXPECT_TRUE(rx_kernels_for("auto").has_value());
    EXPECT_FALSE(rx_kernels_for("neon").has_value());
    // sse41 has no variant of its own: it steps down to generic.
    EXPECT_EQ(rx_kernels_for("sse41")->level, modem::isa::generic);
    if (modem::isa_supported(modem::isa::avx2)) {
        EXPECT_EQ(rx_kernels_for("avx2")->level, modem::isa::avx2);
    }
}

}  // namespace
}  // namespace qlink::terminal::detail
