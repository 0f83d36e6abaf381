// Selective-repeat ARQ in simulated time: lossy fading downlink, lossy return link, pass reports.
#include "qlink/modem/arq.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <random>
#include <stdexcept>
#include <vector>

namespace {

using namespace qlink::modem;
using namespace std::chrono_literals;

// Content is a function of (stream, offset) so the sink can check every byte without a copy of
// the stream.
std::uint8_t pattern(std::uint16_t stream, std::uint64_t offset)
{
    std::uint64_t x = (offset + 0x9E3779B97F4A7C15ull * (stream + 1u)) * 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return static_cast<std::uint8_t>(x ^ (x >> 17));
}

struct checking_sink : arq_receiver::sink {
    std::vector<std::uint64_t> next;
    std::uint64_t errors = 0;
    explicit checking_sink(std::size_t streams) : next(streams, 0) {}
    void deliver(std::uint16_t stream, std::uint64_t offset, std::span<const std::uint8_t> data) override
    {
        if (stream >= next.size() || offset != next[stream]) {
            ++errors;
            return;
        }
        for (std::size_t i = 0; i < data.size(); ++i) {
            if (data[i] != pattern(stream, offset + i)) {
                ++errors;
                return;
            }
        }
        next[stream] += data.size();
    }
};

struct channel_config {
    double down_loss = 0.30;
    double up_loss = 0.10;
    arq_time one_way = 5ms;
    arq_time slot = 20us;                  // one downlink frame per slot (50 kframe/s)
    arq_time mean_fade_gap = 150ms;        // exponential gaps between fades
    arq_time fade_min = 10ms;
    arq_time fade_max = 500ms;
    arq_time down_cut = arq_time::max();   // downlink dead from here on
    arq_time up_cut = arq_time::max();     // return link dead from here on
};

// Fades hit both directions (a cloud over the ground station); independent frame losses on top.
class sim_link {
public:
    sim_link(const channel_config& c, std::uint64_t seed) : c_(c), rng_(seed) { next_fade(arq_time{0}); }

    bool in_fade(arq_time t)
    {
        while (t >= fade_end_) {
            next_fade(fade_end_);
        }
        return t >= fade_start_;
    }
    bool down_ok(arq_time t) { return t < c_.down_cut && !in_fade(t) && u_(rng_) >= c_.down_loss; }
    bool up_ok(arq_time t) { return t < c_.up_cut && !in_fade(t) && u_(rng_) >= c_.up_loss; }

    unsigned fades = 0;
    arq_time longest_fade{0};

private:
    void next_fade(arq_time from)
    {
        std::exponential_distribution<double> gap(1.0 / std::chrono::duration<double>(c_.mean_fade_gap).count());
        std::uniform_int_distribution<std::int64_t> len(c_.fade_min.count(), c_.fade_max.count());
        fade_start_ = from + std::chrono::duration_cast<arq_time>(std::chrono::duration<double>(gap(rng_)));
        const arq_time l{len(rng_)};
        fade_end_ = fade_start_ + l;
        ++fades;
        longest_fade = std::max(longest_fade, l);
    }

