// Tests the air relay: channel error rates against Poisson/Q-function oracles, and two real clients over loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "qlink/sim/air_relay.hpp"
#include "qlink/sim/awgn.hpp"
#include "support/loopback.hpp"

namespace {

using namespace qlink::sim;

// A named default config (a temporary one trips GCC 12's -Wmaybe-uninitialized at -O3).
const pass_world::config& default_config() {
    static const pass_world::config c;
    return c;
}

tle bundled_tle() {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    std::ifstream in(std::string(d ? d : ".") + "/sim/data/qlinksat-1.tle");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_tle_text(ss.str()).sets.front();
}

const pass_world& default_world() {
    static const pass_world w(bundled_tle(), default_config());
    return w;
}

// A world that starts `offset` seconds after the default pass's maximum elevation.
std::unique_ptr<pass_world> world_from(double offset_from_max_s) {
    pass_world::config c;
    c.start = default_world().pass().max_elevation_time + seconds_d(offset_from_max_s);
    return std::make_unique<pass_world>(bundled_tle(), c);
}

std::vector<std::uint8_t> random_bits(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 g(seed);
    std::vector<std::uint8_t> b(n);
    for (auto& x : b) x = g() & 1;
    return b;
}

// P(int8 LLR decision wrong or erased) for OOK photon counting, summed over the Poisson law.
double ook_error_probability(double ns, double nb, double scale) {
    const double l = std::log1p(ns / nb);
    auto q = [&](int k) { return std::clamp(std::nearbyint(scale * (ns - k * l)), -127.0, 127.0); };
    double p_on = 0, p_off = 0, pk_on = std::exp(-(ns + nb)), pk_off = std::exp(-nb);
    for (int k = 0; k < 400; ++k) {
        if (k > 0) pk_on *= (ns + nb) / k, pk_off *= nb / k;
        if (q(k) >= 0) p_on += pk_on;   // sent 1, decided 0 or erased
        if (q(k) <= 0) p_off += pk_off; // sent 0, decided 1 or erased
    }
    return 0.5 * (p_on + p_off);
}

TEST(air_channel, downlink_errors_match_poisson_ook_oracle) {
    const auto& w = default_world();
    const double bps = 200e3;
    air_downlink_channel ch(w, 4.0, 11);
    // Low elevation (few photons, visible errors): the first 3 s after the link comes up.
    double t = w.aos_s();
    while (!w.at(t).link_up) t += 0.01;
    const std::size_t n = 600'000;
    const auto bits = random_bits(n, 3);
    std::vector<std::uint8_t> packed(air_packed_size(n));
    pack_bits_msb(bits, packed);
    std::vector<std::int8_t> llr(n);
    const auto r = ch.process(t, bps, packed, n, llr);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.llrs, n);
    // Oracle: expected errors over the world's grid samples the bits fall in.
    // Oracle: the world's state is constant over each grid sample (1 / sample_rate s of sim time).
    double expected = 0;
    const double rate = w.settings().sample_rate_hz;
    for (std::size_t i = 0; i < n;) {
        const double ti = t + static_cast<double>(i) / bps;
        const auto s = w.at(ti);
        const double next = (std::floor(ti * rate) + 1.0) / rate;
        const std::size_t len = std::min<std::size_t>(n - i, static_cast<std::size_t>(std::max(1.0, std::ceil((next - ti) * bps))));
        expected += len * (s.link_up ? ook_error_probability(s.photons_per_slot, s.noise_per_slot, 4.0) : 1.0);
        i += len;
    }
    ASSERT_GT(expected, 200.0);  // enough error events to mean something
    EXPECT_NEAR(static_cast<double>(r.hard_errors), expected, 5.0 * std::sqrt(expected) + 0.02 * expected);
    // The recount agrees with the LLRs returned.
    std::size_t recount = 0;
    for (std::size_t i = 0; i < n; ++i) recount += llr[i] == 0 || (llr[i] < 0) != (bits[i] == 1);
    EXPECT_EQ(recount, r.hard_errors);
}

