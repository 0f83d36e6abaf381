// Viterbi decoder engine (depuncturing, decision buffer, traceback, modes), the generic kernels and the factory.
#include "conv_tables.hpp"
#include "viterbi_kernels.hpp"

#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"

#include <algorithm>
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
            d |= static_cast<std::uint64_t>(x1 < x0) << (2 * i);
            d |= static_cast<std::uint64_t>(y1 < y0) << (2 * i + 1);
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

    void put(unsigned bit) {
        if (skip) {
            --skip;
            return;
        }
        if (written == limit) return;
        ++written;
        acc = (acc << 1) | bit;
        if (++nacc == 8) {
            out[bytes++] = static_cast<std::uint8_t>(acc);
            acc = 0;
            nacc = 0;
        }
    }
    // Zero-pads and writes a partial last byte.
    void finish() {
        if (nacc) out[bytes++] = static_cast<std::uint8_t>(acc << (8 - nacc));
        acc = 0;
        nacc = 0;
    }
};

struct isa_kernels {
    isa level;
    branch_kernel branch;
    acs_kernel acs;
};

isa_kernels kernels_for(isa level) {
    switch (level) {
#if defined(__x86_64__)
    case isa::sse41: return {isa::sse41, branch_sse41, acs_sse41};
    case isa::avx2: return {isa::avx2, branch_sse41, acs_avx2};
#endif
    default: return {isa::generic, branch_generic, acs_generic};
    }
}

class viterbi_decoder_impl final : public viterbi_decoder {
public:
    viterbi_decoder_impl(const config& cfg, isa_kernels k)
        : cfg_(cfg), k_(k), pattern_(pattern_of(cfg.code.rate)), depth_(cfg.traceback),
          capacity_(cfg.traceback + chunk_steps), decisions_(capacity_), pairs_(2 * chunk_steps),
          bm4_(4 * chunk_steps), tb_bits_(capacity_) {
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
        start(true);
        col_ = 0;
        npartial_ = 0;
        sink_acc_ = 0;
        sink_nacc_ = 0;
    }

    std::string_view isa_name() const override { return to_string(k_.level); }

    std::size_t max_stream_output_bytes(std::size_t soft_count) const override {
        // Each step takes at least one symbol; a traceback emits at most the
        // steps held beyond the depth; 7 bits may be pending from before.
        return (soft_count + chunk_steps + 7) / 8 + 1;
    }
    std::size_t max_flush_bytes() const override { return (capacity_ + 7) / 8 + 1; }

    result decode(std::span<const llr_t> soft, std::span<std::uint8_t> out) override {
        switch (cfg_.mode) {
        case viterbi_mode::streaming: return decode_stream(soft, out);
        case viterbi_mode::block_terminated: return decode_terminated(soft, out);
        case viterbi_mode::block_tailbiting: return decode_tailbiting(soft, out);
        }
        return {0, false, "unknown mode"};
    }

    result flush(std::span<std::uint8_t> out) override {
        if (cfg_.mode != viterbi_mode::streaming) return {};
        if (out.size() < max_flush_bytes()) return {0, false, "viterbi flush: output span too small"};
        bit_sink sink = stream_sink(out);
        traceback_emit(best_state(), 0, sink);
        const std::size_t bits = sink.bytes * 8 + sink.nacc;
        sink.finish();
        reset();
        return {bits, true, nullptr};
    }

private:
    bit_sink stream_sink(std::span<std::uint8_t> out) {
        bit_sink s;
        s.out = out.data();
        s.acc = sink_acc_;
        s.nacc = sink_nacc_;
        return s;
    }

    void start(bool known_zero_state) {
        std::memset(st_.metric, known_zero_state ? 255 : 0, 64);
        st_.metric[0] = 0;
        st_.pending_min = 0;
        st_.step = 0;
        count_ = 0;
    }

    unsigned best_state() const {
        return static_cast<unsigned>(std::min_element(st_.metric, st_.metric + 64) - st_.metric);
    }

