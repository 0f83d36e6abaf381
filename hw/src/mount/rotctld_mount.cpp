// Hamlib rotctld client: line protocol over TCP with per-command timeouts and reconnect.
#include "qlink/hw/mount.hpp"

#include <arpa/inet.h>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace qlink::hw {
namespace {

using steady = std::chrono::steady_clock;

int remaining_ms(steady::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    return left > 0 ? static_cast<int>(left) : 0;
}

bool parse_double(std::string_view text, double& out) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && end == text.data() + text.size();
}

/// Parses "RPRT <int>"; false when the line is something else.
bool parse_rprt(std::string_view line, int& code) {
    if (line.substr(0, 5) != "RPRT ") return false;
    line.remove_prefix(5);
    while (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), code);
    return ec == std::errc{} && end == line.data() + line.size();
}

class rotctld_mount final : public mount {
public:
    explicit rotctld_mount(rotctld_config cfg) : cfg_(std::move(cfg)) {}
    ~rotctld_mount() override { disconnect(); }

    mount_result set_position(az_el target) override {
        if (target.az_deg < cfg_.limits.az_min_deg || target.az_deg > cfg_.limits.az_max_deg ||
            target.el_deg < cfg_.limits.el_min_deg || target.el_deg > cfg_.limits.el_max_deg) {
            return {mount_errc::out_of_range, 0, "target outside the configured mount limits"};
        }
        char cmd[64];
        std::snprintf(cmd, sizeof cmd, "P %.2f %.2f\n", target.az_deg, target.el_deg);
        return transact(cmd, 0, nullptr);
    }

    mount_result get_position(az_el& out) override {
        std::string lines[2];
        mount_result r = transact("p\n", 2, lines);
        if (!r) return r;
        if (!parse_double(lines[0], out.az_deg) || !parse_double(lines[1], out.el_deg)) {
            ++counters_.protocol_errors;
            disconnect();
            return {mount_errc::protocol, 0, "rotctld sent a position that is not two numbers"};
        }
        return r;
    }

    mount_result stop() override { return transact("S\n", 0, nullptr); }
    mount_result park() override { return transact("K\n", 0, nullptr); }
    std::string_view name() const override { return "rotctld"; }
    const mount_limits& limits() const override { return cfg_.limits; }
    const mount_counters& counters() const override { return counters_; }

private:
    /// Sends `cmd` and reads the reply: `RPRT n` for set commands (value_lines
    /// == 0) or `value_lines` lines of values, where an error comes as `RPRT n`
    /// instead. On a broken connection, reconnects once and retries (every
    /// command here is idempotent).
    mount_result transact(std::string_view cmd, int value_lines, std::string* values) {
        ++counters_.commands;
        mount_result r;
        for (int attempt = 0; attempt < 2; ++attempt) {
            r = transact_once(cmd, value_lines, values);
            if (r.code != mount_errc::disconnected) break;
        }
        switch (r.code) {
        case mount_errc::rejected: ++counters_.rejected; break;
        case mount_errc::timeout: ++counters_.timeouts; break;
        case mount_errc::protocol: ++counters_.protocol_errors; break;
        default: break;
        }
        return r;
    }

    mount_result transact_once(std::string_view cmd, int value_lines, std::string* values) {
        const auto deadline = steady::now() + cfg_.timeout;
        if (fd_ < 0) {
            if (mount_result c = connect_to(deadline); !c) return c;
        }
        if (mount_result s = send_all(cmd, deadline); !s) return s;

        std::string line;
        if (mount_result l = read_line(line, deadline); !l) return l;
        int code = 0;
        if (parse_rprt(line, code)) {
            if (code == 0 && value_lines == 0) return {};
            if (code == 0) {
                disconnect();
                return {mount_errc::protocol, 0, "rotctld answered RPRT 0 where values were expected"};
            }
            return {mount_errc::rejected, code, "rotctld refused '" + std::string(cmd.substr(0, cmd.size() - 1)) +
                                                    "': RPRT " + std::to_string(code)};
        }
        if (value_lines == 0) {
            disconnect();
            return {mount_errc::protocol, 0, "rotctld sent '" + line + "' where RPRT was expected"};
        }
        values[0] = std::move(line);
        for (int i = 1; i < value_lines; ++i)
            if (mount_result l = read_line(values[i], deadline); !l) return l;
        return {};
    }

