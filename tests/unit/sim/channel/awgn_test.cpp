// Tests the BPSK/AWGN channel: noise variance from Eb/N0 and rate, BER vs theory, seeding, int8 output.
#include "qlink/sim/awgn.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace qlink::sim {
namespace {

TEST(awgn, noise_variance_follows_ebn0_and_rate) {
    bpsk_awgn_channel::config c;
    c.ebn0_db = 3.0;
    c.code_rate = 0.5;
    bpsk_awgn_channel ch(c);
    // Es/N0 = 3 dB - 3.0103 dB ~ 0 dB -> sigma^2 = 1/2.
    EXPECT_NEAR(ch.sigma() * ch.sigma(), 1.0 / (2.0 * std::pow(10.0, (3.0 - 10 * std::log10(2.0)) / 10.0)), 1e-12);
    EXPECT_NEAR(ch.es_n0_db(), 3.0 - 3.0103, 1e-3);
    std::vector<std::uint8_t> bits(200000, 0);
    std::vector<float> y(bits.size());
    ASSERT_TRUE(ch.transmit(bits, y).ok);
    double mean = 0, var = 0;
    for (float v : y) mean += v;
    mean /= static_cast<double>(y.size());
    for (float v : y) var += (v - mean) * (v - mean);
    var /= static_cast<double>(y.size());
    EXPECT_NEAR(mean, 1.0, 0.01);
    EXPECT_NEAR(var, ch.sigma() * ch.sigma(), 0.02 * ch.sigma() * ch.sigma());
}

TEST(awgn, hard_bit_error_rate_matches_q_function) {
    // Es/N0 = 2 dB -> Pb = Q(sqrt(2*1.585)) = 0.0375; 400k symbols -> ~15000 errors, 3% tolerance.
    bpsk_awgn_channel::config c;
    c.ebn0_db = 2.0;
    c.code_rate = 1.0;
    c.seed = 42;
    bpsk_awgn_channel ch(c);
    std::vector<std::uint8_t> bits(400000);
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = (i * 2654435761u >> 7) & 1;
    std::vector<float> y(bits.size());
    const auto r = ch.transmit(bits, y);
    const double ber = static_cast<double>(r.hard_errors) / static_cast<double>(bits.size());
    EXPECT_NEAR(ber / bpsk_ber(2.0), 1.0, 0.03);
    EXPECT_NEAR(bpsk_ber(2.0), 0.03751, 1e-4);
    EXPECT_EQ(ch.totals().hard_errors, r.hard_errors);
}

TEST(awgn, int8_output_is_seeded_signed_and_saturated) {
    bpsk_awgn_channel::config c;
    c.ebn0_db = 20.0;
    c.amplitude = 100.0f;
    std::vector<std::uint8_t> bits{0, 1, 0, 1, 1, 0};
    std::vector<std::int8_t> a(6), b(6);
    bpsk_awgn_channel ch1(c), ch2(c);
    ch1.transmit(bits, a);
    ch2.transmit(bits, b);
    EXPECT_EQ(a, b);
    for (std::size_t i = 0; i < bits.size(); ++i) {
        EXPECT_EQ(a[i] < 0, bits[i] == 1);
        EXPECT_GE(a[i], -127);
        EXPECT_NEAR(std::abs(a[i]), 100, 20);
    }
    c.seed = 2;
    bpsk_awgn_channel ch3(c);
    ch3.transmit(bits, b);
    EXPECT_NE(a, b);
}

TEST(awgn, bad_input_and_config) {
    bpsk_awgn_channel ch({});
    std::vector<std::uint8_t> bits(4);
    std::vector<float> y(3);
    EXPECT_FALSE(ch.transmit(bits, y).ok);
    bpsk_awgn_channel::config c;
    c.code_rate = 0;
    EXPECT_THROW(bpsk_awgn_channel{c}, std::invalid_argument);
    c = {};
    c.ebn0_db = NAN;
    EXPECT_THROW(bpsk_awgn_channel{c}, std::invalid_argument);
    c = {};
    c.amplitude = 200;
    EXPECT_THROW(bpsk_awgn_channel{c}, std::invalid_argument);
}

}  // namespace
}  // namespace qlink::sim
