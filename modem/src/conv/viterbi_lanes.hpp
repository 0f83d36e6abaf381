// Private interface of the across-lanes Viterbi kernels: 32 independent K=7 trellises, one per byte lane.
//
// Layouts (lane L = one independent trellis):
// * soft pairs: [step][symbol][lane] int8 (first symbols of the 32 lanes,
//   then their second symbols), so each is one vector per step;
// * branch metrics: [step][e][lane] bytes, e = (c_first << 1) | c_second, the
//   same (cost0 + cost1) >> 2 values as branch_generic;
// * path metrics: [state][lane] bytes, same saturating ACS, tie rule and
//   renormalisation schedule as acs_generic (see viterbi_kernels.hpp), applied
//   per lane (each lane has its own pending minimum);
// * decisions: one row of 256 bytes per step, [group g][lane] bytes: bit j
//   of byte (g, L) is lane L's decision for new state 8g + j, set when the
//   state took the predecessor WITHOUT the high bit (old state i, sum <= the
//   other). This is the inverse sense of acs_generic's word: it is what the
//   SIMD compare yields directly. A lane's decisions for a state are found
//   at an address that does not depend on the state's other lanes, and a
//   whole row is 8 vectors of 32 lanes, so the traceback runs all 32 lanes in
//   one register with selects instead of gathers.
// With this layout a step is 32 butterflies of purely vertical byte
// operations: no shuffles, and the 32 butterflies are independent.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qlink::modem::conv_detail {

inline constexpr unsigned n_lanes = 32;

struct lanes_state {
    // 64-byte aligned: the AVX-512 kernel stores two states (one cache line) at a time.
    alignas(64) std::uint8_t metric[64 * n_lanes];  // [state][lane]
    alignas(32) std::uint8_t pending_min[n_lanes];
    std::uint64_t step = 0;
    // A kernel's own digest of the last idx it was given (the AVX2 kernel's
    // branch-label map, which took ~3 % of a stream window to work out per
    // call): valid for these idx bytes only, 0 = nothing cached.
    alignas(32) std::uint8_t cache_idx[32] = {};
    std::uint8_t cache_map[4] = {};
    std::uint8_t cache = 0;
};

