// AVX-512 across-lanes Viterbi ACS: one ZMM register = two path metrics of 32 lanes each.
#include "viterbi_lanes.hpp"

// GCC 12's _mm512_broadcast_i64x4 / _mm512_inserti64x4 / _mm512_castsi512_si256 & co. trip its own
// -Wuninitialized in the header (a self-initialised "undefined" operand), an error under QLINK_WERROR:
// silenced for the header only.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#if !defined(__clang__)  // a GCC-only group: clang would warn about the pragma itself
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <array>
#include <utility>

namespace qlink::modem::conv_detail {

namespace {

// Same layouts as the AVX2 kernel (viterbi_lanes.hpp): metrics [state][lane] ("layout 0"), decision rows
// [group][lane]; same canonical-label fast path (lanes_canonical_map_avx2), with the AVX2 kernel itself
// for any other labels. Steps go in pairs through one other metric layout:
//
// * Pair step, layout 0 -> layout 1. The 64-byte slots of layout 0 are P = [a | a + 1] and
//   R = [a + 32 | a + 33] (a even): the inputs of butterflies a and a + 1 as they stand.
//     X0 = P + W[c], X1 = R + W[c ^ 3] -> N0 = min = [new 2a | new 2a + 2]
//     Y0 = P + W[c ^ 3], Y1 = R + W[c] -> N1 = min = [new 2a + 1 | new 2a + 3]
//   (saturating adds; c = canonical label of butterfly a, W[c] = [v[c] | v[c ^ 2]] since the label of
//   a + 1 is can(a) ^ 2; X0 <= X1 per half is the decision, set = the predecessor without the high bit,
//   ties included, as in acs_generic). Layout 1 is these slots: [x | x + 2] for x % 4 < 2.
// * Broadcast step, layout 1 -> layout 0. A = [old i | old i], B = [old i + 32 | old i + 32]
//   (vbroadcasti64x4 from wherever the layout keeps them), X0 = A + [v[c] | v[c ^ 3]] = [x0 | y0],
//   X1 = B + [v[c ^ 3] | v[c]] = [x1 | y1], N = min = [new 2i | new 2i + 1]: a slot of layout 0.
//
// Either way 2 saturating adds, a min, a compare (into a mask register) and a masked add (the decision
// bits) make one ZMM of two new states, where the AVX2 butterfly spends 5 YMM operations per state. The pair step needs no broadcasts, which on Zen 5
// take a vector ALU slot like an add (4 vbroadcasti64x4 + 8 vpminub: 3.35 cycles; 8 vpminub alone, or
// with 4 plain ZMM loads: 1.93). A call ends in layout 0 (after a lone last step layout 1 is copied back:
// less code than a broadcast step from layout 0, and block decodes ~2 % faster).
//
// ACS microbenchmark (304 steps of 32 lanes in calls of 64, decisions kept, best of 3000 runs, builds
// alternated; cycles per step at 3.86 GHz, host shared): AVX2 kernel 96; broadcast steps only 73-74;
// pair + broadcast steps as here 64-66 (whole decoder: 5-10 % faster than broadcast steps only). Tried
// and dropped: cycling through layouts 1..5 with pair steps only (slots [x | x + 2^e]; layout 5 needs
// one vinserti64x4 per input): 65-67 here, but with a copy back to layout 0 per call and 4x the code
// the whole block decode was ~5 % slower than broadcast steps only; two pair steps per broadcast step:
// 59 here, 2-5 % slower in the decoder (the code again); two steps fused in registers: slower with
// decisions (73-75).

__attribute__((always_inline)) inline __m512i both_halves(__m256i v) { return _mm512_broadcast_i64x4(v); }

// The step's branch metric pairs [v[c] | v[c ^ x]] by canonical label c.
template <unsigned x>
__attribute__((always_inline)) inline void load_w(const __m256i* b, const unsigned* m, __m512i* w) {
    for (unsigned c = 0; c < 4; ++c)
        w[c] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(b + m[c])),
                                  _mm256_loadu_si256(b + m[c ^ x]), 1);
}

