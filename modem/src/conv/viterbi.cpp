// Viterbi decoder engine (depuncturing, decision buffer, traceback, modes), the generic kernels and the factory.
#include "conv_tables.hpp"
#include "viterbi_kernels.hpp"
#include "viterbi_lanes.hpp"

#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"

#include <algorithm>
#if defined(__x86_64__)
#include <emmintrin.h>
#endif
#include <bit>
#include <cstring>
#include <stdexcept>
#include <vector>

namespace qlink::modem {
namespace conv_detail {

void branch_generic(const std::int8_t* pairs, std::size_t steps, std::uint8_t* bm4) {
    for (std::size_t t = 0; t < steps; ++t) {
        const int l0 = std::max<int>(pairs[2 * t], -127);
        const int l1 = std::max<int>(pairs[2 * t + 1], -127);
        const int p0 = std::max(l0, 0), q0 = std::max(-l0, 0);
        const int p1 = std::max(l1, 0), q1 = std::max(-l1, 0);
        bm4[4 * t + 0] = static_cast<std::uint8_t>((q0 + q1) >> 2);
        bm4[4 * t + 1] = static_cast<std::uint8_t>((q0 + p1) >> 2);
        bm4[4 * t + 2] = static_cast<std::uint8_t>((p0 + q1) >> 2);
        bm4[4 * t + 3] = static_cast<std::uint8_t>((p0 + p1) >> 2);
    }
}

void acs_generic(acs_state& st, const std::uint8_t* idx, const std::uint8_t* bm4, std::size_t steps,
                 std::uint64_t* decisions) {
    auto sat = [](unsigned a, unsigned b) { return static_cast<std::uint8_t>(std::min(a + b, 255u)); };
    std::uint8_t next[64];
    for (std::size_t t = 0; t < steps; ++t) {
        const std::uint8_t* b = bm4 + 4 * t;
        std::uint64_t d = 0;
        for (unsigned i = 0; i < 32; ++i) {
            const unsigned bm = b[idx[i]], bmc = b[idx[i] ^ 3u];
            const std::uint8_t x0 = sat(st.metric[i], bm), x1 = sat(st.metric[i + 32], bmc);
            const std::uint8_t y0 = sat(st.metric[i], bmc), y1 = sat(st.metric[i + 32], bm);
            next[2 * i] = std::min(x0, x1);
            next[2 * i + 1] = std::min(y0, y1);
            d |= static_cast<std::uint64_t>(x1 < x0) << i;
            d |= static_cast<std::uint64_t>(y1 < y0) << (32 + i);
        }
        std::memcpy(st.metric, next, 64);
        decisions[t] = d;
        const unsigned phase = static_cast<unsigned>(st.step & 7u);
        if (phase == 3) {
            st.pending_min = *std::min_element(st.metric, st.metric + 64);
        } else if (phase == 7) {
            for (auto& m : st.metric) m = static_cast<std::uint8_t>(m - std::min(m, st.pending_min));
        }
        ++st.step;
    }
}

namespace {

// Steps decided between two tracebacks in the streaming path; with the
// traceback depth D the buffer holds D + chunk decisions.
constexpr std::size_t chunk_steps = 1024;

// Terminated blocks of at least this many info bits are decoded as 32
// segments in the lanes kernel; A = acquisition_steps() of run-in before
// each segment. Rate 1/2: 48. Against the unsplit decoder on the same frames
// (segment test) 32 cost +8 % bit errors at 3 dB; 48 gives exactly the
// unsplit decoder's errors at 3 and 4 dB and +1..2.5 % at 2 dB (BER 4e-3,
// depending on where the cuts fall; 64: none, for ~3 % more time). The
// punctured codes acquire more slowly: with 64 the 7/8 code lost 2x in BER
// (slow BER test), with 96 a little, with 128 it is better than the former
// design; they get 128.
constexpr std::size_t lanes_min_bits = 4096;
constexpr std::size_t acquisition_steps(conv_rate r) { return r == conv_rate::r1_2 ? 48 : 128; }

// Writes decided bits as packed MSB-first bytes; skips the first `skip` bits
// and drops everything past `limit` (tail bits, tail-biting wrap).
struct bit_sink {
    std::uint8_t* out = nullptr;
    std::size_t bytes = 0;
    std::size_t written = 0;  // bits accepted so far (after skip, before limit)
    std::size_t skip = 0;
    std::size_t limit = static_cast<std::size_t>(-1);
    std::uint32_t acc = 0;  // pending bits, right-aligned
    unsigned nacc = 0;

    // Appends `n` bits held MSB first in `words` (which has one spare word
    // after the last used one), a byte at a time.
    void append(const std::uint64_t* words, std::size_t n) {
        std::size_t o = std::min(skip, n);
        skip -= o;
        n = o + std::min(n - o, limit - written);
        written += n - o;
        for (; o + 8 <= n; o += 8) {
            const std::uint64_t w0 = words[o >> 6];
            const unsigned sh = static_cast<unsigned>(o & 63);
            const std::uint64_t v = sh ? (w0 << sh) | (words[(o >> 6) + 1] >> (64 - sh)) : w0;
            const std::uint32_t combined = (acc << 8) | static_cast<std::uint32_t>(v >> 56);
            out[bytes++] = static_cast<std::uint8_t>(combined >> nacc);
            acc = combined & ((1u << nacc) - 1u);
        }
        for (; o < n; ++o) {
            acc = (acc << 1) | static_cast<std::uint32_t>((words[o >> 6] >> (63 - (o & 63))) & 1u);
            if (++nacc == 8) {
                out[bytes++] = static_cast<std::uint8_t>(acc);
                acc = 0;
                nacc = 0;
            }
        }
    }

