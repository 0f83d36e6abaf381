// qlinkd's TUN interface: /dev/net/tun, address/netmask/MTU/up through ioctls (no ip(8)), the IP packet check.
#include "tun.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace qlink::terminal {

namespace {

std::string errno_text(int e) { return std::string(std::strerror(e)); }

bool missing_device(int e) { return e == ENOENT || e == ENODEV || e == ENXIO; }
bool not_permitted(int e) { return e == EPERM || e == EACCES; }

constexpr const char* cap_hint =
    "qlinkd needs CAP_NET_ADMIN for user.tun (run it as root, `setcap cap_net_admin+ep qlinkd`, or systemd "
    "AmbientCapabilities=CAP_NET_ADMIN), or leave user.tun out";

void fill_name(ifreq& ifr, const std::string& name)
{
    std::memset(&ifr, 0, sizeof ifr);
    std::memcpy(ifr.ifr_name, name.data(), std::min(name.size(), std::size_t{IFNAMSIZ - 1}));
}

void fill_inet(sockaddr& sa, const std::array<std::uint8_t, 4>& a)
{
    sockaddr_in in{};
    in.sin_family = AF_INET;
    std::memcpy(&in.sin_addr, a.data(), 4);
    static_assert(sizeof in <= sizeof sa);
    std::memcpy(&sa, &in, sizeof in);
}

std::array<std::uint8_t, 4> netmask(std::uint8_t length)
{
    const std::uint32_t m = length == 0 ? 0 : ~std::uint32_t{0} << (32 - length);
    return {static_cast<std::uint8_t>(m >> 24), static_cast<std::uint8_t>(m >> 16), static_cast<std::uint8_t>(m >> 8),
            static_cast<std::uint8_t>(m)};
}

std::string dotted(const std::array<std::uint8_t, 4>& a)
{
    return std::to_string(a[0]) + "." + std::to_string(a[1]) + "." + std::to_string(a[2]) + "." + std::to_string(a[3]);
}

}  // namespace

std::string_view to_string(ip_packet_check c)
{
    switch (c) {
    case ip_packet_check::ok: return "ok";
    case ip_packet_check::too_short: return "too_short";
    case ip_packet_check::bad_version: return "bad_version";
    case ip_packet_check::bad_header: return "bad_header";
    case ip_packet_check::length_mismatch: return "length_mismatch";
    }
    return "?";
}

ip_packet_check check_ip_packet(std::span<const std::uint8_t> p)
{
    if (p.empty()) return ip_packet_check::too_short;
    const unsigned version = p[0] >> 4;
    if (version == 4) {
        if (p.size() < 20) return ip_packet_check::too_short;
        const std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0F) * 4;
        const std::size_t total = static_cast<std::size_t>(p[2]) << 8 | p[3];
        if (ihl < 20 || ihl > total) return ip_packet_check::bad_header;
        return total == p.size() ? ip_packet_check::ok : ip_packet_check::length_mismatch;
    }
    if (version == 6) {
        if (p.size() < 40) return ip_packet_check::too_short;
        const std::size_t payload = static_cast<std::size_t>(p[4]) << 8 | p[5];
        return 40 + payload == p.size() ? ip_packet_check::ok : ip_packet_check::length_mismatch;
    }
    return ip_packet_check::bad_version;
}

std::unique_ptr<tun_device> tun_device::open(const config& cfg, std::string& error)
{
    const std::string& name = cfg.name;
    if (name.empty() || name.size() >= IFNAMSIZ) {
        error = "TUN interface name \"" + name + "\" must have 1.." + std::to_string(IFNAMSIZ - 1) + " characters";
        return nullptr;
    }
    const int fd = ::open(cfg.device.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        if (missing_device(e)) {
            error = "cannot create TUN interface " + name + ": " + cfg.device + " is missing (" + errno_text(e) +
                    "): load the tun driver (modprobe tun) or give the container the device (--device /dev/net/tun), "
                    "or leave user.tun out";
        } else if (not_permitted(e)) {
            error = "cannot create TUN interface " + name + ": no access to " + cfg.device + " (" + errno_text(e) + "); " +
                    cap_hint;
        } else {
            error = "cannot create TUN interface " + name + ": open " + cfg.device + ": " + errno_text(e);
        }
        return nullptr;
    }
    std::unique_ptr<tun_device> dev(new tun_device(fd, name));
    ifreq ifr;
    fill_name(ifr, name);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    if (::ioctl(fd, TUNSETIFF, &ifr) != 0) {
        const int e = errno;
        if (not_permitted(e)) {
            error = "cannot create TUN interface " + name + " (" + errno_text(e) + "): " + cap_hint;
        } else if (e == EBUSY) {
            error = "cannot create TUN interface " + name + ": it exists and another process holds it (" + errno_text(e) + ")";
        } else if (e == EINVAL) {
            error = "cannot create TUN interface " + name + ": an interface of that name exists and is not a TUN interface (" +
                    errno_text(e) + ")";
        } else {
            error = "cannot create TUN interface " + name + ": TUNSETIFF: " + errno_text(e);
        }
        return nullptr;
    }

    // Address, netmask, MTU and flags are set through an AF_INET socket, as ip(8) would via netlink.
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        error = "TUN interface " + name + ": socket: " + errno_text(errno);
        return nullptr;
    }
    auto fail = [&](const std::string& what) {
        const int e = errno;
        error = "TUN interface " + name + ": " + what + ": " + errno_text(e) + (not_permitted(e) ? std::string("; ") + cap_hint : "");
        ::close(s);
        return nullptr;
    };
    fill_name(ifr, name);
    ifr.ifr_mtu = static_cast<int>(cfg.mtu);
    if (::ioctl(s, SIOCSIFMTU, &ifr) != 0) return fail("setting MTU " + std::to_string(cfg.mtu) + " (SIOCSIFMTU)");
    if (cfg.address) {
        fill_name(ifr, name);
        fill_inet(ifr.ifr_addr, cfg.address->address);
        if (::ioctl(s, SIOCSIFADDR, &ifr) != 0) return fail("setting address " + dotted(cfg.address->address) + " (SIOCSIFADDR)");
        fill_name(ifr, name);
        fill_inet(ifr.ifr_netmask, netmask(cfg.address->length));
        if (::ioctl(s, SIOCSIFNETMASK, &ifr) != 0) {
            return fail("setting netmask /" + std::to_string(cfg.address->length) + " (SIOCSIFNETMASK)");
        }
        fill_name(ifr, name);
        if (::ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return fail("reading flags (SIOCGIFFLAGS)");
        ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
        if (::ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return fail("bringing it up (SIOCSIFFLAGS)");
    }
    ::close(s);
    return dev;
}

tun_device::~tun_device()
{
    if (fd_ >= 0) ::close(fd_);
}

tun_device::io_result tun_device::read(std::span<std::uint8_t> out)
{
    const ssize_t n = ::read(fd_, out.data(), out.size());
    if (n > 0) return {io_status::ok, static_cast<std::size_t>(n), 0};
    if (n == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return {io_status::would_block, 0, 0};
    return {io_status::failed, 0, errno};
}

tun_device::io_result tun_device::write(std::span<const std::uint8_t> packet)
{
    const ssize_t n = ::write(fd_, packet.data(), packet.size());
    if (n == static_cast<ssize_t>(packet.size())) return {io_status::ok, packet.size(), 0};
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return {io_status::would_block, 0, 0};
    return {io_status::failed, 0, n < 0 ? errno : EIO};
}

}  // namespace qlink::terminal
