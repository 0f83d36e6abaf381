// Tests the QAIR1 codec and the blocking air client against a scripted raw-socket server on loopback.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "qlink/sim/air_client.hpp"
#include "support/loopback.hpp"

namespace {

using namespace qlink::sim;

// A one-connection server whose behaviour after accept() is a test-supplied script.
class scripted_server {
public:
    explicit scripted_server(std::function<void(int)> script) {
        lfd_ = qlink::test::listen_loopback(port_);
        thread_ = std::thread([this, script = std::move(script)] {
            const int fd = ::accept(lfd_, nullptr, nullptr);
            if (fd < 0) return;
            script(fd);
            ::close(fd);
        });
    }
    ~scripted_server() {
        ::shutdown(lfd_, SHUT_RDWR);
        ::close(lfd_);
        if (thread_.joinable()) thread_.join();
    }
    std::uint16_t port() const { return port_; }

private:
    int lfd_ = -1;
    std::uint16_t port_ = 0;
    std::thread thread_;
};

std::string read_line(int fd) {
    std::string s;
    char c;
    while (::recv(fd, &c, 1, 0) == 1 && c != '\n') s.push_back(c);
    return s;
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

void write_s(int fd, const void* p, std::size_t n) { ::send(fd, p, n, MSG_NOSIGNAL); }

TEST(air_codec, header_round_trip_and_little_endian_layout) {
    std::array<std::uint8_t, air_header_size> b{};
    encode_air_header({air_msg_type::rx_llr, air_flag_link_up, 0x00F20304u, 12.5}, b);
    // Magic "QAIR" on the wire, then type 2, flags 1, count LE, reserved zero.
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(b.data()), 4), "QAIR");
    EXPECT_EQ(b[4], 2);
    EXPECT_EQ(b[5], 0);
    EXPECT_EQ(b[6], 1);
    EXPECT_EQ(b[8], 0x04);
    EXPECT_EQ(b[10], 0xF2);
    EXPECT_EQ(b[11], 0x00);
    for (int i = 12; i < 16; ++i) EXPECT_EQ(b[i], 0);
    for (int i = 24; i < 32; ++i) EXPECT_EQ(b[i], 0);
    double t;
    std::memcpy(&t, &b[16], 8);  // x86-64 is little-endian, as the wire
    EXPECT_EQ(t, 12.5);
    air_header h;
    const char* err = "";
    ASSERT_TRUE(decode_air_header(b, h, err)) << err;
    EXPECT_EQ(h.type, air_msg_type::rx_llr);
    EXPECT_EQ(h.flags, air_flag_link_up);
    EXPECT_EQ(h.count, 0x00F20304u);
    EXPECT_EQ(h.sim_time, 12.5);
}

TEST(air_codec, rejects_bad_magic_type_and_count) {
    std::array<std::uint8_t, air_header_size> b{};
    air_header h;
    const char* err = "";
    encode_air_header({air_msg_type::tx_bits, 0, 8, 0.0}, b);
    b[0] ^= 1;
    EXPECT_FALSE(decode_air_header(b, h, err));
    EXPECT_NE(std::string(err).find("magic"), std::string::npos);
    encode_air_header({air_msg_type::tx_bits, 0, 8, 0.0}, b);
    b[4] = 9;
    EXPECT_FALSE(decode_air_header(b, h, err));
    b[4] = 5;  // one past TX_LLR
    EXPECT_FALSE(decode_air_header(b, h, err));
    encode_air_header({air_msg_type::tx_llr, 0, 8, 0.0}, b);
    EXPECT_TRUE(decode_air_header(b, h, err));
    EXPECT_EQ(h.type, air_msg_type::tx_llr);
    encode_air_header({air_msg_type::tx_bits, 0, air_max_count + 1, 0.0}, b);
    EXPECT_FALSE(decode_air_header(b, h, err));
    encode_air_header({air_msg_type::end_of_pass, 0, 3, 0.0}, b);
    EXPECT_FALSE(decode_air_header(b, h, err));
}

TEST(air_codec, pack_unpack_msb_first) {
    const std::vector<std::uint8_t> bits{1, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0};
    std::vector<std::uint8_t> packed(2);
    ASSERT_TRUE(pack_bits_msb(bits, packed));
    EXPECT_EQ(packed[0], 0xB1);
    EXPECT_EQ(packed[1], 0xC0);
    std::vector<std::uint8_t> back(bits.size());
    ASSERT_TRUE(unpack_bits_msb(packed, back));
    EXPECT_EQ(back, bits);
    std::vector<std::uint8_t> small(1);
    EXPECT_FALSE(pack_bits_msb(bits, small));
    EXPECT_FALSE(unpack_bits_msb(small, back));
}

