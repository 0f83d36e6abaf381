// Tests for the CCSDS randomizer: sequence against an independent shift register, involution, LLR flips, ISAs.
#include <gtest/gtest.h>

#include <array>
#include <random>
#include <vector>

#include "qlink/modem/randomizer.hpp"

using namespace qlink::modem;

namespace {

// The CCSDS 131.0-B figure: 8-stage Fibonacci register, all ones, output taken from the last stage.
std::vector<std::uint8_t> reference_sequence(std::size_t nbytes) {
    unsigned s = 0xFF;
    std::vector<std::uint8_t> out(nbytes, 0);
    for (std::size_t i = 0; i < nbytes * 8; ++i) {
        const unsigned bit = (s >> 7) & 1;
        out[i / 8] = static_cast<std::uint8_t>(out[i / 8] | (bit << (7 - i % 8)));
        const unsigned fb = ((s >> 0) ^ (s >> 2) ^ (s >> 4) ^ (s >> 7)) & 1;
        s = ((s << 1) | fb) & 0xFF;
    }
    return out;
}

std::vector<isa> isas() { return supported_isas(); }

class randomizer_isa : public ::testing::TestWithParam<isa> {};

}  // namespace

TEST(randomizer, sequence_starts_as_the_standard_says_and_has_period_255) {
    const auto seq = ccsds_randomizer_sequence();
    const std::array<std::uint8_t, 5> head{0xFF, 0x48, 0x0E, 0xC0, 0x9A};
    for (std::size_t i = 0; i < head.size(); ++i) EXPECT_EQ(seq[i], head[i]) << i;
    const auto ref = reference_sequence(255 * 3);
    for (std::size_t i = 0; i < 255; ++i) ASSERT_EQ(seq[i], ref[i]) << i;
    for (std::size_t i = 0; i < 255 * 2; ++i) ASSERT_EQ(ref[i], ref[i + 255]);
    // A maximal-length 8-stage register has 128 ones per 255-bit cycle; 2040 bits hold 8 cycles.
    unsigned ones = 0;
    for (std::size_t i = 0; i < 255; ++i) ones += static_cast<unsigned>(__builtin_popcount(seq[i]));
    EXPECT_EQ(ones, 8u * 128u);
}

TEST_P(randomizer_isa, xors_the_restarted_sequence_and_is_its_own_inverse) {
    std::mt19937_64 rng(3);
    const auto ref = reference_sequence(5000);
    for (std::size_t n : {0u, 1u, 31u, 32u, 33u, 127u, 128u, 255u, 256u, 1115u, 1279u, 4999u}) {
        std::vector<std::uint8_t> d(n);
        for (auto& b : d) b = static_cast<std::uint8_t>(rng());
        auto r = d;
        ccsds_randomize(r, GetParam());
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(r[i], d[i] ^ ref[i]) << "n=" << n << " i=" << i;
        ccsds_randomize(r, GetParam());
        ASSERT_EQ(r, d);
    }
}

TEST_P(randomizer_isa, llr_flips_exactly_where_the_sequence_bit_is_one) {
    std::mt19937_64 rng(4);
    const auto ref = reference_sequence(700);
    for (std::size_t n : {0u, 5u, 32u, 100u, 128u, 2040u, 2041u, 5555u}) {
        std::vector<llr_t> s(n);
        for (auto& v : s) v = static_cast<llr_t>(static_cast<int>(rng() % 255) - 127);
        if (n > 3) s[3] = -128;  // illegal input must not wrap
        auto r = s;
        ccsds_randomize_llr(r, GetParam());
        for (std::size_t i = 0; i < n; ++i) {
            const int bit = (ref[i / 8] >> (7 - i % 8)) & 1;
            const int v = s[i] == -128 ? -127 : s[i];
            ASSERT_EQ(r[i], bit ? -v : v) << "n=" << n << " i=" << i;
        }
    }
}

TEST_P(randomizer_isa, llr_and_byte_versions_agree_on_hard_decisions) {
    std::mt19937_64 rng(6);
    std::vector<std::uint8_t> d(1115);
    for (auto& b : d) b = static_cast<std::uint8_t>(rng());
    std::vector<llr_t> soft(d.size() * 8);
    unpack_to_llr(d, soft, 90);
    ccsds_randomize(d, GetParam());
    ccsds_randomize_llr(soft, GetParam());
    std::vector<std::uint8_t> back(d.size());
    pack_hard_decisions(soft, back);
    EXPECT_EQ(back, d);
}

TEST_P(randomizer_isa, equals_generic_on_random_lengths) {
    std::mt19937_64 rng(8);
    for (int t = 0; t < 200; ++t) {
        std::vector<std::uint8_t> d(rng() % 3000);
        for (auto& b : d) b = static_cast<std::uint8_t>(rng());
        auto a = d, g = d;
        ccsds_randomize(a, GetParam());
        ccsds_randomize(g, isa::generic);
        ASSERT_EQ(a, g);
        std::vector<llr_t> s(rng() % 9000);
        for (auto& v : s) v = static_cast<llr_t>(rng());
        auto sa = s, sg = s;
        ccsds_randomize_llr(sa, GetParam());
        ccsds_randomize_llr(sg, isa::generic);
        ASSERT_EQ(sa, sg);
    }
}

INSTANTIATE_TEST_SUITE_P(all, randomizer_isa, ::testing::ValuesIn(isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });
