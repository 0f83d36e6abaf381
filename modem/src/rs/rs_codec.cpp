// CCSDS Reed-Solomon codec: field tables, encoder, Berlekamp-Massey/Chien/Forney decoder, kernel dispatch.
#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"
#include "rs/rs_gf.hpp"

namespace qlink::modem {
namespace detail {
namespace {

// Berlekamp's T matrix (CCSDS 131.0-B annex): the dual-basis image of conventional bit 7-j is row j.
constexpr std::array<std::uint8_t, 8> t_rows{0x8d, 0xef, 0xec, 0x86, 0xfa, 0x99, 0xaf, 0x7b};

gf_tables build_gf() {
    gf_tables t;
    unsigned x = 1;
    for (unsigned k = 0; k < 255; ++k) {
        t.exp[k] = static_cast<std::uint8_t>(x);
        t.log[x] = static_cast<std::uint16_t>(k);
        x <<= 1;
        if (x & 0x100) x ^= rs_field_poly;
    }
    for (unsigned k = 255; k < t.exp.size(); ++k) t.exp[k] = t.exp[k - 255];
    for (unsigned c = 0; c < 256; ++c)
        for (unsigned v = 0; v < 16; ++v) {
            t.nib[c][v] = t.mul(c, v);
            t.nib[c][16 + v] = t.mul(c, v << 4);
        }
    for (unsigned v = 0; v < 256; ++v) {
        unsigned d = 0;
        for (unsigned j = 0; j < 8; ++j)
            if (v & (0x80u >> j)) d ^= t_rows[j];
        t.conv_to_dual[v] = static_cast<std::uint8_t>(d);
        t.dual_to_conv[d] = static_cast<std::uint8_t>(v);
    }
    for (unsigned d = 0; d < 256; ++d) t.nib_dual[d] = t.nib[t.dual_to_conv[d]];
    for (unsigned k = 0; k <= 16; ++k) {
        for (unsigned l = 0; l < 32; ++l) t.chien_init[k][l] = t.pow_alpha(-static_cast<long long>(rs_prim * k * l));
        t.chien_step[k] = t.pow_alpha(-static_cast<long long>(rs_prim * 32 * k));
        t.chien_step16[k] = t.pow_alpha(-static_cast<long long>(rs_prim * 16 * k));
    }
    return t;
}

}  // namespace

const gf_tables& gf() {
    static const gf_tables tables = build_gf();
    return tables;
}

}  // namespace detail

namespace {

using detail::gf;
using detail::gf_tables;
using detail::rs_max_roots;
using detail::rs_n;

enum class rs_kernel { generic, sse41, avx2 };

class rs_codec_impl final : public rs_codec {
public:
    rs_codec_impl(const rs_config& cfg, rs_kernel kern)
        : e_(cfg.e), nroots_(2 * cfg.e), fcr_(128 - cfg.e), il_(cfg.interleave), fill_(cfg.virtual_fill),
          dual_(cfg.basis == rs_basis::dual), kernel_(kern), t_(gf()) {
        // g(x) = prod_{j < 2E} (x - gamma_j), gamma_j = alpha^(11 (fcr + j)); g[i] is the x^i coefficient.
        std::array<std::uint8_t, rs_max_roots + 1> g{};
        g[0] = 1;
        for (unsigned j = 0; j < nroots_; ++j) {
            const std::uint8_t root = t_.pow_alpha(static_cast<long long>(detail::rs_prim * (fcr_ + j)));
            for (unsigned i = j + 1; i > 0; --i) g[i] = static_cast<std::uint8_t>(g[i - 1] ^ t_.mul(g[i], root));
            g[0] = t_.mul(g[0], root);
        }
        // enc_[fb][k] = fb * g_(2E-1-k): the row xored into the parity register for feedback fb.
        enc_.assign(256 * nroots_, 0);
        for (unsigned fb = 0; fb < 256; ++fb)
            for (unsigned k = 0; k < nroots_; ++k) enc_[fb * nroots_ + k] = t_.mul(fb, g[nroots_ - 1 - k]);
        // syn_[n]: nibbles of gamma_j^(254-n) for j < 2E (zero lanes above), laid out for rs_syndromes_avx2.
        syn_.assign(std::size_t{rs_n} * 64, 0);
        for (unsigned n = 0; n < rs_n; ++n)
            for (unsigned j = 0; j < nroots_; ++j) {
                const std::uint8_t c = t_.pow_alpha(static_cast<long long>(detail::rs_prim * (fcr_ + j)) * (254 - n));
                const unsigned at = n * 64 + (j / 16) * 32 + j % 16;
                syn_[at] = c & 0x0f;
                syn_[at + 16] = c >> 4;
            }
        for (unsigned j = 0; j < nroots_; ++j) log_gamma_[j] = (detail::rs_prim * (fcr_ + j)) % 255;
    }

