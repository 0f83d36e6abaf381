// BPSK/AWGN channel with int8 or float output.
#include "qlink/sim/awgn.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qlink::sim {

bpsk_awgn_channel::bpsk_awgn_channel(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
    if (!(cfg.ebn0_db >= -10.0 && cfg.ebn0_db <= 60.0))
        throw std::invalid_argument("awgn: ebn0_db must be in [-10, 60]");
    if (!(cfg.code_rate > 0.0 && cfg.code_rate <= 1.0))
        throw std::invalid_argument("awgn: code_rate must be in (0, 1]");
    if (!(cfg.amplitude > 0.0f && cfg.amplitude <= 127.0f))
        throw std::invalid_argument("awgn: amplitude must be in (0, 127]");
    const double es_n0 = std::pow(10.0, cfg.ebn0_db / 10.0) * cfg.code_rate;
    sigma_ = std::sqrt(1.0 / (2.0 * es_n0));
    noise_ = std::normal_distribution<float>(0.0f, static_cast<float>(sigma_));
}

double bpsk_awgn_channel::es_n0_db() const { return cfg_.ebn0_db + 10.0 * std::log10(cfg_.code_rate); }

bpsk_awgn_channel::result bpsk_awgn_channel::transmit(std::span<const std::uint8_t> bits, std::span<float> out) {
    if (bits.size() != out.size()) return {0, 0, false, "awgn: bits and out must have the same size"};
    result r;
    for (std::size_t i = 0; i < bits.size(); ++i) {
        const float x = bits[i] ? -1.0f : 1.0f;
        const float y = x + noise_(rng_);
        out[i] = y;
        r.hard_errors += (y < 0.0f) != (x < 0.0f);
    }
    r.symbols = bits.size();
    stats_.symbols += r.symbols;
    stats_.hard_errors += r.hard_errors;
    return r;
}

bpsk_awgn_channel::result bpsk_awgn_channel::transmit(std::span<const std::uint8_t> bits,
                                                      std::span<std::int8_t> out) {
    if (bits.size() != out.size()) return {0, 0, false, "awgn: bits and out must have the same size"};
    result r;
    for (std::size_t i = 0; i < bits.size(); ++i) {
        const float x = bits[i] ? -1.0f : 1.0f;
        const float y = x + noise_(rng_);
        // The hard decision is the sign of y; 0 after rounding is an erasure,
        // which a decoder treats as "no information": not counted as an error.
        const long q = std::lrint(std::clamp(y * cfg_.amplitude, -127.0f, 127.0f));
        out[i] = static_cast<std::int8_t>(q);
        r.hard_errors += (q < 0) != (x < 0.0f) && q != 0;
    }
    r.symbols = bits.size();
    stats_.symbols += r.symbols;
    stats_.hard_errors += r.hard_errors;
    return r;
}

double bpsk_ber(double es_n0_db) {
    const double es_n0 = std::pow(10.0, es_n0_db / 10.0);
    return 0.5 * std::erfc(std::sqrt(es_n0));
}

}  // namespace qlink::sim