    // Traces back from `state` after the newest of `steps` buffered decisions and
    // emits the oldest steps - keep bits, keeping the newest `keep` decisions.
    void traceback_emit(unsigned state, std::size_t keep, bit_sink& sink) {
        const std::size_t emit = count_ - keep;
        unsigned s = state;
        for (std::size_t t = count_; t-- > emit;) {
            const unsigned d = static_cast<unsigned>((decisions_[t] >> s) & 1u);
            s = (s >> 1) | (d << 5);
        }
        for (std::size_t t = emit; t-- > 0;) {
            tb_bits_[t] = static_cast<std::uint8_t>(s & 1u);
            const unsigned d = static_cast<unsigned>((decisions_[t] >> s) & 1u);
            s = (s >> 1) | (d << 5);
        }
        for (std::size_t t = 0; t < emit; ++t) sink.put(tb_bits_[t]);
        std::memmove(decisions_.data(), decisions_.data() + emit, keep * sizeof(std::uint64_t));
        count_ = keep;
    }

    // Runs the trellis over `steps` soft pairs already in pairs_, emitting when the buffer fills.
    void run_pairs(const std::int8_t* pairs, std::size_t steps, bit_sink& sink) {
        k_.branch(pairs, steps, bm4_.data());
        k_.acs(st_, idx_, bm4_.data(), steps, decisions_.data() + count_);
        count_ += steps;
        if (count_ == capacity_) traceback_emit(best_state(), depth_, sink);
    }

    std::size_t room() const { return std::min(capacity_ - count_, chunk_steps); }

    // Soft pair of trellis step j of a block (puncturing restarts with the block).
    void block_pair(std::span<const llr_t> soft, std::size_t j, std::int8_t* pair) const {
        const std::size_t period = pattern_.columns.size();
        const std::size_t col = j % period;
        std::size_t pos = (j / period) * pattern_.symbols_per_period + pattern_.offset[col];
        const puncture_column c = pattern_.columns[col];
        pair[0] = c.first ? soft[pos++] : llr_erasure;
        pair[1] = c.second ? soft[pos] : llr_erasure;
    }

    // Feeds block steps first..first+n (taken modulo `steps_in_block`).
    void feed_block(std::span<const llr_t> soft, std::size_t steps_in_block, std::size_t first, std::size_t n,
                    bit_sink& sink) {
        std::size_t j = first % steps_in_block;
        while (n) {
            const std::size_t k = std::min(room(), n);
            if (pattern_.columns.size() == 1 && j + k <= steps_in_block) {
                run_pairs(soft.data() + 2 * j, k, sink);
                j += k;
            } else {
                for (std::size_t t = 0; t < k; ++t) {
                    block_pair(soft, j, pairs_.data() + 2 * t);
                    if (++j == steps_in_block) j = 0;
                }
                run_pairs(pairs_.data(), k, sink);
            }
            if (j == steps_in_block) j = 0;
            n -= k;
        }
    }

    result decode_terminated(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (soft.empty()) return {0, false, "viterbi: empty input"};
        const std::size_t steps = conv_info_bits(cfg_.code, soft.size());
        if (steps == static_cast<std::size_t>(-1))
            return {0, false, "viterbi: soft count is not a whole number of trellis steps for this rate"};
        if (steps <= conv_tail_bits) return {0, false, "viterbi: terminated block shorter than the tail"};
        const std::size_t n = steps - conv_tail_bits;
        if (out.size() < (n + 7) / 8) return {0, false, "viterbi: output span too small"};
        start(true);
        bit_sink sink;
        sink.out = out.data();
        sink.limit = n;
        feed_block(soft, steps, 0, steps, sink);
        traceback_emit(0, 0, sink);  // the tail ends in state 0
        sink.finish();
        start(true);
        return {n, true, nullptr};
    }

    result decode_tailbiting(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (soft.empty()) return {0, false, "viterbi: empty input"};
        const std::size_t n = conv_info_bits(cfg_.code, soft.size());
        if (n == static_cast<std::size_t>(-1) || n == 0)
            return {0, false, "viterbi: soft count is not a whole number of trellis steps for this rate"};
        if (out.size() < (n + 7) / 8) return {0, false, "viterbi: output span too small"};
        // Wrap-around decoding: start unknown, run W steps before and after the
        // block (cyclically) and keep the middle n decisions.
        const std::size_t wrap = depth_;
        start(false);
        bit_sink sink;
        sink.out = out.data();
        sink.skip = wrap;
        sink.limit = n;
        feed_block(soft, n, (n - wrap % n) % n, n + 2 * wrap, sink);
        traceback_emit(best_state(), 0, sink);
        sink.finish();
        start(true);
        return {n, true, nullptr};
    }

