// Tests for the CCSDS CRC-16/CRC-32: check values, Boost.CRC as peer, incremental use, kernels bit for bit.
#include <gtest/gtest.h>

#include <boost/crc.hpp>
#include <cstdint>
#include <random>
#include <string_view>
#include <vector>

#include "qlink/modem/crc.hpp"

using namespace qlink::modem;

namespace {

std::span<const std::uint8_t> bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Bit-serial definition, independent of the table and folding code.
template <unsigned W>
std::uint32_t crc_bitwise(std::uint32_t poly, std::uint32_t init, std::span<const std::uint8_t> d) {
    const std::uint64_t top = std::uint64_t{1} << (W - 1), mask = (top << 1) - 1;
    std::uint64_t c = init;
    for (std::uint8_t b : d)
        for (int k = 7; k >= 0; --k) {
            const bool fb = ((c & top) != 0) != (((b >> k) & 1) != 0);
            c = (c << 1) & mask;
            if (fb) c ^= poly;
        }
    return static_cast<std::uint32_t>(c);
}

std::vector<std::uint8_t> random_bytes(std::mt19937_64& rng, std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

class crc_kernels : public ::testing::TestWithParam<crc_kernel> {};

}  // namespace

TEST(crc, check_values) {
    EXPECT_EQ(crc16_ccsds(bytes("123456789")), 0x29B1);
    EXPECT_EQ(crc32_ccsds(bytes("123456789")), 0x4FD94EA8u);
    // A TC frame header + data with a published CCSDS FECF.
    const std::vector<std::uint8_t> frame{0x06, 0x00, 0x0c, 0xf0, 0x00, 0x04, 0x00, 0x55,
                                          0x88, 0x73, 0xc9, 0x00, 0x00, 0x05, 0x21};
    EXPECT_EQ(crc16_ccsds(frame), 0x75FB);
    // The Linux genwqe driver documents the same CRC-32 (0x20044009, preset all ones): 01 02 03 04.
    const std::vector<std::uint8_t> genwqe{0x01, 0x02, 0x03, 0x04};
    EXPECT_EQ(crc32_ccsds(genwqe), 0xF33CB7D3u);
    EXPECT_EQ(crc16_ccsds({}), 0xFFFF);
    EXPECT_EQ(crc32_ccsds({}), 0xFFFFFFFFu);
}

TEST(crc, appended_fecf_gives_zero_remainder) {
    // With no final xor, running the CRC over the frame plus its big-endian FECF leaves 0.
    std::mt19937_64 rng(7);
    auto f = random_bytes(rng, 1115);
    const std::uint16_t c16 = crc16_ccsds(f);
    auto g = f;
    g.push_back(static_cast<std::uint8_t>(c16 >> 8));
    g.push_back(static_cast<std::uint8_t>(c16));
    EXPECT_EQ(crc16_ccsds(g), 0);
    const std::uint32_t c32 = crc32_ccsds(f);
    for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<std::uint8_t>(c32 >> s));
    EXPECT_EQ(crc32_ccsds(f), 0u);
}

TEST(crc, bit_granular_form_matches_bit_serial_definition) {
    // CCSDS 142.0 information blocks are k = 5006, 7526 or 10046 bits long.
    std::mt19937_64 rng(12);
    const auto d = random_bytes(rng, 1300);
    for (std::size_t nbits : {0u, 1u, 7u, 8u, 9u, 5006u, 7526u, 10046u, 10400u}) {
        // The bit-serial reference over the first nbits bits, via a bit-per-byte expansion.
        std::uint64_t c16 = 0xFFFF, c32 = 0xFFFFFFFF;
        for (std::size_t i = 0; i < nbits; ++i) {
            const bool in = (d[i / 8] >> (7 - i % 8)) & 1;
            const bool f16 = ((c16 >> 15) & 1) != in, f32 = ((c32 >> 31) & 1) != in;
            c16 = ((c16 << 1) & 0xFFFF) ^ (f16 ? 0x1021 : 0);
            c32 = ((c32 << 1) & 0xFFFFFFFF) ^ (f32 ? 0x20044009 : 0);
        }
        EXPECT_EQ(crc16_ccsds_update_bits(crc16_ccsds_init, d, nbits), c16) << nbits;
        EXPECT_EQ(crc32_ccsds_update_bits(crc32_ccsds_init, d, nbits), c32) << nbits;
    }
    EXPECT_EQ(crc32_ccsds_update_bits(crc32_ccsds_init, d, d.size() * 8), crc32_ccsds(d));
    EXPECT_FALSE(crc32_ccsds_update_bits(crc32_ccsds_init, d, d.size() * 8 + 1).has_value());
    EXPECT_FALSE(crc16_ccsds_update_bits(crc16_ccsds_init, {}, 1).has_value());
}