TEST(air_channel, return_errors_match_bpsk_q_function_and_llr_scale) {
    const auto& w = default_world();
    const double bps = 10e3;
    air_return_channel ch(w, 1.5, 12);
    const double t = w.aos_s() + 100.0;  // low elevation: Es/N0 a few dB
    const std::size_t n = 200'000;       // 20 s of sim time
    const auto bits = random_bits(n, 4);
    std::vector<std::uint8_t> packed(air_packed_size(n));
    pack_bits_msb(bits, packed);
    std::vector<std::int8_t> llr(n);
    const auto r = ch.process(t, bps, packed, n, llr);
    ASSERT_TRUE(r.ok);
    double expected = 0, mean_abs_expected = 0;
    for (std::size_t i = 0; i < n; i += 100) {  // Es/N0 constant over each 100-bit grid sample
        const auto s = w.at(t + static_cast<double>(i) / bps);
        ASSERT_TRUE(s.return_up);
        expected += 100 * bpsk_ber(s.return_esn0_db);
        mean_abs_expected += 100 * 1.5 * 4.0 * std::pow(10.0, s.return_esn0_db / 10.0);  // scale * 2/sigma^2 * E|y|~1
    }
    ASSERT_GT(expected, 200.0);
    // Rounding to 0 adds a few erasures beyond the Q-function errors: allow 10 % + 5 sigma.
    EXPECT_NEAR(static_cast<double>(r.hard_errors), expected, 5.0 * std::sqrt(expected) + 0.1 * expected);
    double mean_signed = 0;
    for (std::size_t i = 0; i < n; ++i) mean_signed += bits[i] ? -llr[i] : llr[i];
    EXPECT_NEAR(mean_signed / n, mean_abs_expected / n, 0.1 * mean_abs_expected / n);
}

TEST(air_channel, link_down_gives_erasures_and_bad_sizes_are_errors) {
    const auto& w = default_world();
    air_downlink_channel d(w, 4.0, 1);
    air_return_channel rt(w, 1.5, 1);
    const auto bits = random_bits(5000, 5);
    std::vector<std::uint8_t> packed(air_packed_size(bits.size()));
    pack_bits_msb(bits, packed);
    std::vector<std::int8_t> llr(bits.size(), 9);
    // Before AOS: both directions are below their masks.
    auto r = d.process(1.0, 100e3, packed, bits.size(), llr);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.erased, bits.size());
    EXPECT_FALSE(r.info.link_up);
    for (auto v : llr) ASSERT_EQ(v, 0);
    r = rt.process(1.0, 100e3, packed, bits.size(), llr);
    EXPECT_EQ(r.erased, bits.size());
    EXPECT_FALSE(d.process(1.0, 100e3, std::span(packed).first(3), bits.size(), llr).ok);
    EXPECT_FALSE(d.process(1.0, 100e3, packed, bits.size(), std::span(llr).first(10)).ok);
    EXPECT_FALSE(rt.process(1.0, 0.0, packed, bits.size(), llr).ok);
}

struct relay_fixture {
    std::unique_ptr<pass_world> world;
    std::unique_ptr<pass_clock> clock;
    std::unique_ptr<air_relay> relay;
    relay_fixture(double offset_from_max_s, double speed, unsigned start_when, air_relay::config rc = {}) {
        world = world_from(offset_from_max_s);
        clock = std::make_unique<pass_clock>(world->duration_s(), speed, start_when);
        rc.port = 0;
        relay = start_air_relay(rc, *world, *clock);
    }
    std::unique_ptr<air_client> client(air_role role) {
        air_client::config c;
        c.port = relay->port();
        c.role = role;
        c.io_timeout_ms = 20000;
        std::string err;
        auto cl = air_client::connect(c, err);
        EXPECT_TRUE(cl) << err;
        return cl;
    }
};

// Receives until END_OF_PASS; checks order, counts and the trailer against the world.
struct rx_summary {
    std::size_t llrs = 0, errors = 0, messages = 0, up_messages = 0;
    double last_time = -1;
    bool monotonic = true, eop = false, trailer_ok = true;
};

