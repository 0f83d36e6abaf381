// link_engine: two engines back to back through seeded AWGN + scintillation with a fade, key rotation, stop policy, pass report, config errors.
#include "qlink/modem/key_source.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/sim/awgn.hpp"
#include "qlink/sim/fading.hpp"
#include "qlink/terminal/link_engine.hpp"
#include "unit/terminal/link/link_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace qlink;
using terminal::link_engine;
using terminal::link_engine_config;
using terminal::link_role;


// memory_key_source behind a mutex: the test thread adds keys while an engine worker takes them.
class locked_keys final : public modem::link_key_source {
public:
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, modem::link_key_length> key) override
    {
        std::lock_guard lk(mu_);
        return inner_.next_key(key);
    }
    bool key_by_id(std::uint32_t id, std::span<std::uint8_t, modem::link_key_length> key) override
    {
        std::lock_guard lk(mu_);
        return inner_.key_by_id(id, key);
    }
    void add(std::uint32_t id, std::span<const std::uint8_t, modem::link_key_length> key)
    {
        std::lock_guard lk(mu_);
        inner_.add(id, key);
    }
    std::size_t size()
    {
        std::lock_guard lk(mu_);
        return inner_.size();
    }

private:
    std::mutex mu_;
    modem::memory_key_source inner_;
};

using key_pair = qlink::test::link_key_pair<locked_keys>;

// Byte `off` of stream `s` of the direction `dir`: content the receiver can check without a copy.
std::uint8_t content(int dir, int s, std::uint64_t off)
{
    return qlink::test::stream_byte(static_cast<std::uint64_t>(dir * 16 + s), off);
}

// One direction of the air: the sender's bits -> BPSK over AWGN (sim::bpsk_awgn_channel) with
// lognormal scintillation (sim::create_fading_process, one gain sample per bit) -> int8 LLRs, erased
// while faded out, delivered after a fixed delay in steps.
class air_direction {
public:
    air_direction(double ebn0_db, double code_rate, std::uint64_t seed, std::size_t delay_steps, double bit_rate)
        : ch_(sim::bpsk_awgn_channel::config{ebn0_db, code_rate, 24.0f, seed}), delay_(delay_steps)
    {
        sim::fading_process::config fc;
        fc.scintillation_index = 0.05;
        fc.coherence_time_s = 2e-3;
        fc.sample_rate_hz = bit_rate;
        fc.seed = seed + 1000;
        fading_ = sim::create_fading_process(fc);
    }
    void carry(link_engine& from, link_engine& to, std::size_t bytes, double t, bool faded, bool cut)
    {
        packed_.resize(bytes);
        bits_.resize(8 * bytes);
        y_.resize(8 * bytes);
        gain_.resize(8 * bytes);
        from.pull_tx_bits(packed_, t);
        for (std::size_t i = 0; i < bits_.size(); ++i) {
            bits_[i] = (packed_[i >> 3] >> (7 - (i & 7))) & 1;
        }
        ch_.transmit(bits_, y_);
        fading_->generate(gain_);
        std::vector<std::int8_t> llr(bits_.size());
        for (std::size_t i = 0; i < llr.size(); ++i) {
            const float x = bits_[i] ? -1.0f : 1.0f;
            // The sim channel's noise with the signal amplitude scaled by the fade (power gain).
            const float v = 24.0f * (std::sqrt(gain_[i]) * x + (y_[i] - x));
            llr[i] = static_cast<std::int8_t>(std::lrint(std::clamp(v, -127.0f, 127.0f)));
        }
        if (faded || cut) {
            std::fill(llr.begin(), llr.end(), std::int8_t{0});  // the relay sends erasures while down
        }
        line_.push_back(std::move(llr));
        if (line_.size() > delay_) {
            if (!cut) {
                to.push_rx_llrs(line_.front(), t);
            }
            line_.pop_front();
        }
    }

private:
    sim::bpsk_awgn_channel ch_;
    std::unique_ptr<sim::fading_process> fading_;
    std::size_t delay_;
    std::vector<std::uint8_t> packed_, bits_;
    std::vector<float> y_, gain_;
    std::deque<std::vector<std::int8_t>> line_;
};

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

