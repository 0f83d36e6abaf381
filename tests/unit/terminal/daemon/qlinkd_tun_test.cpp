// Tests qlinkd's TUN interface (user.tun) with real kernel interfaces and two real daemons through the test relay:
// IP packets routed into one end's TUN come out of the other's byte for byte (both directions), malformed
// packets are counted and not sent, the UDP port works alongside with no cross-talk, counters reach
// /status and /metrics, and without CAP_NET_ADMIN qlinkd exits 1 with one line saying so.
#include "qlink/terminal/qlinkd_config.hpp"
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"
#include "tun.hpp"
#include "unit/terminal/daemon/clean_relay.hpp"
#include "unit/terminal/daemon/qlinkd_proc.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;
using qlink::test::daemon_proc;
using qlink::test::qlinkd_proc_detail::slurp;
using bytes = std::vector<std::uint8_t>;

using qlink::test::temp_dir;

std::string config(const std::string& role, std::uint16_t air_port, const std::string& user)
{
    return "[link]\nrole = \"" + role + "\"\ndrain_timeout_s = 5\n[air]\nport = " + std::to_string(air_port) +
           "\nconnect_timeout_s = 30\n[keys]\nsource = \"memory\"\nmemory_seed = 78\nmemory_keys = 5000\n"
           "[security]\nrotate_every_frames = 64\n[user]\n" + user;
}

// Why this machine cannot make a TUN interface ("" when it can): the test then skips.
std::string tun_unavailable()
{
    qlink::terminal::tun_device::config tc;
    tc.name = "qlp" + std::to_string(::getpid());
    std::string error;
    return qlink::terminal::tun_device::open(tc, error) ? std::string{} : error;
}

// Everything crossing one interface, taken with an AF_PACKET socket (SOCK_DGRAM: a TUN has no link
// header, so each capture is the IP packet itself): what the kernel sends into the TUN (qlinkd
// reads it) is PACKET_OUTGOING, what qlinkd writes into it is PACKET_HOST. Keeps every packet seen.
class capture {
public:
    struct packet {
        int type;
        bytes data;
    };
    explicit capture(const std::string& ifname)
    {
        ifindex_ = static_cast<int>(::if_nametoindex(ifname.c_str()));
        fd_ = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, htons(ETH_P_ALL));
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(ETH_P_ALL);
        sll.sll_ifindex = ifindex_;
        ok_ = ifindex_ > 0 && fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&sll), sizeof sll) == 0;
    }
    ~capture()
    {
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const { return ok_; }
    /// The first packet of `type` matching `want` (earlier ones included), waiting at most `limit`.
    std::optional<bytes> wait_for(int type, const std::function<bool(const bytes&)>& want, std::chrono::milliseconds limit)
    {
        const auto end = std::chrono::steady_clock::now() + limit;
        std::size_t i = 0;
        for (;;) {
            for (; i < seen.size(); ++i) {
                if (seen[i].type == type && want(seen[i].data)) return seen[i].data;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::min<long>(left.count(), 100))) != 1) continue;
            bytes buf(70000);
            sockaddr_ll from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n > 0) {
                buf.resize(static_cast<std::size_t>(n));
                seen.push_back({from.sll_pkttype, std::move(buf)});
            }
        }
    }
    /// Hands `data` to the interface as if the kernel sent it: the TUN's reader (qlinkd) gets it as is.
    bool inject(const bytes& data)
    {
        sockaddr_ll sll{};
        sll.sll_family = AF_PACKET;
        sll.sll_protocol = htons(ETH_P_IP);
        sll.sll_ifindex = ifindex_;
        return ::sendto(fd_, data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&sll), sizeof sll) ==
               static_cast<ssize_t>(data.size());
    }
    std::vector<packet> seen;

private:
    int fd_ = -1, ifindex_ = 0;
    bool ok_ = false;
};

// UDP payload of an IPv4 UDP packet (empty when it is not one).
bytes udp_payload(const bytes& p)
{
    if (p.size() < 28 || p[0] >> 4 != 4 || p[9] != 17) return {};
    const std::size_t ihl = static_cast<std::size_t>(p[0] & 15) * 4;
    if (p.size() < ihl + 8) return {};
    return bytes(p.begin() + static_cast<std::ptrdiff_t>(ihl + 8), p.end());
}

bool contains(const bytes& hay, const bytes& needle)
{
    return !needle.empty() && std::search(hay.begin(), hay.end(), needle.begin(), needle.end()) != hay.end();
}