    // Zero-pads and writes a partial last byte.
    void finish() {
        if (nacc) out[bytes++] = static_cast<std::uint8_t>(acc << (8 - nacc));
        acc = 0;
        nacc = 0;
    }
};

// Runs two independent trellises over the same number of steps; kernels
// without a dual form run them one after the other (same arithmetic).
using acs_dual_kernel = void (*)(acs_state& a, acs_state& b, const std::uint8_t* idx, const std::uint8_t* bm_a,
                                 const std::uint8_t* bm_b, std::size_t steps, std::uint64_t* dec_a,
                                 std::uint64_t* dec_b);

template <acs_kernel K>
void acs_twice(acs_state& a, acs_state& b, const std::uint8_t* idx, const std::uint8_t* bm_a,
               const std::uint8_t* bm_b, std::size_t steps, std::uint64_t* dec_a, std::uint64_t* dec_b) {
    K(a, idx, bm_a, steps, dec_a);
    K(b, idx, bm_b, steps, dec_b);
}

struct isa_kernels {
    isa level;
    branch_kernel branch;
    acs_kernel acs;
    acs_dual_kernel acs_dual;
    lanes_branch_kernel lanes_branch;
    lanes_acs_kernel lanes_acs;
    lanes_traceback_kernel lanes_traceback;
    lanes_transpose_kernel lanes_transpose;
};

isa_kernels kernels_for(isa level) {
    switch (level) {
#if defined(__x86_64__)
    case isa::sse41:
        return {isa::sse41,          branch_sse41,          acs_sse41,       acs_twice<acs_sse41>,
                lanes_branch_sse41,  lanes_acs_sse41,       lanes_traceback_sse41, lanes_transpose_sse41};
    case isa::avx2:
        return {isa::avx2,        branch_sse41,   acs_avx2,             acs_dual_avx2,
                lanes_branch_avx2, lanes_acs_avx2, lanes_traceback_avx2, lanes_transpose_avx2};
    case isa::avx512:  // the lanes ACS; everything else (layouts included) is the AVX2 set
        return {isa::avx512,      branch_sse41,     acs_avx2,             acs_dual_avx2,
                lanes_branch_avx2, lanes_acs_avx512, lanes_traceback_avx2, lanes_transpose_avx2};
#endif
    default:
        return {isa::generic,          branch_generic,       acs_generic,
                acs_twice<acs_generic>, lanes_branch_generic, lanes_acs_generic,
                lanes_traceback_generic, lanes_transpose_generic};
    }
}

// One trellis window run in a byte lane of the across-lanes engine.
struct lane_job {
    std::span<const llr_t> soft;  // the whole block this window reads
    const std::int8_t* src = nullptr;  // contiguous soft pairs from the window's first step on
    std::size_t first = 0;        // block step of the window's first trellis step
    bool known_start = true;      // encoder in state 0 at the window start
    int end_state = -1;           // known state above row top - 1, or -1: the best state of
                                  // lane probe_lane after probe_row rows
    std::size_t skip = 0;         // window steps before the first output bit
    std::size_t limit = 0;        // output bits
    std::uint8_t* out = nullptr;  // byte-aligned destination (MSB first, last byte zero-padded)
    // Traceback: starts above row top - 1; rows >= cross (the window end when
    // top is past it) are the next lane's rows r - delta (see lanes_trace_plan).
    std::size_t top = 0;
    std::size_t cross = 0;
    std::size_t delta = 0;
    unsigned tail_lane = 0;
    unsigned probe_lane = 0;
    std::size_t probe_row = 0;
    // Rows before the trellis starts (at row `lead`, in state 0 when
    // known_start): a window that starts at the block start keeps its bits at
    // the top of its rows like every other lane, so no lane needs decisions
    // under the run-in. Rows and row numbers above (skip, top, probe_row,
    // delta) count these rows; `first` and `src` are the step at row lead.
    std::size_t lead = 0;
};

// For each of the 32 lanes, the first state with the smallest metric (the
// lowest state number on ties, like lane::best_state()).
void lanes_best_states(const lanes_state& st, unsigned* best) {
#if defined(__x86_64__)
    for (unsigned h = 0; h < n_lanes; h += 16) {
        auto row = [&](unsigned s) { return _mm_load_si128(reinterpret_cast<const __m128i*>(st.metric + s * n_lanes + h)); };
        __m128i m = row(0);
        for (unsigned s = 1; s < 64; ++s) m = _mm_min_epu8(m, row(s));
        __m128i b = _mm_set1_epi8(63);
        for (unsigned s = 64; s-- > 0;) {
            const __m128i eq = _mm_cmpeq_epi8(row(s), m);
            b = _mm_or_si128(_mm_and_si128(eq, _mm_set1_epi8(static_cast<char>(s))), _mm_andnot_si128(eq, b));
        }
        alignas(16) std::uint8_t tmp[16];
        _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b);
        for (unsigned l = 0; l < 16; ++l) best[h + l] = tmp[l];
    }
#else
    for (unsigned l = 0; l < n_lanes; ++l) {
        unsigned b = 0;
        for (unsigned s = 1; s < 64; ++s)
            if (st.metric[s * n_lanes + l] < st.metric[b * n_lanes + l]) b = s;
        best[l] = b;
    }
#endif
}

// Copies n bits starting at bit `from` of one lane's MSB-first 32-bit words
// (w[k * n_lanes], one spare row after the last used one) to bytes,
// zero-padding the last one.
void copy_bits(const std::uint32_t* w, std::size_t from, std::size_t n, std::uint8_t* out) {
    const unsigned sh = static_cast<unsigned>(from & 31);
    auto bits_at = [&](std::size_t pos) {  // the 32 bits from pos (a multiple of 32 past from)
        const std::size_t k = pos >> 5;
        std::uint32_t v = w[k * n_lanes] << sh;
        if (sh) v |= w[(k + 1) * n_lanes] >> (32 - sh);
        return v;
    };
    std::size_t o = 0;
    // 64 bits per store while whole: words k .. k + 2 hold them (k + 2 only when shifted, and
    // then it holds a bit below from + n).
    for (; o + 64 <= n; o += 64) {
        const std::size_t k = (from + o) >> 5;
        std::uint64_t v = (std::uint64_t{w[k * n_lanes]} << 32) | w[(k + 1) * n_lanes];
        if (sh) v = (v << sh) | (w[(k + 2) * n_lanes] >> (32 - sh));
        if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap64(v);
        std::memcpy(out + o / 8, &v, 8);  // MSB first
    }
    for (; o + 32 <= n; o += 32) {
        const std::uint32_t v = bits_at(from + o);
        const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                                   static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
        std::memcpy(out + o / 8, b, 4);
    }
    if (o < n) {
        std::uint32_t v = bits_at(from + o);
        if (n - o < 32) v &= ~0u << (32 - (n - o));
        for (; o < n; o += 8, v <<= 8) out[o / 8] = static_cast<std::uint8_t>(v >> 24);
    }
}

// Runs up to 32 trellis windows of equal length side by side, one per byte
// lane, and traces each back. Buffers grow to the longest window seen and
// are reused, so repeated calls of the same shape allocate nothing.
class lanes_engine {
public:
    explicit lanes_engine(isa_kernels k)
        : k_(k), pairs_(2 * n_lanes * lanes_chunk), bm_(4 * n_lanes * lanes_chunk) {}