    result decode_stream(std::span<const llr_t> soft, std::span<std::uint8_t> out) {
        if (out.size() < max_stream_output_bytes(soft.size()))
            return {0, false, "viterbi: output span too small (see max_stream_output_bytes)"};
        bit_sink sink = stream_sink(out);
        std::size_t pos = 0;
        const std::size_t period = pattern_.columns.size();
        while (pos < soft.size()) {
            std::size_t k = 0;
            const std::size_t want = room();
            if (period == 1 && npartial_ == 0) {
                k = std::min(want, (soft.size() - pos) / 2);
                if (k) {
                    run_pairs(soft.data() + pos, k, sink);
                    pos += 2 * k;
                    continue;
                }
            }
            // Punctured or split pair: assemble pairs symbol by symbol.
            while (k < want && pos < soft.size()) {
                const puncture_column c = pattern_.columns[col_];
                const unsigned need = (c.first ? 1u : 0u) + (c.second ? 1u : 0u);
                while (npartial_ < need && pos < soft.size()) partial_[npartial_++] = soft[pos++];
                if (npartial_ < need) break;
                std::int8_t* pr = pairs_.data() + 2 * k;
                pr[0] = c.first ? partial_[0] : llr_erasure;
                pr[1] = c.second ? partial_[c.first ? 1 : 0] : llr_erasure;
                npartial_ = 0;
                if (++col_ == period) col_ = 0;
                ++k;
            }
            if (k) run_pairs(pairs_.data(), k, sink);
        }
        sink_acc_ = sink.acc;
        sink_nacc_ = sink.nacc;
        return {sink.bytes * 8, true, nullptr};
    }

    config cfg_;
    isa_kernels k_;
    puncture_pattern pattern_;
    std::size_t depth_;
    std::size_t capacity_;
    std::uint8_t idx_[32];
    acs_state st_;
    std::size_t count_ = 0;
    std::vector<std::uint64_t> decisions_;
    std::vector<std::int8_t> pairs_;
    std::vector<std::uint8_t> bm4_;
    std::vector<std::uint8_t> tb_bits_;
    // Streaming carry-over: puncturing column, a split step, bits of an unfinished byte.
    std::size_t col_ = 0;
    unsigned npartial_ = 0;
    std::int8_t partial_[2] = {};
    std::uint32_t sink_acc_ = 0;
    unsigned sink_nacc_ = 0;
};

}  // namespace
}  // namespace conv_detail

std::unique_ptr<viterbi_decoder> create_viterbi_decoder(const viterbi_decoder::config& cfg) {
    const auto parsed = parse_isa(cfg.isa);
    if (!parsed)
        throw std::invalid_argument("viterbi_decoder: isa '" + cfg.isa +
                                    "' unknown (allowed: auto, generic, sse41, avx2)");
    isa level = *parsed;
    if (cfg.isa == "auto") {
        level = std::min(level, isa::avx2);  // no AVX-512 kernel: widest written is AVX2
    } else {
        if (level == isa::avx512)
            throw std::invalid_argument("viterbi_decoder: isa 'avx512' has no kernel (allowed: generic, sse41, avx2)");
        if (!isa_supported(level))
            throw std::invalid_argument("viterbi_decoder: isa '" + cfg.isa + "' not supported by this CPU");
    }
#if !defined(__x86_64__)
    level = isa::generic;
#endif
    if (cfg.traceback < 35 || cfg.traceback > 4096)
        throw std::invalid_argument("viterbi_decoder: traceback must be in [35, 4096]");
    return std::make_unique<conv_detail::viterbi_decoder_impl>(cfg, conv_detail::kernels_for(level));
}

}  // namespace qlink::modem
