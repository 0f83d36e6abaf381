// SDLS security associations (CCSDS 355.0-B): the per-SPI state, its key and its AES-256-GCM context.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace qlink::modem {

/// SA and key life cycle: keyed but not yet used → in use → no longer sent (still received for a
/// short grace while late frames drain) → key wiped.
enum class sa_state { preactive, active, deactivated, destroyed };
std::string_view to_string(sa_state s);

/// What the SA does to the frame data field.
enum class sdls_mode {
    auth_enc,   ///< AES-256-GCM: encrypt the data field, 16-byte MAC over AAD + ciphertext
    auth_only,  ///< GMAC: data field in clear, MAC over AAD + data field
    enc_only,   ///< GCM keystream only, no MAC (the trailer is sent as zeros and not checked)
};

inline constexpr std::size_t sdls_iv_length = 12;
inline constexpr std::size_t sdls_mac_length = 16;
inline constexpr std::size_t sdls_iv_fixed_length = 4;
/// GCM with 96-bit deterministic IVs (SP 800-38D 8.3): never more than 2^32 invocations per key.
inline constexpr std::uint64_t gcm_max_invocations = 1ull << 32;

/// AES-256-GCM over OpenSSL EVP with the key schedule loaded once; per frame only the IV changes.
class gcm_engine {
public:
    gcm_engine();
    ~gcm_engine();
    gcm_engine(const gcm_engine&) = delete;
    gcm_engine& operator=(const gcm_engine&) = delete;
    /// Loads the key (the caller wipes its copy). Throws std::runtime_error if OpenSSL fails.
    void set_key(std::span<const std::uint8_t, 32> key);
    /// Drops the key schedule (OpenSSL cleanses it).
    void clear();
    bool keyed() const { return keyed_; }
    /// Encrypts `data` in place (unless `encrypt` is false: then it is authenticated only) and
    /// writes the tag. false on an OpenSSL error.
    bool seal(std::span<const std::uint8_t, sdls_iv_length> iv, std::span<const std::uint8_t> aad,
              std::span<std::uint8_t> data, bool encrypt, std::span<std::uint8_t, sdls_mac_length> tag);
    /// Checks the tag and decrypts `data` in place; on a wrong tag returns false and `data` must be
    /// discarded. With check_tag false (enc_only) just decrypts.
    bool open(std::span<const std::uint8_t, sdls_iv_length> iv, std::span<const std::uint8_t> aad,
              std::span<std::uint8_t> data, bool decrypt, std::span<const std::uint8_t, sdls_mac_length> tag,
              bool check_tag);

private:
    void* enc_;  // EVP_CIPHER_CTX*; kept opaque so this header does not pull in OpenSSL
    void* dec_;
    bool keyed_ = false;
};

struct security_association {
    std::uint16_t spi = 0;
    std::uint32_t key_id = 0;
    sa_state state = sa_state::preactive;
    sdls_mode mode = sdls_mode::auth_enc;
    std::array<std::uint8_t, sdls_iv_fixed_length> iv_fixed{};  ///< IV = fixed field ‖ 64-bit counter
    std::uint64_t next_counter = 1;    ///< transmitter: counter of the next frame (also its ARSN)
    std::uint64_t invocations = 0;     ///< frames protected under this key
    std::uint64_t highest = 0;         ///< receiver: highest counter accepted
    std::uint64_t window_bits = 0;     ///< receiver: bit i set = counter highest - i seen
    std::uint32_t window = 64;         ///< anti-replay window (1..64)
    bool any_received = false;
    gcm_engine gcm;

    /// Anti-replay check without updating; true if `counter` may be accepted.
    bool replay_ok(std::uint64_t counter) const;
    /// Records an accepted counter.
    void replay_mark(std::uint64_t counter);
};

}  // namespace qlink::modem