// Decision bits: a compare mask of a slot [s | t] adds bit s % 8 to the low half's bytes and bit t % 8
// to the high half's; both states are in one row group, so a group's row bytes are the OR of its
// accumulator's halves. (A pavgb push, as in the AVX2 kernel, would leave the halves' bits in the wrong
// order and need a bit interleave per group.)
constexpr auto dec_bit_table = [] {
    std::array<std::array<std::uint8_t, 64>, 64> t{};
    for (unsigned lo = 0; lo < 8; ++lo)
        for (unsigned hi = 0; hi < 8; ++hi)
            for (unsigned j = 0; j < 64; ++j) t[8 * lo + hi][j] = static_cast<std::uint8_t>(1u << (j < 32 ? lo : hi));
    return t;
}();
alignas(64) constexpr std::array<std::array<std::uint8_t, 64>, 64> dec_bits_of = dec_bit_table;

template <unsigned lo, unsigned hi>
__attribute__((always_inline)) inline __m512i dec_bits() {
    return _mm512_load_si512(dec_bits_of[8 * lo + hi].data());
}

// acc += bits where k, in place: GCC's own masked add often copies acc to a fresh register first (19
// register moves per broadcast step; ~1.5 % of the ACS time).
__attribute__((always_inline)) inline void add_bits(__m512i& acc, __mmask64 k, __m512i bits) {
    __asm__("vpaddb %2, %0, %0%{%1%}" : "+v"(acc) : "Yk"(k), "v"(bits));
}

// One output slot [s | s + ds]: its decision mask (n-th of the 4 of its group), renormalisation, store.
// mode 0: nothing after the step, 1: take the minimum (phase 3), 2: subtract the pending minimum (7).
struct step_ctx {
    std::uint8_t* nxt;
    std::uint8_t* d;  // the decision row
    __m512i pend2;    // [pending minimum | pending minimum]
    __m512i mn0, mn1;
    __m512i acc, acc_even;
};

template <int mode, bool keep, unsigned s, unsigned ds, unsigned n, unsigned slot>
__attribute__((always_inline)) inline void put(step_ctx& c, __m512i x0, __m512i x1, __m512i v) {
    if constexpr (keep) {
        constexpr unsigned g = s / 8;
        static_assert((s + ds) / 8 == g);
        const __mmask64 dm = _mm512_cmple_epu8_mask(x0, x1);
        if constexpr (n == 0) c.acc = _mm512_maskz_mov_epi8(dm, dec_bits<s % 8, (s + ds) % 8>());
        else add_bits(c.acc, dm, dec_bits<s % 8, (s + ds) % 8>());
        if constexpr (n == 3) {
            if constexpr (g % 2 == 0) {
                c.acc_even = c.acc;
            } else {
                // Groups g - 1 and g: low halves | high halves, ORed: one 64-byte store of two row groups.
                const __m512i lo = _mm512_shuffle_i64x2(c.acc_even, c.acc, 0x44);
                const __m512i hi = _mm512_shuffle_i64x2(c.acc_even, c.acc, 0xee);
                _mm512_storeu_si512(c.d + 32 * (g - 1), _mm512_or_si512(lo, hi));
            }
        }
    }
    if constexpr (mode == 1) {
        if constexpr (slot % 2 == 0) c.mn0 = _mm512_min_epu8(c.mn0, v);
        else c.mn1 = _mm512_min_epu8(c.mn1, v);
    } else if constexpr (mode == 2) {
        v = _mm512_subs_epu8(v, c.pend2);
    }
    _mm512_store_si512(c.nxt + 64 * slot, v);
}

template <int mode>
__attribute__((always_inline)) inline __m256i pending_after(const step_ctx& c, __m256i pend) {
    if constexpr (mode == 1) {
        const __m512i mn = _mm512_min_epu8(c.mn0, c.mn1);
        return _mm256_min_epu8(_mm512_castsi512_si256(mn), _mm512_extracti64x4_epi64(mn, 1));
    }
    return pend;
}

