// AVX2 layered min-sum LDPC decoder: 32 consecutive rows of a circulant row block per 256-bit vector.
#include "ldpc_decoder_impl.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <stdexcept>

namespace qlink::modem::detail {
namespace {

constexpr int lanes = 32;

// Where the 32 rows of one group read and write one edge: `pos` in buf_.
// Every column block in buf_ is followed by a mirror of its first 32 values,
// so one plain load at `pos` also serves the lanes that wrap around the
// circulant. After a group has stored its new values, the edges that wrote
// into the mirror or into the first 32 values copy those 32 bytes to the other
// place (pos - z or pos + z; the bytes this writes outside the column are
// padding). Rows of one group share no column, so these copies can wait until
// the group's last store: nothing in the group reads them.
//
// Pinned lanes get a zero message, so their a-posteriori value is stored back
// unchanged: C2's fill bits (+127, saturated, so q = l) and the lanes past the
// end of a partial group (C2: 511 = 15 x 32 + 31 rows; that lane reads the
// value of row 0's column, which no other row of the group writes, and its
// message stays 0, so q = l there too).
// (ldpc_build_schedule builds this layout for any width; ldpc_decoder_avx512
// walks it with 64 rows per vector.)
using mirror_copy = ldpc_mirror_copy;
using group = ldpc_group;
using group_run = ldpc_group_run;

// pack_hard_decisions, 32 at a time: bytes reversed within each group of 8 so
// that movemask puts the first LLR of a group in the byte's MSB. (The scalar
// loop's per-bit read-modify-write of the output took 14 % of a C2 decode.)
void pack_signs(std::span<const llr_t> llr, std::span<std::uint8_t> out) {
    const __m256i rev = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15,
                                         14, 13, 12, 11, 10, 9, 8);
    std::size_t i = 0;
    for (; i + 32 <= llr.size(); i += 32) {
        const __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(llr.data() + i)), rev);
        const auto m = static_cast<std::uint32_t>(_mm256_movemask_epi8(v));
        for (int b = 0; b < 4; ++b) out[i / 8 + static_cast<std::size_t>(b)] = static_cast<std::uint8_t>(m >> (8 * b));
    }
    if (i < llr.size()) pack_hard_decisions(llr.subspan(i), out.subspan(i / 8));
}

// Byte f of the result is 0xff when bit f of `bits` is set.
__m256i lane_mask(std::uint32_t bits) {
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3,
                                         3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ull));
    const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)), sel);
    return _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
}

// 32 bytes, aligned for whole-vector loads and stores (std::vector<__m256i>
// would drop the vector type's attributes).
struct alignas(32) vec_bytes {
    std::int8_t b[32];
};

class ldpc_decoder_avx2 final : public ldpc_decoder {
public:
    explicit ldpc_decoder_avx2(const config& cfg) : cfg_(cfg), code_(cfg.code) {
        cap_ = _mm256_set1_epi8(static_cast<char>(magnitude_cap(cfg)));
        // The buffer before the schedule: the heap layout of the decoder
        // before the schedule moved to ldpc_schedule.cpp (with the schedule's
        // vectors allocated first, C2 decoded 4-7 % slower with the same
        // kernel code, 3 rounds alternated).
        buf_store_.assign(ldpc_schedule::buffer_bytes(code_, lanes), 0);
        {
            const auto addr = reinterpret_cast<std::uintptr_t>(buf_store_.data());
            buf_ = buf_store_.data() + ((64 - addr % 64) % 64);
        }
        ldpc_schedule sched = ldpc_build_schedule(code_, lanes, cfg.rule);
        stride_ = sched.stride;
        pos_ = std::move(sched.pos);
        copies_ = std::move(sched.copies);
        groups_ = std::move(sched.groups);
        runs_ = std::move(sched.runs);
        for (const std::uint64_t p : sched.pins) {
            pins_.emplace_back();
            _mm256_store_si256(reinterpret_cast<__m256i*>(&pins_.back()), lane_mask(static_cast<std::uint32_t>(p)));
        }
        const std::size_t max_dc = sched.max_degree;
        msg_.assign(pos_.size(), vec_bytes{});
        q_.assign(2 * max_dc, vec_bytes{});
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
            std::copy_n(buf_ + col_offset(c), z,
                        app_.begin() + static_cast<std::ptrdiff_t>(c * z));
        pack_signs(std::span<const llr_t>(app_).subspan(code_.fill_bits(), code_.k()), info);
        return res;
    }

