// ETSI 014 client: synchronous Beast over mutual TLS with one kept-alive connection, socket timeouts.
#include "qlink/keymgmt/etsi014_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>

#include <mutex>
#include <optional>
#include <stdexcept>

namespace qlink::keymgmt {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using json = nlohmann::json;

class client_impl final : public etsi014_client {
public:
    explicit client_impl(const config& c) : cfg_(c), ctx_(ssl::context::tls_client)
    {
        SSL_CTX_set_min_proto_version(ctx_.native_handle(), TLS1_2_VERSION);
        try {
            ctx_.use_certificate_chain_file(cfg_.cert_file);
            ctx_.use_private_key_file(cfg_.key_file, ssl::context::pem);
            ctx_.load_verify_file(cfg_.ca_file);
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("ETSI 014 client: cannot load TLS files (" + cfg_.cert_file + ", " + cfg_.key_file +
                                     ", " + cfg_.ca_file + "): " + e.code().message());
        }
        ctx_.set_verify_mode(ssl::verify_peer);
    }

    ~client_impl() override { close(); }
    client_impl(const client_impl&) = delete;
    client_impl& operator=(const client_impl&) = delete;

    etsi014_raw_result request(std::string_view method, std::string_view target, std::string_view body) override
    {
        std::lock_guard lock(mu_);
        etsi014_raw_result r;
        for (int attempt = 0; attempt < 2; ++attempt) {
            const bool fresh = !stream_;
            if (!stream_ && !connect(r.message)) {
                return r;
            }
            if (exchange(method, target, body, r)) {
                return r;
            }
            close();
            if (fresh) {
                break;  // a new connection failed: do not retry
            }
        }
        return r;
    }

    etsi014_raw_result status(std::string_view slave) override
    {
        return request("GET", "/api/v1/keys/" + std::string(slave) + "/status", {});
    }

    etsi014_keys_result enc_keys(std::string_view slave, std::size_t number, std::size_t size_bits,
                                 std::span<const std::string> additional) override
    {
        json j;
        j["number"] = number;
        j["size"] = size_bits;
        if (!additional.empty()) {
            j["additional_slave_SAE_IDs"] = std::vector<std::string>(additional.begin(), additional.end());
        }
        return keys(request("POST", "/api/v1/keys/" + std::string(slave) + "/enc_keys", j.dump()));
    }

    etsi014_keys_result dec_keys(std::string_view master, std::span<const key_id> ids) override
    {
        json arr = json::array();
        for (const auto& id : ids) {
            arr.push_back(json{{"key_ID", key_id_to_string(id)}});
        }
        json j;
        j["key_IDs"] = std::move(arr);
        return keys(request("POST", "/api/v1/keys/" + std::string(master) + "/dec_keys", j.dump()));
    }

private:
    static etsi014_keys_result keys(etsi014_raw_result raw)
    {
        etsi014_keys_result out;
        out.http_status = raw.http_status;
        out.message = raw.message;
        json j = json::parse(raw.body, nullptr, false);
        OPENSSL_cleanse(raw.body.data(), raw.body.size());
        if (raw.http_status == 0) {
            return out;
        }
        if (j.is_discarded() || !j.is_object()) {
            out.http_status = raw.http_status == 200 ? 0 : raw.http_status;
            out.message = "response is not a JSON object";
            return out;
        }
        if (raw.http_status != 200) {
            out.message = j.contains("message") && j["message"].is_string() ? j["message"].get<std::string>() : "";
            return out;
        }
        if (!j.contains("keys") || !j["keys"].is_array()) {
            out.http_status = 0;
            out.message = "response has no keys array";
            return out;
        }
        for (const auto& k : j["keys"]) {
            const auto* id_s = k.contains("key_ID") ? k["key_ID"].get_ptr<const std::string*>() : nullptr;
            const auto* key_s = k.contains("key") ? k["key"].get_ptr<const std::string*>() : nullptr;
            const auto id = id_s ? parse_key_id(*id_s) : std::nullopt;
            auto mat = key_s ? base64_decode(*key_s) : std::nullopt;
            if (!id || !mat) {
                out.keys.clear();
                out.http_status = 0;
                out.message = "malformed key in response";
                return out;
            }
            out.keys.push_back({*id, std::move(*mat)});
        }
        // The parsed JSON holds base64 copies of the keys; cleanse them before it is freed.
        for (auto& k : j["keys"]) {
            if (k.contains("key") && k["key"].is_string()) {
                auto& s = k["key"].get_ref<std::string&>();
                OPENSSL_cleanse(s.data(), s.size());
            }
        }
        return out;
    }

    // Runs the queued asynchronous operation to completion; tcp_stream's expiry bounds it, so
    // a peer that accepts but never answers cannot block the caller (sync socket calls would).
    void run()
    {
        ioc_.restart();
        ioc_.run();
    }

