// Private: the layered schedule and check-node arithmetic shared by every int8 LDPC decoder variant.
#pragma once

#include "qlink/modem/ldpc.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

namespace qlink::modem::detail {

/// Rows processed together: up to 32 consecutive rows of one row block that
/// share no column (checked at construction), so row-by-row and 32-wide
/// processing are the same layered schedule.
inline constexpr std::size_t ldpc_group_rows = 32;

/// Check-node magnitude rule, exact integer arithmetic so all ISAs agree.
/// normalized: ceil-ish 3/4, (m + (m >> 1) + 1) >> 1 (= AVX2 avg_epu8(m, m >> 1)).
/// The result is capped at `limit`.
inline std::uint8_t ldpc_scale(std::uint8_t m, ldpc_min_sum rule, std::uint8_t offset, std::uint8_t limit) {
    const int v = rule == ldpc_min_sum::normalized ? (m + (m >> 1) + 1) >> 1 : (m > offset ? m - offset : 0);
    return static_cast<std::uint8_t>(std::min<int>(v, limit));
}

inline std::int8_t ldpc_sat(int v) { return static_cast<std::int8_t>(std::clamp(v, -127, 127)); }

/// Variable-to-check value l - msg: the full int8 range, -128 included. A
/// magnitude of 128 never becomes a minimum (they start at 127) and the
/// a-posteriori value q + msg' is saturated to +-127 afterwards, so -128
/// needs no clamp of its own (one instruction per edge less in the SIMD
/// kernels).
inline std::int8_t ldpc_sub_q(int l, int msg) { return static_cast<std::int8_t>(std::clamp(l - msg, -128, 127)); }

/// Throws std::logic_error if two rows of one 32-row group would share a column.
void ldpc_check_groups(const ldpc_code& code);

/// Maps transmitted LLRs onto the mother codeword: fill bits known zero
/// (+127), punctured bits erased (0), trailing zero bits ignored.
void ldpc_load_mother(const ldpc_code& code, std::span<const llr_t> llr, std::span<llr_t> mother);

/// The iteration schedule every single-frame decoder follows: iterate(it) for it = 0, 1, ... up to
/// max_iterations; with early termination it stops at the first iteration whose hard decisions satisfy
/// every check (success), without it runs them all and checks once at the end. Fills
/// res.iterations and res.success.
template <class Iterate, class SyndromeOk>
void ldpc_run_iterations(const ldpc_decoder::config& cfg, ldpc_decode_result& res, Iterate&& iterate,
                         SyndromeOk&& syndrome_ok) {
    for (unsigned it = 0; it < cfg.max_iterations; ++it) {
        iterate(it);
        res.iterations = it + 1;
        if (cfg.early_termination && syndrome_ok()) {
            res.success = true;
            return;
        }
    }
    if (!cfg.early_termination) res.success = syndrome_ok();
}

/// The SIMD single-frame decoders' layered schedule for `lanes` consecutive
/// rows per vector (32: AVX2, 64: AVX-512), built once per decoder in plain
/// scalar code (this file is compiled without ISA flags, so nothing here can
/// pick up an instruction the CPU lacks). The kernels that walk it live in
/// ldpc_decoder_avx2.cpp, which describes the layout.
struct ldpc_mirror_copy {
    std::uint32_t from;
    std::uint32_t to;
};

struct ldpc_group {
    std::uint32_t valid;   // rows in this group (`lanes` except at the end of a row block)
    std::uint32_t first;   // index of its first edge in pos and in the decoder's messages
    std::uint32_t degree;  // edges per row
    std::uint32_t copies_begin, copies_end;  // its mirror copies in copies
    std::uint32_t pins;    // index of its first pin mask in pins (pinned groups only)
    bool clean;            // no edge of this group has pinned lanes
    bool chained;          // overlapped with the next group of its row block (see run_chain)
};

// Consecutive groups [begin, end) that one kernel decodes.
struct ldpc_group_run {
    std::uint32_t begin, end;
    std::uint32_t degree;
    bool clean, chained;
};

struct ldpc_schedule {
    std::size_t lanes = 0;
    std::size_t stride = 0;  // z + 2 * lanes: a column block's values, its mirror, padding
    std::size_t max_degree = 0;
    std::vector<std::uint32_t> pos;  // per group and edge: the group's first row's value in the buffer
    std::vector<ldpc_mirror_copy> copies;
    std::vector<ldpc_group> groups;
    std::vector<ldpc_group_run> runs;
    std::vector<std::uint64_t> pins;  // per edge of the pinned groups: bit l set when lane l is pinned

    std::size_t col_offset(std::size_t c) const { return lanes + c * stride; }
    /// The buffer's size, 64 bytes of slack for the alignment included.
    static std::size_t buffer_bytes(const ldpc_code& code, std::size_t lanes) {
        return lanes + code.col_blocks() * (code.z() + 2 * lanes) + 2 * lanes + 64;
    }
};

/// True when any `rows` consecutive rows of row block `b` share no column.
bool ldpc_rows_apart(const ldpc_code& code, std::size_t b, std::size_t rows);

/// Throws std::logic_error when `lanes`-row groups of some row block would
/// share a column (the caller then needs narrower vectors).
ldpc_schedule ldpc_build_schedule(const ldpc_code& code, std::size_t lanes, ldpc_min_sum rule);

/// The message limit as a cap on the minima (see ldpc_decoder_avx2.cpp).
std::uint8_t ldpc_magnitude_cap(ldpc_min_sum rule, std::uint8_t offset, std::uint8_t limit);

std::unique_ptr<ldpc_decoder> make_ldpc_decoder_generic(const ldpc_decoder::config& cfg);
std::unique_ptr<ldpc_decoder> make_ldpc_decoder_avx2(const ldpc_decoder::config& cfg);
/// nullptr when the code's 64-row groups would share a column.
std::unique_ptr<ldpc_decoder> make_ldpc_decoder_avx512(const ldpc_decoder::config& cfg);
std::unique_ptr<ldpc_batch_decoder> make_ldpc_batch_decoder_avx2(const ldpc_decoder::config& cfg);

}  // namespace qlink::modem::detail