    std::span<const llr_t> app() const override { return app_; }
    isa level() const override { return isa::avx2; }
    const ldpc_code& code() const override { return code_; }

private:
    std::size_t col_offset(std::size_t c) const { return lanes + c * stride_; }

    // ldpc_load_mother straight into buf_: per column block a run of fill
    // bits (+127), a run of received LLRs (-128 saturated to -127, 32 at a
    // time, the last vector overlapping the one before instead of a scalar
    // tail) and a run of punctured bits (0), then the block's mirror. (A byte
    // loop over the punctured blocks cost more than a decoder iteration.)
    void load_frame(std::span<const llr_t> llr) {
        const std::size_t z = code_.z(), fill = code_.fill_bits();
        const std::size_t sent_end = code_.n_mother() - code_.punctured_bits();  // mother index past the last sent bit
        const __m256i neg127 = _mm256_set1_epi8(-127);
        for (std::size_t c = 0; c < code_.col_blocks(); ++c) {
            std::int8_t* const dst = buf_ + col_offset(c);
            const std::size_t c0 = c * z;
            const std::size_t a = std::clamp(fill, c0, c0 + z) - c0;      // [0, a): fill bits
            const std::size_t b = std::clamp(sent_end, c0 + a, c0 + z) - c0;  // [a, b): received
            std::fill(dst, dst + a, llr_max);
            const llr_t* const src = llr.data() + (c0 + a - fill);  // src[i] belongs to dst[a + i]
            const std::size_t len = b - a;
            if (len >= lanes) {
                std::size_t i = 0;
                for (; i + lanes <= len; i += lanes) store(dst + a + i, _mm256_max_epi8(load(src + i), neg127));
                if (i < len) store(dst + b - lanes, _mm256_max_epi8(load(src + len - lanes), neg127));
            } else {
                for (std::size_t i = 0; i < len; ++i) dst[a + i] = saturate_llr(src[i]);
            }
            std::fill(dst + b, dst + z, llr_erasure);
            store(dst + z, load(dst));  // mirror (z >= 32 for every code)
        }
    }

    static __attribute__((always_inline)) __m256i load(const std::int8_t* p) {
        return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    }
    static __attribute__((always_inline)) void store(std::int8_t* p, __m256i v) {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
    }

    // The message limit as a cap on the minima: the largest magnitude whose
    // scaled value stays within the limit. Both rules are monotonic and step
    // by at most one, so min(scale(m), limit) == scale(min(m, cap)) for every
    // m; starting the minima at the cap instead of 127 then makes the limit
    // free. (ldpc_magnitude_cap checks this for all 128 magnitudes.)
    static std::uint8_t magnitude_cap(const config& cfg) {
        return ldpc_magnitude_cap(cfg.rule, cfg.offset, cfg.message_limit);
    }

    // Everything a group kernel reads besides the group itself, as locals:
    // through members the compiler would reload them after every vector store
    // (which may alias them).
    struct kernel_ctx {
        std::int8_t* base;          // buf_
        const std::uint32_t* pos;   // pos_
        __m256i* msg;               // msg_
        __m256i* q;                 // q_
        const __m256i* pins;        // pins_
        const mirror_copy* copies;  // copies_
        __m256i cap;                // see magnitude_cap
        __m256i offset;             // ldpc_min_sum::offset
    };

    // Magnitude rule without the limit (the minima are capped instead).
    template <ldpc_min_sum rule>
    static __attribute__((always_inline)) __m256i scale(__m256i m, const kernel_ctx& k) {
        if constexpr (rule == ldpc_min_sum::normalized) {
            // m <= 127: the bit shifted in from the next byte is masked off.
            const __m256i half = _mm256_and_si256(_mm256_srli_epi16(m, 1), _mm256_set1_epi8(0x7f));
            return _mm256_avg_epu8(m, half);
        } else {
            return _mm256_subs_epu8(m, k.offset);
        }
    }

