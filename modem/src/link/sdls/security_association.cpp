// AES-256-GCM engine over OpenSSL EVP (contexts made once per SA) and the SA anti-replay window.
#include "qlink/modem/security_association.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <climits>
#include <new>
#include <stdexcept>

namespace qlink::modem {

std::string_view to_string(sa_state s)
{
    switch (s) {
    case sa_state::preactive: return "preactive";
    case sa_state::active: return "active";
    case sa_state::deactivated: return "deactivated";
    case sa_state::destroyed: return "destroyed";
    }
    return "?";
}

namespace {
EVP_CIPHER_CTX* ctx(void* p) { return static_cast<EVP_CIPHER_CTX*>(p); }
}  // namespace

gcm_engine::gcm_engine() : enc_(EVP_CIPHER_CTX_new()), dec_(EVP_CIPHER_CTX_new())
{
    if (enc_ == nullptr || dec_ == nullptr) {
        EVP_CIPHER_CTX_free(ctx(enc_));
        EVP_CIPHER_CTX_free(ctx(dec_));
        throw std::bad_alloc();
    }
}

gcm_engine::~gcm_engine()
{
    // EVP_CIPHER_CTX_free cleanses the key schedule.
    EVP_CIPHER_CTX_free(ctx(enc_));
    EVP_CIPHER_CTX_free(ctx(dec_));
}

void gcm_engine::set_key(std::span<const std::uint8_t, 32> key)
{
    if (EVP_EncryptInit_ex(ctx(enc_), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1 ||
        EVP_DecryptInit_ex(ctx(dec_), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1) {
        clear();
        throw std::runtime_error("gcm_engine: OpenSSL refused the AES-256-GCM key");
    }
    keyed_ = true;
}

void gcm_engine::clear()
{
    EVP_CIPHER_CTX_reset(ctx(enc_));
    EVP_CIPHER_CTX_reset(ctx(dec_));
    keyed_ = false;
}

bool gcm_engine::seal(std::span<const std::uint8_t, sdls_iv_length> iv, std::span<const std::uint8_t> aad,
                      std::span<std::uint8_t> data, bool encrypt, std::span<std::uint8_t, sdls_mac_length> tag)
{
    if (!keyed_ || aad.size() > INT_MAX || data.size() > INT_MAX) {
        return false;
    }
    EVP_CIPHER_CTX* c = ctx(enc_);
    int len = 0;
    if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv.data()) != 1) {
        return false;
    }
    if (!aad.empty() && EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) {
        return false;
    }
    if (!data.empty()) {
        const int ok = encrypt ? EVP_EncryptUpdate(c, data.data(), &len, data.data(), static_cast<int>(data.size()))
                               : EVP_EncryptUpdate(c, nullptr, &len, data.data(), static_cast<int>(data.size()));
        if (ok != 1) {
            return false;
        }
    }
    std::uint8_t fin[16];
    if (EVP_EncryptFinal_ex(c, fin, &len) != 1) {
        return false;
    }
    return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(sdls_mac_length), tag.data()) == 1;
}

bool gcm_engine::open(std::span<const std::uint8_t, sdls_iv_length> iv, std::span<const std::uint8_t> aad,
                      std::span<std::uint8_t> data, bool decrypt, std::span<const std::uint8_t, sdls_mac_length> tag,
                      bool check_tag)
{
    if (!keyed_ || aad.size() > INT_MAX || data.size() > INT_MAX) {
        return false;
    }
    EVP_CIPHER_CTX* c = ctx(dec_);
    int len = 0;
    bool ok = EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, iv.data()) == 1;
    if (ok && !aad.empty()) {
        ok = EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) == 1;
    }
    if (ok && !data.empty()) {
        ok = decrypt ? EVP_DecryptUpdate(c, data.data(), &len, data.data(), static_cast<int>(data.size())) == 1
                     : EVP_DecryptUpdate(c, nullptr, &len, data.data(), static_cast<int>(data.size())) == 1;
    }
    if (ok && check_tag) {
        std::uint8_t t[sdls_mac_length];
        std::copy(tag.begin(), tag.end(), t);
        std::uint8_t fin[16];
        ok = EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(sdls_mac_length), t) == 1 &&
             EVP_DecryptFinal_ex(c, fin, &len) == 1;
    }
    if (!ok && decrypt && !data.empty()) {
        // Nothing of a rejected frame may be read by anyone: not even its would-be plaintext.
        OPENSSL_cleanse(data.data(), data.size());
    }
    return ok;
}

bool security_association::replay_ok(std::uint64_t counter) const
{
    if (!any_received || counter > highest) {
        return true;
    }
    const std::uint64_t d = highest - counter;
    if (d >= window || d >= 64) {
        return false;
    }
    return ((window_bits >> d) & 1u) == 0;
}

void security_association::replay_mark(std::uint64_t counter)
{
    if (!any_received) {
        any_received = true;
        highest = counter;
        window_bits = 1;
        return;
    }
    if (counter > highest) {
        const std::uint64_t shift = counter - highest;
        window_bits = shift >= 64 ? 0 : window_bits << shift;
        window_bits |= 1;
        highest = counter;
        return;
    }
    const std::uint64_t d = highest - counter;
    if (d < 64) {
        window_bits |= std::uint64_t{1} << d;
    }
}

}  // namespace qlink::modem
