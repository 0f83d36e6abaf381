// Across-lanes Viterbi: kernels vs the generic lanes reference and vs the single-trellis reference, segment
// decoding of long blocks, decode_batch (against decode() and libfec), and segment BER vs an unsplit decoder.
#include "conv/viterbi_kernels.hpp"
#include "conv/viterbi_lanes.hpp"
#include "conv_test_util.hpp"

#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace qlink::modem {
namespace {

using namespace conv_test;
using namespace conv_detail;

constexpr conv_rate all_rates[] = {conv_rate::r1_2, conv_rate::r2_3, conv_rate::r3_4, conv_rate::r5_6,
                                   conv_rate::r7_8};

std::vector<llr_t> garbage_llrs(std::size_t n, std::mt19937_64& rng) {
    std::vector<llr_t> v(n);
    for (auto& x : v) {
        const unsigned k = rng() % 8;
        x = k == 0 ? 127 : k == 1 ? -127 : k == 2 ? 0 : k == 3 ? -128 : static_cast<llr_t>(rng());
    }
    return v;
}

std::vector<std::uint8_t> encode_terminated(const conv_code& code, std::span<const std::uint8_t> packed,
                                            std::size_t n) {
    conv_encoder enc(code);
    std::vector<std::uint8_t> out(conv_coded_bits(code, n + conv_tail_bits));
    std::size_t w = enc.encode(packed, n, out);
    w += enc.flush_tail(std::span(out).subspan(w));
    EXPECT_EQ(w, out.size());
    return out;
}

std::unique_ptr<viterbi_decoder> make_block(conv_code code, std::string isa = "auto", unsigned tb = 96) {
    viterbi_decoder::config cfg;
    cfg.code = code;
    cfg.mode = viterbi_mode::block_terminated;
    cfg.isa = std::move(isa);
    cfg.traceback = tb;
    return create_viterbi_decoder(cfg);
}

void random_lanes_state(lanes_state& st, std::mt19937_64& rng) {
    for (auto& m : st.metric) m = static_cast<std::uint8_t>(rng() % 3 ? rng() % 64 : 255);
    for (auto& m : st.pending_min) m = static_cast<std::uint8_t>(rng() % 16);
    st.step = rng() % 16;
}

// The generic lanes kernel is lane by lane the single-trellis reference
// (acs_generic/branch_generic), which the older kernels and libfec are tested
// against; decision bits are stored in the inverse sense.
TEST(viterbi_lanes, generic_lane_equals_single_trellis_reference) {
    std::mt19937_64 rng(41);
    for (int trial = 0; trial < 4; ++trial) {
        const std::size_t steps = 1 + rng() % 300;
        const auto pairs = garbage_llrs(2 * n_lanes * steps, rng);
        std::vector<std::uint8_t> bm(4 * n_lanes * steps);
        lanes_branch_generic(pairs.data(), steps, bm.data());
        std::uint8_t idx[32];
        for (auto& i : idx) i = static_cast<std::uint8_t>(rng() % 4);
        lanes_state st;
        random_lanes_state(st, rng);
        const lanes_state st0 = st;
        std::vector<std::uint8_t> dec(dec_row_bytes * steps);
        lanes_acs_generic(st, idx, bm.data(), steps, dec.data());
        for (unsigned l = 0; l < n_lanes; ++l) {
            std::vector<std::int8_t> lp(2 * steps);
            for (std::size_t t = 0; t < steps; ++t) {
                lp[2 * t] = pairs[2 * n_lanes * t + l];
                lp[2 * t + 1] = pairs[2 * n_lanes * t + n_lanes + l];
            }
            std::vector<std::uint8_t> bm4(4 * steps);
            branch_generic(lp.data(), steps, bm4.data());
            for (std::size_t t = 0; t < steps; ++t)
                for (unsigned e = 0; e < 4; ++e) ASSERT_EQ(bm4[4 * t + e], bm[(4 * t + e) * n_lanes + l]);
            acs_state ref;
            for (unsigned s = 0; s < 64; ++s) ref.metric[s] = st0.metric[s * n_lanes + l];
            ref.pending_min = st0.pending_min[l];
            ref.step = st0.step;
            std::vector<std::uint64_t> d(steps);
            acs_generic(ref, idx, bm4.data(), steps, d.data());
            for (std::size_t t = 0; t < steps; ++t)
                for (unsigned s = 0; s < 64; ++s) {
                    const unsigned q = ((s & 1u) << 5) | (s >> 1);  // bit of new state s in the single word
                    const unsigned lane_bit = (dec[dec_row_bytes * t + (s >> 3) * n_lanes + l] >> (s & 7u)) & 1u;
                    ASSERT_EQ(lane_bit, ((d[t] >> q) & 1u) ^ 1u) << "lane " << l << " step " << t;
                }
            for (unsigned s = 0; s < 64; ++s) ASSERT_EQ(ref.metric[s], st.metric[s * n_lanes + l]);
            ASSERT_EQ(ref.pending_min, st.pending_min[l]);
        }
    }
}

// The butterfly labels the decoder builds for a rate-1/2 convention (viterbi.cpp's idx_).
void conv_labels(conv_convention c, std::uint8_t* idx) {
    for (unsigned i = 0; i < 32; ++i) {
        const unsigned g1 = static_cast<unsigned>(std::popcount(2 * i & 0x4fu) & 1);
        const unsigned g2 = static_cast<unsigned>(std::popcount(2 * i & 0x6du) & 1);
        idx[i] = static_cast<std::uint8_t>(c == conv_convention::swapped ? (g2 << 1) | g1
                                           : c == conv_convention::ccsds ? (g1 << 1) | (g2 ^ 1u)
                                                                          : (g1 << 1) | g2);
    }
}

// Every lane traced from the top row, no tails.
lanes_trace_plan plain_plan(std::size_t steps, std::mt19937_64& rng) {
    lanes_trace_plan p{};
    for (unsigned l = 0; l < n_lanes; ++l) {
        p.own_state[l] = static_cast<std::uint32_t>(rng() % 64);
        p.own_src[l] = n_lanes;
        p.own_top[l] = static_cast<std::uint32_t>(steps);
    }
    return p;
}

// Tails and own starts at random boundaries (some lanes idle in either
// pass, own passes starting from random lanes' tails), all rows read inside
// [0, steps).
lanes_trace_plan random_plan(std::size_t steps, std::mt19937_64& rng) {
    lanes_trace_plan p{};
    for (unsigned l = 0; l < n_lanes; ++l) {
        p.tail_state[l] = static_cast<std::uint32_t>(rng() % 64);
        if (rng() % 4) {
            const std::size_t a = rng() % (steps + 1), b = rng() % (steps + 1);
            p.tail_hi[l] = static_cast<std::uint32_t>(std::max(a, b));
            p.tail_lo[l] = static_cast<std::uint32_t>(std::min(a, b));
        }
        p.own_state[l] = static_cast<std::uint32_t>(rng() % 64);
        p.own_src[l] = static_cast<std::uint32_t>(rng() % 2 ? rng() % n_lanes : n_lanes);
        p.own_top[l] = static_cast<std::uint32_t>(rng() % 8 == 0 ? 0 : rng() % (steps + 1));
    }
    p.bottom = static_cast<std::uint32_t>(rng() % 2 ? 32 * (rng() % (steps / 32 + 1)) : rng() % (steps + 1));
    return p;
}

class viterbi_lanes_isa : public ::testing::TestWithParam<isa> {};

// A level's lanes kernels as the decoder picks them (AVX-512 has its own ACS only).
struct lanes_kernel_set {
    lanes_branch_kernel branch;
    lanes_acs_kernel acs;
    lanes_transpose_kernel transpose;
    lanes_traceback_kernel traceback;
};

lanes_kernel_set lanes_kernels_of(isa level) {
    switch (level) {
    case isa::sse41: return {lanes_branch_sse41, lanes_acs_sse41, lanes_transpose_sse41, lanes_traceback_sse41};
    case isa::avx2: return {lanes_branch_avx2, lanes_acs_avx2, lanes_transpose_avx2, lanes_traceback_avx2};
    case isa::avx512: return {lanes_branch_avx2, lanes_acs_avx512, lanes_transpose_avx2, lanes_traceback_avx2};
    default: return {lanes_branch_generic, lanes_acs_generic, lanes_transpose_generic, lanes_traceback_generic};
    }
}

TEST_P(viterbi_lanes_isa, kernels_equal_generic_bit_for_bit) {
    const lanes_kernel_set ks = lanes_kernels_of(GetParam());
    const lanes_branch_kernel branch = ks.branch;
    const lanes_acs_kernel acs = ks.acs;
    const lanes_transpose_kernel transpose = ks.transpose;
    std::mt19937_64 rng(42);
    for (int trial = 0; trial < 20; ++trial) {
        const std::size_t steps = 1 + rng() % 400;
        const auto pairs = garbage_llrs(2 * n_lanes * steps, rng);
        {
            // Transpose from 32 streams at random offsets (shared, overlapping), from a random step c.
            const auto pool = garbage_llrs(2 * (steps + 64) * 4, rng);
            const std::int8_t* src[n_lanes];
            for (auto& p : src) p = pool.data() + 2 * (rng() % (3 * (steps + 64)));
            const std::size_t c = rng() % 64;
            std::vector<std::int8_t> t_ref(2 * n_lanes * steps), t_got(2 * n_lanes * steps);
            lanes_transpose_generic(src, c, steps, t_ref.data());
            transpose(src, c, steps, t_got.data());
            ASSERT_EQ(t_got, t_ref) << "transpose, trial " << trial;
            for (unsigned l = 0; l < n_lanes; ++l)  // the layout itself: [step][symbol][lane]
                ASSERT_EQ(t_ref[2 * n_lanes * (steps - 1) + n_lanes + l], src[l][2 * (c + steps - 1) + 1]);
        }
        std::vector<std::uint8_t> bm_ref(4 * n_lanes * steps), bm(4 * n_lanes * steps);
        lanes_branch_generic(pairs.data(), steps, bm_ref.data());
        branch(pairs.data(), steps, bm.data());
        ASSERT_EQ(bm, bm_ref);
        // Odd trials: the decoder's own labels (every convention; the AVX2
        // kernel has a constant-label fast path for them); even: random labels.
        std::uint8_t idx[32];
        if (trial % 2) conv_labels(static_cast<conv_convention>(trial / 2 % 3), idx);
        else
            for (auto& i : idx) i = static_cast<std::uint8_t>(rng() % 4);
        lanes_state ref, got;
        random_lanes_state(ref, rng);
        got = ref;
        lanes_state quiet = ref, quiet_ref = ref;
        std::vector<std::uint8_t> d_ref(dec_row_bytes * steps), d(dec_row_bytes * steps);
        lanes_acs_generic(ref, idx, bm_ref.data(), steps, d_ref.data());
        // Uneven call sizes: renormalisation phase and pending minima carry across calls.
        const std::size_t split = rng() % (steps + 1);
        acs(got, idx, bm.data(), split, d.data());
        acs(got, idx, bm.data() + 4 * n_lanes * split, steps - split, d.data() + dec_row_bytes * split);
        ASSERT_EQ(d, d_ref) << "trial " << trial;
        ASSERT_EQ(std::memcmp(ref.metric, got.metric, sizeof ref.metric), 0);
        ASSERT_EQ(std::memcmp(ref.pending_min, got.pending_min, sizeof ref.pending_min), 0);
        ASSERT_EQ(ref.step, got.step);
        // Without a decision buffer: the same metrics (split at an odd row too).
        lanes_acs_generic(quiet_ref, idx, bm_ref.data(), steps, nullptr);
        acs(quiet, idx, bm.data(), split, nullptr);
        acs(quiet, idx, bm.data() + 4 * n_lanes * split, steps - split, nullptr);
        ASSERT_EQ(std::memcmp(ref.metric, quiet.metric, sizeof ref.metric), 0);
        ASSERT_EQ(std::memcmp(ref.metric, quiet_ref.metric, sizeof ref.metric), 0);
        ASSERT_EQ(std::memcmp(ref.pending_min, quiet.pending_min, sizeof ref.pending_min), 0);
        ASSERT_EQ(quiet.step, got.step);
        {
            // Traceback over the same decisions: from the top row, and by
            // random plans with tails and starts at many boundaries.
            const lanes_traceback_kernel traceback = ks.traceback;
            for (int kind = 0; kind < 4; ++kind) {
                const lanes_trace_plan plan = kind ? random_plan(steps, rng) : plain_plan(steps, rng);
                std::size_t top = 0;
                for (unsigned l = 0; l < n_lanes; ++l) top = std::max<std::size_t>(top, plan.own_top[l]);
                const std::size_t rows = (top + 31) / 32;  // rows below plan.bottom / 32 stay 0 in both
                std::vector<std::uint32_t> w_ref(rows * n_lanes, 0), w(rows * n_lanes, 0);
                lanes_traceback_generic(d_ref.data(), plan, w_ref.data());
                traceback(d_ref.data(), plan, w.data());
                ASSERT_EQ(w, w_ref) << "trial " << trial << " kind " << kind;
            }
        }
    }
}

// The ACS alone over every step count 0..130 from every renormalisation phase
// (odd starts included), with and without decisions, two calls per run with
// labels of any kind each (the decoder's conventions: the constant-label
// paths; random: the general ones), so a kernel's label cache also sees a
// change between calls on one state.
TEST_P(viterbi_lanes_isa, acs_every_step_count_phase_and_label_change) {
    const lanes_acs_kernel acs = lanes_kernels_of(GetParam()).acs;
    std::mt19937_64 rng(49);
    auto labels = [&](std::uint8_t* idx) {
        const unsigned kind = static_cast<unsigned>(rng() % 4);
        if (kind < 3) conv_labels(static_cast<conv_convention>(kind), idx);
        else
            for (unsigned i = 0; i < 32; ++i) idx[i] = static_cast<std::uint8_t>(rng() % 4);
    };
    for (std::size_t steps = 0; steps <= 130; ++steps) {
        const auto pairs = garbage_llrs(2 * n_lanes * steps, rng);
        std::vector<std::uint8_t> bm(4 * n_lanes * steps);
        lanes_branch_generic(pairs.data(), steps, bm.data());
        std::uint8_t idx_a[32], idx_b[32];
        labels(idx_a);
        labels(idx_b);
        const std::size_t split = rng() % (steps + 1);
        for (const bool keep : {true, false}) {
            lanes_state ref, got;
            random_lanes_state(ref, rng);
            ref.step = steps % 16;  // every phase, both parities
            got = ref;
            std::vector<std::uint8_t> d_ref(dec_row_bytes * steps), d(dec_row_bytes * steps, 0x5a);
            auto run = [&](lanes_acs_kernel k, lanes_state& st, std::vector<std::uint8_t>& dec) {
                k(st, idx_a, bm.data(), split, keep ? dec.data() : nullptr);
                k(st, idx_b, bm.data() + 4 * n_lanes * split, steps - split,
                  keep ? dec.data() + dec_row_bytes * split : nullptr);
            };
            run(lanes_acs_generic, ref, d_ref);
            run(acs, got, d);
            if (keep) {
                ASSERT_EQ(d, d_ref) << "steps " << steps;
            }
            ASSERT_EQ(std::memcmp(ref.metric, got.metric, sizeof ref.metric), 0) << "steps " << steps << " " << keep;
            ASSERT_EQ(std::memcmp(ref.pending_min, got.pending_min, sizeof ref.pending_min), 0) << "steps " << steps;
            ASSERT_EQ(ref.step, got.step);
        }
    }
}

// Long blocks (segment mode) and batches, garbage and noisy, every rate: equal to generic bit for bit.
TEST_P(viterbi_lanes_isa, segment_and_batch_decoders_equal_generic) {
    const std::string name(to_string(GetParam()));
    std::mt19937_64 rng(43);
    for (auto r : all_rates) {
        const conv_code code{conv_convention::ccsds, r};
        const unsigned tb = 35 + static_cast<unsigned>(rng() % 100);
        auto ref = make_block(code, "generic", tb);
        auto dut = make_block(code, name, tb);
        for (int trial = 0; trial < 2; ++trial) {
            const std::size_t n = 4096 + rng() % 3000;
            std::vector<llr_t> soft;
            if (trial == 0) {
                soft = garbage_llrs(conv_coded_bits(code, n + 6), rng);
            } else {
                const auto data = random_bytes((n + 7) / 8, rng);
                soft = bpsk_awgn(encode_terminated(code, data, n), 1.0, 0.5, 60.0, rng);
            }
            std::vector<std::uint8_t> a((n + 7) / 8), b((n + 7) / 8);
            ASSERT_TRUE(ref->decode(soft, a).ok);
            ASSERT_TRUE(dut->decode(soft, b).ok);
            ASSERT_EQ(a, b) << "rate " << static_cast<int>(r) << " n " << n;
        }
        // A batch of 5 short blocks of garbage.
        const std::size_t n = 50 + rng() % 400;
        std::vector<std::vector<llr_t>> blocks;
        std::vector<std::span<const llr_t>> in;
        std::vector<std::vector<std::uint8_t>> oa(5, std::vector<std::uint8_t>((n + 7) / 8)), ob = oa;
        std::vector<std::span<std::uint8_t>> sa, sb;
        for (int i = 0; i < 5; ++i) blocks.push_back(garbage_llrs(conv_coded_bits(code, n + 6), rng));
        for (int i = 0; i < 5; ++i) {
            in.emplace_back(blocks[static_cast<std::size_t>(i)]);
            sa.emplace_back(oa[static_cast<std::size_t>(i)]);
            sb.emplace_back(ob[static_cast<std::size_t>(i)]);
        }
        ASSERT_TRUE(ref->decode_batch(in, sa).ok);
        ASSERT_TRUE(dut->decode_batch(in, sb).ok);
        ASSERT_EQ(oa, ob);
    }
}


// Streams crossing several 8192-bit windows, garbage and noisy, odd call sizes: equal to generic.
TEST_P(viterbi_lanes_isa, streaming_windows_equal_generic) {
    const std::string name(to_string(GetParam()));
    std::mt19937_64 rng(48);
    for (auto r : {conv_rate::r1_2, conv_rate::r5_6}) {
        const conv_code code{conv_convention::ccsds, r};
        viterbi_decoder::config cfg;
        cfg.code = code;
        cfg.traceback = 35 + static_cast<unsigned>(rng() % 100);
        cfg.isa = "generic";
        auto ref = create_viterbi_decoder(cfg);
        cfg.isa = name;
        auto dut = create_viterbi_decoder(cfg);
        const std::size_t n = 16500 + rng() % 1000;
        const auto data = random_bytes((n + 7) / 8, rng);
        conv_encoder enc(code);
        std::vector<std::uint8_t> coded(conv_coded_bits(code, n));
        ASSERT_EQ(enc.encode(data, n, coded), coded.size());
        auto soft = bpsk_awgn(coded, 1.5, 0.5, 50.0, rng);
        const auto junk = garbage_llrs(3000, rng);
        std::copy(junk.begin(), junk.end(), soft.begin() + 5000);
        const std::size_t p1[] = {soft.size()}, p2[] = {1, 4095, 3, 777};
        std::size_t b1 = 0, b2 = 0;
        const auto a = stream_decode(*ref, soft, p1, b1);
        const auto b = stream_decode(*dut, soft, p2, b2);
        ASSERT_EQ(b1, n);
        ASSERT_EQ(b2, n);
        ASSERT_EQ(a, b) << "rate " << static_cast<int>(r);
    }
}

// A 32768-bit window (what the receive chain uses): the same, over a stream crossing two such
// windows with a garbage burst across the first seam, every rate's puncturing carried across calls.
TEST_P(viterbi_lanes_isa, wide_streaming_windows_equal_generic) {
    const std::string name(to_string(GetParam()));
    std::mt19937_64 rng(50);
    for (auto r : {conv_rate::r1_2, conv_rate::r3_4}) {
        const conv_code code{conv_convention::ccsds, r};
        viterbi_decoder::config cfg;
        cfg.code = code;
        cfg.stream_window = 32768;
        cfg.traceback = 35 + static_cast<unsigned>(rng() % 100);
        cfg.isa = "generic";
        auto ref = create_viterbi_decoder(cfg);
        cfg.isa = name;
        auto dut = create_viterbi_decoder(cfg);
        const std::size_t n = 2 * 32768 + 5000 + rng() % 1000;
        const auto data = random_bytes((n + 7) / 8, rng);
        conv_encoder enc(code);
        std::vector<std::uint8_t> coded(conv_coded_bits(code, n));
        ASSERT_EQ(enc.encode(data, n, coded), coded.size());
        auto soft = bpsk_awgn(coded, 1.5, 0.5, 50.0, rng);
        const auto junk = garbage_llrs(3000, rng);
        std::copy(junk.begin(), junk.end(), soft.begin() + static_cast<std::ptrdiff_t>(conv_coded_bits(code, 32000)));
        const std::size_t p1[] = {soft.size()}, p2[] = {1, 40961, 3, 7777};
        std::size_t b1 = 0, b2 = 0;
        const auto a = stream_decode(*ref, soft, p1, b1);
        const auto b = stream_decode(*dut, soft, p2, b2);
        ASSERT_EQ(b1, n);
        ASSERT_EQ(b2, n);
        ASSERT_EQ(a, b) << "rate " << static_cast<int>(r);
    }
}

std::vector<isa> simd_isas() {
    std::vector<isa> v;
    for (isa level : supported_isas())
        if (level != isa::generic) v.push_back(level);
    return v;
}

INSTANTIATE_TEST_SUITE_P(cpu, viterbi_lanes_isa, ::testing::ValuesIn(simd_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(viterbi_lanes_isa);

// A batch of short blocks equals decode() of each block (both are one trellis
// traced back from state 0) and libfec's decoder on the same noisy inputs agrees.
TEST(viterbi_batch, equals_single_block_decode_and_libfec_every_rate) {
    std::mt19937_64 rng(44);
    for (auto r : all_rates) {
        const conv_code code{conv_convention::ccsds, r};
        auto dec = make_block(code);
        for (std::size_t count : {std::size_t{1}, std::size_t{7}, std::size_t{32}}) {
            const std::size_t n = 16 + rng() % 600;
            std::vector<std::vector<std::uint8_t>> data;
            std::vector<std::vector<llr_t>> soft;
            std::vector<std::vector<std::uint8_t>> outs(count, std::vector<std::uint8_t>((n + 7) / 8, 0xa5));
            std::vector<std::span<const llr_t>> in;
            std::vector<std::span<std::uint8_t>> out;
            for (std::size_t i = 0; i < count; ++i) {
                data.push_back(random_bytes((n + 7) / 8, rng));
                if (n % 8) data.back().back() &= static_cast<std::uint8_t>(0xff00u >> (n % 8));
                soft.push_back(bpsk_awgn(encode_terminated(code, data.back(), n), 2.5, 0.5, 50.0, rng));
            }
            for (std::size_t i = 0; i < count; ++i) {
                in.emplace_back(soft[i]);
                out.emplace_back(outs[i]);
            }
            const auto res = dec->decode_batch(in, out);
            ASSERT_TRUE(res.ok) << res.error;
            ASSERT_EQ(res.bits_out, n);
            std::size_t errors = 0;
            for (std::size_t i = 0; i < count; ++i) {
                std::vector<std::uint8_t> single((n + 7) / 8);
                ASSERT_TRUE(dec->decode(soft[i], single).ok);
                ASSERT_EQ(outs[i], single) << "rate " << static_cast<int>(r) << " block " << i;
                errors += bit_errors(outs[i], data[i], n);
            }
            if (r == conv_rate::r1_2) {
                int polys[2] = {};
                libfec_polys(conv_convention::ccsds, polys);
                set_viterbi27_polynomial(polys);
                libfec_decoder fec(n);
                std::size_t fec_errors = 0;
                for (std::size_t i = 0; i < count; ++i) fec_errors += bit_errors(fec.decode(soft[i]), data[i], n);
                // Same soft inputs, near-identical metrics: error counts within a few bits.
                EXPECT_LE(errors, fec_errors + 8 + fec_errors / 4);
            }
        }
    }
}

TEST(viterbi_batch, noise_free_long_blocks_round_trip) {
    std::mt19937_64 rng(45);
    const conv_code code{conv_convention::swapped, conv_rate::r3_4};
    auto dec = make_block(code);
    const std::size_t n = 9001;
    std::vector<std::vector<std::uint8_t>> data, outs(3, std::vector<std::uint8_t>((n + 7) / 8));
    std::vector<std::vector<llr_t>> soft;
    std::vector<std::span<const llr_t>> in;
    std::vector<std::span<std::uint8_t>> out;
    for (int i = 0; i < 3; ++i) {
        data.push_back(random_bytes((n + 7) / 8, rng));
        data.back().back() &= 0x80;
        std::vector<llr_t> s;
        for (auto bit : encode_terminated(code, data.back(), n)) s.push_back(bit_to_llr(bit, 90));
        soft.push_back(std::move(s));
    }
    for (int i = 0; i < 3; ++i) {
        in.emplace_back(soft[static_cast<std::size_t>(i)]);
        out.emplace_back(outs[static_cast<std::size_t>(i)]);
    }
    ASSERT_TRUE(dec->decode_batch(in, out).ok);
    EXPECT_EQ(outs, data);
    // The same long blocks one at a time go through segment mode.
    std::vector<std::uint8_t> one((n + 7) / 8);
    ASSERT_TRUE(dec->decode(soft[1], one).ok);
    EXPECT_EQ(one, data[1]);
}

TEST(viterbi_batch, bad_inputs_give_errors_and_write_nothing) {
    auto dec = make_block({});
    std::vector<llr_t> a(2 * 106, 10), b(2 * 107, 10);
    std::vector<std::uint8_t> oa(13, 0x5a), ob(13, 0x5a);
    const std::vector<std::uint8_t> untouched(13, 0x5a);
    std::span<const llr_t> in2[2] = {a, b};
    std::span<std::uint8_t> out2[2] = {oa, ob};
    EXPECT_FALSE(dec->decode_batch(in2, out2).ok);  // unequal lengths
    std::span<const llr_t> in1[1] = {a};
    EXPECT_FALSE(dec->decode_batch(in1, out2).ok);  // count mismatch
    EXPECT_FALSE(dec->decode_batch({}, {}).ok);
    std::vector<std::uint8_t> small(12);
    std::span<std::uint8_t> out_small[1] = {small};
    EXPECT_FALSE(dec->decode_batch(in1, out_small).ok);
    std::vector<llr_t> odd(2 * 106 + 1, 1);
    std::span<const llr_t> in_odd[1] = {odd};
    std::span<std::uint8_t> out1[1] = {oa};
    EXPECT_FALSE(dec->decode_batch(in_odd, out1).ok);
    std::vector<std::span<const llr_t>> many(33, a);
    std::vector<std::span<std::uint8_t>> many_out(33, oa);
    EXPECT_FALSE(dec->decode_batch(many, many_out).ok);
    EXPECT_EQ(oa, untouched);
    EXPECT_EQ(ob, untouched);
    viterbi_decoder::config cfg;
    cfg.mode = viterbi_mode::streaming;
    auto stream = create_viterbi_decoder(cfg);
    const auto r = stream->decode_batch(in1, out1);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(std::string(r.error).find("block_terminated"), std::string::npos);
}

// The windowed streaming decoder against the block decoder on one long
// terminated stream: window seams cost no measurable BER, no bit lost.
TEST(viterbi_stream, windows_match_block_decoder_quality_at_3db) {
    std::mt19937_64 rng(49);
    const std::size_t n = 8192 * 40 + 1234;
    const auto data = random_bytes((n + 7) / 8, rng);
    const auto soft = bpsk_awgn(encode_terminated({}, data, n), 3.0, 0.5, 32.0, rng);
    viterbi_decoder::config cfg;
    auto stream = create_viterbi_decoder(cfg);
    const std::size_t pieces[] = {10001, 7, 65536};
    std::size_t bits = 0;
    const auto got = stream_decode(*stream, soft, pieces, bits);
    ASSERT_EQ(bits, n + conv_tail_bits);
    std::vector<std::uint8_t> blk((n + 7) / 8);
    ASSERT_TRUE(make_block({})->decode(soft, blk).ok);
    const std::size_t se = bit_errors(got, data, n), be = bit_errors(blk, data, n);
    std::printf("3 dB, %zu bits: streaming %zu errors, block %zu errors\n", n, se, be);
    ASSERT_GE(be, 30u);
    EXPECT_LE(static_cast<double>(se), 1.05 * static_cast<double>(be) + 3.0 * std::sqrt(static_cast<double>(be)));
}

// The wide window the receive chain uses (32768 bits: 32 segments of 1024 steps, each with its
// run-in and a traceback tail into the next) against the unsplit maximum-likelihood decoder. The
// stream is `frames` terminated 8192-bit frames back to back (a valid continuous code sequence:
// each tail returns the encoder to state 0); the reference decodes each frame as one trellis
// (decode_batch). Bit errors over the data bits equal within 5 % + 3 sigma.
void wide_window_vs_unsplit(double ebn0_db, std::size_t frames, std::uint64_t seed) {
    const std::size_t n = 8192, fsteps = n + conv_tail_bits;
    std::mt19937_64 rng(seed);
    std::vector<std::vector<std::uint8_t>> data(frames);
    std::vector<llr_t> soft;
    for (auto& d : data) {
        d = random_bytes(n / 8, rng);
        const auto s = bpsk_awgn(encode_terminated({}, d, n), ebn0_db, 0.5, 32.0, rng);
        soft.insert(soft.end(), s.begin(), s.end());
    }
    viterbi_decoder::config cfg;
    cfg.stream_window = 32768;
    auto stream = create_viterbi_decoder(cfg);
    const std::size_t pieces[] = {100001, 7, 65536};
    std::size_t bits = 0;
    const auto got = stream_decode(*stream, soft, pieces, bits);
    ASSERT_EQ(bits, frames * fsteps);
    auto blk = make_block({});
    std::size_t se = 0, be = 0;
    std::vector<std::vector<std::uint8_t>> ml(frames, std::vector<std::uint8_t>(n / 8));
    for (std::size_t f0 = 0; f0 < frames; f0 += n_lanes) {
        const std::size_t k = std::min<std::size_t>(n_lanes, frames - f0);
        std::vector<std::span<const llr_t>> in;
        std::vector<std::span<std::uint8_t>> out;
        for (std::size_t f = f0; f < f0 + k; ++f) {
            in.emplace_back(std::span<const llr_t>(soft).subspan(2 * fsteps * f, 2 * fsteps));
            out.emplace_back(ml[f]);
        }
        ASSERT_TRUE(blk->decode_batch(in, out).ok);
    }
    for (std::size_t f = 0; f < frames; ++f) {
        be += bit_errors(ml[f], data[f], n);
        for (std::size_t i = 0; i < n; ++i) se += bit_at(got, f * fsteps + i) != bit_at(data[f], i);
    }
    std::printf("%.1f dB, %zu bits: 32768-bit windows %zu errors, unsplit %zu errors\n", ebn0_db, frames * n, se,
                be);
    ASSERT_GE(be, 25u) << "too few errors for a comparison";
    EXPECT_LE(static_cast<double>(se), 1.05 * static_cast<double>(be) + 3.0 * std::sqrt(static_cast<double>(be)));
}

TEST(viterbi_stream, wide_windows_match_unsplit_decoder_at_3db) { wide_window_vs_unsplit(3.0, 48, 51); }
TEST(viterbi_stream, wide_windows_match_unsplit_decoder_at_4db) { wide_window_vs_unsplit(4.0, 384, 52); }

// Segment mode (32 overlapping segments, 48-step run-in at rate 1/2) against the unsplit
// maximum-likelihood decode of the same frames (decode_batch, one trellis with
// full traceback): the cut must cost no measurable BER. 8192-bit frames.
void segment_vs_unsplit(double ebn0_db, std::size_t frames, std::uint64_t seed) {
    const std::size_t n = 8192;
    auto dec = make_block({});
    std::mt19937_64 rng(seed);
    std::size_t seg_errors = 0, ml_errors = 0;
    std::vector<std::uint8_t> seg(n / 8), ml(n / 8);
    for (std::size_t f = 0; f < frames; ++f) {
        const auto data = random_bytes(n / 8, rng);
        const auto soft = bpsk_awgn(encode_terminated({}, data, n), ebn0_db, 0.5, 32.0, rng);
        ASSERT_TRUE(dec->decode(soft, seg).ok);
        std::span<const llr_t> in[1] = {soft};
        std::span<std::uint8_t> out[1] = {ml};
        ASSERT_TRUE(dec->decode_batch(in, out).ok);
        seg_errors += bit_errors(seg, data, n);
        ml_errors += bit_errors(ml, data, n);
    }
    std::printf("Eb/N0 %.1f dB, %zu bits: segmented %zu errors, unsplit %zu errors\n", ebn0_db, frames * n,
                seg_errors, ml_errors);
    ASSERT_GE(ml_errors, 30u) << "too few errors for a comparison";
    // Poisson-scale slack: ~3 sigma of the unsplit count plus 5 %.
    EXPECT_LE(static_cast<double>(seg_errors),
              1.05 * static_cast<double>(ml_errors) + 3.0 * std::sqrt(static_cast<double>(ml_errors)));
}

TEST(viterbi_segments, ber_equals_unsplit_decoder_at_2db) { segment_vs_unsplit(2.0, 60, 45); }
TEST(viterbi_segments, ber_equals_unsplit_decoder_at_3db) { segment_vs_unsplit(3.0, 80, 46); }
TEST(viterbi_segments, ber_equals_unsplit_decoder_at_4db) { segment_vs_unsplit(4.0, 400, 47); }

}  // namespace
}  // namespace qlink::modem