rx_summary drain(air_client& c, const std::vector<std::uint8_t>& sent, const pass_world& w, bool optical) {
    rx_summary s;
    air_message m;
    for (int guard = 0; guard < 100000; ++guard) {
        const auto r = c.receive(m);
        if (r.status == air_status::end_of_pass) {
            s.eop = true;
            break;
        }
        if (!r.ok()) break;
        ++s.messages;
        s.up_messages += m.info.link_up;
        if (m.info.sim_time < s.last_time) s.monotonic = false;
        s.last_time = m.info.sim_time;
        const auto ws = w.at(m.info.sim_time);
        if (std::fabs(m.info.elevation_deg - ws.elevation_deg) > 0.01 || m.info.link_up != (optical ? ws.link_up : ws.return_up))
            s.trailer_ok = false;
        for (std::size_t i = 0; i < m.llrs.size() && s.llrs + i < sent.size(); ++i)
            s.errors += m.llrs[i] == 0 || (m.llrs[i] < 0) != (sent[s.llrs + i] == 1);
        s.llrs += m.llrs.size();
    }
    return s;
}

TEST(air_relay, two_clients_exchange_bits_through_the_channels_paced_until_end_of_pass) {
    air_relay::config rc;
    rc.downlink_bps = 20e3;
    rc.return_bps = 5e3;
    relay_fixture f(-20.0, 100.0, 2, rc);  // starts 20 s before max elevation: link up, ~370 s of pass
    auto ground = f.client(air_role::ground);
    auto space = f.client(air_role::space);
    ASSERT_TRUE(ground && space);
    EXPECT_EQ(ground->downlink_bps(), 20e3);
    EXPECT_EQ(space->return_bps(), 5e3);
    EXPECT_TRUE(f.clock->started());

    const std::size_t down_msgs = 40, down_len = 1000, ret_msgs = 40, ret_len = 250;
    const auto down_bits = random_bits(down_msgs * down_len, 21);
    const auto ret_bits = random_bits(ret_msgs * ret_len, 22);
    std::thread space_tx([&] {
        for (std::size_t m = 0; m < down_msgs; ++m)
            ASSERT_TRUE(space->send_bits(std::span(down_bits).subspan(m * down_len, down_len)).ok());
    });
    std::thread ground_tx([&] {
        for (std::size_t m = 0; m < ret_msgs; ++m)
            ASSERT_TRUE(ground->send_bits(std::span(ret_bits).subspan(m * ret_len, ret_len)).ok());
    });
    rx_summary at_space;
    std::thread space_rx([&] { at_space = drain(*space, ret_bits, *f.world, false); });
    const rx_summary at_ground = drain(*ground, down_bits, *f.world, true);
    space_rx.join();
    space_tx.join();
    ground_tx.join();

    // Every bit arrives once, in order, as an LLR; then END_OF_PASS.
    EXPECT_TRUE(at_ground.eop);
    EXPECT_TRUE(at_space.eop);
    EXPECT_EQ(at_ground.llrs, down_bits.size());
    EXPECT_EQ(at_space.llrs, ret_bits.size());
    EXPECT_EQ(at_ground.messages, down_msgs);
    EXPECT_TRUE(at_ground.monotonic && at_space.monotonic);
    EXPECT_TRUE(at_ground.trailer_ok);
    EXPECT_TRUE(at_space.trailer_ok);
    // Near the top of the pass the channels are good but not perfect.
    EXPECT_GT(at_ground.up_messages, down_msgs / 2);
    EXPECT_LT(at_ground.errors, down_bits.size() / 10);
    EXPECT_LT(at_space.errors, ret_bits.size() / 100);
    // Pacing: the relay cannot have read 2 s of downlink bits in less than 2 s of sim time
    // (minus the allowed read-ahead): a lower bound, never flaky.
    EXPECT_GE(at_ground.last_time, (down_bits.size() - down_len) / rc.downlink_bps - rc.read_ahead_s - 0.01);
    EXPECT_EQ(f.relay->stats().connections.load(), 2u);
    EXPECT_EQ(f.relay->stats().bits_in[1].load(), down_bits.size());
    EXPECT_EQ(f.relay->stats().llrs_out[0].load(), down_bits.size());
    EXPECT_EQ(f.relay->stats().end_of_pass_sent.load(), 2u);
}