TEST(crc, parse_kernel_names) {
    EXPECT_EQ(parse_crc_kernel("generic"), crc_kernel::generic);
    EXPECT_EQ(parse_crc_kernel("auto"), best_crc_kernel());
    EXPECT_FALSE(parse_crc_kernel("avx9").has_value());
    EXPECT_FALSE(parse_crc_kernel("").has_value());
}

TEST_P(crc_kernels, matches_boost_and_bitwise_reference) {
    std::mt19937_64 rng(2026);
    boost::crc_optimal<16, 0x1021, 0xFFFF, 0, false, false> b16;
    boost::crc_optimal<32, 0x20044009, 0xFFFFFFFF, 0, false, false> b32;
    for (std::size_t n = 0; n < 600; n += (n < 140 ? 1 : 37)) {
        const auto d = random_bytes(rng, n);
        b16.reset();
        b16.process_bytes(d.data(), d.size());
        b32.reset();
        b32.process_bytes(d.data(), d.size());
        ASSERT_EQ(crc16_ccsds_update(crc16_ccsds_init, d, GetParam()), b16.checksum()) << "n=" << n;
        ASSERT_EQ(crc32_ccsds_update(crc32_ccsds_init, d, GetParam()), b32.checksum()) << "n=" << n;
        ASSERT_EQ(crc16_ccsds_update(crc16_ccsds_init, d, GetParam()), crc_bitwise<16>(0x1021, 0xFFFF, d));
        ASSERT_EQ(crc32_ccsds_update(crc32_ccsds_init, d, GetParam()),
                  crc_bitwise<32>(0x20044009, 0xFFFFFFFF, d));
    }
}

TEST_P(crc_kernels, equals_generic_for_any_state_length_and_alignment) {
    std::mt19937_64 rng(99);
    const auto big = random_bytes(rng, 70000);
    for (int trial = 0; trial < 400; ++trial) {
        const std::size_t off = rng() % 64;
        const std::size_t n = trial < 300 ? rng() % 1200 : rng() % (big.size() - 64);
        const std::span<const std::uint8_t> d(big.data() + off, n);
        const auto s16 = static_cast<std::uint16_t>(rng());
        const auto s32 = static_cast<std::uint32_t>(rng());
        ASSERT_EQ(crc16_ccsds_update(s16, d, GetParam()), crc16_ccsds_update(s16, d, crc_kernel::generic));
        ASSERT_EQ(crc32_ccsds_update(s32, d, GetParam()), crc32_ccsds_update(s32, d, crc_kernel::generic));
    }
}

TEST_P(crc_kernels, incremental_equals_one_shot) {
    std::mt19937_64 rng(5);
    const auto d = random_bytes(rng, 4000);
    const std::span<const std::uint8_t> all(d);
    for (std::size_t cut : {0u, 1u, 15u, 16u, 17u, 63u, 64u, 65u, 1000u, 3999u, 4000u}) {
        EXPECT_EQ(crc16_ccsds_update(crc16_ccsds_update(crc16_ccsds_init, all.first(cut), GetParam()),
                                     all.subspan(cut), GetParam()),
                  crc16_ccsds(all));
        EXPECT_EQ(crc32_ccsds_update(crc32_ccsds_update(crc32_ccsds_init, all.first(cut), GetParam()),
                                     all.subspan(cut), GetParam()),
                  crc32_ccsds(all));
    }
}

TEST_P(crc_kernels, detects_every_single_bit_error) {
    std::mt19937_64 rng(11);
    auto d = random_bytes(rng, 300);
    const auto c16 = crc16_ccsds_update(crc16_ccsds_init, d, GetParam());
    const auto c32 = crc32_ccsds_update(crc32_ccsds_init, d, GetParam());
    for (std::size_t bit = 0; bit < d.size() * 8; ++bit) {
        d[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
        ASSERT_NE(crc16_ccsds_update(crc16_ccsds_init, d, GetParam()), c16);
        ASSERT_NE(crc32_ccsds_update(crc32_ccsds_init, d, GetParam()), c32);
        d[bit / 8] ^= static_cast<std::uint8_t>(0x80 >> (bit % 8));
    }
}

INSTANTIATE_TEST_SUITE_P(all, crc_kernels, ::testing::ValuesIn(supported_crc_kernels()),
                         [](const auto& p) { return std::string(to_string(p.param)); });
