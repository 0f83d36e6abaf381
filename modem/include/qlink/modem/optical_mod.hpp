// Optical OOK and M-PPM slot modulation, soft demodulation to int8 LLRs, and per-block signal/background tracking.
//
// Slot mapping: OOK sends bit 1 as a pulse and bit 0 as a dark slot. M-PPM
// takes log2(M) bits (MSB first, natural binary) as the index of the one
// pulsed slot among M, followed by `guard` dark slots (CCSDS 142.0-B style
// inter-symbol guard time; they also give a clean background estimate).
//
// Soft demodulation (LLRs follow soft_bits.hpp, llr = scale * ln P(b=0)/P(b=1)):
// * Photon counting, Poisson slots with mean Kb (dark) or Ks + Kb (pulsed):
//   a slot's log-likelihood ratio pulsed/dark is k * a - Ks with
//   a = ln(1 + Ks/Kb). OOK: llr = scale * (Ks - k a).
//   PPM symbol metric lambda_s = a * k_s; bit LLRs either max-log,
//   a * (max_{s: b=0} k_s - max_{s: b=1} k_s), or exact log-sum-exp over the
//   M symbols.
// * APD/PIN samples, Gaussian with signal-dependent variance:
//   dark N(mu0, s0^2), pulsed N(mu1, s1^2); slot metric
//   l(y) = ln N(y; mu1, s1) - ln N(y; mu0, s0); OOK llr = -scale * l(y), PPM as above
//   with lambda_s = l(y_s).
// Received-power tracking: the estimate_* functions measure Ks/Kb (or the
// Gaussian parameters) on a block, so the LLR magnitudes follow a fade from
// block to block (the *_tracked calls do both).
#pragma once

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

namespace qlink::modem {

enum class optical_format { ook, ppm };
enum class ppm_metric { max_log, exact };

struct poisson_estimate {
    float signal = 0.0f;      ///< Ks: mean signal photons in a pulsed slot
    float background = 0.0f;  ///< Kb: mean background (plus dark) counts per slot
};

struct gaussian_estimate {
    float mu0 = 0.0f, sigma0 = 1.0f;  ///< dark slot
    float mu1 = 1.0f, sigma1 = 1.0f;  ///< pulsed slot
};

enum class optical_status { ok, bad_length, bad_estimate };

struct optical_result {
    optical_status status = optical_status::ok;
    std::size_t bits = 0;   ///< LLRs written
    std::size_t slots = 0;  ///< slots consumed
};

struct optical_config {
    optical_format format = optical_format::ppm;
    unsigned m = 16;          ///< PPM order, power of two 4..256
    unsigned guard = 0;       ///< PPM guard slots after each symbol
    float llr_scale = 8.0f;   ///< int8 LLR = round(llr_scale * natural LLR)
    ppm_metric metric = ppm_metric::max_log;
    std::string isa = "auto";
};

/// Bits per slot group and lengths for one configuration.
struct optical_layout {
    unsigned bits_per_symbol = 1;
    unsigned slots_per_symbol = 1;
};

/// Throws std::invalid_argument for M not a power of two in 4..256, guard > 4096,
/// non-positive/non-finite llr_scale or an unknown isa.
optical_layout validate_optical_config(const optical_config& cfg);

/// Modulates packed bits (MSB first; `bits` of them) into slots (1 = pulse).
/// `slots.size()` must be the exact slot count for `bits` (a multiple of
/// bits_per_symbol), otherwise bad_length.
optical_result optical_modulate(const optical_config& cfg, std::span<const std::uint8_t> packed, std::size_t bits,
                                std::span<std::uint8_t> slots);

class optical_demodulator {
public:
    virtual ~optical_demodulator() = default;

    /// Photon counts per slot -> LLRs (llr.size() bits; counts.size() must match).
    virtual optical_result demod_counts(std::span<const std::uint16_t> counts, const poisson_estimate& est,
                                        std::span<llr_t> llr) = 0;

    /// Detector samples per slot (Gaussian model) -> LLRs.
    virtual optical_result demod_samples(std::span<const float> samples, const gaussian_estimate& est,
                                         std::span<llr_t> llr) = 0;

    /// Method-of-moments estimate of Ks and Kb on a block (guard slots give Kb
    /// directly when present; otherwise the variance of the counts separates
    /// signal from background, assuming balanced bits as after the randomizer).
    virtual poisson_estimate estimate_counts(std::span<const std::uint16_t> counts) const = 0;

    /// Decision-directed estimate of the Gaussian parameters on a block.
    virtual gaussian_estimate estimate_samples(std::span<const float> samples) const = 0;

    /// Estimate on this block, then demodulate it.
    optical_result demod_counts_tracked(std::span<const std::uint16_t> counts, std::span<llr_t> llr) {
        return demod_counts(counts, estimate_counts(counts), llr);
    }
    optical_result demod_samples_tracked(std::span<const float> samples, std::span<llr_t> llr) {
        return demod_samples(samples, estimate_samples(samples), llr);
    }

    virtual isa level() const = 0;
    virtual const optical_config& config() const = 0;
};

/// Throws std::invalid_argument on a bad configuration (see validate_optical_config).
std::unique_ptr<optical_demodulator> create_optical_demodulator(const optical_config& cfg);

}  // namespace qlink::modem
