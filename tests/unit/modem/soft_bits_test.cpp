// Tests the soft-bit convention: sign = bit, saturation, packing order.
#include "qlink/modem/soft_bits.hpp"

#include <gtest/gtest.h>

#include <array>
#include <limits>
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

}  // namespace
}  // namespace qlink::modem
