// The demo's throw-away PKI: a CA and P-256 leaf certificates for the KMEs and SAEs, made in-process.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace qlink::terminal::demo_detail {

/// Writes ca.crt and, per name, <name>.crt / <name>.key (0600) into `dir`: CN = name, SAN
/// DNS:localhost + IP:127.0.0.1, serverAuth + clientAuth, valid `days` days. The CA's private key
/// is wiped and never written. Throws std::runtime_error naming the failing step.
void make_demo_pki(const std::filesystem::path& dir, const std::vector<std::string>& names, int days = 2);

}  // namespace qlink::terminal::demo_detail
