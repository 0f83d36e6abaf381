// Tests of the convolutional encoder and the Viterbi decoder: conventions vs libfec, modes, puncturing, ISA parity, bad input.
#include "conv_test_util.hpp"

#include "conv/viterbi_kernels.hpp"
#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::modem {
namespace {

using namespace conv_test;

constexpr conv_convention all_conventions[] = {conv_convention::ccsds, conv_convention::uninverted,
                                               conv_convention::swapped};
constexpr conv_rate all_rates[] = {conv_rate::r1_2, conv_rate::r2_3, conv_rate::r3_4, conv_rate::r5_6,
                                   conv_rate::r7_8};
constexpr viterbi_mode all_modes[] = {viterbi_mode::block_terminated, viterbi_mode::block_tailbiting,
                                      viterbi_mode::streaming};

std::vector<std::uint8_t> encode_terminated(const conv_code& code, std::span<const std::uint8_t> packed,
                                            std::size_t n) {
    conv_encoder enc(code);
    std::vector<std::uint8_t> out(conv_coded_bits(code, n + conv_tail_bits));
    std::size_t w = enc.encode(packed, n, out);
    w += enc.flush_tail(std::span(out).subspan(w));
    EXPECT_EQ(w, out.size());
    return out;
}

std::vector<llr_t> to_llr(std::span<const std::uint8_t> bits, llr_t mag = 100) {
    std::vector<llr_t> v(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) v[i] = bit_to_llr(bits[i], mag);
    return v;
}

std::unique_ptr<viterbi_decoder> make(conv_code code, viterbi_mode mode, std::string isa = "auto",
                                      unsigned tb = 96) {
    viterbi_decoder::config cfg;
    cfg.code = code;
    cfg.mode = mode;
    cfg.isa = std::move(isa);
    cfg.traceback = tb;
    return create_viterbi_decoder(cfg);
}


// ---------------------------------------------------------------- encoder

TEST(conv_encoder, impulse_response_is_the_generators) {
    // One 1 followed by zeros: uninverted pairs are the taps of G1 = 1111001 and G2 = 1011011.
    const std::uint8_t in[] = {0x80};
    conv_encoder enc({conv_convention::uninverted, conv_rate::r1_2});
    std::vector<std::uint8_t> out(14);
    ASSERT_EQ(enc.encode(in, 7, out), 14u);
    const std::uint8_t want[] = {1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1};
    EXPECT_EQ(out, std::vector<std::uint8_t>(want, want + 14));

    conv_encoder ccsds({conv_convention::ccsds, conv_rate::r1_2});
    ASSERT_EQ(ccsds.encode(in, 7, out), 14u);
    for (int i = 0; i < 7; ++i) {
        EXPECT_EQ(out[2 * i], want[2 * i]);
        EXPECT_EQ(out[2 * i + 1], want[2 * i + 1] ^ 1);  // G2 inverted
    }
}

TEST(conv_encoder, matches_libfec_parity_convention_for_every_convention) {
    std::mt19937_64 rng(11);
    const auto data = random_bytes(125, rng);
    for (auto c : all_conventions) {
        int polys[2] = {};
        libfec_polys(c, polys);
        const auto ref = libfec_style_encode(data, 1000, polys, true);
        EXPECT_EQ(encode_terminated({c, conv_rate::r1_2}, data, 1000), ref) << static_cast<int>(c);
    }
}

TEST(conv_encoder, streaming_calls_equal_one_call_for_every_rate) {
    std::mt19937_64 rng(12);
    const auto data = random_bytes(64, rng);
    for (auto r : all_rates) {
        const conv_code code{conv_convention::ccsds, r};
        const auto whole = encode_terminated(code, data, 512);
        // Same bits fed 8 at a time, so the register and the puncturing phase carry over.
        conv_encoder enc(code);
        std::vector<std::uint8_t> out(whole.size());
        std::size_t w = 0;
        for (std::size_t i = 0; i < 64; ++i) w += enc.encode(std::span(data).subspan(i, 1), 8, std::span(out).subspan(w));
        w += enc.flush_tail(std::span(out).subspan(w));
        EXPECT_EQ(w, whole.size());
        EXPECT_EQ(out, whole) << static_cast<int>(r);
    }
}

TEST(conv_encoder, punctured_output_is_the_rate_half_output_with_ccsds_patterns) {
    // Puncturing of the uninverted rate-1/2 stream, per CCSDS 131.0-B table 3-2.
    std::mt19937_64 rng(13);
    const auto data = random_bytes(35, rng);
    const std::size_t n = 280;
    const auto full = encode_terminated({conv_convention::uninverted, conv_rate::r1_2}, data, n);
    struct { conv_rate r; const char* c1; const char* c2; } pats[] = {
        {conv_rate::r2_3, "10", "11"}, {conv_rate::r3_4, "101", "110"},
        {conv_rate::r5_6, "10101", "11010"}, {conv_rate::r7_8, "1000101", "1111010"}};
    for (auto p : pats) {
        std::vector<std::uint8_t> want;
        const std::size_t period = std::strlen(p.c1);
        for (std::size_t j = 0; j < n + 6; ++j) {
            if (p.c1[j % period] == '1') want.push_back(full[2 * j]);
            if (p.c2[j % period] == '1') want.push_back(full[2 * j + 1]);
        }
        // CCSDS punctured codes carry no G2 inversion, so ccsds == uninverted here.
        EXPECT_EQ(encode_terminated({conv_convention::ccsds, p.r}, data, n), want) << p.c1;
        EXPECT_EQ(encode_terminated({conv_convention::uninverted, p.r}, data, n), want) << p.c1;
        // Swapped keeps the same symbols and emits G2 first where both are sent.
        std::vector<std::uint8_t> want_swapped;
        for (std::size_t j = 0; j < n + 6; ++j) {
            if (p.c2[j % period] == '1') want_swapped.push_back(full[2 * j + 1]);
            if (p.c1[j % period] == '1') want_swapped.push_back(full[2 * j]);
        }
        EXPECT_EQ(encode_terminated({conv_convention::swapped, p.r}, data, n), want_swapped) << p.c1;
    }
}

TEST(conv_encoder, coded_and_info_bit_counts) {
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r1_2}, 10), 20u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r2_3}, 4), 6u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r2_3}, 3), 5u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r3_4}, 3), 4u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r5_6}, 5), 6u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r7_8}, 7), 8u);
    EXPECT_EQ(conv_coded_bits({conv_convention::ccsds, conv_rate::r7_8}, 8), 10u);
    for (auto r : all_rates)
        for (std::size_t n = 0; n < 40; ++n) {
            const conv_code code{conv_convention::ccsds, r};
            EXPECT_EQ(conv_info_bits(code, conv_coded_bits(code, n)), n);
        }
    EXPECT_EQ(conv_info_bits({conv_convention::ccsds, conv_rate::r1_2}, 7), static_cast<std::size_t>(-1));
    // r3/4 sends 2, 1, 1 symbols per column: step boundaries fall at 4k, 4k + 2 and 4k + 3 symbols.
    EXPECT_EQ(conv_info_bits({conv_convention::ccsds, conv_rate::r3_4}, 5), static_cast<std::size_t>(-1));
}

