// End to end, keys: the real qlink-sim relay (pass geometry, QKD photon channel) and the real qkmd
// pair (post-processing over their authenticated channel) distil keys during a whole pass, and both
// KMEs hand out identical keys over ETSI 014 (mutual TLS, the demo's in-process PKI). The two qlinkd
// are test doubles here (fake_daemons.py speaking QAIR1 to the relay, user data on a side channel),
// so the result does not depend on the link daemon.
#include "pass_e2e_util.hpp"

#include <cstdlib>
#include <sstream>

namespace qlink::e2e {
namespace {

TEST(e2e_qkd, real_relay_and_qkmd_pair_distil_identical_keys_over_the_pass) {
    if (const auto m = missing_relay_or_qkd(); !m.empty()) GTEST_SKIP() << m;
    temp_dir d;
    fs::create_directories(d.path / "bin");
    fs::create_symlink(build_dir() / "sim/app/qlink-sim", d.path / "bin" / "qlink-sim");
    fs::create_symlink(build_dir() / "keymgmt/app/qkmd", d.path / "bin" / "qkmd");
    const std::string fake = std::string(QLINK_SOURCE_DIR) + "/tests/unit/terminal/demo/fake_daemons.py";
    std::ofstream(d.path / "bin" / "qlinkd") << "#!/bin/sh\nFAKE_QAIR=1 exec python3 " << fake << " qlinkd \"$@\"\n";
    fs::permissions(d.path / "bin" / "qlinkd", fs::perms::owner_all);

    terminal::demo_config c;
    c.out_dir = d.path / "out";
    c.bin_dir = d.path / "bin";
    c.speed = 15;  // the whole default pass (730 simulated seconds)
    c.generated_bytes = 20000;
    c.progress = false;
    c.wall_timeout_s = 170;
    std::ostringstream out, err;
    const auto r = terminal::run_demo(c, out, err);
    const std::string ctx = "\n--- demo output ---\n" + out.str() + err.str() + "\n(work dir " + d.path.string() + ")";

    EXPECT_TRUE(r.keys_agree) << r.failure << ctx;
    EXPECT_TRUE(r.keys_unique) << ctx;
    EXPECT_TRUE(r.file_intact) << ctx;
    EXPECT_NEAR(r.sim_seconds, 729.6, 5.0) << ctx;
    // QKD figures came from qkmd during the pass: a QBER in the simulator's range, keys in the pool.
    double qber = terminal::no_value, pool = 0;
    for (const auto& s : r.series.samples) {
        if (std::isfinite(s.qber)) qber = s.qber;
        if (std::isfinite(s.key_pool_level)) pool = std::max(pool, s.key_pool_level);
    }
    EXPECT_GT(qber, 0.001) << ctx;
    EXPECT_LT(qber, 0.05) << ctx;
    EXPECT_GE(pool, 4.0) << ctx;
    ASSERT_TRUE(r.report.ok);
    EXPECT_EQ(missing_plot(r.report.html), "");
}

}  // namespace
}  // namespace qlink::e2e
