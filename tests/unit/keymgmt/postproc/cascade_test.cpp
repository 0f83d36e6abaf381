// Tests keymgmt/src/postproc/cascade.cpp: keys agree after Cascade, efficiency at QBER 1-3 %, malformed messages.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "qlink/keymgmt/cascade.hpp"
#include "qlink/keymgmt/estimation.hpp"

namespace qlink::keymgmt {
namespace {

struct pair_keys {
    std::vector<std::uint8_t> alice, bob;
    std::size_t errors = 0;
};

pair_keys make_keys(std::size_t n, double q, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution flip(q);
    pair_keys k;
    k.alice.resize(n);
    k.bob.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
        k.alice[i] = static_cast<std::uint8_t>(rng() & 1u);
        const bool e = flip(rng);
        k.errors += e;
        k.bob[i] = k.alice[i] ^ static_cast<std::uint8_t>(e);
    }
    return k;
}

struct cascade_case {
    std::size_t n;
    double q;
};

class cascade_efficiency : public ::testing::TestWithParam<cascade_case> {};

// f = leaked / (n h(Q)) with Q the actual error fraction; averaged over 4 seeded blocks.
TEST_P(cascade_efficiency, corrects_all_errors_within_target) {
    const auto [n, q] = GetParam();
    double f_sum = 0;
    const int blocks = 4;
    for (int s = 0; s < blocks; ++s) {
        auto k = make_keys(n, q, 1000 + static_cast<std::uint64_t>(s) + static_cast<std::uint64_t>(n));
        const double q_actual = static_cast<double>(k.errors) / static_cast<double>(n);
        cascade_config cfg;
        cfg.qber = q;  // the estimate, as the sample would give it
        cfg.seed = 77 + static_cast<std::uint64_t>(s);
        const auto st = cascade_reconcile_local(k.alice, k.bob, cfg);
        ASSERT_EQ(k.alice, k.bob) << "n=" << n << " q=" << q << " seed " << s;
        EXPECT_EQ(st.corrected % 2, k.errors % 2);
        f_sum += reconciliation_efficiency(st.leaked_bits, n, q_actual);
    }
    const double f = f_sum / blocks;
    std::printf("cascade n=%zu qber=%.3f mean f=%.4f\n", n, q, f);
    EXPECT_LE(f, 1.15);
    EXPECT_GE(f, 1.0);  // below 1 would break Shannon's bound: the leak count would be wrong
}

INSTANTIATE_TEST_SUITE_P(qber_1_to_3_percent, cascade_efficiency,
                         ::testing::Values(cascade_case{10000, 0.01}, cascade_case{10000, 0.02}, cascade_case{10000, 0.03},
                                           cascade_case{100000, 0.01}, cascade_case{100000, 0.02},
                                           cascade_case{100000, 0.03}));

TEST(cascade, block_sizes_follow_the_qber) {
    const auto k1 = cascade_block_sizes(100000, 0.01, 4);
    const auto k3 = cascade_block_sizes(100000, 0.03, 4);
    ASSERT_EQ(k1.size(), 4u);
    EXPECT_GT(k1[0], k3[0]);
    EXPECT_LE(k1[0], k1[1]);
    EXPECT_EQ(k1[3], 50000u);
    for (auto k : cascade_block_sizes(10, 0.2, 6)) EXPECT_LE(k, 5u);
}

TEST(cascade, identical_keys_leak_only_top_parities) {
    auto k = make_keys(5000, 0.0, 1);
    cascade_config cfg;
    cfg.qber = 0.02;
    const auto st = cascade_reconcile_local(k.alice, k.bob, cfg);
    EXPECT_EQ(st.corrected, 0u);
    std::uint64_t top = 0;
    for (auto s : cascade_block_sizes(5000, 0.02, cfg.passes)) top += (5000 + s - 1) / s;
    EXPECT_EQ(st.leaked_bits, top);
}

TEST(cascade, alice_rejects_malformed_requests) {
    std::vector<std::uint8_t> key(1000, 1), rep;
    cascade_config cfg;
    cascade_alice a(key, cfg);
    EXPECT_FALSE(a.answer({}, rep));
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{9}, rep));
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{1, 2, 1}, rep));   // pass out of order
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{1, 0, 13}, rep));  // more passes than configured
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{1, 0}, rep));      // truncated
    EXPECT_TRUE(a.answer(std::vector<std::uint8_t>{1, 0, 1}, rep));
    // Range beyond the key, range in a pass not started, truncated list.
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xE9, 0x03, 0, 0}, rep));
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{2, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0}, rep));
    EXPECT_FALSE(a.answer(std::vector<std::uint8_t>{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0}, rep));
    EXPECT_TRUE(a.answer(std::vector<std::uint8_t>{2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0}, rep));
    EXPECT_FALSE(a.error().empty());

    std::vector<std::uint8_t> bkey(1000, 0), req;
    cascade_bob b(bkey, cfg);
    EXPECT_FALSE(b.handle_reply(std::vector<std::uint8_t>{1}));  // nothing asked yet
    ASSERT_TRUE(b.next_request(req));
    EXPECT_FALSE(b.next_request(req));  // one request at a time
    EXPECT_FALSE(b.handle_reply({}));   // truncated parities
}

}  // namespace
}  // namespace qlink::keymgmt