    // Variable-to-check value of one edge for the group's rows.
    template <bool first>
    static __attribute__((always_inline)) __m256i edge_in(const std::int8_t* p, const __m256i* msg) {
        const __m256i l = load(p);
        if constexpr (first) {
            return l;  // no old message yet: q = l
        } else {
            // Saturated a-posteriori values pass unchanged (see the generic decoder).
            const __m256i sat = _mm256_cmpeq_epi8(_mm256_abs_epi8(l), _mm256_set1_epi8(127));
            return _mm256_blendv_epi8(_mm256_subs_epi8(l, *msg), l, sat);  // -128 allowed: ldpc_sub_q
        }
    }

    // One group: read every edge (keeping the values in registers for degree
    // D <= 8, else in q_), then write messages and a-posteriori values. D = 0:
    // degree known only at run time.
    //
    // The scalar decoder gives the edge of the first strict minimum (idx) the
    // second minimum. Here every edge whose magnitude equals the minimum gets
    // it: the same values, because a second edge at the minimum makes
    // m2 == m1. That saves tracking idx. The signs of the two magnitudes
    // already carry the sign of the whole row, so each edge only applies its
    // own sign.
    template <bool first, ldpc_min_sum rule, bool clean, unsigned D>
    static __attribute__((always_inline)) void group_body(const group* g, const kernel_ctx& k) {
        constexpr bool regs = D != 0 && D <= 8;
        const unsigned n = D != 0 ? D : g->degree;
        std::int8_t* const base = k.base;
        const std::uint32_t* const pos = k.pos + g->first;
        __m256i* const msg = k.msg + g->first;
        const __m256i* const pins = clean ? nullptr : k.pins + g->pins;
        __m256i v[regs ? D : 1];
        __m256i m1 = k.cap, m2 = k.cap, total = _mm256_setzero_si256();
        const auto read_edge = [&](unsigned e) __attribute__((always_inline)) {
            const __m256i x = edge_in<first>(base + pos[e], msg + e);
            if constexpr (regs)
                v[e] = x;
            else
                _mm256_store_si256(k.q + e, x);
            const __m256i mag = _mm256_abs_epi8(x);
            if (e == 0) {  // m2 stays at the cap: max(cap, mag) >= cap
                total = x;
                m1 = _mm256_min_epu8(m1, mag);
            } else {
                total = _mm256_xor_si256(total, x);
                m2 = _mm256_min_epu8(m2, _mm256_max_epu8(m1, mag));
                m1 = _mm256_min_epu8(m1, mag);
            }
        };
        if constexpr (D != 0) {
#pragma GCC unroll 32
            for (unsigned e = 0; e < D; ++e) read_edge(e);
        } else {
            for (unsigned e = 0; e < n; ++e) read_edge(e);
        }
        const __m256i one = _mm256_set1_epi8(1), neg127 = _mm256_set1_epi8(-127);
        const __m256i row_sign = _mm256_or_si256(total, one);
        const __m256i s1 = _mm256_sign_epi8(scale<rule>(m1, k), row_sign);
        const __m256i s2 = _mm256_sign_epi8(scale<rule>(m2, k), row_sign);
        const auto write_edge = [&](unsigned e) __attribute__((always_inline)) {
            __m256i x;
            if constexpr (regs)
                x = v[e];
            else
                x = _mm256_load_si256(k.q + e);
            const __m256i mag = _mm256_blendv_epi8(s1, s2, _mm256_cmpeq_epi8(_mm256_abs_epi8(x), m1));
            __m256i r = _mm256_sign_epi8(mag, _mm256_or_si256(x, one));
            // Pinned lanes (fill bits: scalar skips them) keep a zero message.
            if constexpr (!clean) r = _mm256_andnot_si256(pins[e], r);
            _mm256_store_si256(msg + e, r);
            store(base + pos[e], _mm256_max_epi8(_mm256_adds_epi8(x, r), neg127));
        };
        if constexpr (D != 0) {
#pragma GCC unroll 32
            for (unsigned e = 0; e < D; ++e) write_edge(e);
        } else {
            for (unsigned e = 0; e < n; ++e) write_edge(e);
        }
        for (const mirror_copy* c = k.copies + g->copies_begin; c != k.copies + g->copies_end; ++c)
            store(base + c->to, load(base + c->from));
    }

