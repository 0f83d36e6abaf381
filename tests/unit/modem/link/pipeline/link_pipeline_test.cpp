// TX/RX link pipelines: user data through AWGN and fading channels from sim/, stop-policy hold, stage counters, bad input.
#include "qlink/modem/link_pipeline.hpp"
#include "qlink/modem/space_packet.hpp"
#include "qlink/sim/awgn.hpp"
#include "qlink/sim/fading.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

using namespace qlink::modem;

std::array<std::uint8_t, 32> key_bytes(std::uint32_t id)
{
    std::array<std::uint8_t, 32> k{};
    std::mt19937_64 g(id);
    for (auto& b : k) {
        b = static_cast<std::uint8_t>(g());
    }
    return k;
}

void add_keys(memory_key_source& tx, memory_key_source& rx, std::uint32_t first, std::uint32_t n)
{
    for (std::uint32_t id = first; id < first + n; ++id) {
        tx.add(id, key_bytes(id));
        rx.add(id, key_bytes(id));
    }
}

std::uint64_t fake_ns = 0;  // deterministic "clock" for the stage timing: 10 ns per reading

tx_link_pipeline::config tx_config(const std::string& profile)
{
    tx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    c.sdls.iv_fixed = {1, 2, 3, 4};
    c.sdls.max_frames_per_key = 40;
    c.sdls.announce_frames = 8;
    c.clock_ns = [] { return fake_ns += 10; };
    return c;
}

rx_link_pipeline::config rx_config(const std::string& profile)
{
    rx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    c.sdls.iv_fixed = {1, 2, 3, 4};
    c.clock_ns = [] { return fake_ns += 10; };
    return c;
}

std::vector<std::uint8_t> random_bytes(std::mt19937_64& rng, std::size_t n)
{
    std::vector<std::uint8_t> d(n);
    for (auto& b : d) {
        b = static_cast<std::uint8_t>(rng());
    }
    return d;
}

// Encodes every queued datagram plus `tail_frames` idle frames; returns the channel bits.
std::vector<std::uint8_t> encode_all(tx_link_pipeline& tx, int tail_frames)
{
    std::vector<std::uint8_t> out, block(tx.max_block_bits());
    int idle_left = tail_frames;
    while (idle_left > 0) {
        const auto r = tx.next_block(block);
        EXPECT_TRUE(r.ok) << r.error;
        out.insert(out.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(r.bits));
        if (r.idle) {
            --idle_left;
        }
    }
    block.resize(tx.max_finish_bits());
    const auto r = tx.finish(block);
    out.insert(out.end(), block.begin(), block.begin() + static_cast<std::ptrdiff_t>(r.bits));
    return out;
}

struct received {
    std::vector<std::vector<std::uint8_t>> datagrams;
    aos_receiver::sink sink()
    {
        return [this](std::uint8_t, std::span<const std::uint8_t> p) {
            const auto s = inspect_packet(p);
            datagrams.emplace_back(p.begin() + static_cast<std::ptrdiff_t>(s.header_length), p.end());
        };
    }
};

// Feeds `llr` in uneven slices, as a transport would.
void push_all(rx_link_pipeline& rx, std::span<const llr_t> llr)
{
    std::size_t pos = 0, k = 0;
    while (pos < llr.size()) {
        const std::size_t n = std::min<std::size_t>(1000 + 7919 * (k++ % 5), llr.size() - pos);
        const auto r = rx.push(llr.subspan(pos, n));
        ASSERT_TRUE(r.ok) << r.error;
        ASSERT_EQ(r.consumed, n);
        pos += n;
    }
    ASSERT_TRUE(rx.finish().ok);
}

// Is `got` the sequence `sent` with some elements left out (never changed, duplicated or reordered)?
bool ordered_subset(const std::vector<std::vector<std::uint8_t>>& got, const std::vector<std::vector<std::uint8_t>>& sent)
{
    std::size_t k = 0;
    for (const auto& g : got) {
        while (k < sent.size() && sent[k] != g) {
            ++k;
        }
        if (k == sent.size()) {
            return false;
        }
        ++k;
    }
    return true;
}

