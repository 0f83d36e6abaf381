// Tests the QKD port: alice and bob over loopback get the same blocks, records that pair up, the model's QBER, end of pass.
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cmath>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "qlink/sim/qkd_server.hpp"
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

bool read_n(int fd, void* p, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::recv(fd, static_cast<char*>(p) + done, n - done, 0);
        if (r <= 0) return false;
        done += static_cast<std::size_t>(r);
    }
    return true;
}

std::string read_line(int fd) {
    std::string s;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') s.push_back(c);
    return s;
}

struct block {
    qkd_block_header h;
    std::vector<qkd_record> recs;
};

bool read_block(int fd, block& b) {
    std::array<std::uint8_t, qkd_block_header_size> hb;
    if (!read_n(fd, hb.data(), hb.size()) || !decode_qkd_block_header(hb, b.h)) return false;
    std::vector<std::uint8_t> raw(static_cast<std::size_t>(b.h.count) * qkd_record_size);
    if (!read_n(fd, raw.data(), raw.size())) return false;
    b.recs.resize(b.h.count);
    for (std::size_t i = 0; i < b.h.count; ++i)
        b.recs[i] = decode_qkd_record(std::span<const std::uint8_t, qkd_record_size>(raw.data() + i * qkd_record_size, qkd_record_size));
    return true;
}

int hello(std::uint16_t port, const std::string& line, std::string& reply) {
    const int fd = qlink::test::connect_loopback(port, 20);
    if (fd < 0) return fd;
    ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
    reply = read_line(fd);
    return fd;
}

TEST(qkd_codec, header_and_record_round_trip) {
    qkd_block_header h;
    h.flags = 3;
    h.block_id = 0x1122334455ull;
    h.sim_time = 12.5;
    h.pulses_sent = {5, 6, 7};
    h.count = 9;
    std::array<std::uint8_t, qkd_block_header_size> b;
    encode_qkd_block_header(h, b);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), 4), "QKDB");
    qkd_block_header d;
    ASSERT_TRUE(decode_qkd_block_header(b, d));
    EXPECT_EQ(d.flags, 3u);
    EXPECT_EQ(d.block_id, h.block_id);
    EXPECT_EQ(d.sim_time, 12.5);
    EXPECT_EQ(d.pulses_sent, h.pulses_sent);
    EXPECT_EQ(d.count, 9u);
    b[0] ^= 0xFF;
    EXPECT_FALSE(decode_qkd_block_header(b, d));
    std::array<std::uint8_t, qkd_record_size> r;
    encode_qkd_record({123456789012ull, 2, 1, 1}, r);
    const auto back = decode_qkd_record(r);
    EXPECT_EQ(back.pulse, 123456789012ull);
    EXPECT_EQ(back.intensity, 2);
    EXPECT_EQ(back.basis, 1);
    EXPECT_EQ(back.bit, 1);
}

TEST(qkd_server, alice_and_bob_get_matching_blocks_with_the_models_qber) {
    pass_world::config wc;
    {
        static const pass_world def(bundled_tle(), default_config());
        wc.start = def.pass().max_elevation_time - std::chrono::seconds(5);  // link up, high elevation
    }
    const pass_world world(bundled_tle(), wc);
    pass_clock clock(world.duration_s(), 20.0, 2);
    qkd_server::config qc;
    qc.block_s = 0.5;
    qc.channel.pulse_rate_hz = 2e7;
    auto srv = start_qkd_server(qc, world, clock);
    std::string ra, rb;
    const int a = hello(srv->port(), "QKD1 alice\n", ra);
    const int b = hello(srv->port(), "QKD1 bob\n", rb);
    ASSERT_GE(a, 0);
    ASSERT_GE(b, 0);
    EXPECT_EQ(ra, "OK 20000000");
    EXPECT_EQ(rb, "OK 20000000");

    const qkd_channel model(qc.channel);
    std::size_t sifted = 0, errors = 0;
    double expected_errors = 0;
    for (std::uint64_t id = 0; id < 4; ++id) {
        block ba, bb;
        ASSERT_TRUE(read_block(a, ba));
        ASSERT_TRUE(read_block(b, bb));
        EXPECT_EQ(ba.h.block_id, id);
        EXPECT_EQ(bb.h.block_id, id);
        EXPECT_DOUBLE_EQ(ba.h.sim_time, id * 0.5);
        EXPECT_EQ(ba.h.flags, 0u);
        EXPECT_EQ(ba.h.count, bb.h.count);
        // Alice knows what she sent, per class, and it adds up to the block's pulses.
        EXPECT_EQ(ba.h.pulses_sent[0] + ba.h.pulses_sent[1] + ba.h.pulses_sent[2], 10'000'000u);
        EXPECT_NEAR(static_cast<double>(ba.h.pulses_sent[0]), 5e6, 5 * std::sqrt(2.5e6));
        EXPECT_EQ(bb.h.pulses_sent[0] + bb.h.pulses_sent[1] + bb.h.pulses_sent[2], 0u);
        ASSERT_GT(ba.h.count, 1000u);
        const double eta = world.at(id * 0.5 + 0.25).qkd_transmittance;
        std::uint64_t last = 0;
        for (std::size_t i = 0; i < ba.recs.size(); ++i) {
            const auto& x = ba.recs[i];
            const auto& y = bb.recs[i];
            ASSERT_EQ(x.pulse, y.pulse);  // Alice's records are the pulses of Bob's detections
            ASSERT_LT(x.pulse, 10'000'000u);
            if (i > 0) {
                ASSERT_GT(x.pulse, last);
            }
            last = x.pulse;
            ASSERT_LE(x.intensity, 2);
            ASSERT_EQ(y.intensity, 0xFF);
            if (x.intensity == 0 && x.basis == y.basis) {
                ++sifted;
                errors += x.bit != y.bit;
            }
        }
        // Expected sifted signal errors at this block's transmittance.
        std::size_t n_sig = 0;
        for (std::size_t i = 0; i < ba.recs.size(); ++i) n_sig += ba.recs[i].intensity == 0 && ba.recs[i].basis == bb.recs[i].basis;
        expected_errors += n_sig * model.expected(eta, intensity_class::signal).qber;
        // Detections per block against the model's gain summed over the classes.
        double gain = 0;
        for (int c = 0; c < 3; ++c) gain += qc.channel.probabilities[c] * model.expected(eta, static_cast<intensity_class>(c)).gain;
        const double expected_count = gain * 1e7;
        // Scintillation moves eta inside the block: 15 % + 5 sigma.
        EXPECT_NEAR(static_cast<double>(ba.h.count), expected_count, 0.15 * expected_count + 5 * std::sqrt(expected_count));
    }
    ASSERT_GT(sifted, 5000u);
    EXPECT_NEAR(static_cast<double>(errors), expected_errors, 5 * std::sqrt(expected_errors) + 0.1 * expected_errors);
    EXPECT_EQ(srv->stats().connections.load(), 2u);
    ::close(a);
    ::close(b);
}

