// Tests the TM coding chain end to end on every profile, with noise, cuts, slips and inversion.
#include "qlink/modem/coding_chain.hpp"
#include "qlink/sim/awgn.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace qlink::modem {

void PrintTo(const chain_profile& p, std::ostream* os) { *os << p.name; }

namespace {

struct tx_output {
    std::vector<std::vector<std::uint8_t>> data;
    std::vector<std::uint8_t> bits;
};

tx_output transmit(const chain_profile& p, std::size_t frames, std::uint64_t seed) {
    chain_encoder enc(p);
    tx_output t;
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> buf(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    for (std::size_t f = 0; f < frames; ++f) {
        std::vector<std::uint8_t> d(enc.data_bytes());
        for (auto& b : d) b = static_cast<std::uint8_t>(rng());
        const auto r = enc.encode(d, buf);
        EXPECT_TRUE(r.ok) << (r.error ? r.error : "");
        t.bits.insert(t.bits.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bits));
        t.data.push_back(std::move(d));
    }
    const auto r = enc.finish(buf);
    EXPECT_TRUE(r.ok);
    t.bits.insert(t.bits.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bits));
    return t;
}

struct rx_output {
    std::vector<std::vector<std::uint8_t>> good;  // data of frames with report.ok
    std::vector<chain_frame_report> reports;
    chain_decoder_counters counters;
};

rx_output receive(const chain_profile& p, const std::vector<llr_t>& soft, std::size_t chunk = 5000) {
    chain_decoder::config c;
    c.profile = p;
    chain_decoder dec(c);
    const std::size_t cap = dec.frames_per_push();
    std::vector<std::uint8_t> out(cap * dec.data_bytes());
    std::vector<chain_frame_report> reps(cap);
    rx_output o;
    auto collect = [&](const chain_decoder::result& r) {
        EXPECT_TRUE(r.ok);
        for (std::size_t f = 0; f < r.frames; ++f) {
            o.reports.push_back(reps[f]);
            if (reps[f].ok)
                o.good.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(f * dec.data_bytes()),
                                    out.begin() + static_cast<std::ptrdiff_t>((f + 1) * dec.data_bytes()));
        }
    };
    for (std::size_t pos = 0; pos < soft.size();) {
        const std::size_t n = std::min(chunk, soft.size() - pos);
        const auto r = dec.push(std::span<const llr_t>(soft).subspan(pos, n), out, reps);
        collect(r);
        EXPECT_TRUE(r.consumed > 0 || n == 0);
        if (r.consumed == 0) break;
        pos += r.consumed;
    }
    collect(dec.finish(out, reps));
    o.counters = dec.counters();
    return o;
}

std::vector<llr_t> clean_soft(const std::vector<std::uint8_t>& bits) {
    std::vector<llr_t> s(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) s[i] = bit_to_llr(bits[i], 40);
    return s;
}

// How many of the sent frames came back intact, in order.
std::size_t matched(const tx_output& t, const rx_output& r) {
    std::size_t m = 0, j = 0;
    for (const auto& g : r.good)
        for (; j < t.data.size(); ++j)
            if (t.data[j] == g) {
                ++m;
                ++j;
                break;
            }
    return m;
}

class chain_profiles : public ::testing::TestWithParam<chain_profile> {};

TEST_P(chain_profiles, noiseless_round_trip) {
    const auto& p = GetParam();
    const auto t = transmit(p, 6, 1);
    const auto r = receive(p, clean_soft(t.bits));
    ASSERT_EQ(r.good.size(), 6u);
    EXPECT_EQ(matched(t, r), 6u);
    EXPECT_EQ(r.counters.rs_corrected, 0u);
    EXPECT_EQ(r.counters.realignments, 0u);
    EXPECT_EQ(r.counters.frames_ok, 6u);
    // Channel bits per frame as the profile says (on average).
    EXPECT_NEAR(static_cast<double>(t.bits.size()) / 6.0, channel_bits_per_frame(p),
                0.02 * channel_bits_per_frame(p) + static_cast<double>(interleaver_pair_delay(p.interleaver)) / 6.0 + 4);
}

