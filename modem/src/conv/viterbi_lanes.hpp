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

/// Where each lane's traceback starts and which decision rows it reads.
/// One loop row u runs from U - 1 = max(top + lift) - 1 down to `bottom`
/// (a multiple of 32); at u lane L is at its own row t = u - lift[L]. Lane L
/// starts in state end_state[L]; at each u it records its state's low bit
/// and moves to the predecessor given by the decision bit of row t, where
/// rows t >= cross[L] are read from lane src[L] at row t - delta[L] (the next
/// segment's lane, whose window covers the steps past this lane's own: the
/// traceback tail costs no ACS). Where t < 0 or t >= top[L] the lane reads no
/// row and takes decision bit 0 (state -> (state >> 1) | 32): the engine
/// sets top + lift = U for every lane it uses, so this only happens below
/// the lane's rows, whose bits are not used. Every row read must exist.
struct lanes_trace_plan {
    alignas(32) std::uint32_t end_state[n_lanes];  // 0..63
    alignas(32) std::uint32_t top[n_lanes];
    alignas(32) std::uint32_t lift[n_lanes];
    alignas(32) std::uint32_t cross[n_lanes];
    alignas(32) std::uint32_t delta[n_lanes];
    alignas(32) std::uint32_t src[n_lanes];  // lane whose bit is read at rows >= cross
    std::uint32_t bottom = 0;
};

/// Traces all 32 lanes by `plan`. words ([U / 32 + 1][lane], rows from
/// bottom / 32 on written) receives each lane's bits by loop row u, 32 rows
/// per word, the lowest u in the MSB.
using lanes_traceback_kernel = void (*)(const std::uint32_t* dec, const lanes_trace_plan& plan,
                                        std::uint32_t* words);

void lanes_traceback_generic(const std::uint32_t* dec, const lanes_trace_plan& plan, std::uint32_t* words);
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
void lanes_traceback_avx2(const std::uint32_t* dec, const lanes_trace_plan& plan, std::uint32_t* words);
#endif

}  // namespace qlink::modem::conv_detail
