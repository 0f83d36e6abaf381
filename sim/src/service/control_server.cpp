// The simulator's control port: a line protocol for scripted clouds and the sim clock.
#include "qlink/sim/control_server.hpp"
#include "service/line_server.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <vector>

namespace qlink::sim {

namespace {

bool number(std::string_view s, double& v) {
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v);
}

std::string ok(const char* what, double a, double b = NAN) {
    char buf[96];
    if (std::isnan(b))
        std::snprintf(buf, sizeof buf, "OK %s %.3f\n", what, a);
    else
        std::snprintf(buf, sizeof buf, "OK %s %.3f %.3f\n", what, a, b);
    return buf;
}

constexpr const char* help_text =
    "OK commands: time | cloud <duration_s> | cloud <at_s> <duration_s> | help | quit\n";

}  // namespace

std::string sim_control_reply(std::string_view line, pass_world& world, const pass_clock& clock, bool& close) {
    close = false;
    for (char c : line) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u > 0x7e) return "ERR not a text line\n";
    }
    const auto w = detail::split_words(line);
    if (w.empty()) return {};
    if (w[0] == "quit") {
        close = true;
        return {};
    }
    if (w[0] == "help") return help_text;
    if (w[0] == "time" && w.size() == 1) return ok("time", clock.sim_time());
    if (w[0] == "cloud" && (w.size() == 2 || w.size() == 3)) {
        double at = clock.sim_time(), dur = 0;
        if (w.size() == 3 && !number(w[1], at)) return "ERR cloud: at_s must be a number of sim seconds\n";
        if (!number(w.back(), dur) || !(dur > 0 && dur <= 3600))
            return "ERR cloud: duration_s must be in (0, 3600] sim seconds\n";
        if (!world.add_cloud(at, dur)) return "ERR cloud: too many scripted clouds\n";
        return ok("cloud", at, at + dur);
    }
    return "ERR unknown command (try help)\n";
}

namespace {

class server_impl final : public control_server {
public:
    server_impl(const config& cfg, pass_world& world, const pass_clock& clock)
        : world_(world),
          clock_(clock),
          server_({"control", cfg.bind_address, cfg.port, cfg.max_clients, cfg.max_line, "ERR line too long\n"},
                  [this](std::string_view line) {
                      detail::line_reply r;
                      r.text = sim_control_reply(line, world_, clock_, r.close);
                      r.error = r.text.rfind("ERR", 0) == 0;
                      return r;
                  },
                  stats_) {}

    std::uint16_t port() const override { return server_.port(); }
    void stop() override { server_.stop(); }
    const line_service_counters& stats() const override { return stats_; }

private:
    pass_world& world_;
    const pass_clock& clock_;
    line_service_counters stats_;  // before server_: the service thread counts into it
    detail::line_server server_;
};

}  // namespace

std::unique_ptr<control_server> start_control_server(const control_server::config& cfg, pass_world& world,
                                                     const pass_clock& clock) {
    return std::make_unique<server_impl>(cfg, world, clock);
}

}  // namespace qlink::sim
