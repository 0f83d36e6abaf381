// Private interface of the across-lanes Viterbi kernels: 32 independent K=7 trellises, one per byte lane.
//
// Layouts (lane L = one independent trellis):
// * soft pairs: [step][lane][2] int8 (first, second symbol of the step);
// * branch metrics: [step][e][lane] bytes, e = (c_first << 1) | c_second, the
//   same (cost0 + cost1) >> 2 values as branch_generic;
// * path metrics: [state][lane] bytes, same saturating ACS, tie rule and
//   renormalisation schedule as acs_generic (see viterbi_kernels.hpp), applied
//   per lane (each lane has its own pending minimum);
// * decisions: [step][new state] 32-bit words, bit L set when lane L's new
//   state took the predecessor WITHOUT the high bit (old state i, sum <= the
//   other). This is the inverse sense of acs_generic's word: it is what the
//   SIMD compare yields directly.
// With this layout a step is 32 butterflies of purely vertical byte
// operations: no shuffles, and the 32 butterflies are independent.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qlink::modem::conv_detail {

inline constexpr unsigned n_lanes = 32;

struct lanes_state {
    alignas(32) std::uint8_t metric[64 * n_lanes];  // [state][lane]
    alignas(32) std::uint8_t pending_min[n_lanes];
    std::uint64_t step = 0;
};

using lanes_branch_kernel = void (*)(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
using lanes_acs_kernel = void (*)(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm,
                                  std::size_t steps, std::uint32_t* decisions);

/// Traces all 32 lanes back over `steps` decision rows from end_state[lane]
/// (0..63). words ([(steps + 31) / 32][lane]) receives each lane's decided
/// bits, 32 steps per word, the earliest step in the MSB.
using lanes_traceback_kernel = void (*)(const std::uint32_t* dec, std::size_t steps, const unsigned* end_state,
                                        std::uint32_t* words);

void lanes_traceback_generic(const std::uint32_t* dec, std::size_t steps, const unsigned* end_state,
                             std::uint32_t* words);
void lanes_branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_acs_generic(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                       std::uint32_t* decisions);

#if defined(__x86_64__)
void lanes_branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_acs_sse41(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                     std::uint32_t* decisions);
void lanes_branch_avx2(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_acs_avx2(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                    std::uint32_t* decisions);
void lanes_traceback_avx2(const std::uint32_t* dec, std::size_t steps, const unsigned* end_state,
                          std::uint32_t* words);
#endif

}  // namespace qlink::modem::conv_detail