    std::size_t message_size() const override { return std::size_t{il_} * (rs_n - nroots_ - fill_); }
    std::size_t codeblock_size() const override { return std::size_t{il_} * (rs_n - fill_); }
    std::string_view kernel_name() const override {
        switch (kernel_) {
        case rs_kernel::avx2: return "avx2";
        case rs_kernel::sse41: return "sse41";
        case rs_kernel::generic: break;
        }
        return "generic";
    }

    bool encode(std::span<const std::uint8_t> message, std::span<std::uint8_t> codeblock) const override {
        if (message.size() != message_size() || codeblock.size() != codeblock_size()) return false;
        const std::size_t k = rs_n - nroots_ - fill_;
        for (unsigned w = 0; w < il_; ++w) {
            std::array<std::uint8_t, rs_max_roots + 1> reg{};  // one spare byte so the shift reads in bounds
            for (std::size_t t = 0; t < k; ++t) {
                std::uint8_t u = message[t * il_ + w];
                if (dual_) u = t_.dual_to_conv[u];
                const std::uint8_t fb = u ^ reg[0];
                const std::uint8_t* row = &enc_[std::size_t{fb} * nroots_];
                for (unsigned i = 0; i < nroots_; ++i) reg[i] = reg[i + 1] ^ row[i];
            }
            for (unsigned i = 0; i < nroots_; ++i)
                codeblock[(k + i) * il_ + w] = dual_ ? t_.conv_to_dual[reg[i]] : reg[i];
        }
        if (codeblock.data() != message.data())
            for (std::size_t t = 0; t < message.size(); ++t) codeblock[t] = message[t];
        return true;
    }

    rs_decode_result decode(std::span<std::uint8_t> codeblock) const override {
        rs_decode_result res;
        if (codeblock.size() != codeblock_size()) {
            res.ok = false;
            res.failed_codewords = il_;
            for (unsigned w = 0; w < il_; ++w) res.per_codeword[w] = -1;
            return res;
        }
        const std::size_t len = rs_n - fill_;
        for (unsigned w = 0; w < il_; ++w) {
            // Clean words (the common case) are checked straight from the received symbols: no copy
            // for I = 1 and no basis conversion (the dual-basis shuffle tables absorb it).
            std::array<std::uint8_t, rs_n> gathered;
            const std::uint8_t* rx = codeblock.data();
            if (il_ > 1) {
                for (std::size_t t = 0; t < len; ++t) gathered[t] = codeblock[t * il_ + w];
                rx = gathered.data();
            }
            alignas(32) std::array<std::uint8_t, rs_max_roots> s{};
            syndromes(rx, dual_, s.data());
            bool clean = true;
            for (unsigned j = 0; j < nroots_; ++j) clean = clean && s[j] == 0;
            if (clean) {
                res.per_codeword[w] = 0;
                continue;
            }
            std::array<std::uint8_t, rs_n> cw{};  // cw[n]: coefficient of x^(254-n); n < fill stay 0
            for (std::size_t t = 0; t < len; ++t) cw[fill_ + t] = dual_ ? t_.dual_to_conv[rx[t]] : rx[t];
            const int fixed = correct_word(cw.data(), s.data());
            res.per_codeword[w] = static_cast<std::int16_t>(fixed);
            if (fixed < 0) {
                ++res.failed_codewords;
                res.ok = false;
                continue;
            }
            res.corrected += static_cast<unsigned>(fixed);
            for (std::size_t t = 0; t < len; ++t) {
                const std::uint8_t v = dual_ ? t_.conv_to_dual[cw[fill_ + t]] : cw[fill_ + t];
                codeblock[t * il_ + w] = v;
            }
        }
        return res;
    }

private:
    // Syndromes of the transmitted symbols rx[0 .. 255-fill) (dual or conventional basis).
    void syndromes(const std::uint8_t* rx, bool dual, std::uint8_t* s) const {
#if defined(__x86_64__)
        if (kernel_ == rs_kernel::avx2)
            return detail::rs_syndromes_avx2(rx, fill_, nroots_, dual ? t_.nib_dual.data() : t_.nib.data(), syn_.data(), s);
        if (kernel_ == rs_kernel::sse41)
            return detail::rs_syndromes_sse41(rx, fill_, nroots_, dual ? t_.nib_dual.data() : t_.nib.data(), syn_.data(), s);
#endif
        // Horner in log form: S_j <- S_j * gamma_j + r_n.
        const std::size_t len = rs_n - fill_;
        for (unsigned j = 0; j < nroots_; ++j) {
            unsigned acc = 0;
            for (std::size_t t = 0; t < len; ++t)
                acc = (acc ? t_.exp[t_.log[acc] + log_gamma_[j]] : 0u) ^ (dual ? t_.dual_to_conv[rx[t]] : rx[t]);
            s[j] = static_cast<std::uint8_t>(acc);
        }
        for (unsigned j = nroots_; j < rs_max_roots; ++j) s[j] = 0;
    }