struct stream_check {
    std::uint64_t sent = 0, got = 0;
    bool intact = true;
};

struct pair_fixture {
    key_pair down_keys, up_keys;  // space->ground, ground->space
    std::unique_ptr<link_engine> space, ground;
    link_engine_config scfg, gcfg;

    explicit pair_fixture(std::uint32_t down_key_count = 64, std::uint64_t rotate_frames = 40, bool threads = false)
    {
        down_keys.add(1, down_key_count);
        up_keys.add(100001, 256);
        scfg.role = link_role::space;
        scfg.tx_profile = std::string(modem::default_profile_name);
        scfg.rx_profile = "ccsds-tm-rs223i1-conv12";
        scfg.rotate_every_frames = rotate_frames;
        scfg.announce_frames = 8;
        scfg.worker_threads = threads;
        scfg.queue_depth_frames = 4;
        gcfg = scfg;
        gcfg.role = link_role::ground;
        std::swap(gcfg.tx_profile, gcfg.rx_profile);
    }
    void create()
    {
        space = link_engine::create(scfg, down_keys.tx, up_keys.rx);
        ground = link_engine::create(gcfg, up_keys.tx, down_keys.rx);
    }
};

// Reads everything available from `e` on `streams` and checks it against content().
void drain(link_engine& e, int dir, std::vector<stream_check>& chk)
{
    std::vector<std::uint8_t> buf(65536);
    for (std::size_t s = 0; s < chk.size(); ++s) {
        for (;;) {
            const std::size_t n = e.receive(static_cast<std::uint8_t>(s), buf);
            if (n == 0) {
                break;
            }
            for (std::size_t i = 0; i < n; ++i) {
                if (buf[i] != content(dir, static_cast<int>(s), chk[s].got + i)) {
                    chk[s].intact = false;
                }
            }
            chk[s].got += n;
        }
    }
}

// Offers up to 1536 more bytes of each stream (interleaving the streams in the ARQ window); the
// engine takes what its window allows.
void feed(link_engine& e, int dir, std::vector<stream_check>& chk, std::uint64_t total)
{
    std::vector<std::uint8_t> buf(1536);
    for (std::size_t s = 0; s < chk.size(); ++s) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total - chk[s].sent));
        for (std::size_t i = 0; i < n; ++i) {
            buf[i] = content(dir, static_cast<int>(s), chk[s].sent + i);
        }
        chk[s].sent += e.send(static_cast<std::uint8_t>(s), std::span(buf).first(n));
    }
}

constexpr double step_s = 0.001;
constexpr std::size_t down_bytes_per_step = 250;  // 2 Mbit/s coded
constexpr std::size_t up_bytes_per_step = 40;     // 320 kbit/s coded

// false: stages in the calling thread; true: encode/decode on the worker threads.
class link_engine_modes : public ::testing::TestWithParam<bool> {};

