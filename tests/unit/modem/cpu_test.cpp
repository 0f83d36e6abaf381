// Tests the ISA probing and parsing every SIMD factory relies on.
#include "qlink/modem/cpu.hpp"

#include <gtest/gtest.h>

namespace qlink::modem {
namespace {

TEST(cpu, generic_always_supported) {
    EXPECT_TRUE(isa_supported(isa::generic));
    const auto all = supported_isas();
    ASSERT_FALSE(all.empty());
    EXPECT_EQ(all.front(), isa::generic);
    EXPECT_TRUE(isa_supported(best_isa()));
}

TEST(cpu, wider_isa_implies_narrower) {
    if (isa_supported(isa::avx512)) {
        EXPECT_TRUE(isa_supported(isa::avx2));
    }
    if (isa_supported(isa::avx2)) {
        EXPECT_TRUE(isa_supported(isa::sse41));
    }
}

TEST(cpu, parse_round_trip) {
    for (isa level : {isa::generic, isa::sse41, isa::avx2, isa::avx512})
        EXPECT_EQ(parse_isa(to_string(level)), level);
    EXPECT_EQ(parse_isa("auto"), best_isa());
    EXPECT_FALSE(parse_isa("neon").has_value());
    EXPECT_FALSE(parse_isa("").has_value());
}

}  // namespace
}  // namespace qlink::modem
