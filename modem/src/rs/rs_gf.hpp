// Private: GF(2^8) over F(x) = x^8+x^7+x^2+x+1 (CCSDS), Berlekamp dual-basis maps, RS kernel entry points.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace qlink::modem::detail {

inline constexpr unsigned rs_field_poly = 0x187;
inline constexpr unsigned rs_prim = 11;          // beta = alpha^11 generates the code's roots
inline constexpr unsigned rs_max_roots = 32;     // 2E for E = 16
inline constexpr unsigned rs_n = 255;

struct gf_tables {
    std::array<std::uint8_t, 512> exp{};   // alpha^k for k < 510, so log sums need no reduction
    std::array<std::uint16_t, 256> log{};  // log[0] is unused (set to 0)
    /// nib[c] = {c*v for v < 16, c*(v << 4) for v < 16}: multiply by c with two 16-entry shuffles.
    std::array<std::array<std::uint8_t, 32>, 256> nib{};
    /// nib_dual[d] = nib[dual_to_conv[d]]: multiplies a dual-basis symbol without converting it first.
    std::array<std::array<std::uint8_t, 32>, 256> nib_dual{};
    std::array<std::uint8_t, 256> conv_to_dual{};
    std::array<std::uint8_t, 256> dual_to_conv{};
    /// Chien search: chien_init[k][l] = beta^(-k l), chien_step[k] = beta^(-32 k), k <= 16.
    std::array<std::array<std::uint8_t, 32>, 17> chien_init{};
    std::array<std::uint8_t, 17> chien_step{};
    std::array<std::uint8_t, 17> chien_step16{};  // beta^(-16 k), for 16-lane kernels

    std::uint8_t mul(unsigned a, unsigned b) const {
        return (a == 0 || b == 0) ? 0 : exp[log[a] + log[b]];
    }
    std::uint8_t pow_alpha(long long k) const {  // alpha^k for any integer k
        long long m = k % 255;
        if (m < 0) m += 255;
        return exp[static_cast<std::size_t>(m)];
    }
};

/// Built once, immutable afterwards.
const gf_tables& gf();

/// Syndromes S_j = r(gamma_j) of a codeword whose symbol rx[t] is the coefficient of x^(254-first-t),
/// t < 255 - first (the `first` virtual-fill symbols are zero and not stored). `nib` is gf().nib or
/// gf().nib_dual (rx in dual basis). `syn_nib` holds 64 bytes per power position n = first + t: the
/// low then high nibbles of gamma_j^(254-n) for j < 16, then the same for j = 16..31. Writes 32 syndromes
/// (zero above nroots).
void rs_syndromes_avx2(const std::uint8_t* rx, unsigned first, unsigned nroots, const std::array<std::uint8_t, 32>* nib,
                       const std::uint8_t* syn_nib, std::uint8_t* s);

/// Chien search over powers i in [0, max_power]: writes each i with Lambda(beta^-i) = 0 to
/// `roots` (at most max_roots of them) and returns how many there are in total.
unsigned rs_chien_avx2(const std::uint8_t* lambda, unsigned degree, unsigned max_power, std::uint8_t* roots,
                       unsigned max_roots);

/// The same two kernels on 16-byte vectors (SSSE3 shuffles; part of the x86-64-v2 baseline).
void rs_syndromes_sse41(const std::uint8_t* rx, unsigned first, unsigned nroots, const std::array<std::uint8_t, 32>* nib,
                        const std::uint8_t* syn_nib, std::uint8_t* s);
unsigned rs_chien_sse41(const std::uint8_t* lambda, unsigned degree, unsigned max_power, std::uint8_t* roots,
                        unsigned max_roots);

}  // namespace qlink::modem::detail