TEST_P(link_engine_modes, streams_and_datagrams_cross_awgn_fade_and_key_rotations)
{
    pair_fixture f(64, 40, GetParam());
    f.create();
    const double rate_down = modem::information_rate(*modem::find_profile(f.scfg.tx_profile));
    const double rate_up = modem::information_rate(*modem::find_profile(f.gcfg.tx_profile));
    air_direction down(3.5, rate_down, 11, 5, 2e6), up(3.5, rate_up, 12, 5, 320e3);

    constexpr std::uint64_t down_total = 150000, up_total = 20000;
    std::vector<stream_check> down_chk(2), up_chk(1);
    std::vector<std::vector<std::uint8_t>> dg_sent;
    std::vector<std::vector<std::uint8_t>> dg_got;
    std::mt19937_64 rng(77);
    std::vector<std::uint8_t> dgbuf(70000);
    const double fade_start = 0.8, fade_end = 1.1;
    double t = 0.0;
    bool done = false;
    for (int step = 0; step < 20000 && !done; ++step) {
        t = step * step_s;
        feed(*f.space, 0, down_chk, down_total);
        feed(*f.ground, 1, up_chk, up_total);
        // Datagrams well away from the fade and the first lock; all of them must arrive.
        const bool dg_window = (t > 0.2 && t < 0.6) || (t > 1.4 && t < 1.8);
        if (dg_window && step % 10 == 0) {
            std::vector<std::uint8_t> d(rng() % 3000);
            for (auto& b : d) {
                b = static_cast<std::uint8_t>(rng());
            }
            if (f.space->send_datagram(d)) {
                dg_sent.push_back(std::move(d));
            }
        }
        const bool faded = t >= fade_start && t < fade_end;
        down.carry(*f.space, *f.ground, down_bytes_per_step, t, faded, false);
        up.carry(*f.ground, *f.space, up_bytes_per_step, t, faded, false);
        drain(*f.ground, 0, down_chk);
        drain(*f.space, 1, up_chk);
        for (std::size_t n; (n = f.ground->receive_datagram(dgbuf)) > 0;) {
            dg_got.emplace_back(dgbuf.begin(), dgbuf.begin() + static_cast<std::ptrdiff_t>(n));
        }
        done = t > 2.0 && down_chk[0].got == down_total && down_chk[1].got == down_total && up_chk[0].got == up_total;
    }
    ASSERT_TRUE(done) << "not everything arrived by t=" << t << ": down " << down_chk[0].got << "/" << down_chk[1].got
                      << " up " << up_chk[0].got;
    for (const auto& c : down_chk) {
        EXPECT_TRUE(c.intact);
    }
    EXPECT_TRUE(up_chk[0].intact);
    // Datagrams are not retransmitted: scintillation costs a few; the rest arrive unchanged, in order.
    EXPECT_TRUE(ordered_subset(dg_got, dg_sent)) << "a datagram arrived changed, twice or out of order";
    EXPECT_GT(dg_sent.size(), 50u);
    EXPECT_GE(dg_got.size() * 3, dg_sent.size() * 2) << dg_got.size() << " of " << dg_sent.size() << " datagrams";

    // Let the last acks cross, then nothing may be reported undelivered.
    for (int i = 0; i < 200; ++i) {
        t += step_s;
        down.carry(*f.space, *f.ground, down_bytes_per_step, t, false, false);
        up.carry(*f.ground, *f.space, up_bytes_per_step, t, false, false);
    }
    const auto ss = f.space->stats();
    const auto gs = f.ground->stats();
    EXPECT_TRUE(f.space->finish().empty());
    EXPECT_TRUE(f.ground->finish().empty());

    // The run really exercised what it claims.
    EXPECT_GE(ss.rotations, 5u);
    EXPECT_GE(gs.rx_rotations, 5u);
    EXPECT_GE(gs.rotations, 1u);
    EXPECT_GT(ss.arq_retransmissions, 0u);  // the fade cost frames
    EXPECT_GT(gs.frames_lost + gs.frames_crc_fail, 0u);
    EXPECT_GE(gs.decoder_restarts, 1u) << "the fade must have made the receiver restart its decoder";
    EXPECT_GE(ss.decoder_restarts, 1u);
    EXPECT_EQ(gs.auth_failures, 0u);
    EXPECT_EQ(ss.auth_failures, 0u);
    EXPECT_EQ(ss.bytes_acked, 2 * down_total);
    EXPECT_EQ(gs.bytes_delivered, 2 * down_total);
    EXPECT_EQ(gs.user_bytes_out, 2 * down_total);
    EXPECT_EQ(ss.user_bytes_in, 2 * down_total);
    EXPECT_EQ(gs.bytes_acked, up_total);
    EXPECT_GT(ss.keys_consumed, 5u);
    EXPECT_NE(ss.active_key_id, 0u);
    EXPECT_FALSE(ss.traffic_stopped);
    EXPECT_GT(ss.frames_tx, ss.idle_frames_tx);
}

