// End-to-end faults (label slow): kill -9 of one qkmd mid-pass and its restart; the far end's qlinkd
// restarted mid-pass. The file must still arrive intact (exactly once: the restarted qlinkd resumes
// from its delivery record), the key stores agree, no key be reused.
#include "pass_e2e_util.hpp"

#include <cmath>
#include <fstream>
#include <sstream>

namespace qlink::e2e {
namespace {

struct fault_plan {
    std::string daemon;
    double kill_at_s = 0;     // simulated seconds into the run
    int restart_after_polls = 0;
};

terminal::demo_result run_with_fault(const temp_dir& d, const fault_plan& plan, bool& killed, bool& restarted,
                                     std::string& ctx) {
    terminal::demo_config c;
    c.out_dir = d.path;
    c.bin_dir = build_dir();
    c.start = start_before_los(450);
    c.speed = 8;
    c.seed = 5;
    c.rotate_every_s = 15;
    c.generated_bytes = 64 << 10;
    c.qkd_block_detections = 1000000;
    c.progress = false;
    c.wall_timeout_s = 300;
    int polls_since_kill = -1;
    c.on_poll = [&](terminal::demo_control& ctl) {
        const double t = ctl.sim_time_s();
        if (!killed && std::isfinite(t) && t >= plan.kill_at_s) {
            killed = ctl.kill_daemon(plan.daemon);
            polls_since_kill = 0;
            return;
        }
        if (killed && !restarted && ++polls_since_kill >= plan.restart_after_polls)
            restarted = ctl.restart_daemon(plan.daemon);
    };
    std::ostringstream out, err;
    auto r = terminal::run_demo(c, out, err);
    ctx = "\n--- demo output ---\n" + out.str() + err.str() + "\n(work dir " + d.path.string() + ")";
    return r;
}

TEST(e2e_pass_fault, qkmd_killed_and_restarted_mid_pass) {
    if (const auto m = missing_program(); !m.empty()) GTEST_SKIP() << m << " is not built";
    temp_dir d;
    bool killed = false, restarted = false;
    std::string ctx;
    const auto r = run_with_fault(d, {"qkmd-bob", 100, 8}, killed, restarted, ctx);
    EXPECT_TRUE(killed) << ctx;
    EXPECT_TRUE(restarted) << ctx;
    EXPECT_TRUE(r.file_intact) << r.failure << ctx;
    EXPECT_TRUE(r.keys_agree) << ctx;
    EXPECT_TRUE(r.keys_unique) << ctx;
    EXPECT_TRUE(r.ok) << r.failure << ctx;
}

TEST(e2e_pass_fault, far_end_qlinkd_restarted_arq_recovers) {
    if (const auto m = missing_program(); !m.empty()) GTEST_SKIP() << m << " is not built";
    temp_dir d;
    bool killed = false, restarted = false;
    std::string ctx;
    const auto r = run_with_fault(d, {"qlinkd-ground", 100, 4}, killed, restarted, ctx);
    EXPECT_TRUE(killed) << ctx;
    EXPECT_TRUE(restarted) << ctx;
    EXPECT_TRUE(r.file_intact) << r.failure << ctx;
    EXPECT_TRUE(r.keys_unique) << ctx;
    EXPECT_TRUE(r.ok) << r.failure << ctx;
    // The restarted daemon resumed the file's stream from its delivery record (link.state_dir):
    // exactness comes from that record, not from luck in where the kill fell.
    std::ifstream log(d.path / "logs" / "qlinkd-ground.log");
    std::stringstream text;
    text << log.rdbuf();
    const std::string l = text.str();
    EXPECT_NE(l.find("event=resume stream=0"), std::string::npos) << "no resume from the record in the ground log" << ctx;
}

}  // namespace
}  // namespace qlink::e2e
