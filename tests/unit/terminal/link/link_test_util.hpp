// Shared by the link engine tests: deterministic link keys, the same keys at both ends of a direction,
// and stream content a receiver can check byte by byte without keeping a copy.
#pragma once

#include "qlink/modem/key_source.hpp"

#include <array>
#include <cstdint>
#include <random>

namespace qlink::test {

inline std::array<std::uint8_t, 32> link_key_bytes(std::uint32_t id)
{
    std::array<std::uint8_t, 32> k{};
    std::mt19937_64 g(id * 7919u + 13u);
    for (auto& b : k) {
        b = static_cast<std::uint8_t>(g());
    }
    return k;
}

/// The same keys under the same IDs at both ends of one direction (Source: a link_key_source with
/// add(id, key), e.g. modem::memory_key_source).
template <class Source>
struct link_key_pair {
    Source tx, rx;
    void add(std::uint32_t first, std::uint32_t n)
    {
        for (std::uint32_t id = first; id < first + n; ++id) {
            const auto k = link_key_bytes(id);
            tx.add(id, k);
            rx.add(id, k);
        }
    }
};

/// Byte `off` of the stream tagged `tag` (0..255): a lost or repeated byte shows as a mismatch from
/// there on.
inline std::uint8_t stream_byte(std::uint64_t tag, std::uint64_t off)
{
    std::uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (tag << 56);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return static_cast<std::uint8_t>(x >> 32);
}

}  // namespace qlink::test
