// AVX-512 layered min-sum LDPC decoder: 64 consecutive rows of a circulant row block per 512-bit vector.
#include "ldpc_decoder_impl.hpp"

#include <immintrin.h>

#include <algorithm>
#include <cstring>

namespace qlink::modem::detail {
namespace {

// The AVX2 decoder's schedule (ldpc_build_schedule: mirror copies, pinned
// lanes, chains; ldpc_decoder_avx2.cpp explains them) at twice the width.
// What changes with AVX-512BW: pins are lane masks (__mmask64) instead of
// byte vectors, blends and the per-edge sign use mask registers (there is no
// 512-bit vpsignb), and C2's partial group is 511 = 7 x 64 + 63 rows (its
// pinned lane 63 reads row 0's column, which no other row of the group
// writes: 64-row groups share no column, which make_ldpc_decoder_avx512
// checks; AR4JA r=4/5 k=1024, z = 32, is left to the AVX2 decoder).
constexpr int lanes = 64;

// pack_hard_decisions, 64 at a time: bytes reversed within each group of 8 so
// that the sign mask puts the first LLR of a group in the byte's MSB.
void pack_signs(std::span<const llr_t> llr, std::span<std::uint8_t> out) {
    // (Built with set_epi64, not _mm512_broadcast_i32x4: GCC 12 warns about
    // that intrinsic's undefined pass-through operand.)
    constexpr long long lo = 0x0001020304050607LL, hi = 0x08090a0b0c0d0e0fLL;  // indices within each 128-bit lane
    const __m512i rev = _mm512_set_epi64(hi, lo, hi, lo, hi, lo, hi, lo);
    std::size_t i = 0;
    for (; i + 64 <= llr.size(); i += 64) {
        const __m512i v = _mm512_shuffle_epi8(_mm512_loadu_si512(llr.data() + i), rev);
        const std::uint64_t m = _mm512_movepi8_mask(v);
        std::memcpy(out.data() + i / 8, &m, 8);  // little-endian: byte b holds bits 8b..8b+7
    }
    if (i < llr.size()) pack_hard_decisions(llr.subspan(i), out.subspan(i / 8));
}

// 64 bytes, aligned for whole-vector loads and stores.
struct alignas(64) vec_bytes {
    std::int8_t b[64];
};

class ldpc_decoder_avx512 final : public ldpc_decoder {
public:
    ldpc_decoder_avx512(const config& cfg, ldpc_schedule sched) : cfg_(cfg), code_(cfg.code) {
        cap_ = _mm512_set1_epi8(static_cast<char>(ldpc_magnitude_cap(cfg.rule, cfg.offset, cfg.message_limit)));
        stride_ = sched.stride;
        // Schedule first, then the buffer: the other way round (the AVX2
        // decoder's order) C2 decoded 3-5 % slower (heap layout, 3 rounds).
        buf_store_.assign(ldpc_schedule::buffer_bytes(code_, lanes), 0);
        {
            const auto addr = reinterpret_cast<std::uintptr_t>(buf_store_.data());
            buf_ = buf_store_.data() + ((64 - addr % 64) % 64);
        }
        pos_ = std::move(sched.pos);
        copies_ = std::move(sched.copies);
        groups_ = std::move(sched.groups);
        runs_ = std::move(sched.runs);
        pins_ = std::move(sched.pins);
        msg_.assign(pos_.size(), vec_bytes{});
        q_.assign(2 * sched.max_degree, vec_bytes{});
        app_.assign(code_.n_mother(), 0);
    }

    ldpc_decode_result decode(std::span<const llr_t> llr, std::span<std::uint8_t> info) override {
        ldpc_decode_result res;
        if (llr.size() != code_.n() || info.size() != code_.k() / 8) {
            res.status = ldpc_status::bad_length;
            return res;
        }
        load_frame(llr);
        const std::size_t z = code_.z();
        // The first iteration reads no old messages (all zero): no clearing pass.
        ldpc_run_iterations(
            cfg_, res, [this](unsigned it) { it == 0 ? iterate<true>() : iterate<false>(); },
            [this] { return syndrome_ok(); });
        for (std::size_t c = 0; c < code_.col_blocks(); ++c)
            std::copy_n(buf_ + col_offset(c), z, app_.begin() + static_cast<std::ptrdiff_t>(c * z));
        pack_signs(std::span<const llr_t>(app_).subspan(code_.fill_bits(), code_.k()), info);
        return res;
    }