    // Sizes the buffers for windows of up to `steps` trellis steps.
    void reserve(std::size_t steps) {
        if (dec_.size() < steps * dec_row_bytes) dec_.resize(steps * dec_row_bytes);
        const std::size_t wpl = (steps + 31) / 32 + 1;
        if (words_.size() < wpl * n_lanes) words_.resize(wpl * n_lanes);
    }

    // Runs the jobs (each reading `steps` contiguous pairs from its src) and traces them back.
    void run(std::span<const lane_job> jobs, std::size_t steps, const std::uint8_t* idx) {
        const std::size_t nj = jobs.size();
        reserve(steps);
        const std::int8_t* src[n_lanes];
        alignas(32) std::uint8_t known_row[n_lanes];  // metric of states != 0 at the start
        std::size_t staged = 0;
        for (std::size_t l = 0; l < n_lanes; ++l) {
            src[l] = l < nj ? jobs[l].src : src[0];  // idle lanes repeat lane 0's input, never traced back
            if (l < nj && jobs[l].lead > 0) {
                // Zero pairs under the lead, then the window's own pairs.
                const std::size_t lead = std::min(jobs[l].lead, steps);
                if (stage_.size() < 2 * steps * (staged + 1)) stage_.resize(2 * steps * (staged + 1));
                std::int8_t* st = stage_.data() + 2 * steps * staged++;
                std::memset(st, 0, 2 * lead);
                std::memcpy(st + 2 * lead, jobs[l].src, 2 * (steps - lead));
                src[l] = st;
            }
            known_row[l] = static_cast<std::uint8_t>(l < nj && jobs[l].known_start && jobs[l].lead == 0 ? 255 : 0);
            st_.pending_min[l] = 0;
        }
        std::memset(st_.metric, 0, n_lanes);
        for (unsigned s = 1; s < 64; ++s) std::memcpy(st_.metric + s * n_lanes, known_row, n_lanes);
        st_.step = 0;
        // Rows after which some lane's best state is needed or a lane's trellis starts, ascending.
        std::size_t probes[2 * n_lanes];
        std::size_t np = 0;
        auto add_row = [&](std::size_t p) {
            if (std::find(probes, probes + np, p) == probes + np) probes[np++] = p;
        };
        for (std::size_t l = 0; l < nj; ++l) {
            if (jobs[l].end_state < 0) add_row(jobs[l].probe_row);
            if (jobs[l].lead > 0 && jobs[l].lead < steps) add_row(jobs[l].lead);
        }
        std::sort(probes, probes + np);
        std::size_t next = 0;
        alignas(32) lanes_trace_plan plan{};
        unsigned start[n_lanes] = {};  // each job's traceback start state
        unsigned best[n_lanes];
        auto take_probe = [&](std::size_t row) {
            bool probe = false;
            for (std::size_t l = 0; l < nj; ++l) {
                probe = probe || (jobs[l].end_state < 0 && jobs[l].probe_row == row);
                if (jobs[l].lead != row) continue;
                // The lane's trellis starts here (same metrics as a lane starting at row 0).
                for (unsigned s = 0; s < 64; ++s)
                    st_.metric[s * n_lanes + l] = static_cast<std::uint8_t>(s > 0 && jobs[l].known_start ? 255 : 0);
                st_.pending_min[l] = 0;
            }
            if (!probe) return;
            lanes_best_states(st_, best);
            for (std::size_t l = 0; l < nj; ++l)
                if (jobs[l].end_state < 0 && jobs[l].probe_row == row) start[l] = best[jobs[l].probe_lane];
        };
        // The lowest row the traceback reads (see below): the ACS keeps no
        // decisions under it (the run-in rows of windows that start unknown).
        std::size_t dec_from = static_cast<std::size_t>(-1);
        for (std::size_t l = 0; l < nj; ++l) {
            dec_from = std::min(dec_from, jobs[l].skip);
            if (jobs[l].top > jobs[l].cross) dec_from = std::min(dec_from, jobs[l].cross - jobs[l].delta);
        }
        for (std::size_t c = 0; c < steps;) {
            const std::size_t k = std::min(lanes_chunk, steps - c);
            k_.lanes_transpose(src, c, k, pairs_.data());
            k_.lanes_branch(pairs_.data(), k, bm_.data());
            // The ACS stops at every probe row inside the chunk and where decisions start.
            for (std::size_t done = 0; done < k;) {
                const std::size_t r = c + done;
                std::size_t m = k - done;
                if (next < np) m = std::min(m, probes[next] - r);
                if (r < dec_from) m = std::min(m, dec_from - r);
                k_.lanes_acs(st_, idx, bm_.data() + 4 * n_lanes * done, m,
                             r < dec_from ? nullptr : dec_.data() + dec_row_bytes * r);
                done += m;
                if (next < np && probes[next] == c + done) take_probe(probes[next++]);
            }
            c += k;
        }
        // A job whose traceback starts past its own window (top > cross) runs
        // that tail in the tail pass, in the byte lane of the next segment
        // (rows shifted by delta); its own pass then starts at the window end
        // from the state the tail reached. Every lane's own pass runs in one
        // loop down to the lowest first output bit.
        std::size_t bottom = static_cast<std::size_t>(-1);
        for (std::size_t l = 0; l < n_lanes; ++l) plan.own_src[l] = n_lanes;
        for (std::size_t l = 0; l < nj; ++l) {
            const lane_job& j = jobs[l];
            const unsigned s0 = j.end_state >= 0 ? static_cast<unsigned>(j.end_state) : start[l];
            bottom = std::min(bottom, j.skip);
            plan.own_top[l] = static_cast<std::uint32_t>(std::min(j.top, j.cross));
            if (j.top > j.cross) {
                const unsigned t = j.tail_lane;
                plan.tail_state[t] = s0;
                plan.tail_hi[t] = static_cast<std::uint32_t>(j.top - j.delta);
                plan.tail_lo[t] = static_cast<std::uint32_t>(j.cross - j.delta);
                plan.own_src[l] = t;
            } else {
                plan.own_state[l] = s0;
            }
        }
        plan.bottom = static_cast<std::uint32_t>(bottom);
        std::size_t top = 0;
        for (std::size_t l = 0; l < nj; ++l) top = std::max<std::size_t>(top, plan.own_top[l]);
        const std::size_t wpl = (top + 31) / 32 + 1;  // word rows, one spare
        std::uint32_t* words = words_.data();
        std::fill(words + n_lanes * (wpl - 1), words + n_lanes * wpl, 0u);  // spare row for copy_bits
        k_.lanes_traceback(dec_.data(), plan, words);
        for (std::size_t l = 0; l < nj; ++l) copy_bits(words + l, jobs[l].skip, jobs[l].limit, jobs[l].out);
    }

private:
    static constexpr std::size_t lanes_chunk = 64;
    isa_kernels k_;
    lanes_state st_;
    std::vector<std::int8_t> pairs_;    // [chunk step][symbol][lane]
    std::vector<std::uint8_t> bm_;      // [chunk step][4][lane]
    std::vector<std::uint8_t> dec_;     // [step][group][lane] decision bits (see viterbi_lanes.hpp)
    std::vector<std::uint32_t> words_;  // [step / 32][lane] traced-back bits, MSB first
    std::vector<std::int8_t> stage_;    // pairs of lanes with a lead, zeros under it
};

// One trellis being decoded: path metrics, buffered decisions and where its bits go.
struct lane {
    acs_state st;
    std::vector<std::uint64_t> dec;    // decisions of the steps not yet traced back
    std::size_t count = 0;
    std::vector<std::uint64_t> words;  // traceback output, MSB first
    std::vector<std::int8_t> pairs;    // depunctured soft pairs of the current chunk
    std::vector<std::uint8_t> bm4;     // branch metrics of the current chunk
    bit_sink sink;

