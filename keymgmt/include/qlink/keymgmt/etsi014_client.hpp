// ETSI GS QKD 014 client over mutual TLS (keep-alive): SAE side of the API and KME-to-KME reservations.
#pragma once

#include "qlink/keymgmt/etsi014.hpp"
#include "qlink/keymgmt/key_store.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace qlink::keymgmt {

struct etsi014_keys_result {
    unsigned http_status = 0;  ///< 0: transport failure (see message)
    std::string message;       ///< server's "message" or the transport error
    std::vector<served_key> keys;
    bool ok() const { return http_status == 200; }
};

struct etsi014_raw_result {
    unsigned http_status = 0;
    std::string body;  ///< do not log: may hold keys
    std::string message;
};

class etsi014_client {
public:
    struct config {
        std::string host = "127.0.0.1";
        std::uint16_t port = 0;
        /// Name the server certificate must carry (SAN or CN); empty: any name signed by the CA.
        std::string server_name;
        std::string cert_file;  ///< our certificate (CN = our SAE or KME ID)
        std::string key_file;
        std::string ca_file;
        std::chrono::milliseconds timeout{5000};
    };

    virtual ~etsi014_client() = default;

    /// One HTTP request on the kept-alive connection (reconnects once if the server closed it).
    virtual etsi014_raw_result request(std::string_view method, std::string_view target, std::string_view body) = 0;

    virtual etsi014_raw_result status(std::string_view slave_sae_id) = 0;
    virtual etsi014_keys_result enc_keys(std::string_view slave_sae_id, std::size_t number, std::size_t size_bits,
                                         std::span<const std::string> additional_slaves = {}) = 0;
    virtual etsi014_keys_result dec_keys(std::string_view master_sae_id, std::span<const key_id> ids) = 0;
};

/// Throws std::runtime_error when the TLS files cannot be loaded; connection errors are reported
/// per request.
std::unique_ptr<etsi014_client> create_etsi014_client(const etsi014_client::config& cfg);

/// peer_kme_notifier that posts reservations to peer KMEs with an etsi014_client each.
class etsi014_peer_notifier final : public peer_kme_notifier {
public:
    struct peer {
        std::string kme_id;
        etsi014_client::config client;
    };
    explicit etsi014_peer_notifier(std::vector<peer> peers);
    ~etsi014_peer_notifier() override;
    bool reserve(std::string_view peer_kme_id, std::string_view master_sae_id, std::span<const std::string> slave_sae_ids,
                 std::span<const key_id> ids, std::size_t size_bits, std::string& error) override;

private:
    struct entry;
    std::vector<std::unique_ptr<entry>> peers_;
};

}  // namespace qlink::keymgmt
