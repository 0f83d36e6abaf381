// Tests the chain's interleaved-codeblock RS syndrome check: every ISA bit for bit against the
// generic kernel, and its verdict against rs_codec::decode (clean <=> nothing to correct).
#include "chain/rs_check.hpp"
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace qlink::modem {
namespace {

struct code_case {
    unsigned e, il, fill;
    rs_basis basis;
};

const code_case cases[] = {
    {16, 4, 0, rs_basis::dual},  {16, 1, 0, rs_basis::dual},         {8, 5, 0, rs_basis::dual},
    {16, 8, 0, rs_basis::dual},  {16, 3, 33, rs_basis::conventional}, {8, 2, 100, rs_basis::dual},
    {16, 5, 0, rs_basis::conventional},
};

rs_config config_of(const code_case& c) {
    rs_config r;
    r.e = c.e;
    r.interleave = c.il;
    r.virtual_fill = c.fill;
    r.basis = c.basis;
    return r;
}

class rs_check : public ::testing::TestWithParam<isa> {};

TEST_P(rs_check, syndromes_match_generic_and_verdict_matches_rs_codec) {
    std::mt19937_64 rng(31);
    for (const auto& cc : cases) {
        const rs_config cfg = config_of(cc);
        const auto codec = create_rs_codec(cfg);
        const detail::rs_block_check fast(cfg, GetParam());
        const detail::rs_block_check ref(cfg, isa::generic);
        ASSERT_EQ(fast.codeblock_size(), codec->codeblock_size());
        std::vector<std::uint8_t> msg(codec->message_size()), block(codec->codeblock_size());
        std::vector<std::uint8_t> sf(cc.il * 32), sr(cc.il * 32);
        for (int trial = 0; trial < 40; ++trial) {
            for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
            ASSERT_TRUE(codec->encode(msg, block));
            // 0: clean; then a few errors; then many (often uncorrectable); then random garbage.
            const int kind = trial % 4;
            const unsigned errors = kind == 0 ? 0 : kind == 1 ? 1 + rng() % 6 : 20 + rng() % 60;
            for (unsigned k = 0; k < errors; ++k) block[rng() % block.size()] ^= static_cast<std::uint8_t>(1 + rng() % 255);
            if (kind == 3)
                for (auto& b : block) b = static_cast<std::uint8_t>(rng());
            ASSERT_TRUE(fast.syndromes(block, sf));
            ASSERT_TRUE(ref.syndromes(block, sr));
            ASSERT_EQ(sf, sr) << "e " << cc.e << " I " << cc.il << " trial " << trial;
            auto copy = block;
            const auto dr = codec->decode(copy);
            const bool codec_clean = dr.ok && dr.corrected == 0;
            EXPECT_EQ(fast.clean(block), codec_clean) << "e " << cc.e << " I " << cc.il << " trial " << trial;
            if (kind == 0) {
                EXPECT_TRUE(fast.clean(block));
            }
        }
    }
}

TEST_P(rs_check, any_single_symbol_error_is_seen) {
    const rs_config cfg = config_of(cases[0]);
    const auto codec = create_rs_codec(cfg);
    const detail::rs_block_check fast(cfg, GetParam());
    std::vector<std::uint8_t> msg(codec->message_size()), block(codec->codeblock_size());
    std::mt19937_64 rng(32);
    for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
    ASSERT_TRUE(codec->encode(msg, block));
    ASSERT_TRUE(fast.clean(block));
    // Every symbol on the SIMD kernel; every 7th on the (slow, scalar Horner) generic one.
    const std::size_t step = GetParam() >= isa::avx2 ? 1 : 7;
    for (std::size_t k = 0; k < block.size(); k += step) {
        const auto e = static_cast<std::uint8_t>(1u << (k % 8));
        block[k] ^= e;
        ASSERT_FALSE(fast.clean(block)) << "symbol " << k;
        block[k] ^= e;
    }
}

TEST_P(rs_check, wrong_sizes_and_bad_configuration) {
    const rs_config cfg = config_of(cases[0]);
    const detail::rs_block_check fast(cfg, GetParam());
    std::vector<std::uint8_t> block(fast.codeblock_size() - 1), s(4 * 32);
    EXPECT_FALSE(fast.clean(block));
    EXPECT_FALSE(fast.syndromes(block, s));
    block.resize(fast.codeblock_size());
    EXPECT_FALSE(fast.syndromes(block, std::span(s).first(10)));
    rs_config bad = cfg;
    bad.e = 10;
    EXPECT_THROW(detail::rs_block_check(bad, GetParam()), std::invalid_argument);
    bad = cfg;
    bad.interleave = 9;
    EXPECT_THROW(detail::rs_block_check(bad, GetParam()), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(isas, rs_check, ::testing::ValuesIn(supported_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });

}  // namespace
}  // namespace qlink::modem
