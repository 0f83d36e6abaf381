// Seeded random garbage into the TLE parser and time parser: errors, never crashes (run under ASan).
#include <cmath>
#include <random>
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/sgp4.hpp"

namespace {

using namespace qlink::sim;

const std::string l1 = "1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9998";
const std::string l2 = "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012";

TEST(robustness, mutated_tles_parse_or_fail_cleanly) {
    std::mt19937_64 rng(2026);
    std::size_t accepted = 0, rejected = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string a = l1, b = l2;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            std::string& s = rng() % 2 ? a : b;
            switch (rng() % 4) {
            case 0: s[rng() % s.size()] = static_cast<char>(rng() % 256); break;
            case 1: s[rng() % s.size()] = "0123456789-+. ."[rng() % 15]; break;
            case 2: s.erase(rng() % s.size(), 1 + rng() % 5); break;
            default: s.insert(rng() % (s.size() + 1), 1, static_cast<char>(rng() % 128)); break;
            }
            if (s.empty()) s = "1";
        }
        // With the checksum off too, so field validation sees the garbage.
        const auto r = parse_tle(a, b, {}, tle_parse_options{.verify_checksum = (i % 2) == 0});
        if (r.ok()) {
            ++accepted;
            // Whatever the parser accepts must propagate without UB (errors are fine).
            const auto sat = create_sgp4_propagator(*r.value);
            for (double t : {-1440.0, 0.0, 1440.0}) {
                const auto s = sat->propagate_minutes(t);
                if (s.ok()) {
                    for (double v : s.r_km) EXPECT_TRUE(std::isfinite(v));
                }
            }
        } else {
            ++rejected;
            EXPECT_EQ(r.error.rfind("line ", 0), 0u) << r.error;
        }
    }
    EXPECT_GT(rejected, 10000u);
    EXPECT_GT(accepted, 100u);  // digit-for-digit edits with the checksum off are often still valid
}

TEST(robustness, random_text_never_crashes_file_or_time_parsers) {
    std::mt19937_64 rng(7);
    for (int i = 0; i < 5000; ++i) {
        std::string s(rng() % 300, '\0');
        for (auto& c : s) c = static_cast<char>(rng() % 256);
        EXPECT_FALSE(parse_tle_text(s).ok());
        std::string err;
        (void)parse_iso8601_utc(s, &err);
        (void)parse_iso8601_utc(s.substr(0, 24), &err);
    }
}

}  // namespace
