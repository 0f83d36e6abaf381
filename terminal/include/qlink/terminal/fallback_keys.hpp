// qlinkd's fallback link keys: static-static X25519 + HKDF-SHA-256 per key ID, with a persisted transmit counter.
#pragma once

#include "qlink/keymgmt/key_store.hpp"
#include "qlink/modem/key_source.hpp"
#include "qlink/terminal/link_engine.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::terminal {

/// Link key IDs of fallback keys: 1111 1111 1111 d iiii...i (12 ones, direction bit d = 1 for
/// keys the space end sends with, 19-bit index). qkmd's link IDs are UUID prefixes and can fall
/// anywhere: inject_key_source skips the 1 in 4096 QKD keys whose prefix lands here, and the
/// memory test keys use 1..2*10^6, so a fallback ID never names a QKD key.
inline constexpr std::uint32_t fallback_key_id_prefix = 0xFFF00000u;
inline constexpr std::uint32_t fallback_keys_per_direction = 1u << 19;

constexpr bool is_fallback_key_id(std::uint32_t id) { return (id & fallback_key_id_prefix) == fallback_key_id_prefix; }
constexpr std::uint32_t fallback_key_id(link_role sender, std::uint32_t index)
{
    return fallback_key_id_prefix | (sender == link_role::space ? 1u << 19 : 0u) | (index & (fallback_keys_per_direction - 1));
}
/// The end whose transmitter uses this fallback key ID.
constexpr link_role fallback_key_sender(std::uint32_t id) { return (id >> 19) & 1u ? link_role::space : link_role::ground; }

/// A fallback key file or state problem; the message names the file and what is wrong (never key bytes).
class fallback_key_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Reads an X25519 private key (PEM, PKCS#8 as `openssl genpkey -algorithm X25519` writes it) and
/// returns its public key. Throws fallback_key_error: unreadable, not PEM, not X25519, or readable
/// by others (mode o+r: a link key must not be).
std::array<std::uint8_t, 32> x25519_public_from_private_pem(const std::string& path);
/// Reads an X25519 public key (PEM SubjectPublicKeyInfo, `openssl pkey -pubout`). Throws
/// fallback_key_error (also when the file holds a private key: the peer's PUBLIC key belongs here).
std::array<std::uint8_t, 32> x25519_public_from_pem(const std::string& path);
/// The static-static X25519 shared secret of our private and the peer's public key (32 bytes).
/// Throws fallback_key_error (bad files, or a peer key that gives an all-zero secret).
keymgmt::secret_bytes x25519_shared_from_pem(const std::string& private_pem, const std::string& peer_public_pem);

/// HKDF-SHA-256 inputs of one fallback key (docs/qlinkd.md, "Fallback keys"): salt
/// "qlink fallback salt v1", IKM = the X25519 shared secret, info = fallback_info(...), L = 32.
inline constexpr char fallback_hkdf_salt[] = "qlink fallback salt v1";
/// info = "qlink fallback link key v1" || 0x00 || spacecraft ID (2, BE) || VCID (1) ||
///        sender ('G' or 'S') || key ID (4, BE) || ground public key (32) || space public key (32)
std::vector<std::uint8_t> fallback_info(std::uint16_t spacecraft_id, std::uint8_t vcid, link_role sender, std::uint32_t key_id,
                          const std::array<std::uint8_t, 32>& ground_public, const std::array<std::uint8_t, 32>& space_public);

struct fallback_key_counters {
    std::atomic<std::uint64_t> keys_sent{0};      ///< fallback keys this end's transmitter took
    std::atomic<std::uint64_t> keys_received{0};  ///< fallback keys derived for the peer's frames
    std::atomic<std::uint64_t> refused{0};        ///< IDs refused (own direction, not fallback, beyond the range)
    std::atomic<std::uint64_t> state_errors{0};   ///< the counter could not be persisted: no key handed out
};

/// The fallback link_key_source. Both ends derive the same key for a key ID; the two directions
/// never share one (the sender is in the ID and in the HKDF info). The transmit index is written to
/// `state_file` (temp file, fsync, rename, fsync of the directory) BEFORE a key with it is handed
/// out, so a restarted qlinkd never derives a key it used before (GCM nonce reuse); IDs are
/// reserved `reserve` at a time, so a restart skips at most reserve - 1 of them.
class fallback_key_source final : public modem::link_key_source {
public:
    struct config {
        std::string private_key_pem;      ///< this end's X25519 private key
        std::string peer_public_key_pem;  ///< the far end's X25519 public key
        std::string state_file;           ///< transmit counter (created on first use)
        link_role role = link_role::ground;
        std::uint16_t spacecraft_id = 0xAB;
        std::uint8_t vcid = 1;
        std::uint32_t reserve = 16;  ///< indices persisted ahead per state write (1 = one write per key)
        /// Called after a transmit key was handed out (key ID, keys_sent so far); no key bytes.
        std::function<void(std::uint32_t, std::uint64_t)> on_tx_key;
    };
    /// Loads and checks the keys and the state file (nothing is written yet). Throws fallback_key_error.
    explicit fallback_key_source(config cfg);
    ~fallback_key_source() override = default;
    fallback_key_source(const fallback_key_source&) = delete;
    fallback_key_source& operator=(const fallback_key_source&) = delete;

    /// The next transmit key; nullopt when the range is used up or the state could not be written.
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, modem::link_key_length> key) override;
    /// A key the PEER sends with; false for IDs of our own direction or outside the fallback range.
    bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key) override;

    const fallback_key_counters& counters() const { return c_; }
    /// Index the next transmit key will get.
    std::uint32_t next_index() const;
    /// Last persistence or range problem (empty if none); never key material.
    std::string last_error() const;

private:
    bool derive(link_role sender, std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key) const;
    bool persist(std::uint32_t mark);
    config cfg_;
    std::array<std::uint8_t, 32> ground_pub_{}, space_pub_{};
    std::array<std::uint8_t, 32> state_tag_{};  ///< binds the state file to this key pair and link
    keymgmt::secret_bytes prk_;                 ///< HKDF-Extract output; the shared secret itself is wiped
    mutable std::mutex mu_;
    std::uint32_t next_ = 0;       ///< next transmit index
    std::uint32_t persisted_ = 0;  ///< indices below this are reserved on disk
    std::string last_error_;
    fallback_key_counters c_;
};

/// Receive-side routing: fallback IDs go straight to the fallback source, everything else to the
/// QKD (or test) source, so qkmd is never asked for a fallback ID. next_key() is the QKD source's.
class fallback_id_router final : public modem::link_key_source {
public:
    fallback_id_router(modem::link_key_source& qkd, modem::link_key_source& fallback) : qkd_(qkd), fallback_(fallback) {}
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, modem::link_key_length> key) override
    {
        return qkd_.next_key(key);
    }
    bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key) override
    {
        return is_fallback_key_id(key_id) ? fallback_.key_by_id(key_id, key) : qkd_.key_by_id(key_id, key);
    }

private:
    modem::link_key_source& qkd_;
    modem::link_key_source& fallback_;
};

}  // namespace qlink::terminal
