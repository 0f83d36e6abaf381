// BB84 decoy-state channel: geometric skipping to the next clicking pulse, exact conditional click model.
#include "qlink/sim/qkd_channel.hpp"

#include <cmath>
#include <limits>

#include "../optical/check.hpp"

namespace qlink::sim {

namespace {

/// Probabilities that the "right" and "wrong" detector click for a pulse whose detected mean
/// photon number is m, given matched bases: Poisson splitting makes them independent.
struct click_pair {
    double right, wrong;
};

click_pair clicks(double m, double e_d, double p_noise) {
    return {1.0 - (1.0 - p_noise) * std::exp(-m * (1.0 - e_d)), 1.0 - (1.0 - p_noise) * std::exp(-m * e_d)};
}

}  // namespace

qkd_channel::qkd_channel(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
    using detail::check_range;
    check_range("pulse_rate_hz", cfg.pulse_rate_hz, 0.0, 1e12, true, false);
    const char* mu_names[3] = {"mean_photons[signal]", "mean_photons[decoy]", "mean_photons[vacuum]"};
    const char* p_names[3] = {"probabilities[signal]", "probabilities[decoy]", "probabilities[vacuum]"};
    double sum = 0.0;
    for (int i = 0; i < 3; ++i) {
        check_range(mu_names[i], cfg.mean_photons[i], 0.0, 50.0, false, true);
        check_range(p_names[i], cfg.probabilities[i], 0.0, 1.0);
        sum += cfg.probabilities[i];
    }
    check_range("sum of probabilities", sum, 1.0 - 1e-9, 1.0 + 1e-9);
    check_range("alice_z_probability", cfg.alice_z_probability, 0.0, 1.0);
    check_range("bob_z_probability", cfg.bob_z_probability, 0.0, 1.0);
    check_range("detector_efficiency", cfg.detector_efficiency, 0.0, 1.0, true, false);
    check_range("dark_count_rate_hz", cfg.dark_count_rate_hz, 0.0, 1e12);
    check_range("background_rate_hz", cfg.background_rate_hz, 0.0, 1e12);
    check_range("gate_width_s", cfg.gate_width_s, 0.0, 1.0, true, false);
    check_range("misalignment_error", cfg.misalignment_error, 0.0, 0.5);
    p_noise_ = -std::expm1(-(cfg.dark_count_rate_hz + cfg.background_rate_hz) * cfg.gate_width_s);
}

qkd_expectation qkd_channel::expected(double eta, intensity_class c) const {
    const double m = eta * cfg_.detector_efficiency * cfg_.mean_photons[static_cast<int>(c)];
    const double p = p_noise_;
    qkd_expectation e;
    auto k = clicks(m, cfg_.misalignment_error, p);
    e.gain = 1.0 - (1.0 - k.right) * (1.0 - k.wrong);
    // Errors: only the wrong detector, or both (then the squashed random bit is wrong half the time).
    e.qber = e.gain > 0.0 ? ((1.0 - k.right) * k.wrong + 0.5 * k.right * k.wrong) / e.gain : 0.0;
    const double y0 = 1.0 - (1.0 - p) * (1.0 - p);
    e.gain_lmc = y0 + 1.0 - std::exp(-m);
    e.qber_lmc = e.gain_lmc > 0.0 ? (0.5 * y0 + cfg_.misalignment_error * (1.0 - std::exp(-m))) / e.gain_lmc : 0.0;
    return e;
}

qkd_channel::result qkd_channel::simulate(double eta, std::uint64_t pulses, std::span<qkd_detection> out) {
    result r;
    if (!(eta >= 0.0 && eta <= 1.0)) {
        r.ok = false;
        r.error = "qkd_channel::simulate: eta must be in [0, 1]";
        return r;
    }
    auto uni = [](channel_rng& g) { return g.uniform(); };
    const double p = p_noise_, e_d = cfg_.misalignment_error;
    std::array<double, 3> m{}, q{};
    double p_click = 0.0;
    for (int c = 0; c < 3; ++c) {
        m[c] = eta * cfg_.detector_efficiency * cfg_.mean_photons[c];
        q[c] = -std::expm1(std::log1p(-p) * 2.0 - m[c]);  // 1 - (1-p)^2 e^{-m}
        p_click += cfg_.probabilities[c] * q[c];
    }
    if (!(p_click > 0.0)) {  // nothing can click: the whole span of pulses is silent
        r.pulses = pulses;
        next_pulse_ += pulses;
        return r;
    }
    const double log_no_click = std::log1p(-std::min(p_click, 1.0 - 1e-16));

    std::uint64_t remaining = pulses;
    while (remaining > 0 && r.detections < out.size()) {
        // Pulses before the next click ~ Geometric(p_click): skip them without touching them.
        double u = uni(rng_);  // (0, 1)
        double gap_d = std::floor(std::log(u) / log_no_click);
        if (!(gap_d < static_cast<double>(remaining))) {
            r.pulses += remaining;
            next_pulse_ += remaining;
            remaining = 0;
            break;
        }
        const auto gap = static_cast<std::uint64_t>(gap_d);
        qkd_detection d;
        d.pulse_index = next_pulse_ + gap;
        next_pulse_ += gap + 1;
        r.pulses += gap + 1;
        remaining -= gap + 1;

        // Intensity class given a click: prior p_c times gain Q_c.
        double v = uni(rng_) * p_click;
        int c = 0;
        while (c < 2 && v >= cfg_.probabilities[c] * q[c]) v -= cfg_.probabilities[c] * q[c], ++c;
        while (cfg_.probabilities[c] * q[c] <= 0.0 && c > 0) --c;  // rounding guard
        d.intensity = static_cast<intensity_class>(c);
        d.alice_basis = uni(rng_) < cfg_.alice_z_probability ? 0 : 1;
        d.alice_bit = rng_() & 1;
        d.bob_basis = uni(rng_) < cfg_.bob_z_probability ? 0 : 1;

        // Detector 'alice_bit' is the right one when the bases match; with mismatched bases each
        // photon lands on either detector with probability 1/2.
        const double p_wrong = d.alice_basis == d.bob_basis ? e_d : 0.5;
        bool click_right, click_wrong;
        const double p_signal = -std::expm1(-m[c]) / q[c];  // P(>= 1 detected photon | click)
        if (uni(rng_) < p_signal) {
            // Zero-truncated Poisson photon number by inversion (m is small: ~1 step).
            double w = uni(rng_);
            double pk = m[c] * std::exp(-m[c]) / -std::expm1(-m[c]);
            double cdf = pk;
            unsigned n = 1;
            while (w > cdf && n < 1000) {
                ++n;
                pk *= m[c] / n;
                cdf += pk;
            }
            unsigned to_wrong = 0;
            for (unsigned i = 0; i < n; ++i) to_wrong += uni(rng_) < p_wrong;
            click_right = (n - to_wrong) > 0 || uni(rng_) < p;
            click_wrong = to_wrong > 0 || uni(rng_) < p;
        } else {
            // Noise only, at least one detector: both with p/(2-p), else one of the two.
            double x = uni(rng_) * (2.0 - p);
            if (x < p) {
                click_right = click_wrong = true;
            } else {
                click_right = x < p + (1.0 - p);
                click_wrong = !click_right;
            }
        }
        if (click_right && click_wrong) {
            d.double_click = 1;
            d.bob_bit = rng_() & 1;
            ++r.double_clicks;
        } else {
            d.bob_bit = click_right ? d.alice_bit : static_cast<std::uint8_t>(d.alice_bit ^ 1);
        }
        out[r.detections++] = d;
    }
    return r;
}

}  // namespace qlink::sim