TEST_P(chain_profiles, awgn_with_corrections) {
    const auto& p = GetParam();
    const auto t = transmit(p, 8, 2);
    sim::bpsk_awgn_channel::config cc;
    cc.code_rate = information_rate(p);
    // Enough noise for channel errors the chain must correct, not so much that frames fail.
    cc.ebn0_db = p.inner_conv ? (p.conv.rate == conv_rate::r1_2 ? 3.5 : 6.0) : 8.0;
    cc.seed = 3;
    sim::bpsk_awgn_channel ch(cc);
    std::vector<llr_t> soft(t.bits.size());
    const auto cr = ch.transmit(t.bits, soft);
    EXPECT_GT(cr.hard_errors, 20u);  // seeded: 30 for the sparsest case (no inner code, 8 dB)
    const auto r = receive(p, soft);
    EXPECT_EQ(matched(t, r), 8u);
    if (!p.inner_conv) {
        EXPECT_GT(r.counters.rs_corrected, 0u);
    }
}

TEST_P(chain_profiles, inverted_stream_decodes) {
    const auto& p = GetParam();
    const auto t = transmit(p, 5, 4);
    auto soft = clean_soft(t.bits);
    for (auto& v : soft) v = static_cast<llr_t>(-v);
    const auto r = receive(p, soft);
    EXPECT_EQ(matched(t, r), 5u);
    ASSERT_FALSE(r.reports.empty());
    EXPECT_TRUE(r.reports.back().sync.inverted);
    EXPECT_GE(r.counters.sync.inversions, 1u);
}

INSTANTIATE_TEST_SUITE_P(builtin, chain_profiles,
                         ::testing::ValuesIn(builtin_profiles().begin(), builtin_profiles().end()),
                         [](const auto& pi) {
                             std::string n = pi.param.name;
                             for (auto& ch : n)
                                 if (ch == '-') ch = '_';
                             return n;
                         });

TEST(chain, stream_cut_mid_frame_with_odd_offset_realigns) {
    const auto& p = *find_profile(default_profile_name);
    const auto t = transmit(p, 10, 5);
    auto soft = clean_soft(t.bits);
    soft.erase(soft.begin(), soft.begin() + 5001);  // odd: the symbol pairs are split
    const auto r = receive(p, soft);
    EXPECT_GE(r.counters.realignments, 1u);
    // Frame 0 is cut, frame 1 passes while the wrong pair alignment is tried.
    EXPECT_GE(matched(t, r), 7u);
    EXPECT_EQ(r.good.back(), t.data.back());
}

TEST(chain, slips_noise_and_inversion_together) {
    const auto& p = *find_profile(default_profile_name);
    const auto t = transmit(p, 16, 6);
    sim::bpsk_awgn_channel::config cc;
    cc.code_rate = information_rate(p);
    cc.ebn0_db = 4.5;
    sim::bpsk_awgn_channel ch(cc);
    std::vector<llr_t> soft(t.bits.size());
    ch.transmit(t.bits, soft);
    const std::size_t fl = static_cast<std::size_t>(channel_bits_per_frame(p));
    soft.erase(soft.begin() + static_cast<std::ptrdiff_t>(4 * fl + 333));               // one symbol lost
    soft.insert(soft.begin() + static_cast<std::ptrdiff_t>(9 * fl + 70), 3, llr_t{5});  // three symbols gained
    for (std::size_t i = 12 * fl + 1000; i < soft.size(); ++i) soft[i] = static_cast<llr_t>(-soft[i]);
    const auto r = receive(p, soft, 777);
    // A slip costs the frame it hits, the flywheel and one alignment trial:
    // about three frames; the inversion costs the frame it hits.
    EXPECT_GE(matched(t, r), 8u);
    EXPECT_EQ(r.good.back(), t.data.back());
    EXPECT_GE(r.counters.realignments, 1u);
    EXPECT_GE(r.counters.sync.inversions, 1u);
}