TEST(conv_encoder, tailbiting_starts_and_ends_in_the_same_state) {
    std::mt19937_64 rng(14);
    const auto data = random_bytes(32, rng);
    const std::size_t n = 256;
    int polys[2] = {};
    libfec_polys(conv_convention::ccsds, polys);
    // Reference: encode the last 6 bits first (output dropped), then the block.
    std::vector<std::uint8_t> pre(34);
    for (std::size_t i = 0; i < n + 6; ++i) {
        const std::size_t src = i < 6 ? n - 6 + i : i - 6;
        pre[i >> 3] |= static_cast<std::uint8_t>(bit_at(data, src) << (7 - (i & 7)));
    }
    auto ref = libfec_style_encode(pre, n + 6, polys, false);
    ref.erase(ref.begin(), ref.begin() + 12);
    std::vector<std::uint8_t> out(2 * n);
    ASSERT_EQ(conv_encode_tailbiting({}, data, n, out), 2 * n);
    EXPECT_EQ(out, ref);
}

TEST(conv_encoder, short_spans_write_nothing) {
    conv_encoder enc({});
    std::vector<std::uint8_t> out(3);
    const std::uint8_t in[1] = {0xff};
    EXPECT_EQ(enc.encode(in, 8, out), 0u);      // out too short
    std::vector<std::uint8_t> big(100);
    EXPECT_EQ(enc.encode(in, 9, big), 0u);  // in too short
    EXPECT_EQ(enc.flush_tail(out), 0u);
    EXPECT_EQ(conv_encode_tailbiting({}, in, 0, out), 0u);
}

