// A small decoy-state BB84 source + channel for the post-processing tests (records for both ends).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "qlink/keymgmt/estimation.hpp"
#include "qlink/keymgmt/qkd_events.hpp"

namespace qlink::keymgmt::testing {

struct source_params {
    decoy_settings decoy;
    double eta = 0.1;    ///< Channel + detector transmittance.
    double y0 = 1e-5;    ///< Background / dark click probability per pulse.
    double ed = 0.015;   ///< Misalignment: probability a signal click lands on the wrong bit.
    double pz = 0.5;     ///< Probability of the Z basis, at both ends.
};

/// What the generator knows that the protocol must find out: sifted counts per intensity.
struct ground_truth {
    std::array<std::uint64_t, intensity_count> z{}, z_err{}, x{}, x_err{};
};

struct test_block {
    std::vector<alice_event> alice;  // detected pulses only
    std::array<std::uint64_t, intensity_count> sent{};
    std::vector<bob_event> bob;
    ground_truth truth;
    alice_block alice_view() const { return {alice, sent}; }
    bob_block bob_view() const { return {bob}; }
};

/// Draws `detections` detected pulses; undetected pulses are skipped with geometric gaps, so
/// the cost is per detection, not per pulse.
inline test_block generate_block(const source_params& p, std::size_t detections, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> u(0.0, 1.0);
    std::array<double, intensity_count> click{}, w{};
    double d = 0;
    for (std::size_t k = 0; k < intensity_count; ++k) {
        click[k] = 1.0 - (1.0 - p.y0) * std::exp(-p.eta * p.decoy.mu[k]);
        w[k] = p.decoy.prob[k] * click[k];
        d += w[k];
    }
    std::geometric_distribution<std::uint64_t> gap(d);
    std::discrete_distribution<int> which(w.begin(), w.end());
    test_block b;
    std::uint64_t pulse = 0, undetected = 0;
    for (std::size_t i = 0; i < detections; ++i) {
        const std::uint64_t g = gap(rng);
        undetected += g;
        pulse += g;
        const int k = which(rng);
        ++b.sent[static_cast<std::size_t>(k)];
        alice_event a{pulse, static_cast<intensity_class>(k), u(rng) < p.pz ? qkd_basis::z : qkd_basis::x,
                      static_cast<std::uint8_t>(rng() & 1u)};
        bob_event e{pulse, u(rng) < p.pz ? qkd_basis::z : qkd_basis::x, 0};
        const double signal = 1.0 - std::exp(-p.eta * p.decoy.mu[static_cast<std::size_t>(k)]);
        const bool from_signal = u(rng) * click[static_cast<std::size_t>(k)] < signal;
        if (from_signal && e.basis == a.basis) {
            e.bit = a.bit ^ static_cast<std::uint8_t>(u(rng) < p.ed);
        } else {
            e.bit = static_cast<std::uint8_t>(rng() & 1u);
        }
        if (a.basis == e.basis) {
            const bool err = a.bit != e.bit;
            if (a.basis == qkd_basis::z) {
                ++b.truth.z[static_cast<std::size_t>(k)];
                b.truth.z_err[static_cast<std::size_t>(k)] += err;
            } else {
                ++b.truth.x[static_cast<std::size_t>(k)];
                b.truth.x_err[static_cast<std::size_t>(k)] += err;
            }
        }
        b.alice.push_back(a);
        b.bob.push_back(e);
        ++pulse;
    }
    // Split the undetected pulses over the classes in proportion to p_k (1 - click_k).
    double rest_w = 0;
    for (std::size_t k = 0; k < intensity_count; ++k) rest_w += p.decoy.prob[k] * (1.0 - click[k]);
    std::uint64_t left = undetected;
    for (std::size_t k = 0; k + 1 < intensity_count; ++k) {
        const double share = p.decoy.prob[k] * (1.0 - click[k]) / rest_w;
        std::binomial_distribution<std::uint64_t> bin(left, std::min(1.0, share));
        const std::uint64_t c = bin(rng);
        b.sent[k] += c;
        left -= c;
        rest_w -= p.decoy.prob[k] * (1.0 - click[k]);
    }
    b.sent[intensity_count - 1] += left;
    return b;
}

}  // namespace qlink::keymgmt::testing
