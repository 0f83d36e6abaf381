// Link key sources for qlinkd: qkmd's injection socket as a modem::link_key_source, and the
// seeded in-memory pair used by tests.
#pragma once

#include "qlink/keymgmt/key_store.hpp"
#include "qlink/modem/key_source.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace qlink::keymgmt {
class inject_client;
struct inject_reply;
}

namespace qlink::terminal {

/// The SDLS header carries a 32-bit key ID; qkmd names keys by 16-byte UUIDs. The link key ID of
/// a qkmd key is the UUID's first four bytes (big endian). The receiving end needs the whole UUID
/// to ask qkmd KEY_BY_ID, so it resolves link IDs through this directory, which learns UUIDs as
/// they become known (see docs/qlinkd.md, "Key IDs", for what feeds it and what does not yet).
class key_id_directory {
public:
    static std::uint32_t link_id_of(const keymgmt::key_id& uuid);
    void learn(const keymgmt::key_id& uuid);
    std::optional<keymgmt::key_id> resolve(std::uint32_t link_id) const;
    std::size_t size() const;

private:
    mutable std::mutex mu_;
    std::map<std::uint32_t, keymgmt::key_id> ids_;
};

struct key_source_counters {
    std::atomic<std::uint64_t> keys_taken{0};     ///< keys handed to the link (both directions)
    std::atomic<std::uint64_t> errors{0};         ///< qkmd unreachable or refused
    std::atomic<std::uint64_t> unknown_ids{0};    ///< link IDs the directory could not resolve
    std::atomic<std::uint64_t> no_key{0};         ///< NEXT_KEY answered "no key available"
};

/// A link_key_source over qkmd's injection socket. One connection shared by the transmit and
/// the receive side (calls are serialised); reconnects on the next call after a failure.
/// Key bytes from qkmd live in secret_bytes (cleansed) and are copied only into the caller's span.
class inject_key_source final : public modem::link_key_source {
public:
    struct config {
        std::string socket_path;
        /// SPI the requests name (qkmd records it as the owner "link:<spi>").
        std::uint32_t spi = 1;
        /// Called once per failure with a one-line message (never key material).
        std::function<void(const std::string&)> on_error;
    };
    /// Does not connect yet (qkmd may start after qlinkd).
    inject_key_source(config cfg, std::shared_ptr<key_id_directory> directory);
    ~inject_key_source() override;
    inject_key_source(const inject_key_source&) = delete;
    inject_key_source& operator=(const inject_key_source&) = delete;

    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, modem::link_key_length> key) override;
    bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key) override;
    const key_source_counters& counters() const { return c_; }

private:
    keymgmt::inject_client* client();
    /// One request to qkmd (caller holds mu_), reconnecting once after a transport failure.
    keymgmt::inject_reply call(const std::function<keymgmt::inject_reply(keymgmt::inject_client&)>& op);
    void fail(const std::string& msg);
    config cfg_;
    std::shared_ptr<key_id_directory> dir_;
    std::mutex mu_;
    std::unique_ptr<keymgmt::inject_client> client_;
    key_source_counters c_;
};

/// TEST ONLY: both ends derive the same keys from a seed. Key i (0-based) has link ID i + 1 and
/// material HMAC-SHA-256(seed as 8 bytes BE, "qlinkd-memory-key" || i as 8 bytes BE). The ground
/// transmitter uses the odd IDs, the space transmitter the even ones, so no key protects both
/// directions. Not secret: anyone who knows the seed has the keys.
struct memory_key_pair {
    std::unique_ptr<modem::memory_key_source> tx, rx;
};
memory_key_pair make_memory_keys(std::uint64_t seed, std::uint32_t keys_per_direction, bool ground);

/// A link_key_source that forwards to another one and counts what it hands out (for /status).
class counting_key_source final : public modem::link_key_source {
public:
    explicit counting_key_source(modem::link_key_source& inner) : inner_(inner) {}
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, modem::link_key_length> key) override;
    bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key) override;
    std::uint64_t taken() const { return taken_.load(); }
    std::uint64_t failures() const { return failures_.load(); }

private:
    modem::link_key_source& inner_;
    std::atomic<std::uint64_t> taken_{0}, failures_{0};
};

}  // namespace qlink::terminal
