// In-process key source (tests, simulation): keys by ID, wiped when consumed or destroyed.
#include "qlink/modem/key_source.hpp"

#include <openssl/crypto.h>

#include <algorithm>

namespace qlink::modem {

memory_key_source::~memory_key_source()
{
    for (auto& [id, k] : keys_) {
        OPENSSL_cleanse(k.data(), k.size());
    }
}

void memory_key_source::add(std::uint32_t key_id, std::span<const std::uint8_t, link_key_length> key)
{
    auto& slot = keys_[key_id];
    std::copy(key.begin(), key.end(), slot.begin());
}

std::optional<std::uint32_t> memory_key_source::next_key(std::span<std::uint8_t, link_key_length> key)
{
    if (keys_.empty()) {
        return std::nullopt;
    }
    auto it = keys_.begin();
    const std::uint32_t id = it->first;
    std::copy(it->second.begin(), it->second.end(), key.begin());
    OPENSSL_cleanse(it->second.data(), it->second.size());
    keys_.erase(it);
    return id;
}

bool memory_key_source::key_by_id(std::uint32_t key_id, std::span<std::uint8_t, link_key_length> key)
{
    const auto it = keys_.find(key_id);
    if (it == keys_.end()) {
        return false;
    }
    std::copy(it->second.begin(), it->second.end(), key.begin());
    return true;
}

}  // namespace qlink::modem
