// Scalar layered min-sum LDPC decoders (int8 reference and float), and the run-time ISA factory.
#include "ldpc_decoder_impl.hpp"

#include <cmath>
#include <stdexcept>

namespace qlink::modem {
namespace detail {

void ldpc_check_groups(const ldpc_code& code) {
    const std::size_t z = code.z();
    const auto& edges = code.edges();
    for (std::size_t b = 0; b < code.row_blocks(); ++b)
        for (std::size_t e1 = code.row_begin(b); e1 < code.row_begin(b + 1); ++e1)
            for (std::size_t e2 = e1 + 1; e2 < code.row_begin(b + 1); ++e2) {
                if (edges[e1].col_block != edges[e2].col_block) continue;
                const std::size_t d = (edges[e1].shift + z - edges[e2].shift) % z;
                if (std::min(d, z - d) < ldpc_group_rows)
                    throw std::logic_error("ldpc: rows of one layer group share a column");
            }
}

void ldpc_load_mother(const ldpc_code& code, std::span<const llr_t> llr, std::span<llr_t> mother) {
    const std::size_t fill = code.fill_bits(), sent = code.n_mother() - fill - code.punctured_bits();
    std::fill(mother.begin(), mother.begin() + static_cast<std::ptrdiff_t>(fill), llr_max);
    for (std::size_t i = 0; i < sent; ++i) mother[fill + i] = saturate_llr(llr[i]);  // -128 never enters
    std::fill(mother.begin() + static_cast<std::ptrdiff_t>(fill + sent), mother.end(), llr_erasure);
}

namespace {

class ldpc_decoder_generic final : public ldpc_decoder {
public:
    explicit ldpc_decoder_generic(const config& cfg) : cfg_(cfg), code_(cfg.code), fill_(code_.fill_bits()) {
        ldpc_check_groups(code_);
        app_.assign(code_.n_mother(), 0);
        msg_.assign(code_.edges().size() * code_.z(), 0);
        std::size_t dc = 0;
        for (std::size_t b = 0; b < code_.row_blocks(); ++b)
            dc = std::max(dc, code_.row_begin(b + 1) - code_.row_begin(b));
        q_.assign(dc, 0);
        cols_.assign(dc, 0);
    }

    ldpc_decode_result decode(std::span<const llr_t> llr, std::span<std::uint8_t> info) override {
        ldpc_decode_result res;
        if (llr.size() != code_.n() || info.size() != code_.k() / 8) {
            res.status = ldpc_status::bad_length;
            return res;
        }
        ldpc_load_mother(code_, llr, app_);
        std::fill(msg_.begin(), msg_.end(), std::int8_t{0});
        ldpc_run_iterations(cfg_, res, [this](unsigned) { iterate(); }, [this] { return syndrome_ok(); });
        pack_hard_decisions(std::span<const llr_t>(app_).subspan(code_.fill_bits(), code_.k()), info);
        return res;
    }

    std::span<const llr_t> app() const override { return app_; }
    isa level() const override { return isa::generic; }
    const ldpc_code& code() const override { return code_; }

private:
    void iterate() {
        const std::size_t z = code_.z();
        const auto& edges = code_.edges();
        for (std::size_t b = 0; b < code_.row_blocks(); ++b) {
            const std::size_t e0 = code_.row_begin(b), dc = code_.row_begin(b + 1) - e0;
            for (std::size_t r = 0; r < z; ++r) {
                std::uint8_t m1 = 127, m2 = 127, idx = 0;
                std::int8_t total = 0;
                for (std::size_t e = 0; e < dc; ++e) {
                    const auto& ed = edges[e0 + e];
                    const std::size_t col = ed.col_block * z + (r + ed.shift) % z;
                    cols_[e] = col;
                    const std::int8_t l = app_[col];
                    // A saturated a-posteriori value has lost the part above
                    // 127; subtracting the old message from it would
                    // understate it and can flip it, so it passes unchanged.
                    const std::int8_t q = (l == 127 || l == -127) ? l : ldpc_sub_q(l, msg_[(e0 + e) * z + r]);
                    q_[e] = q;
                    total = static_cast<std::int8_t>(total ^ q);
                    const auto mag = static_cast<std::uint8_t>(q < 0 ? -q : q);
                    m2 = std::min(m2, std::max(m1, mag));
                    if (mag < m1) idx = static_cast<std::uint8_t>(e);
                    m1 = std::min(m1, mag);
                }
                const std::uint8_t s1 = ldpc_scale(m1, cfg_.rule, cfg_.offset, cfg_.message_limit);
                const std::uint8_t s2 = ldpc_scale(m2, cfg_.rule, cfg_.offset, cfg_.message_limit);
                for (std::size_t e = 0; e < dc; ++e) {
                    // Fill bits are known zeros: they keep +127 and get no
                    // message, else iterations can talk them into ones.
                    if (cols_[e] < fill_) continue;
                    const int mag = e == idx ? s2 : s1;
                    const int rnew = static_cast<std::int8_t>(q_[e] ^ total) < 0 ? -mag : mag;
                    msg_[(e0 + e) * z + r] = static_cast<std::int8_t>(rnew);
                    app_[cols_[e]] = ldpc_sat(q_[e] + rnew);
                }
            }
        }
    }

