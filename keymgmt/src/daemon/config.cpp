// qkmd TOML configuration: strict schema (unknown keys and wrong types are errors naming the key).
#include "qlink/keymgmt/qkmd_config.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <sstream>

namespace qlink::keymgmt {

namespace {

// [store] handout_pool when the file does not set it.
constexpr std::int64_t default_handout_pool = 256;

std::string join(const std::vector<std::string>& v)
{
    std::string s;
    for (const auto& x : v) {
        s += (s.empty() ? "" : ", ") + x;
    }
    return s;
}

// One TOML table with the keys it may hold; anything else is reported by finish().
class section {
public:
    section(const toml::table* t, std::string path, std::vector<std::string> allowed)
        : t_(t), path_(std::move(path)), allowed_(std::move(allowed))
    {
        if (t_ != nullptr) {
            for (const auto& [k, v] : *t_) {
                const std::string key(k.str());
                if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) {
                    throw config_error("unknown key '" + name(key) + "'; allowed keys: " + join(allowed_));
                }
            }
        }
    }
    bool present() const { return t_ != nullptr; }
    std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

    std::optional<std::string> str(const std::string& key) const
    {
        const auto* n = node(key);
        if (n == nullptr) {
            return std::nullopt;
        }
        if (!n->is_string()) {
            throw config_error("key '" + name(key) + "' must be a string");
        }
        return n->value<std::string>();
    }
    std::string str_or(const std::string& key, std::string def) const { return str(key).value_or(std::move(def)); }
    std::string required(const std::string& key) const
    {
        auto v = str(key);
        if (!v || v->empty()) {
            throw config_error("key '" + name(key) + "' is required (a non-empty string)");
        }
        return *v;
    }
    std::int64_t integer(const std::string& key, std::int64_t def, std::int64_t lo, std::int64_t hi) const
    {
        const auto* n = node(key);
        if (n == nullptr) {
            return def;
        }
        if (!n->is_integer()) {
            throw config_error("key '" + name(key) + "' must be an integer in " + std::to_string(lo) + ".." +
                               std::to_string(hi));
        }
        const auto v = *n->value<std::int64_t>();
        if (v < lo || v > hi) {
            throw config_error("key '" + name(key) + "' = " + std::to_string(v) + " is out of range; allowed " +
                               std::to_string(lo) + ".." + std::to_string(hi));
        }
        return v;
    }
    bool boolean(const std::string& key, bool def) const
    {
        const auto* n = node(key);
        if (n == nullptr) {
            return def;
        }
        if (!n->is_boolean()) {
            throw config_error("key '" + name(key) + "' must be true or false");
        }
        return *n->value<bool>();
    }
    std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) const
    {
        const auto v = str_or(key, def);
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
            throw config_error("key '" + name(key) + "' = \"" + v + "\" is not allowed; allowed values: " + join(allowed));
        }
        return v;
    }
    const toml::node* node(const std::string& key) const { return t_ ? t_->get(key) : nullptr; }

private:
    const toml::table* t_;
    std::string path_;
    std::vector<std::string> allowed_;
};

const toml::table* sub(const toml::table& root, const char* key)
{
    const auto* n = root.get(key);
    if (n == nullptr) {
        return nullptr;
    }
    if (!n->is_table()) {
        throw config_error(std::string("'") + key + "' must be a table ([" + key + "])");
    }
    return n->as_table();
}

const std::vector<std::string> tls_keys{"cert", "key", "ca"};

int partition(const section& s)
{
    const auto p = s.choice("partition", "all", {"all", "even", "odd"});
    return p == "all" ? -1 : p == "even" ? 0 : 1;
}

}  // namespace

