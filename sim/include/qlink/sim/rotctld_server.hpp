// A Hamlib rotctld-compatible TCP service for the simulated mount (Boost.Asio, many clients).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "qlink/sim/service_counters.hpp"
#include "qlink/sim/sim_mount.hpp"

namespace qlink::sim {

/// Answers one rotctld protocol line (without its newline). Pure function of the line and
/// the mount, so it is tested directly as well as over TCP. `close` is set for quit.
std::string rotctld_reply(std::string_view line, sim_mount& mount, std::string_view info, bool& close);

class rotctld_server {
public:
    struct config {
        std::string bind_address = "127.0.0.1";  // loopback unless asked otherwise
        std::uint16_t port = 4533;               // 0: any free port (see port())
        std::string info = "qlink simulated mount";
        std::size_t max_clients = 32;
        std::size_t max_line = 256;              // longer lines: RPRT -1 and the connection is closed
    };

    using counters = line_service_counters;  // errors: RPRT -n replies and over-long lines

    virtual ~rotctld_server() = default;
    /// The bound port (useful with port 0).
    virtual std::uint16_t port() const = 0;
    /// Stops accepting, closes all connections and joins the service thread.
    virtual void stop() = 0;
    virtual const counters& stats() const = 0;
};

/// Binds and starts serving on a background thread. Throws std::runtime_error when the
/// address cannot be bound (configuration edge). The mount must outlive the server.
std::unique_ptr<rotctld_server> start_rotctld_server(const rotctld_server::config& cfg, sim_mount& mount);

}  // namespace qlink::sim