// ---------------------------------------------------------------- decoder, noise-free and libfec

TEST(viterbi, decodes_libfec_encoded_blocks_for_every_convention) {
    std::mt19937_64 rng(21);
    const std::size_t n = 1000;
    const auto data = random_bytes(n / 8, rng);
    for (auto c : all_conventions) {
        int polys[2] = {};
        libfec_polys(c, polys);
        const auto coded = libfec_style_encode(data, n, polys, true);
        auto dec = make({c, conv_rate::r1_2}, viterbi_mode::block_terminated);
        std::vector<std::uint8_t> out(n / 8);
        const auto r = dec->decode(to_llr(coded), out);
        ASSERT_TRUE(r.ok) << r.error;
        EXPECT_EQ(r.bits_out, n);
        EXPECT_EQ(out, data);
    }
}

TEST(viterbi, libfec_decodes_our_encoder_output) {
    std::mt19937_64 rng(22);
    const std::size_t n = 800;
    const auto data = random_bytes(n / 8, rng);
    int polys[2] = {};
    libfec_polys(conv_convention::ccsds, polys);
    set_viterbi27_polynomial(polys);  // libfec's process-global setting, confined to this test binary
    const auto coded = encode_terminated({}, data, n);
    std::mt19937_64 noise_rng(23);
    const auto soft = bpsk_awgn(coded, 5.0, 0.5, 48.0, noise_rng);
    libfec_decoder fec(n);
    EXPECT_EQ(fec.decode(soft), data);
    auto dec = make({}, viterbi_mode::block_terminated);
    std::vector<std::uint8_t> out(n / 8);
    ASSERT_TRUE(dec->decode(soft, out).ok);
    EXPECT_EQ(out, data);
}

TEST(viterbi, noise_free_round_trip_every_mode_rate_convention_isa) {
    std::mt19937_64 rng(24);
    for (isa level : supported_isas()) {
        for (auto c : all_conventions)
            for (auto r : all_rates)
                for (auto m : all_modes) {
                    const conv_code code{c, r};
                    // Short blocks run as one trellis, long ones as two halves side by side.
                    const std::size_t n = (rng() % 2 ? 700 : 2600) + rng() % 50;
                    const auto data = random_bytes((n + 7) / 8, rng);
                    auto dec = make(code, m, std::string(to_string(level)));
                    std::vector<std::uint8_t> got;
                    std::size_t bits = 0;
                    if (m == viterbi_mode::block_terminated) {
                        const auto coded = encode_terminated(code, data, n);
                        got.resize((n + 7) / 8);
                        const auto res = dec->decode(to_llr(coded), got);
                        ASSERT_TRUE(res.ok) << res.error;
                        bits = res.bits_out;
                    } else if (m == viterbi_mode::block_tailbiting) {
                        std::vector<std::uint8_t> coded(conv_coded_bits(code, n));
                        ASSERT_EQ(conv_encode_tailbiting(code, data, n, coded), coded.size());
                        got.resize((n + 7) / 8);
                        const auto res = dec->decode(to_llr(coded), got);
                        ASSERT_TRUE(res.ok) << res.error;
                        bits = res.bits_out;
                    } else {
                        conv_encoder enc(code);
                        std::vector<std::uint8_t> coded(conv_coded_bits(code, n));
                        ASSERT_EQ(enc.encode(data, n, coded), coded.size());
                        const std::size_t pieces[] = {1, 7, 333, 2, 1000};
                        got = stream_decode(*dec, to_llr(coded), pieces, bits);
                    }
                    ASSERT_EQ(bits, n);
                    for (std::size_t i = 0; i < n; ++i)
                        ASSERT_EQ(bit_at(got, i), bit_at(data, i))
                            << "bit " << i << " isa " << to_string(level) << " conv " << static_cast<int>(c)
                            << " rate " << static_cast<int>(r) << " mode " << static_cast<int>(m);
                }
    }
}