    // A run of groups of one kind: the dispatch and the constants once per run.
    template <bool first, ldpc_min_sum rule, bool clean, unsigned D>
    static void run_groups(const group* g, const group* end, const kernel_ctx& k) {
        for (; g != end; ++g) group_body<first, rule, clean, D>(g, k);
    }

    // A run of groups of one degree where consecutive groups share no column
    // (within a row block: no two rows within 64 of each other share one;
    // across a row block boundary: checked column by column): group i+1 is
    // read while group i is written, edge by edge, so two independent
    // dependency chains (minima, then messages) fill the pipeline that one
    // group alone leaves waiting at its minima, without the register spills
    // of two whole groups in flight. The q values go through two alternating
    // slots of q_. Same result as one group after the other: group i+1 reads
    // no column group i writes (nor the mirror of one), and group i's mirror
    // copies run before group i+1 writes anything.
    // (A pinned lane stores back the value it read: fill bits, which nobody
    // changes, or the lane past a partial group, whose column is row 0's.)
    template <bool first, ldpc_min_sum rule, unsigned D, bool may_pin>
    static void run_chain(const group* g, const group* end, const kernel_ctx& k) {
        std::int8_t* const base = k.base;
        const __m256i one = _mm256_set1_epi8(1), neg127 = _mm256_set1_epi8(-127);
        __m256i m1, m2, total;  // of the group being read
        // Group fields and pointers as locals: read back through the group after
        // a vector store, the compiler would reload them for every edge.
        const auto read_edge = [&](const std::uint32_t* pos, const __m256i* msg, __m256i* q, unsigned e)
                                   __attribute__((always_inline)) {
            const __m256i x = edge_in<first>(base + pos[e], msg + e);
            _mm256_store_si256(q + e, x);
            const __m256i mag = _mm256_abs_epi8(x);
            if (e == 0) {  // m2 stays at the cap
                total = x;
                m1 = _mm256_min_epu8(k.cap, mag);
                m2 = k.cap;
            } else {
                total = _mm256_xor_si256(total, x);
                m2 = _mm256_min_epu8(m2, _mm256_max_epu8(m1, mag));
                m1 = _mm256_min_epu8(m1, mag);
            }
        };
        const auto write_edge = [&](const std::uint32_t* pos, __m256i* msg, const __m256i* pins, const __m256i* q,
                                    unsigned e, __m256i s1, __m256i s2, __m256i min1) __attribute__((always_inline)) {
            const __m256i x = _mm256_load_si256(q + e);
            const __m256i mag = _mm256_blendv_epi8(s1, s2, _mm256_cmpeq_epi8(_mm256_abs_epi8(x), min1));
            __m256i r = _mm256_sign_epi8(mag, _mm256_or_si256(x, one));
            if (pins != nullptr) r = _mm256_andnot_si256(pins[e], r);  // pinned lanes: zero message
            _mm256_store_si256(msg + e, r);
            store(base + pos[e], _mm256_max_epi8(_mm256_adds_epi8(x, r), neg127));
        };
        // Group i's writes with (when `next_pos`) group i+1's reads; `clean`
        // as a template parameter keeps the pin test out of the edge loop.
        const auto step = [&]<bool clean>(const std::uint32_t* pos, __m256i* msg, const __m256i* pins,
                                          const __m256i* q, const std::uint32_t* next_pos, const __m256i* next_msg,
                                          __m256i* next_q, __m256i s1, __m256i s2, __m256i min1)
                              __attribute__((always_inline)) {
            const __m256i* const p = clean ? nullptr : pins;
            if (next_pos != nullptr) {
#pragma GCC unroll 32
                for (unsigned e = 0; e < D; ++e) {
                    read_edge(next_pos, next_msg, next_q, e);
                    write_edge(pos, msg, p, q, e, s1, s2, min1);
                }
            } else {
#pragma GCC unroll 32
                for (unsigned e = 0; e < D; ++e) write_edge(pos, msg, p, q, e, s1, s2, min1);
            }
        };
        __m256i* slot = k.q;
        __m256i* next_slot = k.q + D;
        const std::uint32_t* pos = k.pos + g->first;
        __m256i* msg = k.msg + g->first;
#pragma GCC unroll 32
        for (unsigned e = 0; e < D; ++e) read_edge(pos, msg, slot, e);
        for (;; ++g) {
            const mirror_copy* const c_begin = k.copies + g->copies_begin;
            const mirror_copy* const c_end = k.copies + g->copies_end;
            const __m256i* const pins = !may_pin || g->clean ? nullptr : k.pins + g->pins;
            const __m256i row_sign = _mm256_or_si256(total, one);
            const __m256i s1 = _mm256_sign_epi8(scale<rule>(m1, k), row_sign);
            const __m256i s2 = _mm256_sign_epi8(scale<rule>(m2, k), row_sign);
            const __m256i min1 = m1;
            // Consecutive groups of a row block: edges and messages follow on.
            const bool last = g + 1 == end;
            const std::uint32_t* const next_pos = last ? nullptr : pos + D;
            __m256i* const next_msg = msg + D;
            if (!may_pin || pins == nullptr)
                step.template operator()<true>(pos, msg, pins, slot, next_pos, next_msg, next_slot, s1, s2, min1);
            else
                step.template operator()<false>(pos, msg, pins, slot, next_pos, next_msg, next_slot, s1, s2, min1);
            for (const mirror_copy* c = c_begin; c != c_end; ++c) store(base + c->to, load(base + c->from));
            if (last) return;
            pos = next_pos;
            msg = next_msg;
            std::swap(slot, next_slot);
        }
    }

