// `qlink demo`: writes the configurations and PKI, starts simulator + qkmd x2 + qlinkd x2, moves a
// user file across the pass, records the telemetry, checks file and keys, stops everything, reports.
#include "qlink/terminal/demo.hpp"

#include "demo/pki.hpp"
#include "demo/process.hpp"
#include "qlink/keymgmt/etsi014_client.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/sim/clock.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef QLINK_DEMO_SOURCE_DIR
#define QLINK_DEMO_SOURCE_DIR ""
#endif

namespace qlink::terminal {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using demo_detail::child;
using demo_detail::http_get;
using demo_detail::tcp_connect;

namespace {

using steady = std::chrono::steady_clock;

constexpr double min_pass_elevation_deg = 30.0;

double seconds_since(steady::time_point t0) { return std::chrono::duration<double>(steady::now() - t0).count(); }

std::string toml_str(const std::string& s) {
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') o += '\\';
        o += c;
    }
    return o + "\"";
}

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

void write_file(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    f.flush();
    if (!f) throw std::runtime_error("cannot write '" + p.string() + "'");
}

fs::path self_exe_dir() {
    std::error_code ec;
    const auto p = fs::read_symlink("/proc/self/exe", ec);
    return ec ? fs::path{} : p.parent_path();
}

bool executable(const fs::path& p) { return !p.empty() && ::access(p.c_str(), X_OK) == 0 && fs::is_regular_file(p); }

// A daemon binary: --bin-dir (flat, or a build tree's root), next to qlink in the build tree, PATH.
fs::path find_binary(const std::string& name, const fs::path& tree_path, const fs::path& bin_dir) {
    std::vector<fs::path> c;
    const fs::path here = self_exe_dir();
    if (!bin_dir.empty()) {
        c.push_back(bin_dir / name);
        c.push_back(bin_dir / tree_path / name);
    } else {
        c.push_back(here / name);
        c.push_back(here / ".." / ".." / tree_path / name);  // build/terminal/app -> build/<tree_path>
    }
    for (const auto& p : c)
        if (executable(p)) return fs::weakly_canonical(p);
    if (bin_dir.empty()) {
        const char* path = std::getenv("PATH");
        std::string ps = path ? path : "";
        std::size_t pos = 0;
        while (pos <= ps.size()) {
            const auto end = std::min(ps.find(':', pos), ps.size());
            const fs::path p = fs::path(ps.substr(pos, end - pos)) / name;
            if (end > pos && executable(p)) return p;
            pos = end + 1;
        }
    }
    return {};
}

std::string sha256_hex(const unsigned char* d, unsigned n) {
    std::ostringstream s;
    for (unsigned i = 0; i < n; ++i) s << std::hex << std::setw(2) << std::setfill('0') << static_cast<unsigned>(d[i]);
    return s.str();
}

// Streams a file's SHA-256.
std::string sha256_of_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr);
    std::vector<char> buf(1 << 16);
    while (f) {
        f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
        if (f.gcount() > 0) EVP_DigestUpdate(ctx, buf.data(), static_cast<std::size_t>(f.gcount()));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    EVP_MD_CTX_free(ctx);
    return sha256_hex(md, n);
}

double jnum(const nlohmann::json& j, std::initializer_list<const char*> path) {
    const nlohmann::json* cur = &j;
    for (const char* k : path) {
        if (!cur->is_object()) return no_value;
        const auto it = cur->find(k);
        if (it == cur->end()) return no_value;
        cur = &*it;
    }
    return cur->is_number() ? cur->get<double>() : no_value;
}

std::string jstr(const nlohmann::json& j, const char* k) {
    if (!j.is_object()) return {};
    const auto it = j.find(k);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// The value of a Prometheus series ("name" or "name{labels}") in exposition text; NaN if absent.
double prom_value(const std::string& text, const std::string& series) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto eol = std::min(text.find('\n', pos), text.size());
        if (text.compare(pos, series.size(), series) == 0 && pos + series.size() < eol &&
            text[pos + series.size()] == ' ') {
            const std::string v = text.substr(pos + series.size() + 1, eol - pos - series.size() - 1);
            char* end = nullptr;
            const double x = std::strtod(v.c_str(), &end);
            if (end != v.c_str()) return x;
        }
        pos = eol + 1;
    }
    return no_value;
}

std::string fmt(double v, int prec = 1) {
    if (!std::isfinite(v)) return "-";
    std::ostringstream s;
    s << std::fixed << std::setprecision(prec) << v;
    return s.str();
}

std::string human_bytes(double b) {
    if (!std::isfinite(b)) return "-";
    if (b >= 1e6) return fmt(b / 1e6, 2) + " MB";
    if (b >= 1e3) return fmt(b / 1e3, 1) + " kB";
    return fmt(b, 0) + " B";
}

std::string human_rate(double bps) {
    if (!std::isfinite(bps)) return "-";
    if (bps >= 1e6) return fmt(bps / 1e6, 2) + " Mbit/s";
    if (bps >= 1e3) return fmt(bps / 1e3, 1) + " kbit/s";
    return fmt(bps, 0) + " bit/s";
}

// ------------------------------------------------------------------ the run

struct daemon_spec {
    std::string name;
    std::vector<std::string> argv;
    fs::path log;
    fs::path ready_file;
};

struct ports {
    std::uint16_t air = 0, qkd = 0, sim_control = 0;
    std::uint16_t alice_etsi = 0, bob_etsi = 0, alice_metrics = 0, bob_metrics = 0, alice_peer = 0;
    std::uint16_t space_status = 0, ground_status = 0, space_user = 0, ground_user = 0;
};

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

// Waits for a --ready-file (JSON) to appear; the daemon writes it atomically once listening.
std::optional<nlohmann::json> wait_ready(const fs::path& f, child& c, std::chrono::milliseconds timeout) {
    const auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
        std::error_code ec;
        if (fs::exists(f, ec)) {
            auto j = nlohmann::json::parse(read_file(f), nullptr, false);
            if (!j.is_discarded()) return j;
        }
        if (!c.running()) return std::nullopt;
        std::this_thread::sleep_for(20ms);
    }
    return std::nullopt;
}

std::string log_tail(const fs::path& p, std::size_t lines = 6) {
    const std::string t = read_file(p);
    std::vector<std::string> ls;
    std::istringstream s(t);
    std::string l;
    while (std::getline(s, l))
        if (!l.empty()) ls.push_back(l);
    std::string o;
    for (std::size_t i = ls.size() > lines ? ls.size() - lines : 0; i < ls.size(); ++i) o += "\n    " + ls[i];
    return o;
}

// The user data path: a writer into space qlinkd's TCP port, a reader from ground's, both on their own
// threads (blocking sockets; ARQ backpressure holds the writer), reconnecting when a daemon restarts.
class user_traffic {
public:
    user_traffic(fs::path src, fs::path dst, std::uint64_t bytes) : src_(std::move(src)), dst_(std::move(dst)), total_(bytes) {
        md_ = EVP_MD_CTX_new();
        EVP_DigestInit_ex(md_, EVP_sha256(), nullptr);
    }
    ~user_traffic() {
        stop();
        EVP_MD_CTX_free(md_);
    }