__attribute__((always_inline)) inline void init(step_ctx& c, std::uint8_t* nxt, std::uint8_t* d, __m256i pend) {
    c.nxt = nxt;
    c.d = d;
    c.pend2 = both_halves(pend);
    c.mn0 = c.mn1 = _mm512_set1_epi8(-1);
    c.acc = c.acc_even = _mm512_setzero_si512();
}

// Layout 1: state s in slot (s / 4) * 2 + s % 2, low half when s % 4 < 2.
constexpr unsigned offset1(unsigned s) { return 64 * ((s / 4) * 2 + s % 2) + 32 * ((s / 2) % 2); }

// Pair step unit u: butterflies a = 2u and a + 1.
template <int mode, bool keep, unsigned u>
__attribute__((always_inline)) inline void pair_unit(step_ctx& c, const std::uint8_t* cur, const __m512i* w) {
    constexpr unsigned a = 2 * u, cv = lanes_can_label(a);
    static_assert(lanes_can_label(a + 1) == (cv ^ 2u));
    __m512i p = _mm512_load_si512(cur + 64 * u), r = _mm512_load_si512(cur + 64 * (u + 16));
    // In registers: GCC otherwise folds each load into both of its adds, and 64-byte loads, two a
    // cycle, became the limit.
    __asm__("" : "+v"(p), "+v"(r));
    const __m512i x0 = _mm512_adds_epu8(p, w[cv]), x1 = _mm512_adds_epu8(r, w[cv ^ 3u]);
    const __m512i y0 = _mm512_adds_epu8(p, w[cv ^ 3u]), y1 = _mm512_adds_epu8(r, w[cv]);
    // New states 4u, 4u + 2 (slot 2u of layout 1) and 4u + 1, 4u + 3 (slot 2u + 1); 2 units per group.
    put<mode, keep, 4 * u, 2, 2 * (u % 2), 2 * u>(c, x0, x1, _mm512_min_epu8(x0, x1));
    put<mode, keep, 4 * u + 1, 2, 2 * (u % 2) + 1, 2 * u + 1>(c, y0, y1, _mm512_min_epu8(y0, y1));
}

// Broadcast step butterfly i, inputs from layout 1.
template <int mode, bool keep, unsigned i>
__attribute__((always_inline)) inline void fly(step_ctx& c, const std::uint8_t* cur, const __m512i* w) {
    constexpr unsigned cv = lanes_can_label(i);
    auto at = [&](unsigned s) { return reinterpret_cast<const __m256i*>(cur + offset1(s)); };
    const __m512i a = both_halves(_mm256_load_si256(at(i))), b = both_halves(_mm256_load_si256(at(i + 32)));
    const __m512i x0 = _mm512_adds_epu8(a, w[cv]), x1 = _mm512_adds_epu8(b, w[cv ^ 3u]);
    put<mode, keep, 2 * i, 1, i % 4, i>(c, x0, x1, _mm512_min_epu8(x0, x1));
}

template <int mode, bool keep, unsigned... u>
__attribute__((always_inline)) inline void pair_units(step_ctx& c, const std::uint8_t* cur, const __m512i* w,
                                                     std::integer_sequence<unsigned, u...>) {
    (pair_unit<mode, keep, u>(c, cur, w), ...);
}

template <int mode, bool keep, unsigned... i>
__attribute__((always_inline)) inline void flies(step_ctx& c, const std::uint8_t* cur, const __m512i* w,
                                                std::integer_sequence<unsigned, i...>) {
    (fly<mode, keep, i>(c, cur, w), ...);
}

// The steps return the pending minimum after them. Not inlined and 64-byte aligned, like the AVX2
// kernel's two_steps_fast, so their speed does not move with where the caller happens to be placed.
using step_fn = __m256i (*)(const std::uint8_t*, std::uint8_t*, const __m256i*, const unsigned*, std::uint8_t*,
                            __m256i);

