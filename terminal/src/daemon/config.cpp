// qlinkd TOML configuration: strict schema, every error one line naming the key and what is allowed.
#include "qlink/terminal/qlinkd_config.hpp"

#include "qlink/modem/profile.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/fallback_keys.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

namespace qlink::terminal {

namespace {

using err = qlinkd_config_error;

std::string join(const std::vector<std::string>& v)
{
    std::string s;
    for (const auto& x : v) {
        s += (s.empty() ? "" : ", ") + x;
    }
    return s;
}

std::string num(double v)
{
    std::ostringstream os;
    os << v;
    return os.str();
}

// One table and the keys it may hold; an unknown key is an error (typos must not pass silently).
class section {
public:
    section(const toml::table* t, std::string path, std::vector<std::string> allowed)
        : t_(t), path_(std::move(path)), allowed_(std::move(allowed))
    {
        if (t_ == nullptr) return;
        for (const auto& [k, v] : *t_) {
            const std::string key(k.str());
            if (std::find(allowed_.begin(), allowed_.end(), key) == allowed_.end()) {
                throw err("unknown key '" + name(key) + "'; allowed keys: " + join(allowed_));
            }
        }
    }
    bool present() const { return t_ != nullptr; }
    bool has(const std::string& key) const { return node(key) != nullptr; }
    std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

    std::string str(const std::string& key, std::string def) const
    {
        const auto* n = node(key);
        if (n == nullptr) return def;
        if (!n->is_string()) throw err("key '" + name(key) + "' must be a string");
        return *n->value<std::string>();
    }
    std::string required(const std::string& key, const std::string& why) const
    {
        auto v = str(key, "");
        if (v.empty()) throw err("key '" + name(key) + "' is required " + why);
        return v;
    }
    std::int64_t integer(const std::string& key, std::int64_t def, std::int64_t lo, std::int64_t hi) const
    {
        const auto* n = node(key);
        if (n == nullptr) return def;
        if (!n->is_integer()) {
            throw err("key '" + name(key) + "' must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
        }
        const auto v = *n->value<std::int64_t>();
        if (v < lo || v > hi) {
            throw err("key '" + name(key) + "' = " + std::to_string(v) + " is out of range; allowed " +
                      std::to_string(lo) + ".." + std::to_string(hi));
        }
        return v;
    }
    double real(const std::string& key, double def, double lo, double hi) const
    {
        const auto* n = node(key);
        if (n == nullptr) return def;
        if (!n->is_number()) throw err("key '" + name(key) + "' must be a number in " + num(lo) + ".." + num(hi));
        const double v = n->is_integer() ? static_cast<double>(*n->value<std::int64_t>()) : *n->value<double>();
        if (!std::isfinite(v) || v < lo || v > hi) {
            throw err("key '" + name(key) + "' = " + num(v) + " is out of range; allowed " + num(lo) + ".." + num(hi));
        }
        return v;
    }
    bool boolean(const std::string& key, bool def) const
    {
        const auto* n = node(key);
        if (n == nullptr) return def;
        if (!n->is_boolean()) throw err("key '" + name(key) + "' must be true or false");
        return *n->value<bool>();
    }
    std::string choice(const std::string& key, const std::string& def, const std::vector<std::string>& allowed) const
    {
        const auto v = str(key, def);
        if (std::find(allowed.begin(), allowed.end(), v) == allowed.end()) {
            throw err("key '" + name(key) + "' = \"" + v + "\" is not allowed; allowed values: " + join(allowed));
        }
        return v;
    }
    std::string profile(const std::string& key, const std::string& def) const
    {
        const auto v = str(key, def);
        if (modem::find_profile(v) == nullptr) {
            throw err("key '" + name(key) + "' = \"" + v + "\" is not a modem profile; allowed values: " +
                      modem::profile_names());
        }
        return v;
    }

private:
    const toml::node* node(const std::string& key) const { return t_ ? t_->get(key) : nullptr; }
    const toml::table* t_;
    std::string path_;
    std::vector<std::string> allowed_;
};

const toml::table* sub(const toml::table& root, const char* key)
{
    const auto* n = root.get(key);
    if (n == nullptr) return nullptr;
    if (!n->is_table()) throw err(std::string("'") + key + "' must be a table ([" + key + "])");
    return n->as_table();
}

// Return link (ground -> space, RF) carries acks and little data: short frames, strong code.
constexpr const char* default_downlink_profile = "ccsds-tm-rs223i4-conv12";
constexpr const char* default_return_profile = "ccsds-tm-rs223i1-conv12";

std::string resolve(const std::string& base_dir, const std::string& path)
{
    if (path.empty() || base_dir.empty() || std::filesystem::path(path).is_absolute()) return path;
    return (std::filesystem::path(base_dir) / path).string();
}

void check_address(const section& s, const std::string& key, const std::string& v)
{
    // Listeners are loopback unless an operator names an address on purpose; it must be numeric
    // (no resolver at start-up, no surprises).
    const bool numeric = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == '.' || c == ':';
    });
    if (!numeric) throw err("key '" + s.name(key) + "' = \"" + v + "\" must be a numeric IP address (e.g. 127.0.0.1)");
}

// Loads the fallback keys and state the way qlinkd will (nothing written): bad files are
// configuration errors naming the key.
void check_fallback(const qlinkd_config& c)
{
    const auto& s = c.security;
    try {
        (void)x25519_public_from_private_pem(s.fallback_private_key);
    } catch (const fallback_key_error& e) {
        throw err(std::string("key 'security.fallback_private_key': ") + e.what());
    }
    try {
        (void)x25519_public_from_pem(s.fallback_peer_public_key);
    } catch (const fallback_key_error& e) {
        throw err(std::string("key 'security.fallback_peer_public_key': ") + e.what());
    }
    try {
        fallback_key_source probe(make_fallback_config(c));
    } catch (const fallback_key_error& e) {
        const bool state = std::string_view(e.what()).rfind("fallback state", 0) == 0;
        throw err(std::string("key 'security.") + (state ? "fallback_state" : "fallback_peer_public_key") + "': " + e.what());
    }
}

}  // namespace