    void start(std::uint16_t space_port, std::uint16_t ground_port) {
        space_port_ = space_port;
        ground_port_ = ground_port;
        reader_ = std::thread([this] { read_loop(); });
        writer_ = std::thread([this] { write_loop(); });
    }
    void stop() {
        stopping_ = true;
        {
            std::lock_guard lk(mu_);
            if (wfd_ >= 0) ::shutdown(wfd_, SHUT_RDWR);
            if (rfd_ >= 0) ::shutdown(rfd_, SHUT_RDWR);
        }
        if (writer_.joinable()) writer_.join();
        if (reader_.joinable()) reader_.join();
    }
    std::uint64_t sent() const { return sent_.load(); }
    std::uint64_t received() const { return received_.load(); }
    bool complete() const { return received_.load() >= total_; }
    std::uint64_t extra() const { return extra_.load(); }
    std::string received_sha256() {
        std::lock_guard lk(mu_);
        if (!digest_.empty()) return digest_;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n = 0;
        EVP_DigestFinal_ex(md_, md, &n);
        digest_ = sha256_hex(md, n);
        return digest_;
    }

private:
    int connect_retry(std::uint16_t port) {
        while (!stopping_) {
            const int fd = tcp_connect(port, 1000ms);
            if (fd >= 0) return fd;
            std::this_thread::sleep_for(100ms);
        }
        return -1;
    }
    void write_loop() {
        std::ifstream f(src_, std::ios::binary);
        std::vector<char> buf(1 << 15);
        std::uint64_t pos = 0;
        while (!stopping_ && pos < total_) {
            const int fd = connect_retry(space_port_);
            if (fd < 0) break;
            {
                std::lock_guard lk(mu_);
                wfd_ = fd;
            }
            f.clear();
            f.seekg(static_cast<std::streamoff>(pos));
            bool broken = false;
            while (!stopping_ && pos < total_ && !broken) {
                f.read(buf.data(), static_cast<std::streamsize>(std::min<std::uint64_t>(buf.size(), total_ - pos)));
                const auto n = static_cast<std::size_t>(f.gcount());
                if (n == 0) break;
                std::size_t off = 0;
                while (off < n) {
                    const ssize_t w = ::send(fd, buf.data() + off, n - off, MSG_NOSIGNAL);
                    if (w <= 0) {
                        broken = true;
                        break;
                    }
                    off += static_cast<std::size_t>(w);
                }
                pos += off;
                sent_ = pos;
            }
            if (!broken && pos >= total_) {
                // Keep the connection open: closing is fine for qlinkd, but an open one also takes the
                // (unused) return stream and shows the link is still in use.
                while (!stopping_) std::this_thread::sleep_for(50ms);
            }
            std::lock_guard lk(mu_);
            ::close(fd);
            wfd_ = -1;
        }
    }
    void read_loop() {
        std::ofstream out(dst_, std::ios::binary | std::ios::trunc);
        std::vector<char> buf(1 << 15);
        while (!stopping_) {
            const int fd = connect_retry(ground_port_);
            if (fd < 0) break;
            {
                std::lock_guard lk(mu_);
                rfd_ = fd;
            }
            for (;;) {
                const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
                if (n <= 0) break;
                std::uint64_t keep = static_cast<std::uint64_t>(n);
                const std::uint64_t have = received_.load();
                if (have + keep > total_) {
                    extra_ += have + keep - total_;
                    keep = total_ > have ? total_ - have : 0;
                }
                if (keep) {
                    out.write(buf.data(), static_cast<std::streamsize>(keep));
                    std::lock_guard lk(mu_);
                    EVP_DigestUpdate(md_, buf.data(), keep);
                }
                received_ += keep;
            }
            std::lock_guard lk(mu_);
            ::close(fd);
            rfd_ = -1;
        }
        out.flush();
    }

    fs::path src_, dst_;
    std::uint64_t total_;
    std::uint16_t space_port_ = 0, ground_port_ = 0;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> sent_{0}, received_{0}, extra_{0};
    std::mutex mu_;
    int wfd_ = -1, rfd_ = -1;
    EVP_MD_CTX* md_ = nullptr;
    std::string digest_;
    std::thread writer_, reader_;
};

class demo_run final : public demo_control {
public:
    demo_run(const demo_config& cfg, std::ostream& out, std::ostream& err, const std::atomic<bool>* stop)
        : cfg_(cfg), out_(out), err_(err), stop_(stop) {}
    ~demo_run() override { shutdown_all(); }

    demo_result run();

    double sim_time_s() const override { return last_.sim_time_s; }
    const pass_sample& last_sample() const override { return last_; }
    bool kill_daemon(const std::string& name) override {
        auto it = children_.find(name);
        if (it == children_.end() || !it->second) return false;
        it->second->kill_hard();
        killed_.insert(name);
        log_event("killed " + name + " (kill -9)");
        return true;
    }
    bool restart_daemon(const std::string& name) override {
        const auto s = specs_.find(name);
        if (s == specs_.end()) return false;
        if (auto it = children_.find(name); it != children_.end() && it->second && it->second->running()) return false;
        std::error_code ec;
        fs::remove(s->second.ready_file, ec);
        children_[name] = std::make_unique<child>(name, s->second.argv, s->second.log);
        killed_.erase(name);
        const bool ok = wait_ready(s->second.ready_file, *children_[name], 30s).has_value();
        log_event("restarted " + name + (ok ? "" : " (not ready within 30 s)"));
        return ok;
    }

private:
    void log_event(const std::string& what) {
        std::ofstream(dir_ / "logs" / "demo.log", std::ios::app)
            << "wall=" << fmt(seconds_since(t0_), 2) << " sim=" << fmt(last_.sim_time_s, 1) << ' ' << what << '\n';
    }
    void prepare();
    void start_sim();
    void start_qkmd();
    void start_qlinkd();
    child& start(const daemon_spec& s) {
        specs_[s.name] = s;
        std::error_code ec;
        if (!s.ready_file.empty()) fs::remove(s.ready_file, ec);
        auto c = std::make_unique<child>(s.name, s.argv, s.log);
        auto& ref = *c;
        children_[s.name] = std::move(c);
        return ref;
    }
    nlohmann::json ready(const std::string& name) {
        auto j = wait_ready(specs_[name].ready_file, *children_[name], 60s);
        if (!j) fail(name + " did not come up (" + (children_[name]->running() ? "no ready file within 60 s" : children_[name]->exit_status()) +
                     "); its log " + specs_[name].log.string() + ":" + log_tail(specs_[name].log));
        return *j;
    }
    [[noreturn]] void fail(const std::string& why) { throw std::runtime_error(why); }
    bool stopped() const { return stop_ && stop_->load(); }
    pass_sample poll();
    void progress(const pass_sample& s, bool final_line);
    void check_keys(demo_result& r);
    void check_key_ids(demo_result& r);
    void summarise(demo_result& r);
    void shutdown_all();
    void choose_file_size();
    void maybe_cloud(const pass_sample& s);

    demo_config cfg_;
    std::ostream& out_;
    std::ostream& err_;
    const std::atomic<bool>* stop_;
    fs::path dir_;
    fs::path bins_[3];  // qlink-sim, qkmd, qlinkd
    fs::path tle_;
    std::optional<sim::pass_info> pass_;
    double pass_span_s_ = 0;  // simulated seconds the relay runs
    ports p_;
    std::map<std::string, daemon_spec> specs_;
    std::map<std::string, std::unique_ptr<child>> children_;
    std::set<std::string> killed_;
    std::unique_ptr<user_traffic> traffic_;
    fs::path user_file_;
    std::uint64_t file_bytes_ = 0;
    std::string file_sha_;
    steady::time_point t0_ = steady::now();
    pass_sample last_;
    pass_timeseries ts_;
    double downlink_bps_ = no_value, return_bps_ = no_value;
    std::vector<double> space_key_ids_, ground_key_ids_;
    std::string space_state_;
    bool stopped_all_ = false;
    bool cloud_sent_ = false;
    double rf_max_precomp_hz_ = 0.0, rf_residual_hz_ = no_value;
    std::uint64_t rf_samples_up_ = 0, rf_samples_locked_ = 0;
};