    std::span<const llr_t> app() const override { return app_; }
    isa level() const override { return isa::avx512; }
    const ldpc_code& code() const override { return code_; }

private:
    std::size_t col_offset(std::size_t c) const { return lanes + c * stride_; }

    // ldpc_load_mother straight into buf_, as the AVX2 decoder does it.
    void load_frame(std::span<const llr_t> llr) {
        const std::size_t z = code_.z(), fill = code_.fill_bits();
        const std::size_t sent_end = code_.n_mother() - code_.punctured_bits();
        const __m512i neg127 = _mm512_set1_epi8(-127);
        for (std::size_t c = 0; c < code_.col_blocks(); ++c) {
            std::int8_t* const dst = buf_ + col_offset(c);
            const std::size_t c0 = c * z;
            const std::size_t a = std::clamp(fill, c0, c0 + z) - c0;          // [0, a): fill bits
            const std::size_t b = std::clamp(sent_end, c0 + a, c0 + z) - c0;  // [a, b): received
            std::fill(dst, dst + a, llr_max);
            const llr_t* const src = llr.data() + (c0 + a - fill);
            const std::size_t len = b - a;
            if (len >= lanes) {
                std::size_t i = 0;
                for (; i + lanes <= len; i += lanes) store(dst + a + i, _mm512_max_epi8(load(src + i), neg127));
                if (i < len) store(dst + b - lanes, _mm512_max_epi8(load(src + len - lanes), neg127));
            } else {
                for (std::size_t i = 0; i < len; ++i) dst[a + i] = saturate_llr(src[i]);
            }
            std::fill(dst + b, dst + z, llr_erasure);
            store(dst + z, load(dst));  // mirror (z >= 64: checked by the schedule)
        }
    }

    static __attribute__((always_inline)) __m512i load(const std::int8_t* p) { return _mm512_loadu_si512(p); }
    static __attribute__((always_inline)) void store(std::int8_t* p, __m512i v) { _mm512_storeu_si512(p, v); }

    // Lanes of `mag` where x < 0 negated: vpsignb with a nonzero sign (the
    // AVX2 kernels' sign(mag, x | 1)).
    static __attribute__((always_inline)) __m512i apply_sign(__m512i mag, __m512i x) {
        return _mm512_mask_sub_epi8(mag, _mm512_movepi8_mask(x), _mm512_setzero_si512(), mag);
    }

    struct kernel_ctx {
        std::int8_t* base;            // buf_
        const std::uint32_t* pos;     // pos_
        __m512i* msg;                 // msg_
        __m512i* q;                   // q_
        const std::uint64_t* pins;    // pins_
        const ldpc_mirror_copy* copies;  // copies_
        __m512i cap;                  // see ldpc_magnitude_cap
        __m512i offset;               // ldpc_min_sum::offset
    };

    // Magnitude rule without the limit (the minima are capped instead).
    template <ldpc_min_sum rule>
    static __attribute__((always_inline)) __m512i scale(__m512i m, const kernel_ctx& k) {
        if constexpr (rule == ldpc_min_sum::normalized) {
            const __m512i half = _mm512_and_si512(_mm512_srli_epi16(m, 1), _mm512_set1_epi8(0x7f));
            return _mm512_avg_epu8(m, half);
        } else {
            return _mm512_subs_epu8(m, k.offset);
        }
    }

    // Variable-to-check value of one edge for the group's rows.
    template <bool first>
    static __attribute__((always_inline)) __m512i edge_in(const std::int8_t* p, const __m512i* msg) {
        const __m512i l = load(p);
        if constexpr (first) {
            return l;
        } else {
            // Saturated a-posteriori values pass unchanged (see the generic decoder).
            const __mmask64 live = _mm512_cmpneq_epi8_mask(_mm512_abs_epi8(l), _mm512_set1_epi8(127));
            return _mm512_mask_subs_epi8(l, live, l, *msg);  // -128 allowed: ldpc_sub_q
        }
    }

