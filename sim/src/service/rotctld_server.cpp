// rotctld protocol (Hamlib NET rotctl, protocol version 1) over Boost.Asio for the simulated mount.
#include "qlink/sim/rotctld_server.hpp"
#include "service/line_server.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

namespace qlink::sim {

namespace {

// Hamlib error numbers as rotctld prints them (RPRT -n).
constexpr int rig_einval = 1;
constexpr int rig_enimpl = 4;

std::string rprt(int code) { return "RPRT " + std::to_string(code == 0 ? 0 : -code) + "\n"; }

bool to_double(std::string_view s, double& v) {
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v);
}

std::string fmt(double v) {
    char b[48];
    std::snprintf(b, sizeof b, "%.6f", v);
    return b;
}

}  // namespace

std::string rotctld_reply(std::string_view line, sim_mount& mount, std::string_view info, bool& close) {
    close = false;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.remove_suffix(1);
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u > 0x7e) return rprt(rig_einval);
    }
    bool ext = false;
    char sep = '\n';
    if (!line.empty() && (line.front() == '+' || line.front() == ';' || line.front() == '|' || line.front() == ',')) {
        ext = true;
        sep = line.front() == '+' ? '\n' : line.front();
        line.remove_prefix(1);
    }
    const auto tok = detail::split_words(line);
    if (tok.empty()) return {};
    const std::string_view cmd = tok[0];
    auto is = [&](std::string_view s, std::string_view l) { return cmd == s || cmd == l; };

    if (is("q", "\\quit") || cmd == "Q") {
        close = true;
        return {};
    }
    if (is("P", "\\set_pos")) {
        double az = 0, el = 0;
        if (tok.size() != 3 || !to_double(tok[1], az) || !to_double(tok[2], el) || !mount.set_target(az, el))
            return rprt(rig_einval);
        if (!ext) return rprt(0);
        return "set_pos: " + std::string(tok[1]) + " " + std::string(tok[2]) + sep + rprt(0);
    }
    // Real rotctld commands this simulator does not model.
    static constexpr std::string_view not_modelled[] = {"M", "\\move", "R", "\\reset", "C", "\\set_conf",
                                                        "w", "\\send_cmd", "V", "\\set_level", "v", "\\get_level"};
    for (auto n : not_modelled)
        if (cmd == n) return rprt(rig_enimpl);
    if (tok.size() != 1) return rprt(rig_einval);  // the remaining commands take no arguments
    if (is("p", "\\get_pos")) {
        const auto p = mount.position();
        if (!ext) return fmt(p.azimuth_deg) + "\n" + fmt(p.elevation_deg) + "\n";
        return "get_pos:" + std::string(1, sep) + "Azimuth: " + fmt(p.azimuth_deg) + sep +
               "Elevation: " + fmt(p.elevation_deg) + sep + rprt(0);
    }
    if (is("S", "\\stop")) {
        mount.stop();
        return ext ? "stop:" + std::string(1, sep) + rprt(0) : rprt(0);
    }
    if (is("K", "\\park")) {
        mount.park();
        return ext ? "park:" + std::string(1, sep) + rprt(0) : rprt(0);
    }
    if (is("_", "\\get_info")) {
        if (!ext) return std::string(info) + "\n";
        return "get_info:" + std::string(1, sep) + "Info: " + std::string(info) + sep + rprt(0);
    }
    if (cmd == "\\dump_state") {
        const auto& c = mount.settings();
        return "1\n1\nmin_az=" + fmt(c.min_azimuth_deg) + "\nmax_az=" + fmt(c.max_azimuth_deg) +
               "\nmin_el=" + fmt(c.min_elevation_deg) + "\nmax_el=" + fmt(c.max_elevation_deg) +
               "\nsouth_zero=0\nrot_type=AzEl\ndone\n";
    }
    return rprt(rig_einval);
}

namespace {

class server_impl final : public rotctld_server {
public:
    server_impl(const config& cfg, sim_mount& mount)
        : cfg_(cfg),
          mount_(mount),
          server_({"rotctld", cfg.bind_address, cfg.port, cfg.max_clients, cfg.max_line, rprt(rig_einval)},
                  [this](std::string_view line) {
                      detail::line_reply r;
                      r.text = rotctld_reply(line, mount_, cfg_.info, r.close);
                      r.error = r.text.rfind("RPRT -", 0) == 0;
                      if (r.close) r.text.clear();  // quit: hang up without a reply, as rotctld does
                      return r;
                  },
                  stats_) {}

    std::uint16_t port() const override { return server_.port(); }
    const counters& stats() const override { return stats_; }
    void stop() override { server_.stop(); }

private:
    config cfg_;
    sim_mount& mount_;
    counters stats_;  // before server_: the service thread counts into it
    detail::line_server server_;
};

}  // namespace

std::unique_ptr<rotctld_server> start_rotctld_server(const rotctld_server::config& cfg, sim_mount& mount) {
    return std::make_unique<server_impl>(cfg, mount);
}

}  // namespace qlink::sim
