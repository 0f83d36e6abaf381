// The qkmd daemon: wires key source, key store, ETSI 014 server, injection socket and metrics together.
#pragma once

#include "qlink/keymgmt/qkmd_config.hpp"

#include <atomic>
#include <string>

namespace qlink::keymgmt {

/// Runs until `stop` becomes true or SIGTERM/SIGINT arrives (when handle_signals). Returns the
/// process exit code. `ready_file`, when not empty, receives {"etsi014_port":..,"metrics_port":..}
/// once every listener is up (for tests and supervisors that use port 0).
int run_qkmd(const qkmd_config& cfg, const std::string& ready_file, bool handle_signals);

/// `qkmd --config FILE [--check] [--ready-file FILE]`; exit 2 on configuration errors.
int qkmd_main(int argc, char** argv);

}  // namespace qlink::keymgmt
