// End to end: a shortened pass through the real qlink-sim, qkmd alice/bob and qlinkd space/ground on
// loopback, link keys from QKD — file intact, keys identical at both ends and never reused, a key
// rotation, a cloud during the transfer and every fade repaired by ARQ, report written with every plot.
#include "pass_e2e_util.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace qlink::e2e {
namespace {

TEST(e2e_pass, shortened_pass_delivers_the_file_with_fresh_qkd_keys) {
    if (const auto m = missing_program(); !m.empty()) GTEST_SKIP() << m << " is not built";
    temp_dir d;
    terminal::demo_config c;
    c.out_dir = d.path;
    c.bin_dir = build_dir();
    // The last part of the pass: high elevation to LOS, with the cloud/fade model of the whole pass.
    c.start = start_before_los(450);  // enough detections for one 2M-detection QKD block before the end
    ASSERT_FALSE(c.start.empty());
    c.speed = 8;
    c.seed = 3;
    c.rotate_every_s = 15;
    c.generated_bytes = 64 << 10;
    c.qkd_block_detections = 1000000;  // the demo's default: first keys ~150 s after the start here
    c.progress = false;
    c.wall_timeout_s = 180;
    std::ostringstream out, err;
    const auto r = terminal::run_demo(c, out, err);
    const std::string ctx = "\n--- demo output ---\n" + out.str() + err.str() + "\n(work dir " + d.path.string() + ")";

    EXPECT_TRUE(r.file_intact) << r.failure << ctx;
    EXPECT_EQ(r.bytes_delivered, r.file_bytes) << ctx;
    EXPECT_TRUE(r.keys_agree) << ctx;
    EXPECT_TRUE(r.keys_unique) << ctx;
    EXPECT_GE(r.rotations, 1u) << ctx;
    EXPECT_GE(r.fades, 1u) << ctx;                 // the scripted cloud (cloud_s) hit data in flight
    EXPECT_EQ(r.fades_recovered, r.fades) << ctx;  // every fade that hit the transfer was repaired
    EXPECT_TRUE(r.ok) << r.failure << ctx;
    ASSERT_TRUE(r.report.ok) << r.report.error;
    EXPECT_EQ(missing_plot(r.report.html), "") << ctx;
    EXPECT_GT(r.series.samples.size(), 20u) << ctx;
    EXPECT_GT(r.sim_seconds, 200.0) << ctx;
    // The ground terminal's PAT (simulated devices, qlinkd's own loop) got to COMMUNICATION.
    const bool communicated = std::any_of(r.series.samples.begin(), r.series.samples.end(),
                                          [](const terminal::pass_sample& s) { return s.pat_state == "COMMUNICATION"; });
    EXPECT_TRUE(communicated) << ctx;
}

// The optical downlink on a CCSDS LDPC profile (AR4JA r=1/2 k=4096 with its 64-bit ASM) instead of
// the concatenated chain: the same real programs, the last ~330 s of the pass, qlinkd's seeded test
// keys so the check does not wait for the first QKD block. From near the top of the pass: the ground
// terminal points within seconds (its mount slews from the zenith; the PAT gates the receiver), and
// the file is through before the low end, where the RF return link's acknowledgements near BPSK's
// threshold (210 s before LOS left ~45 s of pointed link with two clouds: 14.7 of 32.8 kB arrived).
TEST(e2e_pass, ldpc_downlink_profile_delivers_the_file) {
    if (const auto m = missing_program(); !m.empty()) GTEST_SKIP() << m << " is not built";
    temp_dir d;
    terminal::demo_config c;
    c.out_dir = d.path;
    c.bin_dir = build_dir();
    c.start = start_before_los(330);
    ASSERT_FALSE(c.start.empty());
    c.speed = 10;
    c.seed = 5;
    c.rotate_every_s = 10;
    c.generated_bytes = 32 << 10;
    c.downlink_profile = "ar4ja-4096-r12";
    c.link_keys_from_qkmd = false;
    c.keys_from_qkd = false;
    c.progress = false;
    c.wall_timeout_s = 150;
    std::ostringstream out, err;
    const auto r = terminal::run_demo(c, out, err);
    const std::string ctx = "\n--- demo output ---\n" + out.str() + err.str() + "\n(work dir " + d.path.string() + ")";

    EXPECT_TRUE(r.file_intact) << r.failure << ctx;
    EXPECT_EQ(r.bytes_delivered, r.file_bytes) << ctx;
    EXPECT_GE(r.rotations, 1u) << ctx;
    EXPECT_EQ(r.fades_recovered, r.fades) << ctx;
    EXPECT_TRUE(r.ok) << r.failure << ctx;
    // The ground receiver ran the LDPC decoder (and no Reed-Solomon: the profile has none).
    double ldpc_iterations = 0, rs_corrected = 0;
    for (const auto& s : r.series.samples) {
        if (std::isfinite(s.ldpc_iterations)) ldpc_iterations = std::max(ldpc_iterations, s.ldpc_iterations);
        if (std::isfinite(s.rs_corrected)) rs_corrected = std::max(rs_corrected, s.rs_corrected);
    }
    EXPECT_GT(ldpc_iterations, 0.0) << ctx;
    EXPECT_EQ(rs_corrected, 0.0) << ctx;
    EXPECT_NE(out.str().find("ar4ja-4096-r12"), std::string::npos) << ctx;
}

}  // namespace
}  // namespace qlink::e2e
