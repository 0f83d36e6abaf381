// Photon-counting receiver: Poisson slot counts for OOK/PPM and their int8 bit LLRs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "qlink/sim/channel_rng.hpp"

namespace qlink::sim {

/// Outcome of a streaming call; bad lengths are reported, nothing is thrown.
struct photon_result {
    std::size_t slots = 0;        ///< slots written
    std::size_t photons = 0;      ///< total counts written
    bool ok = true;
    const char* error = "";       ///< static message when !ok
};

/// Detected counts per slot ~ Poisson(eta * (n_s g + n_b) + dark_rate * T_slot) for an
/// "on" slot and Poisson(eta * n_b + dark_rate * T_slot) for an "off" slot, n_s the mean
/// signal photons per on-slot at the aperture, g the channel gain of that slot (fading).
class photon_receiver {
public:
    struct config {
        double detector_efficiency = 0.5;      ///< (0, 1]
        double dark_count_rate_hz = 100.0;     ///< >= 0
        double slot_duration_s = 1e-9;         ///< > 0
        double background_photons_per_slot = 0.01;  ///< at the aperture, >= 0
        std::uint64_t seed = 4;
    };

    /// Throws std::invalid_argument naming the field and its allowed range.
    explicit photon_receiver(const config& cfg);

    /// Mean detected noise counts per slot: eta n_b + dark * T.
    double noise_mean() const { return noise_mean_; }
    /// Mean detected signal counts per on-slot for n_s photons at the aperture.
    double signal_mean(double signal_photons) const { return cfg_.detector_efficiency * signal_photons; }

    /// OOK, "on" = bit 1: bits one per byte (0/1). `gain` is empty (gain 1) or one value per
    /// slot. counts.size() must equal bits.size().
    photon_result receive_ook(std::span<const std::uint8_t> bits, double signal_photons,
                              std::span<const float> gain, std::span<std::uint32_t> counts);

    /// M-ary PPM, one pulse in slot `symbol` of each M-slot frame; counts holds M slots per
    /// symbol. M is a power of two in [2, 256]; gain is empty or one value per symbol.
    photon_result receive_ppm(std::span<const std::uint16_t> symbols, unsigned order, double signal_photons,
                              std::span<const float> gain, std::span<std::uint32_t> counts);

private:
    config cfg_;
    double noise_mean_ = 0.0;
    channel_rng rng_;
};

/// OOK LLR per slot, LLR = ln P(k|off)/P(k|on) = n_s - k ln(1 + n_s/n_b) ('on' = bit 1, so
/// positive = bit 0 as in the modem's convention), times `scale`, rounded, saturated to +-127.
/// n_s, n_b are DETECTED means (signal_mean(), noise_mean()); n_b > 0, n_s >= 0.
photon_result ook_llr(std::span<const std::uint32_t> counts, double n_s, double n_b, double scale,
                      std::span<std::int8_t> llr);

/// PPM bit LLRs (log2 M per symbol, MSB first) by exact log-sum-exp over the symbols:
/// ln sum_{j: bit=0} (1+n_s/n_b)^{k_j} - ln sum_{j: bit=1} (1+n_s/n_b)^{k_j}, times `scale`.
/// counts.size() = M * symbols, llr.size() = log2(M) * symbols.
photon_result ppm_llr(std::span<const std::uint32_t> counts, unsigned order, double n_s, double n_b,
                      double scale, std::span<std::int8_t> llr);

}  // namespace qlink::sim