template <int mode, bool keep>
__attribute__((noinline, aligned(64))) __m256i pair_step(const std::uint8_t* cur, std::uint8_t* nxt,
                                                        const __m256i* b, const unsigned* m, std::uint8_t* d,
                                                        __m256i pend) {
    step_ctx c;
    init(c, nxt, d, pend);
    __m512i w[4];
    load_w<2>(b, m, w);
    pair_units<mode, keep>(c, cur, w, std::make_integer_sequence<unsigned, 16>{});
    return pending_after<mode>(c, pend);
}

template <int mode, bool keep>
__attribute__((noinline, aligned(64))) __m256i broadcast_step(const std::uint8_t* cur, std::uint8_t* nxt,
                                                             const __m256i* b, const unsigned* m, std::uint8_t* d,
                                                             __m256i pend) {
    step_ctx c;
    init(c, nxt, d, pend);
    __m512i w[4];
    load_w<3>(b, m, w);
    flies<mode, keep>(c, cur, w, std::make_integer_sequence<unsigned, 32>{});
    return pending_after<mode>(c, pend);
}

// By kind (pair, broadcast), keep and phase (step % 8).
template <template <int, bool> class K>
struct by_phase {
    static constexpr step_fn of[2][8] = {
        {K<0, false>::f, K<0, false>::f, K<0, false>::f, K<1, false>::f, K<0, false>::f, K<0, false>::f,
         K<0, false>::f, K<2, false>::f},
        {K<0, true>::f, K<0, true>::f, K<0, true>::f, K<1, true>::f, K<0, true>::f, K<0, true>::f, K<0, true>::f,
         K<2, true>::f},
    };
};
template <int mode, bool keep>
struct pair_k {
    static constexpr step_fn f = pair_step<mode, keep>;
};
template <int mode, bool keep>
struct bcast_k {
    static constexpr step_fn f = broadcast_step<mode, keep>;
};
}  // namespace

void lanes_acs_avx512(lanes_state& st, const std::uint8_t* idx, const std::uint8_t* bm, std::size_t steps,
                      std::uint8_t* decisions) {
    unsigned m[4];
    // Labels that are not a relabelling of the canonical ones (no decoder
    // builds them; tests do): the AVX2 kernel's general path.
    if (!lanes_canonical_map_avx2(st, idx, m)) {
        lanes_acs_avx2(st, idx, bm, steps, decisions);
        return;
    }
    alignas(64) std::uint8_t buf[64 * n_lanes];
    __m256i pend = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.pending_min));
    std::uint64_t step = st.step;
    const bool keep = decisions != nullptr;
    const auto* b = reinterpret_cast<const __m256i*>(bm);
    auto row = [&](std::size_t t) { return keep ? decisions + dec_row_bytes * t : nullptr; };
    std::size_t t = 0;
    // st.metric (layout 0) -> buf (layout 1) -> st.metric (layout 0).
    for (; t + 2 <= steps; t += 2, step += 2) {
        pend = by_phase<pair_k>::of[keep][step & 7u](st.metric, buf, b + 4 * t, m, row(t), pend);
        pend = by_phase<bcast_k>::of[keep][(step + 1) & 7u](buf, st.metric, b + 4 * (t + 1), m, row(t + 1), pend);
    }
    if (t < steps) {
        // A lone last step: a pair step and its layout 1 copied back (see the top).
        pend = by_phase<pair_k>::of[keep][step & 7u](st.metric, buf, b + 4 * t, m, row(t), pend);
        for (unsigned s = 0; s < 64; ++s)
            _mm256_store_si256(reinterpret_cast<__m256i*>(st.metric + 32 * s),
                               _mm256_load_si256(reinterpret_cast<const __m256i*>(buf + offset1(s))));
        ++step;
    }
    _mm256_store_si256(reinterpret_cast<__m256i*>(st.pending_min), pend);
    st.step = step;
}

}  // namespace qlink::modem::conv_detail