    unsigned chien(const std::uint8_t* lambda, unsigned deg, std::uint8_t* roots) const {
        const unsigned max_power = rs_n - 1 - fill_;  // powers of the virtual fill cannot be in error
#if defined(__x86_64__)
        if (kernel_ == rs_kernel::avx2) return detail::rs_chien_avx2(lambda, deg, max_power, roots, e_);
        if (kernel_ == rs_kernel::sse41) return detail::rs_chien_sse41(lambda, deg, max_power, roots, e_);
#endif
        unsigned found = 0;
        std::array<unsigned, 17> log_l{};
        for (unsigned k = 0; k <= deg; ++k) log_l[k] = lambda[k] ? t_.log[lambda[k]] : 0xffff;
        for (unsigned i = 0; i <= max_power; ++i) {
            unsigned sum = lambda[0];
            const unsigned step = (255 - (detail::rs_prim * i) % 255) % 255;  // log of beta^-i
            unsigned lp = 0;
            for (unsigned k = 1; k <= deg; ++k) {
                lp += step;
                if (lp >= 255) lp -= 255;
                if (log_l[k] != 0xffff) sum ^= t_.exp[log_l[k] + lp];
            }
            if (sum == 0) {
                if (found < e_) roots[found] = static_cast<std::uint8_t>(i);
                ++found;
            }
        }
        return found;
    }