void demo_run::prepare() {
    if (!(cfg_.speed > 0 && cfg_.speed <= 1000)) throw std::invalid_argument("--speed must be in (0, 1000]");
    if (!(cfg_.poll_hz >= 0.5 && cfg_.poll_hz <= 50)) throw std::invalid_argument("poll rate must be in [0.5, 50] Hz");
    // TLE, station and start are checked here, before anything runs: a typo is one clear line.
    if (cfg_.tle_file.empty()) {
        auto t = find_bundled_tle();
        if (!t) throw std::invalid_argument("the bundled TLE sim/data/qlinksat-1.tle was not found; pass --tle FILE");
        tle_ = *t;
    } else {
        tle_ = fs::absolute(cfg_.tle_file);
    }
    const auto parsed = sim::parse_tle_text(read_file(tle_));
    if (!parsed.ok()) throw std::invalid_argument("--tle '" + tle_.string() + "': " + (parsed.error.empty() ? "no element set" : parsed.error));
    std::string err;
    const auto st = sim::parse_station(cfg_.station, err);
    if (!st) throw std::invalid_argument("--station '" + cfg_.station + "': " + err);
    std::optional<sim::time_point> start;
    if (!cfg_.start.empty()) {
        start = sim::parse_iso8601_utc(cfg_.start, &err);
        if (!start) throw std::invalid_argument("--start '" + cfg_.start + "': " + err + " (use e.g. 2026-03-01T12:00:00Z)");
    }
    const auto sat = sim::create_sgp4_propagator(parsed.sets.front());
    const sim::ground_station station(*st);
    // The relay runs the first pass at/after the TLE epoch, or the pass in progress at / next after --start.
    const sim::time_point from = start ? *start - std::chrono::hours(1) : parsed.sets.front().epoch();
    // Like the relay (qlink-sim serve --pass, --min-elevation 30): without --start, the first pass
    // that climbs to 30 degrees; the relay's own "pass ..." line is authoritative once it runs.
    auto found = sim::find_next_pass(*sat, station, from);
    while (found.pass && ((start && found.pass->los < *start) || (!start && found.pass->max_elevation_deg < min_pass_elevation_deg)))
        found = sim::find_next_pass(*sat, station, found.pass->los);
    if (!found.pass)
        throw std::invalid_argument("no pass of '" + tle_.string() + "' over " + cfg_.station + " within 7 days" +
                                    (found.error.empty() ? "" : " (" + found.error + ")"));
    pass_ = found.pass;
    const sim::time_point t_begin = start ? *start : pass_->aos - std::chrono::seconds(30);
    pass_span_s_ = std::chrono::duration<double>(pass_->los + std::chrono::seconds(10) - t_begin).count();
    if (pass_span_s_ <= 0) throw std::invalid_argument("--start is after the pass's LOS");

    const char* names[3] = {"qlink-sim", "qkmd", "qlinkd"};
    const fs::path tree[3] = {"sim/app", "keymgmt/app", "terminal/app"};
    for (int i = 0; i < 3; ++i) {
        bins_[i] = find_binary(names[i], tree[i], cfg_.bin_dir);
        if (bins_[i].empty())
            throw std::invalid_argument(std::string("cannot find the '") + names[i] + "' program " +
                                        (cfg_.bin_dir.empty() ? "next to qlink or in PATH" : "in --bin-dir " + cfg_.bin_dir.string()) +
                                        "; build everything first (make build) or pass --bin-dir");
    }

    dir_ = fs::absolute(cfg_.out_dir);
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec) throw std::invalid_argument("--out '" + dir_.string() + "': " + ec.message());
    // Stores and state from an earlier run would replay old keys: every run starts from scratch.
    for (const char* d : {"pki", "alice", "bob", "space", "ground", "logs"}) fs::remove_all(dir_ / d, ec);
    for (const char* d : {"pki", "alice", "bob", "space", "ground", "logs"}) fs::create_directories(dir_ / d);
    fs::permissions(dir_ / "pki", fs::perms::owner_all, ec);
    fs::permissions(dir_ / "alice", fs::perms::owner_all, ec);
    fs::permissions(dir_ / "bob", fs::perms::owner_all, ec);
}

void demo_run::start_sim() {
    daemon_spec s;
    s.name = "qlink-sim";
    s.log = dir_ / "logs" / "qlink-sim.log";
    s.argv = {bins_[0].string(), "serve", "--pass", "--tle", tle_.string(), "--station", cfg_.station,
              "--speed", fmt(cfg_.speed, 3), "--seed", std::to_string(cfg_.seed),
              // Simulated time starts once every client is connected: two qlinkd, and two qkmd with QKD.
              "--start-when", cfg_.keys_from_qkd ? "4" : "2"};
    s.argv.insert(s.argv.end(), {"--min-elevation", fmt(min_pass_elevation_deg, 0), "--control-port", "0"});
    if (cfg_.downlink_bps > 0) s.argv.insert(s.argv.end(), {"--downlink-bps", fmt(cfg_.downlink_bps, 0)});
    if (!cfg_.start.empty()) s.argv.insert(s.argv.end(), {"--start", cfg_.start});
    if (cfg_.qkd_block_s != 1.0) s.argv.insert(s.argv.end(), {"--qkd-block-s", fmt(cfg_.qkd_block_s, 3)});
    write_file(dir_ / "logs" / "qlink-sim.cmd", [&] {
        std::string c;
        for (const auto& a : s.argv) c += a + ' ';
        return c + '\n';
    }());
    auto& c = start(s);
    auto to_port = [&](const std::optional<std::string>& v, const char* what) -> std::uint16_t {
        const long n = v ? std::strtol(v->c_str(), nullptr, 10) : 0;
        if (n <= 0 || n > 65535)
            fail(std::string("qlink-sim did not announce its ") + what + " (" + (c.running() ? "waited 30 s" : c.exit_status()) +
                 "); is `qlink-sim serve --pass` built? log " + s.log.string() + ":" + log_tail(s.log));
        return static_cast<std::uint16_t>(n);
    };
    p_.air = to_port(c.wait_line("air-port ", 30s), "air port");
    p_.qkd = to_port(c.wait_line("qkd-port ", 30s), "QKD port");
    // "pass start T aos T los T max-elevation E duration-s D ... downlink-bps R return-bps R": the pass
    // the relay actually runs.
    if (const auto line = c.wait_line("pass ", 5s)) {
        std::istringstream in(*line);
        std::map<std::string, std::string> kv;
        std::string k, v;
        while (in >> k >> v) kv[k] = v;
        auto num = [&](const char* key) { return kv.count(key) ? std::strtod(kv[key].c_str(), nullptr) : no_value; };
        if (const double d = num("duration-s"); std::isfinite(d) && d > 0) pass_span_s_ = d;
        const auto aos = kv.count("aos") ? sim::parse_iso8601_utc(kv["aos"]) : std::nullopt;
        const auto los = kv.count("los") ? sim::parse_iso8601_utc(kv["los"]) : std::nullopt;
        if (aos && los && pass_) {
            pass_->aos = *aos;
            pass_->los = *los;
            if (const double e = num("max-elevation"); std::isfinite(e)) pass_->max_elevation_deg = e;
        }
        if (const double r = num("downlink-bps"); std::isfinite(r)) downlink_bps_ = r;
        if (const double r = num("return-bps"); std::isfinite(r)) return_bps_ = r;
    }
    // Printed before the pass line: by now it is there, or this simulator has no control port (then
    // the pass runs with its random clouds only, said in the log).
    if (const auto v = c.wait_line("control-port ", 100ms)) {
        const long n = std::strtol(v->c_str(), nullptr, 10);
        if (n > 0 && n <= 65535) p_.sim_control = static_cast<std::uint16_t>(n);
    }
    if (p_.sim_control == 0 && cfg_.cloud_s > 0) log_event("qlink-sim has no control port: no scripted cloud");
}

