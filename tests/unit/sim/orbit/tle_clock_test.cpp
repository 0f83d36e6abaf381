// Tests TLE parsing errors (line, column, field) and the clocks and UTC text conversion.
#include <string>

#include <gtest/gtest.h>

#include "qlink/sim/tle.hpp"

namespace {

using namespace qlink::sim;

const std::string l1 = "1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9998";
const std::string l2 = "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012";

TEST(tle, parses_fields) {
    const auto r = parse_tle(l1, l2, "QLINKSAT-1");
    ASSERT_TRUE(r.ok()) << r.error;
    const tle& t = *r.value;
    EXPECT_EQ(t.catalog_number, 99901);
    EXPECT_EQ(t.epoch_year, 2026);
    EXPECT_DOUBLE_EQ(t.epoch_day, 332.5);
    EXPECT_DOUBLE_EQ(t.bstar, 0.58e-4);
    EXPECT_DOUBLE_EQ(t.eccentricity, 0.0011);
    EXPECT_DOUBLE_EQ(t.mean_motion_rev_day, 15.21);
    EXPECT_EQ(t.rev_number, 5001);
    EXPECT_EQ(format_iso8601_utc(t.epoch()), "2026-11-28T12:00:00.000Z");
    // Negative exponent forms and signs.
    const auto v = parse_tle("1 04632U 70093B   04031.91070959 -.00000084  00000-0  10000-3 0  9955",
                             "2 04632  11.4628 273.1101 1450506 207.6000 143.9350  1.20231981 44145");
    ASSERT_TRUE(v.ok()) << v.error;
    EXPECT_DOUBLE_EQ(v.value->mean_motion_dot, -0.00000084);
    EXPECT_DOUBLE_EQ(v.value->bstar, 1e-4);
    EXPECT_EQ(v.value->epoch_year, 2004);
}

void expect_error(const std::string& a, const std::string& b, const std::string& fragment) {
    const auto r = parse_tle(a, b);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find(fragment), std::string::npos) << "got: " << r.error << "\nwanted: " << fragment;
}

TEST(tle, errors_name_line_column_and_field) {
    std::string bad = l1;
    bad[68] = '3';
    expect_error(bad, l2, "line 1, column 69 (checksum)");
    bad = l2;
    bad[68] = '0';
    expect_error(l1, bad, "line 2, column 69 (checksum)");
    expect_error(l1.substr(0, 40), l2, "line 1: 40 characters");
    expect_error(l2, l1, "line 1, column 1 (line number)");
    // Garbage in a field, with the checksum fixed so the field check is what fires.
    auto fix = [](std::string s) {
        s[68] = static_cast<char>('0' + tle_checksum(s));
        return s;
    };
    bad = l2;
    bad.replace(8, 8, " 97.4x00");
    expect_error(l1, fix(bad), "line 2, columns 9-16 (inclination)");
    bad = l2;
    bad.replace(8, 8, "197.4000");
    expect_error(l1, fix(bad), "[0, 180]");
    bad = l2;
    bad.replace(26, 7, "0.01100");
    expect_error(l1, fix(bad), "line 2, columns 27-33 (eccentricity)");
    bad = l2;
    bad.replace(2, 5, "99902");
    expect_error(l1, fix(bad), "differs from line 1");
    bad = l1;
    bad.replace(53, 8, " 58000x4");
    expect_error(fix(bad), l2, "line 1, columns 54-61 (BSTAR drag term)");
    bad = l1;
    bad.replace(20, 12, "400.50000000");
    expect_error(fix(bad), l2, "epoch day of year");
    expect_error(l1 + " extra", l2, "column 70");
    expect_error(std::string(69, '\x01'), l2, "line 1");
    expect_error("", "", "line 1");
}

TEST(tle, text_with_names_comments_and_errors) {
    const auto f = parse_tle_text("# comment\nSAT A\n" + l1 + "\n" + l2 + "\n\n" + l1 + "\r\n" + l2 + "\r\n");
    ASSERT_TRUE(f.ok()) << f.error;
    ASSERT_EQ(f.sets.size(), 2u);
    EXPECT_EQ(f.sets[0].name, "SAT A");
    EXPECT_EQ(f.sets[1].name, "");
    const auto empty = parse_tle_text("");
    EXPECT_FALSE(empty.ok());
    EXPECT_NE(empty.error.find("no element set"), std::string::npos);
    const auto png = parse_tle_text("\x89PNG\r\n\x1a\n garbage");
    EXPECT_FALSE(png.ok());
    const auto one = parse_tle_text("NAME\n" + l1 + "\n");
    EXPECT_FALSE(one.ok());
    EXPECT_NE(one.error.find("file line"), std::string::npos);
}

TEST(clock, sim_clock_moves_only_forward_when_told) {
    const auto t0 = *parse_iso8601_utc("2026-11-28T12:00:00Z");
    sim_clock c(t0);
    EXPECT_EQ(c.now(), t0);
    EXPECT_TRUE(c.advance(std::chrono::minutes{10}));
    EXPECT_EQ(c.now(), t0 + std::chrono::minutes{10});
    EXPECT_FALSE(c.advance(-std::chrono::seconds{1}));
    EXPECT_FALSE(c.set(t0));
    EXPECT_EQ(c.now(), t0 + std::chrono::minutes{10});
    EXPECT_TRUE(c.set(t0 + std::chrono::hours{1}));
    const auto rc = create_real_clock();
    EXPECT_GT(rc->now(), t0 - std::chrono::hours{24 * 365 * 10});
}

TEST(clock, iso8601_parse_format_and_errors) {
    const auto t = parse_iso8601_utc("2026-02-28T23:59:58.25Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(format_iso8601_utc(*t), "2026-02-28T23:59:58.250Z");
    EXPECT_NEAR(julian_date(*parse_iso8601_utc("2000-01-01T12:00:00Z")), 2451545.0, 1e-9);
    EXPECT_TRUE(parse_iso8601_utc("2026-11-28"));
    std::string err;
    EXPECT_FALSE(parse_iso8601_utc("2026-02-30T00:00:00Z", &err));
    EXPECT_NE(err.find("no such date"), std::string::npos);
    EXPECT_FALSE(parse_iso8601_utc("2026-11-28T25:00:00Z", &err));
    EXPECT_FALSE(parse_iso8601_utc("2026-11-28T12:00:00+02:00", &err));
    EXPECT_NE(err.find("UTC"), std::string::npos);
    EXPECT_FALSE(parse_iso8601_utc("yesterday", &err));
    EXPECT_FALSE(parse_iso8601_utc("", &err));
    EXPECT_FALSE(parse_iso8601_utc("1900-01-01", &err));
}

}  // namespace