class full_chain : public ::testing::TestWithParam<const char*> {};

TEST_P(full_chain, awgn_delivers_the_same_data_across_key_rotations)
{
    const std::string profile = GetParam();
    memory_key_source ktx, krx;
    add_keys(ktx, krx, 1, 40);
    tx_link_pipeline tx(tx_config(profile), &ktx);
    received got;
    rx_link_pipeline rx(rx_config(profile), &krx, got.sink());
    std::mt19937_64 rng(101);
    std::vector<std::vector<std::uint8_t>> sent;
    std::size_t bytes = 0;
    while (bytes < 150000) {
        sent.push_back(random_bytes(rng, rng() % 2500));
        bytes += sent.back().size();
        ASSERT_TRUE(tx.channel(1)->push_datagram(sent.back()));
    }
    const auto bits = encode_all(tx, 3);
    qlink::sim::bpsk_awgn_channel ch({4.0, information_rate(*find_profile(profile)), 24.0f, 7});
    std::vector<llr_t> llr(bits.size());
    ASSERT_TRUE(ch.transmit(bits, llr).ok);
    push_all(rx, llr);

    EXPECT_EQ(got.datagrams, sent);
    EXPECT_GT(ch.totals().hard_errors, bits.size() / 100) << "the channel must have made errors";
    EXPECT_GE(tx.security()->counters().rotations, 3u);
    EXPECT_EQ(rx.security()->counters().rotations, tx.security()->counters().rotations);
    EXPECT_EQ(rx.security()->counters().auth_failures, 0u);
    EXPECT_EQ(rx.frames().lost_frames, 0u);
    // Stage counters: every frame went through every stage, and the injected clock was read.
    const auto& ts = tx.stats();
    EXPECT_EQ(ts.frame_build.calls, ts.frames);
    EXPECT_EQ(ts.encode.calls, ts.frames);
    EXPECT_EQ(ts.protect.calls, ts.frames - ts.idle_frames);
    EXPECT_GT(ts.encode.ns, 0u);
    EXPECT_EQ(rx.stats().frames_ok, ts.frames);
    EXPECT_EQ(rx.stats().frames.calls, ts.frames);
    EXPECT_GT(rx.stats().decode.ns, 0u);
}

INSTANTIATE_TEST_SUITE_P(profiles, full_chain,
                         ::testing::Values("ccsds-tm-rs223i4-conv12", "ccsds-tm-rs223i1-conv12",
                                           "optical-rs223i4-conv12-cil"));

TEST(link_pipeline, fading_channel_loses_frames_never_corrupts_data)
{
    const std::string profile = "ccsds-tm-rs223i4-conv12";
    memory_key_source ktx, krx;
    add_keys(ktx, krx, 1, 40);
    tx_link_pipeline tx(tx_config(profile), &ktx);
    received got;
    rx_link_pipeline rx(rx_config(profile), &krx, got.sink());
    std::mt19937_64 rng(202);
    std::vector<std::vector<std::uint8_t>> sent;
    std::size_t bytes = 0;
    while (bytes < 200000) {
        sent.push_back(random_bytes(rng, rng() % 600));
        bytes += sent.back().size();
        tx.channel(1)->push_datagram(sent.back());
    }
    const auto bits = encode_all(tx, 3);
    // Lognormal scintillation (sigma_I^2 = 0.2) with a coherence time of a few thousand symbols:
    // deep fades take out whole frames, the rest decode.
    qlink::sim::fading_process::config fc;
    fc.scintillation_index = 0.2;
    fc.sample_rate_hz = 1e6;
    fc.coherence_time_s = 4e-3;
    fc.seed = 9;
    auto fading = qlink::sim::create_fading_process(fc);
    std::vector<float> gain(bits.size());
    ASSERT_EQ(fading->generate(gain).written, gain.size());
    qlink::sim::bpsk_awgn_channel ch({5.0, information_rate(*find_profile(profile)), 24.0f, 8});
    std::vector<float> y(bits.size());
    ASSERT_TRUE(ch.transmit(bits, y).ok);
    std::vector<llr_t> llr(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) {
        const float x = bits[i] ? -1.0f : 1.0f;
        // The sim channel's noise, with the signal amplitude scaled by the fade (power gain).
        const float faded = std::sqrt(gain[i]) * x + (y[i] - x);
        llr[i] = quantize_llr(24.0f * faded);
    }
    push_all(rx, llr);

    const auto& fr = rx.frames();
    EXPECT_TRUE(ordered_subset(got.datagrams, sent)) << "a datagram arrived changed, twice or out of order";
    EXPECT_GT(rx.stats().frames_bad + fr.lost_frames, 0u) << "the fades must have cost frames";
    EXPECT_GT(got.datagrams.size(), sent.size() / 2)
        << "most datagrams must still arrive; frames bad " << rx.stats().frames_bad << " of " << tx.stats().frames;
    EXPECT_LT(got.datagrams.size(), sent.size());
    EXPECT_EQ(rx.security()->counters().auth_failures, 0u) << "CRC-checked frames must authenticate";
}

