// Seeded BPSK over AWGN producing the project's int8 soft bits (sign = bit, bit 0 -> +1).
//
// Eb/N0 is per information bit: Es/N0 = Eb/N0 * code_rate, where code_rate is
// information bits per channel symbol of the whole chain. With unit-energy
// symbols the noise is N(0, sigma^2), sigma^2 = 1 / (2 Es/N0). The true LLR is
// 2y/sigma^2; the int8 output is round(amplitude * y), saturated to +-127,
// i.e. the LLR up to a constant factor (what a Viterbi decoder needs). sim
// does not depend on modem, so the int8 convention is restated here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <span>

namespace qlink::sim {

class bpsk_awgn_channel {
public:
    struct config {
        double ebn0_db = 3.5;      ///< [-10, 60]
        double code_rate = 0.5;    ///< (0, 1]
        float amplitude = 32.0f;   ///< int8 value of a noiseless symbol, (0, 127]
        std::uint64_t seed = 1;
    };
    struct result {
        std::size_t symbols = 0;
        std::size_t hard_errors = 0;  ///< symbols whose sign the noise flipped
        bool ok = true;
        const char* error = nullptr;
    };
    struct stats {
        std::uint64_t symbols = 0;
        std::uint64_t hard_errors = 0;
    };

    /// Throws std::invalid_argument naming the bad field.
    explicit bpsk_awgn_channel(const config& cfg);

    /// bits: one per byte, 0 or 1 (any non-zero counts as 1); out the same size.
    result transmit(std::span<const std::uint8_t> bits, std::span<float> out);
    result transmit(std::span<const std::uint8_t> bits, std::span<std::int8_t> out);

    double sigma() const { return sigma_; }
    double es_n0_db() const;
    const stats& totals() const { return stats_; }

private:
    config cfg_;
    double sigma_;
    std::mt19937_64 rng_;
    std::normal_distribution<float> noise_;
    stats stats_{};
};

/// Uncoded BPSK bit error probability at Es/N0 (dB): Q(sqrt(2 Es/N0)).
double bpsk_ber(double es_n0_db);

}  // namespace qlink::sim