fallback_key_source::config make_fallback_config(const qlinkd_config& c)
{
    fallback_key_source::config f;
    f.private_key_pem = c.security.fallback_private_key;
    f.peer_public_key_pem = c.security.fallback_peer_public_key;
    f.state_file = c.security.fallback_state;
    f.role = c.link.role;
    f.spacecraft_id = c.link.spacecraft_id;
    f.vcid = c.link.tx_vcid;  // both ends use the same VC number
    return f;
}

std::string_view role_name(link_role r) { return r == link_role::ground ? "ground" : "space"; }

std::string_view to_string(security_mode m)
{
    switch (m) {
    case security_mode::auth_enc: return "auth_enc";
    case security_mode::auth_only: return "auth_only";
    case security_mode::enc_only: return "enc_only";
    }
    return "?";
}

std::string_view to_string(exhaustion_policy p) { return p == exhaustion_policy::stop ? "stop" : "fallback"; }

std::optional<ipv4_prefix> parse_ipv4_prefix(std::string_view text)
{
    ipv4_prefix p;
    // Four decimal octets separated by '.', then '/' and the length; each number 1..3 digits,
    // no leading zero (0127 is octal to inet_aton: refuse the ambiguity).
    auto number = [&text](unsigned max) -> std::optional<unsigned> {
        std::size_t i = 0;
        unsigned v = 0;
        while (i < text.size() && i < 3 && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + static_cast<unsigned>(text[i] - '0');
            ++i;
        }
        if (i == 0 || (i > 1 && text[0] == '0') || v > max) return std::nullopt;
        text.remove_prefix(i);
        return v;
    };
    for (int k = 0; k < 4; ++k) {
        const auto v = number(255);
        if (!v) return std::nullopt;
        p.address[static_cast<std::size_t>(k)] = static_cast<std::uint8_t>(*v);
        const char sep = k < 3 ? '.' : '/';
        if (text.empty() || text.front() != sep) return std::nullopt;
        text.remove_prefix(1);
    }
    const auto len = number(32);
    if (!len || *len == 0 || !text.empty()) return std::nullopt;
    p.length = static_cast<std::uint8_t>(*len);
    if (p.address == std::array<std::uint8_t, 4>{}) return std::nullopt;  // 0.0.0.0 is not an interface address
    return p;
}