TEST(link_pipeline, reacquires_after_an_outage_of_erasures)
{
    // 40 frames of erasures in the middle of the stream (the relay sends 0 while the link is down):
    // the receiver must find the stream again afterwards and lose only what was in the outage.
    const std::string profile = "ccsds-tm-rs223i4-conv12";
    memory_key_source ktx, krx;
    add_keys(ktx, krx, 1, 40);
    tx_link_pipeline tx(tx_config(profile), &ktx);
    received got;
    rx_link_pipeline rx(rx_config(profile), &krx, got.sink());
    std::mt19937_64 rng(303);
    std::vector<std::vector<std::uint8_t>> sent;
    std::size_t bytes = 0;
    while (bytes < 200000) {
        sent.push_back(random_bytes(rng, 100 + rng() % 200));
        bytes += sent.back().size();
        tx.channel(1)->push_datagram(sent.back());
    }
    const auto bits = encode_all(tx, 3);
    qlink::sim::bpsk_awgn_channel ch({5.0, information_rate(*find_profile(profile)), 24.0f, 13});
    std::vector<llr_t> llr(bits.size());
    ASSERT_TRUE(ch.transmit(bits, llr).ok);
    const std::size_t frame_bits = bits.size() / tx.stats().frames;
    const std::size_t gap_start = bits.size() / 4, gap_len = 40 * frame_bits;
    std::fill_n(llr.begin() + static_cast<std::ptrdiff_t>(gap_start), gap_len, llr_t{0});
    push_all(rx, llr);

    EXPECT_TRUE(ordered_subset(got.datagrams, sent));
    // Lost: the 40 frames of the outage and the frames it cut (datagrams span frames); the chain
    // decoder searches the alignment by itself and replays what it searched, so hardly more.
    const std::size_t lost = sent.size() - got.datagrams.size();
    const std::size_t per_frame = sent.size() / (tx.stats().frames - tx.stats().idle_frames);
    EXPECT_GT(lost, 35 * per_frame);
    EXPECT_LT(lost, 46 * per_frame) << "alignment searches " << rx.chain().realignments;
    EXPECT_GE(rx.chain().realignments, 1u);
    EXPECT_EQ(rx.stats().decoder_restarts, rx.chain().realignments);
    EXPECT_EQ(got.datagrams.back(), sent.back()) << "the end of the stream must arrive";
}