    lane(std::size_t capacity)
        : dec(capacity), words(capacity / 64 + 2), pairs(2 * chunk_steps), bm4(4 * chunk_steps) {}

    void start(bool known_zero_state) {
        std::memset(st.metric, known_zero_state ? 255 : 0, 64);
        st.metric[0] = 0;
        st.pending_min = 0;
        st.step = 0;
        count = 0;
    }
    unsigned best_state() const {
        return static_cast<unsigned>(std::min_element(st.metric, st.metric + 64) - st.metric);
    }
};

// Decision-word bit of state s: ((s & 1) << 5) | (s >> 1).
inline unsigned decision_bit(unsigned s) { return ((s & 1u) << 5) | (s >> 1); }

// One backward traceback step on q = decision_bit(state): records the state's
// newest input bit (q >> 5) and moves to the predecessor
// (s >> 1) | (d << 5), whose q is ((q & 1) << 5) | ((q >> 1) & 15) | (d << 4).
inline unsigned trace_step(const lane& l, std::uint64_t& word, std::uint64_t* words, std::size_t t, unsigned q) {
    word |= static_cast<std::uint64_t>(q >> 5) << (63 - (t & 63));
    if ((t & 63) == 0) {
        words[t >> 6] = word;
        word = 0;
    }
    const unsigned d = static_cast<unsigned>((l.dec[t] >> q) & 1u);
    return ((q & 1u) << 5) | ((q >> 1) & 15u) | (d << 4);
}

// Traces lane a (and b, when given) back from the given end states, emits all
// but the newest `keep` steps into their sinks and keeps those decisions. Two
// lanes are traced in one loop: the traceback is a dependency chain, and two
// independent chains run side by side on an out-of-order core.
void traceback(lane& a, unsigned sa, std::size_t keep_a, lane* b, unsigned sb, std::size_t keep_b) {
    std::uint64_t wa = 0, wb = 0;
    sa = decision_bit(sa);
    sb = decision_bit(sb);
    std::size_t ta = a.count, tb = b ? b->count : 0;
    while (ta && tb) {
        --ta;
        --tb;
        sa = trace_step(a, wa, a.words.data(), ta, sa);
        sb = trace_step(*b, wb, b->words.data(), tb, sb);
    }
    while (ta) {
        --ta;
        sa = trace_step(a, wa, a.words.data(), ta, sa);
    }
    while (tb) {
        --tb;
        sb = trace_step(*b, wb, b->words.data(), tb, sb);
    }
    auto emit = [](lane& l, std::size_t keep) {
        const std::size_t n = l.count - keep;
        l.words[(n + 63) >> 6] = 0;
        if (n & 63) l.words[n >> 6] &= ~0ull << (64 - (n & 63));
        l.sink.append(l.words.data(), n);
        std::memmove(l.dec.data(), l.dec.data() + n, keep * sizeof(std::uint64_t));
        l.count = keep;
    };
    emit(a, keep_a);
    if (b) emit(*b, keep_b);
}

// A block decoded by one lane: which block steps (cyclic), how it starts and
// ends, and which of its bits are output where.
struct block_job {
    std::size_t first = 0;   // first block step
    std::size_t steps = 0;   // trellis steps to run
    bool known_start = true; // encoder starts in state 0
    int end_state = -1;      // known end state, or -1 for the best one
    std::size_t skip = 0;    // leading decoded bits to drop
    std::size_t limit = 0;   // bits to output after that
    std::size_t out_byte = 0;
};

class viterbi_decoder_impl final : public viterbi_decoder {
public:
    viterbi_decoder_impl(const config& cfg, isa_kernels k)
        : cfg_(cfg), k_(k), pattern_(pattern_of(cfg.code)), depth_(cfg.traceback),
          acq_(acquisition_steps(cfg.code.rate)), window_(cfg.stream_window),
          capacity_(cfg.traceback + chunk_steps), lanes_{lane(capacity_), lane(capacity_)},
          engine_(k) {
        if (cfg.mode == viterbi_mode::streaming) {
            // Everything a stream needs, allocated here: no allocation per call.
            hist_.resize(2 * stream_history());
            engine_.reserve(window_ / n_lanes + depth_ / n_lanes + 16 + acq_ + depth_);
        }
        const generators g = generators_of(cfg.code);
        for (std::uint32_t i = 0; i < 32; ++i) {
            const std::uint32_t full = 2 * i;  // old state i, input 0
            const std::uint32_t c1 = (std::popcount(full & g.first) & 1) ^ g.inv_first;
            const std::uint32_t c2 = (std::popcount(full & g.second) & 1) ^ g.inv_second;
            idx_[i] = static_cast<std::uint8_t>((c1 << 1) | c2);
        }
        reset();
    }

