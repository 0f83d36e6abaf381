// Tests the qlinkd program: two real daemons on loopback through a clean test relay (air wire format)
// carry a file (SHA-256), datagrams, survive an outage, report /status and /metrics (read with curl),
// end the pass, drain on SIGTERM, and refuse bad configurations with exit 2 naming the key.
#include "qlink/modem/cpu.hpp"
#include "support/loopback.hpp"
#include "support/temp_dir.hpp"
#include "unit/terminal/daemon/clean_relay.hpp"
#include "unit/terminal/daemon/qlinkd_proc.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

using namespace std::chrono_literals;
using qlink::test::daemon_proc;
using qlink::test::qlinkd_proc_detail::run;
using qlink::test::qlinkd_proc_detail::slurp;

using qlink::test::temp_dir;

std::string config(const std::string& role, std::uint16_t air_port, const std::string& extra = "")
{
    return "[link]\nrole = \"" + role + "\"\ndrain_timeout_s = 20\n" + "[air]\nport = " + std::to_string(air_port) +
           "\nconnect_timeout_s = 30\n[keys]\nsource = \"memory\"\nmemory_seed = 77\nmemory_keys = 5000\n"
           "[security]\nrotate_every_frames = 64\n" + extra;
}


std::vector<std::uint8_t> random_bytes(std::size_t n, std::uint64_t seed)
{
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

// Writes everything then closes (a thread: the link paces how fast the daemon takes it).
std::thread push(int port, std::vector<std::uint8_t> data, bool close_after = true)
{
    return std::thread([port, d = std::move(data), close_after] {
        const int fd = qlink::test::connect_loopback(static_cast<std::uint16_t>(port), 60);
        if (fd < 0) return;
        std::size_t off = 0;
        while (off < d.size()) {
            const ssize_t n = ::send(fd, d.data() + off, d.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
        if (close_after) ::close(fd);
    });
}

// Reads until `n` bytes arrived or nothing came for `idle` seconds.
std::vector<std::uint8_t> pull(int fd, std::size_t n, int idle_s = 60)
{
    std::vector<std::uint8_t> got;
    std::vector<std::uint8_t> buf(65536);
    timeval tv{idle_s, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (got.size() < n) {
        const ssize_t r = ::recv(fd, buf.data(), buf.size(), 0);
        if (r <= 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + r);
    }
    return got;
}

std::uint64_t num(const json& j)
{
    return j.is_number() ? j.get<std::uint64_t>() : 0;
}

}  // namespace

TEST(qlinkd_process, file_and_datagrams_cross_the_link_intact_through_an_outage)
{
    temp_dir dir;
    qlink::test::clean_relay::config rc;
    rc.outage_from = 0.8;  // sim seconds: during the transfer
    rc.outage_to = 1.3;
    qlink::test::clean_relay relay(rc);
    // Datagrams that cross the link arrive at this local socket on the ground side.
    const int sink = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(sink, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ::getsockname(sink, reinterpret_cast<sockaddr*>(&sa), &sl);
    timeval tv{30, 0};
    ::setsockopt(sink, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    daemon_proc space(dir.path, "space", config("space", relay.port()));
    daemon_proc ground(dir.path, "ground",
                       config("ground", relay.port(), "[user]\nudp_deliver = \"127.0.0.1:" + std::to_string(ntohs(sa.sin_port)) + "\"\n"));
    ASSERT_TRUE(space.wait_ready()) << space.log();
    ASSERT_TRUE(ground.wait_ready()) << ground.log();
    EXPECT_NE(space.out().find("user-tcp-port " + std::to_string(space.tcp)), std::string::npos) << space.out();

    const auto down = random_bytes(300 * 1024, 1);
    const auto up = random_bytes(20 * 1024, 2);
    // One connection at each end: both hold stream 0, and each carries data both ways.
    const int space_conn = qlink::test::connect_loopback(static_cast<std::uint16_t>(space.tcp), 60);
    const int ground_conn = qlink::test::connect_loopback(static_cast<std::uint16_t>(ground.tcp), 60);
    ASSERT_GE(space_conn, 0);
    ASSERT_GE(ground_conn, 0);
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < down.size()) {
            const ssize_t n = ::send(space_conn, down.data() + off, down.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
    });
    std::size_t off = 0;
    while (off < up.size()) {
        const ssize_t n = ::send(ground_conn, up.data() + off, up.size() - off, MSG_NOSIGNAL);
        ASSERT_GT(n, 0);
        off += static_cast<std::size_t>(n);
    }
    // One datagram space -> ground.
    const auto dg = random_bytes(900, 3);
    const int udp = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(static_cast<std::uint16_t>(space.udp));
    ASSERT_EQ(::sendto(udp, dg.data(), dg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to), static_cast<ssize_t>(dg.size()));

    const auto got = pull(ground_conn, down.size());
    writer.join();
    ASSERT_EQ(got.size(), down.size()) << ground.log();
    EXPECT_EQ(qlink::test::sha256_hex(got), qlink::test::sha256_hex(down));
    const auto up_got = pull(space_conn, up.size(), 30);
    EXPECT_EQ(up_got.size(), up.size());
    EXPECT_EQ(qlink::test::sha256_hex(up_got), qlink::test::sha256_hex(up));

    // Datagrams are best effort (no ARQ): the one sent during the transfer may fall into the outage
    // or a lost frame, so once the link is quiet it is sent again until one crosses (3 s per try).
    timeval retry_tv{3, 0};
    ::setsockopt(sink, SOL_SOCKET, SO_RCVTIMEO, &retry_tv, sizeof retry_tv);
    std::vector<std::uint8_t> dg_got(2000);
    ssize_t dn = ::recv(sink, dg_got.data(), dg_got.size(), 0);
    int tries = 1;
    for (; dn < 0 && tries < 10; ++tries) {
        ASSERT_EQ(::sendto(udp, dg.data(), dg.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
                  static_cast<ssize_t>(dg.size()));
        dn = ::recv(sink, dg_got.data(), dg_got.size(), 0);
    }
    ASSERT_EQ(dn, static_cast<ssize_t>(dg.size())) << "no datagram delivered in " << tries << " tries";
    dg_got.resize(static_cast<std::size_t>(dn));
    EXPECT_EQ(dg_got, dg);

    // The outage really happened (the relay erased bits) and ARQ repaired it.
    const auto st_space = space.status();
    const auto st_ground = ground.status();
    ASSERT_FALSE(st_ground.is_discarded());
    EXPECT_EQ(st_ground["role"], "ground");
    EXPECT_EQ(st_space["role"], "space");
    EXPECT_EQ(st_ground["link_state"], "up");
    EXPECT_GT(num(st_ground["frames"]["rx_ok"]), 100u);
    EXPECT_GT(num(st_space["arq"]["retransmissions"]), 0u) << "no retransmission: the outage did not hit the transfer";
    EXPECT_GT(num(st_space["keys"]["rotations"]), 0u);
    // The round trip is the air's (frames each way, the decoders' windows), not queues: the
    // transmitters run at most air.tx_lead_s ahead of the relay and encode at most two frames ahead
    // (~0.18 s here; 0.37 s with neither; seconds once the relay's TCP buffers fill, as they did when
    // a TUN test run saw 10 s of queued return link).
    ASSERT_TRUE(st_space["arq"]["srtt_s"].is_number()) << st_space.dump();
    EXPECT_LT(st_space["arq"]["srtt_s"].get<double>(), 0.6) << st_space.dump();
    EXPECT_GE(num(st_ground["arq"]["bytes_delivered"]), down.size());
    EXPECT_GE(num(st_ground["user"]["bytes_out"]), down.size() + dg.size());
    EXPECT_GE(num(st_space["user"]["bytes_in"]), down.size() + dg.size());
    EXPECT_GT(st_ground["sim_time"].get<double>(), 1.3);
    EXPECT_DOUBLE_EQ(st_ground["elevation_deg"].get<double>(), 45.0);
    EXPECT_TRUE(st_ground["qkd"]["qber"].is_null());  // memory keys: no QKD numbers
    EXPECT_GT(num(st_ground["keys"]["keys_consumed"]), 0u);

    const auto m = ground.metrics();
    const auto rx_ok = m.find("\nqlinkd_frames_rx_ok_total ");
    ASSERT_NE(rx_ok, std::string::npos) << m;
    EXPECT_GT(std::stod(m.substr(rx_ok + 27)), 100.0);
    EXPECT_NE(m.find("qlinkd_link_state{state=\"up\"} 1"), std::string::npos);
    EXPECT_TRUE(ground.get("/nothing").is_discarded());  // 404 -> curl -f fails

    // Logs: one line per event, the outage edges are there, no per-frame lines.
    const auto glog = ground.log();
    EXPECT_NE(glog.find("event=link_down"), std::string::npos) << glog;
    EXPECT_NE(glog.find("event=link_up"), std::string::npos);
    EXPECT_LT(std::count(glog.begin(), glog.end(), '\n'), 200);

    ::close(space_conn);
    ::close(ground_conn);
    ::close(udp);
    ::close(sink);
    EXPECT_EQ(space.terminate(), 0) << space.log();
    EXPECT_EQ(ground.terminate(), 0) << ground.log();
    EXPECT_NE(space.log().find("event=stopped"), std::string::npos);
    // The starting line names the SIMD level the kernels run at (operators compare machines by it).
    const std::string isa_field = "isa=" + std::string(qlink::modem::to_string(qlink::modem::best_isa()));
    EXPECT_NE(space.log().find(isa_field), std::string::npos) << space.log();
}

TEST(qlinkd_process, sigterm_while_the_link_is_gone_reports_undelivered_data)
{
    temp_dir dir;
    qlink::test::clean_relay::config rc;
    rc.outage_from = 0.3;  // and it never comes back
    rc.outage_to = 1e9;
    qlink::test::clean_relay relay(rc);
    std::string scfg = config("space", relay.port());
    scfg.replace(scfg.find("drain_timeout_s = 20"), 20, "drain_timeout_s = 2");
    daemon_proc space(dir.path, "space", scfg);
    daemon_proc ground(dir.path, "ground", config("ground", relay.port()));
    ASSERT_TRUE(space.wait_ready()) << space.log();
    ASSERT_TRUE(ground.wait_ready()) << ground.log();
    auto t = push(space.tcp, random_bytes(200 * 1024, 5));
    t.join();
    // Wait (bounded) until the outage has begun, then stop the sender.
    for (int i = 0; i < 3000 && relay.bits_down() < 1e6 * 0.5; ++i) std::this_thread::sleep_for(10ms);
    ASSERT_GE(relay.bits_down(), 5e5);
    const auto before = space.status();
    EXPECT_EQ(before["link_state"], "down");
    // The drain (2 s) cannot succeed with the link down: qlinkd reports what the far end has not
    // confirmed and exits 3.
    EXPECT_EQ(space.terminate(), 3) << space.log();
    const auto log = space.log();
    EXPECT_NE(log.find("event=undelivered"), std::string::npos) << log;
    EXPECT_NE(log.find("event=stopped"), std::string::npos) << log;
    EXPECT_NE(log.find("undelivered_bytes="), std::string::npos);
    EXPECT_EQ(log.find("undelivered_bytes=0 "), std::string::npos) << log;
}

TEST(qlinkd_process, end_of_pass_ends_the_link)
{
    temp_dir dir;
    qlink::test::clean_relay::config rc;
    rc.pass_end = 0.5;
    qlink::test::clean_relay relay(rc);
    daemon_proc space(dir.path, "space", config("space", relay.port()));
    daemon_proc ground(dir.path, "ground", config("ground", relay.port()));
    ASSERT_TRUE(space.wait_ready()) << space.log();
    ASSERT_TRUE(ground.wait_ready()) << ground.log();
    json st;
    for (int i = 0; i < 3000; ++i) {
        st = ground.status();
        if (!st.is_discarded() && st["link_state"] == "ended") break;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_EQ(st["link_state"], "ended") << ground.log();
    EXPECT_NE(ground.log().find("event=end_of_pass"), std::string::npos);
    EXPECT_EQ(ground.terminate(), 0) << ground.log();
    EXPECT_EQ(space.terminate(), 0) << space.log();
}

TEST(qlinkd_process, exit_after_pass_stops_by_itself)
{
    temp_dir dir;
    qlink::test::clean_relay::config rc;
    rc.pass_end = 0.3;
    qlink::test::clean_relay relay(rc);
    daemon_proc space(dir.path, "space", config("space", relay.port()));
    std::string gcfg = config("ground", relay.port());
    gcfg.replace(gcfg.find("drain_timeout_s"), 0, "exit_after_pass = true\n");
    daemon_proc ground(dir.path, "ground", gcfg);
    ASSERT_TRUE(ground.wait_ready()) << ground.log();
    ASSERT_TRUE(space.wait_ready()) << space.log();
    EXPECT_EQ(ground.wait_exit(120s), 0) << ground.log();
    EXPECT_EQ(space.terminate(), 0) << space.log();
}

TEST(qlinkd_process, bad_configuration_exits_2_naming_the_key)
{
    temp_dir dir;
    const auto bad = dir.path / "bad.toml";
    std::ofstream(bad) << "[link]\nrole = \"ground\"\n[air]\nport = 4000\n[keys]\nsource = \"memory\"\n[arq]\nwindow = 1000\n";
    int st = 0;
    auto out = run(std::string(QLINK_QLINKD_BIN) + " --config " + bad.string() + " 2>&1", &st);
    EXPECT_EQ(st, 2) << out;
    EXPECT_NE(out.find("arq.window"), std::string::npos) << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;

    out = run(std::string(QLINK_QLINKD_BIN) + " --config " + bad.string() + " --check-config 2>&1", &st);
    EXPECT_EQ(st, 2) << out;
    out = run(std::string(QLINK_QLINKD_BIN) + " --config " + (dir.path / "missing.toml").string() + " 2>&1", &st);
    EXPECT_EQ(st, 2);
    EXPECT_NE(out.find("missing.toml"), std::string::npos) << out;
    out = run(std::string(QLINK_QLINKD_BIN) + " --frobnicate 2>&1", &st);
    EXPECT_EQ(st, 2);
    EXPECT_NE(out.find("--frobnicate"), std::string::npos) << out;

    const auto good = dir.path / "good.toml";
    std::ofstream(good) << config("space", 4000);
    out = run(std::string(QLINK_QLINKD_BIN) + " --config " + good.string() + " --check-config 2>&1", &st);
    EXPECT_EQ(st, 0) << out;
    EXPECT_NE(out.find("configuration ok"), std::string::npos) << out;
    out = run(std::string(QLINK_QLINKD_BIN) + " --help 2>&1", &st);
    EXPECT_EQ(st, 0);
    EXPECT_NE(out.find("--check-config"), std::string::npos);

    // A relay that is not there: exit 1 after the connect timeout, with a clear line.
    const auto lonely = dir.path / "lonely.toml";
    std::string cfg = config("ground", qlink::test::free_tcp_port());
    cfg.replace(cfg.find("connect_timeout_s = 30"), 22, "connect_timeout_s = 1");
    std::ofstream(lonely) << cfg;
    out = run(std::string(QLINK_QLINKD_BIN) + " --config " + lonely.string() + " 2>&1", &st);
    EXPECT_EQ(st, 1) << out;
    EXPECT_NE(out.find("event=relay_unreachable"), std::string::npos) << out;
}
