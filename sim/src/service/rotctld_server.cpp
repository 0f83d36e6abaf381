// rotctld protocol (Hamlib NET rotctl, protocol version 1) over Boost.Asio for the simulated mount.
#include "qlink/sim/rotctld_server.hpp"
#include "service/listen.hpp"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace qlink::sim {

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

// Hamlib error numbers as rotctld prints them (RPRT -n).
constexpr int rig_einval = 1;
constexpr int rig_enimpl = 4;

std::string rprt(int code) { return "RPRT " + std::to_string(code == 0 ? 0 : -code) + "\n"; }

bool to_double(std::string_view s, double& v) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v);
}

std::string fmt(double v) {
    char b[48];
    std::snprintf(b, sizeof b, "%.6f", v);
    return b;
}

std::vector<std::string_view> split(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        const std::size_t b = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

}  // namespace

std::string rotctld_reply(std::string_view line, sim_mount& mount, std::string_view info, bool& close) {
    close = false;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u > 0x7e) return rprt(rig_einval);
    }
    bool ext = false;
    char sep = '\n';
    if (!line.empty() && (line.front() == '+' || line.front() == ';' || line.front() == '|' || line.front() == ',')) {
        ext = true;
        sep = line.front() == '+' ? '\n' : line.front();
        line.remove_prefix(1);
    }
    const auto tok = split(line);
    if (tok.empty()) return {};
    const std::string_view cmd = tok[0];
    auto is = [&](std::string_view s, std::string_view l) { return cmd == s || cmd == l; };

    if (is("q", "\\quit") || cmd == "Q") {
        close = true;
        return {};
    }
    if (is("P", "\\set_pos")) {
        double az = 0, el = 0;
        if (tok.size() != 3 || !to_double(tok[1], az) || !to_double(tok[2], el) || !mount.set_target(az, el))
            return rprt(rig_einval);
        if (!ext) return rprt(0);
        return "set_pos: " + std::string(tok[1]) + " " + std::string(tok[2]) + sep + rprt(0);
    }
    // Real rotctld commands this simulator does not model.
    static constexpr std::string_view not_modelled[] = {"M", "\\move", "R", "\\reset", "C", "\\set_conf",
                                                        "w", "\\send_cmd", "V", "\\set_level", "v", "\\get_level"};
    for (auto n : not_modelled)
        if (cmd == n) return rprt(rig_enimpl);
    if (tok.size() != 1) return rprt(rig_einval);  // the remaining commands take no arguments
    if (is("p", "\\get_pos")) {
        const auto p = mount.position();
        if (!ext) return fmt(p.azimuth_deg) + "\n" + fmt(p.elevation_deg) + "\n";
        return "get_pos:" + std::string(1, sep) + "Azimuth: " + fmt(p.azimuth_deg) + sep +
               "Elevation: " + fmt(p.elevation_deg) + sep + rprt(0);
    }
    if (is("S", "\\stop")) {
        mount.stop();
        return ext ? "stop:" + std::string(1, sep) + rprt(0) : rprt(0);
    }
    if (is("K", "\\park")) {
        mount.park();
        return ext ? "park:" + std::string(1, sep) + rprt(0) : rprt(0);
    }
    if (is("_", "\\get_info")) {
        if (!ext) return std::string(info) + "\n";
        return "get_info:" + std::string(1, sep) + "Info: " + std::string(info) + sep + rprt(0);
    }
    if (cmd == "\\dump_state") {
        const auto& c = mount.settings();
        return "1\n1\nmin_az=" + fmt(c.min_azimuth_deg) + "\nmax_az=" + fmt(c.max_azimuth_deg) +
               "\nmin_el=" + fmt(c.min_elevation_deg) + "\nmax_el=" + fmt(c.max_elevation_deg) +
               "\nsouth_zero=0\nrot_type=AzEl\ndone\n";
    }
    return rprt(rig_einval);
}