    void reset() override {
        lanes_[0].start(true);
        col_ = 0;
        npartial_ = 0;
        hist_base_ = 0;
        hist_n_ = 0;
        out_base_ = 0;
    }

    std::string_view isa_name() const override { return to_string(k_.level); }

    result decode_batch(std::span<const std::span<const llr_t>> blocks,
                        std::span<const std::span<std::uint8_t>> outs) override {
        if (cfg_.mode != viterbi_mode::block_terminated)
            return {0, false, "viterbi: decode_batch needs block_terminated mode"};
        if (blocks.empty() || blocks.size() > n_lanes) return {0, false, "viterbi: decode_batch takes 1..32 blocks"};
        if (outs.size() != blocks.size()) return {0, false, "viterbi: decode_batch needs one output per block"};
        const std::size_t len = blocks[0].size();
        for (const auto& b : blocks)
            if (b.size() != len) return {0, false, "viterbi: decode_batch blocks differ in length"};
        if (len == 0) return {0, false, "viterbi: empty input"};
        const std::size_t steps = conv_info_bits(cfg_.code, len);
        if (steps == static_cast<std::size_t>(-1))
            return {0, false, "viterbi: soft count is not a whole number of trellis steps for this rate"};
        if (steps <= conv_tail_bits) return {0, false, "viterbi: terminated block shorter than the tail"};
        const std::size_t n = steps - conv_tail_bits;
        for (const auto& o : outs)
            if (o.size() < (n + 7) / 8) return {0, false, "viterbi: output span too small"};
        for (std::size_t i = 0; i < blocks.size(); ++i) {
            jobs_[i] = lane_job{blocks[i], nullptr, 0, true, 0, 0, n, outs[i].data()};
            jobs_[i].top = jobs_[i].cross = steps;
        }
        run_lanes(std::span(jobs_, blocks.size()), steps);
        return {n, true, nullptr};
    }

    std::size_t max_stream_output_bytes(std::size_t soft_count) const override {
        // Each step takes at least one symbol; a call emits at most the steps
        // buffered before it (< window + depth) plus its own, in whole windows.
        return (soft_count + window_ + depth_ + 7) / 8 + 1;
    }
    std::size_t max_flush_bytes() const override { return (window_ + depth_ + 7) / 8 + 1; }

    result decode(std::span<const llr_t> soft, std::span<std::uint8_t> out) override {
        switch (cfg_.mode) {
        case viterbi_mode::streaming: return decode_stream(soft, out);
        case viterbi_mode::block_terminated: return decode_terminated(soft, out);
        case viterbi_mode::block_tailbiting: return decode_tailbiting(soft, out);
        }
        return {0, false, "unknown mode"};
    }

    result decide(std::span<std::uint8_t> out) override {
        if (cfg_.mode != viterbi_mode::streaming) return {0, false, "viterbi decide: streaming mode only"};
        return decide_stream(out);
    }

    result flush(std::span<std::uint8_t> out) override {
        if (cfg_.mode != viterbi_mode::streaming) return {};
        if (out.size() < max_flush_bytes()) return {0, false, "viterbi flush: output span too small"};
        const std::size_t hi = hist_base_ + hist_n_;
        std::size_t bits = 0;
        if (hi > out_base_) {
            // The rest, traced back from the best state at the end of the stream.
            plan_and_run(hist_base_, hi, out_base_, hi, hist_base_ == 0, -1, out.data());
            bits = hi - out_base_;
        }
        reset();
        return {bits, true, nullptr};
    }

private:
    std::size_t room(const lane& l) const { return std::min(capacity_ - l.count, chunk_steps); }

    // Soft pair of trellis step j of a block (puncturing restarts with the block).
    void block_pair(std::span<const llr_t> soft, std::size_t j, std::int8_t* pair) const {
        const std::size_t period = pattern_.columns.size();
        const std::size_t col = j % period;
        std::size_t pos = (j / period) * pattern_.symbols_per_period + pattern_.offset[col];
        const puncture_column c = pattern_.columns[col];
        pair[0] = c.first ? soft[pos++] : llr_erasure;
        pair[1] = c.second ? soft[pos] : llr_erasure;
    }

    // Soft pairs of block steps j, j+1, ... (cyclic) for the next k steps of a lane.
    const std::int8_t* block_pairs(std::span<const llr_t> soft, std::size_t steps_in_block, std::size_t& j,
                                   std::size_t k, lane& l) const {
        if (pattern_.columns.size() == 1 && j + k <= steps_in_block) {
            const std::int8_t* p = soft.data() + 2 * j;
            j += k;
            if (j == steps_in_block) j = 0;
            return p;
        }
        for (std::size_t t = 0; t < k; ++t) {
            block_pair(soft, j, l.pairs.data() + 2 * t);
            if (++j == steps_in_block) j = 0;
        }
        return l.pairs.data();
    }

