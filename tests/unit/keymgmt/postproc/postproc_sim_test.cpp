// Tests keymgmt post-processing end to end on the simulator's QKD channel (qlink::sim::qkd_channel records).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "qlink/keymgmt/postproc.hpp"
#include "qlink/sim/qkd_channel.hpp"

namespace qlink::keymgmt {
namespace {

// Converts the simulator's joint records into what each end sees on its own.
struct converted {
    std::vector<alice_event> alice;
    std::vector<bob_event> bob;
    std::array<std::uint64_t, intensity_count> sent{};
};

converted convert(std::span<const sim::qkd_detection> det, std::uint64_t pulses, const std::array<double, 3>& prob) {
    converted c;
    c.alice.reserve(det.size());
    c.bob.reserve(det.size());
    for (const auto& d : det) {
        c.alice.push_back({d.pulse_index, static_cast<intensity_class>(d.intensity),
                           d.alice_basis ? qkd_basis::x : qkd_basis::z, d.alice_bit});
        c.bob.push_back({d.pulse_index, d.bob_basis ? qkd_basis::x : qkd_basis::z, d.bob_bit});
    }
    // The simulator reports only the total; Alice would know the exact split. Only the
    // Lo-Ma-Chen report uses it.
    std::uint64_t left = pulses;
    for (std::size_t k = 0; k + 1 < intensity_count; ++k) {
        c.sent[k] = static_cast<std::uint64_t>(std::llround(static_cast<double>(pulses) * prob[k]));
        left -= std::min(left, c.sent[k]);
    }
    c.sent[intensity_count - 1] = left;
    return c;
}

std::vector<std::uint8_t> psk(std::size_t pads) {
    std::mt19937_64 rng(99);
    std::vector<std::uint8_t> k(16 + 16 * pads);
    for (auto& b : k) b = static_cast<std::uint8_t>(rng());
    return k;
}

sim::qkd_channel::config channel_config(const postproc_config& cfg, double ed) {
    sim::qkd_channel::config c;
    c.mean_photons = cfg.decoy.mu;
    c.probabilities = cfg.decoy.prob;
    c.detector_efficiency = 0.5;
    c.misalignment_error = ed;
    c.seed = 31;
    return c;
}

TEST(postproc_sim, identical_keys_on_the_simulated_channel) {
    postproc_config cfg;
    sim::qkd_channel ch(channel_config(cfg, 0.015));
    std::vector<sim::qkd_detection> det(900000);
    const auto r = ch.simulate(0.2, std::uint64_t{1} << 40, det);
    ASSERT_TRUE(r.ok) << r.error;
    det.resize(r.detections);
    const auto c = convert(det, r.pulses, cfg.decoy.prob);
    const auto key = psk(400);
    auth_key_pool pa(key), pb(key);
    auto alice = create_alice_endpoint(cfg, 3, {c.alice, c.sent}, pa);
    auto bob = create_bob_endpoint(cfg, 3, {c.bob}, pb);
    run_in_memory(*alice, *bob);
    ASSERT_EQ(alice->report().reason, abort_reason::none) << alice->report().detail;
    ASSERT_EQ(bob->report().reason, abort_reason::none) << bob->report().detail;
    const auto ka = alice->take_keys(), kb = bob->take_keys();
    ASSERT_FALSE(ka.empty());
    ASSERT_EQ(ka.size(), kb.size());
    for (std::size_t i = 0; i < ka.size(); ++i) {
        EXPECT_EQ(ka[i].id(), kb[i].id());
        EXPECT_TRUE(std::equal(ka[i].bytes().begin(), ka[i].bytes().end(), kb[i].bytes().begin()));
    }
    const auto& rep = alice->report();
    const auto fk = lim2014_key_length(cfg.decoy, rep.counts, static_cast<double>(rep.leaked_ec_bits), cfg.eps);
    EXPECT_EQ(static_cast<std::int64_t>(rep.secret_bits), fk.length);
    EXPECT_NEAR(rep.qber_z, ch.expected(0.2, sim::intensity_class::signal).qber, 0.01);
}

TEST(postproc_sim, high_qber_channel_aborts) {
    postproc_config cfg;
    sim::qkd_channel ch(channel_config(cfg, 0.14));
    std::vector<sim::qkd_detection> det(60000);
    const auto r = ch.simulate(0.2, std::uint64_t{1} << 40, det);
    ASSERT_TRUE(r.ok) << r.error;
    det.resize(r.detections);
    const auto c = convert(det, r.pulses, cfg.decoy.prob);
    const auto key = psk(400);
    auth_key_pool pa(key), pb(key);
    auto alice = create_alice_endpoint(cfg, 4, {c.alice, c.sent}, pa);
    auto bob = create_bob_endpoint(cfg, 4, {c.bob}, pb);
    run_in_memory(*alice, *bob);
    EXPECT_EQ(alice->report().reason, abort_reason::qber_too_high);
    EXPECT_EQ(bob->report().reason, abort_reason::qber_too_high);
    EXPECT_TRUE(alice->take_keys().empty());
}

}  // namespace
}  // namespace qlink::keymgmt
