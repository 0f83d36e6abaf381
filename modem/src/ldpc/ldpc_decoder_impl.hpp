// Private: the layered schedule and check-node arithmetic shared by every int8 LDPC decoder variant.
#pragma once

#include "qlink/modem/ldpc.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>

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

std::unique_ptr<ldpc_decoder> make_ldpc_decoder_generic(const ldpc_decoder::config& cfg);
std::unique_ptr<ldpc_decoder> make_ldpc_decoder_avx2(const ldpc_decoder::config& cfg);
std::unique_ptr<ldpc_batch_decoder> make_ldpc_batch_decoder_avx2(const ldpc_decoder::config& cfg);

}  // namespace qlink::modem::detail