    // Decodes one or two block jobs; two run in lock step through the dual kernel.
    void run_jobs(std::span<const llr_t> soft, std::size_t steps_in_block, std::span<std::uint8_t> out,
                  std::span<const block_job> jobs) {
        const std::size_t nj = jobs.size();
        std::size_t j[2] = {}, left[2] = {};
        for (std::size_t i = 0; i < nj; ++i) {
            lane& l = lanes_[i];
            l.start(jobs[i].known_start);
            l.sink = bit_sink{};
            l.sink.out = out.data() + jobs[i].out_byte;
            l.sink.skip = jobs[i].skip;
            l.sink.limit = jobs[i].limit;
            j[i] = jobs[i].first % steps_in_block;
            left[i] = jobs[i].steps;
        }
        lane& a = lanes_[0];
        lane& b = lanes_[1];
        while (nj == 2 && left[0] && left[1]) {
            const std::size_t k = std::min({room(a), room(b), left[0], left[1]});
            const std::int8_t* pa = block_pairs(soft, steps_in_block, j[0], k, a);
            const std::int8_t* pb = block_pairs(soft, steps_in_block, j[1], k, b);
            k_.branch(pa, k, a.bm4.data());
            k_.branch(pb, k, b.bm4.data());
            k_.acs_dual(a.st, b.st, idx_, a.bm4.data(), b.bm4.data(), k, a.dec.data() + a.count,
                        b.dec.data() + b.count);
            a.count += k;
            b.count += k;
            left[0] -= k;
            left[1] -= k;
            const bool fa = a.count == capacity_, fb = b.count == capacity_;
            if (fa && fb) traceback(a, a.best_state(), depth_, &b, b.best_state(), depth_);
            else if (fa) traceback(a, a.best_state(), depth_, nullptr, 0, 0);
            else if (fb) traceback(b, b.best_state(), depth_, nullptr, 0, 0);
        }
        for (std::size_t i = 0; i < nj; ++i) {
            lane& l = lanes_[i];
            while (left[i]) {
                const std::size_t k = std::min(room(l), left[i]);
                const std::int8_t* p = block_pairs(soft, steps_in_block, j[i], k, l);
                k_.branch(p, k, l.bm4.data());
                k_.acs(l.st, idx_, l.bm4.data(), k, l.dec.data() + l.count);
                l.count += k;
                left[i] -= k;
                if (l.count == capacity_) traceback(l, l.best_state(), depth_, nullptr, 0, 0);
            }
        }
        auto end_state = [&](std::size_t i) {
            return jobs[i].end_state >= 0 ? static_cast<unsigned>(jobs[i].end_state) : lanes_[i].best_state();
        };
        if (nj == 2) traceback(a, end_state(0), 0, &b, end_state(1), 0);
        else traceback(a, end_state(0), 0, nullptr, 0, 0);
        for (std::size_t i = 0; i < nj; ++i) lanes_[i].sink.finish();
        lanes_[0].start(true);
    }

    // Points every job at contiguous soft pairs of its block (punctured
    // blocks are depunctured once into depunct_) and runs the engine.
    void run_lanes(std::span<lane_job> jobs, std::size_t steps) {
        if (pattern_.columns.size() == 1) {
            for (auto& j : jobs) j.src = j.soft.data() + 2 * j.first;
        } else {
            const std::size_t block_steps = conv_info_bits(cfg_.code, jobs[0].soft.size());
            if (depunct_.size() < 2 * block_steps * jobs.size()) depunct_.resize(2 * block_steps * jobs.size());
            std::int8_t* pairs = nullptr;
            for (std::size_t i = 0; i < jobs.size(); ++i) {
                if (i == 0 || jobs[i].soft.data() != jobs[i - 1].soft.data()) {
                    pairs = depunct_.data() + 2 * block_steps * i;
                    for (std::size_t j = 0; j < block_steps; ++j) block_pair(jobs[i].soft, j, pairs + 2 * j);
                }
                jobs[i].src = pairs + 2 * jobs[i].first;
            }
        }
        engine_.run(jobs, steps, idx_);
    }

    // Long terminated blocks are cut into up to 32 segments decoded in the
    // lanes (see plan_windows); the cut depends only on the block length and
    // the traceback, never on the ISA.
    bool run_segments(std::span<const llr_t> soft, std::size_t steps, std::size_t n, std::span<std::uint8_t> out) {
        if (n < lanes_min_bits) return false;
        std::size_t count = 0;
        const std::size_t rows = plan_windows(0, steps, 0, n, true, 0, out.data(), count);
        if (count < 2) return false;
        for (std::size_t k = 0; k < count; ++k) jobs_[k].soft = soft;
        run_lanes(std::span(jobs_, count), rows);
        return true;
    }