TEST(air_relay, bits_sent_while_the_link_is_down_arrive_as_erasures) {
    // Starting 30 s before LOS: below the optical mask, the link stays down to the end.
    const auto& dw = default_world();
    relay_fixture f(std::chrono::duration<double>(dw.pass().los - dw.pass().max_elevation_time).count() - 30.0, 100.0, 2);
    auto ground = f.client(air_role::ground);
    auto space = f.client(air_role::space);
    ASSERT_TRUE(ground && space);
    const auto bits = random_bits(3000, 5);
    ASSERT_TRUE(space->send_bits(bits).ok());
    air_message m;
    auto r = ground->receive(m);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(m.llrs.size(), bits.size());
    EXPECT_FALSE(m.info.link_up);
    for (auto v : m.llrs) ASSERT_EQ(v, 0);
    EXPECT_EQ(f.relay->stats().erased[0].load(), bits.size());
}

TEST(air_relay, tx_llr_crosses_unchanged_and_trailers_carry_the_return_es_n0) {
    // A ground station that runs its RF chain itself sends the LLRs its simulated satellite
    // demodulated: the relay adds no channel (they arrive byte for byte) but keeps the link state.
    relay_fixture f(-20.0, 100.0, 2);  // near the top of the pass: the RF return link is up
    auto ground = f.client(air_role::ground);
    auto space = f.client(air_role::space);
    ASSERT_TRUE(ground && space);
    std::vector<std::int8_t> llrs(4000);
    std::mt19937 rng(3);
    for (auto& v : llrs) v = static_cast<std::int8_t>(static_cast<int>(rng() % 255) - 127);
    ASSERT_TRUE(ground->send_llrs(llrs).ok());
    air_message m;
    const auto r = space->receive(m);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(m.llrs.size(), llrs.size());
    EXPECT_TRUE(std::equal(llrs.begin(), llrs.end(), m.llrs.begin()));
    EXPECT_TRUE(m.info.link_up);
    const auto ws = f.world->at(m.info.sim_time);
    EXPECT_NEAR(m.info.esn0_db, ws.return_esn0_db, 1e-3);
    EXPECT_NEAR(m.info.return_esn0_db, ws.return_esn0_db, 1e-3);
    EXPECT_EQ(f.relay->stats().llrs_in[0].load(), llrs.size());
    EXPECT_EQ(f.relay->stats().bits_in[0].load(), 0u);
    // The ground's own messages carry the return link's Es/N0 too (its RF chain's noise level).
    std::vector<std::uint8_t> bits(800, 1);
    ASSERT_TRUE(space->send_bits(bits).ok());
    ASSERT_TRUE(ground->receive(m).ok());
    EXPECT_NEAR(m.info.return_esn0_db, f.world->at(m.info.sim_time).return_esn0_db, 1e-3);
    EXPECT_GT(m.info.return_esn0_db, 0.0f);
    EXPECT_FALSE(air_gate_llrs(*f.world, false, 0.0, 0.0, llrs, std::span(llrs)).ok);
}

TEST(air_relay, tx_llr_while_the_return_link_is_down_arrives_as_erasures) {
    const auto& dw = default_world();
    // 10 s before LOS: below the RF mask (5 deg) as well.
    relay_fixture f(std::chrono::duration<double>(dw.pass().los - dw.pass().max_elevation_time).count() - 10.0, 10.0, 2);
    ASSERT_FALSE(f.world->at(0.0).return_up);
    auto ground = f.client(air_role::ground);
    auto space = f.client(air_role::space);
    ASSERT_TRUE(ground && space);
    const std::vector<std::int8_t> llrs(1500, -90);
    ASSERT_TRUE(ground->send_llrs(llrs).ok());
    air_message m;
    ASSERT_TRUE(space->receive(m).ok());
    ASSERT_EQ(m.llrs.size(), llrs.size());
    EXPECT_FALSE(m.info.link_up);
    for (auto v : m.llrs) ASSERT_EQ(v, 0);
    EXPECT_EQ(f.relay->stats().erased[1].load(), llrs.size());
}

