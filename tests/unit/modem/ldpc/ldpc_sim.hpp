// Test helper: BPSK over AWGN through the CCSDS LDPC encoder and decoders, with fixed seeds.
#pragma once

#include "qlink/modem/ldpc.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qlink::modem::test {

struct awgn_frame {
    std::vector<std::uint8_t> info;      // packed
    std::vector<float> llr;              // real channel LLRs
    std::vector<llr_t> llr_q;            // int8 LLRs
};

/// sigma^2 = 1 / (2 R Eb/N0); int8 LLRs are the received amplitude times
/// `amplitude_scale` (min-sum is scale-invariant, so no noise estimate needed).
class awgn_source {
public:
    awgn_source(ldpc_code_id id, double ebn0_db, std::uint64_t seed, float amplitude_scale = 16.0f)
        : enc_(id), rng_(seed), scale_(amplitude_scale) {
        const double ebn0 = std::pow(10.0, ebn0_db / 10.0);
        sigma_ = std::sqrt(1.0 / (2.0 * enc_.code().rate() * ebn0));
        cw_.resize(enc_.code().n() / 8);
    }

    const awgn_frame& next() {
        const auto& code = enc_.code();
        f_.info.resize(code.k() / 8);
        for (auto& b : f_.info) b = static_cast<std::uint8_t>(rng_());
        enc_.encode(f_.info, cw_);
        std::normal_distribution<double> noise(0.0, sigma_);
        f_.llr.resize(code.n());
        f_.llr_q.resize(code.n());
        for (std::size_t i = 0; i < code.n(); ++i) {
            const double x = ((cw_[i >> 3] >> (7 - (i & 7))) & 1) ? -1.0 : 1.0;
            const double y = x + noise(rng_);
            f_.llr[i] = static_cast<float>(2.0 * y / (sigma_ * sigma_));
            f_.llr_q[i] = quantize_llr(static_cast<float>(y) * scale_);
        }
        return f_;
    }

    const ldpc_code& code() const { return enc_.code(); }
    double sigma() const { return sigma_; }

private:
    ldpc_encoder enc_;
    std::mt19937_64 rng_;
    float scale_;
    double sigma_ = 1.0;
    std::vector<std::uint8_t> cw_;
    awgn_frame f_;
};

struct error_counts {
    std::size_t frames = 0, frame_errors = 0, bit_errors = 0, bits = 0, false_success = 0;
    double fer() const { return frames ? static_cast<double>(frame_errors) / static_cast<double>(frames) : 0.0; }
    double ber() const { return bits ? static_cast<double>(bit_errors) / static_cast<double>(bits) : 0.0; }
};

inline std::size_t count_bit_errors(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b) {
    std::size_t n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) n += static_cast<std::size_t>(__builtin_popcount(a[i] ^ b[i]));
    return n;
}

/// Runs frames until `min_frame_errors` or `max_frames`.
inline error_counts run_int8(ldpc_decoder& dec, awgn_source& src, std::size_t min_frame_errors, std::size_t max_frames) {
    error_counts c;
    std::vector<std::uint8_t> out(dec.code().k() / 8);
    while (c.frames < max_frames && c.frame_errors < min_frame_errors) {
        const auto& f = src.next();
        const auto res = dec.decode(f.llr_q, out);
        const std::size_t errs = count_bit_errors(f.info, out);
        ++c.frames;
        c.bits += dec.code().k();
        c.bit_errors += errs;
        if (errs) ++c.frame_errors;
        if (errs && res.success) ++c.false_success;
    }
    return c;
}

}  // namespace qlink::modem::test
