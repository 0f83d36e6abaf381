// QAIR1 wire encoding and the blocking air-port client (POSIX sockets, no Asio: qlinkd links it lightly).
#include "qlink/sim/air_client.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace qlink::sim {

std::string_view to_string(air_role r) { return r == air_role::ground ? "ground" : "space"; }

std::string_view to_string(air_status s) {
    switch (s) {
    case air_status::ok: return "ok";
    case air_status::end_of_pass: return "end of pass";
    case air_status::timeout: return "timeout";
    case air_status::closed: return "closed";
    case air_status::bad_argument: return "bad argument";
    case air_status::protocol_error: return "protocol error";
    case air_status::io_error: return "i/o error";
    }
    return "?";
}

namespace {

void put_u16(std::uint8_t* p, std::uint16_t v) { p[0] = static_cast<std::uint8_t>(v), p[1] = static_cast<std::uint8_t>(v >> 8); }
void put_u32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint16_t get_u16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] | (p[1] << 8)); }
std::uint32_t get_u32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
void put_f64(std::uint8_t* p, double d) {
    std::uint64_t u;
    std::memcpy(&u, &d, 8);
    put_u64(p, u);
}
double get_f64(const std::uint8_t* p) {
    const std::uint64_t u = get_u64(p);
    double d;
    std::memcpy(&d, &u, 8);
    return d;
}
void put_f32(std::uint8_t* p, float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    put_u32(p, u);
}
float get_f32(const std::uint8_t* p) {
    const std::uint32_t u = get_u32(p);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

air_io_result fail(air_status s, const char* msg) { return {s, 0, msg}; }

}  // namespace

void encode_air_header(const air_header& h, std::span<std::uint8_t, air_header_size> out) {
    std::memset(out.data(), 0, air_header_size);
    put_u32(&out[0], air_magic);
    put_u16(&out[4], static_cast<std::uint16_t>(h.type));
    put_u16(&out[6], h.flags);
    put_u32(&out[8], h.count);
    put_f64(&out[16], h.sim_time);
}

bool decode_air_header(std::span<const std::uint8_t, air_header_size> in, air_header& h, const char*& error) {
    if (get_u32(&in[0]) != air_magic) {
        error = "bad magic (not a QAIR message)";
        return false;
    }
    const std::uint16_t type = get_u16(&in[4]);
    if (type < 1 || type > 4) {
        error = "unknown QAIR message type";
        return false;
    }
    h.type = static_cast<air_msg_type>(type);
    h.flags = get_u16(&in[6]);
    h.count = get_u32(&in[8]);
    h.sim_time = get_f64(&in[16]);
    if (h.count > air_max_count) {
        error = "QAIR message count larger than 2^24";
        return false;
    }
    if (h.type == air_msg_type::end_of_pass && h.count != 0) {
        error = "END_OF_PASS with a non-zero count";
        return false;
    }
    return true;
}

void encode_air_trailer(const air_link_info& info, std::span<std::uint8_t, air_trailer_size> out) {
    put_f32(&out[0], info.elevation_deg);
    put_f32(&out[4], info.rx_power_dbm);
    put_f32(&out[8], info.esn0_db);
    put_f32(&out[12], info.return_esn0_db);
}

void decode_air_trailer(std::span<const std::uint8_t, air_trailer_size> in, air_link_info& info) {
    info.elevation_deg = get_f32(&in[0]);
    info.rx_power_dbm = get_f32(&in[4]);
    info.esn0_db = get_f32(&in[8]);
    info.return_esn0_db = get_f32(&in[12]);
}

bool pack_bits_msb(std::span<const std::uint8_t> bits, std::span<std::uint8_t> out) {
    if (out.size() < air_packed_size(bits.size())) return false;
    const std::size_t full = bits.size() / 8;
    for (std::size_t i = 0; i < full; ++i) {
        const std::uint8_t* b = &bits[8 * i];
        unsigned v = 0;
        for (int k = 0; k < 8; ++k) v = (v << 1) | (b[k] != 0);
        out[i] = static_cast<std::uint8_t>(v);
    }
    if (const std::size_t rest = bits.size() % 8) {
        unsigned v = 0;
        for (std::size_t k = 0; k < rest; ++k) v |= static_cast<unsigned>(bits[8 * full + k] != 0) << (7 - k);
        out[full] = static_cast<std::uint8_t>(v);
    }
    return true;
}

bool unpack_bits_msb(std::span<const std::uint8_t> packed, std::span<std::uint8_t> bits) {
    if (packed.size() < air_packed_size(bits.size())) return false;
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = (packed[i / 8] >> (7 - i % 8)) & 1u;
    return true;
}