// The opening both pass services share (sim/src/service/role_session.hpp), on the QKD port: CRLF
// accepted, an overlong line and a silent client rejected and counted, a role free again once its
// client leaves.
TEST(qkd_server, hello_line_rules_timeout_and_role_release) {
    static const pass_world world(bundled_tle(), default_config());
    pass_clock clock(world.duration_s(), 50.0, 1);
    qkd_server::config qc;
    qc.channel.pulse_rate_hz = 1e5;
    qc.hello_timeout_s = 0.3;
    auto srv = start_qkd_server(qc, world, clock);
    std::string r;
    int fd = hello(srv->port(), std::string(65, 'Q') + "\n", r);
    EXPECT_EQ(r, "ERR hello line longer than 64 characters");
    ::close(fd);

    fd = qlink::test::connect_loopback(srv->port(), 20);  // says nothing
    ASSERT_GE(fd, 0);
    char c;
    EXPECT_LE(::recv(fd, &c, 1, 0), 0);  // closed by the server after hello_timeout_s
    ::close(fd);
    EXPECT_EQ(srv->stats().rejected.load(), 2u);

    const int a = hello(srv->port(), "QKD1 alice\r\n", r);
    EXPECT_EQ(r.rfind("OK ", 0), 0u) << r;
    ::close(a);
    for (int i = 0; i < 100 && srv->stats().disconnects.load() == 0; ++i) ::usleep(20000);
    const int again = hello(srv->port(), "QKD1 alice\n", r);
    EXPECT_EQ(r.rfind("OK ", 0), 0u) << r;
    ::close(again);
    EXPECT_EQ(srv->stats().connections.load(), 2u);
    EXPECT_EQ(srv->stats().rejected.load(), 2u);
}

TEST(qkd_server, end_of_pass_block_link_down_flags_and_bad_clients) {
    pass_world::config wc;
    {
        static const pass_world def(bundled_tle(), default_config());
        wc.start = def.pass().los - std::chrono::seconds(3);  // below the mask to the end: 13 s of pass
    }
    const pass_world world(bundled_tle(), wc);
    pass_clock clock(world.duration_s(), 50.0, 1);
    qkd_server::config qc;
    qc.channel.pulse_rate_hz = 1e6;
    auto srv = start_qkd_server(qc, world, clock);
    std::string r;
    int bad = hello(srv->port(), "QKD2 eve\n", r);
    EXPECT_NE(r.find("ERR bad hello"), std::string::npos);
    ::close(bad);
    const int a = hello(srv->port(), "QKD1 alice\n", r);
    ASSERT_EQ(r.rfind("OK ", 0), 0u);
    bad = hello(srv->port(), "QKD1 alice\n", r);
    EXPECT_NE(r.find("already connected"), std::string::npos);
    ::close(bad);
    block blk;
    std::uint64_t expect_id = 0;
    bool saw_end = false;
    for (int i = 0; i < 100 && !saw_end; ++i) {
        ASSERT_TRUE(read_block(a, blk));
        EXPECT_EQ(blk.h.block_id, expect_id++);
        EXPECT_TRUE(blk.h.flags & qkd_flag_link_down);
        EXPECT_LE(blk.h.count, 5u);  // only dark counts below the mask
        saw_end = blk.h.flags & qkd_flag_end_of_pass;
    }
    EXPECT_TRUE(saw_end);
    EXPECT_EQ(expect_id, static_cast<std::uint64_t>(std::ceil(world.duration_s())) + 1);
    // A client that talks after its hello is dropped and counted.
    const int b = hello(srv->port(), "QKD1 bob\n", r);
    ASSERT_EQ(r.rfind("OK ", 0), 0u);
    ASSERT_TRUE(read_block(b, blk));  // late joiner gets the end-of-pass block
    EXPECT_TRUE(blk.h.flags & qkd_flag_end_of_pass);
    ::send(b, "x", 1, MSG_NOSIGNAL);
    for (int i = 0; i < 100 && srv->stats().protocol_errors.load() == 0; ++i) ::usleep(20000);
    EXPECT_EQ(srv->stats().protocol_errors.load(), 1u);
    EXPECT_EQ(srv->stats().rejected.load(), 2u);
    ::close(a);
    ::close(b);
    qkd_server::config badc;
    badc.block_s = 0;
    EXPECT_NE(qkd_server::validate(badc).find("block_s"), std::string::npos);
}

}  // namespace
