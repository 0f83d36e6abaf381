// Tests the block and convolutional interleavers: identity, delay, burst dispersion, errors.
#include "qlink/modem/interleaver.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace qlink::modem {
namespace {

interleaver_config block_cfg(std::size_t r, std::size_t c) {
    interleaver_config cfg;
    cfg.kind = interleaver_kind::block;
    cfg.rows = r;
    cfg.cols = c;
    return cfg;
}

interleaver_config conv_cfg(std::size_t b, std::size_t m) {
    interleaver_config cfg;
    cfg.kind = interleaver_kind::convolutional;
    cfg.branches = b;
    cfg.unit = m;
    return cfg;
}

// Runs `in` through interleaver then deinterleaver in random chunk sizes.
std::vector<std::uint8_t> pair_run(const interleaver_config& cfg, const std::vector<std::uint8_t>& in,
                                   std::vector<std::uint8_t>* channel = nullptr,
                                   const std::vector<std::size_t>* burst = nullptr) {
    auto tx = create_interleaver(cfg);
    auto rx = create_deinterleaver(cfg);
    std::vector<std::uint8_t> mid(in.size()), out(in.size());
    std::mt19937 rng(1);
    for (std::size_t pos = 0; pos < in.size();) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 500, in.size() - pos);
        auto r = tx->process(std::span(in).subspan(pos, n), std::span(mid).subspan(pos, n));
        EXPECT_TRUE(r.ok);
        pos += n;
    }
    if (burst)
        for (std::size_t i : *burst) mid[i] ^= 0x80;
    if (channel) *channel = mid;
    for (std::size_t pos = 0; pos < in.size();) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 700, in.size() - pos);
        // In place on the receive side.
        std::copy_n(mid.begin() + static_cast<std::ptrdiff_t>(pos), n, out.begin() + static_cast<std::ptrdiff_t>(pos));
        auto r = rx->process(std::span<const std::uint8_t>(out).subspan(pos, n), std::span(out).subspan(pos, n));
        EXPECT_TRUE(r.ok);
        pos += n;
    }
    return out;
}

std::vector<std::uint8_t> ramp(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    std::mt19937 rng(2);
    for (auto& x : v) x = static_cast<std::uint8_t>(1 + rng() % 127);  // never 0: 0 marks "from initial memory"
    return v;
}

class interleaver_pair : public ::testing::TestWithParam<interleaver_config> {};

TEST_P(interleaver_pair, identity_after_documented_delay) {
    const auto cfg = GetParam();
    const std::size_t delay = interleaver_pair_delay(cfg);
    const auto in = ramp(delay + 5000);
    std::vector<std::uint8_t> channel;
    const auto out = pair_run(cfg, in, &channel);
    for (std::size_t i = 0; i < delay; ++i) ASSERT_EQ(out[i], 0) << i;
    for (std::size_t i = delay; i < in.size(); ++i) ASSERT_EQ(out[i], in[i - delay]) << i;
    // The channel really is permuted (not a plain delay).
    std::size_t same = 0;
    for (std::size_t i = delay; i < in.size(); ++i) same += channel[i] == in[i];
    EXPECT_LT(same, in.size() / 2);  // conv branch 0 is undelayed: 1/B pass straight
}

TEST_P(interleaver_pair, burst_up_to_span_becomes_isolated_errors) {
    const auto cfg = GetParam();
    const std::size_t span = interleaver_span(cfg);
    const std::size_t delay = interleaver_pair_delay(cfg);
    const std::size_t n = 3 * delay + 20000;
    const auto in = ramp(n);
    const std::size_t min_gap = cfg.kind == interleaver_kind::block ? cfg.cols - 1 : cfg.branches - 1;
    std::mt19937 rng(3);
    for (int trial = 0; trial < 20; ++trial) {
        const std::size_t len = 1 + rng() % span;
        std::size_t start = delay + rng() % delay;
        if (cfg.kind == interleaver_kind::block) {
            // Within one block (a burst across a block edge may touch both edges' neighbours).
            const std::size_t bn = cfg.rows * cfg.cols;
            start = start / bn * bn + rng() % (bn - len + 1);
        }
        std::vector<std::size_t> burst;
        for (std::size_t k = 0; k < len; ++k) burst.push_back(start + k);
        const auto out = pair_run(cfg, in, nullptr, &burst);
        std::vector<std::size_t> errors;
        for (std::size_t i = delay; i < n; ++i)
            if (out[i] != in[i - delay]) errors.push_back(i);
        ASSERT_EQ(errors.size(), len);
        for (std::size_t k = 1; k < errors.size(); ++k)
            EXPECT_GE(errors[k] - errors[k - 1], min_gap) << "trial " << trial << " len " << len;
    }
}

