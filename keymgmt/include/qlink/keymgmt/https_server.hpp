// Mutual-TLS HTTP/1.1 server (Boost.Beast): caller identity from the client certificate, hard limits.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace qlink::keymgmt {

struct http_reply {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    /// Body holds key material: the server cleanses it after sending.
    bool secret = false;
};

/// Request as the handler sees it. `caller` is the CN of the verified client certificate
/// (empty on a plain-HTTP server).
struct http_request_view {
    std::string_view method;
    std::string_view target;
    std::string_view body;
    std::string_view caller;
};

using http_handler = std::function<http_reply(const http_request_view&)>;
/// Says whether the handler may block on this request (e.g. wait for a durable commit).
using http_may_block = std::function<bool(const http_request_view&)>;

struct https_server_stats {
    std::uint64_t connections = 0;
    std::uint64_t refused_connections = 0;  ///< over max_connections
    std::uint64_t handshake_failures = 0;   ///< includes clients without a valid certificate
    std::uint64_t requests = 0;
    std::uint64_t bad_requests = 0;  ///< unparsable, oversized or too slow
};

class https_server {
public:
    struct config {
        std::string address = "127.0.0.1";
        std::uint16_t port = 0;  ///< 0: pick a free port (see port())
        /// TLS files; all three empty = plain HTTP (only for the loopback metrics port).
        std::string cert_file;
        std::string key_file;
        std::string ca_file;  ///< client certificates must chain to this CA
        std::size_t max_connections = 64;
        std::size_t max_body_bytes = 16 * 1024;
        std::size_t max_header_bytes = 8 * 1024;
        /// A whole request (headers and body) must arrive within this; defeats slowloris.
        std::chrono::milliseconds request_timeout{10000};
        /// Idle keep-alive connections are closed after this.
        std::chrono::milliseconds idle_timeout{30000};
        int threads = 2;
        /// Threads that run the handlers `may_block` selects (see start_https_server): the
        /// connection's coroutine is suspended meanwhile, so no network thread waits on the
        /// handler. 0 = every handler runs on the network threads.
        int blocking_threads = 0;
    };

    virtual ~https_server() = default;
    virtual std::uint16_t port() const = 0;
    virtual https_server_stats stats() const = 0;
    /// Stops accepting, closes connections and joins the worker threads.
    virtual void stop() = 0;
};

/// Binds, listens and starts the worker threads. Throws std::runtime_error on bad TLS files
/// or a port that cannot be bound. With cfg.blocking_threads > 0, requests for which
/// `may_block` returns true are handled on those threads (empty `may_block`: none are).
std::unique_ptr<https_server> start_https_server(const https_server::config& cfg, http_handler handler,
                                                 http_may_block may_block = {});

}  // namespace qlink::keymgmt
