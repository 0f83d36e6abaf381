// The qlinkd link daemon: air transport, user ports, keys, telemetry and a clean drain on SIGTERM.
#pragma once

#include "qlink/terminal/qlinkd_config.hpp"

#include <atomic>
#include <string>

namespace qlink::terminal {

/// qlinkd's exit statuses.
inline constexpr int qlinkd_exit_ok = 0;           ///< stopped, everything users gave was delivered
inline constexpr int qlinkd_exit_failure = 1;      ///< could not run (relay unreachable, port in use, ...)
inline constexpr int qlinkd_exit_config = 2;       ///< bad configuration or command line
inline constexpr int qlinkd_exit_undelivered = 3;  ///< stopped with user data the far end did not confirm

struct qlinkd_run_options {
    /// Written once every listener is up: {"telemetry_port":..,"user_tcp_port":..,"user_udp_port":..}.
    std::string ready_file;
    /// Stop (drain first) on SIGTERM/SIGINT. The signals are blocked in every thread qlinkd starts.
    bool handle_signals = true;
    /// Also stops (drains) when it becomes true (tests, embedding).
    const std::atomic<bool>* stop = nullptr;
};

/// Runs the link until stopped (or until the end of the pass with link.exit_after_pass); returns
/// one of the exit statuses above. Prints the listening ports to stdout, one parseable line each
/// (`telemetry-port N`, `user-tcp-port N`, `user-udp-port N`), then `ready`.
int run_qlinkd(const qlinkd_config& cfg, const qlinkd_run_options& options);

/// `qlinkd --config FILE [--check-config] [--ready-file FILE]`, `qlinkd --help`.
int qlinkd_main(int argc, char** argv);

}  // namespace qlink::terminal
