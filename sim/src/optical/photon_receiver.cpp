// Photon-counting receiver: Poisson slot counts (signal, background, dark) and OOK/PPM int8 LLRs.
#include "qlink/sim/photon_receiver.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

#include "check.hpp"

namespace qlink::sim {

namespace {

std::int8_t quantise(double v) {
    if (std::isnan(v)) return 0;
    return static_cast<std::int8_t>(std::lrint(std::clamp(v, -127.0, 127.0)));
}

photon_result fail(const char* msg) { return {0, 0, false, msg}; }

bool gains_ok(std::span<const float> gain) {
    return std::all_of(gain.begin(), gain.end(), [](float g) { return std::isfinite(g) && g >= 0.0f; });
}

bool power_of_two_order(unsigned m) { return m >= 2 && m <= 256 && (m & (m - 1)) == 0; }

unsigned log2u(unsigned m) {
    unsigned b = 0;
    while ((1u << b) < m) ++b;
    return b;
}

}  // namespace

photon_receiver::photon_receiver(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
    using detail::check_range;
    check_range("detector_efficiency", cfg.detector_efficiency, 0.0, 1.0, true, false);
    check_range("dark_count_rate_hz", cfg.dark_count_rate_hz, 0.0, 1e12);
    check_range("slot_duration_s", cfg.slot_duration_s, 0.0, 1.0, true, false);
    check_range("background_photons_per_slot", cfg.background_photons_per_slot, 0.0, 1e9);
    noise_mean_ = cfg.detector_efficiency * cfg.background_photons_per_slot + cfg.dark_count_rate_hz * cfg.slot_duration_s;
}

namespace {
/// Poisson draw that accepts a zero mean (std::poisson_distribution needs mean > 0).
template <class R>
std::uint32_t poisson(R& rng, std::poisson_distribution<std::uint32_t>& d, double mean) {
    if (!(mean > 0.0)) return 0;
    d.param(std::poisson_distribution<std::uint32_t>::param_type(mean));
    return d(rng);
}
}  // namespace

photon_result photon_receiver::receive_ook(std::span<const std::uint8_t> bits, double signal_photons,
                                           std::span<const float> gain, std::span<std::uint32_t> counts) {
    if (counts.size() != bits.size()) return fail("receive_ook: counts.size() must equal bits.size()");
    if (!gain.empty() && gain.size() != bits.size()) return fail("receive_ook: gain must be empty or one per slot");
    if (!(signal_photons >= 0.0) || !std::isfinite(signal_photons))
        return fail("receive_ook: signal_photons must be finite and >= 0");
    if (!gains_ok(gain)) return fail("receive_ook: gain values must be finite and >= 0");
    std::poisson_distribution<std::uint32_t> d;
    const double ns = signal_mean(signal_photons);
    photon_result r;
    for (std::size_t i = 0; i < bits.size(); ++i) {
        double g = gain.empty() ? 1.0 : gain[i];
        double mean = noise_mean_ + (bits[i] ? ns * g : 0.0);
        counts[i] = poisson(rng_, d, mean);
        r.photons += counts[i];
    }
    r.slots = bits.size();
    return r;
}

photon_result photon_receiver::receive_ppm(std::span<const std::uint16_t> symbols, unsigned order,
                                           double signal_photons, std::span<const float> gain,
                                           std::span<std::uint32_t> counts) {
    if (!power_of_two_order(order)) return fail("receive_ppm: order must be a power of two in [2, 256]");
    if (counts.size() != symbols.size() * order) return fail("receive_ppm: counts.size() must be order * symbols");
    if (!gain.empty() && gain.size() != symbols.size()) return fail("receive_ppm: gain must be empty or one per symbol");
    if (!(signal_photons >= 0.0) || !std::isfinite(signal_photons))
        return fail("receive_ppm: signal_photons must be finite and >= 0");
    if (!gains_ok(gain)) return fail("receive_ppm: gain values must be finite and >= 0");
    for (auto s : symbols)
        if (s >= order) return fail("receive_ppm: symbol value >= order");
    std::poisson_distribution<std::uint32_t> d;
    const double ns = signal_mean(signal_photons);
    photon_result r;
    for (std::size_t i = 0; i < symbols.size(); ++i) {
        double g = gain.empty() ? 1.0 : gain[i];
        for (unsigned j = 0; j < order; ++j) {
            double mean = noise_mean_ + (j == symbols[i] ? ns * g : 0.0);
            auto k = poisson(rng_, d, mean);
            counts[i * order + j] = k;
            r.photons += k;
        }
    }
    r.slots = counts.size();
    return r;
}

photon_result ook_llr(std::span<const std::uint32_t> counts, double n_s, double n_b, double scale,
                      std::span<std::int8_t> llr) {
    if (llr.size() != counts.size()) return fail("ook_llr: llr.size() must equal counts.size()");
    if (!(n_b > 0.0) || !std::isfinite(n_b)) return fail("ook_llr: n_b must be finite and > 0");
    if (!(n_s >= 0.0) || !std::isfinite(n_s)) return fail("ook_llr: n_s must be finite and >= 0");
    if (!std::isfinite(scale)) return fail("ook_llr: scale must be finite");
    const double c = std::log1p(n_s / n_b);
    photon_result r;
    for (std::size_t i = 0; i < counts.size(); ++i) {
        llr[i] = quantise(scale * (n_s - counts[i] * c));
        r.photons += counts[i];
    }
    r.slots = counts.size();
    return r;
}

photon_result ppm_llr(std::span<const std::uint32_t> counts, unsigned order, double n_s, double n_b, double scale,
                      std::span<std::int8_t> llr) {
    if (!power_of_two_order(order)) return fail("ppm_llr: order must be a power of two in [2, 256]");
    if (counts.size() % order != 0) return fail("ppm_llr: counts.size() must be a multiple of order");
    const unsigned bits = log2u(order);
    const std::size_t symbols = counts.size() / order;
    if (llr.size() != symbols * bits) return fail("ppm_llr: llr.size() must be log2(order) * symbols");
    if (!(n_b > 0.0) || !std::isfinite(n_b)) return fail("ppm_llr: n_b must be finite and > 0");
    if (!(n_s >= 0.0) || !std::isfinite(n_s)) return fail("ppm_llr: n_s must be finite and >= 0");
    if (!std::isfinite(scale)) return fail("ppm_llr: scale must be finite");
    const double c = std::log1p(n_s / n_b);
    photon_result r;
    for (std::size_t s = 0; s < symbols; ++s) {
        const auto* k = counts.data() + s * order;
        // Symbol log-likelihoods up to a common constant are k_j c; subtract the max for stability.
        std::uint32_t kmax = *std::max_element(k, k + order);
        for (unsigned b = 0; b < bits; ++b) {
            const unsigned mask = 1u << (bits - 1 - b);  // MSB first
            double sum0 = 0.0, sum1 = 0.0;
            for (unsigned j = 0; j < order; ++j) {
                double w = std::exp((static_cast<double>(k[j]) - kmax) * c);
                ((j & mask) ? sum1 : sum0) += w;
            }
            double l;
            if (sum0 > 0.0 && sum1 > 0.0)
                l = std::log(sum0) - std::log(sum1);
            else  // one side underflowed: the evidence is overwhelming either way
                l = sum0 > 0.0 ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
            llr[s * bits + b] = quantise(scale * l);
        }
        for (unsigned j = 0; j < order; ++j) r.photons += k[j];
    }
    r.slots = counts.size();
    return r;
}

}  // namespace qlink::sim
