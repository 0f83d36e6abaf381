// OOK/PPM modulation, Poisson and Gaussian soft demodulation with block-wise signal/background estimation.
#include "qlink/modem/optical_mod.hpp"

#include "optical_kernels.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

namespace qlink::modem {
namespace detail {
namespace {

std::int8_t to_llr(float v) {
    v = std::clamp(v, -127.0f, 127.0f);
    return static_cast<std::int8_t>(std::lrint(v));
}

void ook_poisson_generic(const std::uint16_t* counts, std::size_t n, float c0, float c1, std::int8_t* out) {
    for (std::size_t i = 0; i < n; ++i) {
        const float t = static_cast<float>(counts[i]) * c1;
        out[i] = to_llr(c0 - t);
    }
}

void ppm_maxima_generic(const std::uint16_t* counts, std::size_t nsym, unsigned m, unsigned bits, std::size_t stride,
                        std::uint16_t* max0, std::uint16_t* max1) {
    for (std::size_t s = 0; s < nsym; ++s) {
        const std::uint16_t* c = counts + s * stride;
        std::uint16_t* m0 = max0 + s * bits;
        std::uint16_t* m1 = max1 + s * bits;
        std::fill(m0, m0 + bits, std::uint16_t{0});
        std::fill(m1, m1 + bits, std::uint16_t{0});
        for (unsigned slot = 0; slot < m; ++slot)
            for (unsigned p = 0; p < bits; ++p) {
                std::uint16_t& dst = (slot >> p) & 1 ? m1[bits - 1 - p] : m0[bits - 1 - p];
                dst = std::max(dst, c[slot]);
            }
    }
}

void ppm_llr_generic(const std::uint16_t* max0, const std::uint16_t* max1, std::size_t n, float c1, std::int8_t* out) {
    for (std::size_t i = 0; i < n; ++i) out[i] = to_llr(static_cast<float>(int{max0[i]} - int{max1[i]}) * c1);
}

}  // namespace

const optical_kernels& optical_kernels_generic() {
    static constexpr optical_kernels k{ook_poisson_generic, ppm_maxima_generic, ppm_llr_generic};
    return k;
}

}  // namespace detail

optical_layout validate_optical_config(const optical_config& cfg) {
    if (!(cfg.llr_scale > 0.0f) || !std::isfinite(cfg.llr_scale))
        throw std::invalid_argument("optical: llr_scale must be a positive finite number");
    const auto level = parse_isa(cfg.isa);
    if (!level) throw std::invalid_argument("optical: isa '" + cfg.isa + "' (allowed: auto|generic|sse41|avx2|avx512)");
    if (!isa_supported(*level)) throw std::invalid_argument("optical: isa '" + cfg.isa + "' not supported by this CPU");
    if (cfg.format == optical_format::ook) return {1, 1};
    if (cfg.m < 4 || cfg.m > 256 || !std::has_single_bit(cfg.m))
        throw std::invalid_argument("optical: ppm m must be a power of two in 4..256");
    if (cfg.guard > 4096) throw std::invalid_argument("optical: guard must be <= 4096 slots");
    return {static_cast<unsigned>(std::countr_zero(cfg.m)), cfg.m + cfg.guard};
}

optical_result optical_modulate(const optical_config& cfg, std::span<const std::uint8_t> packed, std::size_t bits,
                                std::span<std::uint8_t> slots) {
    optical_result res;
    const auto lay = validate_optical_config(cfg);
    if (bits % lay.bits_per_symbol || packed.size() * 8 < bits ||
        slots.size() != bits / lay.bits_per_symbol * lay.slots_per_symbol) {
        res.status = optical_status::bad_length;
        return res;
    }
    auto bit = [&](std::size_t i) { return (packed[i >> 3] >> (7 - (i & 7))) & 1u; };
    if (cfg.format == optical_format::ook) {
        for (std::size_t i = 0; i < bits; ++i) slots[i] = static_cast<std::uint8_t>(bit(i));
    } else {
        std::fill(slots.begin(), slots.end(), std::uint8_t{0});
        for (std::size_t s = 0; s < bits / lay.bits_per_symbol; ++s) {
            unsigned index = 0;
            for (unsigned b = 0; b < lay.bits_per_symbol; ++b) index = (index << 1) | bit(s * lay.bits_per_symbol + b);
            slots[s * lay.slots_per_symbol + index] = 1;
        }
    }
    res.bits = bits;
    res.slots = slots.size();
    return res;
}

namespace {

class optical_demodulator_impl final : public optical_demodulator {
public:
    optical_demodulator_impl(const optical_config& cfg, const detail::optical_kernels& k, isa level)
        : cfg_(cfg), lay_(validate_optical_config(cfg)), k_(k), level_(level) {
        max0_.resize(max_chunk * 8);
        max1_.resize(max_chunk * 8);
        metric_.resize(cfg.format == optical_format::ppm ? cfg.m : 1);
    }