// The client's hello, a TX_BITS message as the server sees it, and LLR + END_OF_PASS replies.
TEST(air_client, hello_send_receive_and_end_of_pass_over_loopback) {
    std::string hello_seen;
    std::vector<std::uint8_t> seen_payload;
    air_header seen{};
    scripted_server srv([&](int fd) {
        hello_seen = read_line(fd);
        const std::string ok = "OK 50000 2500.5\n";
        write_s(fd, ok.data(), ok.size());
        std::array<std::uint8_t, air_header_size> h;
        if (!read_n(fd, h.data(), h.size())) return;
        const char* err = "";
        if (!decode_air_header(h, seen, err)) return;
        seen_payload.resize(air_packed_size(seen.count));
        if (!read_n(fd, seen_payload.data(), seen_payload.size())) return;
        // Echo the bits back as strong LLRs (bit 1 -> negative).
        std::vector<std::uint8_t> bits(seen.count);
        unpack_bits_msb(seen_payload, bits);
        std::vector<std::int8_t> llr(bits.size());
        for (std::size_t i = 0; i < bits.size(); ++i) llr[i] = bits[i] ? -100 : 100;
        encode_air_header({air_msg_type::rx_llr, air_flag_link_up, seen.count, 42.25}, h);
        write_s(fd, h.data(), h.size());
        write_s(fd, llr.data(), llr.size());
        std::array<std::uint8_t, air_trailer_size> t;
        encode_air_trailer({true, 0, 31.5f, -48.25f, 7.5f}, t);
        write_s(fd, t.data(), t.size());
        encode_air_header({air_msg_type::end_of_pass, 0, 0, 600.0}, h);
        write_s(fd, h.data(), h.size());
        char c;
        ::recv(fd, &c, 1, 0);  // until the client closes
    });
    air_client::config cfg;
    cfg.port = srv.port();
    cfg.role = air_role::space;
    cfg.io_timeout_ms = 5000;
    std::string error;
    auto c = air_client::connect(cfg, error);
    ASSERT_TRUE(c) << error;
    EXPECT_EQ(c->downlink_bps(), 50000.0);
    EXPECT_EQ(c->return_bps(), 2500.5);

    std::mt19937_64 rng(7);
    std::vector<std::uint8_t> bits(1001);
    for (auto& b : bits) b = rng() & 1;
    auto s = c->send_bits(bits, 3.0);
    ASSERT_TRUE(s.ok()) << s.error;
    EXPECT_EQ(s.count, bits.size());

    air_message m;
    auto r = c->receive(m);
    ASSERT_TRUE(r.ok()) << r.error;
    ASSERT_EQ(m.llrs.size(), bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) ASSERT_EQ(m.llrs[i] < 0, bits[i] == 1) << i;
    EXPECT_TRUE(m.info.link_up);
    EXPECT_EQ(m.info.sim_time, 42.25);
    EXPECT_EQ(m.info.elevation_deg, 31.5f);
    EXPECT_EQ(m.info.rx_power_dbm, -48.25f);
    EXPECT_EQ(m.info.esn0_db, 7.5f);
    r = c->receive(m);
    EXPECT_EQ(r.status, air_status::end_of_pass);
    c->close();

    EXPECT_EQ(hello_seen, "QAIR1 space");
    EXPECT_EQ(seen.type, air_msg_type::tx_bits);
    EXPECT_EQ(seen.count, 1001u);
    EXPECT_EQ(seen.sim_time, 3.0);
    ASSERT_EQ(seen_payload.size(), 126u);
    EXPECT_EQ(seen_payload[0] >> 7, bits[0]);
}

TEST(air_client, server_err_reply_is_one_clear_error) {
    scripted_server srv([](int fd) {
        read_line(fd);
        const std::string e = "ERR role ground already connected\n";
        write_s(fd, e.data(), e.size());
    });
    air_client::config cfg;
    cfg.port = srv.port();
    std::string error;
    EXPECT_FALSE(air_client::connect(cfg, error));
    EXPECT_NE(error.find("ERR role ground already connected"), std::string::npos) << error;
}