    mount_result connect_to(steady::time_point deadline) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* res = nullptr;
        const std::string port = std::to_string(cfg_.port);
        if (int rc = ::getaddrinfo(cfg_.host.c_str(), port.c_str(), &hints, &res); rc != 0)
            return {mount_errc::disconnected, 0, "cannot resolve rotctld host '" + cfg_.host + "': " + gai_strerror(rc)};
        mount_result r{mount_errc::disconnected, 0, "cannot connect to rotctld at " + cfg_.host + ":" + port};
        for (addrinfo* ai = res; ai; ai = ai->ai_next) {
            int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0) continue;
            int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
            if (rc < 0 && errno == EINPROGRESS) {
                pollfd p{fd, POLLOUT, 0};
                rc = ::poll(&p, 1, remaining_ms(deadline));
                int err = 0;
                socklen_t len = sizeof err;
                if (rc == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
                    rc = 0;
                } else {
                    if (rc == 0) r = {mount_errc::timeout, 0, "timed out connecting to rotctld at " + cfg_.host + ":" + port};
                    rc = -1;
                }
            }
            if (rc == 0) {
                int one = 1;
                ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fd_ = fd;
                inbuf_.clear();
                if (ever_connected_) ++counters_.reconnects;
                ever_connected_ = true;
                r = {};
                break;
            }
            ::close(fd);
        }
        ::freeaddrinfo(res);
        return r;
    }

    mount_result send_all(std::string_view data, steady::time_point deadline) {
        while (!data.empty()) {
            ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
            if (n > 0) {
                data.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                pollfd p{fd_, POLLOUT, 0};
                if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
                    disconnect();
                    return {mount_errc::timeout, 0, "timed out sending to rotctld"};
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            disconnect();
            return {mount_errc::disconnected, 0, "rotctld connection lost while sending"};
        }
        return {};
    }

    /// Reads one '\n'-terminated line. A timeout leaves the stream in an unknown
    /// state (the reply may still come), so the connection is dropped.
    mount_result read_line(std::string& line, steady::time_point deadline) {
        for (;;) {
            if (auto nl = inbuf_.find('\n'); nl != std::string::npos) {
                line.assign(inbuf_, 0, nl);
                inbuf_.erase(0, nl + 1);
                return {};
            }
            if (inbuf_.size() > max_line) {
                disconnect();
                return {mount_errc::protocol, 0, "rotctld sent an over-long line"};
            }
            pollfd p{fd_, POLLIN, 0};
            int rc = ::poll(&p, 1, remaining_ms(deadline));
            if (rc == 0) {
                disconnect();
                return {mount_errc::timeout, 0, "rotctld did not answer within " +
                                                    std::to_string(cfg_.timeout.count()) + " ms"};
            }
            if (rc < 0 && errno == EINTR) continue;
            char buf[256];
            ssize_t n = rc > 0 ? ::recv(fd_, buf, sizeof buf, 0) : -1;
            if (n > 0) {
                inbuf_.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            disconnect();
            return {mount_errc::disconnected, 0, "rotctld closed the connection"};
        }
    }

    void disconnect() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        inbuf_.clear();
    }

    static constexpr std::size_t max_line = 4096;
    rotctld_config cfg_;
    mount_counters counters_;
    int fd_ = -1;
    bool ever_connected_ = false;
    std::string inbuf_;
};

}  // namespace

std::unique_ptr<mount> create_rotctld_mount(const rotctld_config& cfg) {
    return std::make_unique<rotctld_mount>(cfg);
}

}  // namespace qlink::hw
