// The simulator's control port: scripted weather and the sim clock for tests and demonstrations.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "qlink/sim/pass_world.hpp"
#include "qlink/sim/service_counters.hpp"

namespace qlink::sim {

/// Answers one control line (without its newline); `close` is set for "quit". Commands:
///   time                    -> "OK time <sim_s>"
///   cloud <duration_s>      -> a cloud from now on:        "OK cloud <t0> <t1>"
///   cloud <at_s> <duration_s> -> a cloud at sim time at_s: "OK cloud <t0> <t1>"
///   help | quit
/// Anything else: "ERR <why>". Pure function of the line, the world and the clock (tested directly).
std::string sim_control_reply(std::string_view line, pass_world& world, const pass_clock& clock, bool& close);

class control_server {
public:
    struct config {
        std::string bind_address = "127.0.0.1";  // loopback unless asked otherwise
        std::uint16_t port = 0;                  // 0: any free port (see port())
        std::size_t max_clients = 8;
        std::size_t max_line = 256;
    };
    virtual ~control_server() = default;
    virtual std::uint16_t port() const = 0;
    virtual void stop() = 0;
    virtual const line_service_counters& stats() const = 0;
};

/// Binds and serves on a background thread; the world and clock must outlive the server. Throws
/// std::runtime_error when the address cannot be bound.
std::unique_ptr<control_server> start_control_server(const control_server::config& cfg, pass_world& world,
                                                     const pass_clock& clock);

}  // namespace qlink::sim