    // Messages and a-posteriori values of one edge (see the AVX2 group_body:
    // every edge at the minimum gets the second minimum, s1 and s2 carry the
    // row's sign).
    static __attribute__((always_inline)) void write_edge(std::int8_t* p, __m512i* msg, __mmask64 pin, __m512i x,
                                                          __m512i s1, __m512i s2, __m512i min1) {
        const __mmask64 at_min = _mm512_cmpeq_epi8_mask(_mm512_abs_epi8(x), min1);
        __m512i r = apply_sign(_mm512_mask_blend_epi8(at_min, s1, s2), x);
        r = _mm512_maskz_mov_epi8(~pin, r);  // pinned lanes (fill bits: scalar skips them) keep a zero message
        _mm512_store_si512(msg, r);
        store(p, _mm512_max_epi8(_mm512_adds_epi8(x, r), _mm512_set1_epi8(-127)));
    }

    // One group: degree D <= 8 keeps the values in registers, else in q_;
    // D = 0: degree known only at run time.
    //
    // C2 gains least from the width (10 iterations: 544-553 Mbit/s against
    // AVX2's 523-525, same binary; AR4JA 1.1-1.8x): its 64-row groups cannot be chained (see
    // ldpc_build_schedule), and a 64-row edge costs about twice a 32-row one.
    // Tried on C2, none more than 2 % (noise), none kept: the minima in four
    // independent chains; 8 or 16 of the 32 values in registers; the values
    // read again instead of kept in q_ (13 % slower); the run-time degree
    // kernel instead of the unrolled one. Measured with wrong results, for the
    // bound: all loads aligned +8 %, all stores aligned +4 %, messages in 4 KB
    // instead of 32 KB +5 %, stores never read back (no store-to-load
    // dependencies) +0 %.
    template <bool first, ldpc_min_sum rule, bool clean, unsigned D>
    static __attribute__((always_inline)) void group_body(const ldpc_group* g, const kernel_ctx& k) {
        constexpr bool regs = D != 0 && D <= 8;
        const unsigned n = D != 0 ? D : g->degree;
        std::int8_t* const base = k.base;
        const std::uint32_t* const pos = k.pos + g->first;
        __m512i* const msg = k.msg + g->first;
        const std::uint64_t* const pins = clean ? nullptr : k.pins + g->pins;
        __m512i v[regs ? D : 1];
        __m512i m1 = k.cap, m2 = k.cap, total = _mm512_setzero_si512();
        const auto read_edge = [&](unsigned e) __attribute__((always_inline)) {
            const __m512i x = edge_in<first>(base + pos[e], msg + e);
            if constexpr (regs)
                v[e] = x;
            else
                _mm512_store_si512(k.q + e, x);
            const __m512i mag = _mm512_abs_epi8(x);
            if (e == 0) {  // m2 stays at the cap: max(cap, mag) >= cap
                total = x;
                m1 = _mm512_min_epu8(m1, mag);
            } else {
                total = _mm512_xor_si512(total, x);
                m2 = _mm512_min_epu8(m2, _mm512_max_epu8(m1, mag));
                m1 = _mm512_min_epu8(m1, mag);
            }
        };
        if constexpr (D != 0) {
#pragma GCC unroll 32
            for (unsigned e = 0; e < D; ++e) read_edge(e);
        } else {
            for (unsigned e = 0; e < n; ++e) read_edge(e);
        }
        const __m512i s1 = apply_sign(scale<rule>(m1, k), total);
        const __m512i s2 = apply_sign(scale<rule>(m2, k), total);
        const auto write = [&](unsigned e) __attribute__((always_inline)) {
            const __m512i x = regs ? v[e] : _mm512_load_si512(k.q + e);
            write_edge(base + pos[e], msg + e, clean ? 0 : pins[e], x, s1, s2, m1);
        };
        if constexpr (D != 0) {
#pragma GCC unroll 32
            for (unsigned e = 0; e < D; ++e) write(e);
        } else {
            for (unsigned e = 0; e < n; ++e) write(e);
        }
        for (const ldpc_mirror_copy* c = k.copies + g->copies_begin; c != k.copies + g->copies_end; ++c)
            store(base + c->to, load(base + c->from));
    }

