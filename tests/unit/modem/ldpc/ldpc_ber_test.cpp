// Frame error rate of the int8 decoders against the published CCSDS curves (tests/data/ldpc), fixed seeds.
#include "ldpc_sim.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace qlink::modem {
namespace {

struct ref_point {
    ldpc_code_id code;
    double ebn0_db;
    double fer;
};

std::vector<ref_point> load_reference() {
    const char* dir = std::getenv("QLINK_TEST_DATA");
    std::ifstream in(std::string(dir ? dir : "tests/data") + "/ldpc/ccsds_fer_reference.csv");
    std::vector<ref_point> out;
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.rfind("code,", 0) == 0) continue;
        std::stringstream ss(line);
        std::string name, db, fer;
        std::getline(ss, name, ',');
        std::getline(ss, db, ',');
        std::getline(ss, fer, ',');
        const auto id = parse_ldpc_code(name);
        if (!id) continue;
        out.push_back({*id, std::stod(db), std::stod(fer)});
    }
    return out;
}

// The decoder the curves are compared with: best ISA, 100 iterations with
// early termination (the published curves use long iteration budgets).
std::unique_ptr<ldpc_decoder> curve_decoder(ldpc_code_id id) {
    ldpc_decoder::config cfg;
    cfg.code = id;
    cfg.max_iterations = 100;
    return create_ldpc_decoder(cfg);
}

constexpr double tolerance_db = 0.25;
constexpr std::size_t min_errors = 50;

// Right side: 0.25 dB above the reference Eb/N0 our FER must be at or below
// the reference FER. Runs until 50 frame errors (then FER <= ref means at least
// 50/ref frames were run) or 100/ref frames.
void check_right(const ref_point& p, std::uint64_t seed) {
    auto dec = curve_decoder(p.code);
    test::awgn_source src(p.code, p.ebn0_db + tolerance_db, seed);
    const auto max_frames = static_cast<std::size_t>(100.0 / p.fer);
    const auto c = test::run_int8(*dec, src, min_errors, max_frames);
    std::printf("%s %.2f dB: FER %.2e (%zu/%zu), reference %.0e at %.2f dB\n", std::string(to_string(p.code)).c_str(),
                p.ebn0_db + tolerance_db, c.fer(), c.frame_errors, c.frames, p.fer, p.ebn0_db);
    EXPECT_LE(c.fer(), p.fer) << to_string(p.code) << " at " << p.ebn0_db + tolerance_db << " dB: " << c.frame_errors
                              << "/" << c.frames;
    EXPECT_EQ(c.false_success, 0u);
}

// Left side: 0.25 dB below, FER must be at or above the reference (50 errors
// within 50/ref frames).
void check_left(const ref_point& p, std::uint64_t seed) {
    auto dec = curve_decoder(p.code);
    test::awgn_source src(p.code, p.ebn0_db - tolerance_db, seed);
    const auto max_frames = static_cast<std::size_t>(static_cast<double>(min_errors) / p.fer);
    const auto c = test::run_int8(*dec, src, min_errors, max_frames);
    std::printf("%s %.2f dB: FER %.2e (%zu/%zu), reference %.0e at %.2f dB\n", std::string(to_string(p.code)).c_str(),
                p.ebn0_db - tolerance_db, c.fer(), c.frame_errors, c.frames, p.fer, p.ebn0_db);
    EXPECT_GE(c.frame_errors, min_errors) << to_string(p.code) << " at " << p.ebn0_db - tolerance_db << " dB: "
                                          << c.frame_errors << "/" << c.frames;
}

TEST(ldpc_fer_curve, reference_file_is_complete) {
    const auto ref = load_reference();
    std::size_t c2 = 0, k1024 = 0, k4096 = 0;
    for (const auto& p : ref) {
        c2 += p.code == ldpc_code_id::c2;
        k1024 += p.code == ldpc_code_id::ar4ja_r12_k1024;
        k4096 += p.code == ldpc_code_id::ar4ja_r12_k4096;
    }
    EXPECT_GE(c2, 2u);
    EXPECT_GE(k1024, 2u);
    EXPECT_GE(k4096, 2u);
}

#if !defined(QLINK_LDPC_FER_SLOW)
// Default run: the short curve, AR4JA r=1/2 k=1024 at its highest-FER reference point.
TEST(ldpc_fer_curve, short_curve_ar4ja_1024) {
    for (const auto& p : load_reference())
        if (p.code == ldpc_code_id::ar4ja_r12_k1024 && p.fer >= 0.1) {
            check_right(p, 1);
            check_left(p, 2);
        }
}

#else
// Slow run (LABELS slow): every reference point, both sides.
TEST(ldpc_fer_curve_slow, all_reference_points) {
    std::uint64_t seed = 100;
    for (const auto& p : load_reference()) {
        check_right(p, seed++);
        check_left(p, seed++);
    }
}
#endif

}  // namespace

}  // namespace qlink::modem