TEST(chain, rs_corrects_and_reports_hard_failures) {
    auto p = *find_profile("ccsds-tm-rs223i4");
    const auto t = transmit(p, 3, 7);
    auto soft = clean_soft(t.bits);
    const std::size_t period = sync_period_bits(p);
    // Frame 0: 10 byte errors (correctable, within 16 per codeword); frame 1: 100 (not).
    for (int k = 0; k < 10; ++k) soft[32 + 8 * static_cast<std::size_t>(k) * 7] *= -1;
    for (int k = 0; k < 100; ++k) soft[period + 32 + 8 * static_cast<std::size_t>(k)] *= -1;
    const auto r = receive(p, soft);
    ASSERT_EQ(r.reports.size(), 3u);
    EXPECT_TRUE(r.reports[0].ok);
    EXPECT_EQ(r.reports[0].rs_corrected, 10u);
    EXPECT_FALSE(r.reports[1].ok);
    EXPECT_FALSE(r.reports[1].rs_ok);
    EXPECT_GE(r.reports[1].rs_failed_codewords, 1u);
    EXPECT_TRUE(r.reports[2].ok);
    EXPECT_EQ(r.counters.rs_failed_frames, 1u);
    EXPECT_EQ(matched(t, r), 2u);
}

TEST(chain, encoder_output_matches_independent_construction) {
    // Without inner code the channel bits are ASM + randomize(RS(data || CRC)):
    // rebuilt here from the block APIs and the published constants.
    const auto& p = *find_profile("ccsds-tm-rs223i4");
    chain_encoder enc(p);
    std::vector<std::uint8_t> data(enc.data_bytes());
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7 + 1);
    std::vector<std::uint8_t> bits(enc.max_frame_bits());
    ASSERT_EQ(enc.encode(data, bits).bits, 32u + 8u * 1020u);
    std::vector<std::uint8_t> packed(4 + 1020);
    pack_bits(std::span<const std::uint8_t>(bits).first(packed.size() * 8), packed);
    EXPECT_EQ(packed[0], 0x1A);
    EXPECT_EQ(packed[3], 0x1D);
    // First randomizer bytes are FF 48 0E C0: data bytes come back by xor.
    EXPECT_EQ(packed[4] ^ 0xFF, data[0]);
    EXPECT_EQ(packed[5] ^ 0x48, data[1]);
    EXPECT_EQ(packed[6] ^ 0x0E, data[2]);
    EXPECT_EQ(packed[7] ^ 0xC0, data[3]);
}

TEST(chain, bad_input_is_an_error_not_a_crash) {
    const auto& p = *find_profile(default_profile_name);
    chain_encoder enc(p);
    std::vector<std::uint8_t> small(10), bits(enc.max_frame_bits());
    EXPECT_FALSE(enc.encode(small, bits).ok);
    std::vector<std::uint8_t> data(enc.data_bytes());
    EXPECT_FALSE(enc.encode(data, std::span(bits).first(100)).ok);
    chain_decoder::config c;
    c.profile = p;
    chain_decoder dec(c);
    std::vector<llr_t> garbage(100000);
    std::mt19937 rng(1);
    for (auto& g : garbage) g = static_cast<llr_t>(static_cast<int>(rng() % 256) - 128);
    std::vector<std::uint8_t> out(dec.frames_per_push() * dec.data_bytes());
    std::vector<chain_frame_report> reps(dec.frames_per_push());
    const auto r = dec.push(garbage, out, reps);
    EXPECT_EQ(r.consumed, garbage.size());
    EXPECT_GT(dec.counters().realignments, 0u);
    // No room: nothing consumed, says so.
    const auto r2 = dec.push(garbage, std::span(out).first(1), reps);
    EXPECT_TRUE(r2.output_full);
    EXPECT_EQ(r2.consumed, 0u);
    chain_profile bad = p;
    bad.rs_e = 10;
    EXPECT_THROW(chain_encoder{bad}, std::invalid_argument);
    c.profile = bad;
    EXPECT_THROW(chain_decoder{c}, std::invalid_argument);
}

TEST(chain, profiles_table) {
    ASSERT_GE(builtin_profiles().size(), 4u);
    EXPECT_EQ(builtin_profiles()[0].name, default_profile_name);
    EXPECT_EQ(frame_bytes(builtin_profiles()[0]), 892u);
    EXPECT_EQ(frame_data_bytes(builtin_profiles()[0]), 890u);
    EXPECT_EQ(codeblock_bytes(builtin_profiles()[0]), 1020u);
    EXPECT_EQ(find_profile("nope"), nullptr);
    EXPECT_EQ(frame_bytes(*find_profile("ccsds-tm-rs239i5-conv34")), 5u * 239u);
    for (const auto& p : builtin_profiles()) EXPECT_EQ(validate_profile(p), "") << p.name;
}

}  // namespace
}  // namespace qlink::modem
