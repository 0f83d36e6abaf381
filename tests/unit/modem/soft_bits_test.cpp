// Tests the soft-bit convention: sign = bit, saturation, packing order.
#include "qlink/modem/soft_bits.hpp"

#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <random>
#include <vector>

namespace qlink::modem {
namespace {

TEST(soft_bits, sign_is_bit) {
    EXPECT_EQ(hard_bit(1), 0);
    EXPECT_EQ(hard_bit(127), 0);
    EXPECT_EQ(hard_bit(-1), 1);
    EXPECT_EQ(hard_bit(-127), 1);
    EXPECT_EQ(hard_bit(llr_erasure), 0);
    EXPECT_EQ(bit_to_llr(0), 127);
    EXPECT_EQ(bit_to_llr(1), -127);
}

TEST(soft_bits, saturates_and_never_gives_minus_128) {
    EXPECT_EQ(saturate_llr(1000), 127);
    EXPECT_EQ(saturate_llr(-1000), -127);
    EXPECT_EQ(saturate_llr(-128), -127);
    EXPECT_EQ(quantize_llr(-1e9f), -127);
    EXPECT_EQ(quantize_llr(2.6f), 3);
    EXPECT_EQ(quantize_llr(std::numeric_limits<float>::quiet_NaN()), 0);
}

TEST(soft_bits, pack_unpack_msb_first) {
    const std::array<std::uint8_t, 2> bytes{0xA5, 0x3C};
    std::vector<llr_t> soft(16);
    unpack_to_llr(bytes, soft, 90);
    EXPECT_EQ(soft[0], -90);  // 0xA5 = 1010 0101, MSB first
    EXPECT_EQ(soft[1], 90);
    std::array<std::uint8_t, 2> back{};
    pack_hard_decisions(soft, back);
    EXPECT_EQ(back, bytes);

    std::vector<std::uint8_t> bits(16);
    unpack_bits(bytes, bits);
    std::array<std::uint8_t, 2> again{};
    pack_bits(bits, again);
    EXPECT_EQ(again, bytes);
}

// The word-at-a-time packers against the one-bit-at-a-time definition, for every length
// around the 8-bit steps and for every LLR value (erasure and -128 included).
TEST(soft_bits, packers_match_bitwise_definition) {
    std::mt19937 rng(7);
    for (std::size_t n = 0; n <= 77; ++n) {
        std::vector<llr_t> soft(n);
        std::vector<std::uint8_t> bits(n);
        for (std::size_t i = 0; i < n; ++i) {
            soft[i] = static_cast<llr_t>(static_cast<int>(rng() % 256) - 128);
            bits[i] = static_cast<std::uint8_t>(rng());  // only bit 0 counts
        }
        std::vector<std::uint8_t> want_soft((n + 7) / 8 + 2, 0), want_bits(want_soft.size(), 0);
        for (std::size_t i = 0; i < n; ++i) {
            want_soft[i / 8] |= static_cast<std::uint8_t>((soft[i] < 0 ? 1 : 0) << (7 - i % 8));
            want_bits[i / 8] |= static_cast<std::uint8_t>((bits[i] & 1) << (7 - i % 8));
        }
        std::vector<std::uint8_t> got(want_soft.size(), 0xEE);  // stale bytes must be cleared
        pack_hard_decisions(soft, got);
        EXPECT_EQ(got, want_soft) << "n=" << n;
        std::fill(got.begin(), got.end(), std::uint8_t{0xEE});
        pack_bits(bits, got);
        EXPECT_EQ(got, want_bits) << "n=" << n;
    }
}

}  // namespace
}  // namespace qlink::modem