TEST(viterbi, long_noisy_stream_does_not_degrade) {
    // 400k bits at 4.5 dB through the streaming decoder in odd-sized pieces: the
    // error rate stays at the block decoder's level (no drift, no lost bits).
    std::mt19937_64 rng(25);
    const std::size_t n = 400000;
    const auto data = random_bytes(n / 8, rng);
    conv_encoder enc({});
    std::vector<std::uint8_t> coded(2 * n);
    ASSERT_EQ(enc.encode(data, n, coded), 2 * n);
    const auto soft = bpsk_awgn(coded, 4.5, 0.5, 48.0, rng);
    auto dec = make({}, viterbi_mode::streaming);
    const std::size_t pieces[] = {4097, 1, 50001, 12};
    std::size_t bits = 0;
    const auto got = stream_decode(*dec, soft, pieces, bits);
    ASSERT_EQ(bits, n);
    const std::size_t errs = bit_errors(got, data, n);
    // Uncoded BPSK at 4.5 dB has ~6e-3 = 2400 errors here; the code gives well under 1e-4.
    EXPECT_LT(errs, 40u);
    // The last traceback window is decided without termination; its bits are still right here.
    EXPECT_EQ(bit_errors(std::span(got).subspan(n / 8 - 16), std::span(data).subspan(n / 8 - 16), 128), 0u);
}

TEST(viterbi, streaming_output_is_independent_of_call_sizes) {
    std::mt19937_64 rng(26);
    const std::size_t n = 20000;
    const auto data = random_bytes(n / 8, rng);
    for (auto r : all_rates) {
        const conv_code code{conv_convention::ccsds, r};
        conv_encoder enc(code);
        std::vector<std::uint8_t> coded(conv_coded_bits(code, n));
        ASSERT_EQ(enc.encode(data, n, coded), coded.size());
        const auto soft = bpsk_awgn(coded, 2.0, 0.5, 40.0, rng);
        auto dec = make(code, viterbi_mode::streaming);
        const std::size_t whole[] = {soft.size()};
        const std::size_t odd[] = {3, 1, 999, 5, 70};
        std::size_t b1 = 0, b2 = 0;
        const auto a = stream_decode(*dec, soft, whole, b1);
        const auto b = stream_decode(*dec, soft, odd, b2);  // flush() reset the decoder
        EXPECT_EQ(b1, n);
        EXPECT_EQ(b2, n);
        EXPECT_EQ(a, b) << static_cast<int>(r);
    }
}

// ---------------------------------------------------------------- ISA variants vs generic, bit for bit

class viterbi_isa : public ::testing::TestWithParam<isa> {};

std::vector<llr_t> garbage_llrs(std::size_t n, std::mt19937_64& rng) {
    std::vector<llr_t> v(n);
    for (auto& x : v) {
        const unsigned k = rng() % 8;
        x = k == 0 ? 127 : k == 1 ? -127 : k == 2 ? 0 : k == 3 ? -128 : static_cast<llr_t>(rng());
    }
    return v;
}

TEST_P(viterbi_isa, kernels_equal_generic_bit_for_bit) {
    using namespace conv_detail;
    const isa level = GetParam();
    acs_kernel acs = level == isa::avx2 ? acs_avx2 : acs_sse41;
    branch_kernel branch = branch_sse41;
    std::mt19937_64 rng(31);
    for (int trial = 0; trial < 40; ++trial) {
        const std::size_t steps = 1 + rng() % 700;
        const auto pairs = garbage_llrs(2 * steps, rng);
        std::vector<std::uint8_t> bm_ref(4 * steps), bm(4 * steps);
        branch_generic(pairs.data(), steps, bm_ref.data());
        branch(pairs.data(), steps, bm.data());
        ASSERT_EQ(bm, bm_ref);
        std::uint8_t idx[32];
        for (auto& i : idx) i = static_cast<std::uint8_t>(rng() % 4);
        acs_state ref, got;
        for (int s = 0; s < 64; ++s) ref.metric[s] = static_cast<std::uint8_t>(rng() % 3 ? rng() % 64 : 255);
        ref.pending_min = static_cast<std::uint8_t>(rng() % 16);
        ref.step = rng() % 16;
        got = ref;
        std::vector<std::uint64_t> d_ref(steps), d(steps);
        // Uneven call sizes on the SIMD side: the renormalisation phase and
        // pending minimum must carry across calls.
        acs_generic(ref, idx, bm_ref.data(), steps, d_ref.data());
        const std::size_t split = rng() % (steps + 1);
        acs(got, idx, bm.data(), split, d.data());
        acs(got, idx, bm.data() + 4 * split, steps - split, d.data() + split);
        ASSERT_EQ(d, d_ref) << "trial " << trial;
        ASSERT_EQ(std::memcmp(ref.metric, got.metric, 64), 0);
        ASSERT_EQ(ref.pending_min, got.pending_min);
        ASSERT_EQ(ref.step, got.step);
        if (level == isa::avx2) {
            // The dual kernel: two trellises with different inputs in one loop.
            acs_state a = got, b = got, ra = got, rb = got;
            std::vector<std::uint8_t> bm_b(bm.rbegin(), bm.rend());
            std::vector<std::uint64_t> da(steps), db(steps), rda(steps), rdb(steps);
            acs_dual_avx2(a, b, idx, bm.data(), bm_b.data(), steps, da.data(), db.data());
            acs_generic(ra, idx, bm.data(), steps, rda.data());
            acs_generic(rb, idx, bm_b.data(), steps, rdb.data());
            ASSERT_EQ(da, rda);
            ASSERT_EQ(db, rdb);
            ASSERT_EQ(std::memcmp(a.metric, ra.metric, 64), 0);
            ASSERT_EQ(std::memcmp(b.metric, rb.metric, 64), 0);
        }
    }
}

