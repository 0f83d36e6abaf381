// Link key sources: qkmd injection-socket adapter (UUID <-> 32-bit link key ID) and seeded test keys.
#include "qlink/terminal/link_keys.hpp"

#include "qlink/keymgmt/inject.hpp"
#include "qlink/terminal/fallback_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <functional>
#include <cstring>
#include <stdexcept>

namespace qlink::terminal {

std::uint32_t key_id_directory::link_id_of(const keymgmt::key_id& uuid)
{
    return (std::uint32_t{uuid[0]} << 24) | (std::uint32_t{uuid[1]} << 16) | (std::uint32_t{uuid[2]} << 8) | uuid[3];
}

void key_id_directory::learn(const keymgmt::key_id& uuid)
{
    std::lock_guard lk(mu_);
    ids_[link_id_of(uuid)] = uuid;
}

std::optional<keymgmt::key_id> key_id_directory::resolve(std::uint32_t link_id) const
{
    std::lock_guard lk(mu_);
    const auto it = ids_.find(link_id);
    if (it == ids_.end()) return std::nullopt;
    return it->second;
}

std::size_t key_id_directory::size() const
{
    std::lock_guard lk(mu_);
    return ids_.size();
}

inject_key_source::inject_key_source(config cfg, std::shared_ptr<key_id_directory> directory)
    : cfg_(std::move(cfg)), dir_(std::move(directory))
{
    if (cfg_.socket_path.empty()) throw std::invalid_argument("inject_key_source: socket path is empty");
    if (!dir_) dir_ = std::make_shared<key_id_directory>();
}

inject_key_source::~inject_key_source() = default;

keymgmt::inject_client* inject_key_source::client()
{
    if (!client_) {
        try {
            client_ = std::make_unique<keymgmt::inject_client>(cfg_.socket_path);
        } catch (const std::exception& e) {
            fail(std::string("qkmd injection socket: ") + e.what());
            return nullptr;
        }
    }
    return client_.get();
}

keymgmt::inject_reply inject_key_source::call(const std::function<keymgmt::inject_reply(keymgmt::inject_client&)>& op)
{
    // qkmd closes connections idle longer than its request timeout (5 s by default): between
    // rotations that is the normal case, so one transport failure means reconnect and ask again.
    // Asking again is safe: a request that did reach qkmd either consumed its key (a NEXT_KEY
    // key is then never used: lost, not reused) or is refused as already served.
    auto* cl = client();
    if (cl == nullptr) {
        keymgmt::inject_reply none;
        none.message = "not connected to qkmd";
        return none;
    }
    auto r = op(*cl);
    if (r.status == keymgmt::inject_status::internal_error) {
        client_.reset();
        if (auto* again = client()) r = op(*again);
    }
    return r;
}

void inject_key_source::fail(const std::string& msg)
{
    ++c_.errors;
    if (cfg_.on_error) cfg_.on_error(msg);
}

std::optional<std::uint32_t> inject_key_source::next_key(std::span<std::uint8_t, modem::link_key_length> key)
{
    std::lock_guard lk(mu_);
    auto* cl = client();
    if (cl == nullptr) return std::nullopt;
    // A key whose 32-bit link ID collides with one already used cannot be named on the link; it
    // is consumed at qkmd and skipped (probability ~ n^2 / 2^33 for n keys in a pass).
    for (int attempt = 0; attempt < 4; ++attempt) {
        auto r = call([&](keymgmt::inject_client& c) { return c.next_key(cfg_.spi, static_cast<std::uint16_t>(modem::link_key_length)); });
        if (r.status == keymgmt::inject_status::no_key) {
            ++c_.no_key;
            return std::nullopt;
        }
        if (!r.ok()) {
            if (r.status == keymgmt::inject_status::internal_error) client_.reset();  // transport errors land here
            fail("qkmd NEXT_KEY failed: " + r.message);
            return std::nullopt;
        }
        if (r.key.size() != modem::link_key_length) {
            fail("qkmd NEXT_KEY returned " + std::to_string(r.key.size()) + " key bytes, need 32");
            return std::nullopt;
        }
        const std::uint32_t id = key_id_directory::link_id_of(r.id);
        if (is_fallback_key_id(id)) {
            // The top 1/4096 of the link ID space names fallback (X25519) keys (fallback_keys.hpp):
            // a QKD key there would be ambiguous on the link, so it is consumed and skipped.
            fail("qkmd key " + keymgmt::key_id_to_string(r.id) + " has a link ID in the fallback range; skipped");
            continue;
        }
        if (dir_->resolve(id).has_value() || id == 0) {
            fail("qkmd key " + keymgmt::key_id_to_string(r.id) + " has a link ID already in use; skipped");
            continue;
        }
        dir_->learn(r.id);
        std::memcpy(key.data(), r.key.span().data(), modem::link_key_length);
        ++c_.keys_taken;
        return id;
    }
    return std::nullopt;
}

bool inject_key_source::key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key)
{
    // Keys this end took itself are named by their full UUID; a key the far end announced is
    // known here only by the 32-bit link ID the SDLS header carries, which qkmd resolves.
    if (is_fallback_key_id(key_id)) return false;  // never a QKD key (see next_key); qkmd is not asked
    const auto uuid = dir_->resolve(key_id);
    std::lock_guard lk(mu_);
    auto* cl = client();
    if (cl == nullptr) return false;
    constexpr auto bytes = static_cast<std::uint16_t>(modem::link_key_length);
    // LEASE: if this daemon restarted, qkmd served it the key in use before; it may serve it again
    // to the same uid for the same SPI (decryption keys only; docs/keymgmt.md, "Leases").
    auto r = call([&](keymgmt::inject_client& c) {
        return uuid ? c.key_by_id(cfg_.spi, *uuid, bytes, {}, true) : c.key_by_link_id(cfg_.spi, key_id, bytes, {}, true);
    });
    if (!r.ok()) {
        if (r.status == keymgmt::inject_status::internal_error) client_.reset();
        if (r.status == keymgmt::inject_status::not_found) ++c_.unknown_ids;
        fail("qkmd key for link key ID " + std::to_string(key_id) + " refused: " + r.message);
        return false;
    }
    if (r.key.size() != modem::link_key_length || (uuid && r.id != *uuid) || key_id_directory::link_id_of(r.id) != key_id) {
        fail("qkmd returned a different key or length for link key ID " + std::to_string(key_id));
        return false;
    }
    if (!uuid) dir_->learn(r.id);
    std::memcpy(key.data(), r.key.span().data(), modem::link_key_length);
    ++c_.keys_taken;
    return true;
}