std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text)
{
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 >= text.size()) return std::nullopt;
    std::uint32_t port = 0;
    for (char c : text.substr(colon + 1)) {
        if (c < '0' || c > '9') return std::nullopt;
        port = port * 10 + static_cast<std::uint32_t>(c - '0');
        if (port > 65535) return std::nullopt;
    }
    if (port == 0) return std::nullopt;
    return std::make_pair(std::string(text.substr(0, colon)), static_cast<std::uint16_t>(port));
}

sim::tle load_tle(const qlinkd_config& cfg) {
    std::ifstream in(cfg.satellite.tle_file);
    if (!in) throw qlinkd_config_error("key 'satellite.tle': cannot read file " + cfg.satellite.tle_file);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto r = sim::parse_tle_text(ss.str());
    if (!r.ok()) throw qlinkd_config_error("key 'satellite.tle': " + cfg.satellite.tle_file + ": " + r.error);
    if (cfg.satellite.tle_name.empty()) return r.sets.front();
    for (const auto& t : r.sets) {
        if (t.name == cfg.satellite.tle_name) return t;
    }
    throw qlinkd_config_error("key 'satellite.name' = \"" + cfg.satellite.tle_name + "\" is not in " + cfg.satellite.tle_file);
}

sim::ground_station::config station_config(const qlinkd_config& cfg) {
    sim::ground_station::config g;
    g.name = "qlinkd";
    g.latitude_deg = cfg.station.lat_deg;
    g.longitude_deg = cfg.station.lon_deg;
    g.altitude_m = cfg.station.alt_m;
    if (const auto e = sim::ground_station::validate(g); !e.empty()) throw qlinkd_config_error("[station]: " + e);
    return g;
}

