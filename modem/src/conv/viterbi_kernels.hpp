// Private interface between the Viterbi engine and its per-ISA kernels.
//
// The arithmetic every kernel implements exactly (the generic one is the reference):
// * Branch metrics: for a step with soft pair (l0, l1), each clamped to >= -127,
//   p = max(l, 0) is the cost of hypothesising bit 1 and q = max(-l, 0) of bit 0;
//   bm4[e] for expected bits e = (c_first << 1) | c_second is
//   (cost0 + cost1) >> 2, so 0..63.
// * Path metrics: 64 unsigned 8-bit costs. For butterfly i (old states i and
//   i + 32, new states 2i and 2i + 1) with e = idx[i]:
//     new[2i]   = min(sat(old[i] + bm4[e]),     sat(old[i+32] + bm4[e^3]))
//     new[2i+1] = min(sat(old[i] + bm4[e^3]),   sat(old[i+32] + bm4[e]))
//   sat() saturates at 255. The step's 64-bit decision word has bit i for new
//   state 2i and bit 32 + i for new state 2i + 1 (the order SIMD produces
//   them in); a bit is 1 when the state took the predecessor i + 32 with a
//   strictly smaller sum.
// * Renormalisation, by the step counter `step` (after the step's ACS):
//   step % 8 == 3: pending_min = min over the 64 metrics;
//   step % 8 == 7: every metric -= pending_min (never below 0: metrics do not
//   decrease between the two, so this loses nothing).
#pragma once

#include <cstddef>
#include <cstdint>

namespace qlink::modem::conv_detail {

struct acs_state {
    alignas(32) std::uint8_t metric[64];
    std::uint8_t pending_min = 0;
    std::uint64_t step = 0;
};

/// Soft pairs (2 * steps int8, first then second symbol of each step) -> bm4 (4 * steps bytes).
using branch_kernel = void (*)(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm4);

/// Runs `steps` ACS steps, writing one decision word per step.
using acs_kernel = void (*)(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
                            std::uint64_t* decisions);

void branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm4);
void acs_generic(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
                 std::uint64_t* decisions);

#if defined(__x86_64__)
void branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm4);
void acs_sse41(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
               std::uint64_t* decisions);
void acs_avx2(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
              std::uint64_t* decisions);
/// Two independent trellises in one loop (the ACS step is a latency chain; two interleave).
void acs_dual_avx2(acs_state& a, acs_state& b, const std::uint8_t* idx, const std::uint8_t* bm_a,
                   const std::uint8_t* bm_b, std::size_t steps, std::uint64_t* dec_a, std::uint64_t* dec_b);
#endif

}  // namespace qlink::modem::conv_detail