    optical_result demod_counts(std::span<const std::uint16_t> counts, const poisson_estimate& est,
                                std::span<llr_t> llr) override {
        optical_result res;
        if (!check_lengths(counts.size(), llr.size(), res)) return res;
        if (!(est.signal >= 0.0f) || !(est.background >= 0.0f) || !std::isfinite(est.signal) ||
            !std::isfinite(est.background)) {
            res.status = optical_status::bad_estimate;
            return res;
        }
        // a = ln(1 + Ks/Kb); a background of zero makes one photon decisive,
        // which the clamp to +-127 expresses.
        const double kb = std::max<double>(est.background, 1e-9);
        const double a = std::log1p(static_cast<double>(est.signal) / kb);
        const float c1 = static_cast<float>(cfg_.llr_scale * a);
        if (cfg_.format == optical_format::ook) {
            const float c0 = cfg_.llr_scale * est.signal;
            k_.ook_poisson(counts.data(), counts.size(), c0, c1, llr.data());
            return res;
        }
        const unsigned bits = lay_.bits_per_symbol;
        const std::size_t nsym = counts.size() / lay_.slots_per_symbol;
        if (cfg_.metric == ppm_metric::max_log) {
            // Chunks keep the scratch small and in cache (allocated once).
            constexpr std::size_t chunk = max_chunk;
            for (std::size_t s0 = 0; s0 < nsym; s0 += chunk) {
                const std::size_t ns = std::min(chunk, nsym - s0);
                k_.ppm_maxima(counts.data() + s0 * lay_.slots_per_symbol, ns, cfg_.m, bits, lay_.slots_per_symbol,
                              max0_.data(), max1_.data());
                // The maxima come in LLR order (MSB first), so this is one flat pass.
                k_.ppm_llr(max0_.data(), max1_.data(), ns * bits, c1, llr.data() + s0 * bits);
            }
        } else {
            for (std::size_t s = 0; s < nsym; ++s) {
                const std::uint16_t* c = counts.data() + s * lay_.slots_per_symbol;
                for (unsigned j = 0; j < cfg_.m; ++j) metric_[j] = a * c[j];
                exact_bits(s, llr);
            }
        }
        return res;
    }

    optical_result demod_samples(std::span<const float> samples, const gaussian_estimate& est,
                                 std::span<llr_t> llr) override {
        optical_result res;
        if (!check_lengths(samples.size(), llr.size(), res)) return res;
        if (!(est.sigma0 > 0.0f) || !(est.sigma1 > 0.0f) || !std::isfinite(est.mu0) || !std::isfinite(est.mu1) ||
            !std::isfinite(est.sigma0) || !std::isfinite(est.sigma1)) {
            res.status = optical_status::bad_estimate;
            return res;
        }
        const double i0 = 1.0 / (2.0 * est.sigma0 * est.sigma0), i1 = 1.0 / (2.0 * est.sigma1 * est.sigma1);
        const double lr = std::log(static_cast<double>(est.sigma0) / est.sigma1);
        auto slot_metric = [&](float yf) {
            const double y = std::isfinite(yf) ? yf : est.mu0;  // a NaN sample carries no light
            return (y - est.mu0) * (y - est.mu0) * i0 - (y - est.mu1) * (y - est.mu1) * i1 + lr;
        };
        if (cfg_.format == optical_format::ook) {
            for (std::size_t i = 0; i < samples.size(); ++i)
                llr[i] = to_llr(static_cast<float>(-cfg_.llr_scale * slot_metric(samples[i])));
            return res;
        }
        const std::size_t nsym = samples.size() / lay_.slots_per_symbol;
        for (std::size_t s = 0; s < nsym; ++s) {
            for (unsigned j = 0; j < cfg_.m; ++j) metric_[j] = slot_metric(samples[s * lay_.slots_per_symbol + j]);
            if (cfg_.metric == ppm_metric::exact) {
                exact_bits(s, llr);
                continue;
            }
            const unsigned bits = lay_.bits_per_symbol;
            for (unsigned p = 0; p < bits; ++p) {
                double m0 = -std::numeric_limits<double>::infinity(), m1 = m0;
                for (unsigned j = 0; j < cfg_.m; ++j) ((j >> p) & 1 ? m1 : m0) = std::max((j >> p) & 1 ? m1 : m0, metric_[j]);
                llr[s * bits + (bits - 1 - p)] = to_llr(static_cast<float>(cfg_.llr_scale * (m0 - m1)));
            }
        }
        return res;
    }

