// Test helper shared by the chain tests: random frames through chain_encoder, the channel bits and where
// each frame's coded bits end.
#pragma once

#include "qlink/modem/coding_chain.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace qlink::modem::test {

struct chain_tx {
    std::vector<std::vector<std::uint8_t>> data;  // each frame's data field
    std::vector<std::uint8_t> bits;               // channel bits, the encoder's finish() included
    std::vector<std::size_t> frame_end;           // channel bit after frame k's last coded bit
};

inline chain_tx transmit(const chain_profile& p, std::size_t frames, std::uint64_t seed) {
    chain_encoder enc(p);
    chain_tx t;
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> buf(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    for (std::size_t f = 0; f < frames; ++f) {
        std::vector<std::uint8_t> d(enc.data_bytes());
        for (auto& b : d) b = static_cast<std::uint8_t>(rng());
        const auto r = enc.encode(d, buf);
        EXPECT_TRUE(r.ok) << (r.error ? r.error : "");
        t.bits.insert(t.bits.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bits));
        t.frame_end.push_back(t.bits.size());
        t.data.push_back(std::move(d));
    }
    const auto r = enc.finish(buf);
    EXPECT_TRUE(r.ok);
    t.bits.insert(t.bits.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(r.bits));
    return t;
}

}  // namespace qlink::modem::test