    // Corrects one codeword (conventional basis, full 255 symbols) with nonzero syndromes `s`, in
    // place. Returns symbols corrected or -1; on -1 the word is unchanged.
    int correct_word(std::uint8_t* cw, const std::uint8_t* s) const {
        // Berlekamp-Massey: shortest LFSR Lambda generating the syndromes.
        std::array<std::uint8_t, rs_max_roots + 1> lambda{}, b{}, tmp{};
        lambda[0] = b[0] = 1;
        unsigned l = 0, shift = 1, deg_b = 0;
        std::uint8_t last_d = 1;
        for (unsigned r = 0; r < nroots_; ++r) {
            unsigned d = s[r];
            for (unsigned i = 1; i <= l; ++i) d ^= t_.mul(lambda[i], s[r - i]);
            if (d == 0) {
                ++shift;
                continue;
            }
            const unsigned log_coef = t_.log[d] + 255 - t_.log[last_d];  // d / last_d
            tmp = lambda;
            for (unsigned i = 0; i <= deg_b && i + shift <= nroots_; ++i)
                if (b[i]) lambda[i + shift] ^= t_.exp[(log_coef + t_.log[b[i]]) % 255];
            if (2 * l <= r) {
                deg_b = l;  // b takes the old lambda, whose degree is at most its length l
                l = r + 1 - l;
                b = tmp;
                last_d = static_cast<std::uint8_t>(d);
                shift = 1;
            } else {
                ++shift;
            }
        }
        unsigned deg = 0;
        for (unsigned i = 0; i <= nroots_; ++i)
            if (lambda[i]) deg = i;
        if (l > e_ || deg != l) return -1;

        // Chien: every root must lie in the transmitted range, and there must be exactly deg of them.
        std::array<std::uint8_t, 16> roots{};
        if (chien(lambda.data(), deg, roots.data()) != deg) return -1;

        // Omega = S * Lambda mod x^2E; Forney: e = X^(1-fcr) Omega(X^-1) / Lambda'(X^-1), X = beta^i.
        // For a decodable word deg Omega < deg Lambda; higher terms are not computed, and a word for
        // which they would matter fails the syndrome check below.
        std::array<std::uint8_t, rs_max_roots> omega{};
        for (unsigned i = 0; i < deg; ++i) {
            unsigned acc = 0;
            for (unsigned k = 0; k <= std::min(i, deg); ++k) acc ^= t_.mul(lambda[k], s[i - k]);
            omega[i] = static_cast<std::uint8_t>(acc);
        }
        std::array<std::uint8_t, 16> pos{}, val{};
        for (unsigned r = 0; r < deg; ++r) {
            const unsigned i = roots[r];
            const unsigned log_x = (detail::rs_prim * i) % 255;
            const unsigned log_xinv = (255 - log_x) % 255;
            unsigned num = 0, den = 0, lp = 0;
            for (unsigned k = 0; k < deg; ++k) {  // Omega(X^-1)
                if (omega[k]) num ^= t_.exp[t_.log[omega[k]] + lp];
                lp += log_xinv;
                if (lp >= 255) lp -= 255;
            }
            lp = 0;
            for (unsigned k = 1; k <= deg; k += 2) {  // Lambda'(X^-1): odd terms only in characteristic 2
                if (lambda[k]) den ^= t_.exp[t_.log[lambda[k]] + lp];
                lp = (lp + 2 * log_xinv) % 255;
            }
            if (num == 0 || den == 0) return -1;
            const long long log_e = static_cast<long long>(t_.log[num]) - t_.log[den] +
                                    static_cast<long long>(log_x) * (1 - static_cast<long long>(fcr_));
            pos[r] = static_cast<std::uint8_t>(254 - i);
            val[r] = t_.pow_alpha(log_e);
        }
        for (unsigned r = 0; r < deg; ++r) cw[pos[r]] ^= val[r];
        // Belt and braces: the result must be a codeword, or we undo and report failure.
        alignas(32) std::array<std::uint8_t, rs_max_roots> check{};
        syndromes(cw + fill_, false, check.data());
        for (unsigned j = 0; j < nroots_; ++j)
            if (check[j]) {
                for (unsigned r = 0; r < deg; ++r) cw[pos[r]] ^= val[r];
                return -1;
            }
        return static_cast<int>(deg);
    }

    unsigned e_, nroots_, fcr_, il_, fill_;
    bool dual_;
    rs_kernel kernel_;
    const gf_tables& t_;
    std::vector<std::uint8_t> enc_;
    std::vector<std::uint8_t> syn_;
    std::array<unsigned, rs_max_roots> log_gamma_{};
};

}  // namespace

std::unique_ptr<rs_codec> create_rs_codec(const rs_config& c) {
    if (c.e != 8 && c.e != 16) throw std::invalid_argument("rs_config.e: must be 8 or 16, got " + std::to_string(c.e));
    const unsigned allowed[] = {1, 2, 3, 4, 5, 8};
    if (std::find(std::begin(allowed), std::end(allowed), c.interleave) == std::end(allowed))
        throw std::invalid_argument("rs_config.interleave: must be one of 1, 2, 3, 4, 5, 8, got " +
                                    std::to_string(c.interleave));
    if (c.virtual_fill > 254 - 2 * c.e)
        throw std::invalid_argument("rs_config.virtual_fill: must be at most " + std::to_string(254 - 2 * c.e) +
                                    " for e = " + std::to_string(c.e) + ", got " + std::to_string(c.virtual_fill));
    if (c.basis != rs_basis::dual && c.basis != rs_basis::conventional)
        throw std::invalid_argument("rs_config.basis: must be dual or conventional");
    const auto level = parse_isa(c.isa);
    if (!level) throw std::invalid_argument("rs_config.isa: must be auto, generic, sse41, avx2 or avx512, got '" + c.isa + "'");
    if (!isa_supported(*level))
        throw std::invalid_argument("rs_config.isa: '" + c.isa + "' is not supported by this CPU");
    const rs_kernel k = *level >= isa::avx2 ? rs_kernel::avx2 : *level >= isa::sse41 ? rs_kernel::sse41 : rs_kernel::generic;
    return std::make_unique<rs_codec_impl>(c, k);
}

}  // namespace qlink::modem