using lanes_branch_kernel = void (*)(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
/// Steps [c, c + k) of 32 lanes' contiguous pair streams (src[l] + 2 * step)
/// -> soft pairs (above). A pure data move.
using lanes_transpose_kernel = void (*)(const std::int8_t* const* src, std::size_t c, std::size_t k,
                                        std::int8_t* dst);
/// Runs `steps` ACS steps writing one decision row each; with decisions ==
/// nullptr the same metrics and no decisions (steps no traceback will read).
using lanes_acs_kernel = void (*)(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm,
                                  std::size_t steps, std::uint8_t* decisions);

inline constexpr std::size_t dec_row_bytes = 8 * n_lanes;

/// How the 32 lanes are traced back: two passes over decision rows, every
/// lane reading the same row at the same time (its own byte of it).
/// A "boundary" b is the point between rows b and b - 1; a traceback that
/// starts at boundary b begins above row b - 1.
/// * Tail pass: byte lane j carries the traceback tail of the lane that
///   reads lane j's rows past its own window: it starts at boundary
///   tail_hi[j] in state tail_state[j] and its state at boundary tail_lo[j]
///   is captured. Lanes with tail_hi == tail_lo take no part. The pass runs
///   from the highest tail_hi to the lowest tail_lo of the active lanes.
/// * Own pass: lane L starts at boundary own_top[L] in state own_state[L],
///   or, when own_src[L] < 32, in the state captured in byte lane own_src[L].
///   The pass runs from the highest own_top down to `bottom` and records
///   each lane's state's low bit at every row u (the bit decided at step u).
/// Before a lane's start boundary the pass traces it from state 0 (garbage,
/// never copied out); every row between the pass ends must exist.
struct lanes_trace_plan {
    alignas(32) std::uint32_t tail_state[n_lanes];
    alignas(32) std::uint32_t tail_hi[n_lanes];
    alignas(32) std::uint32_t tail_lo[n_lanes];
    alignas(32) std::uint32_t own_state[n_lanes];
    alignas(32) std::uint32_t own_src[n_lanes];
    alignas(32) std::uint32_t own_top[n_lanes];
    std::uint32_t bottom = 0;
};

/// Traces all 32 lanes by `plan`. words ([U / 32][lane], U = highest
/// own_top rounded up to 32; word rows from bottom / 32 on written)
/// receives each lane's bits, row 32k + i in bit 31 - i of word row k; bits
/// of rows at or above the highest own_top are 0.
using lanes_traceback_kernel = void (*)(const std::uint8_t* dec, const lanes_trace_plan& plan,
                                        std::uint32_t* words);

void lanes_traceback_generic(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words);

/// Where the vector tracebacks (SSE4.1, AVX2) stop to blend lane states, worked out once in scalar
/// code they share. Tail pass: from `hi` down to `lo`, stopping at each ev[i] (descending, ev[n - 1] ==
/// lo) to start the lanes with tail_hi there (hi_masked) and capture those with tail_lo there
/// (lo_masked); lanes without a tail carry ~0u in both. hi == 0: no lane has a tail.
struct lanes_tail_events {
    std::uint32_t hi = 0, lo = ~0u;
    unsigned n = 0;
    std::uint32_t ev[2 * n_lanes + 1];
    std::uint32_t hi_masked[n_lanes], lo_masked[n_lanes];
};
void lanes_tail_events_of(const lanes_trace_plan& plan, lanes_tail_events& e);

/// Own pass: from `top` down to plan.bottom, stopping at each ev[i] (descending, ev[n - 1] ==
/// bottom) to start the lanes whose own_top is there in start[l] (own_state, or the state captured
/// by the tail pass in byte lane own_src). top <= plan.bottom: nothing to trace.
struct lanes_own_events {
    std::uint32_t top = 0;
    unsigned n = 0;
    std::uint32_t ev[n_lanes + 1];
    std::uint32_t start[n_lanes];
};
void lanes_own_events_of(const lanes_trace_plan& plan, const std::uint8_t* captured, lanes_own_events& e);

/// The canonical label (G1 parity << 1) | G2 parity of butterfly i (old state i, input 0).
constexpr unsigned lanes_can_label(unsigned i) {
    auto par = [](unsigned x) { return static_cast<unsigned>(__builtin_popcount(x) & 1); };
    return (par((2 * i) & 0x4fu) << 1) | par((2 * i) & 0x6du);
}

void lanes_branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_transpose_generic(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst);
void lanes_acs_generic(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                       std::uint8_t* decisions);

#if defined(__x86_64__)
void lanes_branch_sse41(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_transpose_sse41(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst);
void lanes_acs_sse41(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                     std::uint8_t* decisions);
void lanes_traceback_sse41(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words);
void lanes_branch_avx2(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm);
void lanes_transpose_avx2(const std::int8_t* const* src, std::size_t c, std::size_t k, std::int8_t* dst);
void lanes_acs_avx2(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                    std::uint8_t* decisions);
void lanes_traceback_avx2(const std::uint8_t* dec, const lanes_trace_plan& plan, std::uint32_t* words);
/// The map m with idx[i] == m[lanes_can_label(i)] for every butterfly i (the decoder's own labels: see
/// viterbi_lanes_avx2.cpp), cached in st; false when idx is not such a relabelling. Used by the AVX2 and
/// AVX-512 kernels (needs AVX2).
bool lanes_canonical_map_avx2(lanes_state& st, const std::uint8_t* idx, unsigned* m);
/// The ACS only; the AVX2 branch, transpose and traceback kernels go with it (same layouts).
void lanes_acs_avx512(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                      std::uint8_t* decisions);
#endif

}  // namespace qlink::modem::conv_detail
