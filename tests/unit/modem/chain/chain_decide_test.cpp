// Tests the chain decoder's Viterbi decision at the end of each push: frame latency in frames, decide off, random pushes.
#include "qlink/modem/coding_chain.hpp"
#include "qlink/sim/awgn.hpp"
#include "unit/modem/chain/chain_tx.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace qlink::modem {
namespace {

using test::transmit;

std::vector<llr_t> clean_soft(const std::vector<std::uint8_t>& bits) {
    std::vector<llr_t> s(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) s[i] = bit_to_llr(bits[i], 40);
    return s;
}

// A decoder with its output buffers, collecting the good frames' data.
struct rx {
    chain_decoder dec;
    std::vector<std::uint8_t> out;
    std::vector<chain_frame_report> reps;
    std::vector<std::vector<std::uint8_t>> good;
    std::size_t frames = 0;

    explicit rx(const chain_decoder::config& c)
        : dec(c), out(dec.frames_per_push() * dec.data_bytes()), reps(dec.frames_per_push()) {}

    void collect(const chain_decoder::result& r) {
        EXPECT_TRUE(r.ok) << (r.error ? r.error : "");
        for (std::size_t f = 0; f < r.frames; ++f) {
            ++frames;
            if (reps[f].ok)
                good.emplace_back(out.begin() + static_cast<std::ptrdiff_t>(f * dec.data_bytes()),
                                  out.begin() + static_cast<std::ptrdiff_t>((f + 1) * dec.data_bytes()));
        }
    }
    // Everything of `soft` through push() (several pushes only when the output fills).
    void push(std::span<const llr_t> soft) {
        for (std::size_t pos = 0;;) {
            const auto r = dec.push(soft.subspan(pos), out, reps);
            collect(r);
            pos += r.consumed;
            if (pos >= soft.size() || !r.ok) break;
            ASSERT_TRUE(r.output_full);
        }
    }
    void finish() { collect(dec.finish(out, reps)); }
};

chain_decoder::config config_for(const std::string& profile, bool decide) {
    chain_decoder::config c;
    c.profile = *find_profile(profile);
    c.viterbi_decide_on_push = decide;
    return c;
}

class chain_decide : public ::testing::TestWithParam<std::string> {};

TEST_P(chain_decide, frames_leave_with_the_push_that_completes_them_plus_a_traceback) {
    // Frame k's symbols and 2 x traceback coded symbols (r=1/2: traceback
    // decoded bits, which hold the next marker) pushed in random pieces: after
    // the push that ends there, frames 0..k are out; two symbols short of it,
    // frame k is not (its last bit is not decided yet). At r=3/4 the 192 symbols
    // are 144 trellis steps.
    const auto c = config_for(GetParam(), true);
    ASSERT_EQ(c.viterbi_window, 32768u);
    const auto t = transmit(c.profile, 7, 1);
    const auto soft = clean_soft(t.bits);
    rx r(c);
    ASSERT_LE(r.dec.decide_frames(), r.dec.frames_per_push());
    std::mt19937_64 rng(2);
    const std::size_t lag = 2 * c.viterbi_traceback;
    std::size_t pos = 0;
    for (std::size_t k = 0; k < t.data.size(); ++k) {
        const std::size_t target = t.frame_end[k] + lag;
        if (target > soft.size()) break;  // the last frame: the stream ends before (finish() has it)
        while (pos + 2 < target) {
            const std::size_t n = std::min<std::size_t>(1 + rng() % 3000, target - 2 - pos);
            r.push(std::span(soft).subspan(pos, n));
            pos += n;
        }
        // (Punctured: 2 x traceback symbols are more than traceback + 8 steps, so the frame may be out already.)
        if (c.profile.conv.rate == conv_rate::r1_2) {
            EXPECT_EQ(r.frames, k) << "frame " << k << " out before its last bit could be decided";
        }
        r.push(std::span(soft).subspan(pos, 2));
        pos += 2;
        ASSERT_EQ(r.frames, k + 1) << "frame " << k << " held back";
        EXPECT_EQ(r.good.back(), t.data[k]);
    }
    EXPECT_GE(r.frames, t.data.size() - 1);
    r.push(std::span(soft).subspan(pos));
    r.finish();
    EXPECT_EQ(r.good, t.data);
    EXPECT_EQ(r.dec.counters().realignments, 0u);
}

TEST_P(chain_decide, without_decide_frames_wait_for_the_window) {
    // Same pushes, decide off: nothing comes out until a whole window (32768
    // decoded bits + traceback, 4 frames of I=4, 16 of I=1) has arrived, and
    // frames come out in bursts of a window; finish() delivers the rest.
    const auto c = config_for(GetParam(), false);
    if (c.profile.conv.rate != conv_rate::r1_2) GTEST_SKIP() << "the window arithmetic below is for r=1/2";
    const auto t = transmit(c.profile, 7, 1);
    const auto soft = clean_soft(t.bits);
    rx r(c);
    const std::size_t window_symbols = 2 * (c.viterbi_window + c.viterbi_traceback);
    std::size_t pos = 0;
    for (std::size_t k = 0; k < t.data.size(); ++k) {
        const std::size_t target = std::min(t.frame_end[k] + 2 * c.viterbi_traceback, soft.size());
        r.push(std::span(soft).subspan(pos, target - pos));
        pos = target;
        // Frames whose bits lie in the windows decided so far (window decisions are whole windows).
        const std::size_t decided_bits = pos >= window_symbols ? (pos / 2 - c.viterbi_traceback) / c.viterbi_window *
                                                                     c.viterbi_window
                                                               : 0;
        std::size_t expect = 0;
        while (expect < t.data.size() && t.frame_end[expect] / 2 <= decided_bits) ++expect;
        EXPECT_EQ(r.frames, expect) << "after frame " << k;
        if (k == 0) {
            EXPECT_EQ(r.frames, 0u) << "frame 0 came out without a window";
        }
    }
    r.push(std::span(soft).subspan(pos));
    r.finish();
    EXPECT_EQ(r.good, t.data);
}

INSTANTIATE_TEST_SUITE_P(conv, chain_decide,
                         ::testing::Values(std::string("ccsds-tm-rs223i1-conv12"), std::string("ccsds-tm-rs223i4-conv12"),
                                           std::string("ccsds-tm-rs239i5-conv34")),
                         [](const auto& p) {
                             return p.param == "ccsds-tm-rs223i1-conv12"   ? std::string("r12_I1")
                                    : p.param == "ccsds-tm-rs223i4-conv12" ? std::string("r12_I4")
                                                                           : std::string("r34_I5");
                         });

TEST(chain_decide_stream, random_push_sizes_deliver_every_frame_of_one_big_push) {
    // A noisy stream (RS corrects) cut into random pushes, tiny ones included
    // (decides of nothing or a few bytes), against the same stream in one push;
    // both with decide on, for r=1/2 I=4 and the punctured r=3/4.
    for (const std::string name : {"ccsds-tm-rs223i4-conv12", "ccsds-tm-rs239i5-conv34"}) {
        const auto c = config_for(name, true);
        const auto t = transmit(c.profile, 10, 3);
        sim::bpsk_awgn_channel::config cc;
        cc.code_rate = information_rate(c.profile);
        cc.ebn0_db = c.profile.conv.rate == conv_rate::r1_2 ? 3.5 : 4.5;
        cc.seed = 4;
        sim::bpsk_awgn_channel ch(cc);
        std::vector<llr_t> soft(t.bits.size());
        const auto cr = ch.transmit(t.bits, soft);
        EXPECT_GT(cr.hard_errors, 100u);
        rx whole(c);
        whole.push(soft);
        whole.finish();
        EXPECT_EQ(whole.good, t.data) << name;
        std::mt19937_64 rng(5);
        rx cut(c);
        for (std::size_t pos = 0; pos < soft.size();) {
            const std::size_t n = std::min<std::size_t>(rng() % 4 == 0 ? rng() % 20 : 1 + rng() % 6000, soft.size() - pos);
            cut.push(std::span(soft).subspan(pos, n));
            pos += n;
        }
        cut.finish();
        EXPECT_EQ(cut.good, t.data) << name;
        EXPECT_EQ(cut.frames, t.data.size()) << name;
        EXPECT_GT(cut.dec.counters().rs_corrected, 0u) << name;
        EXPECT_EQ(cut.dec.counters().frames_no_room, 0u);
    }
}

TEST(chain_decide_stream, a_push_without_room_takes_nothing_then_one_with_room_decides) {
    // An output with room for fewer than decide_frames() frames takes nothing
    // (output_full, nothing decided); with frames_per_push() the same symbols
    // come out as a frame in that push.
    const auto c = config_for("ccsds-tm-rs223i1-conv12", true);
    const auto t = transmit(c.profile, 3, 6);
    const auto soft = clean_soft(t.bits);
    chain_decoder dec(c);
    ASSERT_GT(dec.decide_frames(), 1u);
    std::vector<std::uint8_t> out(dec.frames_per_push() * dec.data_bytes());
    std::vector<chain_frame_report> reps(dec.frames_per_push());
    const std::size_t first = t.frame_end[0] + 2 * c.viterbi_traceback;
    // Room for every slice but not for the decision: the frame stays in.
    std::vector<chain_frame_report> few(dec.decide_frames() - 1);
    auto r = dec.push(std::span(soft).first(first), out, few);
    EXPECT_TRUE(r.ok);
    EXPECT_TRUE(r.output_full);
    EXPECT_EQ(r.consumed, 0u);
    r = dec.push(std::span(soft).first(first), out, reps);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.consumed, first);
    EXPECT_EQ(r.frames, 1u);
    ASSERT_TRUE(reps[0].ok);
    EXPECT_TRUE(std::equal(t.data[0].begin(), t.data[0].end(), out.begin()));
    // An empty push decides too (nothing new: no frame).
    r = dec.push({}, out, reps);
    EXPECT_TRUE(r.ok);
    EXPECT_EQ(r.frames, 0u);
}

}  // namespace
}  // namespace qlink::modem