qkmd_config parse_qkmd_config(std::string_view text, std::string_view source_name)
{
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
           << e.description();
        throw config_error(os.str());
    }
    const section top(&root, "", {"kme", "store", "source", "etsi014", "sae", "peer_kme", "inject", "metrics", "log"});
    qkmd_config c;

    const section kme(sub(root, "kme"), "kme", {"id"});
    if (!kme.present()) {
        throw config_error("table [kme] with key 'id' is required");
    }
    c.kme_id = kme.required("id");

    const section st(sub(root, "store"), "store",
                     {"db", "master_key", "create_master_key", "max_key_count", "key_lifetime_s", "full_sync",
                      "handout_pool"});
    if (!st.present()) {
        throw config_error("table [store] with keys 'db' and 'master_key' is required");
    }
    c.store.db_path = st.required("db");
    c.store.master_key_path = st.required("master_key");
    c.store.create_master_key = st.boolean("create_master_key", true);
    c.store.max_key_count = static_cast<std::uint64_t>(st.integer("max_key_count", 100000, 1, 100000000));
    c.store.key_lifetime = std::chrono::seconds(st.integer("key_lifetime_s", 7 * 24 * 3600, 0, 10LL * 365 * 24 * 3600));
    c.store.full_sync = st.boolean("full_sync", true);
    // On by default: without it every enc_keys waits for an fsync and p99 sits at the 20 ms
    // target (docs/performance.md); 256 is capped at an eighth of the ACTIVE keys per pool anyway.
    c.store.handout_pool = static_cast<std::size_t>(st.integer("handout_pool", default_handout_pool, 0, 65536));

    const section src(sub(root, "source"), "source",
                      {"type", "seed", "key_bits", "target_stock", "poll_interval_ms", "keys_per_poll", "host", "port",
                       "server_name", "cert", "key", "ca", "slave_sae_id", "role", "qkd_host", "qkd_port",
                       "peer_listen", "peer_host", "peer_port", "auth_key", "state", "block_detections", "mu",
                       "mu_prob", "qber_max", "min_auth_pads", "peer_timeout_ms"});
    const auto type = src.choice("type", "sim", {"sim", "etsi014", "qkd"});
    const auto key_bits = src.integer("key_bits", 256, 8, 256);
    if (key_bits % 8 != 0) {
        throw config_error("key 'source.key_bits' must be a multiple of 8 (8..256)");
    }
    c.target_stock = static_cast<std::uint64_t>(src.integer("target_stock", 1000, 0, 100000000));
    c.poll_interval_ms = static_cast<std::uint32_t>(src.integer("poll_interval_ms", 100, 10, 60000));
    if (type == "sim") {
        c.source = source_kind::sim;
        c.sim.seed = static_cast<std::uint64_t>(src.integer("seed", 1, 0, INT64_MAX));
        c.sim.key_bytes = static_cast<std::size_t>(key_bits / 8);
        c.sim.keys_per_poll = static_cast<std::size_t>(src.integer("keys_per_poll", 64, 1, 100000));
    } else if (type == "etsi014") {
        c.source = source_kind::etsi014;
        c.upstream.client.host = src.str_or("host", "127.0.0.1");
        c.upstream.client.port = static_cast<std::uint16_t>(src.integer("port", 0, 1, 65535));
        if (c.upstream.client.port == 0) {
            throw config_error("key 'source.port' is required for source.type = \"etsi014\"");
        }
        c.upstream.client.server_name = src.str_or("server_name", "");
        c.upstream.client.cert_file = src.required("cert");
        c.upstream.client.key_file = src.required("key");
        c.upstream.client.ca_file = src.required("ca");
        c.upstream.slave_sae_id = src.required("slave_sae_id");
        c.upstream.key_bits = static_cast<std::size_t>(key_bits);
        c.upstream.keys_per_request = static_cast<std::size_t>(src.integer("keys_per_poll", 16, 1, 1000));
    } else {
        c.source = source_kind::qkd;
        auto& q = c.qkd;
        if (!src.str("role")) {
            throw config_error("key 'source.role' is required for source.type = \"qkd\"; allowed values: alice, bob");
        }
        q.who = src.choice("role", "bob", {"alice", "bob"}) == "alice" ? qkd_key_source::role::alice
                                                                       : qkd_key_source::role::bob;
        q.qkd_host = src.str_or("qkd_host", "127.0.0.1");
        q.qkd_port = static_cast<std::uint16_t>(src.integer("qkd_port", 0, 0, 65535));
        if (q.qkd_port == 0) {
            throw config_error("key 'source.qkd_port' is required for source.type = \"qkd\" (1..65535)");
        }
        q.peer_listen = src.str_or("peer_listen", "127.0.0.1");
        q.peer_host = src.str_or("peer_host", "127.0.0.1");
        const bool alice = q.who == qkd_key_source::role::alice;
        q.peer_port = static_cast<std::uint16_t>(src.integer("peer_port", alice ? 0 : -1, alice ? 0 : 1, 65535));
        if (!alice && !src.node("peer_port")) {
            throw config_error("key 'source.peer_port' is required for role \"bob\" (alice's port, 1..65535)");
        }
        q.auth_key_file = src.required("auth_key");
        q.state_file = src.str_or("state", c.store.db_path.string() + ".qkd-state");
        q.block_detections = static_cast<std::size_t>(src.integer("block_detections", 200000, 100, 4000000));
        q.peer_timeout = std::chrono::milliseconds(src.integer("peer_timeout_ms", 30000, 100, 3600000));
        q.postproc.key_bits = static_cast<std::size_t>(key_bits);
        q.postproc.min_auth_pads = static_cast<std::size_t>(src.integer("min_auth_pads", 256, 16, 1000000));
        auto triple = [&](const char* key, std::array<double, 3>& v) {
            const auto* n = src.node(key);
            if (n == nullptr) {
                return;
            }
            const auto* arr = n->as_array();
            if (arr == nullptr || arr->size() != 3) {
                throw config_error("key '" + src.name(key) + "' must be an array of 3 numbers (signal, decoy, vacuum)");
            }
            for (std::size_t i = 0; i < 3; ++i) {
                const auto x = (*arr)[i].value<double>();
                if (!x || !(*x >= 0.0) || *x > 50.0) {
                    throw config_error("key '" + src.name(key) + "' must be an array of 3 numbers in 0..50");
                }
                v[i] = *x;
            }
        };
        triple("mu", q.postproc.decoy.mu);
        triple("mu_prob", q.postproc.decoy.prob);
        const auto& pr = q.postproc.decoy.prob;
        if (!decoy_settings_valid(q.postproc.decoy) || std::abs(pr[0] + pr[1] + pr[2] - 1.0) > 1e-9) {
            throw config_error("keys 'source.mu' / 'source.mu_prob' violate mu1 > mu2 + mu3, mu2 > mu3 >= 0, "
                               "probabilities in (0, 1] summing to 1");
        }
        if (const auto* n = src.node("qber_max")) {
            const auto x = n->value<double>();
            if (!x || !(*x > 0.0 && *x < 0.5)) {
                throw config_error("key 'source.qber_max' must be a number in (0, 0.5)");
            }
            q.postproc.qber_max = *x;
        }
    }

    const section et(sub(root, "etsi014"), "etsi014",
                     {"enabled", "listen", "port", "cert", "key", "ca", "partition", "max_connections", "max_body_bytes",
                      "request_timeout_ms", "idle_timeout_ms", "threads", "store_threads", "max_key_per_request",
                      "min_key_size", "max_SAE_ID_count"});
    c.etsi014_enabled = et.present() && et.boolean("enabled", true);
    c.etsi014.kme_id = c.kme_id;
    c.etsi014.key_size_bits = static_cast<std::size_t>(key_bits);
    c.etsi014.max_key_size_bits = static_cast<std::size_t>(key_bits);
    c.etsi014.enc_partition = partition(et);
    c.etsi014.max_key_per_request = static_cast<std::size_t>(et.integer("max_key_per_request", 128, 1, 10000));
    c.etsi014.min_key_size_bits = static_cast<std::size_t>(et.integer("min_key_size", 64, 8, key_bits));
    c.etsi014.max_sae_id_count = static_cast<std::size_t>(et.integer("max_SAE_ID_count", 8, 0, 64));
    if (c.etsi014_enabled) {
        auto& s = c.etsi014_server;
        s.address = et.str_or("listen", "127.0.0.1");
        s.port = static_cast<std::uint16_t>(et.integer("port", 8443, 0, 65535));
        s.cert_file = et.required("cert");
        s.key_file = et.required("key");
        s.ca_file = et.required("ca");
        s.max_connections = static_cast<std::size_t>(et.integer("max_connections", 64, 1, 100000));
        s.max_body_bytes = static_cast<std::size_t>(et.integer("max_body_bytes", 16384, 256, 1 << 20));
        s.request_timeout = std::chrono::milliseconds(et.integer("request_timeout_ms", 10000, 10, 600000));
        s.idle_timeout = std::chrono::milliseconds(et.integer("idle_timeout_ms", 30000, 10, 3600000));
        s.threads = static_cast<int>(et.integer("threads", 8, 1, 64));
        // Requests that wait for a store commit (dec_keys, reservations, enc_keys without a
        // pool) run on these, so they never hold a network thread; concurrent ones share a commit.
        s.blocking_threads = static_cast<int>(et.integer("store_threads", 16, 1, 256));
    }

    if (const auto* n = root.get("sae")) {
        if (!n->is_array_of_tables()) {
            throw config_error("'sae' must be an array of tables ([[sae]] with keys id, kme)");
        }
        for (const auto& e : *n->as_array()) {
            const section s(e.as_table(), "sae", {"id", "kme"});
            c.etsi014.saes.push_back({s.required("id"), s.str_or("kme", c.kme_id)});
        }
    }
    if (const auto* n = root.get("peer_kme")) {
        if (!n->is_array_of_tables()) {
            throw config_error("'peer_kme' must be an array of tables ([[peer_kme]] with keys id, host, port, "
                               "server_name, cert, key, ca)");
        }
        for (const auto& e : *n->as_array()) {
            const section s(e.as_table(), "peer_kme", {"id", "host", "port", "server_name", "cert", "key", "ca"});
            etsi014_peer_notifier::peer p;
            p.kme_id = s.required("id");
            p.client.host = s.str_or("host", "127.0.0.1");
            p.client.port = static_cast<std::uint16_t>(s.integer("port", 8443, 1, 65535));
            p.client.server_name = s.str_or("server_name", "");
            p.client.cert_file = s.required("cert");
            p.client.key_file = s.required("key");
            p.client.ca_file = s.required("ca");
            c.peers.push_back(std::move(p));
        }
    }

    const section inj(sub(root, "inject"), "inject", {"enabled", "socket", "mode", "allowed_uids", "partition", "lease_s"});
    c.inject_enabled = inj.present() && inj.boolean("enabled", true);
    c.inject.partition = partition(inj);
    if (c.inject_enabled) {
        c.inject.socket_path = inj.required("socket");
        const auto mode = inj.choice("mode", "0600", {"0600", "0660"});
        c.inject.mode = mode == "0600" ? 0600 : 0660;
        // How long a restarted link daemon can get its decryption key again (docs/keymgmt.md, "Leases"):
        // long enough for a daemon restart, short enough that a key does not stay re-servable for a pass.
        c.inject.lease_time = std::chrono::seconds(inj.integer("lease_s", 900, 1, 86400));
        if (const auto* n = inj.node("allowed_uids")) {
            if (!n->is_array()) {
                throw config_error("key 'inject.allowed_uids' must be an array of integers (user IDs)");
            }
            for (const auto& u : *n->as_array()) {
                if (!u.is_integer() || *u.value<std::int64_t>() < 0) {
                    throw config_error("key 'inject.allowed_uids' must be an array of integers (user IDs)");
                }
                c.inject.allowed_uids.push_back(static_cast<uid_t>(*u.value<std::int64_t>()));
            }
        }
    }

    const section met(sub(root, "metrics"), "metrics", {"enabled", "listen", "port"});
    c.metrics_enabled = met.present() && met.boolean("enabled", true);
    c.metrics_server.address = met.str_or("listen", "127.0.0.1");
    c.metrics_server.port = static_cast<std::uint16_t>(met.integer("port", 9464, 0, 65535));
    c.metrics_server.threads = 1;
    c.metrics_server.max_connections = 8;

    const section lg(sub(root, "log"), "log", {"format"});
    c.log = lg.choice("format", "plain", {"plain", "json"}) == "json" ? log_format::json : log_format::plain;
    (void)top;
    return c;
}

qkmd_config load_qkmd_config(const std::string& path)
{
    std::ifstream in(path);
    if (!in) {
        throw config_error("cannot read configuration file " + path);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return parse_qkmd_config(ss.str(), path);
}

}  // namespace qlink::keymgmt