    template <bool first, ldpc_min_sum rule, bool clean, unsigned D>
    static void run_groups(const ldpc_group* g, const ldpc_group* end, const kernel_ctx& k) {
        for (; g != end; ++g) group_body<first, rule, clean, D>(g, k);
    }

    // Group i+1 read while group i is written (the AVX2 run_chain; the
    // schedule chains only groups that share no column: AR4JA r=1/2, not C2).
    template <bool first, ldpc_min_sum rule, unsigned D, bool may_pin>
    static void run_chain(const ldpc_group* g, const ldpc_group* end, const kernel_ctx& k) {
        std::int8_t* const base = k.base;
        __m512i m1, m2, total;  // of the group being read
        const auto read_edge = [&](const std::uint32_t* pos, const __m512i* msg, __m512i* q, unsigned e)
                                   __attribute__((always_inline)) {
            const __m512i x = edge_in<first>(base + pos[e], msg + e);
            _mm512_store_si512(q + e, x);
            const __m512i mag = _mm512_abs_epi8(x);
            if (e == 0) {
                total = x;
                m1 = _mm512_min_epu8(k.cap, mag);
                m2 = k.cap;
            } else {
                total = _mm512_xor_si512(total, x);
                m2 = _mm512_min_epu8(m2, _mm512_max_epu8(m1, mag));
                m1 = _mm512_min_epu8(m1, mag);
            }
        };
        const auto step = [&]<bool clean>(const std::uint32_t* pos, __m512i* msg, const std::uint64_t* pins,
                                          const __m512i* q, const std::uint32_t* next_pos, const __m512i* next_msg,
                                          __m512i* next_q, __m512i s1, __m512i s2, __m512i min1)
                              __attribute__((always_inline)) {
            if (next_pos != nullptr) {
#pragma GCC unroll 32
                for (unsigned e = 0; e < D; ++e) {
                    read_edge(next_pos, next_msg, next_q, e);
                    write_edge(base + pos[e], msg + e, clean ? 0 : pins[e], _mm512_load_si512(q + e), s1, s2, min1);
                }
            } else {
#pragma GCC unroll 32
                for (unsigned e = 0; e < D; ++e)
                    write_edge(base + pos[e], msg + e, clean ? 0 : pins[e], _mm512_load_si512(q + e), s1, s2, min1);
            }
        };
        __m512i* slot = k.q;
        __m512i* next_slot = k.q + D;
        const std::uint32_t* pos = k.pos + g->first;
        __m512i* msg = k.msg + g->first;
#pragma GCC unroll 32
        for (unsigned e = 0; e < D; ++e) read_edge(pos, msg, slot, e);
        for (;; ++g) {
            const ldpc_mirror_copy* const c_begin = k.copies + g->copies_begin;
            const ldpc_mirror_copy* const c_end = k.copies + g->copies_end;
            const std::uint64_t* const pins = !may_pin || g->clean ? nullptr : k.pins + g->pins;
            const __m512i s1 = apply_sign(scale<rule>(m1, k), total);
            const __m512i s2 = apply_sign(scale<rule>(m2, k), total);
            const __m512i min1 = m1;
            const bool last = g + 1 == end;
            const std::uint32_t* const next_pos = last ? nullptr : pos + D;
            __m512i* const next_msg = msg + D;
            if (!may_pin || pins == nullptr)
                step.template operator()<true>(pos, msg, pins, slot, next_pos, next_msg, next_slot, s1, s2, min1);
            else
                step.template operator()<false>(pos, msg, pins, slot, next_pos, next_msg, next_slot, s1, s2, min1);
            for (const ldpc_mirror_copy* c = c_begin; c != c_end; ++c) store(base + c->to, load(base + c->from));
            if (last) return;
            pos = next_pos;
            msg = next_msg;
            std::swap(slot, next_slot);
        }
    }