    // Plans lane windows that decide output steps [out_lo, out_hi) from the
    // soft pairs of steps [lo, hi) (the trellis starts in state 0 at lo when
    // known_start, and ends in end_state at hi when it is >= 0). The output
    // and the hi - out_hi steps after it are cut into count <= 32 segments of
    // S steps (S a multiple of 8, >= the traceback depth D, so every segment's
    // output starts on a byte). Lane k runs R = A + S steps (A = acq_, see
    // acquisition_steps) from A before its segment (the last window is
    // shifted left to end at hi) and keeps its segment's output; a first
    // window that starts at lo may keep up to A more steps instead of a run-in.
    // Its traceback starts D steps past the kept bits (or at hi) from the best
    // state there, which lies in the next lane's window: the rows past lane
    // k's own window are read from lane k + 1, so the traceback tail costs no
    // ACS. Returns R and sets count; when the windows would not fit, one lane
    // runs all of [lo, hi) (count = 1, R = hi - lo).
    std::size_t plan_windows(std::size_t lo, std::size_t hi, std::size_t out_lo, std::size_t out_hi, bool known_start,
                             int end_state, std::uint8_t* out, std::size_t& count) {
        const std::size_t total = out_hi - out_lo;
        const std::size_t span = hi - out_lo;
        // Segments of S (rounded down to 8) when a first window starting at
        // lo, which needs no run-in, can keep the `extra` steps that leaves
        // over; else S rounded up. (More extra would lengthen lane 0's
        // traceback, which sets every lane's traceback loop.)
        const std::size_t extra_max = out_lo < lo + acq_ ? (lo + acq_ - out_lo) & ~std::size_t{7} : 0;
        std::size_t seg = std::max(((span + n_lanes - 1) / n_lanes) & ~std::size_t{7}, (depth_ + 7) & ~std::size_t{7});
        seg = std::max(seg, std::size_t{8});
        std::size_t extra = span > n_lanes * seg ? (span - n_lanes * seg + 7) & ~std::size_t{7} : 0;
        if (extra > extra_max) {
            seg += 8;
            extra = 0;
        }
        const std::size_t rows = seg + acq_;
        if (rows >= hi - lo || span <= seg + extra) {
            lane_job& j = jobs_[0];
            j = lane_job{{}, nullptr, lo, known_start, end_state, out_lo - lo, total, out};
            j.top = j.cross = j.probe_row = hi - lo;
            j.probe_lane = 0;
            count = 1;
            return hi - lo;
        }
        count = 1 + (span - seg - extra + seg - 1) / seg;
        // Where each lane's kept bits start (starts[count] = out_hi). The last
        // window ends at hi; its bits start A into it (rounded up to a byte),
        // so the lane before it finds its traceback tail at the same rows of
        // its neighbour as every other lane (A .. A + D): the tail pass is D
        // rows. (Segments of S from the start instead leave the last lane a
        // few bits far into its window and that tail pass up to S + D rows:
        // +160 rows per 8192-bit stream window, ~2.5 % of it.) The bits before
        // it are cut into count - 1 segments of whole bytes, the longer ones
        // first, none over S (the first over S by at most `extra`). Where
        // that does not fit, segments of S from the start.
        std::size_t starts[n_lanes + 1];
        starts[count] = out_hi;
        const std::size_t n = count - 1;
        const std::size_t last = out_lo + (((std::max(hi - rows + acq_, out_lo) - out_lo) + 7) & ~std::size_t{7});
        const std::size_t len = last - out_lo;
        const std::size_t base = (len / n) & ~std::size_t{7};
        const std::size_t longer = (len - n * base) / 8;  // segments of base + 8
        if (last <= out_hi && base >= 8 && base <= seg &&
            (longer == 0 || base + 8 <= seg || (longer == 1 && base + 8 <= seg + extra))) {
            starts[0] = out_lo;
            for (std::size_t k = 0; k < n; ++k) starts[k + 1] = starts[k] + base + (k < longer ? 8 : 0);
        } else {
            for (std::size_t k = 0; k < count; ++k) starts[k] = k == 0 ? out_lo : out_lo + extra + k * seg;
        }
        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t start = starts[k];
            const std::size_t first = std::min(start > lo + acq_ ? start - acq_ : lo, hi - rows);
            const std::size_t kept_end = std::min(starts[k + 1], out_hi);
            jobs_[k] = lane_job{{},
                                nullptr,
                                first,
                                known_start && first == lo,
                                -1,
                                start - first,
                                start < out_hi ? kept_end - start : 0,
                                out + (std::min(start, out_hi) - out_lo) / 8};
        }
        // A first window starting in a known state keeps its bits in its top
        // rows (lead = the rows under them), as the others do after their
        // run-in: the decisions under every lane's first kept bit are then
        // never read, and the ACS skips them (for a terminated 8192-bit block
        // 40 of 304 rows; the own traceback pass is as many rows shorter).
        // Lane 0's traceback tail then comes from lane 1 like every lane's.
        if (jobs_[0].known_start) jobs_[0].lead = rows - (jobs_[0].skip + jobs_[0].limit);
        jobs_[0].skip += jobs_[0].lead;
        for (std::size_t k = 0; k < count; ++k) {
            lane_job& j = jobs_[k];
            // Row r of lane k holds step first - lead + r.
            const std::size_t kept_end = j.first + (j.skip - j.lead) + j.limit;
            const std::size_t wend = j.first + (rows - j.lead);  // step after the lane's last row
            const std::size_t e = k + 1 < count ? std::min(kept_end + depth_, hi) : wend;
            j.top = e - j.first + j.lead;
            j.cross = rows;
            if (e > wend) {
                j.tail_lane = static_cast<unsigned>(k + 1);
                j.delta = jobs_[k + 1].first - jobs_[k + 1].lead + j.lead - j.first;
            }
            if (e == hi && end_state >= 0) {
                j.end_state = end_state;
            } else {
                const std::size_t pl = e > wend ? k + 1 : k;
                j.probe_lane = static_cast<unsigned>(pl);
                j.probe_row = e - jobs_[pl].first + jobs_[pl].lead;
            }
        }
        return rows;
    }

    // Blocks long enough are split in two halves decoded side by side: the
    // first half is traced back from the best state `depth` steps past its end,
    // the second starts `depth` steps early from an unknown state. Both margins
    // are the traceback depth, so the split costs no more than streaming does.
    std::size_t split_point(std::size_t n) const {
        if (n < 4 * depth_ + 512) return 0;
        return (n / 2) & ~static_cast<std::size_t>(7);  // byte boundary for the second sink
    }

    result decode_terminated(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (soft.empty()) return {0, false, "viterbi: empty input"};
        const std::size_t steps = conv_info_bits(cfg_.code, soft.size());
        if (steps == static_cast<std::size_t>(-1))
            return {0, false, "viterbi: soft count is not a whole number of trellis steps for this rate"};
        if (steps <= conv_tail_bits) return {0, false, "viterbi: terminated block shorter than the tail"};
        const std::size_t n = steps - conv_tail_bits;
        if (out.size() < (n + 7) / 8) return {0, false, "viterbi: output span too small"};
        if (run_segments(soft, steps, n, out)) return {n, true, nullptr};
        const std::size_t h = split_point(n);
        if (h == 0) {
            const block_job job{0, steps, true, 0, 0, n, 0};
            run_jobs(soft, steps, out, std::span(&job, 1));
        } else {
            const block_job jobs[2] = {{0, h + depth_, true, -1, 0, h, 0},
                                       {h - depth_, steps - h + depth_, false, 0, depth_, n - h, h / 8}};
            run_jobs(soft, steps, out, jobs);
        }
        return {n, true, nullptr};
    }

    result decode_tailbiting(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (soft.empty()) return {0, false, "viterbi: empty input"};
        const std::size_t n = conv_info_bits(cfg_.code, soft.size());
        if (n == static_cast<std::size_t>(-1) || n == 0)
            return {0, false, "viterbi: soft count is not a whole number of trellis steps for this rate"};
        if (out.size() < (n + 7) / 8) return {0, false, "viterbi: output span too small"};
        // Wrap-around decoding: start unknown, run W = depth steps before and
        // after the block (cyclically) and keep the middle n decisions.
        const std::size_t w = depth_;
        const std::size_t start = (n - w % n) % n;
        const std::size_t h = split_point(n);
        if (h == 0) {
            const block_job job{start, n + 2 * w, false, -1, w, n, 0};
            run_jobs(soft, n, out, std::span(&job, 1));
        } else {
            const block_job jobs[2] = {{start, w + h + w, false, -1, w, h, 0},
                                       {h - w, n - h + 2 * w, false, -1, w, n - h, h / 8}};
            run_jobs(soft, n, out, jobs);
        }
        return {n, true, nullptr};
    }

