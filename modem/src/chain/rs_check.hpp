// Private: syndromes of every codeword of an interleaved RS codeblock, read straight from the block.
//
// The receive chain asks one question of almost every codeblock: is it clean? rs_codec::decode
// answers it one codeword at a time after gathering each codeword's symbols out of the
// interleaved block; here all I codewords are done in one pass over the block in its own order,
// and the per-position constants are loaded once for the I symbols that share them. A block
// with any nonzero syndrome goes to rs_codec::decode as before.
#pragma once

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qlink::modem::detail {

inline constexpr unsigned rs_check_roots = 32;

/// Kernel arguments: codeblock of `il` interleaved codewords of `len` = 255 - first symbols each;
/// `nib` as gf().nib / gf().nib_dual; `syn_nib` 64 bytes per power position (the layout of
/// rs_syndromes_avx2); writes s[w * 32 + j] for codeword w, zero for j >= nroots.
struct rs_block_args {
    const std::uint8_t* block;
    unsigned il;
    unsigned first;
    unsigned nroots;
    const std::array<std::uint8_t, 32>* nib;
    const std::uint8_t* syn_nib;
    const std::uint16_t* log_gamma;  ///< log of gamma_j, j < nroots (generic kernel)
    bool dual;
};

void rs_block_syndromes_generic(const rs_block_args& a, std::uint8_t* s);
#if defined(__x86_64__)
void rs_block_syndromes_avx2(const rs_block_args& a, std::uint8_t* s);
#endif

class rs_block_check {
public:
    /// Same code parameters as the rs_codec it stands in front of. `level`: the kernel (a level
    /// without a kernel of its own uses the next lower one).
    rs_block_check(const rs_config& cfg, isa level);

    std::size_t codeblock_size() const { return std::size_t{il_} * (255 - first_); }
    /// All syndromes of all codewords; `s` needs interleave * 32 bytes. False on wrong sizes.
    bool syndromes(std::span<const std::uint8_t> codeblock, std::span<std::uint8_t> s) const;
    /// True when every codeword is a codeword (all syndromes zero); false also on a wrong size.
    bool clean(std::span<const std::uint8_t> codeblock) const;
    isa kernel() const { return level_; }

private:
    unsigned il_, first_, nroots_;
    bool dual_;
    isa level_;
    std::vector<std::uint8_t> syn_nib_;
    std::array<std::uint16_t, rs_check_roots> log_gamma_{};
};

}  // namespace qlink::modem::detail