    poisson_estimate estimate_counts(std::span<const std::uint16_t> counts) const override {
        poisson_estimate est;
        const std::size_t per = lay_.slots_per_symbol;
        if (counts.size() < per || counts.size() % per) return est;
        const std::size_t nsym = counts.size() / per;
        const double m = cfg_.format == optical_format::ook ? 1.0 : cfg_.m;
        double sum = 0.0, sum2 = 0.0, guard_sum = 0.0;
        for (std::size_t s = 0; s < nsym; ++s) {
            for (std::size_t j = 0; j < static_cast<std::size_t>(m); ++j) {
                const double c = counts[s * per + j];
                sum += c;
                sum2 += c * c;
            }
            for (std::size_t j = static_cast<std::size_t>(m); j < per; ++j) guard_sum += counts[s * per + j];
        }
        const double n = static_cast<double>(nsym) * m;
        const double mean = sum / n, var = std::max(sum2 / n - mean * mean, 0.0);
        double ks = 0.0, kb = 0.0;
        if (cfg_.format == optical_format::ook) {
            // Balanced bits: mean = Kb + Ks/2, variance = mean + Ks^2/4.
            ks = 2.0 * std::sqrt(std::max(var - mean, 0.0));
            kb = mean - ks / 2.0;
        } else if (per > static_cast<std::size_t>(m)) {
            // Guard slots see background only.
            kb = guard_sum / (static_cast<double>(nsym) * static_cast<double>(per - static_cast<std::size_t>(m)));
            ks = sum / static_cast<double>(nsym) - m * kb;
        } else {
            // One pulsed slot in M: mean = Kb + Ks/M, variance = mean + Ks^2 (M-1)/M^2.
            ks = m * std::sqrt(std::max(var - mean, 0.0) / (m - 1.0));
            kb = mean - ks / m;
        }
        est.signal = static_cast<float>(std::max(ks, 0.0));
        est.background = static_cast<float>(std::max(kb, 0.0));
        return est;
    }