namespace {

void derive_memory_key(std::uint64_t seed, std::uint64_t index, std::array<std::uint8_t, 32>& out)
{
    std::uint8_t k[8], msg[17 + 8];
    for (int i = 0; i < 8; ++i) k[i] = static_cast<std::uint8_t>(seed >> (56 - 8 * i));
    std::memcpy(msg, "qlinkd-memory-key", 17);
    for (int i = 0; i < 8; ++i) msg[17 + i] = static_cast<std::uint8_t>(index >> (56 - 8 * i));
    unsigned len = 0;
    if (HMAC(EVP_sha256(), k, sizeof k, msg, sizeof msg, out.data(), &len) == nullptr || len != 32) {
        throw std::runtime_error("HMAC-SHA-256 failed deriving a test key");
    }
}

}  // namespace

memory_key_pair make_memory_keys(std::uint64_t seed, std::uint32_t keys_per_direction, bool ground)
{
    memory_key_pair p{std::make_unique<modem::memory_key_source>(), std::make_unique<modem::memory_key_source>()};
    std::array<std::uint8_t, 32> k{};
    for (std::uint64_t n = 0; n < keys_per_direction; ++n) {
        for (std::uint64_t parity = 0; parity < 2; ++parity) {
            const std::uint64_t index = 2 * n + parity;  // link ID index + 1: odd IDs at even indices
            derive_memory_key(seed, index, k);
            const bool odd_id = parity == 0;
            auto& dst = (odd_id == ground) ? p.tx : p.rx;
            dst->add(static_cast<std::uint32_t>(index + 1), std::span<const std::uint8_t, 32>(k));
        }
    }
    OPENSSL_cleanse(k.data(), k.size());
    return p;
}

std::optional<std::uint32_t> counting_key_source::next_key(std::span<std::uint8_t, modem::link_key_length> key)
{
    auto id = inner_.next_key(key);
    if (id) {
        ++taken_;
    } else {
        ++failures_;
    }
    return id;
}

bool counting_key_source::key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key)
{
    const bool ok = inner_.key_by_id(key_id, key);
    if (ok) {
        ++taken_;
    } else {
        ++failures_;
    }
    return ok;
}

}  // namespace qlink::terminal