    // Kernels are specialised only where they pay: the degrees of C2 (32,
    // pinned lanes or not) and AR4JA r=1/2 (3 and 6, never pinned) under the
    // default normalized rule; everything else runs the run-time degree
    // kernel (compile time and code size grow with every specialisation).
    template <bool first, ldpc_min_sum rule>
    void iterate_rule() {
        const kernel_ctx k{buf_,
                           pos_.data(),
                           reinterpret_cast<__m256i*>(msg_.data()),
                           reinterpret_cast<__m256i*>(q_.data()),
                           reinterpret_cast<const __m256i*>(pins_.data()),
                           copies_.data(),
                           cap_,
                           _mm256_set1_epi8(static_cast<char>(cfg_.offset))};
        for (const group_run& r : runs_) {
            const group* const g = groups_.data() + r.begin;
            const group* const end = groups_.data() + r.end;
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
        for (const group& g : groups_) {
            const std::uint32_t* pos = pos_.data() + g.first;
            __m256i x = _mm256_setzero_si256();
            for (std::uint32_t e = 0; e < g.degree; ++e) x = _mm256_xor_si256(x, load(buf_ + pos[e]));
            const auto bits = static_cast<std::uint32_t>(_mm256_movemask_epi8(x));
            const std::uint32_t valid_mask = g.valid == 32 ? 0xffffffffu : ((1u << g.valid) - 1);
            if (bits & valid_mask) return false;
        }
        return true;
    }

    config cfg_;
    ldpc_code code_;
    __m256i cap_;  // see magnitude_cap
    std::size_t stride_ = 0;
    std::vector<llr_t> buf_store_;  // app LLRs, each column block followed by its mirror and padding
    llr_t* buf_ = nullptr;          // buf_store_ from its first 64-byte boundary
    std::vector<std::uint32_t> pos_;
    std::vector<mirror_copy> copies_;
    std::vector<group> groups_;
    std::vector<group_run> runs_;
    std::vector<vec_bytes> pins_;  // per edge of the groups that have pinned lanes: 0xff on those lanes
    std::vector<vec_bytes> msg_;   // check-to-variable messages, one vector per group and edge
    std::vector<vec_bytes> q_;
    std::vector<llr_t> app_;
};

// Inter-frame: lane f of every vector belongs to frame f; the vectors walk
// the rows in the scalar decoder's order, so each lane is that decoder.
class ldpc_batch_decoder_avx2 final : public ldpc_batch_decoder {
public:
    explicit ldpc_batch_decoder_avx2(const ldpc_decoder::config& cfg) : cfg_(cfg), code_(cfg.code) {
        ldpc_check_groups(code_);
        limit_ = _mm256_set1_epi8(static_cast<char>(cfg.message_limit));
        app_.assign(code_.n_mother() * lanes, 0);
        msg_.assign(code_.edges().size() * code_.z() * lanes, 0);
        std::size_t dc = 0;
        for (std::size_t b = 0; b < code_.row_blocks(); ++b) dc = std::max(dc, code_.row_begin(b + 1) - code_.row_begin(b));
        q_.assign(dc * lanes, 0);
        l_.assign(dc * lanes, 0);
        cols_.assign(dc, 0);
        mother_.assign(code_.n_mother(), 0);
    }

