// AVX-512 across-lanes Viterbi ACS: one ZMM register = the two new states of one butterfly, 32 lanes each.
#include "viterbi_lanes.hpp"

#include <immintrin.h>

#include <array>
#include <cstring>
#include <utility>

namespace qlink::modem::conv_detail {

namespace {

// The layouts are the AVX2 kernel's (viterbi_lanes.hpp); only the register
// use differs. Butterfly i of a step with canonical label cv (see
// lanes_canonical_map_avx2) in one ZMM per operand, low half | high half:
//   A = [cur[i] | cur[i]], B = [cur[i + 32] | cur[i + 32]] (broadcast loads),
//   W[c] = [v[c] | v[c ^ 3]] (v: the step's branch metric vectors by label),
//   X0 = A + W[cv] = [x0 | y0], X1 = B + W[cv ^ 3] = [x1 | y1] (saturating),
//   N = min(X0, X1) = [new 2i | new 2i + 1], one 64-byte store, contiguous in
//   the [state][lane] layout; X0 <= X1 is both halves' decision (set: the
//   predecessor without the high bit, ties included), as in acs_generic.
// 2 adds, 1 min, 1 compare and 1 masked add (the decision bits) for two new
// states, where the AVX2 butterfly takes 4 + 2 + 2 + 2 for the same two.
// GCC 12's plain _mm512_broadcast_i64x4 / _mm512_inserti64x4 / _mm512_castsi512_si256 trip its own
// -Wuninitialized (their undefined pass-through operand, under -Werror); the all-ones masked forms compile to
// the same unmasked instructions (vbroadcasti64x4 and vinserti64x4 with a memory operand).
constexpr __mmask8 all8 = static_cast<__mmask8>(0xff);

__attribute__((always_inline)) inline __m512i both_halves(__m256i v) { return _mm512_maskz_broadcast_i64x4(all8, v); }

__attribute__((always_inline)) inline __m512i halves(__m256i lo, __m256i hi) {
    return _mm512_maskz_inserti64x4(all8, both_halves(lo), hi, 1);
}

struct step_w {
    __m512i w[4];
};

__attribute__((always_inline)) inline step_w load_w(const __m256i* b, const unsigned* m) {
    step_w r;
    for (unsigned c = 0; c < 4; ++c)
        r.w[c] = halves(_mm256_loadu_si256(b + m[c]), _mm256_loadu_si256(b + m[c ^ 3u]));
    return r;
}

// Decision bits: butterfly i = 4g + k makes states 8g + 2k (low half) and
// 8g + 2k + 1 (high half), so its compare mask adds bit 2k to the low half's
// bytes and bit 2k + 1 to the high half's; a group's row bytes are then the
// OR of its accumulator's two halves. (A pavgb push, as in the AVX2 kernel,
// would leave the two halves' bits in the wrong order and need a bit
// interleave per group.)
constexpr auto dec_bit_table = [] {
    std::array<std::array<std::uint8_t, 64>, 4> t{};
    for (unsigned k = 0; k < 4; ++k)
        for (unsigned j = 0; j < 64; ++j) t[k][j] = static_cast<std::uint8_t>(1u << (2 * k + j / 32));
    return t;
}();
alignas(64) constexpr std::array<std::array<std::uint8_t, 64>, 4> dec_bits_of = dec_bit_table;

__attribute__((always_inline)) inline __m512i dec_bits(unsigned k) {
    return _mm512_load_si512(dec_bits_of[k].data());
}

struct step_ctx {
    const __m256i* cur;
    __m512i* nxt;
    __m512i* d;  // the row: 4 vectors of two groups each
    __m512i pend2;  // [pending minimum | pending minimum]
    __m512i mn0, mn1;
    __m512i acc, acc_even;
    step_w w;
};

// mode 0: no renormalisation after the step, 1: take the minimum (phase 3), 2: subtract the pending minimum (7).
template <int mode, bool keep, unsigned i>
__attribute__((always_inline)) inline void fly(step_ctx& c) {
    constexpr unsigned cv = lanes_can_label(i);
    const __m512i a = both_halves(_mm256_load_si256(c.cur + i));
    const __m512i b = both_halves(_mm256_load_si256(c.cur + i + 32));
    const __m512i x0 = _mm512_adds_epu8(a, c.w.w[cv]), x1 = _mm512_adds_epu8(b, c.w.w[cv ^ 3u]);
    __m512i n = _mm512_min_epu8(x0, x1);
    if constexpr (keep) {
        constexpr unsigned k = i % 4;
        const __mmask64 dm = _mm512_cmple_epu8_mask(x0, x1);
        if constexpr (k == 0) c.acc = _mm512_maskz_mov_epi8(dm, dec_bits(0));
        else c.acc = _mm512_mask_add_epi8(c.acc, dm, c.acc, dec_bits(k));
        if constexpr (k == 3) {
            constexpr unsigned g = i / 4;
            if constexpr (g % 2 == 0) {
                c.acc_even = c.acc;
            } else {
                // Groups g - 1 and g: low halves | high halves, ORed: one 64-byte store of two row groups.
                const __m512i lo = _mm512_maskz_shuffle_i64x2(all8, c.acc_even, c.acc, 0x44);
                const __m512i hi = _mm512_maskz_shuffle_i64x2(all8, c.acc_even, c.acc, 0xee);
                _mm512_storeu_si512(c.d + g / 2, _mm512_or_si512(lo, hi));
            }
        }
    }
    if constexpr (mode == 1) {
        if constexpr (i % 2 == 0) c.mn0 = _mm512_min_epu8(c.mn0, n);
        else c.mn1 = _mm512_min_epu8(c.mn1, n);
    } else if constexpr (mode == 2) {
        n = _mm512_subs_epu8(n, c.pend2);
    }
    _mm512_storeu_si512(c.nxt + i, n);
}

template <int mode, bool keep, unsigned... i>
__attribute__((always_inline)) inline void flies(step_ctx& c, std::integer_sequence<unsigned, i...>) {
    (fly<mode, keep, i>(c), ...);
}

// One step with constant labels; returns the pending minimum after it. Not
// inlined and 64-byte aligned, like the AVX2 kernel's two_steps_fast, so its
// speed does not move with where the caller happens to be placed.
template <int mode, bool keep>
__attribute__((noinline, aligned(64))) __m256i step_fast(const __m256i* cur, __m512i* nxt, const __m256i* b,
                                                        const unsigned* m, __m512i* d, __m256i pend) {
    step_ctx c;
    c.cur = cur;
    c.nxt = nxt;
    c.d = d;
    c.pend2 = both_halves(pend);
    c.mn0 = c.mn1 = _mm512_set1_epi8(-1);
    c.acc = c.acc_even = _mm512_setzero_si512();
    c.w = load_w(b, m);
    flies<mode, keep>(c, std::make_integer_sequence<unsigned, 32>{});
    if constexpr (mode == 1) {
        const __m512i mn = _mm512_min_epu8(c.mn0, c.mn1);
        return _mm256_min_epu8(_mm512_maskz_extracti64x4_epi64(all8, mn, 0), _mm512_maskz_extracti64x4_epi64(all8, mn, 1));
    }
    return pend;
}

using step_fn = __m256i (*)(const __m256i*, __m512i*, const __m256i*, const unsigned*, __m512i*, __m256i);

// By phase (step % 8) and keep.
constexpr step_fn step_table[2][8] = {
    {step_fast<0, false>, step_fast<0, false>, step_fast<0, false>, step_fast<1, false>, step_fast<0, false>,
     step_fast<0, false>, step_fast<0, false>, step_fast<2, false>},
    {step_fast<0, true>, step_fast<0, true>, step_fast<0, true>, step_fast<1, true>, step_fast<0, true>,
     step_fast<0, true>, step_fast<0, true>, step_fast<2, true>},
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
    std::uint8_t* cur = st.metric;
    std::uint8_t* nxt = buf;
    __m256i pend = _mm256_load_si256(reinterpret_cast<const __m256i*>(st.pending_min));
    std::uint64_t step = st.step;
    const bool keep = decisions != nullptr;
    const auto* b = reinterpret_cast<const __m256i*>(bm);
    for (std::size_t t = 0; t < steps; ++t, ++step) {
        auto* d = keep ? reinterpret_cast<__m512i*>(decisions + dec_row_bytes * t) : nullptr;
        pend = step_table[keep][step & 7u](reinterpret_cast<const __m256i*>(cur), reinterpret_cast<__m512i*>(nxt),
                                           b + 4 * t, m, d, pend);
        std::swap(cur, nxt);
    }
    if (cur != st.metric) std::memcpy(st.metric, buf, sizeof buf);
    _mm256_store_si256(reinterpret_cast<__m256i*>(st.pending_min), pend);
    st.step = step;
}

}  // namespace qlink::modem::conv_detail