    gaussian_estimate estimate_samples(std::span<const float> samples) const override {
        gaussian_estimate est;
        const std::size_t per = lay_.slots_per_symbol;
        if (samples.size() < per || samples.size() % per) return est;
        double s0 = 0, q0 = 0, n0 = 0, s1 = 0, q1 = 0, n1 = 0;
        auto add = [](double y, double& s, double& q, double& n) {
            if (!std::isfinite(y)) return;
            s += y;
            q += y * y;
            n += 1;
        };
        if (cfg_.format == optical_format::ook) {
            // Two-means clustering: threshold halfway between the class means.
            double lo = std::numeric_limits<double>::infinity(), hi = -lo;
            for (float y : samples)
                if (std::isfinite(y)) lo = std::min<double>(lo, y), hi = std::max<double>(hi, y);
            if (!(hi > lo)) return est;
            double t = 0.5 * (lo + hi);
            for (int it = 0; it < 8; ++it) {
                s0 = q0 = n0 = s1 = q1 = n1 = 0;
                for (float y : samples) y < t ? add(y, s0, q0, n0) : add(y, s1, q1, n1);
                if (n0 == 0 || n1 == 0) break;
                t = 0.5 * (s0 / n0 + s1 / n1);
            }
            if (n0 < 2 || n1 < 2) return est;
            // Spreads from the outer side of each class only: the tail of the
            // other class that crosses the threshold would inflate them.
            const double mu0 = s0 / n0, mu1 = s1 / n1;
            double v0 = 0, c0 = 0, v1 = 0, c1 = 0;
            for (float y : samples) {
                if (!std::isfinite(y)) continue;
                if (y < mu0) v0 += (y - mu0) * (y - mu0), c0 += 1;
                if (y > mu1) v1 += (y - mu1) * (y - mu1), c1 += 1;
            }
            if (c0 < 1 || c1 < 1) return est;
            est.mu0 = static_cast<float>(mu0);
            est.mu1 = static_cast<float>(mu1);
            est.sigma0 = static_cast<float>(std::sqrt(std::max(v0 / c0, 1e-12)));
            est.sigma1 = static_cast<float>(std::sqrt(std::max(v1 / c1, 1e-12)));
            return est;
        } else {
            // Decision-directed: the largest slot of a symbol is taken as the pulse.
            for (std::size_t s = 0; s < samples.size() / per; ++s) {
                const float* y = samples.data() + s * per;
                const auto best = static_cast<std::size_t>(std::max_element(y, y + cfg_.m) - y);
                for (std::size_t j = 0; j < per; ++j) j == best ? add(y[j], s1, q1, n1) : add(y[j], s0, q0, n0);
            }
        }
        if (n0 < 2 || n1 < 2) return est;
        est.mu0 = static_cast<float>(s0 / n0);
        est.mu1 = static_cast<float>(s1 / n1);
        est.sigma0 = static_cast<float>(std::sqrt(std::max(q0 / n0 - (s0 / n0) * (s0 / n0), 1e-12)));
        est.sigma1 = static_cast<float>(std::sqrt(std::max(q1 / n1 - (s1 / n1) * (s1 / n1), 1e-12)));
        return est;
    }

    isa level() const override { return level_; }
    const optical_config& config() const override { return cfg_; }

private:
    bool check_lengths(std::size_t slots, std::size_t bits, optical_result& res) const {
        if (slots == 0 || slots % lay_.slots_per_symbol || bits != slots / lay_.slots_per_symbol * lay_.bits_per_symbol) {
            res.status = optical_status::bad_length;
            return false;
        }
        res.slots = slots;
        res.bits = bits;
        return true;
    }

    // Exact bit LLRs from symbol metrics: log-sum-exp over the symbols with
    // the bit 0 minus over those with the bit 1 (shifted by the maximum).
    void exact_bits(std::size_t s, std::span<llr_t> llr) const {
        const unsigned bits = lay_.bits_per_symbol;
        const double top = *std::max_element(metric_.begin(), metric_.end());
        for (unsigned p = 0; p < bits; ++p) {
            double z0 = 0.0, z1 = 0.0;
            for (unsigned j = 0; j < cfg_.m; ++j) ((j >> p) & 1 ? z1 : z0) += std::exp(metric_[j] - top);
            llr[s * bits + (bits - 1 - p)] = to_llr(static_cast<float>(cfg_.llr_scale * (std::log(z0) - std::log(z1))));
        }
    }

    static std::int8_t to_llr(float v) {
        if (!(v == v)) return 0;
        return static_cast<std::int8_t>(std::lrint(std::clamp(v, -127.0f, 127.0f)));
    }

    static constexpr std::size_t max_chunk = 64;
    optical_config cfg_;
    optical_layout lay_;
    const detail::optical_kernels& k_;
    isa level_;
    std::vector<std::uint16_t> max0_, max1_;
    mutable std::vector<double> metric_;
};

}  // namespace

std::unique_ptr<optical_demodulator> create_optical_demodulator(const optical_config& cfg) {
    validate_optical_config(cfg);
    const isa level = *parse_isa(cfg.isa);
#if defined(QLINK_OPTICAL_HAVE_AVX2)
    if (level >= isa::avx2) return std::make_unique<optical_demodulator_impl>(cfg, detail::optical_kernels_avx2(), isa::avx2);
#endif
    (void)level;
    return std::make_unique<optical_demodulator_impl>(cfg, detail::optical_kernels_generic(), isa::generic);
}

}  // namespace qlink::modem