int raw_connect(std::uint16_t port) { return qlink::test::connect_loopback(port, 5); }

std::string raw_line(int fd) {
    std::string s;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') s.push_back(c);
    return s;
}

TEST(air_relay, misbehaving_clients_are_dropped_and_counted_others_go_on) {
    relay_fixture f(-20.0, 10.0, 2);
    // Garbage hello.
    int fd = raw_connect(f.relay->port());
    ASSERT_GE(fd, 0);
    const std::string junk = "HELLO WORLD\n";
    ::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
    EXPECT_NE(raw_line(fd).find("ERR bad hello"), std::string::npos);
    ::close(fd);

    auto ground = f.client(air_role::ground);
    ASSERT_TRUE(ground);
    // The role is taken.
    air_client::config c;
    c.port = f.relay->port();
    c.role = air_role::ground;
    std::string err;
    EXPECT_FALSE(air_client::connect(c, err));
    EXPECT_NE(err.find("already connected"), std::string::npos) << err;

    // A space client that sends a garbage header after its hello is dropped...
    fd = raw_connect(f.relay->port());
    const std::string hello = "QAIR1 space\n";
    ::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL);
    EXPECT_EQ(raw_line(fd).rfind("OK ", 0), 0u);
    std::vector<std::uint8_t> garbage(32, 0xEE);
    ::send(fd, garbage.data(), garbage.size(), MSG_NOSIGNAL);
    char b;
    EXPECT_LE(::recv(fd, &b, 1, 0), 0);  // closed by the relay
    ::close(fd);
    // ... and a proper one takes its place and is served.
    std::unique_ptr<air_client> space;
    for (int i = 0; i < 100 && !space; ++i) {  // the slot frees once the relay saw the garbage
        c.role = air_role::space;
        space = air_client::connect(c, err);
        if (!space) ::usleep(20000);
    }
    ASSERT_TRUE(space) << err;
    const auto bits = random_bits(800, 8);
    ASSERT_TRUE(space->send_bits(bits).ok());
    air_message m;
    ASSERT_TRUE(ground->receive(m).ok());
    EXPECT_EQ(m.llrs.size(), bits.size());
    EXPECT_EQ(f.relay->stats().rejected.load(), 2u);
    EXPECT_EQ(f.relay->stats().protocol_errors.load(), 1u);

    // A client that vanishes mid-message: counted, the other side keeps working.
    space->close();
    for (int i = 0; i < 100 && f.relay->stats().disconnects.load() == 0; ++i) ::usleep(20000);
    EXPECT_GE(f.relay->stats().disconnects.load(), 1u);
    // With no space client the ground's bits are dropped and counted, not queued forever.
    ASSERT_TRUE(ground->send_bits(bits).ok());
    for (int i = 0; i < 100 && f.relay->stats().dropped_bits.load() == 0; ++i) ::usleep(20000);
    EXPECT_EQ(f.relay->stats().dropped_bits.load(), bits.size());
}

TEST(air_relay, validate_names_bad_fields) {
    air_relay::config c;
    c.downlink_bps = 0;
    EXPECT_NE(air_relay::validate(c).find("downlink_bps"), std::string::npos);
    c = {};
    c.max_queue_bytes = 10;
    EXPECT_NE(air_relay::validate(c).find("max_queue_bytes"), std::string::npos);
    EXPECT_THROW(pass_clock(0.0, 1.0), std::invalid_argument);
    EXPECT_THROW(pass_clock(10.0, 0.0), std::invalid_argument);
}

}  // namespace
