// Hybrid link key: HKDF-SHA-256 over (QKD key || X25519 shared secret), ETSI TS 103 744 concatenate-then-KDF.
#pragma once

#include "qlink/keymgmt/key_store.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace qlink::keymgmt {

/// HKDF-Expand label (the "info" prefix); fixed so both ends derive the same key.
inline constexpr std::string_view hybrid_label = "qlink hybrid link key v1";

/// Binds the derived key to its use: the link's security association and the QKD key it came
/// from. info = label || 0x00 || SPI (4 bytes, big endian) || QKD key ID (16 bytes).
struct hybrid_context {
    std::uint32_t spi = 0;
    key_id qkd_key_id{};
};

/// link_key = HKDF-SHA-256(salt = none, IKM = qkd_key || x25519_shared, info as above, L = out.size()).
/// The result stays secret if either input does. Returns false on empty inputs or OpenSSL failure
/// (out is zeroed then).
bool combine_hybrid_key(std::span<const std::uint8_t> qkd_key, std::span<const std::uint8_t> x25519_shared,
                        const hybrid_context& ctx, std::span<std::uint8_t> out);

/// X25519 helpers (OpenSSL) so the link and the tests use the same primitive.
struct x25519_keypair {
    secret_bytes private_key;  ///< 32 bytes
    std::array<std::uint8_t, 32> public_key{};
};
x25519_keypair x25519_generate();
/// False when the peer key is invalid (e.g. a low-order point giving an all-zero secret).
bool x25519_shared_secret(const secret_bytes& private_key, std::span<const std::uint8_t> peer_public,
                          secret_bytes& shared);

}  // namespace qlink::keymgmt
