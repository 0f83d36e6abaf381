// Tests the demo's parts that need no daemon: the in-process PKI (checked by the openssl CLI), child
// processes (announcement lines, logs, stop/kill), loopback HTTP GET, and `qlink demo` option errors.
#include "cli/cli.hpp"
#include "demo/pki.hpp"
#include "demo/process.hpp"
#include "qlink/terminal/demo.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace qlink::terminal {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

int run_cmd(const std::string& cmd, std::string& out) {
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int st = ::pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

using qlink::test::temp_dir;

TEST(demo_pki, openssl_verifies_the_chain_names_and_usage) {
    temp_dir d;
    demo_detail::make_demo_pki(d.path, {"KME_A", "SAE_B"});
    for (const char* n : {"KME_A", "SAE_B"}) {
        const std::string crt = (d.path / (std::string(n) + ".crt")).string();
        const std::string key = (d.path / (std::string(n) + ".key")).string();
        std::string out;
        ASSERT_EQ(run_cmd("openssl verify -purpose sslserver -CAfile " + (d.path / "ca.crt").string() + " " + crt + " 2>&1", out), 0) << out;
        out.clear();
        ASSERT_EQ(run_cmd("openssl verify -purpose sslclient -CAfile " + (d.path / "ca.crt").string() + " " + crt + " 2>&1", out), 0) << out;
        out.clear();
        ASSERT_EQ(run_cmd("openssl x509 -noout -subject -ext subjectAltName -in " + crt + " 2>&1", out), 0) << out;
        EXPECT_NE(out.find("CN = " + std::string(n)), std::string::npos) << out;
        EXPECT_NE(out.find("DNS:localhost"), std::string::npos) << out;
        EXPECT_NE(out.find("IP Address:127.0.0.1"), std::string::npos) << out;
        // The key belongs to the certificate and is private to its owner.
        std::string a, b;
        ASSERT_EQ(run_cmd("openssl x509 -noout -pubkey -in " + crt, a), 0);
        ASSERT_EQ(run_cmd("openssl pkey -pubout -in " + key, b), 0);
        EXPECT_EQ(a, b);
        struct stat st {};
        ASSERT_EQ(::stat(key.c_str(), &st), 0);
        EXPECT_EQ(st.st_mode & 0777, 0600u);
    }
    // The CA's private key is never written.
    EXPECT_FALSE(fs::exists(d.path / "ca.key"));
    // A certificate from another demo run's CA does not verify against this one.
    temp_dir other;
    demo_detail::make_demo_pki(other.path, {"KME_A"});
    std::string out;
    EXPECT_NE(run_cmd("openssl verify -CAfile " + (d.path / "ca.crt").string() + " " + (other.path / "KME_A.crt").string() + " 2>&1", out), 0);
}

TEST(demo_child, announcement_lines_log_and_exit_status) {
    temp_dir d;
    const fs::path log = d.path / "c.log";
    demo_detail::child c("sh", {"/bin/sh", "-c", "echo hello; echo 'air-port 4242'; echo oops >&2; sleep 0.2; exit 3"}, log);
    const auto v = c.wait_line("air-port ", 5s);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ(*v, "4242");
    EXPECT_FALSE(c.wait_line("qkd-port ", 3s).has_value());  // the child exits without saying it
    for (int i = 0; i < 100 && c.running(); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_FALSE(c.running());
    EXPECT_EQ(c.exit_code(), 3);
    EXPECT_EQ(c.exit_status(), "exit 3");
    std::ifstream f(log);
    std::stringstream s;
    s << f.rdbuf();
    EXPECT_NE(s.str().find("hello"), std::string::npos);
    EXPECT_NE(s.str().find("oops"), std::string::npos);
}

TEST(demo_child, stop_escalates_to_sigkill_and_missing_program_is_reported) {
    temp_dir d;
    // Ignores SIGTERM: stop() must SIGKILL it after the grace period.
    demo_detail::child c("stubborn", {"/bin/sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; done"}, d.path / "s.log");
    ASSERT_TRUE(c.wait_line("up", 5s).has_value());
    EXPECT_FALSE(c.stop(300ms));
    EXPECT_FALSE(c.running());
    EXPECT_EQ(c.exit_status(), "killed by signal 9");

    demo_detail::child gone("gone", {"/nonexistent/qlinkd"}, d.path / "g.log");
    for (int i = 0; i < 100 && gone.running(); ++i) std::this_thread::sleep_for(20ms);
    EXPECT_EQ(gone.exit_code(), 127);
}

TEST(demo_http, get_against_python_http_server) {
    temp_dir d;
    std::ofstream(d.path / "status") << "{\"role\":\"ground\"}";
    // Port from the kernel, then python3's http.server (a real peer) on it.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    const auto port = ntohs(a.sin_port);
    demo_detail::child srv("http", {"/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", "--directory", d.path.string(),
                                    std::to_string(port)},
                           d.path / "http.log");
    std::optional<std::string> body;
    for (int i = 0; i < 250 && !body; ++i) {
        body = demo_detail::http_get(port, "/status", 1000ms);
        if (!body) std::this_thread::sleep_for(20ms);
    }
    ASSERT_TRUE(body.has_value());
    EXPECT_EQ(*body, "{\"role\":\"ground\"}");
    EXPECT_FALSE(demo_detail::http_get(port, "/missing", 1000ms).has_value());  // 404 is not a body
    srv.stop(2000ms);
    EXPECT_FALSE(demo_detail::http_get(port, "/status", 500ms).has_value());  // nobody listening
}

struct outcome {
    int code;
    std::string out, err;
};

outcome qlink(std::vector<std::string> args) {
    std::vector<std::string_view> v(args.begin(), args.end());
    std::ostringstream o, e;
    const int c = cli::run(v, o, e);
    return {c, o.str(), e.str()};
}

TEST(pass_demo_cli, help_and_option_errors_are_single_clear_lines) {
    auto h = qlink({"demo", "--help"});
    EXPECT_EQ(h.code, 0);
    for (const char* o : {"--tle", "--station", "--start", "--speed", "--out", "--file"})
        EXPECT_NE(h.out.find(o), std::string::npos) << o;

    temp_dir d;
    const std::string out = (d.path / "o").string();
    auto bad_station = qlink({"demo", "--station", "95,4,0", "--out", out, "--bin-dir", "/bin"});
    EXPECT_EQ(bad_station.code, cli::exit_usage);
    EXPECT_EQ(std::count(bad_station.err.begin(), bad_station.err.end(), '\n'), 1) << bad_station.err;

    auto no_bins = qlink({"demo", "--bin-dir", d.path.string(), "--out", out});
    EXPECT_EQ(no_bins.code, cli::exit_usage);
    EXPECT_NE(no_bins.err.find("cannot find the 'qlink-sim' program"), std::string::npos) << no_bins.err;

    auto bad_speed = qlink({"demo", "--speed", "0"});
    EXPECT_EQ(bad_speed.code, cli::exit_usage);
    EXPECT_NE(bad_speed.err.find("--speed"), std::string::npos);

    auto bad_progress = qlink({"demo", "--progress", "maybe"});
    EXPECT_EQ(bad_progress.code, cli::exit_usage);

    ASSERT_TRUE(find_bundled_tle().has_value());
    // Fake programs that exist but are not our daemons: the station/TLE checks run before any start.
    fs::create_directories(d.path / "bin");
    for (const char* n : {"qlink-sim", "qkmd", "qlinkd"}) {
        std::ofstream(d.path / "bin" / n) << "#!/bin/sh\nexit 1\n";
        fs::permissions(d.path / "bin" / n, fs::perms::owner_all);
    }
    std::ofstream(d.path / "bad.tle") << "not a tle\n";
    auto bad_tle = qlink({"demo", "--bin-dir", (d.path / "bin").string(), "--tle", (d.path / "bad.tle").string(), "--out", out});
    EXPECT_EQ(bad_tle.code, cli::exit_usage);
    EXPECT_NE(bad_tle.err.find("--tle"), std::string::npos) << bad_tle.err;
    auto bad_start = qlink({"demo", "--bin-dir", (d.path / "bin").string(), "--start", "yesterday", "--out", out});
    EXPECT_EQ(bad_start.code, cli::exit_usage);
    EXPECT_NE(bad_start.err.find("--start"), std::string::npos) << bad_start.err;
}

TEST(pass_demo_cli, a_simulator_that_fails_is_reported_and_the_report_still_written) {
    temp_dir d;
    fs::create_directories(d.path / "bin");
    for (const char* n : {"qlink-sim", "qkmd", "qlinkd"}) {
        std::ofstream(d.path / "bin" / n) << "#!/bin/sh\necho \"$0: refusing to run\" >&2\nexit 1\n";
        fs::permissions(d.path / "bin" / n, fs::perms::owner_all);
    }
    const fs::path out = d.path / "o";
    auto r = qlink({"demo", "--bin-dir", (d.path / "bin").string(), "--out", out.string(), "--progress", "off"});
    EXPECT_EQ(r.code, cli::exit_failed);
    EXPECT_NE(r.err.find("qlink-sim did not announce its air port"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("refusing to run"), std::string::npos) << r.err;  // the log tail is quoted
    EXPECT_TRUE(fs::exists(out / "report.html"));
    EXPECT_TRUE(fs::exists(out / "timeseries.csv"));
}

// The orchestrator against test doubles of the three programs (fake_daemons.py): configurations,
// ready files, user data through the "link", polling, fade/rotation bookkeeping, the ETSI 014 key
// check over mutual TLS with the demo's own PKI, the report, and a daemon killed and restarted.
struct fake_bins {
    temp_dir d;
    fake_bins() {
        const char* src = std::getenv("QLINK_SOURCE_DIR");
        const std::string py = std::string(src ? src : ".") + "/tests/unit/terminal/demo/fake_daemons.py";
        fs::create_directories(d.path / "bin");
        for (auto [name, mode] : {std::pair{"qlink-sim", "sim"}, {"qkmd", "qkmd"}, {"qlinkd", "qlinkd"}}) {
            std::ofstream(d.path / "bin" / name) << "#!/bin/sh\nexec python3 " << py << ' ' << mode << " \"$@\"\n";
            fs::permissions(d.path / "bin" / name, fs::perms::owner_all);
        }
    }
    demo_config config() const {
        demo_config c;
        c.bin_dir = d.path / "bin";
        c.out_dir = d.path / "out";
        c.speed = 10;  // the fake pass: FAKE_PASS_S = 40 simulated seconds
        c.rotate_every_s = 10;
        c.generated_bytes = 300000;
        c.progress = false;
        c.wall_timeout_s = 60;
        return c;
    }
};

TEST(pass_demo_orchestrator, full_run_against_fake_daemons) {
    ::setenv("FAKE_PASS_S", "40", 1);
    fake_bins f;
    std::ostringstream out, err;
    const auto r = run_demo(f.config(), out, err);
    const std::string ctx = out.str() + err.str();
    EXPECT_TRUE(r.ok) << r.failure << "\n" << ctx;
    EXPECT_TRUE(r.file_intact) << ctx;
    EXPECT_EQ(r.bytes_delivered, 300000u);
    EXPECT_TRUE(r.keys_agree) << ctx;
    EXPECT_TRUE(r.keys_unique) << ctx;
    // The fake pass's one fade comes after the file has arrived: nothing at stake, so it is not
    // counted (fades are counted only while data is undelivered, see demo_run::summarise).
    EXPECT_EQ(r.fades, 0u) << ctx;
    EXPECT_EQ(r.fades_recovered, 0u) << ctx;
    EXPECT_GE(r.rotations, 6u) << ctx;  // 3 per end in 40 s at one per 10 s
    EXPECT_DOUBLE_EQ(r.downlink_bps, 1e6);
    ASSERT_TRUE(r.report.ok) << r.report.error;
    std::ifstream h(r.report.html);
    std::stringstream hs;
    hs << h.rdbuf();
    for (auto id : report_plot_ids()) EXPECT_NE(hs.str().find("id=\"plot-" + std::string(id) + "\""), std::string::npos) << id;
    EXPECT_NE(hs.str().find("class=\"link-down\""), std::string::npos);
    EXPECT_NE(ctx.find("PASS"), std::string::npos) << ctx;
    EXPECT_GT(r.series.samples.size(), 8u);
    // The fake simulator's control port was found (the fake file arrives within one poll, too fast for
    // the scripted cloud; e2e_pass_test checks the cloud itself).
    std::ifstream demo_log(f.d.path / "out" / "logs" / "demo.log");
    std::stringstream dl;
    dl << demo_log.rdbuf();
    EXPECT_EQ(dl.str().find("no control port"), std::string::npos) << dl.str();
    // Configurations a newcomer can start from, and the PKI, are in the work dir.
    for (const char* p : {"space/qlinkd.toml", "ground/qlinkd.toml", "alice/qkmd.toml", "bob/qkmd.toml", "pki/ca.crt",
                          "pki/SAE_A.key", "alice/qkd-auth.psk", "timeseries.csv", "timeseries.json", "logs/qlink-sim.log"})
        EXPECT_TRUE(fs::exists(f.d.path / "out" / p)) << p;
}

TEST(pass_demo_orchestrator, daemon_killed_and_restarted_mid_pass) {
    ::setenv("FAKE_PASS_S", "40", 1);
    fake_bins f;
    auto c = f.config();
    bool killed = false, restarted = false;
    int polls = 0;
    c.on_poll = [&](demo_control& ctl) {
        if (!killed && ctl.sim_time_s() > 8) {
            killed = ctl.kill_daemon("qkmd-bob");
            return;
        }
        if (killed && !restarted && ++polls >= 4) restarted = ctl.restart_daemon("qkmd-bob");
    };
    std::ostringstream out, err;
    const auto r = run_demo(c, out, err);
    EXPECT_TRUE(killed);
    EXPECT_TRUE(restarted);
    EXPECT_TRUE(r.ok) << r.failure << "\n" << out.str() << err.str();

}

TEST(pass_demo_orchestrator, a_daemon_dying_fails_the_run_with_its_log_and_stops_the_rest) {
    ::setenv("FAKE_PASS_S", "40", 1);
    ::setenv("FAKE_GROUND_DIES_AT", "8", 1);
    fake_bins f;
    std::ostringstream out, err;
    const auto r = run_demo(f.config(), out, err);
    ::unsetenv("FAKE_GROUND_DIES_AT");
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.failure.find("qlinkd-ground stopped unexpectedly (exit 7)"), std::string::npos) << r.failure;
    EXPECT_NE(r.failure.find("ground side giving up"), std::string::npos) << r.failure;  // log tail quoted
    EXPECT_TRUE(r.report.ok);
    EXPECT_NE(out.str().find("FAIL"), std::string::npos);
}

}  // namespace
}  // namespace qlink::terminal
