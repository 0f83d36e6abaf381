// qlinkd's TUN interface: opening and configuring it with ioctls, and the IP packet check both directions use.
#pragma once

#include "qlink/terminal/qlinkd_config.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace qlink::terminal {

/// What check_ip_packet finds. Anything but ok is dropped and counted, never sent or written.
enum class ip_packet_check : std::uint8_t { ok, too_short, bad_version, bad_header, length_mismatch };
std::string_view to_string(ip_packet_check c);

/// IPv4 (version 4, IHL >= 5, total length == size) or IPv6 (version 6, 40 + payload length == size;
/// no jumbograms). A TUN read returns exactly one packet, so any other length is a broken packet.
ip_packet_check check_ip_packet(std::span<const std::uint8_t> packet);

/// A non-persistent TUN interface (IFF_TUN | IFF_NO_PI) owned by this process: it vanishes when the
/// fd closes. The fd is non-blocking, for the user thread's poll loop.
class tun_device {
public:
    struct config {
        std::string name;                     ///< 1..15 characters
        std::optional<ipv4_prefix> address;  ///< set it and bring the interface up; nullopt: leave both to the operator
        std::uint32_t mtu = 1400;
        std::string device = "/dev/net/tun";  ///< the clone device (another path only in tests)
    };

    /// nullptr and one line in `error` naming what is missing (CAP_NET_ADMIN, /dev/net/tun) or failed.
    static std::unique_ptr<tun_device> open(const config& cfg, std::string& error);
    ~tun_device();
    tun_device(const tun_device&) = delete;
    tun_device& operator=(const tun_device&) = delete;

    int fd() const { return fd_; }
    const std::string& name() const { return name_; }

    enum class io_status : std::uint8_t { ok, would_block, failed };
    struct io_result {
        io_status status = io_status::would_block;
        std::size_t bytes = 0;
        int error = 0;  ///< errno when failed
    };
    /// One packet into `out` (a packet longer than `out` comes back truncated: give it mtu bytes or more).
    io_result read(std::span<std::uint8_t> out);
    /// One whole packet to the kernel.
    io_result write(std::span<const std::uint8_t> packet);

private:
    tun_device(int fd, std::string name) : fd_(fd), name_(std::move(name)) {}
    int fd_ = -1;
    std::string name_;
};

}  // namespace qlink::terminal