qlinkd_config parse_qlinkd_config(std::string_view text, std::string_view source_name, const std::string& base_dir)
{
    toml::table root;
    try {
        root = toml::parse(text, source_name);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << source_name << ":" << e.source().begin.line << ":" << e.source().begin.column << ": " << e.description();
        throw err(os.str());
    }
    const section top(&root, "",
                      {"link", "station", "satellite", "air", "terminal", "rf", "keys", "security", "arq", "user", "telemetry", "log"});
    qlinkd_config c;

    const section ln(sub(root, "link"), "link",
                     {"role", "tx_profile", "rx_profile", "spacecraft_id", "tx_vcid", "drain_timeout_s",
                      "exit_after_pass", "state_dir"});
    if (!ln.present() || !ln.has("role")) throw err("key 'link.role' is required; allowed values: ground, space");
    c.link.role = ln.choice("role", "ground", {"ground", "space"}) == "ground" ? link_role::ground : link_role::space;
    const bool ground = c.link.role == link_role::ground;
    c.link.tx_profile = ln.profile("tx_profile", ground ? default_return_profile : default_downlink_profile);
    c.link.rx_profile = ln.profile("rx_profile", ground ? default_downlink_profile : default_return_profile);
    c.link.spacecraft_id = static_cast<std::uint16_t>(ln.integer("spacecraft_id", 0xAB, 0, 255));
    c.link.tx_vcid = static_cast<std::uint8_t>(ln.integer("tx_vcid", 1, 0, 62));
    c.link.drain_timeout_s = ln.real("drain_timeout_s", 10.0, 0.0, 3600.0);
    c.link.exit_after_pass = ln.boolean("exit_after_pass", false);
    c.link.state_dir = resolve(base_dir, ln.str("state_dir", ""));

    const section st(sub(root, "station"), "station", {"lat_deg", "lon_deg", "alt_m"});
    if (st.present()) {
        c.station.present = true;
        for (const char* k : {"lat_deg", "lon_deg"}) {
            if (!st.has(k)) throw err(std::string("key 'station.") + k + "' is required when [station] is given");
        }
        c.station.lat_deg = st.real("lat_deg", 0.0, -90.0, 90.0);
        c.station.lon_deg = st.real("lon_deg", 0.0, -180.0, 180.0);
        c.station.alt_m = st.real("alt_m", 0.0, -500.0, 10000.0);
    }

    const section sat(sub(root, "satellite"), "satellite", {"tle", "name"});
    c.satellite.tle_file = resolve(base_dir, sat.str("tle", ""));
    c.satellite.tle_name = sat.str("name", "");
    if (!c.satellite.tle_file.empty()) load_tle(c);  // checked here: readable, checksums, the named set present

    const section air(sub(root, "air"), "air",
                      {"host", "port", "connect_timeout_s", "block_bits", "send_buffer_bytes", "tx_lead_s", "sim_epoch"});
    c.air.host = air.str("host", "127.0.0.1");
    check_address(air, "host", c.air.host);
    c.air.port = static_cast<std::uint16_t>(air.integer("port", 0, 1, 65535));
    if (c.air.port == 0) throw err("key 'air.port' is required (the relay's air port, 1..65535)");
    c.air.connect_timeout_s = air.real("connect_timeout_s", 10.0, 0.1, 3600.0);
    c.air.block_bits = static_cast<std::uint32_t>(air.integer("block_bits", 0, 0, 1 << 24));
    if (c.air.block_bits % 8 != 0) throw err("key 'air.block_bits' must be a multiple of 8 (0 = automatic)");
    c.air.send_buffer_bytes = static_cast<std::uint32_t>(air.integer("send_buffer_bytes", 4096, 1024, 16 << 20));
    c.air.tx_lead_s = air.real("tx_lead_s", 0.05, 0.005, 60.0);
    if (air.has("sim_epoch")) {
        const auto epoch_text = air.str("sim_epoch", "");
        std::string why;
        c.air.sim_epoch = sim::parse_iso8601_utc(epoch_text, &why);
        if (!c.air.sim_epoch) {
            throw err("key 'air.sim_epoch' = \"" + epoch_text + "\" is not a UTC time (" + why +
                      "); use the relay's pass start, e.g. 2026-03-01T12:00:00Z");
        }
    }

    const section term(sub(root, "terminal"), "terminal",
                       {"pat", "fine_rate_hz", "coarse_rate_hz", "mount_rate_hz", "elevation_mask_deg",
                        "uncertainty_cone_urad", "pointing_bias_urad", "acquisition_timeout_s", "signal_loss_timeout_s",
                        "mount_slew_deg_s", "max_lag_s", "seed", "mount", "mount_address", "mount_timeout_ms",
                        "mount_az_min_deg", "mount_az_max_deg", "mount_el_min_deg", "mount_el_max_deg", "mount_flip",
                        "mount_settle_deg"});
    c.terminal.pat_simulated = term.choice("pat", "off", {"off", "simulated"}) == "simulated";
    auto& tm = c.terminal;
    tm.mount = term.choice("mount", "simulated", {"simulated", "rotctld"}) == "rotctld" ? mount_kind::rotctld
                                                                                       : mount_kind::simulated;
    const bool rotctld = tm.mount == mount_kind::rotctld;
    // Lower bounds keep the default loop gains stable (kp / rate <= 1, see pat.hpp).
    tm.fine_rate_hz = term.real("fine_rate_hz", tm.fine_rate_hz, 300.0, 20000.0);
    // >= 70 Hz: the spiral scan (10 mrad/s) must not move more than the camera half field (150 urad) per frame.
    tm.coarse_rate_hz = term.real("coarse_rate_hz", tm.coarse_rate_hz, 70.0, 20000.0);
    // A rotctld rotator takes a few commands a second (serial line, motor controller): 10 Hz by
    // default, at most 50; the simulated gimbal is commanded on every PAT tick.
    tm.mount_rate_hz = rotctld ? term.real("mount_rate_hz", 10.0, 1.0, 50.0)
                               : term.real("mount_rate_hz", tm.mount_rate_hz, 1.0, 20000.0);
    for (const auto& [key, v] : {std::pair{"coarse_rate_hz", tm.coarse_rate_hz}, std::pair{"mount_rate_hz", tm.mount_rate_hz}}) {
        if (v > tm.fine_rate_hz && !(rotctld && std::string_view(key) == "mount_rate_hz")) {
            throw err(std::string("key 'terminal.") + key + "' = " + num(v) + " must be <= terminal.fine_rate_hz (" +
                      num(tm.fine_rate_hz) + ")");
        }
    }
    tm.elevation_mask_deg = term.real("elevation_mask_deg", tm.elevation_mask_deg, 0.0, 89.0);
    tm.uncertainty_cone_urad = term.real("uncertainty_cone_urad", tm.uncertainty_cone_urad, 200.0, 50000.0);
    tm.pointing_bias_urad = term.real("pointing_bias_urad", tm.pointing_bias_urad, 0.0, 50000.0);
    tm.acquisition_timeout_s = term.real("acquisition_timeout_s", tm.acquisition_timeout_s, 0.1, 3600.0);
    tm.signal_loss_timeout_s = term.real("signal_loss_timeout_s", tm.signal_loss_timeout_s, 0.01, 60.0);
    tm.mount_slew_deg_s = term.real("mount_slew_deg_s", tm.mount_slew_deg_s, 0.1, 100.0);
    tm.max_lag_s = term.real("max_lag_s", tm.max_lag_s, 0.1, 600.0);
    tm.seed = static_cast<std::uint64_t>(term.integer("seed", 1, 0, INT64_MAX));
    for (const char* k : {"mount_address", "mount_timeout_ms", "mount_settle_deg"}) {
        if (!rotctld && term.has(k)) throw err(std::string("key 'terminal.") + k + "' is only used with terminal.mount = \"rotctld\"");
    }
    if (rotctld) {
        const auto address = term.str("mount_address", "127.0.0.1:4533");
        const auto hp = split_host_port(address);
        if (!hp) throw err("key 'terminal.mount_address' = \"" + address + "\" must be host:port of rotctld (e.g. 127.0.0.1:4533)");
        tm.mount_host = hp->first;
        tm.mount_port = hp->second;
        tm.mount_timeout_ms = term.real("mount_timeout_ms", tm.mount_timeout_ms, 50.0, 10000.0);
        tm.mount_settle_deg = term.real("mount_settle_deg", tm.mount_settle_deg, 0.01, 20.0);
        if (!tm.pat_simulated) {
            throw err("key 'terminal.mount' = \"rotctld\" needs terminal.pat = \"simulated\" (the PAT's program track "
                      "commands the mount); allowed values with pat = \"off\": simulated");
        }
    }
    auto& lim = tm.mount_limits;
    lim.az_min_deg = term.real("mount_az_min_deg", lim.az_min_deg, -360.0, 360.0);
    lim.az_max_deg = term.real("mount_az_max_deg", lim.az_max_deg, 0.0, 720.0);
    lim.el_min_deg = term.real("mount_el_min_deg", lim.el_min_deg, -10.0, 90.0);
    lim.el_max_deg = term.real("mount_el_max_deg", lim.el_max_deg, 90.0, 180.0);
    if (lim.az_max_deg - lim.az_min_deg < 360.0) {
        throw err("key 'terminal.mount_az_max_deg' = " + num(lim.az_max_deg) + " must be >= terminal.mount_az_min_deg + 360 (" +
                  num(lim.az_min_deg + 360.0) + "): every azimuth of a pass must be reachable");
    }
    tm.mount_flip = term.boolean("mount_flip", false);
    if (tm.mount_flip && lim.el_max_deg < 180.0 - tm.elevation_mask_deg) {
        throw err("key 'terminal.mount_el_max_deg' = " + num(lim.el_max_deg) + " is too small for terminal.mount_flip = true: "
                  "a flip mount points at elevation e with axis 180 - e, so it needs >= 180 - elevation_mask_deg (" +
                  num(180.0 - tm.elevation_mask_deg) + ")");
    }
    if (tm.pat_simulated) {
        if (c.link.role != link_role::ground) {
            throw err("key 'terminal.pat' = \"simulated\" needs link.role = \"ground\" (the ground terminal points at the "
                      "satellite); allowed values for the space role: off");
        }
        if (!c.station.present) throw err("key 'terminal.pat' = \"simulated\" needs [station] (lat_deg, lon_deg, alt_m)");
        if (c.satellite.tle_file.empty()) throw err("key 'terminal.pat' = \"simulated\" needs satellite.tle (a TLE file)");
        if (!c.air.sim_epoch) {
            throw err("key 'terminal.pat' = \"simulated\" needs air.sim_epoch (the UTC instant the relay's sim_time "
                      "counts from: its 'pass start')");
        }
    }
    if (std::string e = validate(make_pat_config(c)); !e.empty()) {
        if (e.rfind("pat.", 0) == 0) e.replace(0, 4, "terminal.");
        throw err("[terminal]: " + e);
    }

    const section rf(sub(root, "rf"), "rf",
                     {"radio", "samples_per_symbol", "uplink_hz", "precompensate_doppler", "oscillator_error_hz",
                      "phase_noise_linewidth_hz", "seed"});
    c.rf.radio_sim = rf.choice("radio", "relay", {"relay", "sim"}) == "sim";
    c.rf.samples_per_symbol = static_cast<unsigned>(rf.integer("samples_per_symbol", 4, 2, 16));
    c.rf.uplink_hz = rf.real("uplink_hz", c.rf.uplink_hz, 1e6, 1e12);
    c.rf.precompensate_doppler = rf.boolean("precompensate_doppler", true);
    c.rf.oscillator_error_hz = rf.real("oscillator_error_hz", c.rf.oscillator_error_hz, -1e4, 1e4);
    c.rf.phase_noise_linewidth_hz = rf.real("phase_noise_linewidth_hz", c.rf.phase_noise_linewidth_hz, 0.0, 1e3);
    c.rf.seed = static_cast<std::uint64_t>(rf.integer("seed", 1, 0, std::numeric_limits<std::int64_t>::max()));
    if (!c.rf.radio_sim) {
        for (const char* k : {"samples_per_symbol", "uplink_hz", "precompensate_doppler", "oscillator_error_hz",
                              "phase_noise_linewidth_hz", "seed"})
            if (rf.has(k)) throw err(std::string("key 'rf.") + k + "' is only used with rf.radio = \"sim\"");
    } else {
        if (c.link.role != link_role::ground)
            throw err("key 'rf.radio' = \"sim\" needs link.role = \"ground\" (the station transmits the RF return link)");
        if (!c.station.present) throw err("key 'rf.radio' = \"sim\" needs [station] (lat_deg, lon_deg, alt_m): the uplink Doppler");
        if (c.satellite.tle_file.empty()) throw err("key 'rf.radio' = \"sim\" needs satellite.tle (a TLE file): the uplink Doppler");
        if (!c.air.sim_epoch)
            throw err("key 'rf.radio' = \"sim\" needs air.sim_epoch (the UTC instant the relay's sim_time counts from)");
    }

    const section keys(sub(root, "keys"), "keys", {"source", "socket", "qkmd_metrics", "memory_seed", "memory_keys"});
    if (!keys.present() || !keys.has("source")) {
        throw err("key 'keys.source' is required; allowed values: qkmd, memory (memory: TEST ONLY)");
    }
    c.keys.source = keys.choice("source", "qkmd", {"qkmd", "memory"}) == "qkmd" ? key_source_kind::qkmd
                                                                                 : key_source_kind::memory;
    if (c.keys.source == key_source_kind::qkmd) {
        c.keys.socket = resolve(base_dir, keys.required("socket", "for keys.source = \"qkmd\" (qkmd's injection socket path)"));
    } else if (keys.has("socket")) {
        throw err("key 'keys.socket' is only used with keys.source = \"qkmd\"");
    }
    c.keys.qkmd_metrics = keys.str("qkmd_metrics", "");
    if (!c.keys.qkmd_metrics.empty() && !split_host_port(c.keys.qkmd_metrics)) {
        throw err("key 'keys.qkmd_metrics' = \"" + c.keys.qkmd_metrics + "\" must be host:port (e.g. 127.0.0.1:9464)");
    }
    c.keys.memory_seed = static_cast<std::uint64_t>(keys.integer("memory_seed", 1, 0, INT64_MAX));
    c.keys.memory_keys = static_cast<std::uint32_t>(keys.integer("memory_keys", 1000, 1, 1000000));

    const section sec(sub(root, "security"), "security",
                      {"mode", "rotate_every_frames", "rotate_every_s", "on_exhaustion", "fallback_private_key",
                       "fallback_peer_public_key", "fallback_state"});
    const auto mode = sec.choice("mode", "auth_enc", {"auth_enc", "auth_only", "enc_only"});
    c.security.mode = mode == "auth_enc" ? security_mode::auth_enc
                      : mode == "auth_only" ? security_mode::auth_only
                                            : security_mode::enc_only;
    c.security.rotate_every_frames =
        static_cast<std::uint64_t>(sec.integer("rotate_every_frames", 1 << 20, 32, std::int64_t{1} << 32));
    c.security.rotate_every_s = sec.real("rotate_every_s", 0.0, 0.0, 86400.0);
    c.security.on_exhaustion =
        sec.choice("on_exhaustion", "stop", {"stop", "fallback"}) == "stop" ? exhaustion_policy::stop : exhaustion_policy::fallback;
    if (c.security.on_exhaustion == exhaustion_policy::fallback) {
        const std::string why = "for security.on_exhaustion = \"fallback\"";
        auto& s = c.security;
        s.fallback_private_key = resolve(base_dir, sec.required("fallback_private_key", why + " (this end's X25519 private key, PEM; without fallback keys use on_exhaustion = \"stop\")"));
        s.fallback_peer_public_key = resolve(base_dir, sec.required("fallback_peer_public_key", why + " (the far end's X25519 public key, PEM)"));
        s.fallback_state = resolve(base_dir, sec.required("fallback_state", why + " (file for the transmit key counter)"));
        check_fallback(c);
    } else {
        for (const char* k : {"fallback_private_key", "fallback_peer_public_key", "fallback_state"}) {
            if (sec.has(k)) throw err("key '" + sec.name(k) + "' is only used with security.on_exhaustion = \"fallback\"");
        }
    }

    const section arq(sub(root, "arq"), "arq", {"window", "rto_min_ms", "rto_max_ms", "ack_interval_ms"});
    c.arq.window = static_cast<std::uint32_t>(arq.integer("window", 4096, 2, 1 << 20));
    if ((c.arq.window & (c.arq.window - 1)) != 0) {
        throw err("key 'arq.window' = " + std::to_string(c.arq.window) + " must be a power of two in 2..1048576");
    }
    c.arq.rto_min_ms = arq.real("rto_min_ms", 200.0, 0.1, 60000.0);
    c.arq.rto_max_ms = arq.real("rto_max_ms", 60000.0, 0.1, 600000.0);
    if (c.arq.rto_max_ms < c.arq.rto_min_ms) {
        throw err("key 'arq.rto_max_ms' = " + num(c.arq.rto_max_ms) + " must be >= arq.rto_min_ms (" + num(c.arq.rto_min_ms) + ")");
    }
    c.arq.ack_interval_ms = arq.real("ack_interval_ms", 20.0, 0.1, 10000.0);

    const section usr(sub(root, "user"), "user",
                      {"address", "tcp_port", "udp_port", "udp", "udp_deliver", "tun", "tun_address", "tun_mtu", "tun_queue_bytes"});
    c.user.address = usr.str("address", "127.0.0.1");
    check_address(usr, "address", c.user.address);
    c.user.tcp_port = static_cast<std::uint16_t>(usr.integer("tcp_port", 0, 0, 65535));
    c.user.udp_port = static_cast<std::uint16_t>(usr.integer("udp_port", 0, 0, 65535));
    c.user.udp_enabled = usr.boolean("udp", true);
    c.user.udp_deliver = usr.str("udp_deliver", "");
    if (!c.user.udp_deliver.empty() && !split_host_port(c.user.udp_deliver)) {
        throw err("key 'user.udp_deliver' = \"" + c.user.udp_deliver + "\" must be host:port (e.g. 127.0.0.1:5000)");
    }
    c.user.tun = usr.str("tun", "");
    if (!c.user.tun.empty()) {
        const auto& n = c.user.tun;
        // The kernel's rule (dev_valid_name) narrowed to what a configuration needs: no '%' template,
        // nothing a shell or a log line would trip over.
        const bool chars_ok = std::all_of(n.begin(), n.end(), [](char ch) {
            return std::isalnum(static_cast<unsigned char>(ch)) != 0 || ch == '-' || ch == '_' || ch == '.';
        });
        if (n.size() > tun_name_max || !chars_ok || n == "." || n == "..") {
            throw err("key 'user.tun' = \"" + n + "\" is not an interface name; allowed: 1.." + std::to_string(tun_name_max) +
                      " characters of A-Z a-z 0-9 - _ . (e.g. \"qlink0\"), or \"\" for no TUN interface");
        }
        if (usr.has("tun_address")) {
            const auto a = usr.str("tun_address", "");
            c.user.tun_address = parse_ipv4_prefix(a);
            if (!c.user.tun_address) {
                throw err("key 'user.tun_address' = \"" + a + "\" must be an IPv4 address with a prefix length 1..32 "
                          "(e.g. 10.77.0.1/30); leave it out to configure the interface with ip(8)");
            }
        }
        c.user.tun_mtu = static_cast<std::uint32_t>(usr.integer("tun_mtu", 1400, 576, 9000));
        c.user.tun_queue_bytes = static_cast<std::uint32_t>(usr.integer("tun_queue_bytes", 64 << 10, 4096, 16 << 20));
        if (c.user.tun_queue_bytes < c.user.tun_mtu) {
            throw err("key 'user.tun_queue_bytes' = " + std::to_string(c.user.tun_queue_bytes) +
                      " must be >= user.tun_mtu (" + std::to_string(c.user.tun_mtu) + "): a full-size packet must fit");
        }
    } else {
        for (const char* k : {"tun_address", "tun_mtu", "tun_queue_bytes"}) {
            if (usr.has(k)) throw err(std::string("key 'user.") + k + "' is only used with user.tun (an interface name)");
        }
    }

    const section tel(sub(root, "telemetry"), "telemetry", {"address", "port"});
    c.telemetry.address = tel.str("address", "127.0.0.1");
    check_address(tel, "address", c.telemetry.address);
    c.telemetry.port = static_cast<std::uint16_t>(tel.integer("port", 0, 0, 65535));

    const section lg(sub(root, "log"), "log", {"format", "level"});
    c.log.json = lg.choice("format", "logfmt", {"logfmt", "json"}) == "json";
    c.log.debug = lg.choice("level", "info", {"info", "debug"}) == "debug";
    return c;
}