    channel_config c_;
    std::mt19937_64 rng_;
    std::uniform_real_distribution<double> u_{0.0, 1.0};
    arq_time fade_start_{0};
    arq_time fade_end_{0};
};

struct run_result {
    arq_time end{0};
    unsigned fades_seen = 0;
    arq_time longest_fade{0};
};

// Runs until every submitted byte is acknowledged or `stop` is reached. `total` bytes per stream
// are offered in chunks as the window frees up.
run_result run(arq_sender& tx, arq_receiver& rx, const channel_config& cc, std::uint64_t seed, std::size_t streams,
               std::uint64_t total, arq_time stop, std::vector<std::uint64_t>& accepted)
{
    sim_link link(cc, seed);
    struct in_air {
        arq_time at;
        std::vector<std::uint8_t> bytes;
    };
    std::deque<in_air> down, up;
    std::vector<std::uint8_t> frame(arq_data_header_bytes + 1024), ack(rx.ack_bytes()), chunk(64 * 1024);
    accepted.assign(streams, 0);
    arq_time t{0};
    run_result rr;
    std::size_t turn = 0;
    auto send_ack = [&](arq_time now) {
        const std::size_t n = rx.build_ack(now, ack);
        if (n != 0 && link.up_ok(now)) {
            up.push_back({now + cc.one_way, std::vector<std::uint8_t>(ack.begin(), ack.begin() + static_cast<long>(n))});
        }
    };
    for (; t < stop; t += cc.slot) {
        // Offer data round-robin over the streams while the window has room.
        for (std::size_t k = 0; k < streams && tx.free_segments() > 0; ++k) {
            const auto s = static_cast<std::uint16_t>((turn + k) % streams);
            const std::uint64_t left = total - accepted[s];
            if (left == 0) {
                continue;
            }
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunk.size()));
            for (std::size_t i = 0; i < n; ++i) {
                chunk[i] = pattern(s, accepted[s] + i);
            }
            accepted[s] += tx.submit(s, std::span(chunk.data(), n));
        }
        ++turn;
        while (!down.empty() && down.front().at <= t) {
            if (rx.on_frame(t, down.front().bytes).ack_now) {
                send_ack(t);
            }
            down.pop_front();
        }
        if (rx.ack_due(t)) {
            send_ack(t);
        }
        while (!up.empty() && up.front().at <= t) {
            tx.on_ack(t, up.front().bytes);
            up.pop_front();
        }
        const auto r = tx.poll_transmit(t, frame);
        EXPECT_FALSE(r.error);
        if (r.bytes != 0 && link.down_ok(t)) {
            down.push_back({t + cc.one_way, std::vector<std::uint8_t>(frame.begin(), frame.begin() + static_cast<long>(r.bytes))});
        }
        bool all_in = true;
        for (std::size_t s = 0; s < streams; ++s) {
            all_in = all_in && accepted[s] == total;
        }
        if (all_in && tx.idle()) {
            break;
        }
    }
    rr.end = t;
    rr.fades_seen = 0;
    // Count only fades that started during the run.
    rr.fades_seen = link.fades;
    rr.longest_fade = link.longest_fade;
    return rr;
}

void deliver_everything(std::uint64_t total_per_stream, std::uint64_t seed)
{
    const std::size_t streams = 2;
    arq_sender tx({});
    checking_sink sink(16);
    arq_receiver rx({}, sink);
    channel_config cc;
    std::vector<std::uint64_t> accepted;
    const run_result rr = run(tx, rx, cc, seed, streams, total_per_stream, arq_time(std::chrono::hours(1)), accepted);

    EXPECT_EQ(sink.errors, 0u);
    EXPECT_EQ(rx.counters().malformed, 0u);
    for (std::uint16_t s = 0; s < streams; ++s) {
        EXPECT_EQ(accepted[s], total_per_stream);
        EXPECT_EQ(sink.next[s], total_per_stream) << "stream " << s;
        EXPECT_EQ(rx.delivered_offset(s), total_per_stream);
    }
    EXPECT_TRUE(tx.idle());
    EXPECT_TRUE(tx.pass_report().empty());
    // The channel really was hostile: many retransmissions, outages long enough to make the
    // sender pause and probe, and it came back each time.
    const auto& c = tx.counters();
    EXPECT_GT(c.retransmissions, c.segments_sent / 4);
    EXPECT_GT(c.probes, 0u);
    EXPECT_GE(rr.fades_seen, 3u);
    EXPECT_GE(rr.longest_fade, 300ms);
    EXPECT_GT(rx.counters().duplicates, 0u); // lost acks cause spurious retransmissions, dropped here
    EXPECT_GT(c.rtt_samples, 1000u);
    // SRTT converges to the 10 ms round trip (plus at most one slot of queueing per direction).
    EXPECT_GE(tx.srtt(), 10ms);
    EXPECT_LE(tx.srtt(), 10ms + 200us);
}

TEST(arq, delivers_10mb_exactly_once_in_order_through_30pct_loss_and_fades)
{
    deliver_everything(5'000'000, 1);
}

// About 5 s under ASan, so it stays in the default run.
TEST(arq, delivers_100mb_exactly_once_in_order_through_30pct_loss_and_fades)
{
    deliver_everything(50'000'000, 2);
}

// What the receiver lacks, per stream, as ranges: [delivered, accepted).
std::vector<arq_range> lacking(const arq_receiver& rx, const std::vector<std::uint64_t>& accepted)
{
    std::vector<arq_range> out;
    for (std::uint16_t s = 0; s < accepted.size(); ++s) {
        if (rx.delivered_offset(s) < accepted[s]) {
            out.push_back({s, rx.delivered_offset(s), accepted[s] - rx.delivered_offset(s)});
        }
    }
    return out;
}

