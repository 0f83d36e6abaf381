// The interleaved-codeblock syndrome check: tables, the generic kernel and the kernel choice.
#include "chain/rs_check.hpp"

#include "rs/rs_gf.hpp"

#include <algorithm>
#include <stdexcept>

namespace qlink::modem::detail {

void rs_block_syndromes_generic(const rs_block_args& a, std::uint8_t* s) {
    const gf_tables& t = gf();
    const unsigned len = rs_n - a.first;
    for (unsigned w = 0; w < a.il; ++w) {
        for (unsigned j = 0; j < rs_check_roots; ++j) {
            if (j >= a.nroots) {
                s[w * rs_check_roots + j] = 0;
                continue;
            }
            // Horner in log form: S <- S * gamma_j + r_n, r_n in transmission order.
            unsigned acc = 0;
            for (unsigned n = 0; n < len; ++n) {
                const std::uint8_t r = a.block[std::size_t{n} * a.il + w];
                acc = (acc ? t.exp[t.log[acc] + a.log_gamma[j]] : 0u) ^ (a.dual ? t.dual_to_conv[r] : r);
            }
            s[w * rs_check_roots + j] = static_cast<std::uint8_t>(acc);
        }
    }
}

rs_block_check::rs_block_check(const rs_config& cfg, isa level)
    : il_(cfg.interleave), first_(cfg.virtual_fill), nroots_(2 * cfg.e), dual_(cfg.basis == rs_basis::dual),
      level_(level >= isa::avx2 ? isa::avx2 : isa::generic) {
    if (cfg.e != 8 && cfg.e != 16) throw std::invalid_argument("rs_block_check: e must be 8 or 16");
    if (il_ == 0 || il_ > rs_max_interleave) throw std::invalid_argument("rs_block_check: interleave must be 1..8");
    if (first_ > rs_n - 1 - nroots_) throw std::invalid_argument("rs_block_check: virtual_fill out of range");
#if !defined(__x86_64__)
    level_ = isa::generic;
#endif
    const gf_tables& t = gf();
    const unsigned fcr = 128 - cfg.e;
    // gamma_j^(254-n) for the symbol at power position n, nibbles laid out as rs_syndromes_avx2 wants.
    syn_nib_.assign(std::size_t{rs_n} * 64, 0);
    for (unsigned n = 0; n < rs_n; ++n)
        for (unsigned j = 0; j < nroots_; ++j) {
            const std::uint8_t c = t.pow_alpha(static_cast<long long>(rs_prim * (fcr + j)) * (254 - n));
            const unsigned at = n * 64 + (j / 16) * 32 + j % 16;
            syn_nib_[at] = c & 0x0f;
            syn_nib_[at + 16] = c >> 4;
        }
    for (unsigned j = 0; j < nroots_; ++j) log_gamma_[j] = static_cast<std::uint16_t>((rs_prim * (fcr + j)) % 255);
}

bool rs_block_check::syndromes(std::span<const std::uint8_t> codeblock, std::span<std::uint8_t> s) const {
    if (codeblock.size() != codeblock_size() || s.size() < std::size_t{il_} * rs_check_roots) return false;
    const gf_tables& t = gf();
    const rs_block_args a{codeblock.data(), il_, first_, nroots_, dual_ ? t.nib_dual.data() : t.nib.data(),
                          syn_nib_.data(), log_gamma_.data(), dual_};
#if defined(__x86_64__)
    if (level_ == isa::avx2) {
        rs_block_syndromes_avx2(a, s.data());
        return true;
    }
#endif
    rs_block_syndromes_generic(a, s.data());
    return true;
}

bool rs_block_check::clean(std::span<const std::uint8_t> codeblock) const {
    std::array<std::uint8_t, rs_max_interleave * rs_check_roots> s;
    if (!syndromes(codeblock, s)) return false;
    std::uint8_t any = 0;
    for (std::size_t k = 0; k < std::size_t{il_} * rs_check_roots; ++k) any |= s[k];
    return any == 0;
}

}  // namespace qlink::modem::detail
