// Test relay for qlinkd: the air port wire format (pass_spec.md) over a clean channel, with an
// optional outage window (erasures, link-down flag), line-rate pacing and END_OF_PASS.
#pragma once

#include "qlink/sim/air_client.hpp"
#include "support/loopback.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace qlink::test {

class clean_relay {
public:
    struct config {
        double downlink_bps = 1e6;
        double return_bps = 2.5e5;
        double speed = 1.0;              ///< simulated seconds per wall second
        double outage_from = -1, outage_to = -1;  ///< sim seconds; both directions erased, flag down
        double pass_end = 1e9;           ///< END_OF_PASS at this sim time
        float elevation_deg = 45.0f;
    };

    explicit clean_relay(config cfg) : cfg_(cfg)
    {
        lfd_ = qlink::test::listen_loopback(port_, true);
        // As the real relay (air_relay::config::socket_buffer_bytes): a small receive buffer, inherited
        // by the accepted connections. What waits in it is air time queued ahead of the line.
        const int rcvbuf = 8192;
        ::setsockopt(lfd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
        accept_thread_ = std::thread([this] { accept_both(); });
    }
    ~clean_relay()
    {
        stop_ = true;
        ::shutdown(lfd_, SHUT_RDWR);
        for (int fd : {ground_fd_.load(), space_fd_.load()}) {
            if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
        }
        if (accept_thread_.joinable()) accept_thread_.join();
        for (auto& t : dirs_) t.join();
        ::close(lfd_);
        for (int fd : {ground_fd_.load(), space_fd_.load()}) {
            if (fd >= 0) ::close(fd);
        }
    }
    std::uint16_t port() const { return port_; }
    std::uint64_t bits_down() const { return bits_[0].load(); }
    std::uint64_t bits_up() const { return bits_[1].load(); }
    bool both_connected() const { return started_.load(); }
    int bad_hellos() const { return bad_hellos_.load(); }

private:
    static bool read_all(int fd, std::uint8_t* p, std::size_t n)
    {
        while (n > 0) {
            const ssize_t r = ::recv(fd, p, n, 0);
            if (r <= 0) return false;
            p += r;
            n -= static_cast<std::size_t>(r);
        }
        return true;
    }
    static bool write_all(int fd, const std::uint8_t* p, std::size_t n)
    {
        while (n > 0) {
            const ssize_t r = ::send(fd, p, n, MSG_NOSIGNAL);
            if (r <= 0) return false;
            p += r;
            n -= static_cast<std::size_t>(r);
        }
        return true;
    }

    void accept_both()
    {
        while (!stop_ && (ground_fd_ < 0 || space_fd_ < 0)) {
            const int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            std::string line;
            char c = 0;
            while (line.size() < 64 && ::recv(fd, &c, 1, 0) == 1 && c != '\n') line += c;
            std::atomic<int>* slot = line == "QAIR1 ground" ? &ground_fd_ : line == "QAIR1 space" ? &space_fd_ : nullptr;
            if (slot == nullptr || *slot >= 0) {
                const std::string err = "ERR expected QAIR1 ground|space once\n";
                write_all(fd, reinterpret_cast<const std::uint8_t*>(err.data()), err.size());
                ::close(fd);
                ++bad_hellos_;
                continue;
            }
            const std::string ok = "OK " + std::to_string(static_cast<long>(cfg_.downlink_bps)) + " " +
                                   std::to_string(static_cast<long>(cfg_.return_bps)) + "\n";
            write_all(fd, reinterpret_cast<const std::uint8_t*>(ok.data()), ok.size());
            *slot = fd;
        }
        if (stop_) return;
        start_ = std::chrono::steady_clock::now();
        started_ = true;
        dirs_.emplace_back([this] { forward(space_fd_, ground_fd_, cfg_.downlink_bps, 0); });
        dirs_.emplace_back([this] { forward(ground_fd_, space_fd_, cfg_.return_bps, 1); });
    }

    // Reads TX_BITS from `src`, paces them to the line rate and writes RX_LLR to `dst`.
    void forward(int src, int dst, double rate, int dir)
    {
        std::array<std::uint8_t, sim::air_header_size> h{};
        std::array<std::uint8_t, sim::air_trailer_size> tr{};
        std::vector<std::uint8_t> packed, bits;
        std::vector<std::int8_t> llrs;
        std::uint64_t sent = 0;
        while (!stop_) {
            const double t = static_cast<double>(sent) / rate;
            if (t >= cfg_.pass_end) {
                sim::air_header end{sim::air_msg_type::end_of_pass, 0, 0, t};
                sim::encode_air_header(end, h);
                write_all(dst, h.data(), h.size());
                return;  // read no more; the client closes when it wants
            }
            if (!read_all(src, h.data(), h.size())) return;
            sim::air_header in;
            const char* err = "";
            if (!sim::decode_air_header(h, in, err) || in.type != sim::air_msg_type::tx_bits) return;
            packed.resize(sim::air_packed_size(in.count));
            if (!read_all(src, packed.data(), packed.size())) return;
            bits.resize(in.count);
            sim::unpack_bits_msb(packed, bits);
            // Pace: this message leaves when the simulated clock reaches its first bit.
            const auto due = start_ + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                          std::chrono::duration<double>(t / cfg_.speed));
            std::this_thread::sleep_until(due);
            const bool down = t >= cfg_.outage_from && t < cfg_.outage_to;
            llrs.resize(in.count);
            for (std::size_t i = 0; i < bits.size(); ++i) llrs[i] = down ? 0 : (bits[i] ? -100 : 100);
            sim::air_header out{sim::air_msg_type::rx_llr, static_cast<std::uint16_t>(down ? 0 : sim::air_flag_link_up),
                                in.count, t};
            sim::encode_air_header(out, h);
            sim::air_link_info info;
            info.link_up = !down;
            info.elevation_deg = cfg_.elevation_deg;
            info.rx_power_dbm = down ? -120.0f : -50.0f;
            info.esn0_db = 12.0f;
            sim::encode_air_trailer(info, tr);
            if (!write_all(dst, h.data(), h.size()) ||
                !write_all(dst, reinterpret_cast<const std::uint8_t*>(llrs.data()), llrs.size()) ||
                !write_all(dst, tr.data(), tr.size())) {
                return;
            }
            sent += in.count;
            bits_[dir] += in.count;
        }
    }

    config cfg_;
    int lfd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<int> ground_fd_{-1}, space_fd_{-1};
    std::atomic<bool> stop_{false}, started_{false};
    std::atomic<int> bad_hellos_{0};
    std::atomic<std::uint64_t> bits_[2] = {0, 0};
    std::chrono::steady_clock::time_point start_;
    std::thread accept_thread_;
    std::vector<std::thread> dirs_;
};

}  // namespace qlink::test