    result decode_stream(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (out.size() < max_stream_output_bytes(soft.size()))
            return {0, false, "viterbi: output span too small (see max_stream_output_bytes)"};
        std::size_t pos = 0, bytes = 0;
        const std::size_t period = pattern_.columns.size();
        while (pos < soft.size()) {
            const std::size_t cap = out_base_ + window_ + depth_ - hist_base_;  // pairs for a window
            if (period == 1 && npartial_ == 0) {
                const std::size_t k = std::min(cap - hist_n_, (soft.size() - pos) / 2);
                std::memcpy(hist_.data() + 2 * hist_n_, soft.data() + pos, 2 * k);
                hist_n_ += k;
                pos += 2 * k;
            }
            // Punctured or split pair: assemble pairs symbol by symbol.
            while (hist_n_ < cap && pos < soft.size()) {
                const puncture_column c = pattern_.columns[col_];
                const unsigned need = (c.first ? 1u : 0u) + (c.second ? 1u : 0u);
                while (npartial_ < need && pos < soft.size()) partial_[npartial_++] = soft[pos++];
                if (npartial_ < need) break;
                std::int8_t* pr = hist_.data() + 2 * hist_n_;
                pr[0] = c.first ? partial_[0] : llr_erasure;
                pr[1] = c.second ? partial_[c.first ? 1 : 0] : llr_erasure;
                npartial_ = 0;
                if (++col_ == period) col_ = 0;
                ++hist_n_;
            }
            if (hist_base_ + hist_n_ == out_base_ + window_ + depth_) {
                // A full window: window_ bits decided as 32 segments, each
                // with run-in before it and `depth` steps of traceback after it.
                plan_and_run(hist_base_, hist_base_ + hist_n_, out_base_, out_base_ + window_, hist_base_ == 0, -1,
                             out.data() + bytes);
                bytes += window_ / 8;
                advance(window_);
            }
        }
        return {bytes * 8, true, nullptr};
    }

    result decide_stream(std::span<std::uint8_t> out) {
        if (out.size() < max_flush_bytes())
            return {0, false, "viterbi decide: output span too small (see max_flush_bytes)"};
        const std::size_t hi = hist_base_ + hist_n_;
        // Every step with `depth` steps after it, in whole bytes. Fewer than a
        // window (a window is decided as soon as it is complete), so the
        // output fits max_flush_bytes() and the lanes engine, sized for a
        // window, needs no allocation.
        if (hi < out_base_ + depth_ + 8) return {0, true, nullptr};
        const std::size_t n = (hi - depth_ - out_base_) & ~std::size_t{7};
        plan_and_run(hist_base_, hi, out_base_, out_base_ + n, hist_base_ == 0, -1, out.data());
        advance(n);
        return {n, true, nullptr};
    }

    // The output is decided up to out_base_ + n: the history keeps the
    // run-in before it (or everything, back to the stream start while that
    // is nearer: the known start state is worth more than a run-in).
    void advance(std::size_t n) {
        out_base_ += n;
        if (out_base_ < hist_base_ + acq_) return;
        const std::size_t keep_from = out_base_ - acq_;
        const std::size_t drop = keep_from - hist_base_;
        std::memmove(hist_.data(), hist_.data() + 2 * drop, 2 * (hist_n_ - drop));
        hist_n_ -= drop;
        hist_base_ = keep_from;
    }

    // Soft pairs the stream keeps: run-in, one window, traceback depth.
    std::size_t stream_history() const { return acq_ + window_ + depth_; }

    // Decides output steps [out_lo, out_hi) from the pairs of steps [lo, hi)
    // (stream history) in the lanes, windows as plan_windows() cuts them.
    void plan_and_run(std::size_t lo, std::size_t hi, std::size_t out_lo, std::size_t out_hi, bool known_start,
                      int end_state, std::uint8_t* out) {
        std::size_t count = 0;
        const std::size_t rows = plan_windows(lo, hi, out_lo, out_hi, known_start, end_state, out, count);
        for (std::size_t k = 0; k < count; ++k) jobs_[k].src = hist_.data() + 2 * (jobs_[k].first - hist_base_);
        engine_.run(std::span(jobs_, count), rows, idx_);
    }

    config cfg_;
    isa_kernels k_;
    puncture_pattern pattern_;
    std::size_t depth_;
    std::size_t acq_;  // segment run-in A
    std::size_t window_;  // streaming: bits decided at a time (up to 32 segments in the lanes)
    std::size_t capacity_;
    std::uint8_t idx_[32];
    lane lanes_[2];
    lanes_engine engine_;
    lane_job jobs_[n_lanes];
    // Streaming carry-over: puncturing column, a split step, bits of an unfinished byte.
    std::size_t col_ = 0;
    unsigned npartial_ = 0;
    std::int8_t partial_[2] = {};
    // Streaming history: soft pairs of steps [hist_base_, hist_base_ + hist_n_);
    // output is decided up to step out_base_.
    std::vector<std::int8_t> hist_;
    std::vector<std::int8_t> depunct_;  // depunctured pairs of punctured blocks
    std::size_t hist_base_ = 0;
    std::size_t hist_n_ = 0;
    std::size_t out_base_ = 0;
};

}  // namespace
}  // namespace conv_detail

std::unique_ptr<viterbi_decoder> create_viterbi_decoder(const viterbi_decoder::config& cfg) {
    const auto parsed = parse_isa(cfg.isa);
    if (!parsed)
        throw std::invalid_argument("viterbi_decoder: isa '" + cfg.isa +
                                    "' unknown (allowed: auto, generic, sse41, avx2, avx512)");
    // "auto" is best_isa(), already a level this CPU runs (QLINK_ISA caps it).
    const isa level = *parsed;
    if (cfg.isa != "auto" && !isa_supported(level))
        throw std::invalid_argument("viterbi_decoder: isa '" + cfg.isa + "' not supported by this CPU");
    if (cfg.traceback < 35 || cfg.traceback > 4096)
        throw std::invalid_argument("viterbi_decoder: traceback must be in [35, 4096]");
    if (cfg.stream_window < viterbi_decoder::min_stream_window || cfg.stream_window > viterbi_decoder::max_stream_window ||
        cfg.stream_window % 256 != 0)
        throw std::invalid_argument("viterbi_decoder: stream_window must be a multiple of 256 in [8192, 262144]");
    // Off x86 kernels_for() has only the generic set, whatever the level.
    return std::make_unique<conv_detail::viterbi_decoder_impl>(cfg, conv_detail::kernels_for(level));
}

}  // namespace qlink::modem