TEST(link_pipeline, stop_policy_holds_the_frame_until_a_key_arrives)
{
    // Frame layer + SDLS alone, lossless: under the stop policy a frame refused for lack of a key
    // keeps its data and goes out first once a key is there.
    const aos_layout layout = sdls_layout(aos_layout{128, 0, 0, 0, true});
    memory_key_source ktx, krx;
    add_keys(ktx, krx, 1, 1);
    sdls_transmitter::config sc;
    sc.layout = layout;
    sc.max_frames_per_key = 10;
    sc.announce_frames = 2;
    sdls_transmitter stx(sc, ktx);
    aos_transmitter::config ac;
    ac.layout = layout;
    ac.spacecraft_id = 3;
    ac.channels = {{1, 0}};
    aos_transmitter tx(ac, &stx);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver srx(rc, krx);
    received got;
    aos_receiver::config arc;
    arc.layout = layout;
    arc.spacecraft_id = 3;
    arc.vcids = {1};
    aos_receiver rx(arc, got.sink(), &srx);

    std::mt19937_64 rng(3);
    std::vector<std::vector<std::uint8_t>> sent;
    for (int i = 0; i < 200; ++i) {
        sent.push_back(random_bytes(rng, rng() % 150));
        tx.channel(1)->push_datagram(sent.back());
    }
    std::vector<std::uint8_t> frame(layout.frame_length);
    int refused = 0, idle_while_held = 0;
    std::uint32_t next_key = 2;
    for (int i = 0; i < 2000; ++i) {
        const auto r = tx.next_frame(frame);
        if (!r.sent) {
            ASSERT_EQ(r.status, security_status::keys_exhausted);
            ASSERT_TRUE(tx.holding());
            ++refused;
            // The channel stays busy with idle frames meanwhile; they do not touch the held frame.
            ASSERT_TRUE(tx.idle_frame(frame).idle);
            rx.on_frame(frame);
            ++idle_while_held;
            if (refused % 5 == 0) {
                add_keys(ktx, krx, next_key++, 1);  // keys trickle in
            }
            continue;
        }
        if (r.idle && !tx.holding() && !tx.channel(1)->has_data()) {
            break;
        }
        rx.on_frame(frame);
    }
    EXPECT_GT(refused, 10);
    EXPECT_GT(idle_while_held, 0);
    EXPECT_EQ(got.datagrams, sent) << "no datagram may be lost while keys were out";
    EXPECT_EQ(rx.counters().lost_frames, 0u);
    EXPECT_EQ(srx.counters().auth_failures, 0u);
    EXPECT_GT(stx.counters().keys_exhausted, 0u);
}

TEST(link_pipeline, bad_input_is_an_error_result_not_a_crash)
{
    memory_key_source ktx, krx;
    EXPECT_THROW(tx_link_pipeline(tx_config("ccsds-tm-rs223i4-conv12"), nullptr), std::invalid_argument);
    EXPECT_THROW(rx_link_pipeline(rx_config("ccsds-tm-rs223i4-conv12"), nullptr, {}), std::invalid_argument);
    auto bad = tx_config("ccsds-tm-rs223i4-conv12");
    bad.profile.rs_interleave = 7;
    EXPECT_THROW(tx_link_pipeline(bad, &ktx), std::invalid_argument);

    add_keys(ktx, krx, 1, 4);
    tx_link_pipeline tx(tx_config("ccsds-tm-rs223i4-conv12"), &ktx);
    std::vector<std::uint8_t> small(10);
    const auto r = tx.next_block(small);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error, nullptr);

    received got;
    rx_link_pipeline rx(rx_config("ccsds-tm-rs223i4-conv12"), &krx, got.sink());
    std::mt19937_64 rng(4);
    std::vector<llr_t> noise(200000);
    for (auto& v : noise) {
        v = static_cast<llr_t>(static_cast<int>(rng() % 255) - 127);
    }
    EXPECT_TRUE(rx.push(noise).ok);
    EXPECT_TRUE(rx.push({}).ok);
    std::vector<std::uint8_t> short_frame(17, 0x55);
    rx.on_frame(short_frame);
    EXPECT_TRUE(got.datagrams.empty());
    EXPECT_EQ(rx.stats().frames_ok, 0u);
    EXPECT_EQ(rx.frames().bad_header, 1u);
}

}  // namespace