TEST(air_client, malformed_reply_and_garbage_messages_are_errors_not_crashes) {
    {
        scripted_server srv([](int fd) {
            read_line(fd);
            const std::string e = "HELLO there\n";
            write_s(fd, e.data(), e.size());
        });
        air_client::config cfg;
        cfg.port = srv.port();
        std::string error;
        EXPECT_FALSE(air_client::connect(cfg, error));
        EXPECT_NE(error.find("malformed"), std::string::npos) << error;
    }
    {
        scripted_server srv([](int fd) {
            read_line(fd);
            const std::string ok = "OK 1000 1000\n";
            write_s(fd, ok.data(), ok.size());
            std::vector<std::uint8_t> junk(64, 0xAB);
            write_s(fd, junk.data(), junk.size());
            char c;
            ::recv(fd, &c, 1, 0);
        });
        air_client::config cfg;
        cfg.port = srv.port();
        cfg.io_timeout_ms = 5000;
        std::string error;
        auto c = air_client::connect(cfg, error);
        ASSERT_TRUE(c) << error;
        air_message m;
        auto r = c->receive(m);
        EXPECT_EQ(r.status, air_status::protocol_error);
        EXPECT_TRUE(c->broken());
        EXPECT_EQ(c->receive(m).status, air_status::closed);
    }
    {
        // An LLR message larger than the client accepts is refused before it is read.
        scripted_server srv([](int fd) {
            read_line(fd);
            const std::string ok = "OK 1000 1000\n";
            write_s(fd, ok.data(), ok.size());
            std::array<std::uint8_t, air_header_size> h;
            encode_air_header({air_msg_type::rx_llr, 0, 5000, 0.0}, h);
            write_s(fd, h.data(), h.size());
            char c;
            ::recv(fd, &c, 1, 0);
        });
        air_client::config cfg;
        cfg.port = srv.port();
        cfg.max_message_bits = 4096;
        cfg.io_timeout_ms = 5000;
        std::string error;
        auto c = air_client::connect(cfg, error);
        ASSERT_TRUE(c) << error;
        air_message m;
        EXPECT_EQ(c->receive(m).status, air_status::protocol_error);
    }
}

TEST(air_client, bad_arguments_and_closed_server) {
    air_client::config cfg;
    std::string error;
    EXPECT_FALSE(air_client::connect(cfg, error));  // port 0
    cfg.host = "not-an-ip";
    cfg.port = 1;
    EXPECT_FALSE(air_client::connect(cfg, error));
    EXPECT_NE(error.find("IPv4"), std::string::npos);

    scripted_server srv([](int fd) {
        read_line(fd);
        const std::string ok = "OK 1000 1000\n";
        write_s(fd, ok.data(), ok.size());
    });  // closes right after the hello
    cfg.host = "127.0.0.1";
    cfg.port = srv.port();
    cfg.max_message_bits = 64;
    cfg.io_timeout_ms = 5000;
    auto c = air_client::connect(cfg, error);
    ASSERT_TRUE(c) << error;
    std::vector<std::uint8_t> bits(65, 1);
    EXPECT_EQ(c->send_bits(bits).status, air_status::bad_argument);
    EXPECT_EQ(c->send_bits({}).status, air_status::bad_argument);
    std::vector<std::uint8_t> packed(1);
    EXPECT_EQ(c->send_packed(packed, 9).status, air_status::bad_argument);
    air_message m;
    EXPECT_EQ(c->receive(m).status, air_status::closed);
}

TEST(air_client, receive_timeout_with_nothing_read_keeps_the_connection) {
    scripted_server srv([](int fd) {
        read_line(fd);
        const std::string ok = "OK 1000 1000\n";
        write_s(fd, ok.data(), ok.size());
        char c;
        ::recv(fd, &c, 1, 0);  // waits for the client's next bytes
        std::array<std::uint8_t, air_header_size> h;
        encode_air_header({air_msg_type::end_of_pass, 0, 0, 1.0}, h);
        write_s(fd, h.data(), h.size());
        ::recv(fd, &c, 1, 0);
    });
    air_client::config cfg;
    cfg.port = srv.port();
    cfg.io_timeout_ms = 50;
    std::string error;
    auto c = air_client::connect(cfg, error);
    ASSERT_TRUE(c) << error;
    air_message m;
    EXPECT_EQ(c->receive(m).status, air_status::timeout);
    EXPECT_FALSE(c->broken());
    std::vector<std::uint8_t> one{1};
    ASSERT_TRUE(c->send_bits(one).ok());
    air_io_result r;
    for (int i = 0; i < 100; ++i) {  // bounded: at most 5 s
        r = c->receive(m);
        if (r.status != air_status::timeout) break;
    }
    EXPECT_EQ(r.status, air_status::end_of_pass);
}

}  // namespace