INSTANTIATE_TEST_SUITE_P(kinds, interleaver_pair,
                         ::testing::Values(block_cfg(8, 16), block_cfg(13, 7), block_cfg(1, 5), conv_cfg(4, 3),
                                           conv_cfg(12, 17), conv_cfg(3, 1)));

TEST(interleaver, burst_longer_than_span_is_not_fully_dispersed) {
    // The test above must be able to fail: a burst of 2*span leaves neighbours.
    const auto cfg = conv_cfg(8, 4);
    const std::size_t delay = interleaver_pair_delay(cfg);
    const auto in = ramp(4 * delay + 1000);
    std::vector<std::size_t> burst;
    for (std::size_t k = 0; k < 3 * interleaver_span(cfg); ++k) burst.push_back(delay + 5 + k);
    const auto out = pair_run(cfg, in, nullptr, &burst);
    std::size_t close = 0, prev = 0;
    for (std::size_t i = delay; i < out.size(); ++i)
        if (out[i] != in[i - delay]) {
            if (prev && i - prev < cfg.branches - 1) ++close;
            prev = i;
        }
    EXPECT_GT(close, 0u);
}

TEST(interleaver, none_is_pass_through) {
    auto tx = create_interleaver({});
    std::vector<std::uint8_t> a{1, 2, 3}, b(3);
    EXPECT_TRUE(tx->process(a, b).ok);
    EXPECT_EQ(a, b);
    EXPECT_EQ(interleaver_pair_delay({}), 0u);
}

TEST(interleaver, llr_overload_and_size_mismatch) {
    auto tx = create_interleaver(block_cfg(2, 2));
    std::vector<llr_t> in{-5, 6, -7, 8, 0, 0, 0, 0}, out(8);
    EXPECT_TRUE(tx->process(std::span<const llr_t>(in), std::span<llr_t>(out)).ok);
    EXPECT_EQ(out[4], -5);
    EXPECT_EQ(out[5], -7);
    EXPECT_EQ(out[6], 6);
    EXPECT_EQ(out[7], 8);
    const auto r = tx->process(std::span<const llr_t>(in), std::span<llr_t>(out).first(3));
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error, nullptr);
    EXPECT_EQ(r.processed, 0u);
}

TEST(interleaver, span_in_symbols_and_milliseconds) {
    auto c = convolutional_for_span(16, 1600);
    EXPECT_EQ(c.unit, 100u);
    EXPECT_EQ(interleaver_span(c), 1600u);
    // 10 ms at 1 Msym/s = 10000 symbols, 16 branches -> 625 per unit.
    c = convolutional_for_span_ms(16, 10.0, 1e6);
    EXPECT_EQ(c.unit, 625u);
    EXPECT_EQ(interleaver_pair_delay(c), 16u * 15u * 625u);
    EXPECT_THROW(convolutional_for_span(16, 1000 + 1), std::invalid_argument);  // does not divide
    EXPECT_THROW(convolutional_for_span_ms(16, 1.0, 1234.5), std::invalid_argument);  // 1.2345 symbols
    EXPECT_THROW(convolutional_for_span_ms(16, -1.0, 1e6), std::invalid_argument);
    EXPECT_THROW(convolutional_for_span(1, 16), std::invalid_argument);
    try {
        convolutional_for_span(16, 1001);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("multiple of branches"), std::string::npos);
    }
}

TEST(interleaver, bad_configuration_is_rejected) {
    EXPECT_THROW(create_interleaver(block_cfg(0, 4)), std::invalid_argument);
    EXPECT_THROW(create_interleaver(block_cfg(1u << 20, 1u << 20)), std::invalid_argument);
    EXPECT_THROW(create_deinterleaver(conv_cfg(1, 4)), std::invalid_argument);
    EXPECT_THROW(create_deinterleaver(conv_cfg(4, 0)), std::invalid_argument);
    EXPECT_THROW(create_deinterleaver(conv_cfg(1u << 16, 1u << 20)), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::modem