    bool syndrome_ok() const {
        const std::size_t z = code_.z();
        const auto& edges = code_.edges();
        for (std::size_t b = 0; b < code_.row_blocks(); ++b)
            for (std::size_t r = 0; r < z; ++r) {
                unsigned parity = 0;
                for (std::size_t e = code_.row_begin(b); e < code_.row_begin(b + 1); ++e)
                    parity ^= hard_bit(app_[edges[e].col_block * z + (r + edges[e].shift) % z]);
                if (parity) return false;
            }
        return true;
    }

    config cfg_;
    ldpc_code code_;
    std::size_t fill_;
    std::vector<llr_t> app_;
    std::vector<std::int8_t> msg_;  // check-to-variable message per edge and row: [edge][row]
    std::vector<std::int8_t> q_;
    std::vector<std::size_t> cols_;
};

}  // namespace

std::unique_ptr<ldpc_decoder> make_ldpc_decoder_generic(const ldpc_decoder::config& cfg) {
    return std::make_unique<ldpc_decoder_generic>(cfg);
}

}  // namespace detail

namespace {

void check_config(const ldpc_decoder::config& cfg) {
    if (cfg.max_iterations == 0) throw std::invalid_argument("ldpc decoder: max_iterations must be >= 1");
    if (cfg.message_limit == 0 || cfg.message_limit > 127)
        throw std::invalid_argument("ldpc decoder: message_limit must be 1..127");
    const auto level = parse_isa(cfg.isa);
    if (!level) throw std::invalid_argument("ldpc decoder: isa '" + cfg.isa + "' (allowed: auto|generic|sse41|avx2|avx512)");
    if (!isa_supported(*level)) throw std::invalid_argument("ldpc decoder: isa '" + cfg.isa + "' not supported by this CPU");
}

// Frames one after the other through the single-frame generic decoder.
class ldpc_batch_decoder_generic final : public ldpc_batch_decoder {
public:
    explicit ldpc_batch_decoder_generic(const ldpc_decoder::config& cfg)
        : dec_(detail::make_ldpc_decoder_generic(cfg)), apps_(batch_frames * dec_->code().n_mother()) {}

    std::size_t batch() const override { return batch_frames; }

    ldpc_status decode(std::span<const llr_t> llr, std::span<std::uint8_t> info,
                       std::span<ldpc_decode_result> results) override {
        const std::size_t f = results.size(), n = dec_->code().n(), kb = dec_->code().k() / 8;
        if (f == 0 || f > batch_frames || llr.size() != f * n || info.size() != f * kb) return ldpc_status::bad_length;
        const std::size_t nm = dec_->code().n_mother();
        for (std::size_t i = 0; i < f; ++i) {
            results[i] = dec_->decode(llr.subspan(i * n, n), info.subspan(i * kb, kb));
            std::copy(dec_->app().begin(), dec_->app().end(), apps_.begin() + static_cast<std::ptrdiff_t>(i * nm));
        }
        return ldpc_status::ok;
    }

    void app(std::size_t f, std::span<llr_t> out) const override {
        const std::size_t nm = dec_->code().n_mother();
        if (f >= batch_frames || out.size() != nm) return;
        std::copy_n(apps_.begin() + static_cast<std::ptrdiff_t>(f * nm), nm, out.begin());
    }