TEST_P(viterbi_isa, decoders_equal_generic_on_garbage_and_noise_all_modes_rates) {
    const std::string name(to_string(GetParam()));
    std::mt19937_64 rng(32);
    for (auto c : all_conventions)
        for (auto r : all_rates)
            for (auto m : all_modes) {
                const conv_code code{c, r};
                const unsigned tb = 35 + static_cast<unsigned>(rng() % 100);
                auto ref = make(code, m, "generic", tb);
                auto dut = make(code, m, name, tb);
                for (int trial = 0; trial < 2; ++trial) {
                    const std::size_t n = 50 + rng() % 3000;
                    std::vector<llr_t> soft;
                    if (trial == 0) {
                        soft = garbage_llrs(conv_coded_bits(code, n + 6), rng);
                    } else {
                        const auto data = random_bytes((n + 7) / 8, rng);
                        soft = bpsk_awgn(encode_terminated(code, data, n), 1.0, 0.5, 60.0, rng);
                    }
                    if (m == viterbi_mode::streaming) {
                        const std::size_t pieces[] = {1 + rng() % 500, 1 + rng() % 3};
                        std::size_t b1 = 0, b2 = 0;
                        const auto a = stream_decode(*ref, soft, pieces, b1);
                        const auto b = stream_decode(*dut, soft, pieces, b2);
                        ASSERT_EQ(b1, b2);
                        ASSERT_EQ(a, b);
                    } else {
                        std::vector<std::uint8_t> a(soft.size() / 8 + 1), b(soft.size() / 8 + 1);
                        const auto ra = ref->decode(soft, a);
                        const auto rb = dut->decode(soft, b);
                        ASSERT_TRUE(ra.ok) << ra.error;
                        ASSERT_TRUE(rb.ok) << rb.error;
                        ASSERT_EQ(ra.bits_out, rb.bits_out);
                        ASSERT_EQ(a, b) << "conv " << static_cast<int>(c) << " rate " << static_cast<int>(r)
                                        << " mode " << static_cast<int>(m);
                    }
                }
            }
}

std::vector<isa> simd_isas() {
    std::vector<isa> v;
    for (isa level : supported_isas())
        if (level != isa::generic) v.push_back(level);
    return v;
}