int udp_socket_bound(std::uint32_t host_order_address)
{
    const int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(host_order_address);
    if (s < 0 || ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
    return s;
}

bool send_to(int s, std::uint32_t host_order_address, std::uint16_t port, const bytes& d)
{
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(host_order_address);
    return ::sendto(s, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to) == static_cast<ssize_t>(d.size());
}

std::uint64_t num(const json& j) { return j.is_number() ? j.get<std::uint64_t>() : 0; }

// A valid-looking IPv4/UDP packet: the UDP port carries it as an opaque datagram, and if the channels
// were ever mixed the far end would hand it to its TUN.
bytes ipv4_lookalike(std::uint8_t x)
{
    bytes p(60, 0);
    p[0] = 0x45;
    p[3] = 60;
    p[8] = 64;
    p[9] = 17;
    p[12] = 10;
    p[13] = 77;
    p[14] = x;
    p[15] = 9;
    p[16] = 10;
    p[17] = 77;
    p[18] = x;
    p[19] = 1;
    for (std::size_t i = 28; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>(0xC0 + i);
    return p;
}

}  // namespace

TEST(qlinkd_tun_process, ip_packets_cross_between_two_tun_interfaces_beside_the_udp_port)
{
    if (const auto why = tun_unavailable(); !why.empty()) GTEST_SKIP() << "no TUN interface possible here: " << why;
    const int pid = static_cast<int>(::getpid());
    const auto x = static_cast<std::uint8_t>(20 + pid % 200);
    const std::string if_a = "qlt" + std::to_string(pid) + "a", if_b = "qlt" + std::to_string(pid) + "b";
    ASSERT_EQ(::if_nametoindex(if_a.c_str()), 0u) << if_a << " exists already";
    const std::uint32_t net_a = 0x0A4D0000u | static_cast<std::uint32_t>(x) << 8;  // 10.77.x.0/24, ground
    const std::uint32_t net_b = 0x0A4F0000u | static_cast<std::uint32_t>(x) << 8;  // 10.79.x.0/24, space
    const std::string xs = std::to_string(x);

    temp_dir dir;
    qlink::test::clean_relay relay(qlink::test::clean_relay::config{});
    const int sink = udp_socket_bound(INADDR_LOOPBACK);  // the UDP port's datagrams arrive here (ground)
    ASSERT_GE(sink, 0);
    sockaddr_in sa{};
    socklen_t sl = sizeof sa;
    ::getsockname(sink, reinterpret_cast<sockaddr*>(&sa), &sl);
    timeval tv{0, 200 * 1000};
    ::setsockopt(sink, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    daemon_proc ground(dir.path, "ground",
                       config("ground", relay.port(),
                              "tun = \"" + if_a + "\"\ntun_address = \"10.77." + xs + ".1/24\"\nudp_deliver = \"127.0.0.1:" +
                                  std::to_string(ntohs(sa.sin_port)) + "\"\n"));
    daemon_proc space(dir.path, "space",
                      config("space", relay.port(),
                             "tun = \"" + if_b + "\"\ntun_address = \"10.79." + xs + ".1/24\"\ntun_mtu = 1300\ntun_queue_bytes = 16384\n"));
    ASSERT_TRUE(ground.wait_ready()) << ground.log();
    ASSERT_TRUE(space.wait_ready()) << space.log();
    EXPECT_NE(ground.log().find("event=tun_ready tun=" + if_a + " address=10.77." + xs + ".1/24 mtu=1400"), std::string::npos)
        << ground.log();

    capture cap_a(if_a), cap_b(if_b);
    ASSERT_TRUE(cap_a.ok() && cap_b.ok()) << "cannot capture on " << if_a << " / " << if_b << ": " << std::strerror(errno);

    // One direction: a datagram from ground's TUN address to a non-local address of its subnet is
    // routed into qlt..a; ground qlinkd carries it; space qlinkd writes it into qlt..b. Datagrams are
    // not retransmitted, and the first ones may go out before the receivers lock: resend (bounded)
    // until one crosses, each with its own payload.
    auto cross = [&](std::uint32_t net, capture& in, capture& out, const char* what) -> bool {
        const int s = udp_socket_bound(net | 1);
        if (s < 0) {
            ADD_FAILURE() << what << ": cannot bind to the TUN address: " << std::strerror(errno);
            return false;
        }
        std::mt19937_64 rng(net);
        for (int attempt = 0; attempt < 15; ++attempt) {
            bytes payload(1000 + static_cast<std::size_t>(attempt));
            for (auto& b : payload) b = static_cast<std::uint8_t>(rng());
            EXPECT_TRUE(send_to(s, net | 9, 7777, payload));
            auto is_it = [&](const bytes& p) { return udp_payload(p) == payload; };
            const auto sent = in.wait_for(PACKET_OUTGOING, is_it, 2000ms);
            if (!sent) {
                ADD_FAILURE() << what << ": the kernel did not route the datagram into the TUN interface";
                break;
            }
            const auto arrived = out.wait_for(PACKET_HOST, is_it, 2000ms);
            if (arrived) {
                EXPECT_EQ(*arrived, *sent) << what << ": the IP packet changed on the way";
                EXPECT_EQ(qlink::terminal::check_ip_packet(*arrived), qlink::terminal::ip_packet_check::ok);
                ::close(s);
                return true;
            }
        }
        ::close(s);
        return false;
    };
    // On failure both ends' /status (frames decoded, TUN counters) say where the packets stopped.
    ASSERT_TRUE(cross(net_a, cap_a, cap_b, "ground -> space")) << ground.log() << space.log() << "\nground /status "
                                                              << ground.status().dump() << "\nspace /status " << space.status().dump();
    EXPECT_TRUE(cross(net_b, cap_b, cap_a, "space -> ground (return link)")) << space.log() << ground.log() << "\nground /status "
                                                                            << ground.status().dump() << "\nspace /status "
                                                                            << space.status().dump();

    // Backpressure: a burst far above the downlink's rate into space's TUN. qlinkd takes what the IP
    // queue (user.tun_queue_bytes, 16 KiB here) holds and drops the rest, counted; the UDP port
    // below must still get through while the IP queue is full.
    const int flood = udp_socket_bound(net_b | 1);
    ASSERT_GE(flood, 0);
    const bytes chunk(1200, 0xF1);
    timeval stv{2, 0};  // the TUN's queue (500 packets) takes the burst at once; bounded anyway
    ::setsockopt(flood, SOL_SOCKET, SO_SNDTIMEO, &stv, sizeof stv);
    int flooded = 0;
    for (int i = 0; i < 400; ++i) {
        if (send_to(flood, net_b | 9, 7778, chunk)) ++flooded;
    }
    ::close(flood);
    EXPECT_EQ(flooded, 400);

    // Malformed packets handed to ground's TUN reader: counted, never sent.
    bytes bad_version = ipv4_lookalike(x);
    bad_version[0] = 0x75;
    bytes short_length = ipv4_lookalike(x);
    short_length[3] = 80;  // says 80 bytes, has 60
    ASSERT_TRUE(cap_a.inject(bad_version)) << std::strerror(errno);
    ASSERT_TRUE(cap_a.inject(short_length)) << std::strerror(errno);

    // The UDP port beside the TUN: space's UDP port -> ground's udp_deliver sink. The datagram is a
    // valid IPv4 packet itself, so a mix-up would put it into qlt..a.
    const bytes via_udp = ipv4_lookalike(x);
    const int u = udp_socket_bound(INADDR_LOOPBACK);
    bool got_udp = false;
    std::vector<bytes> sink_got;
    for (int attempt = 0; attempt < 10 && !got_udp; ++attempt) {
        ASSERT_TRUE(send_to(u, INADDR_LOOPBACK, static_cast<std::uint16_t>(space.udp), via_udp));
        for (int i = 0; i < 10 && !got_udp; ++i) {
            bytes buf(2000);
            const ssize_t n = ::recv(sink, buf.data(), buf.size(), 0);
            if (n < 0) continue;
            buf.resize(static_cast<std::size_t>(n));
            got_udp = buf == via_udp;
            sink_got.push_back(std::move(buf));
        }
    }
    ::close(u);
    EXPECT_TRUE(got_udp) << "the UDP port's datagram never arrived";
    for (const auto& d : sink_got) {
        EXPECT_EQ(d, via_udp) << "something else than the UDP port's datagram reached udp_deliver";
    }
    // Give a mixed-up copy time to show, then look at everything qlt..a and qlt..b got from qlinkd.
    (void)cap_a.wait_for(PACKET_HOST, [&](const bytes& p) { return p == via_udp; }, 1000ms);
    (void)cap_b.wait_for(PACKET_HOST, [&](const bytes& p) { return contains(p, bad_version) || contains(p, short_length); }, 500ms);
    for (const auto& p : cap_a.seen) {
        if (p.type == PACKET_HOST) {
            EXPECT_NE(p.data, via_udp) << "the UDP port's datagram came out of the TUN interface";
        }
    }
    for (const auto& p : cap_b.seen) {
        if (p.type == PACKET_HOST) {
            EXPECT_NE(p.data, bad_version) << "a malformed packet crossed the link";
            EXPECT_NE(p.data, short_length) << "a malformed packet crossed the link";
        }
    }

    // Counters.
    const auto gs = ground.status();
    const auto ss = space.status();
    ASSERT_FALSE(gs.is_discarded());
    ASSERT_TRUE(gs["tun"].is_object()) << gs.dump();
    EXPECT_EQ(gs["tun"]["interface"], if_a);
    EXPECT_EQ(ss["tun"]["interface"], if_b);
    EXPECT_GE(num(gs["tun"]["packets_in"]), 1u);
    EXPECT_GE(num(ss["tun"]["packets_out"]), 1u);
    EXPECT_GE(num(ss["tun"]["packets_in"]), 1u);
    EXPECT_GE(num(gs["tun"]["packets_out"]), 1u);
    EXPECT_EQ(num(gs["tun"]["malformed"]), 2u) << gs.dump();
    EXPECT_GE(num(gs["tun"]["packets_dropped"]), 2u);
    EXPECT_EQ(num(ss["tun"]["malformed"]), 0u);
    // The burst: most of it dropped at once for lack of room (not queued for seconds), what was taken
    // went out, and every loss is in packets_dropped.
    EXPECT_GT(num(ss["tun"]["link_full"]), 100u) << ss.dump();
    EXPECT_LT(num(ss["tun"]["packets_in"]), static_cast<std::uint64_t>(flooded)) << ss.dump();
    EXPECT_GE(num(ss["tun"]["packets_dropped"]), num(ss["tun"]["link_full"]));
    EXPECT_GT(num(gs["tun"]["packets_out"]), 10u) << "some of the burst must have crossed: " << gs.dump();
    const auto m = ground.metrics();
    EXPECT_NE(m.find("\nqlinkd_tun_malformed_total 2\n"), std::string::npos) << m;
    EXPECT_NE(m.find("\nqlinkd_tun_packets_in_total "), std::string::npos) << m;

    ::close(sink);
    EXPECT_EQ(ground.terminate(), 0) << ground.log();
    EXPECT_EQ(space.terminate(), 0) << space.log();
    EXPECT_NE(ground.log().find("event=tun_closed"), std::string::npos);
    // Not persistent: the interfaces left with their daemons.
    EXPECT_EQ(::if_nametoindex(if_a.c_str()), 0u);
    EXPECT_EQ(::if_nametoindex(if_b.c_str()), 0u);
}

TEST(qlinkd_tun_process, without_cap_net_admin_one_clear_line_and_exit_1)
{
    temp_dir dir;
    const auto cfg = dir.path / "nocap.toml";
    std::ofstream(cfg) << config("ground", qlink::test::free_tcp_port(), "tun = \"qln" + std::to_string(::getpid()) + "\"\n");
    const auto log = dir.path / "nocap.log";
    const pid_t child = ::fork();
    if (child == 0) {
        // Drop CAP_NET_ADMIN from the bounding set: the exec'd qlinkd runs without it even as root.
        if (::prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) != 0) ::_exit(99);
        const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::execl(QLINK_QLINKD_BIN, "qlinkd", "--config", cfg.c_str(), nullptr);
        ::_exit(127);
    }
    ASSERT_GT(child, 0);
    int st = 0;
    for (int i = 0; i < 600 && ::waitpid(child, &st, WNOHANG) == 0; ++i) std::this_thread::sleep_for(50ms);
    if (::waitpid(child, &st, WNOHANG) == 0) {
        ::kill(child, SIGKILL);
        ::waitpid(child, &st, 0);
        FAIL() << "qlinkd did not exit: " << slurp(log);
    }
    ASSERT_TRUE(WIFEXITED(st));
    if (WEXITSTATUS(st) == 99) GTEST_SKIP() << "cannot drop CAP_NET_ADMIN here (no CAP_SETPCAP)";
    const auto out = slurp(log);
    EXPECT_EQ(WEXITSTATUS(st), 1) << out;
    // One error line, the last one, saying what is missing.
    EXPECT_EQ(out.find("level=error"), out.rfind("level=error")) << out;
    const auto e = out.find("level=error");
    ASSERT_NE(e, std::string::npos) << out;
    const auto line = out.substr(e);
    EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << out;
    EXPECT_NE(line.find("event=tun_failed"), std::string::npos) << line;
    EXPECT_NE(line.find("CAP_NET_ADMIN"), std::string::npos) << line;
    EXPECT_EQ(::if_nametoindex(("qln" + std::to_string(::getpid())).c_str()), 0u);
}
