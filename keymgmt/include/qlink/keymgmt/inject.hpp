// Key injection socket for the link: Unix-domain, length-prefixed binary frames, peer uid checked.
#pragma once

#include "qlink/keymgmt/key_store.hpp"

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace qlink::keymgmt {

/// Wire format, all integers big endian. Every frame is u32 length (of what follows, <= 512)
/// then the body.
///   request:  u8 version=1 | u8 op | u8 flags | u32 spi | u16 key_bytes | [op=2: 16-byte key ID]
///             | [op=3: 4-byte link key ID]
///             | [flags bit0: 32-byte X25519 shared secret]
///   response: u8 version=1 | u8 status | 16-byte key ID | u16 n | n bytes (key, or UTF-8 error text)
/// op 1 NEXT_KEY: the initiating end takes the next key for the SA; the key ID travels in-band
///   (security header) to the far end. op 2 KEY_BY_ID: the far end takes that key. op 3
///   KEY_BY_LINK_ID (4-byte name instead of the 16-byte ID): the far end takes the key whose ID
///   starts with those 4 bytes, the form the SDLS header's 32-bit key ID field carries; refused
///   (not_found) when more than one ACTIVE key shares the prefix. key_bytes 0
///   means the whole stored key. With flag bit0 the returned key is the hybrid combination
///   (see hybrid.hpp) of the QKD key and the given X25519 shared secret, bound to spi and key ID.
///   Flag bit1 (LEASE, ops 2 and 3 only): a decryption key this qkmd already served to the same
///   peer uid for the same spi may be served again while its lease lasts (a restarted link daemon
///   recovering the key in use); NEXT_KEY keys are never served twice (docs/keymgmt.md, "Leases").
namespace inject_wire {
inline constexpr std::uint8_t version = 1;
inline constexpr std::uint8_t op_next_key = 1;
inline constexpr std::uint8_t op_key_by_id = 2;
inline constexpr std::uint8_t op_key_by_link_id = 3;
inline constexpr std::uint8_t flag_hybrid = 1;
inline constexpr std::uint8_t flag_lease = 2;
inline constexpr std::size_t max_frame = 512;
}  // namespace inject_wire

enum class inject_status : std::uint8_t {
    ok = 0,
    no_key = 1,          ///< no key available right now
    not_found = 2,       ///< unknown key ID
    already_served = 3,  ///< key ID already used
    bad_request = 4,
    internal_error = 5,
    unauthorized = 6,
};

struct inject_counters {
    std::atomic<std::uint64_t> keys_next{0};
    std::atomic<std::uint64_t> keys_by_id{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> refused_peers{0};
    std::atomic<std::uint64_t> link_id_collisions{0};  ///< KEY_BY_LINK_ID prefixes naming several keys
    std::atomic<std::uint64_t> lease_reserves{0};      ///< decryption keys served again under a lease
    std::atomic<std::uint64_t> leases_refused{0};      ///< lease asked, none held for that peer/spi/key
};

/// Frame handling without the socket (the server and tests both use it).
class inject_service {
public:
    struct config {
        int partition = -1;  ///< partition NEXT_KEY draws from (see key_store.hpp)
        /// How long a decryption key stays re-servable to the peer it was served to (LEASE flag).
        std::chrono::seconds lease_time{900};
        unsigned max_reserves = 16;           ///< re-serves per lease (a crash loop is not a key pump)
        std::size_t leases_per_link = 2;      ///< newest keys kept per (peer uid, spi): the key in use and the one before
        std::size_t max_leases = 256;         ///< all peers together; the oldest goes first
        std::function<std::chrono::steady_clock::time_point()> now;  ///< injected clock; empty: steady_clock
    };
    inject_service(config cfg, key_store& store) : cfg_(std::move(cfg)), store_(store) {}
    /// Handles one request body (after the length prefix) from a peer with uid `peer`; writes one
    /// response body. Never throws. The two-argument form is a peer with this process's uid.
    void handle(std::span<const std::uint8_t> request, std::vector<std::uint8_t>& response, uid_t peer);
    void handle(std::span<const std::uint8_t> request, std::vector<std::uint8_t>& response);
    inject_counters& counters() { return counters_; }
    std::size_t leases() const;  ///< leases held now

private:
    /// A decryption key served to `uid` for `spi`, kept (in secure memory) so that the same peer
    /// can take it again after a restart; wiped when it expires or the link has moved on.
    struct lease {
        key_id id{};
        uid_t uid = 0;
        std::uint32_t spi = 0;
        std::size_t key_bytes = 0;
        secret_bytes material;
        std::chrono::steady_clock::time_point expires{};
        std::uint64_t order = 0;  ///< serve order (newest highest)
        unsigned reserves = 0;
    };
    std::chrono::steady_clock::time_point clock() const;
    void expire_leases(std::chrono::steady_clock::time_point now);
    void add_lease(const key_id& id, uid_t uid, std::uint32_t spi, std::size_t key_bytes,
                   std::span<const std::uint8_t> material);
    lease* find_lease(uid_t uid, std::uint32_t spi, std::span<const std::uint8_t> name);

    struct resolved {
        std::optional<key_id> id;
        inject_status error_status = inject_status::ok;
        std::string error;
        explicit operator bool() const { return id.has_value(); }
        const key_id& operator*() const { return *id; }
    };
    resolved resolve_link_id(std::span<const std::uint8_t> link_id);

    config cfg_;
    key_store& store_;
    inject_counters counters_;
    mutable std::mutex lease_mu_;
    std::vector<lease> leases_;
    std::uint64_t lease_order_ = 0;
};

class inject_server {
public:
    struct config {
        std::string socket_path;
        unsigned mode = 0600;             ///< 0600 or 0660
        std::vector<uid_t> allowed_uids;  ///< empty: only our own uid
        std::size_t max_connections = 16;
        std::chrono::milliseconds request_timeout{5000};
        int partition = -1;
        std::chrono::seconds lease_time{900};  ///< see inject_service::config
    };
    virtual ~inject_server() = default;
    virtual inject_counters& counters() = 0;
    virtual void stop() = 0;
};

/// Creates the socket (replacing a stale one), sets its mode and starts serving on a thread.
/// Throws std::runtime_error on configuration problems.
std::unique_ptr<inject_server> start_inject_server(const inject_server::config& cfg, key_store& store);

struct inject_reply {
    inject_status status = inject_status::internal_error;
    key_id id{};
    secret_bytes key;
    std::string message;  ///< error text (or transport error)
    bool ok() const { return status == inject_status::ok; }
};

/// Link-side client (blocking).
class inject_client {
public:
    /// Throws std::runtime_error when it cannot connect.
    explicit inject_client(const std::string& socket_path);
    ~inject_client();
    inject_client(const inject_client&) = delete;
    inject_client& operator=(const inject_client&) = delete;

    inject_reply next_key(std::uint32_t spi, std::uint16_t key_bytes, std::span<const std::uint8_t> x25519_shared = {});
    /// `lease`: accept a key already served to this uid for this spi (decryption keys only).
    inject_reply key_by_id(std::uint32_t spi, const key_id& id, std::uint16_t key_bytes,
                           std::span<const std::uint8_t> x25519_shared = {}, bool lease = false);
    /// The far end of the link: the key named by the SDLS header's 32-bit key ID (the first
    /// 4 bytes of its UUID; the reply carries the full ID).
    inject_reply key_by_link_id(std::uint32_t spi, std::uint32_t link_id, std::uint16_t key_bytes,
                                std::span<const std::uint8_t> x25519_shared = {}, bool lease = false);
    /// Sends raw bytes and reads one response (for tests of malformed input).
    inject_reply raw(std::span<const std::uint8_t> frame);

private:
    inject_reply call(std::span<const std::uint8_t> body);
    int fd_ = -1;
};

}  // namespace qlink::keymgmt