void demo_run::start_qkmd() {
    // Pre-shared authentication key for the classical channel: the same bytes at both ends, 0600.
    {
        std::vector<unsigned char> psk(16 + 16 * 1024);
        if (RAND_bytes(psk.data(), static_cast<int>(psk.size())) != 1) fail("no randomness for the QKD authentication key");
        for (const char* who : {"alice", "bob"}) {
            const fs::path p = dir_ / who / "qkd-auth.psk";
            const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (fd < 0 || ::write(fd, psk.data(), psk.size()) != static_cast<ssize_t>(psk.size())) {
                if (fd >= 0) ::close(fd);
                fail("cannot write " + p.string());
            }
            ::close(fd);
        }
        OPENSSL_cleanse(psk.data(), psk.size());
    }
    demo_detail::make_demo_pki(dir_ / "pki", {"KME_A", "KME_B", "SAE_A", "SAE_B"});
    p_.alice_etsi = free_port();
    p_.bob_etsi = free_port();
    while (p_.bob_etsi == p_.alice_etsi) p_.bob_etsi = free_port();

    auto config = [&](bool alice) {
        const std::string me = alice ? "alice" : "bob";
        const std::string kme = alice ? "KME_A" : "KME_B", peer = alice ? "KME_B" : "KME_A";
        const fs::path d = dir_ / me, pki = dir_ / "pki";
        std::ostringstream t;
        t << "# qkmd " << me << " (" << (alice ? "space" : "ground") << " side), written by qlink demo\n"
          << "[kme]\nid = " << toml_str(kme) << "\n\n[store]\ndb = " << toml_str((d / "keys.db").string())
          << "\nmaster_key = " << toml_str((d / "master.key").string()) << "\nfull_sync = false\n\n"
          << "[source]\n";
        if (cfg_.keys_from_qkd) {
            t << "type = \"qkd\"\nrole = " << toml_str(me) << "\nqkd_host = \"127.0.0.1\"\nqkd_port = " << p_.qkd << '\n';
            if (alice)
                t << "peer_listen = \"127.0.0.1\"\npeer_port = " << p_.alice_peer << '\n';
            else
                t << "peer_host = \"127.0.0.1\"\npeer_port = " << p_.alice_peer << '\n';
            t << "auth_key = " << toml_str((d / "qkd-auth.psk").string()) << '\n';
            if (cfg_.qkd_block_detections) t << "block_detections = " << cfg_.qkd_block_detections << '\n';
            // The simulator's decoy-state source (sim::qkd_channel defaults): both ends must use it.
            t << "mu = [0.8, 0.1, 0.0]\nmu_prob = [0.5, 0.25, 0.25]\n";
            t << "peer_timeout_ms = 10000\n";
        } else {
            t << "type = \"sim\"\nseed = " << cfg_.seed << "\n";
        }
        t << "key_bits = 256\npoll_interval_ms = 50\n\n"
          << "[etsi014]\nlisten = \"127.0.0.1\"\nport = " << (alice ? p_.alice_etsi : p_.bob_etsi)
          << "\ncert = " << toml_str((pki / (kme + ".crt")).string()) << "\nkey = " << toml_str((pki / (kme + ".key")).string())
          << "\nca = " << toml_str((pki / "ca.crt").string()) << "\npartition = " << (alice ? "\"even\"" : "\"odd\"") << "\n\n"
          << "[[sae]]\nid = \"SAE_A\"\nkme = \"KME_A\"\n[[sae]]\nid = \"SAE_B\"\nkme = \"KME_B\"\n\n"
          << "[[peer_kme]]\nid = " << toml_str(peer) << "\nhost = \"127.0.0.1\"\nport = " << (alice ? p_.bob_etsi : p_.alice_etsi)
          << "\nserver_name = \"localhost\"\ncert = " << toml_str((pki / (kme + ".crt")).string())
          << "\nkey = " << toml_str((pki / (kme + ".key")).string()) << "\nca = " << toml_str((pki / "ca.crt").string()) << "\n\n"
          << "[inject]\nsocket = " << toml_str((d / "inject.sock").string()) << "\nmode = \"0600\"\npartition = "
          << (alice ? "\"even\"" : "\"odd\"") << "\n\n"
          << "[metrics]\nlisten = \"127.0.0.1\"\nport = " << (alice ? p_.alice_metrics : p_.bob_metrics) << "\n";
        const fs::path f = d / "qkmd.toml";
        write_file(f, t.str());
        daemon_spec s;
        s.name = "qkmd-" + me;
        s.log = dir_ / "logs" / (s.name + ".log");
        s.ready_file = d / "ready.json";
        s.argv = {bins_[1].string(), "--config", f.string(), "--ready-file", s.ready_file.string()};
        return s;
    };
    // Alice listens for Bob's classical channel: start her first and give Bob her port.
    start(config(true));
    auto ja = ready("qkmd-alice");
    p_.alice_peer = static_cast<std::uint16_t>(ja.value("peer_port", 0));
    p_.alice_metrics = static_cast<std::uint16_t>(ja.value("metrics_port", 0));
    if (cfg_.keys_from_qkd && p_.alice_peer == 0) fail("qkmd-alice did not report its classical-channel port (peer_port)");
    specs_["qkmd-alice"] = config(true);  // fixed ports from now on: a restart keeps them
    start(config(false));
    auto jb = ready("qkmd-bob");
    p_.bob_metrics = static_cast<std::uint16_t>(jb.value("metrics_port", 0));
    specs_["qkmd-bob"] = config(false);
}