// ------------------------------------------------------------------------------------------------

air_client::air_client(const config& cfg, int fd)
    : cfg_(cfg), fd_(fd), tx_buf_(air_packed_size(cfg.max_message_bits)), rx_buf_(cfg.max_message_bits) {}

air_client::~air_client() { close(); }

void air_client::close() {
    if (fd_ >= 0) {
        ::shutdown(fd_, SHUT_RDWR);
        ::close(fd_);
        fd_ = -1;
    }
    broken_ = true;
}

std::unique_ptr<air_client> air_client::connect(const config& cfg, std::string& error) {
    if (cfg.port == 0) {
        error = "air client: port must be in 1..65535";
        return nullptr;
    }
    if (cfg.connect_timeout_ms <= 0 || cfg.io_timeout_ms < 0) {
        error = "air client: connect_timeout_ms must be > 0 and io_timeout_ms >= 0";
        return nullptr;
    }
    if (cfg.max_message_bits < 1 || cfg.max_message_bits > air_max_count) {
        error = "air client: max_message_bits must be in [1, 16777216]";
        return nullptr;
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(cfg.port);
    if (::inet_pton(AF_INET, cfg.host.c_str(), &a.sin_addr) != 1) {
        error = "air client: host '" + cfg.host + "' is not an IPv4 address";
        return nullptr;
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        error = std::string("air client: socket: ") + std::strerror(errno);
        return nullptr;
    }
    const std::string where = cfg.host + ":" + std::to_string(cfg.port);
    auto bail = [&](std::string msg) {
        ::close(fd);
        error = "air client: " + where + ": " + std::move(msg);
        return nullptr;
    };
    // Non-blocking connect bounded by the timeout, then back to blocking I/O.
    const int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
        if (errno != EINPROGRESS) return bail(std::strerror(errno));
        pollfd p{fd, POLLOUT, 0};
        if (::poll(&p, 1, cfg.connect_timeout_ms) != 1) return bail("connect timed out");
        int so = 0;
        socklen_t len = sizeof so;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        if (so != 0) return bail(std::strerror(so));
    }
    ::fcntl(fd, F_SETFL, fl);
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    // Hello, then the one-line reply read byte by byte (messages may follow it at once).
    const std::string hello = "QAIR1 " + std::string(to_string(cfg.role)) + "\n";
    if (::send(fd, hello.data(), hello.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(hello.size()))
        return bail("sending the hello failed");
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(cfg.connect_timeout_ms);
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1)
            return bail("no reply to the hello within the connect timeout");
        char c;
        const ssize_t n = ::recv(fd, &c, 1, 0);
        if (n == 0) return bail(line.empty() ? "server closed the connection after the hello" : "reply cut short: " + line);
        if (n < 0) {
            if (errno == EINTR) continue;
            return bail(std::strerror(errno));
        }
        if (c == '\n') break;
        if (line.size() >= 200) return bail("reply line longer than 200 characters");
        line.push_back(c);
    }
    if (line.rfind("ERR", 0) == 0) return bail("server refused: " + line);
    double down = 0, ret = 0;
    {
        const char* s = line.c_str();
        char* end = nullptr;
        if (line.rfind("OK ", 0) != 0) return bail("malformed reply '" + line + "'");
        down = std::strtod(s + 3, &end);
        const char* mid = end;
        ret = std::strtod(mid, &end);
        if (mid == s + 3 || end == mid || *end != '\0' || !(down > 0) || !(ret > 0) || !std::isfinite(down) ||
            !std::isfinite(ret))
            return bail("malformed reply '" + line + "'");
    }
    if (cfg.io_timeout_ms > 0) {
        timeval tv{cfg.io_timeout_ms / 1000, (cfg.io_timeout_ms % 1000) * 1000};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
    std::unique_ptr<air_client> c(new air_client(cfg, fd));
    c->downlink_bps_ = down;
    c->return_bps_ = ret;
    return c;
}

air_io_result air_client::write_all(const std::uint8_t* a, std::size_t na, const std::uint8_t* b, std::size_t nb) {
    std::size_t done = 0;
    const std::size_t total = na + nb;
    while (done < total) {
        iovec iov[2];
        int n_iov = 0;
        if (done < na) iov[n_iov++] = {const_cast<std::uint8_t*>(a + done), na - done};
        const std::size_t boff = done > na ? done - na : 0;
        if (nb > boff) iov[n_iov++] = {const_cast<std::uint8_t*>(b + boff), nb - boff};
        msghdr m{};
        m.msg_iov = iov;
        m.msg_iovlen = static_cast<decltype(m.msg_iovlen)>(n_iov);
        const ssize_t n = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            broken_ = true;  // a message cut in half cannot be resumed
            if (errno == EAGAIN || errno == EWOULDBLOCK) return fail(air_status::timeout, "send timed out");
            if (errno == EPIPE || errno == ECONNRESET) return fail(air_status::closed, "server closed the connection");
            return fail(air_status::io_error, "send failed");
        }
        done += static_cast<std::size_t>(n);
    }
    return {};
}