namespace {

class server_impl;

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket s, server_impl& srv) : socket_(std::move(s)), server_(srv) {}
    void start() { read(); }
    void close() {
        boost::system::error_code ec;
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

private:
    void read();
    void write(std::string reply, bool then_close);

    tcp::socket socket_;
    server_impl& server_;
    std::string buf_;
};

class server_impl final : public rotctld_server {
public:
    server_impl(const config& cfg, sim_mount& mount) : cfg_(cfg), mount_(mount), acceptor_(io_) {
        port_ = detail::listen_on(acceptor_, cfg.bind_address, cfg.port, "rotctld");
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~server_impl() override { stop(); }

    std::uint16_t port() const override { return port_; }
    const counters& stats() const override { return stats_; }

    void stop() override {
        std::call_once(stopped_, [this] {
            asio::post(io_, [this] {
                boost::system::error_code ec;
                acceptor_.close(ec);
                std::lock_guard lock(mutex_);
                for (auto& w : sessions_)
                    if (auto s = w.lock()) s->close();
            });
            io_.stop();
            if (thread_.joinable()) thread_.join();
        });
    }

    const config& cfg() const { return cfg_; }
    sim_mount& mount() { return mount_; }
    counters& mutable_stats() { return stats_; }
    void forget_expired() {
        std::lock_guard lock(mutex_);
        sessions_.remove_if([](const std::weak_ptr<session>& w) { return w.expired(); });
    }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                accept();
                return;
            }
            forget_expired();
            std::size_t live = 0;
            {
                std::lock_guard lock(mutex_);
                live = sessions_.size();
            }
            if (live >= cfg_.max_clients) {
                ++stats_.rejected;
                boost::system::error_code ig;
                sock.close(ig);
            } else {
                ++stats_.connections;
                auto s = std::make_shared<session>(std::move(sock), *this);
                {
                    std::lock_guard lock(mutex_);
                    sessions_.push_back(s);
                }
                s->start();
            }
            accept();
        });
    }

    config cfg_;
    sim_mount& mount_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::once_flag stopped_;
    std::mutex mutex_;
    std::list<std::weak_ptr<session>> sessions_;
    counters stats_;
};

void session::read() {
    auto self = shared_from_this();
    asio::async_read_until(socket_, asio::dynamic_buffer(buf_, server_.cfg().max_line), '\n',
                           [this, self](boost::system::error_code ec, std::size_t n) {
                               if (ec == asio::error::not_found) {
                                   // Line longer than the limit: say so and hang up.
                                   ++server_.mutable_stats().errors;
                                   write(rprt(rig_einval), true);
                                   return;
                               }
                               if (ec) {
                                   close();
                                   return;
                               }
                               const std::string line = buf_.substr(0, n);
                               buf_.erase(0, n);
                               ++server_.mutable_stats().commands;
                               bool quit = false;
                               std::string reply = rotctld_reply(line, server_.mount(), server_.cfg().info, quit);
                               if (reply.rfind("RPRT -", 0) == 0) ++server_.mutable_stats().errors;
                               if (quit) {
                                   close();
                                   return;
                               }
                               if (reply.empty()) {
                                   read();
                                   return;
                               }
                               write(std::move(reply), false);
                           });
}

void session::write(std::string reply, bool then_close) {
    auto self = shared_from_this();
    auto data = std::make_shared<std::string>(std::move(reply));
    asio::async_write(socket_, asio::buffer(*data), [this, self, data, then_close](boost::system::error_code ec, std::size_t) {
        if (ec || then_close) {
            close();
            return;
        }
        read();
    });
}

}  // namespace

std::unique_ptr<rotctld_server> start_rotctld_server(const rotctld_server::config& cfg, sim_mount& mount) {
    if (cfg.max_line < 16 || cfg.max_clients == 0)
        throw std::invalid_argument("rotctld: max_line must be >= 16 and max_clients >= 1");
    return std::make_unique<server_impl>(cfg, mount);
}

}  // namespace qlink::sim