pat_config make_pat_config(const qlinkd_config& c)
{
    pat_config p;
    p.fine_rate_hz = c.terminal.fine_rate_hz;
    p.coarse_rate_hz = c.terminal.coarse_rate_hz;
    // With a rotctld mount, terminal.mount_rate_hz is the real mount's (wall) rate; the simulated
    // gimbal twin the optics sees keeps the rate it needs for COMMUNICATION.
    p.mount_rate_hz = c.terminal.mount == mount_kind::rotctld ? std::min(1000.0, c.terminal.fine_rate_hz)
                                                              : c.terminal.mount_rate_hz;
    p.flip_mount = c.terminal.mount_flip;
    p.elevation_mask_deg = c.terminal.elevation_mask_deg;
    p.uncertainty_cone_rad = c.terminal.uncertainty_cone_urad * 1e-6;
    p.acquisition_timeout_s = c.terminal.acquisition_timeout_s;
    p.signal_loss_timeout_s = c.terminal.signal_loss_timeout_s;
    return p;
}

link_engine_config make_engine_config(const qlinkd_config& c)
{
    link_engine_config e;
    e.role = c.link.role;
    e.tx_profile = c.link.tx_profile;
    e.rx_profile = c.link.rx_profile;
    e.spacecraft_id = c.link.spacecraft_id;
    e.tx_vcid = c.link.tx_vcid;
    e.rx_vcid = c.link.tx_vcid;  // both ends of one link use the same VC number
    e.security = true;
    e.sdls_mode = c.security.mode == security_mode::auth_enc    ? modem::sdls_mode::auth_enc
                  : c.security.mode == security_mode::auth_only ? modem::sdls_mode::auth_only
                                                                : modem::sdls_mode::enc_only;
    e.rotate_every_frames = c.security.rotate_every_frames;
    e.rotate_every_s = c.security.rotate_every_s;
    e.key_exhaustion_policy = c.security.on_exhaustion == exhaustion_policy::stop ? modem::key_exhaustion_policy::stop
                                                                                 : modem::key_exhaustion_policy::fallback;
    e.arq_window = c.arq.window;
    e.rto_min_s = c.arq.rto_min_ms / 1000.0;
    e.rto_max_s = c.arq.rto_max_ms / 1000.0;
    e.ack_interval_s = c.arq.ack_interval_ms / 1000.0;
    e.ip_queue_bytes = c.user.tun_queue_bytes;
    return e;
}

qlinkd_config load_qlinkd_config(const std::string& path)
{
    std::ifstream in(path);
    if (!in) throw err("cannot read configuration file " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    const auto dir = std::filesystem::path(path).parent_path().string();
    return parse_qlinkd_config(ss.str(), path, dir);
}

}  // namespace qlink::terminal