    bool connect(std::string& err)
    {
        boost::system::error_code ec;
        tcp::resolver res(ioc_);
        const auto eps = res.resolve(cfg_.host, std::to_string(cfg_.port), ec);
        if (ec) {
            err = "cannot resolve " + cfg_.host + ": " + ec.message();
            return false;
        }
        stream_.emplace(ioc_, ctx_);
        if (!cfg_.server_name.empty()) {
            SSL_set1_host(stream_->native_handle(), cfg_.server_name.c_str());
            SSL_set_tlsext_host_name(stream_->native_handle(), cfg_.server_name.c_str());
        }
        auto& tcp_layer = beast::get_lowest_layer(*stream_);
        tcp_layer.expires_after(cfg_.timeout);
        tcp_layer.async_connect(eps, [&ec](boost::system::error_code e, const tcp::endpoint&) { ec = e; });
        run();
        if (!ec) {
            boost::system::error_code nd_ec;  // best effort: see https_server.cpp
            tcp_layer.socket().set_option(tcp::no_delay(true), nd_ec);
            tcp_layer.expires_after(cfg_.timeout);
            stream_->async_handshake(ssl::stream_base::client, [&ec](boost::system::error_code e) { ec = e; });
            run();
        }
        if (ec) {
            err = "cannot connect to " + cfg_.host + ":" + std::to_string(cfg_.port) + ": " + ec.message();
            stream_.reset();
            return false;
        }
        return true;
    }

    bool exchange(std::string_view method, std::string_view target, std::string_view body, etsi014_raw_result& r)
    {
        http::request<http::string_body> req{http::string_to_verb(beast::string_view(method.data(), method.size())),
                                             beast::string_view(target.data(), target.size()), 11};
        req.set(http::field::host, cfg_.server_name.empty() ? cfg_.host : cfg_.server_name);
        req.set(http::field::user_agent, "qlink-etsi014-client");
        req.keep_alive(true);
        if (!body.empty()) {
            req.set(http::field::content_type, "application/json");
            req.body() = std::string(body);
        }
        req.prepare_payload();
        boost::system::error_code ec;
        auto& tcp_layer = beast::get_lowest_layer(*stream_);
        tcp_layer.expires_after(cfg_.timeout);
        http::async_write(*stream_, req, [&ec](boost::system::error_code e, std::size_t) { ec = e; });
        run();
        http::response_parser<http::string_body> parser;
        parser.body_limit(16 * 1024 * 1024);
        if (!ec) {
            tcp_layer.expires_after(cfg_.timeout);
            http::async_read(*stream_, buf_, parser, [&ec](boost::system::error_code e, std::size_t) { ec = e; });
            run();
        }
        if (ec) {
            r.http_status = 0;
            r.message = "request to " + cfg_.host + ":" + std::to_string(cfg_.port) + " failed: " + ec.message();
            return false;
        }
        auto res = parser.release();
        r.http_status = res.result_int();
        r.body = std::move(res.body());
        r.message.clear();
        if (!res.keep_alive()) {
            close();
        }
        return true;
    }

    void close()
    {
        if (stream_) {
            boost::system::error_code ec;
            beast::get_lowest_layer(*stream_).socket().close(ec);
            stream_.reset();
        }
        buf_.clear();
    }

    config cfg_;
    std::mutex mu_;
    net::io_context ioc_;
    ssl::context ctx_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> stream_;
    beast::flat_buffer buf_;
};

}  // namespace

std::unique_ptr<etsi014_client> create_etsi014_client(const etsi014_client::config& cfg)
{
    return std::make_unique<client_impl>(cfg);
}

struct etsi014_peer_notifier::entry {
    std::string kme_id;
    std::unique_ptr<etsi014_client> client;
};

etsi014_peer_notifier::etsi014_peer_notifier(std::vector<peer> peers)
{
    for (auto& p : peers) {
        peers_.push_back(std::make_unique<entry>(entry{p.kme_id, create_etsi014_client(p.client)}));
    }
}

etsi014_peer_notifier::~etsi014_peer_notifier() = default;

bool etsi014_peer_notifier::reserve(std::string_view peer_kme_id, std::string_view master_sae_id,
                                    std::span<const std::string> slave_sae_ids, std::span<const key_id> ids,
                                    std::size_t size_bits, std::string& error)
{
    for (auto& p : peers_) {
        if (p->kme_id != peer_kme_id) {
            continue;
        }
        json j;
        j["master_SAE_ID"] = std::string(master_sae_id);
        j["slave_SAE_IDs"] = std::vector<std::string>(slave_sae_ids.begin(), slave_sae_ids.end());
        json arr = json::array();
        for (const auto& id : ids) {
            arr.push_back(key_id_to_string(id));
        }
        j["key_IDs"] = std::move(arr);
        j["size"] = size_bits;
        const auto r = p->client->request("POST", peer_reserve_path, j.dump());
        if (r.http_status == 200) {
            return true;
        }
        error = r.http_status == 0 ? r.message : "HTTP " + std::to_string(r.http_status) + ": " + r.body;
        return false;
    }
    error = "no connection configured for peer KME '" + std::string(peer_kme_id) + "'";
    return false;
}

}  // namespace qlink::keymgmt