// The UDP port's datagrams and TUN IP packets share the air but not their queues: each arrives on
// its own channel only, in order, and a channel whose queue is full refuses while the other accepts.
TEST(link_engine, datagram_channels_stay_apart)
{
    pair_fixture f;
    f.scfg.datagram_queue_bytes = 8192;
    f.scfg.max_datagram_bytes = 4096;
    f.scfg.ip_queue_bytes = 8192;
    f.create();
    using terminal::datagram_channel;
    const double rate_down = modem::information_rate(*modem::find_profile(f.scfg.tx_profile));
    const double rate_up = modem::information_rate(*modem::find_profile(f.gcfg.tx_profile));
    air_direction down(8.0, rate_down, 21, 2, 2e6), up(8.0, rate_up, 22, 2, 320e3);
    std::mt19937_64 rng(5);
    auto make = [&](std::uint8_t first, std::size_t n) {
        std::vector<std::uint8_t> d(n);
        for (auto& b : d) {
            b = static_cast<std::uint8_t>(rng());
        }
        d[0] = first;  // 0x45: looks like IPv4, 0x55: user payload; only the channel may tell them apart
        return d;
    };
    std::vector<std::vector<std::uint8_t>> ip_got, user_got;
    std::vector<std::uint8_t> buf(4096);
    double t = 0.0;
    auto run = [&](int steps) {
        for (int step = 0; step < steps; ++step, t += step_s) {
            down.carry(*f.space, *f.ground, down_bytes_per_step, t, false, false);
            up.carry(*f.ground, *f.space, up_bytes_per_step, t, false, false);
            for (std::size_t n; (n = f.ground->receive_datagram(buf, datagram_channel::ip)) > 0;) {
                ip_got.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
            for (std::size_t n; (n = f.ground->receive_datagram(buf)) > 0;) {
                user_got.emplace_back(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
            }
        }
    };
    run(200);  // both receivers locked before anything is sent (datagrams are not retransmitted)
    // Fill the IP channel's queue until it refuses: the user channel still takes datagrams.
    std::vector<std::vector<std::uint8_t>> ip_sent, user_sent;
    for (int i = 0; i < 100; ++i) {
        auto d = make(0x45, 1000);
        if (!f.space->send_datagram(d, datagram_channel::ip)) {
            break;
        }
        ip_sent.push_back(std::move(d));
    }
    ASSERT_EQ(ip_sent.size(), 8u) << "8192-byte queue, 1000-byte packets";
    for (int i = 0; i < 5; ++i) {
        user_sent.push_back(make(0x55, 700 + static_cast<std::size_t>(i)));
        ASSERT_TRUE(f.space->send_datagram(user_sent.back()));
    }
    EXPECT_FALSE(f.space->send_datagram(make(0x45, 1000), datagram_channel::ip));
    EXPECT_FALSE(f.space->send_datagram(make(0x45, 10), static_cast<datagram_channel>(7)));
    run(400);
    EXPECT_EQ(ip_got, ip_sent);
    EXPECT_EQ(user_got, user_sent);
    const auto ss = f.space->stats();
    const auto gs = f.ground->stats();
    EXPECT_EQ(ss.ip_packets_in, 8u);
    EXPECT_EQ(ss.datagrams_in, 5u);
    EXPECT_EQ(gs.ip_packets_out, 8u);
    EXPECT_EQ(gs.datagrams_out, 5u);
    EXPECT_EQ(gs.ip_packets_dropped + gs.datagrams_dropped, 0u);
    EXPECT_EQ(f.ground->receive_datagram(buf, static_cast<datagram_channel>(9)), 0u);
}

TEST(link_engine, pass_cut_short_reports_exactly_what_the_peer_lacks)
{
    pair_fixture f;
    f.create();
    const double rate_down = modem::information_rate(*modem::find_profile(f.scfg.tx_profile));
    const double rate_up = modem::information_rate(*modem::find_profile(f.gcfg.tx_profile));
    air_direction down(4.0, rate_down, 21, 5, 2e6), up(4.0, rate_up, 22, 5, 320e3);
    constexpr std::uint64_t total = 400000;
    std::vector<stream_check> chk(3), none;
    double t = 0.0;
    for (int step = 0; step < 1500; ++step) {
        t = step * step_s;
        feed(*f.space, 0, chk, total);
        const bool cut = t >= 0.6;  // the downlink ends; the return link still carries acks
        down.carry(*f.space, *f.ground, down_bytes_per_step, t, false, cut);
        up.carry(*f.ground, *f.space, up_bytes_per_step, t, false, false);
        drain(*f.ground, 0, chk);
    }
    const auto report = f.space->finish();
    ASSERT_EQ(report.size(), chk.size());
    for (std::size_t s = 0; s < chk.size(); ++s) {
        EXPECT_TRUE(chk[s].intact);
        EXPECT_GT(chk[s].got, 0u);
        EXPECT_EQ(report[s].stream, s);
        EXPECT_EQ(report[s].first_byte, chk[s].got) << "stream " << s;
        EXPECT_EQ(report[s].first_byte + report[s].length, chk[s].sent) << "stream " << s;
    }
    EXPECT_EQ(f.space->send(0, std::vector<std::uint8_t>(10)), 0u) << "no data accepted after finish()";
}

TEST_P(link_engine_modes, stop_policy_holds_data_until_keys_arrive)
{
    // 3 keys of 20 frames each in the downlink: traffic stops after about 60 frames and must resume
    // without losing a byte once more keys arrive.
    pair_fixture f(3, 20, GetParam());
    std::vector<std::string> alarms;
    f.scfg.on_alarm = [&](std::string_view m) { alarms.emplace_back(m); };
    f.create();
    const double rate_down = modem::information_rate(*modem::find_profile(f.scfg.tx_profile));
    const double rate_up = modem::information_rate(*modem::find_profile(f.gcfg.tx_profile));
    air_direction down(6.0, rate_down, 31, 2, 2e6), up(6.0, rate_up, 32, 2, 320e3);
    constexpr std::uint64_t total = 100000;
    std::vector<stream_check> chk(1);
    bool stopped_seen = false;
    std::uint64_t got_when_stopped = 0;
    double t = 0.0;
    for (int step = 0; step < 8000; ++step) {
        t = step * step_s;
        feed(*f.space, 0, chk, total);
        down.carry(*f.space, *f.ground, down_bytes_per_step, t, false, false);
        up.carry(*f.ground, *f.space, up_bytes_per_step, t, false, false);
        drain(*f.ground, 0, chk);
        const auto st = f.space->stats();
        if (st.traffic_stopped && !stopped_seen) {
            stopped_seen = true;
            got_when_stopped = chk[0].got;
        }
        if (stopped_seen && step % 500 == 0 && f.down_keys.tx.size() == 0) {
            f.down_keys.add(50, 20);  // the key store refills (QKD caught up)
        }
        if (chk[0].got == total) {
            break;
        }
    }
    ASSERT_TRUE(stopped_seen);
    EXPECT_LT(got_when_stopped, total);
    EXPECT_EQ(chk[0].got, total);
    EXPECT_TRUE(chk[0].intact);
    const auto st = f.space->stats();
    EXPECT_GT(st.keys_exhausted, 0u);
    EXPECT_FALSE(st.traffic_stopped);
    ASSERT_FALSE(alarms.empty());
    EXPECT_NE(alarms[0].find("STOPPED"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(threads, link_engine_modes, ::testing::Bool());

TEST(link_engine, bad_config_is_a_clear_error)
{
    modem::memory_key_source a, b;
    auto expect_error = [&](link_engine_config c, const std::string& field) {
        try {
            link_engine::create(c, a, b);
            ADD_FAILURE() << "accepted a bad " << field;
        } catch (const std::invalid_argument& e) {
            EXPECT_NE(std::string(e.what()).find(field), std::string::npos) << e.what();
        }
    };
    link_engine_config c;
    c.tx_profile = "no-such-profile";
    expect_error(c, "tx_profile");
    c = {};
    c.rx_profile = "nope";
    expect_error(c, "rx_profile");
    c = {};
    c.spacecraft_id = 0x1AB;
    expect_error(c, "spacecraft_id");
    c = {};
    c.streams = 0;
    expect_error(c, "streams");
    c = {};
    c.tx_vcid = 63;
    expect_error(c, "vcid");
    c = {};
    c.arq_window = 1000;
    expect_error(c, "window");
    c = {};
    c.key_exhaustion_policy = modem::key_exhaustion_policy::fallback;
    expect_error(c, "fallback");
    c = {};
    c.arq_max_payload = 5000;
    expect_error(c, "arq_max_payload");
    c = {};
    c.rotate_every_frames = 4;
    expect_error(c, "rotate_every_frames");
    c = {};
    c.tx_queue_frames = 3;
    expect_error(c, "tx_queue_frames");
    c = {};
    c.queue_depth_frames = 1;
    expect_error(c, "queue_depth_frames");
    c = {};
    EXPECT_NO_THROW(link_engine::create(c, a, b));
}

// A frame encoded ahead waits for the ones before it to go out (and so do the acknowledgements in it):
// the TX worker keeps at most tx_queue_frames encoded, the one being sent included.
TEST(link_engine, tx_worker_encodes_at_most_tx_queue_frames_ahead_of_the_air)
{
    for (const std::size_t ahead : {std::size_t{2}, std::size_t{8}}) {
        pair_fixture f(64, 40, true);
        f.scfg.tx_queue_frames = ahead;
        f.create();
        const double frame_bits = modem::channel_bits_per_frame(*modem::find_profile(f.scfg.tx_profile));
        // Three and a half frames through the transport: four taken from the worker.
        std::vector<std::uint8_t> packed(static_cast<std::size_t>(frame_bits / 16));
        std::size_t pulled = 0;
        for (int k = 0; k < 7; ++k) pulled += f.space->pull_tx_bits(packed, 0.01 * k);
        ASSERT_EQ(pulled, 7 * 8 * packed.size());
        const auto taken = static_cast<std::uint64_t>(std::ceil(static_cast<double>(pulled) / frame_bits));
        // Give the worker time to fill what it may (no bound depends on this wait: the worker can
        // never exceed its queue, and it fills it within microseconds).
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
        const std::uint64_t encoded = f.space->stats().frames_tx;
        EXPECT_LE(encoded, taken - 1 + ahead) << "tx_queue_frames " << ahead;
        EXPECT_GE(encoded, taken - 1 + ahead - 1) << "the worker should fill its queue (tx_queue_frames " << ahead << ")";
    }
}

TEST(link_engine, garbage_on_the_air_is_counted_not_crashing)
{
    pair_fixture f;
    f.create();
    std::mt19937_64 rng(5);
    std::vector<std::int8_t> llr(100000);
    for (auto& v : llr) {
        v = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
    }
    f.ground->push_rx_llrs(llr, 0.1);
    f.ground->push_rx_llrs({}, 0.2);
    std::vector<std::uint8_t> out(16);
    EXPECT_EQ(f.ground->receive(0, out), 0u);
    EXPECT_EQ(f.ground->receive(200, out), 0u);
    EXPECT_EQ(f.ground->receive_datagram(out), 0u);
    EXPECT_EQ(f.ground->send(9, out), 0u) << "stream beyond config.streams";
    EXPECT_FALSE(f.ground->send_datagram(std::vector<std::uint8_t>(70000)));
    EXPECT_EQ(f.ground->pull_tx_bits({}, 0.3), 0u);
    const auto s = f.ground->stats();
    EXPECT_EQ(s.frames_rx_ok, 0u);
}

}  // namespace