    isa level() const override { return isa::generic; }
    const ldpc_code& code() const override { return dec_->code(); }

private:
    static constexpr std::size_t batch_frames = 32;
    std::unique_ptr<ldpc_decoder> dec_;
    std::vector<llr_t> apps_;
};

}  // namespace

std::unique_ptr<ldpc_batch_decoder> create_ldpc_batch_decoder(const ldpc_decoder::config& cfg) {
    check_config(cfg);
#if defined(QLINK_LDPC_HAVE_AVX2)
    if (*parse_isa(cfg.isa) >= isa::avx2) return detail::make_ldpc_batch_decoder_avx2(cfg);
#endif
    return std::make_unique<ldpc_batch_decoder_generic>(cfg);
}

std::unique_ptr<ldpc_decoder> create_ldpc_decoder(const ldpc_decoder::config& cfg) {
    check_config(cfg);
#if defined(QLINK_LDPC_HAVE_AVX512)
    // Codes whose 64-row groups would share a column (AR4JA with M = 128, where
    // z = 32) keep the AVX2 decoder.
    if (*parse_isa(cfg.isa) >= isa::avx512)
        if (auto dec = detail::make_ldpc_decoder_avx512(cfg)) return dec;
#endif
#if defined(QLINK_LDPC_HAVE_AVX2)
    if (*parse_isa(cfg.isa) >= isa::avx2) return detail::make_ldpc_decoder_avx2(cfg);
#endif
    return detail::make_ldpc_decoder_generic(cfg);
}

ldpc_float_decoder::ldpc_float_decoder(const config& cfg) : cfg_(cfg), code_(cfg.code) {
    if (cfg.max_iterations == 0) throw std::invalid_argument("ldpc float decoder: max_iterations must be >= 1");
    app_.assign(code_.n_mother(), 0.0f);
    msg_.assign(code_.edges().size() * code_.z(), 0.0f);
    q_.assign(code_.edges().size(), 0.0f);
}

ldpc_decode_result ldpc_float_decoder::decode(std::span<const float> llr, std::span<std::uint8_t> info) {
    ldpc_decode_result res;
    if (llr.size() != code_.n() || info.size() != code_.k() / 8) {
        res.status = ldpc_status::bad_length;
        return res;
    }
    const std::size_t z = code_.z(), fill = code_.fill_bits();
    const std::size_t sent = code_.n_mother() - fill - code_.punctured_bits();
    std::fill(app_.begin(), app_.end(), 0.0f);
    std::fill(app_.begin(), app_.begin() + static_cast<std::ptrdiff_t>(fill), 1e6f);
    for (std::size_t i = 0; i < sent; ++i) app_[fill + i] = std::isfinite(llr[i]) ? llr[i] : 0.0f;
    std::fill(msg_.begin(), msg_.end(), 0.0f);
    const auto& edges = code_.edges();
    auto syndrome_ok = [&] {
        for (std::size_t b = 0; b < code_.row_blocks(); ++b)
            for (std::size_t r = 0; r < z; ++r) {
                unsigned parity = 0;
                for (std::size_t e = code_.row_begin(b); e < code_.row_begin(b + 1); ++e)
                    parity ^= app_[edges[e].col_block * z + (r + edges[e].shift) % z] < 0.0f ? 1u : 0u;
                if (parity) return false;
            }
        return true;
    };
    for (unsigned it = 0; it < cfg_.max_iterations; ++it) {
        for (std::size_t b = 0; b < code_.row_blocks(); ++b) {
            const std::size_t e0 = code_.row_begin(b), dc = code_.row_begin(b + 1) - e0;
            for (std::size_t r = 0; r < z; ++r) {
                float m1 = INFINITY, m2 = INFINITY;
                std::size_t idx = 0;
                bool neg = false;
                for (std::size_t e = 0; e < dc; ++e) {
                    const std::size_t col = edges[e0 + e].col_block * z + (r + edges[e0 + e].shift) % z;
                    const float q = app_[col] - msg_[(e0 + e) * z + r];
                    q_[e] = q;
                    neg ^= q < 0.0f;
                    const float mag = std::fabs(q);
                    if (mag < m1) {
                        m2 = m1;
                        m1 = mag;
                        idx = e;
                    } else if (mag < m2) {
                        m2 = mag;
                    }
                }
                for (std::size_t e = 0; e < dc; ++e) {
                    const std::size_t col = edges[e0 + e].col_block * z + (r + edges[e0 + e].shift) % z;
                    const float mag = cfg_.factor * (e == idx ? m2 : m1);
                    const float rnew = (neg != (q_[e] < 0.0f)) ? -mag : mag;
                    msg_[(e0 + e) * z + r] = rnew;
                    app_[col] = q_[e] + rnew;
                }
            }
        }
        res.iterations = it + 1;
        if (cfg_.early_termination && syndrome_ok()) {
            res.success = true;
            break;
        }
    }
    if (!cfg_.early_termination) res.success = syndrome_ok();
    std::fill(info.begin(), info.end(), std::uint8_t{0});
    for (std::size_t i = 0; i < code_.k(); ++i)
        if (app_[fill + i] < 0.0f) info[i >> 3] |= static_cast<std::uint8_t>(1u << (7 - (i & 7)));
    return res;
}

}  // namespace qlink::modem