TEST(arq, pass_cut_short_report_matches_exactly_what_receiver_lacks)
{
    for (std::uint64_t seed = 10; seed < 16; ++seed) {
        arq_sender tx({});
        checking_sink sink(16);
        arq_receiver rx({}, sink);
        channel_config cc;
        // The downlink is lost mid-transfer; the return link lives on until the pass ends, so the
        // receiver's repeated acks bring the sender up to date.
        cc.down_cut = arq_time(std::chrono::milliseconds(50 + 40 * static_cast<int>(seed - 10)));
        std::vector<std::uint64_t> accepted;
        run(tx, rx, cc, seed, 3, 4'000'000, cc.down_cut + 1500ms, accepted);

        const auto report = tx.pass_report();
        const auto lack = lacking(rx, accepted);
        ASSERT_FALSE(lack.empty());
        EXPECT_EQ(report, lack) << "seed " << seed;
        EXPECT_EQ(sink.errors, 0u);
        EXPECT_TRUE(tx.probing()); // still trying, never gave up
    }
}

TEST(arq, pass_cut_in_both_directions_report_never_undercounts)
{
    for (std::uint64_t seed = 20; seed < 26; ++seed) {
        arq_sender tx({});
        checking_sink sink(16);
        arq_receiver rx({}, sink);
        channel_config cc;
        cc.down_cut = arq_time(std::chrono::milliseconds(60 + 40 * static_cast<int>(seed - 20)));
        cc.up_cut = cc.down_cut;
        std::vector<std::uint64_t> accepted;
        run(tx, rx, cc, seed, 2, 4'000'000, cc.down_cut + 500ms, accepted);

        const auto report = tx.pass_report();
        const auto lack = lacking(rx, accepted);
        // Acks in the air at the cut are lost, so the sender may think less was delivered than
        // was: each reported range must cover the lacking one and end at the accepted end.
        ASSERT_EQ(report.size(), lack.size()) << "seed " << seed;
        for (std::size_t i = 0; i < report.size(); ++i) {
            EXPECT_EQ(report[i].stream, lack[i].stream);
            EXPECT_LE(report[i].offset, lack[i].offset);
            EXPECT_EQ(report[i].offset + report[i].length, lack[i].offset + lack[i].length);
            // ... and by no more than the acks of one round trip could have carried.
            EXPECT_LE(lack[i].offset - report[i].offset, 2u * 1024u * 1024u);
        }
    }
}

TEST(arq, garbage_and_truncated_frames_are_counted_not_crashing)
{
    arq_sender tx({});
    checking_sink sink(16);
    arq_receiver rx({}, sink);
    std::mt19937_64 rng(7);
    std::vector<std::uint8_t> buf(2048);
    for (int i = 0; i < 20000; ++i) {
        const std::size_t n = rng() % buf.size();
        for (std::size_t k = 0; k < n; ++k) {
            buf[k] = static_cast<std::uint8_t>(rng());
        }
        if (n > 0 && (i & 1)) {
            buf[0] = (i & 2) ? arq_type_data : arq_type_ack;
        }
        rx.on_frame(arq_time{i}, std::span(buf.data(), n));
        tx.on_ack(arq_time{i}, std::span(buf.data(), n));
    }
    EXPECT_EQ(sink.errors, 0u);
    EXPECT_GT(rx.counters().malformed, 0u);
    EXPECT_GT(tx.counters().acks_rejected, 0u);
    EXPECT_TRUE(tx.idle()); // random acks cannot acknowledge data that was never sent
    std::vector<std::uint8_t> small(10);
    EXPECT_TRUE(tx.poll_transmit(0ns, small).error);
    EXPECT_EQ(tx.submit(99, std::span(buf.data(), 10)), 0u);
}

TEST(arq, bad_config_throws_with_key_name)
{
    arq_sender::config c;
    c.window = 1000;
    EXPECT_THROW(arq_sender{c}, std::invalid_argument);
    checking_sink sink(1);
    arq_receiver::config r;
    r.sack_bits = 12;
    EXPECT_THROW((arq_receiver{r, sink}), std::invalid_argument);
}

TEST(arq, window_for_leo_round_trip)
{
    // 2000 km slant range, ~13.3 ms round trip, 1 Gbit/s of 1 KiB frames.
    EXPECT_EQ(arq_window_for(13333us, 1e9 / 8192.0), 2048u);
    EXPECT_EQ(arq_window_for(1ms, 1000.0), 1u);
}

} // namespace
