// qkmd main loop: refills the store from the key source, serves ETSI 014, injection and /metrics, stops on SIGTERM.
#include "qlink/keymgmt/daemon.hpp"

#include "qlink/keymgmt/etsi014_client.hpp"

#include <openssl/crypto.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

namespace qlink::keymgmt {

namespace {

// Named-channel logger to stderr, plain or JSON lines. Key material is never passed to it.
class logger {
public:
    explicit logger(log_format f) : fmt_(f) {}
    void write(const char* level, const char* channel, const std::string& msg)
    {
        char ts[32];
        const std::time_t now = std::time(nullptr);
        std::tm tm{};
        gmtime_r(&now, &tm);
        std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
        std::string line;
        if (fmt_ == log_format::json) {
            nlohmann::json j{{"ts", ts}, {"level", level}, {"channel", channel}, {"msg", msg}};
            line = j.dump();
        } else {
            line = std::string(ts) + " " + level + " [" + channel + "] " + msg;
        }
        std::lock_guard lock(mu_);
        std::fprintf(stderr, "%s\n", line.c_str());
        std::fflush(stderr);
    }
    void info(const std::string& m) { write("info", "keys", m); }
    void warn(const std::string& m) { write("warn", "keys", m); }
    void error(const std::string& m) { write("error", "keys", m); }

private:
    log_format fmt_;
    std::mutex mu_;
};

std::string prom_double(double v)
{
    if (std::isnan(v)) {
        return "NaN";
    }
    std::ostringstream os;
    os << v;
    return os.str();
}

struct metric_sources {
    key_store* store = nullptr;
    key_source* source = nullptr;
    etsi014_service* etsi = nullptr;
    https_server* etsi_server = nullptr;
    inject_server* inject = nullptr;
    std::atomic<std::uint64_t>* keys_added = nullptr;
};

std::string render_metrics(const metric_sources& m)
{
    std::ostringstream o;
    auto head = [&](const char* name, const char* type, const char* help) {
        o << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
    };
    const auto c = m.store->counts();
    head("qkmd_keys_stored", "gauge", "Keys in the store by state (ACTIVE = ready to serve).");
    o << "qkmd_keys_stored{state=\"preactive\"} " << c.preactive << "\nqkmd_keys_stored{state=\"active\"} " << c.active
      << "\nqkmd_keys_stored{state=\"deactivated\"} " << c.deactivated << '\n';
    head("qkmd_keys_consumed", "gauge", "Keys fully consumed or expired (DESTROYED tombstones).");
    o << "qkmd_keys_consumed " << c.destroyed << '\n';
    const auto ss = m.store->stats();
    head("qkmd_pool_keys", "gauge", "Keys reserved in hand-out pools, not yet handed out (counted as active).");
    o << "qkmd_pool_keys " << ss.pooled_keys << '\n';
    head("qkmd_pool_keys_unconfirmed_at_start", "gauge",
         "Pooled keys left by an unclean stop before this start, not known to be delivered (at most this many lost).");
    o << "qkmd_pool_keys_unconfirmed_at_start " << ss.pool_unconfirmed_at_open << '\n';
    head("qkmd_store_commits_total", "counter", "Key store group-commit transactions (one fsync each).");
    o << "qkmd_store_commits_total " << ss.commits << '\n';
    head("qkmd_keys_added_total", "counter", "Keys taken from the key source into the store since start.");
    o << "qkmd_keys_added_total " << m.keys_added->load() << '\n';
    head("qkmd_keys_served_total", "counter", "Keys handed out since start, by interface.");
    std::uint64_t enc = 0, dec = 0, next = 0, byid = 0;
    if (m.etsi != nullptr) {
        enc = m.etsi->counters().keys_served_enc.load();
        dec = m.etsi->counters().keys_served_dec.load();
    }
    if (m.inject != nullptr) {
        next = m.inject->counters().keys_next.load();
        byid = m.inject->counters().keys_by_id.load();
    }
    o << "qkmd_keys_served_total{interface=\"etsi014_enc\"} " << enc << "\nqkmd_keys_served_total{interface=\"etsi014_dec\"} "
      << dec << "\nqkmd_keys_served_total{interface=\"inject_next\"} " << next
      << "\nqkmd_keys_served_total{interface=\"inject_by_id\"} " << byid << '\n';
    const auto s = m.source->stats();
    head("qkmd_qber", "gauge", "Quantum bit error rate of the last post-processing block (NaN: source has none).");
    o << "qkmd_qber " << prom_double(s.qber) << '\n';
    head("qkmd_secret_key_rate_bps", "gauge", "Secret key rate of the last block in bits/s.");
    o << "qkmd_secret_key_rate_bps " << prom_double(s.secret_key_rate_bps) << '\n';
    head("qkmd_reconciliation_efficiency", "gauge", "Reconciliation efficiency f = leaked / (n h(QBER)).");
    o << "qkmd_reconciliation_efficiency " << prom_double(s.reconciliation_efficiency) << '\n';
    head("qkmd_aborts_total", "counter", "Key source aborts (post-processing aborts, upstream failures).");
    o << "qkmd_aborts_total " << s.aborts << '\n';
    if (m.source->name() == "qkd") {
        head("qkmd_postproc_aborts_total", "counter", "Post-processing sessions that emitted no key, by reason.");
        for (const auto& [reason, n] : s.aborts_by_reason) {
            o << "qkmd_postproc_aborts_total{reason=\"" << reason << "\"} " << n << '\n';
        }
        head("qkmd_postproc_sessions_total", "counter", "Post-processing sessions whose keys are stored at both ends.");
        o << "qkmd_postproc_sessions_total " << s.sessions_ok << '\n';
        head("qkmd_qkd_detections_total", "counter", "Detection records received from the QKD event port.");
        o << "qkmd_qkd_detections_total " << s.detections_received << '\n';
        head("qkmd_qkd_event_blocks_total", "counter", "Event blocks received from the QKD event port.");
        o << "qkmd_qkd_event_blocks_total " << s.event_blocks << '\n';
        head("qkmd_qkd_blocks_discarded_total", "counter", "Event blocks not used (peer lacked them, queue full).");
        o << "qkmd_qkd_blocks_discarded_total " << s.blocks_discarded << '\n';
        head("qkmd_qkd_bad_records_total", "counter", "Malformed event records dropped.");
        o << "qkmd_qkd_bad_records_total " << s.bad_records << '\n';
    }
    if (m.etsi != nullptr) {
        const auto& e = m.etsi->counters();
        head("qkmd_etsi014_errors_total", "counter", "ETSI 014 error responses by status code.");
        o << "qkmd_etsi014_errors_total{code=\"400\"} " << e.errors_400.load() << "\nqkmd_etsi014_errors_total{code=\"401\"} "
          << e.errors_401.load() << "\nqkmd_etsi014_errors_total{code=\"503\"} " << e.errors_503.load() << '\n';
        const auto st = m.etsi_server->stats();
        head("qkmd_etsi014_requests_total", "counter", "HTTP requests parsed on the ETSI 014 port.");
        o << "qkmd_etsi014_requests_total " << st.requests << '\n';
        head("qkmd_etsi014_handshake_failures_total", "counter", "TLS handshakes refused (e.g. no client certificate).");
        o << "qkmd_etsi014_handshake_failures_total " << st.handshake_failures << '\n';
    }
    if (m.inject != nullptr) {
        head("qkmd_inject_refused_peers_total", "counter", "Injection socket peers refused (uid not allowed).");
        o << "qkmd_inject_refused_peers_total " << m.inject->counters().refused_peers.load() << '\n';
    }
    return o.str();
}

nlohmann::json num(double v)
{
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

// JSON status for the demo and operators: every field always present, unknown numbers null.
std::string render_status(const metric_sources& m, const std::string& kme_id)
{
    const auto c = m.store->counts();
    const auto s = m.source->stats();
    nlohmann::json aborts = nlohmann::json::object();
    for (const auto& [reason, n] : s.aborts_by_reason) {
        aborts[reason] = n;
    }
    nlohmann::json j{
        {"kme_id", kme_id},
        {"source", std::string(m.source->name())},
        {"state", s.state.empty() ? "running" : s.state},
        {"sim_time", num(s.sim_time)},
        {"keys",
         {{"preactive", c.preactive},
          {"active", c.active},
          {"deactivated", c.deactivated},
          {"destroyed", c.destroyed},
          {"added_total", m.keys_added->load()}}},
        {"qkd",
         {{"qber", num(s.qber)},
          {"secret_key_rate_bps", num(s.secret_key_rate_bps)},
          {"reconciliation_efficiency", num(s.reconciliation_efficiency)},
          {"ec_leak_bits", num(s.ec_leak_bits)},
          {"sessions_ok", s.sessions_ok},
          {"aborts", s.aborts},
          {"aborts_by_reason", aborts},
          {"last_abort", s.last_abort},
          {"detections", s.detections_received},
          {"event_blocks", s.event_blocks},
          {"blocks_discarded", s.blocks_discarded},
          {"keys_produced", s.keys_produced}}},
    };
    return j.dump() + "\n";
}

// Adds keys from the source; a key already stored (e.g. the sim source replaying after a
// restart) is skipped, never stored twice.
std::size_t refill(key_store& store, key_source& src, std::uint64_t target, logger& log, std::uint64_t& added)
{
    const auto have = store.available(-1);
    if (have >= target) {
        return 0;
    }
    std::vector<produced_key> got;
    src.poll(got, static_cast<std::size_t>(std::min<std::uint64_t>(target - have, 1024)));
    if (got.empty()) {
        return 0;
    }
    std::vector<new_key> batch;
    for (const auto& k : got) {
        batch.push_back({k.id, k.material.span()});
    }
    auto r = store.add(batch, key_state::active);
    if (r.status == store_status::duplicate_id) {
        std::size_t n = 0;
        for (const auto& k : batch) {
            if (store.add(std::span(&k, 1), key_state::active).ok()) {
                ++n;
            }
        }
        added += n;
        return n;
    }
    if (!r.ok()) {
        log.warn("cannot store new keys: " + r.message);
        return 0;
    }
    added += r.count;
    return r.count;
}

}  // namespace

int run_qkmd(const qkmd_config& cfg, const std::string& ready_file, bool handle_signals)
{
    logger log(cfg.log);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (handle_signals) {
        // Blocked before any thread starts, so only the sigtimedwait below sees them.
        pthread_sigmask(SIG_BLOCK, &set, nullptr);
        signal(SIGPIPE, SIG_IGN);
    }
    std::unique_ptr<key_store> store;
    std::unique_ptr<key_source> source;
    qkd_key_source* qkd = nullptr;
    std::unique_ptr<etsi014_peer_notifier> notifier;
    std::unique_ptr<etsi014_service> etsi;
    std::unique_ptr<https_server> etsi_server, metrics_server;
    std::unique_ptr<inject_server> inject;
    std::atomic<std::uint64_t> added_total{0};
    try {
        store = open_key_store(cfg.store);
        if (const auto lost = store->stats().pool_unconfirmed_at_open; lost > 0) {
            log.warn("the previous qkmd stopped without closing the key store: " + std::to_string(lost) +
                     " keys reserved in hand-out pools are not known to have been handed out to their master SAE;"
                     " they stay issued (never served to a master again, each slave can fetch them once): up to"
                     " this many keys were lost");
        }
        const auto c = store->counts();
        switch (cfg.source) {
        case source_kind::sim: {
            auto sc = cfg.sim;
            sc.first_index = c.preactive + c.active + c.deactivated + c.destroyed;
            source = create_sim_key_source(sc);
            log.warn("key source is the SIMULATION source (seeded, not secret): for tests only");
            break;
        }
        case source_kind::etsi014: source = create_upstream_key_source(cfg.upstream); break;
        case source_kind::qkd: {
            auto q = create_qkd_key_source(cfg.qkd, *store);
            qkd = q.get();
            source = std::move(q);
            if (cfg.qkd.who == qkd_key_source::role::alice) {
                log.info("QKD post-processing as alice, peer channel on " + cfg.qkd.peer_listen + ":" +
                         std::to_string(qkd->peer_port()));
            } else {
                log.info("QKD post-processing as bob, peer alice at " + cfg.qkd.peer_host + ":" +
                         std::to_string(cfg.qkd.peer_port));
            }
            break;
        }
        }
        if (!cfg.peers.empty()) {
            notifier = std::make_unique<etsi014_peer_notifier>(cfg.peers);
        }
        if (cfg.etsi014_enabled) {
            etsi = std::make_unique<etsi014_service>(cfg.etsi014, *store, notifier.get());
            etsi_server = start_https_server(
                cfg.etsi014_server, [&](const http_request_view& r) { return etsi->handle(r); },
                [&](const http_request_view& r) { return etsi->may_block(r); });
            log.info("ETSI 014 listening on https://" + cfg.etsi014_server.address + ":" +
                     std::to_string(etsi_server->port()) + " as " + cfg.kme_id);
        }
        if (cfg.inject_enabled) {
            inject = start_inject_server(cfg.inject, *store);
            log.info("key injection socket " + cfg.inject.socket_path);
        }
        metric_sources ms{store.get(), source.get(), etsi.get(), etsi_server.get(), inject.get(), &added_total};
        if (cfg.metrics_enabled) {
            metrics_server = start_https_server(cfg.metrics_server, [ms, id = cfg.kme_id](const http_request_view& r) -> http_reply {
                if (r.method == "GET" && r.target == "/status") {
                    return {200, render_status(ms, id), "application/json", false};
                }
                if (r.method != "GET" || r.target != "/metrics") {
                    return {404, "not found\n", "text/plain", false};
                }
                return {200, render_metrics(ms), "text/plain; version=0.0.4", false};
            });
            log.info("metrics on http://" + cfg.metrics_server.address + ":" + std::to_string(metrics_server->port()) +
                     "/metrics");
        }
    } catch (const std::exception& e) {
        log.error(std::string("startup failed: ") + e.what());
        return 1;
    }
    if (!ready_file.empty()) {
        nlohmann::json j{{"etsi014_port", etsi_server ? etsi_server->port() : 0},
                         {"metrics_port", metrics_server ? metrics_server->port() : 0},
                         {"peer_port", qkd != nullptr ? qkd->peer_port() : 0}};
        const std::string tmp = ready_file + ".tmp";
        std::ofstream(tmp) << j.dump() << "\n";
        std::rename(tmp.c_str(), ready_file.c_str());
    }
    log.info("qkmd " + cfg.kme_id + " running, key source " + std::string(source->name()));
    std::uint64_t added = 0;
    auto last_expire = std::chrono::steady_clock::now();
    for (;;) {
        refill(*store, *source, cfg.target_stock, log, added);
        added_total = added;
        if (std::chrono::steady_clock::now() - last_expire > std::chrono::seconds(60)) {
            if (const auto n = store->expire(); n > 0) {
                log.info(std::to_string(n) + " keys expired and destroyed");
            }
            last_expire = std::chrono::steady_clock::now();
        }
        if (handle_signals) {
            timespec ts{static_cast<time_t>(cfg.poll_interval_ms / 1000),
                        static_cast<long>(cfg.poll_interval_ms % 1000) * 1000000L};
            const int sig = sigtimedwait(&set, nullptr, &ts);
            if (sig == SIGTERM || sig == SIGINT) {
                log.info(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ", shutting down");
                break;
            }
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(cfg.poll_interval_ms));
        }
    }
    // Listeners first (no new requests), then the store: every committed hand-out is on disk.
    if (metrics_server) {
        metrics_server->stop();
    }
    if (etsi_server) {
        etsi_server->stop();
    }
    if (inject) {
        inject->stop();
    }
    etsi_server.reset();
    metrics_server.reset();
    inject.reset();
    etsi.reset();
    if (qkd != nullptr) {
        qkd->stop();  // its threads write to the store
    }
    source.reset();
    store.reset();
    log.info("shutdown complete");
    return 0;
}

int qkmd_main(int argc, char** argv)
{
    std::string config_path, ready_file;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (a == "--ready-file" && i + 1 < argc) {
            ready_file = argv[++i];
        } else if (a == "--check") {
            check = true;
        } else if (a == "--help" || a == "-h") {
            std::printf("usage: qkmd --config qkmd.toml [--check] [--ready-file FILE]\n");
            return 0;
        } else {
            std::fprintf(stderr, "qkmd: unknown argument '%s'; usage: qkmd --config qkmd.toml [--check] [--ready-file FILE]\n",
                         a.c_str());
            return 2;
        }
    }
    if (config_path.empty()) {
        std::fprintf(stderr, "qkmd: --config FILE is required\n");
        return 2;
    }
    qkmd_config cfg;
    try {
        cfg = load_qkmd_config(config_path);
    } catch (const config_error& e) {
        std::fprintf(stderr, "qkmd: configuration error: %s\n", e.what());
        return 2;
    }
    if (check) {
        std::printf("configuration OK\n");
        return 0;
    }
    // Keys and the master key live in the secure heap where the kernel allows it.
    if (CRYPTO_secure_malloc_init(1 << 20, 64) == 0) {
        std::fprintf(stderr, "qkmd: secure heap unavailable, using the normal heap (keys are still cleansed)\n");
    }
    return run_qkmd(cfg, ready_file, true);
}

}  // namespace qlink::keymgmt
