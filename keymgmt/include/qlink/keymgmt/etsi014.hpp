// ETSI GS QKD 014 v1.1.1 key delivery API: request routing, validation and key hand-out over the key store.
#pragma once

#include "qlink/keymgmt/https_server.hpp"
#include "qlink/keymgmt/key_store.hpp"

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace qlink::keymgmt {

/// An SAE known to this deployment and the KME it is attached to.
struct sae_entry {
    std::string sae_id;
    std::string kme_id;
};

/// Tells a peer KME that keys it also holds were issued here, so it serves them to the named
/// slave SAEs (attached to it) and to nobody else. Returns false with a reason on failure.
class peer_kme_notifier {
public:
    virtual ~peer_kme_notifier() = default;
    virtual bool reserve(std::string_view peer_kme_id, std::string_view master_sae_id,
                         std::span<const std::string> slave_sae_ids, std::span<const key_id> ids, std::size_t size_bits,
                         std::string& error) = 0;
};

struct etsi014_counters {
    std::atomic<std::uint64_t> enc_requests{0};
    std::atomic<std::uint64_t> dec_requests{0};
    std::atomic<std::uint64_t> keys_served_enc{0};
    std::atomic<std::uint64_t> keys_served_dec{0};
    std::atomic<std::uint64_t> errors_400{0};
    std::atomic<std::uint64_t> errors_401{0};
    std::atomic<std::uint64_t> errors_503{0};
    std::atomic<std::uint64_t> peer_reservations{0};
};

class etsi014_service {
public:
    struct config {
        std::string kme_id;
        std::vector<sae_entry> saes;
        std::size_t key_size_bits = 256;  ///< default size; also the size of stored keys
        std::size_t max_key_per_request = 128;
        std::size_t max_key_size_bits = 256;
        std::size_t min_key_size_bits = 64;
        std::size_t max_sae_id_count = 8;  ///< additional slave SAEs per request
        /// Partition of the shared key stream this KME issues with enc_keys (-1: all; with two
        /// KMEs sharing keys, one takes 0 and the other 1).
        int enc_partition = -1;
    };

    /// `notifier` may be null when every SAE is attached to this KME.
    etsi014_service(config cfg, key_store& store, peer_kme_notifier* notifier);

    /// Routes one request. Never throws; every error is a spec-shaped JSON body.
    http_reply handle(const http_request_view& req);

    /// True when handling `req` waits for a durable store commit or a peer KME: dec_keys, the
    /// peer reservation, enc_keys without a hand-out pool or with a slave at another KME. The
    /// server runs those on its blocking threads (https_server::config::blocking_threads); the
    /// rest (status, enc_keys served from the pool, errors) stays on the network threads.
    bool may_block(const http_request_view& req) const;

    const etsi014_counters& counters() const { return counters_; }
    const config& cfg() const { return cfg_; }

private:
    const sae_entry* find_sae(std::string_view id) const;
    http_reply status(std::string_view caller, std::string_view slave);
    http_reply enc_keys(std::string_view caller, std::string_view slave, std::string_view method,
                        std::string_view query, std::string_view body);
    http_reply dec_keys(std::string_view caller, std::string_view master, std::string_view method,
                        std::string_view query, std::string_view body);
    http_reply peer_reserve(std::string_view caller, std::string_view body);
    http_reply error(unsigned code, std::string message, std::vector<std::string> details = {});

    config cfg_;
    key_store& store_;
    peer_kme_notifier* notifier_;
    etsi014_counters counters_;
};

/// Path of the KME-to-KME reservation call (not part of ETSI 014; see docs/keymgmt.md).
inline constexpr std::string_view peer_reserve_path = "/api/v1/kme/reserve";

std::string base64_encode(std::span<const std::uint8_t> in);
/// nullopt on invalid input.
std::optional<secret_bytes> base64_decode(std::string_view in);

}  // namespace qlink::keymgmt
