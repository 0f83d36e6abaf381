// Tests of viterbi_decoder::decide(): every bit exactly once at any cut, BER against the undisturbed stream, ISA parity.
#include "conv_test_util.hpp"

#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

namespace qlink::modem {
namespace {

using namespace conv_test;

std::unique_ptr<viterbi_decoder> make_stream(conv_rate rate, std::string isa = "auto", std::size_t window = 8192) {
    viterbi_decoder::config cfg;
    cfg.code = {conv_convention::ccsds, rate};
    cfg.mode = viterbi_mode::streaming;
    cfg.isa = std::move(isa);
    cfg.stream_window = window;
    return create_viterbi_decoder(cfg);
}

struct coded_stream {
    std::vector<std::uint8_t> data;  // packed info bits
    std::vector<std::uint8_t> coded;  // one coded bit per byte
};

coded_stream encode_stream(conv_rate rate, std::size_t n, std::mt19937_64& rng) {
    coded_stream s;
    s.data = random_bytes(n / 8, rng);
    conv_encoder enc({conv_convention::ccsds, rate});
    s.coded.resize(conv_coded_bits(enc.code(), n));
    EXPECT_EQ(enc.encode(s.data, n, s.coded), s.coded.size());
    return s;
}

// The coded bits as noiseless soft symbols.
std::vector<llr_t> clean_soft(const coded_stream& s) {
    std::vector<llr_t> soft(s.coded.size());
    for (std::size_t i = 0; i < soft.size(); ++i) soft[i] = bit_to_llr(s.coded[i], 60);
    return soft;
}

// One call of the sequence: `n` soft symbols through decode(), then decide() when `decide`.
struct call {
    std::size_t n = 0;
    bool decide = false;
};

// A random call sequence over `total` symbols: runs of tiny pieces (decides of
// a few bytes, or of nothing, right at the stream start too), medium and
// window-sized pieces, decide() after about half of them and sometimes twice.
std::vector<call> random_calls(std::size_t total, std::mt19937_64& rng) {
    std::vector<call> v;
    for (std::size_t pos = 0; pos < total;) {
        const unsigned kind = static_cast<unsigned>(rng() % 16);
        std::size_t n = 0;
        if (kind < 4) n = 1 + rng() % 24;
        else if (kind < 8) n = 1 + rng() % 400;
        else if (kind < 13) n = 1 + rng() % 2000;
        else if (kind < 15) n = 1 + rng() % 6000;
        else n = 8000 + rng() % 30000;
        n = std::min(n, total - pos);
        pos += n;
        v.push_back({n, rng() % 2 == 0});
        if (rng() % 16 == 0) v.push_back({0, true});
    }
    return v;
}

struct decide_run {
    std::vector<std::uint8_t> bytes;
    std::size_t bits = 0;
    std::size_t decides = 0;      // decide() calls that emitted bits
    std::size_t max_lag = 0;      // largest (steps in - bits out) right after a decide()
};

// Runs the call sequence, then flush(); checks decide()'s contract on the way:
// whole bytes, all but the last traceback + 0..7 steps decided, within max_flush_bytes().
decide_run run_calls(viterbi_decoder& dec, conv_rate rate, std::span<const llr_t> soft, std::span<const call> calls,
                     unsigned traceback = 96) {
    decide_run r;
    std::size_t pos = 0;
    std::vector<std::uint8_t> out;
    const conv_code code{conv_convention::ccsds, rate};
    for (const call& c : calls) {
        out.assign(dec.max_stream_output_bytes(c.n), 0);
        const auto dr = dec.decode(soft.subspan(pos, c.n), out);
        EXPECT_TRUE(dr.ok) << (dr.error ? dr.error : "");
        r.bytes.insert(r.bytes.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(dr.bits_out / 8));
        r.bits += dr.bits_out;
        pos += c.n;
        if (!c.decide) continue;
        out.assign(dec.max_flush_bytes(), 0);
        const auto d = dec.decide(out);
        EXPECT_TRUE(d.ok) << (d.error ? d.error : "");
        EXPECT_EQ(d.bits_out % 8, 0u);
        EXPECT_LE(d.bits_out / 8, dec.max_flush_bytes());
        r.bytes.insert(r.bytes.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(d.bits_out / 8));
        r.bits += d.bits_out;
        r.decides += d.bits_out > 0;
        // Whole trellis steps received so far (a punctured step needs all its symbols).
        std::size_t steps = conv_info_bits(code, pos);
        for (std::size_t back = pos; steps == static_cast<std::size_t>(-1) && back > 0;)
            steps = conv_info_bits(code, --back);
        if (steps == static_cast<std::size_t>(-1)) steps = 0;
        EXPECT_LE(r.bits + traceback, std::max<std::size_t>(steps, traceback));
        if (steps >= r.bits) r.max_lag = std::max(r.max_lag, steps - r.bits);
    }
    out.assign(dec.max_flush_bytes(), 0);
    const auto f = dec.flush(out);
    EXPECT_TRUE(f.ok);
    r.bytes.insert(r.bytes.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>((f.bits_out + 7) / 8));
    r.bits += f.bits_out;
    return r;
}

constexpr conv_rate tested_rates[] = {conv_rate::r1_2, conv_rate::r3_4, conv_rate::r7_8};

TEST(viterbi_decide, random_cuts_of_a_clean_stream_give_every_bit_exactly_once) {
    for (std::uint64_t seed : {1u, 2u, 3u}) {
        for (conv_rate rate : tested_rates) {
            std::mt19937_64 rng(seed * 100 + static_cast<unsigned>(rate));
            const std::size_t n = 60000;
            const auto s = encode_stream(rate, n, rng);
            const auto soft = clean_soft(s);
            const auto calls = random_calls(soft.size(), rng);
            auto dec = make_stream(rate);
            const auto r = run_calls(*dec, rate, soft, calls);
            ASSERT_EQ(r.bits, n) << "seed " << seed << " rate " << static_cast<int>(rate);
            EXPECT_EQ(r.bytes, s.data) << "seed " << seed << " rate " << static_cast<int>(rate);
            EXPECT_GT(r.decides, 10u);
            // Right after a decide the decoder holds back at most the traceback and a partial byte.
            EXPECT_LE(r.max_lag, 96u + 7u);
        }
    }
}

TEST(viterbi_decide, every_length_at_the_stream_start_and_after_a_window) {
    // decide() after k = 0..600 steps, from the start (known state, no run-in
    // yet) and past a window (run-in, history moved): each splits the stream
    // there, and the rest still decodes exactly.
    std::mt19937_64 rng(7);
    const std::size_t n = 8192 + 96 + 600 + 2000;
    const auto s = encode_stream(conv_rate::r1_2, n, rng);
    const auto soft = clean_soft(s);
    auto dec = make_stream(conv_rate::r1_2);
    for (std::size_t base : {std::size_t{0}, std::size_t{8192 + 96}}) {
        for (std::size_t k = 0; k <= 600; k += (k < 120 ? 1 : 37)) {
            const std::size_t first = 2 * (base + k);
            const call calls[] = {{first, true}, {soft.size() - first, false}};
            const auto r = run_calls(*dec, conv_rate::r1_2, soft, calls);
            ASSERT_EQ(r.bits, n) << base << " " << k;
            ASSERT_EQ(r.bytes, s.data) << base << " " << k;
        }
    }
}

TEST(viterbi_decide, noisy_stream_ber_stays_at_the_undisturbed_level) {
    // Eb/N0 3 dB (r=1/2) and 4 dB (r=3/4), 200k bits, decide() after about
    // every other random piece: cutting the stream every ~1000 bits costs
    // nothing in BER beyond chance (each cut ends like a window end, with a
    // full traceback; the next stretch starts with a run-in).
    struct point {
        conv_rate rate;
        double ebn0;
        double code_rate;
    };
    for (const point p : {point{conv_rate::r1_2, 3.0, 0.5}, point{conv_rate::r3_4, 4.0, 0.75}}) {
        std::size_t ref_errs = 0, dec_errs = 0;
        for (std::uint64_t seed : {11u, 12u}) {
            std::mt19937_64 rng(seed);
            const std::size_t n = 200000;
            const auto s = encode_stream(p.rate, n, rng);
            const auto soft = bpsk_awgn(s.coded, p.ebn0, p.code_rate, 40.0, rng);
            std::vector<call> calls = random_calls(soft.size(), rng);
            for (auto& c : calls)  // mostly small pieces: many cuts
                if (c.n > 4000) c.n = 0;
            std::size_t used = 0;
            for (const auto& c : calls) used += c.n;
            calls.push_back({soft.size() - used, false});
            auto dec = make_stream(p.rate);
            const auto r = run_calls(*dec, p.rate, soft, calls);
            ASSERT_EQ(r.bits, n);
            EXPECT_GT(r.decides, 50u);
            const call whole[] = {{soft.size(), false}};
            const auto ref = run_calls(*dec, p.rate, soft, whole);
            ASSERT_EQ(ref.bits, n);
            ref_errs += bit_errors(ref.bytes, s.data, n);
            dec_errs += bit_errors(r.bytes, s.data, n);
        }
        std::printf("rate %d: %zu bit errors with decide() cuts, %zu without\n", static_cast<int>(p.rate), dec_errs,
                    ref_errs);
        // The operating points give BER ~1e-4..1e-3 (tens to hundreds of errors in 400k bits).
        EXPECT_GT(ref_errs, 10u) << static_cast<int>(p.rate);
        EXPECT_LT(ref_errs, 2000u) << static_cast<int>(p.rate);
        EXPECT_LE(dec_errs, ref_errs + ref_errs / 2 + 10) << static_cast<int>(p.rate) << ": " << dec_errs << " vs "
                                                          << ref_errs;
    }
}

TEST(viterbi_decide, every_isa_gives_generic_output_for_the_same_calls) {
    std::vector<std::string> isas;
    for (isa level : supported_isas())
        if (level != isa::generic) isas.emplace_back(to_string(level));
    if (isas.empty()) GTEST_SKIP() << "no SIMD Viterbi kernel runs on this CPU";
    for (conv_rate rate : tested_rates) {
        std::mt19937_64 rng(40 + static_cast<unsigned>(rate));
        const std::size_t n = 50000;
        const auto s = encode_stream(rate, n, rng);
        auto soft = bpsk_awgn(s.coded, 2.0, 0.5, 40.0, rng);
        for (std::size_t i = 0; i < soft.size(); i += 1 + rng() % 50) soft[i] = rng() % 3 == 0 ? -128 : 0;
        const auto calls = random_calls(soft.size(), rng);
        auto gen = make_stream(rate, "generic");
        const auto ref = run_calls(*gen, rate, soft, calls);
        ASSERT_EQ(ref.bits, n);
        for (const auto& name : isas) {
            auto dec = make_stream(rate, name);
            const auto got = run_calls(*dec, rate, soft, calls);
            EXPECT_EQ(got.bits, ref.bits) << name;
            EXPECT_EQ(got.bytes, ref.bytes) << name << " rate " << static_cast<int>(rate);
        }
    }
}

TEST(viterbi_decide, wide_window_and_long_traceback_cut_anywhere) {
    // The chain's configuration (window 32768) and a traceback of 300.
    std::mt19937_64 rng(9);
    const std::size_t n = 90000;
    const auto s = encode_stream(conv_rate::r1_2, n, rng);
    const auto soft = clean_soft(s);
    viterbi_decoder::config cfg;
    cfg.stream_window = 32768;
    cfg.traceback = 300;
    auto dec = create_viterbi_decoder(cfg);
    const auto calls = random_calls(soft.size(), rng);
    const auto r = run_calls(*dec, conv_rate::r1_2, soft, calls, 300);
    ASSERT_EQ(r.bits, n);
    EXPECT_EQ(r.bytes, s.data);
    EXPECT_LE(r.max_lag, 300u + 7u);
}

TEST(viterbi_decide, nothing_pending_twice_in_a_row_and_other_modes) {
    std::mt19937_64 rng(5);
    const std::size_t n = 4000;
    const auto s = encode_stream(conv_rate::r1_2, n, rng);
    const auto soft = clean_soft(s);
    auto dec = make_stream(conv_rate::r1_2);
    std::vector<std::uint8_t> out(dec->max_flush_bytes(), 0xAA);
    // Right after construction: nothing to decide.
    auto d = dec->decide(out);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.bits_out, 0u);
    // Fewer than traceback + 8 steps: still nothing.
    std::vector<std::uint8_t> tmp(dec->max_stream_output_bytes(soft.size()));
    ASSERT_TRUE(dec->decode(std::span(soft).first(2 * (96 + 7)), tmp).ok);
    d = dec->decide(out);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.bits_out, 0u);
    // A short span is refused and changes nothing.
    ASSERT_TRUE(dec->decode(std::span(soft).subspan(2 * (96 + 7), 2 * 1000), tmp).ok);
    std::vector<std::uint8_t> small(dec->max_flush_bytes() - 1);
    d = dec->decide(small);
    EXPECT_FALSE(d.ok);
    ASSERT_NE(d.error, nullptr);
    EXPECT_NE(std::string(d.error).find("max_flush_bytes"), std::string::npos);
    // 1103 steps in: 1000 decided (traceback 96, rounded down to bytes), then nothing more.
    d = dec->decide(out);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.bits_out, 1000u);
    std::vector<std::uint8_t> got(out.begin(), out.begin() + 125);
    d = dec->decide(out);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.bits_out, 0u);
    // The rest and the flush continue the stream.
    const auto rest = std::span(soft).subspan(2 * 1103);
    auto r = dec->decode(rest, tmp);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.bits_out, 0u);
    r = dec->flush(out);
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.bits_out, n - 1000);
    got.insert(got.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.bits_out / 8));
    EXPECT_EQ(got, s.data);
    // After flush (a reset) there is nothing to decide.
    d = dec->decide(out);
    EXPECT_TRUE(d.ok);
    EXPECT_EQ(d.bits_out, 0u);
    // Block modes refuse.
    for (auto mode : {viterbi_mode::block_terminated, viterbi_mode::block_tailbiting}) {
        viterbi_decoder::config cfg;
        cfg.mode = mode;
        auto blk = create_viterbi_decoder(cfg);
        std::vector<std::uint8_t> o(blk->max_flush_bytes());
        d = blk->decide(o);
        EXPECT_FALSE(d.ok);
        ASSERT_NE(d.error, nullptr);
        EXPECT_NE(std::string(d.error).find("streaming"), std::string::npos);
    }
}

}  // namespace
}  // namespace qlink::modem