air_io_result air_client::read_all(std::uint8_t* p, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
        const ssize_t r = ::recv(fd_, p + done, n - done, 0);
        if (r == 0) {
            broken_ = true;
            return fail(air_status::closed, "server closed the connection");
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return {air_status::timeout, done, "receive timed out"};
            broken_ = true;
            return fail(air_status::io_error, "receive failed");
        }
        done += static_cast<std::size_t>(r);
    }
    return {air_status::ok, done, ""};
}

air_io_result air_client::send_packed(std::span<const std::uint8_t> packed, std::size_t nbits, double sim_time) {
    if (fd_ < 0 || broken_) return fail(air_status::closed, "air client connection is closed");
    if (nbits == 0 || nbits > cfg_.max_message_bits)
        return fail(air_status::bad_argument, "send: bit count must be in [1, max_message_bits]");
    if (packed.size() < air_packed_size(nbits))
        return fail(air_status::bad_argument, "send: packed buffer shorter than ceil(nbits / 8)");
    std::array<std::uint8_t, air_header_size> h;
    encode_air_header({air_msg_type::tx_bits, 0, static_cast<std::uint32_t>(nbits), sim_time}, h);
    auto r = write_all(h.data(), h.size(), packed.data(), air_packed_size(nbits));
    if (r.ok()) r.count = nbits;
    return r;
}

air_io_result air_client::send_bits(std::span<const std::uint8_t> bits, double sim_time) {
    if (bits.empty() || bits.size() > cfg_.max_message_bits)
        return fail(air_status::bad_argument, "send: bit count must be in [1, max_message_bits]");
    pack_bits_msb(bits, tx_buf_);
    return send_packed(tx_buf_, bits.size(), sim_time);
}

air_io_result air_client::send_llrs(std::span<const std::int8_t> llrs, double sim_time) {
    if (fd_ < 0 || broken_) return fail(air_status::closed, "air client connection is closed");
    if (llrs.empty() || llrs.size() > cfg_.max_message_bits)
        return fail(air_status::bad_argument, "send: LLR count must be in [1, max_message_bits]");
    std::array<std::uint8_t, air_header_size> h;
    encode_air_header({air_msg_type::tx_llr, 0, static_cast<std::uint32_t>(llrs.size()), sim_time}, h);
    auto r = write_all(h.data(), h.size(), reinterpret_cast<const std::uint8_t*>(llrs.data()), llrs.size());
    if (r.ok()) r.count = llrs.size();
    return r;
}

air_io_result air_client::receive(air_message& msg) {
    if (fd_ < 0 || broken_) return fail(air_status::closed, "air client connection is closed");
    std::array<std::uint8_t, air_header_size> h;
    auto r = read_all(h.data(), h.size());
    if (r.status == air_status::timeout && r.count == 0) return r;  // nothing consumed: still usable
    if (!r.ok()) {
        broken_ = true;
        return r;
    }
    air_header hd;
    const char* err = "";
    if (!decode_air_header(h, hd, err)) {
        broken_ = true;
        return fail(air_status::protocol_error, err);
    }
    msg.type = hd.type;
    msg.info = {};
    msg.info.sim_time = hd.sim_time;
    msg.info.link_up = (hd.flags & air_flag_link_up) != 0;
    msg.llrs = {};
    if (hd.type == air_msg_type::end_of_pass) return {air_status::end_of_pass, 0, ""};
    if (hd.type != air_msg_type::rx_llr) {
        broken_ = true;
        return fail(air_status::protocol_error, "server sent a client message (TX_BITS/TX_LLR)");
    }
    if (hd.count > rx_buf_.size()) {
        broken_ = true;
        return fail(air_status::protocol_error, "RX_LLR message larger than max_message_bits");
    }
    r = read_all(reinterpret_cast<std::uint8_t*>(rx_buf_.data()), hd.count);
    if (!r.ok()) {
        broken_ = true;
        return r;
    }
    std::array<std::uint8_t, air_trailer_size> t;
    r = read_all(t.data(), t.size());
    if (!r.ok()) {
        broken_ = true;
        return r;
    }
    decode_air_trailer(t, msg.info);
    msg.llrs = std::span<const std::int8_t>(rx_buf_.data(), hd.count);
    return {air_status::ok, hd.count, ""};
}

}  // namespace qlink::sim