void demo_run::start_qlinkd() {
    auto config = [&](bool space) {
        const std::string me = space ? "space" : "ground";
        const fs::path d = dir_ / me;
        const fs::path kd = dir_ / (space ? "alice" : "bob");
        // Ground PAT: the relay's sim_time counts from its pass start (--start, or AOS - 30 s).
        std::string pat_air;
        if (!space && pass_) {
            const auto epoch = cfg_.start.empty() ? pass_->aos - std::chrono::seconds(30) : sim::parse_iso8601_utc(cfg_.start).value();
            pat_air = "sim_epoch = " + toml_str(sim::format_iso8601_utc(epoch)) + "   # [air]: the relay's pass start\n\n";
        }
        std::ostringstream t;
        t << "# qlinkd " << me << ", written by qlink demo\n[link]\nrole = " << toml_str(me) << "\n"
          << (space ? "tx_profile = " : "rx_profile = ") << toml_str(cfg_.downlink_profile) << "   # the optical downlink\n"
          << "drain_timeout_s = 5\n"
          // What this end's user holds per stream, so that a restarted qlinkd neither loses nor repeats bytes.
          << "state_dir = \"state\"\n\n"
          << "[air]\nport = " << p_.air << "\n\n"
          << pat_air
          << "[keys]\n";
        if (cfg_.link_keys_from_qkmd)
            t << "source = \"qkmd\"\nsocket = " << toml_str((kd / "inject.sock").string()) << '\n';
        else
            t << "source = \"memory\"   # TEST ONLY: seeded keys, not from QKD\nmemory_seed = " << cfg_.seed << '\n';
        t << "qkmd_metrics = \"127.0.0.1:" << (space ? p_.alice_metrics : p_.bob_metrics) << "\"\n\n"
          << "[security]\nrotate_every_s = " << fmt(cfg_.rotate_every_s, 3) << "\n\n"
          // ARQ runs on simulated time. qlinkd's default RTO clamp (2 ms..2 s) is far below the round trip
          // through the relay (the transmitter runs seconds of simulated time ahead of the channel and
          // the return link is 10 kbit/s): every segment timed out over and over, the duplicates
          // crowded out the repairs and the stream stalled after the first loss (measured: 70.9 of
          // 100 kB delivered). With 2..60 s the same run delivers the whole file.
          << "[arq]\nrto_min_ms = 2000\nrto_max_ms = 60000\n\n"
          << "[user]\ntcp_port = " << (space ? p_.space_user : p_.ground_user) << "\n\n"
          << "[telemetry]\nport = " << (space ? p_.space_status : p_.ground_status) << "\n";
        if (!pat_air.empty()) {
            std::string err;
            const auto st = sim::parse_station(cfg_.station, err);  // checked in prepare()
            t << "\n[station]\nlat_deg = " << fmt(st->latitude_deg, 6) << "\nlon_deg = " << fmt(st->longitude_deg, 6)
              << "\nalt_m = " << fmt(st->altitude_m, 1) << "\n\n[satellite]\ntle = " << toml_str(tle_.string())
              << "\n\n[terminal]\npat = \"simulated\"\n";
            if (cfg_.rf_samples)
                t << "\n[rf]\nradio = \"sim\"   # the return link through the station's RF chain at sample level\n";
        }
        const fs::path f = d / "qlinkd.toml";
        write_file(f, t.str());
        daemon_spec s;
        s.name = "qlinkd-" + me;
        s.log = dir_ / "logs" / (s.name + ".log");
        s.ready_file = d / "ready.json";
        s.argv = {bins_[2].string(), "--config", f.string(), "--ready-file", s.ready_file.string()};
        return s;
    };
    start(config(true));
    start(config(false));
    auto js = ready("qlinkd-space");
    auto jg = ready("qlinkd-ground");
    p_.space_status = static_cast<std::uint16_t>(js.value("telemetry_port", 0));
    p_.space_user = static_cast<std::uint16_t>(js.value("user_tcp_port", 0));
    p_.ground_status = static_cast<std::uint16_t>(jg.value("telemetry_port", 0));
    p_.ground_user = static_cast<std::uint16_t>(jg.value("user_tcp_port", 0));
    if (!p_.space_status || !p_.space_user || !p_.ground_status || !p_.ground_user)
        fail("qlinkd's ready file lacks telemetry_port / user_tcp_port");
    specs_["qlinkd-space"] = config(true);
    specs_["qlinkd-ground"] = config(false);
}

void demo_run::choose_file_size() {
    // The line rate the relay gave the downlink (qlinkd learns it from the relay's OK line).
    const auto deadline = steady::now() + 15s;
    while (steady::now() < deadline && !stopped()) {
        if (std::isfinite(downlink_bps_) && downlink_bps_ > 0) break;  // the relay said
        if (auto m = http_get(p_.space_status, "/metrics", 1000ms)) {
            downlink_bps_ = prom_value(*m, "qlinkd_downlink_bps");
            return_bps_ = prom_value(*m, "qlinkd_return_bps");
            if (std::isfinite(downlink_bps_) && downlink_bps_ > 0) break;
        }
        std::this_thread::sleep_for(100ms);
    }
    if (!cfg_.user_file.empty()) {
        user_file_ = fs::absolute(cfg_.user_file);
        std::error_code ec;
        file_bytes_ = fs::file_size(user_file_, ec);
        if (ec || file_bytes_ == 0) fail("--file '" + user_file_.string() + "': " + (ec ? ec.message() : "empty"));
    } else {
        file_bytes_ = cfg_.generated_bytes;
        if (file_bytes_ == 0) {
            // A twentieth of what the pass above the mask can carry at the profile's information rate.
            // Measured with the real qlinkd (default pass, 2026-11-29): 200 kB arrive intact, 937 kB (a
            // quarter) do not: the file is queued before AOS, and the ARQ repairs of the whole window
            // after the first losses take most of the pass.
            double rate = 0.43;
            if (const auto* prof = modem::find_profile(cfg_.downlink_profile)) rate = modem::information_rate(*prof);
            const double above = std::chrono::duration<double>(pass_->los - pass_->aos).count();
            const double bps = std::isfinite(downlink_bps_) && downlink_bps_ > 0 ? downlink_bps_ : 0.0;
            file_bytes_ = bps > 0 ? static_cast<std::uint64_t>(bps / 8.0 * rate * std::min(above, pass_span_s_) * 0.05)
                                  : (1u << 20);
            file_bytes_ = std::clamp<std::uint64_t>(file_bytes_, 64u << 10, 256u << 20);
        }
        user_file_ = dir_ / "user-file.bin";
        std::mt19937_64 rng(cfg_.seed * 0x9E3779B97F4A7C15ull + 7);
        std::ofstream f(user_file_, std::ios::binary | std::ios::trunc);
        std::vector<std::uint64_t> buf(4096);
        for (std::uint64_t left = file_bytes_; left > 0;) {
            for (auto& w : buf) w = rng();
            const auto n = std::min<std::uint64_t>(left, buf.size() * 8);
            f.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(n));
            left -= n;
        }
        if (!f) fail("cannot write " + user_file_.string());
    }
    file_sha_ = sha256_of_file(user_file_);
}

