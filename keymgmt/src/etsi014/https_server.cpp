// Boost.Beast HTTP/1.1 server over mutual TLS (or plain, for loopback metrics) with per-request limits.
#include "qlink/keymgmt/https_server.hpp"

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <atomic>
#include <optional>
#include <stdexcept>
#include <thread>
#include <vector>

namespace qlink::keymgmt {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

std::string peer_common_name(SSL* s)
{
    X509* cert = SSL_get0_peer_certificate(s);
    if (cert == nullptr || SSL_get_verify_result(s) != X509_V_OK) {
        return {};
    }
    const X509_NAME* name = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) {
        return {};
    }
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len <= 0) {
        return {};
    }
    std::string cn(reinterpret_cast<const char*>(utf8), static_cast<std::size_t>(len));
    OPENSSL_free(utf8);
    return cn;
}

// An oversized or malformed request is drained up to this much (and this long) after the error
// reply, so the client reads the reply instead of a connection reset.
constexpr std::uint64_t drain_cap = 8u << 20;
constexpr std::chrono::milliseconds drain_time{3000};

class server_impl final : public https_server {
public:
    server_impl(const config& c, http_handler h, http_may_block may_block)
        : cfg_(c), handler_(std::move(h)), may_block_(std::move(may_block))
    {
        const bool tls = !cfg_.cert_file.empty() || !cfg_.key_file.empty() || !cfg_.ca_file.empty();
        if (tls) {
            if (cfg_.cert_file.empty() || cfg_.key_file.empty() || cfg_.ca_file.empty()) {
                throw std::runtime_error("TLS needs cert_file, key_file and ca_file");
            }
            ssl_.emplace(ssl::context::tls_server);
            SSL_CTX_set_min_proto_version(ssl_->native_handle(), TLS1_2_VERSION);
            ssl_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                              ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
            load(cfg_.cert_file, [&] { ssl_->use_certificate_chain_file(cfg_.cert_file); });
            load(cfg_.key_file, [&] { ssl_->use_private_key_file(cfg_.key_file, ssl::context::pem); });
            load(cfg_.ca_file, [&] { ssl_->load_verify_file(cfg_.ca_file); });
            ssl_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
            static constexpr unsigned char sid[] = "qkmd";
            SSL_CTX_set_session_id_context(ssl_->native_handle(), sid, sizeof sid - 1);
        }
        ioc_.emplace(std::max(1, cfg_.threads));
        acceptor_.emplace(*ioc_);
        try {
            const tcp::endpoint ep(net::ip::make_address(cfg_.address), cfg_.port);
            acceptor_->open(ep.protocol());
            acceptor_->set_option(net::socket_base::reuse_address(true));
            acceptor_->bind(ep);
            acceptor_->listen(net::socket_base::max_listen_connections);
            port_ = acceptor_->local_endpoint().port();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot listen on " + cfg_.address + ":" + std::to_string(cfg_.port) + ": " +
                                     e.code().message());
        }
        if (cfg_.blocking_threads > 0 && may_block_) {
            blocking_.emplace(static_cast<std::size_t>(cfg_.blocking_threads));
        }
        net::co_spawn(*ioc_, accept_loop(), net::detached);
        for (int i = 0; i < std::max(1, cfg_.threads); ++i) {
            threads_.emplace_back([this] { ioc_->run(); });
        }
    }

    ~server_impl() override
    {
        stop();
        acceptor_.reset();
        ioc_.reset();  // destroys suspended sessions while everything they use still exists
    }

    server_impl(const server_impl&) = delete;
    server_impl& operator=(const server_impl&) = delete;

    std::uint16_t port() const override { return port_; }

    https_server_stats stats() const override
    {
        return {connections_.load(), refused_.load(), handshake_failures_.load(), requests_.load(),
                bad_requests_.load()};
    }

    void stop() override
    {
        if (stopped_.exchange(true)) {
            return;
        }
        net::post(*ioc_, [this] {
            boost::system::error_code ec;
            acceptor_->close(ec);
        });
        ioc_->stop();
        for (auto& t : threads_) {
            t.join();
        }
        threads_.clear();
        // Handlers already running finish (a commit in progress completes); their replies are
        // queued on the stopped io_context and dropped with it.
        if (blocking_) {
            blocking_->join();
        }
    }

