// Tests keymgmt/src/postproc/postproc.cpp end to end: Alice and Bob endpoints over an in-memory pipe.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "qkd_test_source.hpp"
#include "qlink/keymgmt/postproc.hpp"

namespace qlink::keymgmt {
namespace {

using testing::generate_block;
using testing::source_params;

std::vector<std::uint8_t> psk(std::size_t pads, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> k(16 + 16 * pads);
    for (auto& c : k) c = static_cast<std::uint8_t>(rng());
    return k;
}

// Lim et al. (2014), written out again here from the paper, independent of estimation.cpp.
std::int64_t lim_length(const decoy_settings& s, const finite_key_counts& c, double leak, double eps_sec, double eps_cor) {
    const double m1 = s.mu[0], m2 = s.mu[1], m3 = s.mu[2];
    auto tau = [&](int n) {
        double t = 0;
        for (int k = 0; k < 3; ++k) t += s.prob[k] * std::exp(-s.mu[k]) * std::pow(s.mu[k], n) / (n == 0 ? 1.0 : n == 1 ? 1.0 : 2.0);
        return t;
    };
    auto pm = [&](const std::array<std::uint64_t, 3>& v, int k, double sign) {
        const double tot = static_cast<double>(v[0] + v[1] + v[2]);
        return std::exp(s.mu[k]) / s.prob[k] * (static_cast<double>(v[k]) + sign * std::sqrt(tot / 2 * std::log(21 / eps_sec)));
    };
    auto s1_of = [&](const std::array<std::uint64_t, 3>& v, double& s0) {
        s0 = std::max(0.0, tau(0) * (m2 * pm(v, 2, -1) - m3 * pm(v, 1, +1)) / (m2 - m3));
        const double num = pm(v, 1, -1) - pm(v, 2, +1) - (m2 * m2 - m3 * m3) / (m1 * m1) * (pm(v, 0, +1) - s0 / tau(0));
        return std::max(0.0, tau(1) * m1 * num / (m1 * (m2 - m3) - m2 * m2 + m3 * m3));
    };
    double sz0 = 0, sx0 = 0;
    const double sz1 = s1_of(c.n_z, sz0), sx1 = s1_of(c.n_x, sx0);
    const double vx1 = std::max(0.0, tau(1) * (pm(c.m_x, 1, +1) - pm(c.m_x, 2, -1)) / (m2 - m3));
    const double b = std::clamp(vx1 / sx1, 1e-9, 0.5);
    const double g = std::sqrt((sz1 + sx1) * (1 - b) * b / (sz1 * sx1 * std::log(2.0)) *
                               std::log2((sz1 + sx1) / (sz1 * sx1 * (1 - b) * b) * 441.0 / (eps_sec * eps_sec)));
    const double phi = std::min(0.5, vx1 / sx1 + g);
    const double h = phi <= 0 ? 0 : -phi * std::log2(phi) - (1 - phi) * std::log2(1 - phi);
    return static_cast<std::int64_t>(std::floor(sz0 + sz1 - sz1 * h - leak - 6 * std::log2(21 / eps_sec) - std::log2(2 / eps_cor)));
}

// 850k detections, ~210k sifted Z bits: about the smallest block with a positive finite key at
// 10 dB, 1.5 % misalignment, mu = 0.5 / 0.2 / 0. Shared by the tests that need a full session.
const testing::test_block& big_block() {
    static const auto b = generate_block(source_params{}, 850000, 2024);
    return b;
}

TEST(postproc_e2e, identical_keys_with_the_finite_key_length) {
    const auto& blk = big_block();
    postproc_config cfg;
    const auto key = psk(2000, 1);
    auth_key_pool pa(key), pb(key);
    auto alice = create_alice_endpoint(cfg, 7, blk.alice_view(), pa);
    auto bob = create_bob_endpoint(cfg, 7, blk.bob_view(), pb);
    const std::size_t msgs = run_in_memory(*alice, *bob);
    ASSERT_TRUE(alice->finished()) << msgs << " messages; bob: " << to_string(bob->report().reason) << " "
                                   << bob->report().detail;
    ASSERT_TRUE(bob->finished()) << to_string(alice->report().reason) << " " << alice->report().detail;
    const auto& ra = alice->report();
    const auto& rb = bob->report();
    ASSERT_EQ(ra.reason, abort_reason::none) << ra.detail << ": l = " << ra.finite_key.length << ", " << msgs
                                             << " messages, key " << ra.key_bits_reconciled << ", leak " << ra.leaked_ec_bits
                                             << ", qber " << ra.qber_z << ", rounds " << rb.cascade_rounds;
    ASSERT_EQ(rb.reason, abort_reason::none) << rb.detail;

    // Sifting and estimation found the generator's ground truth.
    std::uint64_t z_total = 0;
    for (std::size_t k = 0; k < 3; ++k) {
        EXPECT_EQ(ra.counts.n_x[k], blk.truth.x[k]);
        EXPECT_EQ(ra.counts.m_x[k], blk.truth.x_err[k]);
        EXPECT_LE(ra.counts.n_z[k], blk.truth.z[k]);
        EXPECT_EQ(rb.counts.n_z[k], ra.counts.n_z[k]);
        EXPECT_EQ(rb.counts.m_x[k], ra.counts.m_x[k]);
        z_total += blk.truth.z[k];
    }
    EXPECT_EQ(ra.sifted_z, z_total);
    EXPECT_EQ(ra.key_bits_reconciled + ra.sample_bits, z_total);
    EXPECT_EQ(ra.leaked_ec_bits, rb.leaked_ec_bits);
    std::uint64_t true_z_err = blk.truth.z_err[0] + blk.truth.z_err[1] + blk.truth.z_err[2];
    EXPECT_NEAR(ra.qber_z, static_cast<double>(true_z_err) / static_cast<double>(z_total), 0.01);
    EXPECT_LE(rb.corrected_bits, true_z_err);
    EXPECT_GT(rb.corrected_bits, true_z_err * 8 / 10);  // the sample took ~5 % of the errors away

    // Length: Lim et al. with the protocol's counts and Cascade's leak, recomputed here.
    const auto ell = lim_length(cfg.decoy, ra.counts, static_cast<double>(ra.leaked_ec_bits), cfg.eps.eps_sec, cfg.eps.eps_cor);
    ASSERT_GT(ell, 0);
    EXPECT_EQ(static_cast<std::int64_t>(ra.secret_bits), ell);
    EXPECT_EQ(rb.secret_bits, ra.secret_bits);
    EXPECT_EQ(ra.finite_key.length, ell);

    // Output keys: identical IDs and bytes, the pool refilled with one pad per message.
    auto ka = alice->take_keys();
    auto kb = bob->take_keys();
    ASSERT_FALSE(ka.empty());
    ASSERT_EQ(ka.size(), kb.size());
    for (std::size_t i = 0; i < ka.size(); ++i) {
        EXPECT_EQ(ka[i].id(), kb[i].id());
        EXPECT_EQ((ka[i].id()[6] >> 4), 4);
        EXPECT_EQ((ka[i].id()[8] >> 6), 2);
        ASSERT_EQ(ka[i].bytes().size(), cfg.key_bits / 8);
        EXPECT_TRUE(std::equal(ka[i].bytes().begin(), ka[i].bytes().end(), kb[i].bytes().begin()));
        if (i > 0) {
            EXPECT_NE(ka[i].id(), ka[i - 1].id());
        }
    }
    EXPECT_EQ(ra.messages_sent + ra.messages_received, msgs);
    EXPECT_EQ(ra.auth_pads_consumed, msgs);
    EXPECT_EQ(ra.auth_pads_replenished, msgs);
    EXPECT_EQ(rb.auth_pads_replenished, msgs);
    EXPECT_EQ(ra.output_key_bits, ka.size() * cfg.key_bits);
    EXPECT_LT(ra.secret_bits - msgs * 128 - ra.output_key_bits, cfg.key_bits);
    EXPECT_EQ(pa.pads_available(), 2000u);
    std::printf("e2e: detections %llu, key bits %llu, qber %.4f, leak %llu (f = %.3f, %u rounds), secret %llu, "
                "%zu keys, %zu messages\n",
                static_cast<unsigned long long>(ra.detections), static_cast<unsigned long long>(ra.key_bits_reconciled),
                ra.qber_z, static_cast<unsigned long long>(ra.leaked_ec_bits), ra.ec_efficiency, rb.cascade_rounds,
                static_cast<unsigned long long>(ra.secret_bits), ka.size(), msgs);

    // The refilled pools still agree: a second message authenticates across them.
    gf128_block tag{};
    std::uint64_t idx = 0;
    const std::vector<std::uint8_t> m = {1, 2, 3};
    ASSERT_TRUE(pa.sign(m, tag, idx));
    EXPECT_TRUE(pb.verify(m, tag, idx));
}

TEST(postproc_e2e, refilled_pool_carries_the_next_session) {
    // Only 260 pads: one session uses ~190-250, so the second runs on pads the first distilled.
    postproc_config cfg;
    cfg.min_auth_pads = 150;
    const auto key = psk(260, 8);
    auth_key_pool pa(key), pb(key);
    std::vector<std::array<std::uint8_t, 16>> ids;
    for (std::uint64_t session_id : {100u, 101u}) {
        auto alice = create_alice_endpoint(cfg, session_id, big_block().alice_view(), pa);
        auto bob = create_bob_endpoint(cfg, session_id, big_block().bob_view(), pb);
        const std::size_t msgs = run_in_memory(*alice, *bob);
        ASSERT_EQ(alice->report().reason, abort_reason::none) << alice->report().detail;
        ASSERT_EQ(bob->report().reason, abort_reason::none) << bob->report().detail;
        EXPECT_EQ(alice->report().auth_pads_replenished, msgs);
        EXPECT_EQ(pa.pads_available(), 260u);
        EXPECT_EQ(pb.pads_available(), 260u);
        for (const auto& k : alice->take_keys()) ids.push_back(k.id());
    }
    EXPECT_GT(pa.next_pad_index(), 260u);  // the second session signed with distilled pads
    std::sort(ids.begin(), ids.end());
    EXPECT_EQ(std::adjacent_find(ids.begin(), ids.end()), ids.end()) << "key IDs must not repeat across sessions";
}

struct session {
    std::vector<std::uint8_t> key = psk(400, 5);
    auth_key_pool pa{key}, pb{key};
    std::unique_ptr<postproc_endpoint> alice, bob;
    session(const postproc_config& ca, const postproc_config& cb, const testing::test_block& blk) {
        alice = create_alice_endpoint(ca, 1, blk.alice_view(), pa);
        bob = create_bob_endpoint(cb, 1, blk.bob_view(), pb);
    }
};

TEST(postproc_e2e, qber_above_threshold_aborts_at_both_ends) {
    source_params sp;
    sp.ed = 0.13;
    const auto blk = generate_block(sp, 60000, 3);
    postproc_config cfg;
    session s(cfg, cfg, blk);
    run_in_memory(*s.alice, *s.bob);
    ASSERT_TRUE(s.alice->finished() && s.bob->finished());
    EXPECT_EQ(s.alice->report().reason, abort_reason::qber_too_high);
    EXPECT_EQ(s.bob->report().reason, abort_reason::qber_too_high);
    EXPECT_GT(s.alice->report().qber_z, cfg.qber_max);
    EXPECT_TRUE(s.alice->take_keys().empty());
    EXPECT_TRUE(s.bob->take_keys().empty());
    EXPECT_EQ(to_string(abort_reason::qber_too_high), "qber_too_high");
}

// Runs the pipe by hand, flipping one byte of message number `victim`.
void run_tampered(session& s, std::size_t victim, std::size_t byte) {
    std::vector<std::uint8_t> ab, ba;
    bool pending = s.bob->start(ba);
    for (std::size_t n = 0; pending && n < 10000; ++n) {
        auto& msg = n % 2 == 0 ? ba : ab;
        if (n == victim) msg[std::min(byte, msg.size() - 1)] ^= 0x01;
        pending = n % 2 == 0 ? s.alice->on_message(ba, ab) : s.bob->on_message(ab, ba);
    }
}

TEST(postproc_e2e, tampered_message_fails_authentication) {
    const auto blk = generate_block(source_params{}, 60000, 4);
    postproc_config cfg;
    cfg.min_sifted_bits = 100;
    for (std::size_t victim : {0u, 1u, 2u, 5u}) {
        // Message 5 is Alice's first Cascade reply: only a block with a positive key gets there.
        session s(cfg, cfg, victim == 5 ? big_block() : blk);
        run_tampered(s, victim, 40);
        ASSERT_TRUE(s.alice->finished() && s.bob->finished()) << victim;
        const auto& receiver = victim % 2 == 0 ? s.alice->report() : s.bob->report();
        const auto& sender = victim % 2 == 0 ? s.bob->report() : s.alice->report();
        EXPECT_EQ(receiver.reason, abort_reason::authentication_failed) << victim;
        EXPECT_EQ(sender.reason, abort_reason::peer_aborted) << victim;
        EXPECT_TRUE(s.alice->take_keys().empty());
        EXPECT_TRUE(s.bob->take_keys().empty());
    }
}

TEST(postproc_e2e, other_aborts) {
    const auto blk = generate_block(source_params{}, 20000, 6);
    postproc_config cfg;
    {  // Pool below min_auth_pads.
        const auto key = psk(10, 1);
        auth_key_pool pa(key), pb(key);
        auto a = create_alice_endpoint(cfg, 1, blk.alice_view(), pa);
        auto b = create_bob_endpoint(cfg, 1, blk.bob_view(), pb);
        run_in_memory(*a, *b);
        EXPECT_EQ(b->report().reason, abort_reason::insufficient_auth_key);
        EXPECT_EQ(a->report().reason, abort_reason::peer_aborted);
    }
    {  // Different parameters at the two ends.
        postproc_config other = cfg;
        other.qber_max = 0.08;
        session s(cfg, other, blk);
        run_in_memory(*s.alice, *s.bob);
        EXPECT_EQ(s.alice->report().reason, abort_reason::config_mismatch);
        EXPECT_EQ(s.bob->report().reason, abort_reason::peer_aborted);
    }
    {  // 20000 detections cannot give a positive finite key.
        session s(cfg, cfg, blk);
        run_in_memory(*s.alice, *s.bob);
        EXPECT_EQ(s.alice->report().reason, abort_reason::estimation_failed);
        EXPECT_EQ(s.bob->report().reason, abort_reason::estimation_failed);
    }
    {  // Garbage and truncated messages: protocol error, no crash.
        session s(cfg, cfg, blk);
        std::vector<std::uint8_t> out;
        EXPECT_TRUE(s.alice->on_message(std::vector<std::uint8_t>(7, 0xEE), out));  // answers with an abort
        EXPECT_EQ(s.alice->report().reason, abort_reason::protocol_error);
        EXPECT_FALSE(s.alice->on_message(std::vector<std::uint8_t>(100, 0), out));  // finished: ignored
        ASSERT_TRUE(s.bob->start(out));
        out.resize(out.size() / 2);
        session s2(cfg, cfg, blk);
        std::vector<std::uint8_t> reply;
        s2.alice->on_message(out, reply);
        EXPECT_EQ(s2.alice->report().reason, abort_reason::protocol_error);
    }
    {  // Bob's detections out of order.
        auto bad = blk;
        std::swap(bad.bob[10], bad.bob[11]);
        session s(cfg, cfg, bad);
        run_in_memory(*s.alice, *s.bob);
        EXPECT_EQ(s.bob->report().reason, abort_reason::protocol_error);
    }
    postproc_config broken = cfg;
    broken.decoy.mu = {0.2, 0.3, 0.0};
    const auto key = psk(300, 2);
    auth_key_pool p(key);
    EXPECT_THROW(create_alice_endpoint(broken, 1, blk.alice_view(), p), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::keymgmt
