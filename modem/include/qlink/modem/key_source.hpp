// Where link keys come from, as the modem sees it: a small interface keymgmt or the terminal implements.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <unordered_set>

namespace qlink::modem {

inline constexpr std::size_t link_key_length = 32;  // AES-256

/// A key source hands out 256-bit keys identified by a 32-bit key ID. Both ends of a link hold the
/// same keys under the same IDs (QKD, or the classical fallback keys). Implementations must not
/// hand out the same key ID twice from next_key().
class link_key_source {
public:
    virtual ~link_key_source() = default;
    /// Transmitter: the next unused key. Writes the key into `key` and returns its ID; nullopt when
    /// none is available now.
    virtual std::optional<std::uint32_t> next_key(std::span<std::uint8_t, link_key_length> key) = 0;
    /// Receiver: the key with this ID; false when it is unknown.
    virtual bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, link_key_length> key) = 0;
};

/// In-process key source for tests and simulation: a table of keys handed out in ID order.
/// Keys are wiped when consumed by next_key (transmitter side) or on destruction.
class memory_key_source final : public link_key_source {
public:
    memory_key_source() = default;
    memory_key_source(const memory_key_source&) = delete;
    memory_key_source& operator=(const memory_key_source&) = delete;
    ~memory_key_source() override;
    void add(std::uint32_t key_id, std::span<const std::uint8_t, link_key_length> key);
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, link_key_length> key) override;
    bool key_by_id(std::uint32_t key_id, std::span<std::uint8_t, link_key_length> key) override;
    std::size_t size() const { return keys_.size(); }

private:
    std::map<std::uint32_t, std::array<std::uint8_t, link_key_length>> keys_;
};

}  // namespace qlink::modem