    std::size_t batch() const override { return lanes; }

    ldpc_status decode(std::span<const llr_t> llr, std::span<std::uint8_t> info,
                       std::span<ldpc_decode_result> results) override {
        const std::size_t frames = results.size(), n = code_.n(), kb = code_.k() / 8, nm = code_.n_mother();
        if (frames == 0 || frames > lanes || llr.size() != frames * n || info.size() != frames * kb)
            return ldpc_status::bad_length;
        std::fill(app_.begin(), app_.end(), std::int8_t{0});
        for (std::size_t f = 0; f < frames; ++f) {
            ldpc_load_mother(code_, llr.subspan(f * n, n), mother_);
            for (std::size_t p = 0; p < nm; ++p) app_[p * lanes + f] = mother_[p];
        }
        std::fill(msg_.begin(), msg_.end(), std::int8_t{0});
        std::uint32_t active = frames == lanes ? 0xffffffffu : ((1u << frames) - 1);
        for (std::size_t f = 0; f < frames; ++f) results[f] = {};
        for (unsigned it = 0; it < cfg_.max_iterations && active; ++it) {
            iterate(active);
            for (std::size_t f = 0; f < frames; ++f)
                if ((active >> f) & 1) results[f].iterations = it + 1;
            if (cfg_.early_termination) {
                const std::uint32_t done = active & ~failing_lanes();
                for (std::size_t f = 0; f < frames; ++f)
                    if ((done >> f) & 1) results[f].success = true;
                active &= ~done;
            }
        }
        if (!cfg_.early_termination) {
            const std::uint32_t fail = failing_lanes();
            for (std::size_t f = 0; f < frames; ++f) results[f].success = !((fail >> f) & 1);
        }
        const std::size_t fill = code_.fill_bits();
        for (std::size_t f = 0; f < frames; ++f) {
            auto out = info.subspan(f * kb, kb);
            std::fill(out.begin(), out.end(), std::uint8_t{0});
            for (std::size_t i = 0; i < code_.k(); ++i)
                out[i >> 3] |= static_cast<std::uint8_t>(hard_bit(app_[(fill + i) * lanes + f]) << (7 - (i & 7)));
        }
        return ldpc_status::ok;
    }

    void app(std::size_t f, std::span<llr_t> out) const override {
        if (f >= lanes || out.size() != code_.n_mother()) return;
        for (std::size_t p = 0; p < out.size(); ++p) out[p] = app_[p * lanes + f];
    }

    isa level() const override { return isa::avx2; }
    const ldpc_code& code() const override { return code_; }

private:
    __m256i scale(__m256i m) const {
        if (cfg_.rule == ldpc_min_sum::normalized) {
            const __m256i half = _mm256_and_si256(_mm256_srli_epi16(m, 1), _mm256_set1_epi8(0x7f));
            return _mm256_min_epu8(_mm256_avg_epu8(m, half), limit_);
        }
        return _mm256_min_epu8(_mm256_subs_epu8(m, _mm256_set1_epi8(static_cast<char>(cfg_.offset))), limit_);
    }

