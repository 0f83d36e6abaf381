// Deterministic test keys for the key store tests: ID and material derived from (seed, index).
#pragma once

#include "qlink/keymgmt/key_store.hpp"

#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <string>

namespace qlink::keymgmt::test {

inline std::array<std::uint8_t, 32> test_digest(char tag, std::uint64_t seed, std::uint64_t index)
{
    std::array<std::uint8_t, 17> in{};
    in[0] = static_cast<std::uint8_t>(tag);
    for (int i = 0; i < 8; ++i) {
        in[1 + i] = static_cast<std::uint8_t>(seed >> (8 * i));
        in[9 + i] = static_cast<std::uint8_t>(index >> (8 * i));
    }
    std::array<std::uint8_t, 32> out{};
    SHA256(in.data(), in.size(), out.data());
    return out;
}

inline key_id test_key_id(std::uint64_t seed, std::uint64_t index)
{
    const auto d = test_digest('i', seed, index);
    key_id id{};
    for (std::size_t i = 0; i < id.size(); ++i) {
        id[i] = d[i];
    }
    return id;
}

inline std::array<std::uint8_t, 32> test_key_material(std::uint64_t seed, std::uint64_t index)
{
    return test_digest('k', seed, index);
}

inline std::string to_hex(std::span<const std::uint8_t> b)
{
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (auto v : b) {
        s.push_back(hex[v >> 4]);
        s.push_back(hex[v & 0xf]);
    }
    return s;
}

}  // namespace qlink::keymgmt::test