// The scripted cloud: once a third of the file has arrived over an up link, so the interruption
// hits data in flight and ARQ has something to repair (the random clouds may miss the transfer).
void demo_run::maybe_cloud(const pass_sample& s) {
    if (cloud_sent_ || !(cfg_.cloud_s > 0) || p_.sim_control == 0 || file_bytes_ == 0 || s.link_state != "up") return;
    if (!(std::isfinite(s.bytes_delivered) && s.bytes_delivered * 3 >= static_cast<double>(file_bytes_))) return;
    if (s.bytes_delivered >= static_cast<double>(file_bytes_)) return;
    cloud_sent_ = true;  // once, whatever the answer: a demo does not retry weather
    std::string reply = "no reply";
    if (const int fd = tcp_connect(p_.sim_control, 1000ms); fd >= 0) {
        const std::string cmd = "cloud " + fmt(cfg_.cloud_s, 3) + "\n";
        if (::send(fd, cmd.data(), cmd.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(cmd.size())) {
            timeval tv{2, 0};
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            reply.clear();
            char ch = 0;
            while (reply.size() < 200 && ::recv(fd, &ch, 1, 0) == 1 && ch != '\n') reply += ch;
        }
        ::close(fd);
    }
    log_event("scripted cloud of " + fmt(cfg_.cloud_s, 1) + " s: " + reply);
    if (reply.rfind("OK cloud", 0) != 0) err_ << "qlink demo: the simulator refused the scripted cloud (" << reply << ")\n";
}

pass_sample demo_run::poll() {
    pass_sample s;
    s.wall_time_s = seconds_since(t0_);
    const auto g = http_get(p_.ground_status, "/status", 1000ms);
    const auto sp = http_get(p_.space_status, "/status", 1000ms);
    nlohmann::json jg = g ? nlohmann::json::parse(*g, nullptr, false) : nlohmann::json();
    nlohmann::json js = sp ? nlohmann::json::parse(*sp, nullptr, false) : nlohmann::json();
    s.sim_time_s = jnum(jg, {"sim_time"});
    if (!std::isfinite(s.sim_time_s)) s.sim_time_s = jnum(js, {"sim_time"});
    s.elevation_deg = jnum(jg, {"elevation_deg"});
    s.rx_power_dbm = jnum(jg, {"rx_power_dbm"});
    s.esn0_db = jnum(js, {"esn0_db"});
    s.link_state = jstr(jg, "link_state");
    space_state_ = jstr(js, "link_state");
    s.pat_state = jstr(jg, "pat_state");
    // The ground's RF return chain (rf.radio = "sim"): pre-compensation and the satellite's loop.
    if (const double pc = jnum(jg, {"rf", "doppler_precomp_hz"}); std::isfinite(pc)) {
        rf_max_precomp_hz_ = std::max(rf_max_precomp_hz_, std::abs(pc));
        rf_residual_hz_ = jnum(jg, {"rf", "satellite_residual_hz"});
        const bool locked = jg.is_object() && jg.contains("rf") && jg["rf"].is_object() && jg["rf"].value("satellite_locked", false);
        // Above the relay's 5 degree RF mask the return link is up: how often the satellite's loop held it.
        if (std::isfinite(s.elevation_deg) && s.elevation_deg >= 5.0) {
            ++rf_samples_up_;
            rf_samples_locked_ += locked;
        }
    }
    s.frames_rx_ok = jnum(jg, {"frames", "rx_ok"});
    s.frames_crc_fail = jnum(jg, {"frames", "rx_crc_fail"});
    s.decode_fail = jnum(jg, {"frames", "decode_fail"});
    s.rs_corrected = jnum(jg, {"frames", "rs_corrected"});
    s.ldpc_iterations = jnum(jg, {"frames", "ldpc_iterations"});
    s.channel_bit_errors = jnum(jg, {"bits", "rx_channel_errors_est"});
    s.frames_tx = jnum(js, {"frames", "tx"});
    s.arq_retransmissions = jnum(js, {"arq", "retransmissions"});
    s.arq_in_flight = jnum(js, {"arq", "in_flight"});
    s.arq_srtt_s = jnum(js, {"arq", "srtt_s"});
    s.bytes_delivered = jnum(jg, {"user", "bytes_out"});
    s.bytes_sent = jnum(js, {"user", "bytes_in"});
    s.qber = jnum(jg, {"qkd", "qber"});
    s.secret_key_rate_bps = jnum(jg, {"qkd", "secret_key_rate_bps"});
    s.key_pool_level = jnum(jg, {"keys", "pool_level"});
    s.keys_consumed = jnum(js, {"keys", "keys_consumed"});
    const double rs = jnum(js, {"keys", "rotations"}), rg = jnum(jg, {"keys", "rotations"});
    s.key_rotations = std::isfinite(rs) || std::isfinite(rg) ? (std::isfinite(rs) ? rs : 0) + (std::isfinite(rg) ? rg : 0) : no_value;
    s.active_key_id = jnum(js, {"keys", "active_key_id"});
    const double gk = jnum(jg, {"keys", "active_key_id"});
    if (std::isfinite(s.active_key_id) && (space_key_ids_.empty() || space_key_ids_.back() != s.active_key_id))
        space_key_ids_.push_back(s.active_key_id);
    if (std::isfinite(gk) && (ground_key_ids_.empty() || ground_key_ids_.back() != gk)) ground_key_ids_.push_back(gk);
    // qkmd directly for what qlinkd does not relay (pool level, QBER and key rate of bob's store).
    if (!std::isfinite(s.key_pool_level) || !std::isfinite(s.qber)) {
        if (auto m = http_get(p_.bob_metrics, "/metrics", 500ms)) {
            if (!std::isfinite(s.key_pool_level)) s.key_pool_level = prom_value(*m, "qkmd_keys_stored{state=\"active\"}");
            if (!std::isfinite(s.qber)) s.qber = prom_value(*m, "qkmd_qber");
            if (!std::isfinite(s.secret_key_rate_bps)) s.secret_key_rate_bps = prom_value(*m, "qkmd_secret_key_rate_bps");
        }
    }
    if (traffic_) {
        // What the demo itself handed in / got back, when the daemon does not say.
        if (!std::isfinite(s.bytes_sent)) s.bytes_sent = static_cast<double>(traffic_->sent());
        if (!std::isfinite(s.bytes_delivered)) s.bytes_delivered = static_cast<double>(traffic_->received());
    }
    return s;
}

void demo_run::progress(const pass_sample& s, bool final_line) {
    if (!cfg_.progress) return;
    const double frac = std::isfinite(s.sim_time_s) && pass_span_s_ > 0 ? std::clamp(s.sim_time_s / pass_span_s_, 0.0, 1.0) : 0.0;
    const int w = 20, filled = static_cast<int>(frac * w + 0.5);
    std::ostringstream l;
    l << "\r[" << std::string(static_cast<std::size_t>(filled), '#') << std::string(static_cast<std::size_t>(w - filled), '.')
      << "] " << std::setw(3) << static_cast<int>(frac * 100) << "%  T+" << std::setw(4) << fmt(s.sim_time_s, 0)
      << "s  el " << std::setw(5) << fmt(s.elevation_deg, 1) << "\xC2\xB0  link " << std::left << std::setw(9)
      << (s.link_state.empty() ? "-" : s.link_state) << std::right << " keys " << fmt(s.key_pool_level, 0) << " rot "
      << fmt(s.key_rotations, 0) << " QBER " << (std::isfinite(s.qber) ? fmt(100 * s.qber, 1) + "%" : "-") << "  data "
      << human_bytes(traffic_ ? static_cast<double>(traffic_->received()) : no_value) << '/' << human_bytes(static_cast<double>(file_bytes_))
      << "   ";
    out_ << l.str();
    if (final_line) out_ << '\n';
    out_.flush();
}

// Both KMEs hand out the same key for the same ID: as SAE_A ask KME_A for keys for SAE_B (KME_A
// reserves them at KME_B), then as SAE_B fetch them by ID from KME_B and compare; both directions.
// A second fetch of the same IDs must be refused (served once).
void demo_run::check_keys(demo_result& r) {
    const fs::path pki = dir_ / "pki";
    auto client = [&](const std::string& sae, std::uint16_t port) {
        keymgmt::etsi014_client::config c;
        c.port = port;
        c.server_name = "localhost";
        c.cert_file = (pki / (sae + ".crt")).string();
        c.key_file = (pki / (sae + ".key")).string();
        c.ca_file = (pki / "ca.crt").string();
        c.timeout = 5000ms;
        return keymgmt::create_etsi014_client(c);
    };
    std::string why;
    bool agree = true, once = true;
    std::size_t compared = 0;
    try {
        auto a = client("SAE_A", p_.alice_etsi), b = client("SAE_B", p_.bob_etsi);
        for (int dir = 0; dir < 2; ++dir) {
            auto& master = dir == 0 ? *a : *b;
            auto& slave = dir == 0 ? *b : *a;
            const std::string slave_id = dir == 0 ? "SAE_B" : "SAE_A", master_id = dir == 0 ? "SAE_A" : "SAE_B";
            const auto enc = master.enc_keys(slave_id, 2, 256);
            if (!enc.ok()) {
                agree = false;
                why = "enc_keys at KME_" + std::string(dir == 0 ? "A" : "B") + ": HTTP " + std::to_string(enc.http_status) + " " + enc.message;
                break;
            }
            std::vector<keymgmt::key_id> ids;
            for (const auto& k : enc.keys) ids.push_back(k.id);
            const auto dec = slave.dec_keys(master_id, ids);
            if (!dec.ok() || dec.keys.size() != enc.keys.size()) {
                agree = false;
                why = "dec_keys at the other KME: HTTP " + std::to_string(dec.http_status) + " " + dec.message;
                break;
            }
            for (std::size_t i = 0; i < ids.size(); ++i) {
                const auto& x = enc.keys[i];
                const auto* y = &dec.keys[i];
                for (const auto& k : dec.keys)
                    if (k.id == x.id) y = &k;
                if (y->id != x.id || y->material.size() != x.material.size() ||
                    CRYPTO_memcmp(y->material.data(), x.material.data(), x.material.size()) != 0) {
                    agree = false;
                    why = "key " + keymgmt::key_id_to_string(x.id) + " differs between the KMEs";
                }
                ++compared;
            }
            if (slave.dec_keys(master_id, ids).ok()) {
                once = false;
                why = "a key was served twice over ETSI 014";
            }
        }
    } catch (const std::exception& e) {
        agree = false;
        why = e.what();
    }
    r.keys_agree = agree && compared > 0;
    ts_.summary.emplace_back("key stores agree (ETSI 014)",
                             r.keys_agree ? "yes, " + std::to_string(compared) + " keys compared, none served twice" : "NO: " + why);
    if (!r.keys_agree && r.failure.empty()) r.failure = "key stores: " + why;
    if (!once) {
        r.keys_unique = false;
        if (r.failure.empty()) r.failure = why;
    }
}

// The link never uses a key twice: per end, a transmit key ID that was replaced never comes back
// (polled IDs and the key_rotation log lines), and the qkmd stores served each key once (checked above).
void demo_run::check_key_ids(demo_result& r) {
    auto unique = [](const std::vector<double>& v) {
        std::set<double> s(v.begin(), v.end());
        return s.size() == v.size();
    };
    auto from_log = [&](const std::string& name) {
        std::vector<double> ids;
        std::istringstream in(read_file(dir_ / "logs" / (name + ".log")));
        std::string l;
        double last = no_value;
        while (std::getline(in, l)) {
            if (l.find("key_rotation") == std::string::npos) continue;
            auto p = l.find("active_key_id");
            if (p == std::string::npos) continue;
            p = l.find_first_of("0123456789", p + 13);
            if (p == std::string::npos) continue;
            const double id = std::strtod(l.c_str() + p, nullptr);
            if (id != last) ids.push_back(id);
            last = id;
        }
        return ids;
    };
    const auto ls = from_log("qlinkd-space"), lg = from_log("qlinkd-ground");
    r.keys_unique = unique(space_key_ids_) && unique(ground_key_ids_) && unique(ls) && unique(lg);
    ts_.summary.emplace_back("link keys never reused",
                             r.keys_unique ? "yes (" + std::to_string(std::max(space_key_ids_.size(), ls.size())) + " downlink, " +
                                                 std::to_string(std::max(ground_key_ids_.size(), lg.size())) + " return-link keys)"
                                           : "NO: a key ID came back");
    if (!r.keys_unique && r.failure.empty()) r.failure = "a link key ID was used twice";
}

void demo_run::shutdown_all() {
    if (stopped_all_) return;
    stopped_all_ = true;
    if (traffic_) traffic_->stop();
    // Links first (they drain ARQ), then the key managers, then the simulator.
    for (const char* n : {"qlinkd-space", "qlinkd-ground", "qkmd-bob", "qkmd-alice", "qlink-sim"}) {
        auto it = children_.find(n);
        if (it != children_.end() && it->second) it->second->stop(std::string_view(n).starts_with("qlinkd") ? 8000ms : 3000ms);
    }
}

void demo_run::summarise(demo_result& r) {
    const auto& s = ts_.samples;
    // A fade counts when the ground link dropped out of "up" while user data was still
    // undelivered and came back; it was recovered by ARQ when the sender retransmitted after it and
    // the user port delivered more bytes within 60 s of the link's return (retransmissions alone
    // could be lost again; delivery is what the user sees).
    std::uint64_t fades = 0, recovered = 0;
    auto finite_or = [](double v, double dflt) { return std::isfinite(v) ? v : dflt; };
    for (std::size_t i = 1; i < s.size(); ++i) {
        if (s[i - 1].link_state != "up" || s[i].link_state == "up" || s[i].link_state == "ended") continue;
        std::size_t j = i;
        while (j < s.size() && s[j].link_state != "up" && s[j].link_state != "ended") ++j;
        if (j >= s.size() || s[j].link_state != "up") continue;
        const double sent = finite_or(s[i - 1].bytes_sent, 0.0);
        const double got_before = finite_or(s[i - 1].bytes_delivered, 0.0);
        if (!(sent > got_before)) continue;  // everything sent was already delivered: nothing at stake
        ++fades;
        const double rtx_before = finite_or(s[i - 1].arq_retransmissions, 0.0);
        double rtx_after = rtx_before, got_after = got_before;
        for (std::size_t k = j; k < s.size() && s[k].sim_time_s <= s[j].sim_time_s + 60; ++k) {
            rtx_after = finite_or(s[k].arq_retransmissions, rtx_after);
            got_after = finite_or(s[k].bytes_delivered, got_after);
        }
        if (rtx_after > rtx_before && got_after > got_before) ++recovered;
    }
    r.fades = fades;
    r.fades_recovered = recovered;
    r.rotations = static_cast<std::uint64_t>(std::max(0.0, std::isfinite(last_.key_rotations) ? last_.key_rotations : 0.0));
    r.retransmissions = static_cast<std::uint64_t>(std::isfinite(last_.arq_retransmissions) ? last_.arq_retransmissions : 0.0);
    r.sim_seconds = std::isfinite(last_.sim_time_s) ? last_.sim_time_s : 0.0;
    r.downlink_bps = std::isfinite(downlink_bps_) ? downlink_bps_ : 0.0;
    r.return_bps = std::isfinite(return_bps_) ? return_bps_ : 0.0;
    const double tput = r.sim_seconds > 0 ? 8.0 * static_cast<double>(r.bytes_delivered) / r.sim_seconds : no_value;
    auto& m = ts_.summary;
    m.insert(m.begin(),
             {{"satellite / station", tle_.filename().string() + " over " + cfg_.station},
              {"pass", pass_ ? sim::format_iso8601_utc(pass_->aos) + " to " + sim::format_iso8601_utc(pass_->los) + ", max elevation " +
                                   fmt(pass_->max_elevation_deg, 1) + " deg"
                             : "-"},
              {"line rates (simulated)", "downlink " + human_rate(downlink_bps_) + " (optical OOK, " + cfg_.downlink_profile + "), return " + human_rate(return_bps_) + (cfg_.rf_samples ? " (RF BPSK, sample level)" : " (RF BPSK, per bit)")},
              {"RF return link", !cfg_.rf_samples ? "the relay's per-bit BPSK channel"
                                 : std::isfinite(rf_residual_hz_)
                                     ? "uplink Doppler pre-compensated up to " + fmt(rf_max_precomp_hz_ / 1e3, 1) +
                                           " kHz; the satellite's loop locked in " +
                                           fmt(rf_samples_up_ ? 100.0 * double(rf_samples_locked_) / double(rf_samples_up_) : 0.0, 0) +
                                           " % of the samples above the 5 deg RF mask, " + fmt(rf_residual_hz_, 0) +
                                           " Hz residual at the end"
                                     : "no status from the ground's RF chain"},
              {"simulated / wall time", fmt(r.sim_seconds, 1) + " s / " + fmt(r.wall_seconds, 1) + " s (ratio " +
                                            fmt(r.wall_seconds > 0 ? r.sim_seconds / r.wall_seconds : no_value, 1) + ")"},
              {"user file", human_bytes(static_cast<double>(r.file_bytes)) + ", SHA-256 " + r.sha256},
              {"delivered", human_bytes(static_cast<double>(r.bytes_delivered)) + (r.file_intact ? " (SHA-256 match)" : " (INCOMPLETE or CORRUPT)")},
              {"user throughput", human_rate(tput) + " per simulated second over the pass"},
              {"link keys", cfg_.link_keys_from_qkmd ? "from qkmd (QKD key stores), injection socket"
                                                     : "TEST ONLY seeded keys in qlinkd (not from QKD)"},
              {"key rotations", std::to_string(r.rotations)},
              {"ARQ retransmissions", std::to_string(r.retransmissions) + (std::isfinite(last_.arq_srtt_s)
                                                                                ? ", round trip " + fmt(last_.arq_srtt_s, 2) + " s (smoothed)"
                                                                                : "")},
              {"fades recovered by ARQ", std::to_string(recovered) + " of " + std::to_string(fades)}});
    ts_.summary.emplace_back("outcome", r.ok ? "PASS" : "FAIL: " + r.failure);
}

demo_result demo_run::run() {
    demo_result r;
    try {
        prepare();
    } catch (const fs::filesystem_error& e) {
        throw std::invalid_argument(e.what());
    }
    try {
        start_sim();
        out_ << "qlink demo: " << tle_.filename().string() << " over " << cfg_.station << ", pass "
             << sim::format_iso8601_utc(pass_->aos) << " (max elevation " << fmt(pass_->max_elevation_deg, 1) << " deg, "
             << fmt(std::chrono::duration<double>(pass_->los - pass_->aos).count() / 60.0, 1) << " min above the horizon, "
             << fmt(pass_span_s_, 0) << " s simulated), speed x" << fmt(cfg_.speed, 1) << "\n  work dir " << dir_.string() << '\n';
        out_.flush();
        start_qkmd();
        start_qlinkd();
        choose_file_size();
        r.file_bytes = file_bytes_;
        r.sha256 = file_sha_;
        out_ << "  downlink " << human_rate(downlink_bps_) << " (" << cfg_.downlink_profile << "), return " << human_rate(return_bps_) << ", user file "
             << human_bytes(static_cast<double>(file_bytes_)) << " (sha256 " << file_sha_.substr(0, 16) << "...)\n";
        // The file goes in once the ground link is first up (its terminal points and frames decode),
        // as an operator would start traffic: handed in earlier, ARQ's timers back off through the
        // whole acquisition (up to half a minute when the mount slews from its park) and the repair
        // of those losses dominates a short pass.
        traffic_ = std::make_unique<user_traffic>(user_file_, dir_ / "received.bin", file_bytes_);
        bool traffic_started = false;

        const auto period = std::chrono::duration<double>(1.0 / cfg_.poll_hz);
        auto next = steady::now();
        steady::time_point ended_at{};
        bool ended = false;
        while (!stopped()) {
            next += std::chrono::duration_cast<steady::duration>(period);
            std::this_thread::sleep_until(next);
            pass_sample s = poll();
            if (std::isfinite(s.sim_time_s) || !s.link_state.empty()) {
                ts_.samples.push_back(s);
                last_ = s;
            }
            if (!traffic_started && s.link_state == "up") {
                traffic_->start(p_.space_user, p_.ground_user);
                traffic_started = true;
                log_event("link up at sim " + fmt(s.sim_time_s, 1) + " s: user file transfer started");
            }
            progress(last_, false);
            maybe_cloud(s);
            if (cfg_.on_poll) cfg_.on_poll(*this);
            for (auto& [name, c] : children_) {
                if (c && !killed_.count(name) && !c->running())
                    fail(name + " stopped unexpectedly (" + c->exit_status() + "); log " + specs_[name].log.string() + ":" +
                         log_tail(specs_[name].log));
            }
            // END_OF_PASS reaches both ends; either is enough (a lagging receiver sees it later).
            if (!ended && (s.link_state == "ended" || space_state_ == "ended")) {
                ended = true;
                ended_at = steady::now();
            }
            // After END_OF_PASS nothing more crosses; a short grace lets the last bytes reach us
            // (longer when only the transmitter has seen the end and the receiver still catches up).
            const auto grace = s.link_state == "ended" ? 3s : 15s;
            if (ended && (traffic_->complete() || steady::now() - ended_at > grace)) break;
            if (seconds_since(t0_) > cfg_.wall_timeout_s) {
                r.failure = "the pass did not end within " + fmt(cfg_.wall_timeout_s, 0) + " s wall";
                break;
            }
        }
        progress(last_, true);
        if (stopped() && r.failure.empty()) r.failure = "interrupted";
        r.wall_seconds = seconds_since(t0_);
        check_keys(r);
        check_key_ids(r);
    } catch (const std::exception& e) {
        progress(last_, true);
        r.failure = e.what();
        r.wall_seconds = seconds_since(t0_);
    }
    shutdown_all();
    if (traffic_) {
        r.bytes_delivered = traffic_->received();
        r.file_intact = traffic_->complete() && traffic_->extra() == 0 && traffic_->received_sha256() == file_sha_;
        if (!r.file_intact && r.failure.empty())
            r.failure = traffic_->complete() ? "the received file differs from the sent one (SHA-256)"
                                             : "only " + human_bytes(static_cast<double>(traffic_->received())) + " of " +
                                                   human_bytes(static_cast<double>(file_bytes_)) + " arrived";
    }
    ts_.derive_rotations();
    r.ok = r.failure.empty() && r.file_intact && r.keys_agree && r.keys_unique;
    summarise(r);
    r.report = write_pass_report(dir_, ts_, "qlink pass report: " + tle_.filename().string() + " over " + cfg_.station);
    r.series = ts_;

    out_ << "qlink demo: " << (r.ok ? "PASS" : "FAIL: " + r.failure) << '\n';
    for (const auto& [k, v] : ts_.summary)
        if (k != "outcome") out_ << "  " << std::left << std::setw(28) << k << std::right << v << '\n';
    if (r.report.ok)
        out_ << "  report                      " << r.report.html.string() << " (+ timeseries.csv, timeseries.json)\n";
    else
        err_ << "qlink demo: report not written: " << r.report.error << '\n';
    out_ << "  logs                        " << (dir_ / "logs").string() << '\n';
    return r;
}

}  // namespace

std::optional<fs::path> find_bundled_tle() {
    std::vector<fs::path> c;
    const fs::path here = self_exe_dir();
    if (!here.empty()) {
        c.push_back(here / ".." / "share" / "qlink" / "qlinksat-1.tle");
        c.push_back(here / ".." / ".." / ".." / "sim" / "data" / "qlinksat-1.tle");
    }
    if (*QLINK_DEMO_SOURCE_DIR) c.push_back(fs::path(QLINK_DEMO_SOURCE_DIR) / "sim" / "data" / "qlinksat-1.tle");
    c.push_back("/usr/share/qlink/qlinksat-1.tle");
    for (const auto& p : c) {
        std::error_code ec;
        if (fs::is_regular_file(p, ec)) return fs::weakly_canonical(p);
    }
    return std::nullopt;
}

demo_result run_demo(const demo_config& cfg, std::ostream& out, std::ostream& err, const std::atomic<bool>* stop) {
    demo_run run(cfg, out, err, stop);
    return run.run();
}

}  // namespace qlink::terminal