    void iterate(std::uint32_t active_bits) {
        const __m256i neg127 = _mm256_set1_epi8(-127), pos127 = _mm256_set1_epi8(127), one = _mm256_set1_epi8(1);
        const __m256i active = lane_mask(active_bits);
        const bool all = active_bits == 0xffffffffu;
        const std::size_t z = code_.z();
        auto* q = reinterpret_cast<__m256i*>(q_.data());
        auto* lv = reinterpret_cast<__m256i*>(l_.data());
        auto* app = app_.data();
        const std::size_t fill_lanes = code_.fill_bits() * lanes;
        for (std::size_t b = 0; b < code_.row_blocks(); ++b) {
            const std::size_t e0 = code_.row_begin(b), dc = code_.row_begin(b + 1) - e0;
            auto* msg = reinterpret_cast<__m256i*>(msg_.data()) + e0 * z;
            for (std::size_t r = 0; r < z; ++r, msg += dc) {
                __m256i m1 = _mm256_set1_epi8(127), m2 = m1, idx = _mm256_setzero_si256(), total = idx;
                for (std::size_t e = 0; e < dc; ++e) {
                    const auto& ed = code_.edges()[e0 + e];
                    std::size_t c = r + ed.shift;
                    if (c >= z) c -= z;
                    cols_[e] = (ed.col_block * z + c) * lanes;
                    const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(app + cols_[e]));
                    _mm256_storeu_si256(lv + e, l);
                    const __m256i sat = _mm256_cmpeq_epi8(_mm256_abs_epi8(l), pos127);
                    const __m256i v = _mm256_blendv_epi8(_mm256_subs_epi8(l, _mm256_loadu_si256(msg + e)), l, sat);
                    _mm256_storeu_si256(q + e, v);
                    total = _mm256_xor_si256(total, v);
                    const __m256i mag = _mm256_abs_epi8(v);
                    m2 = _mm256_min_epu8(m2, _mm256_max_epu8(m1, mag));
                    // Unsigned: |q| = 128 (q = -128) is no new minimum.
                    const __m256i m1_new = _mm256_min_epu8(m1, mag);
                    idx = _mm256_blendv_epi8(_mm256_set1_epi8(static_cast<char>(e)), idx, _mm256_cmpeq_epi8(m1_new, m1));
                    m1 = m1_new;
                }
                const __m256i s1 = scale(m1), s2 = scale(m2);
                for (std::size_t e = 0; e < dc; ++e) {
                    if (cols_[e] < fill_lanes) continue;  // fill bit: stays +127, message stays 0
                    const __m256i v = _mm256_loadu_si256(q + e);
                    const __m256i mag =
                        _mm256_blendv_epi8(s1, s2, _mm256_cmpeq_epi8(idx, _mm256_set1_epi8(static_cast<char>(e))));
                    const __m256i rn = _mm256_sign_epi8(mag, _mm256_or_si256(_mm256_xor_si256(v, total), one));
                    _mm256_storeu_si256(msg + e, rn);  // a stopped frame's messages are never read again
                    __m256i l = _mm256_max_epi8(_mm256_adds_epi8(v, rn), neg127);
                    if (!all) l = _mm256_blendv_epi8(_mm256_loadu_si256(lv + e), l, active);
                    _mm256_storeu_si256(reinterpret_cast<__m256i*>(app + cols_[e]), l);
                }
            }
        }
    }

    std::uint32_t failing_lanes() const {
        const std::size_t z = code_.z();
        __m256i fail = _mm256_setzero_si256();
        for (std::size_t b = 0; b < code_.row_blocks(); ++b)
            for (std::size_t r = 0; r < z; ++r) {
                __m256i x = _mm256_setzero_si256();
                for (std::size_t e = code_.row_begin(b); e < code_.row_begin(b + 1); ++e) {
                    const auto& ed = code_.edges()[e];
                    std::size_t c = r + ed.shift;
                    if (c >= z) c -= z;
                    x = _mm256_xor_si256(x, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(app_.data() + (ed.col_block * z + c) * lanes)));
                }
                fail = _mm256_or_si256(fail, x);
            }
        return static_cast<std::uint32_t>(_mm256_movemask_epi8(fail));
    }

    ldpc_decoder::config cfg_;
    ldpc_code code_;
    __m256i limit_;
    std::vector<std::int8_t> app_;  // [mother position][frame]
    std::vector<std::int8_t> msg_;  // [row block][row][edge][frame]
    std::vector<std::int8_t> q_, l_;
    std::vector<std::size_t> cols_;
    std::vector<llr_t> mother_;
};

}  // namespace

std::unique_ptr<ldpc_decoder> make_ldpc_decoder_avx2(const ldpc_decoder::config& cfg) {
    return std::make_unique<ldpc_decoder_avx2>(cfg);
}

std::unique_ptr<ldpc_batch_decoder> make_ldpc_batch_decoder_avx2(const ldpc_decoder::config& cfg) {
    return std::make_unique<ldpc_batch_decoder_avx2>(cfg);
}

}  // namespace qlink::modem::detail
