// qkmd configuration: the TOML file's schema, parsed and validated into typed settings.
#pragma once

#include "qlink/keymgmt/etsi014.hpp"
#include "qlink/keymgmt/etsi014_client.hpp"
#include "qlink/keymgmt/https_server.hpp"
#include "qlink/keymgmt/inject.hpp"
#include "qlink/keymgmt/key_source.hpp"
#include "qlink/keymgmt/key_store.hpp"
#include "qlink/keymgmt/qkd_source.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::keymgmt {

/// A configuration error; the message names the key and the allowed values.
class config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class source_kind { sim, etsi014, qkd };
enum class log_format { plain, json };

struct qkmd_config {
    std::string kme_id;
    key_store::config store;
    source_kind source = source_kind::sim;
    sim_key_source_config sim;
    upstream_key_source_config upstream;
    qkd_key_source::config qkd;
    std::uint64_t target_stock = 1000;  ///< stop pulling from the source above this many ACTIVE keys
    std::uint32_t poll_interval_ms = 100;

    bool etsi014_enabled = true;
    https_server::config etsi014_server;
    etsi014_service::config etsi014;
    std::vector<etsi014_peer_notifier::peer> peers;

    bool inject_enabled = false;
    inject_server::config inject;

    bool metrics_enabled = true;
    https_server::config metrics_server;

    log_format log = log_format::plain;
};

/// Parses TOML text; throws config_error.
qkmd_config parse_qkmd_config(std::string_view toml_text, std::string_view source_name = "config");
qkmd_config load_qkmd_config(const std::string& path);

}  // namespace qlink::keymgmt