    // The AVX2 decoder's specialisations: C2's degree 32, AR4JA r=1/2's 3 and
    // 6 under the normalized rule; the run-time degree kernel otherwise.
    template <bool first, ldpc_min_sum rule>
    void iterate_rule() {
        const kernel_ctx k{buf_,
                           pos_.data(),
                           reinterpret_cast<__m512i*>(msg_.data()),
                           reinterpret_cast<__m512i*>(q_.data()),
                           pins_.data(),
                           copies_.data(),
                           cap_,
                           _mm512_set1_epi8(static_cast<char>(cfg_.offset))};
        for (const ldpc_group_run& r : runs_) {
            const ldpc_group* const g = groups_.data() + r.begin;
            const ldpc_group* const end = groups_.data() + r.end;
            if constexpr (rule == ldpc_min_sum::normalized) {
                if (r.chained) {  // degree 3, 6 or 32
                    if (r.degree == 3)
                        run_chain<first, rule, 3, false>(g, end, k);
                    else if (r.degree == 6)
                        run_chain<first, rule, 6, false>(g, end, k);
                    else
                        run_chain<first, rule, 32, true>(g, end, k);
                    continue;
                }
                if (r.degree == 32) {
                    if (r.clean)
                        run_groups<first, rule, true, 32>(g, end, k);
                    else
                        run_groups<first, rule, false, 32>(g, end, k);
                    continue;
                }
                if (r.clean && (r.degree == 3 || r.degree == 6)) {
                    if (r.degree == 3)
                        run_groups<first, rule, true, 3>(g, end, k);
                    else
                        run_groups<first, rule, true, 6>(g, end, k);
                    continue;
                }
            }
            if (r.clean)
                run_groups<first, rule, true, 0>(g, end, k);
            else
                run_groups<first, rule, false, 0>(g, end, k);
        }
    }

    template <bool first>
    void iterate() {
        if (cfg_.rule == ldpc_min_sum::normalized)
            iterate_rule<first, ldpc_min_sum::normalized>();
        else
            iterate_rule<first, ldpc_min_sum::offset>();
    }

    bool syndrome_ok() const {
        for (const ldpc_group& g : groups_) {
            const std::uint32_t* pos = pos_.data() + g.first;
            __m512i x = _mm512_setzero_si512();
            for (std::uint32_t e = 0; e < g.degree; ++e) x = _mm512_xor_si512(x, load(buf_ + pos[e]));
            const std::uint64_t valid_mask = g.valid == 64 ? ~std::uint64_t{0} : ((std::uint64_t{1} << g.valid) - 1);
            if (_mm512_movepi8_mask(x) & valid_mask) return false;
        }
        return true;
    }

    config cfg_;
    ldpc_code code_;
    __m512i cap_;
    std::size_t stride_ = 0;
    std::vector<llr_t> buf_store_;  // app LLRs, each column block followed by its mirror and padding
    llr_t* buf_ = nullptr;          // buf_store_ from its first 64-byte boundary
    std::vector<std::uint32_t> pos_;
    std::vector<ldpc_mirror_copy> copies_;
    std::vector<ldpc_group> groups_;
    std::vector<ldpc_group_run> runs_;
    std::vector<std::uint64_t> pins_;  // per edge of the groups that have pinned lanes: bit l set on those lanes
    std::vector<vec_bytes> msg_;       // check-to-variable messages, one vector per group and edge
    std::vector<vec_bytes> q_;
    std::vector<llr_t> app_;
};

}  // namespace

std::unique_ptr<ldpc_decoder> make_ldpc_decoder_avx512(const ldpc_decoder::config& cfg) {
    const ldpc_code code(cfg.code);
    for (std::size_t b = 0; b < code.row_blocks(); ++b)
        if (!ldpc_rows_apart(code, b, lanes)) return nullptr;
    return std::make_unique<ldpc_decoder_avx512>(cfg, ldpc_build_schedule(code, lanes, cfg.rule));
}

}  // namespace qlink::modem::detail