private:
    http_reply call_handler(const http_request_view& v)
    {
        try {
            return handler_(v);
        } catch (const std::exception&) {
            return {503, "{\"message\":\"internal error\"}", "application/json", false};
        }
    }

    // Runs the handler on the blocking pool and resumes the connection's coroutine on its own
    // executor with the reply. `v` points into the coroutine's frame, which the completion
    // handler owns until it is invoked, so it outlives the call.
    net::awaitable<http_reply> handle_blocking(const http_request_view& v)
    {
        co_return co_await net::async_initiate<decltype(net::use_awaitable), void(http_reply)>(
            [this, v](auto done) {
                net::post(*blocking_, [this, v, done = std::move(done)]() mutable {
                    http_reply r = call_handler(v);
                    auto ex = net::get_associated_executor(done);
                    net::post(ex, [done = std::move(done), r = std::move(r)]() mutable { std::move(done)(std::move(r)); });
                });
            },
            net::use_awaitable);
    }

    template <class F>
    static void load(const std::string& file, F&& f)
    {
        try {
            f();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot load TLS file " + file + ": " + e.code().message());
        }
    }

    net::awaitable<void> accept_loop()
    {
        for (;;) {
            tcp::socket sock(*ioc_);
            try {
                sock = co_await acceptor_->async_accept(net::make_strand(*ioc_), net::use_awaitable);
            } catch (const boost::system::system_error& e) {
                if (e.code() == net::error::operation_aborted || !acceptor_->is_open()) {
                    co_return;
                }
                continue;  // e.g. EMFILE: keep serving the connections we have
            }
            if (active_.load() >= cfg_.max_connections) {
                ++refused_;
                boost::system::error_code ec;
                sock.close(ec);
                continue;
            }
            ++active_;
            ++connections_;
            // One request, one reply: nothing to gain from Nagle, and a reply written in two
            // pieces (e.g. a TLS record boundary) must not wait for the client's delayed ACK.
            boost::system::error_code nd_ec;
            sock.set_option(tcp::no_delay(true), nd_ec);
            auto ex = sock.get_executor();
            if (ssl_) {
                net::co_spawn(ex, tls_session(std::move(sock)), net::detached);
            } else {
                net::co_spawn(ex, plain_session(std::move(sock)), net::detached);
            }
        }
    }

    struct active_guard {
        std::atomic<std::size_t>& n;
        ~active_guard() { --n; }
    };

    net::awaitable<void> tls_session(tcp::socket sock)
    {
        active_guard g{active_};
        beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(sock)), *ssl_);
        std::string caller;
        try {
            beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
            co_await stream.async_handshake(ssl::stream_base::server, net::use_awaitable);
            caller = peer_common_name(stream.native_handle());
        } catch (const std::exception&) {
            ++handshake_failures_;
            co_return;
        }
        if (caller.empty()) {
            ++handshake_failures_;
            co_return;
        }
        const bool clean = co_await serve(stream, caller);
        if (clean) {
            try {
                beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(2));
                co_await stream.async_shutdown(net::use_awaitable);
            } catch (const std::exception&) {
            }
        }
    }

    net::awaitable<void> plain_session(tcp::socket sock)
    {
        active_guard g{active_};
        beast::tcp_stream stream(std::move(sock));
        co_await serve(stream, std::string());
        boost::system::error_code ec;
        stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        stream.socket().close(ec);
    }

    // Returns true when the connection ended in an orderly way (worth a TLS close_notify).
    template <class Stream>
    net::awaitable<bool> serve(Stream& stream, const std::string& caller)
    {
        beast::flat_buffer buf(cfg_.max_header_bytes + cfg_.max_body_bytes + 1024);
        for (;;) {
            http::request_parser<http::string_body> parser;
            parser.header_limit(static_cast<std::uint32_t>(cfg_.max_header_bytes));
            parser.body_limit(cfg_.max_body_bytes);
            std::string why;
            bool body_too_big = false;
            bool quiet_end = false;
            bool orderly = false;
            try {
                if (buf.size() == 0) {
                    // Waiting for the next request on a keep-alive connection.
                    beast::get_lowest_layer(stream).expires_after(cfg_.idle_timeout);
                    const std::size_t n = co_await stream.async_read_some(buf.prepare(4096), net::use_awaitable);
                    buf.commit(n);
                }
                // From the first byte on the whole request must arrive in request_timeout.
                beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
                co_await http::async_read(stream, buf, parser, net::use_awaitable);
            } catch (const boost::system::system_error& e) {
                const auto ec = e.code();
                if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
                    ec == net::ssl::error::stream_truncated || ec == net::error::connection_reset ||
                    ec == net::error::operation_aborted) {
                    if (ec == beast::error::timeout && buf.size() != 0) {
                        ++bad_requests_;
                    }
                    quiet_end = true;
                    orderly = ec == http::error::end_of_stream || ec == net::error::eof;
                } else {
                    body_too_big = ec == http::error::body_limit;
                    why = ec == http::error::body_limit
                              ? "request body exceeds " + std::to_string(cfg_.max_body_bytes) + " bytes"
                          : ec == http::error::header_limit
                              ? "request header exceeds " + std::to_string(cfg_.max_header_bytes) + " bytes"
                              : "malformed HTTP request: " + ec.message();
                }
            } catch (const std::exception&) {
                quiet_end = true;
            }
            if (quiet_end) {
                co_return orderly;
            }
            if (!why.empty()) {
                ++bad_requests_;
                http::response<http::string_body> res{http::status::bad_request, 11};
                res.set(http::field::server, "qkmd");
                res.set(http::field::content_type, "application/json");
                res.keep_alive(false);
                res.body() = "{\"message\":\"" + why + "\",\"details\":[{\"reason\":\"" + why + "\"}]}";
                res.prepare_payload();
                try {
                    beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
                    co_await http::async_write(stream, res, net::use_awaitable);
                } catch (const std::exception&) {
                    co_return false;
                }
                // The client is usually still sending the body. Closing now with unread bytes
                // would make the kernel send a TCP reset, which can destroy the reply before the
                // client reads it; so read and discard what is still coming (bounded in bytes and
                // time), then close in order.
                const auto declared = parser.content_length();
                std::size_t left = !body_too_big ? 0
                                   : declared    ? static_cast<std::size_t>(std::min<std::uint64_t>(*declared, drain_cap))
                                                 : drain_cap;
                left = left > buf.size() ? left - buf.size() : 0;
                buf.consume(buf.size());
                try {
                    beast::get_lowest_layer(stream).expires_after(std::min(cfg_.request_timeout, drain_time));
                    // Not `buf`: its size limit is one request.
                    std::vector<char> sink(16384);
                    while (left > 0) {
                        const std::size_t n = co_await stream.async_read_some(
                            net::buffer(sink.data(), std::min(left, sink.size())), net::use_awaitable);
                        left -= std::min(left, n);
                    }
                } catch (const std::exception&) {
                    co_return false;
                }
                co_return true;
            }
            ++requests_;
            const auto& req = parser.get();
            const http_request_view view{std::string_view(req.method_string().data(), req.method_string().size()),
                                         std::string_view(req.target().data(), req.target().size()), req.body(),
                                         caller};
            http_reply reply;
            bool offload = false;
            if (blocking_) {
                try {
                    offload = may_block_(view);
                } catch (const std::exception&) {
                }
            }
            if (offload) {
                reply = co_await handle_blocking(view);
            } else {
                reply = call_handler(view);
            }
            http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
            res.set(http::field::server, "qkmd");
            res.set(http::field::content_type, reply.content_type);
            if (reply.secret) {
                res.set(http::field::cache_control, "no-store");
            }
            const bool keep = req.keep_alive();
            res.keep_alive(keep);
            res.body() = std::move(reply.body);
            res.prepare_payload();
            bool ok = true;
            try {
                beast::get_lowest_layer(stream).expires_after(cfg_.request_timeout);
                co_await http::async_write(stream, res, net::use_awaitable);
            } catch (const std::exception&) {
                ok = false;
            }
            if (reply.secret) {
                OPENSSL_cleanse(res.body().data(), res.body().size());
            }
            if (!ok || !keep) {
                co_return ok;
            }
        }
    }

    config cfg_;
    http_handler handler_;
    http_may_block may_block_;
    std::optional<net::thread_pool> blocking_;
    std::optional<ssl::context> ssl_;
    std::atomic<std::size_t> active_{0};
    std::atomic<std::uint64_t> connections_{0}, refused_{0}, handshake_failures_{0}, requests_{0}, bad_requests_{0};
    std::atomic<bool> stopped_{false};
    std::uint16_t port_ = 0;
    std::optional<net::io_context> ioc_;
    std::optional<tcp::acceptor> acceptor_;
    std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<https_server> start_https_server(const https_server::config& cfg, http_handler handler,
                                                 http_may_block may_block)
{
    return std::make_unique<server_impl>(cfg, std::move(handler), std::move(may_block));
}

}  // namespace qlink::keymgmt