INSTANTIATE_TEST_SUITE_P(cpu, viterbi_isa, ::testing::ValuesIn(simd_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(viterbi_isa);

// ---------------------------------------------------------------- bad input and configuration

TEST(viterbi, bad_config_throws_with_a_clear_message) {
    EXPECT_THROW(make({}, viterbi_mode::streaming, "neon"), std::invalid_argument);
    for (isa level : {isa::sse41, isa::avx2, isa::avx512}) {
        const std::string name(to_string(level));
        if (isa_supported(level)) EXPECT_NO_THROW(make({}, viterbi_mode::streaming, name)) << name;
        else EXPECT_THROW(make({}, viterbi_mode::streaming, name), std::invalid_argument) << name;
    }
    EXPECT_THROW(make({}, viterbi_mode::streaming, "auto", 10), std::invalid_argument);
    EXPECT_THROW(make({}, viterbi_mode::streaming, "auto", 100000), std::invalid_argument);
    EXPECT_NO_THROW(make({}, viterbi_mode::streaming, "generic", 35));
    viterbi_decoder::config cfg;
    for (std::size_t w : {std::size_t{4096}, std::size_t{8192 + 8}, std::size_t{1} << 20}) {
        cfg.stream_window = w;
        try {
            create_viterbi_decoder(cfg);
            ADD_FAILURE() << "stream_window " << w << " accepted";
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find("stream_window"), std::string::npos);
        }
    }
    cfg.stream_window = 32768;
    EXPECT_NO_THROW(create_viterbi_decoder(cfg));
}

TEST(viterbi, bad_lengths_give_error_results_and_leave_the_output_alone) {
    for (auto r : all_rates) {
        const conv_code code{conv_convention::ccsds, r};
        auto term = make(code, viterbi_mode::block_terminated);
        auto tb = make(code, viterbi_mode::block_tailbiting);
        std::vector<std::uint8_t> out(64, 0xa5);
        const std::vector<llr_t> none;
        EXPECT_FALSE(term->decode(none, out).ok);
        EXPECT_FALSE(tb->decode(none, out).ok);
        // A count that ends inside a trellis step.
        std::vector<llr_t> odd(conv_coded_bits(code, 100) + 1, 5);
        if (conv_info_bits(code, odd.size()) == static_cast<std::size_t>(-1)) {
            const auto res = term->decode(odd, out);
            EXPECT_FALSE(res.ok);
            EXPECT_NE(res.error, nullptr);
            EXPECT_FALSE(tb->decode(odd, out).ok);
        }
        // Terminated block not longer than its tail.
        std::vector<llr_t> tail_only(conv_coded_bits(code, 6), 5);
        EXPECT_FALSE(term->decode(tail_only, out).ok);
        // Output too small.
        std::vector<llr_t> ok_len(conv_coded_bits(code, 606), 5);
        std::vector<std::uint8_t> tiny(10, 0xa5);
        EXPECT_FALSE(term->decode(ok_len, tiny).ok);
        EXPECT_EQ(tiny, std::vector<std::uint8_t>(10, 0xa5));
        EXPECT_EQ(out, std::vector<std::uint8_t>(64, 0xa5));
    }
    auto s = make({}, viterbi_mode::streaming);
    std::vector<std::uint8_t> small(2);
    EXPECT_FALSE(s->decode(std::vector<llr_t>(100, 1), small).ok);
    EXPECT_FALSE(s->flush(small).ok);
    std::vector<std::uint8_t> out(s->max_stream_output_bytes(0));
    const auto r = s->decode({}, out);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.bits_out, 0u);
}

TEST(viterbi, odd_soft_count_in_streaming_is_carried_not_lost) {
    // Rate 1/2 fed one symbol at a time: every split pair is completed by the next call.
    std::mt19937_64 rng(41);
    const std::size_t n = 300;
    const auto data = random_bytes(n / 8 + 1, rng);
    conv_encoder enc({});
    std::vector<std::uint8_t> coded(2 * n);
    enc.encode(data, n, coded);
    auto dec = make({}, viterbi_mode::streaming, "auto", 35);
    const std::size_t ones[] = {1};
    std::size_t bits = 0;
    const auto got = stream_decode(*dec, to_llr(coded), ones, bits);
    ASSERT_EQ(bits, n);
    EXPECT_EQ(bit_errors(got, data, n), 0u);
}

TEST(viterbi, isa_name_reports_the_chosen_kernel) {
    EXPECT_EQ(make({}, viterbi_mode::streaming, "generic")->isa_name(), "generic");
    // "auto" is best_isa(): every level has a kernel set, and QLINK_ISA caps it.
    EXPECT_EQ(make({}, viterbi_mode::streaming, "auto")->isa_name(), to_string(best_isa()));
    for (isa level : supported_isas())
        EXPECT_EQ(make({}, viterbi_mode::streaming, std::string(to_string(level)))->isa_name(), to_string(level));
}

}  // namespace
}  // namespace qlink::modem
