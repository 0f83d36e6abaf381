// Hybrid combiner (HKDF-SHA-256 concatenate-then-KDF) and X25519 via OpenSSL EVP.
#include "qlink/keymgmt/hybrid.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <cstring>
#include <stdexcept>

namespace qlink::keymgmt {

bool combine_hybrid_key(std::span<const std::uint8_t> qkd_key, std::span<const std::uint8_t> x25519_shared,
                        const hybrid_context& ctx, std::span<std::uint8_t> out)
{
    if (qkd_key.empty() || x25519_shared.empty() || out.empty()) {
        if (!out.empty()) {
            OPENSSL_cleanse(out.data(), out.size());
        }
        return false;
    }
    secret_bytes ikm(qkd_key.size() + x25519_shared.size());
    std::memcpy(ikm.data(), qkd_key.data(), qkd_key.size());
    std::memcpy(ikm.data() + qkd_key.size(), x25519_shared.data(), x25519_shared.size());
    std::array<std::uint8_t, hybrid_label.size() + 1 + 4 + 16> info{};
    std::memcpy(info.data(), hybrid_label.data(), hybrid_label.size());
    std::size_t p = hybrid_label.size() + 1;  // 0x00 separator
    for (int i = 3; i >= 0; --i) {
        info[p++] = static_cast<std::uint8_t>(ctx.spi >> (8 * i));
    }
    std::memcpy(info.data() + p, ctx.qkd_key_id.data(), ctx.qkd_key_id.size());

    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    EVP_KDF_CTX* kctx = kdf ? EVP_KDF_CTX_new(kdf) : nullptr;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm.data(), ikm.size()),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info.data(), info.size()),
        OSSL_PARAM_construct_end(),
    };
    const bool ok = kctx != nullptr && EVP_KDF_derive(kctx, out.data(), out.size(), params) == 1;
    EVP_KDF_CTX_free(kctx);
    EVP_KDF_free(kdf);
    if (!ok) {
        OPENSSL_cleanse(out.data(), out.size());
    }
    return ok;
}

x25519_keypair x25519_generate()
{
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
    if (key == nullptr) {
        throw std::runtime_error("X25519 key generation failed");
    }
    x25519_keypair kp;
    kp.private_key = secret_bytes(32);
    std::size_t n = 32;
    std::size_t m = 32;
    const bool ok = EVP_PKEY_get_raw_private_key(key, kp.private_key.data(), &n) == 1 &&
                    EVP_PKEY_get_raw_public_key(key, kp.public_key.data(), &m) == 1 && n == 32 && m == 32;
    EVP_PKEY_free(key);
    if (!ok) {
        throw std::runtime_error("X25519 key export failed");
    }
    return kp;
}

bool x25519_shared_secret(const secret_bytes& private_key, std::span<const std::uint8_t> peer_public,
                          secret_bytes& shared)
{
    if (private_key.size() != 32 || peer_public.size() != 32) {
        return false;
    }
    EVP_PKEY* me = EVP_PKEY_new_raw_private_key(EVP_PKEY_X25519, nullptr, private_key.data(), 32);
    EVP_PKEY* peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, nullptr, peer_public.data(), 32);
    EVP_PKEY_CTX* ctx = me ? EVP_PKEY_CTX_new(me, nullptr) : nullptr;
    secret_bytes out(32);
    std::size_t len = 32;
    // OpenSSL refuses an all-zero result (low-order peer point) in EVP_PKEY_derive.
    const bool ok = ctx != nullptr && peer != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
                    EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out.data(), &len) == 1 &&
                    len == 32;
    EVP_PKEY_CTX_free(ctx);
    EVP_PKEY_free(peer);
    EVP_PKEY_free(me);
    if (ok) {
        shared = std::move(out);
    }
    return ok;
}

}  // namespace qlink::keymgmt
