// BER of our Viterbi decoder vs libfec's on the same AWGN/BPSK 8-bit soft inputs (short default point; long points are `slow`).
#include "conv_test_util.hpp"

#include "qlink/modem/conv.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace qlink::modem {
namespace {

using namespace conv_test;

// Received amplitude +-1 -> LLR +-48: noise rarely saturates at +-127 and the
// soft values keep ~5 bits of resolution, as a demodulator would scale them.
constexpr double llr_scale = 48.0;
constexpr std::size_t frame_bits = 4096;

struct ber_point {
    std::size_t bits = 0;
    std::size_t ours_errors = 0, ours_events = 0;
    std::size_t fec_errors = 0, fec_events = 0;
};

// An error event is a run of wrong bits; a new one starts after 2K = 14 right bits.
std::size_t error_events(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::size_t n) {
    std::size_t events = 0, since = 1000;
    for (std::size_t i = 0; i < n; ++i) {
        if (bit_at(a, i) != bit_at(b, i)) {
            if (since > 14) ++events;
            since = 0;
        } else {
            ++since;
        }
    }
    return events;
}

// Runs frames until both decoders have `min_events` error events (or `max_frames`).
ber_point run_point(conv_rate rate, double ebn0_db, std::size_t min_events, std::size_t max_frames,
                    std::uint64_t seed) {
    const conv_code code{conv_convention::ccsds, rate};
    int polys[2] = {};
    libfec_polys(conv_convention::uninverted, polys);
    if (rate == conv_rate::r1_2) libfec_polys(conv_convention::ccsds, polys);
    set_viterbi27_polynomial(polys);  // process-global in libfec; only this test binary touches it
    const double r = static_cast<double>(frame_bits) / static_cast<double>(conv_coded_bits(code, frame_bits));
    viterbi_decoder::config cfg;
    cfg.code = code;
    cfg.mode = viterbi_mode::block_terminated;
    auto ours = create_viterbi_decoder(cfg);
    libfec_decoder fec(frame_bits);
    std::mt19937_64 rng(seed);
    ber_point p;
    std::vector<std::uint8_t> out(frame_bits / 8);
    conv_encoder enc(code);
    std::vector<std::uint8_t> coded(conv_coded_bits(code, frame_bits + 6));
    for (std::size_t f = 0; f < max_frames; ++f) {
        if (p.ours_events >= min_events && p.fec_events >= min_events) break;
        const auto data = random_bytes(frame_bits / 8, rng);
        enc.reset();
        std::size_t w = enc.encode(data, frame_bits, coded);
        w += enc.flush_tail(std::span(coded).subspan(w));
        const auto soft = bpsk_awgn(coded, ebn0_db, r, llr_scale, rng);
        const auto res = ours->decode(soft, out);
        EXPECT_TRUE(res.ok);
        const auto ref = fec.decode(depuncture(code, soft, frame_bits + 6));
        p.bits += frame_bits;
        p.ours_errors += bit_errors(out, data, frame_bits);
        p.ours_events += error_events(out, data, frame_bits);
        p.fec_errors += bit_errors(ref, data, frame_bits);
        p.fec_events += error_events(ref, data, frame_bits);
    }
    std::printf("rate %d  Eb/N0 %.2f dB  bits %zu  ours: %zu errors (BER %.3g, %zu events)  "
                "libfec: %zu errors (BER %.3g, %zu events)\n",
                static_cast<int>(rate), ebn0_db, p.bits, p.ours_errors,
                static_cast<double>(p.ours_errors) / static_cast<double>(p.bits), p.ours_events, p.fec_errors,
                static_cast<double>(p.fec_errors) / static_cast<double>(p.bits), p.fec_events);
    return p;
}

// "No worse than libfec" with a stated tolerance: our bit errors may exceed
// libfec's by 10 % plus three standard deviations of libfec's count (error
// bits come in bursts of ~5, so the event count sets the variance).
void expect_no_worse(const ber_point& p, std::size_t min_events) {
    ASSERT_GE(p.fec_events, min_events) << "not enough error events for a statistical comparison";
    ASSERT_GE(p.ours_events, min_events / 2);
    const double burst = static_cast<double>(p.fec_errors) / static_cast<double>(p.fec_events);
    const double sd = burst * std::sqrt(static_cast<double>(p.fec_events));
    EXPECT_LE(static_cast<double>(p.ours_errors), 1.10 * static_cast<double>(p.fec_errors) + 3.0 * sd);
}

#ifndef QLINK_CONV_BER_LONG

TEST(viterbi_ber, rate_half_at_3db_no_worse_than_libfec) {
    const auto p = run_point(conv_rate::r1_2, 3.0, 100, 400, 1001);
    expect_no_worse(p, 100);
    // The code's own curve: around 1e-4..1e-3 at 3 dB (uncoded BPSK: 2.3e-2).
    const double ber = static_cast<double>(p.ours_errors) / static_cast<double>(p.bits);
    EXPECT_GT(ber, 2e-5);
    EXPECT_LT(ber, 3e-3);
}

#else

TEST(viterbi_ber, rate_half_at_4db_no_worse_than_libfec) {
    const auto p = run_point(conv_rate::r1_2, 4.0, 100, 20000, 2001);
    expect_no_worse(p, 100);
    const double ber = static_cast<double>(p.ours_errors) / static_cast<double>(p.bits);
    EXPECT_LT(ber, 5e-5);  // libfec's ~1.5e-5 here
}

TEST(viterbi_ber, rate_half_at_2_and_3_5db_no_worse_than_libfec) {
    expect_no_worse(run_point(conv_rate::r1_2, 2.0, 100, 2000, 2002), 100);
    expect_no_worse(run_point(conv_rate::r1_2, 3.5, 100, 4000, 2003), 100);
}

TEST(viterbi_ber, punctured_rates_no_worse_than_libfec_on_depunctured_inputs) {
    expect_no_worse(run_point(conv_rate::r2_3, 4.0, 100, 4000, 2004), 100);
    expect_no_worse(run_point(conv_rate::r3_4, 4.5, 100, 4000, 2005), 100);
    expect_no_worse(run_point(conv_rate::r5_6, 5.0, 100, 4000, 2006), 100);
    expect_no_worse(run_point(conv_rate::r7_8, 5.5, 100, 4000, 2007), 100);
}

#endif

}  // namespace
}  // namespace qlink::modem
