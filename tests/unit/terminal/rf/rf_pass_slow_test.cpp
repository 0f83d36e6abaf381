// Full LEO pass, AOS to LOS in one stream: the coded X-band downlink (BPSK 3 dB, QPSK 7 dB) stays locked through the whole Doppler profile (LABELS slow).
#include "rf_pass_sim.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace qlink::terminal {
namespace {

test::downlink_report run_pass(rf_modulation m, double es_n0_db) {
    const test::pass_world w;
    EXPECT_TRUE(w.sat);
    if (!w.sat) return {};
    const double seconds = std::chrono::duration<double>(w.pass.los - w.pass.aos).count();
    EXPECT_GT(seconds, 300.0);
    test::downlink_options o;
    o.modulation = m;
    o.es_n0_db = es_n0_db;
    o.resolve_phase = true;  // as rf_receiver runs with config::phase
    o.seed = 99;
    const auto rep = test::run_downlink(w, w.pass.aos, seconds, o);
    std::cout << "[ full pass, " << to_string(m) << ", native receiver, max elevation " << w.pass.max_elevation_deg
              << " deg, Es/N0 " << es_n0_db << " dB ] " << rep << "\n";
    ::testing::Test::RecordProperty("fer", std::to_string(rep.fer()));
    EXPECT_EQ(rep.lock_acquired, 1u);
    EXPECT_EQ(rep.lock_lost, 0u);
    EXPECT_TRUE(rep.locked_at_end);
    EXPECT_EQ(rep.frames_bad_data, 0u);
    EXPECT_GT(rep.max_abs_offset_hz, 180e3);
    EXPECT_GT(rep.max_abs_rate_hz_s, 2800.0);
    EXPECT_NEAR(rep.final_residual_hz, rep.expected_residual_hz, 200.0);
    return rep;
}

TEST(rf_pass, full_pass_stays_locked_from_aos_to_los) {
    const auto rep = run_pass(rf_modulation::bpsk, 3.0);
    // Measured (seed 99, native receiver, Release build): 10408 of 10512 frames, FER 9.9e-3,
    // lock never lost, no carrier rotation (no cycle slip). The liquid engine lost 12 frames
    // (FER 1.1e-3) on the same pass: the native engine's extra losses are not carrier slips
    // and are not yet explained (see docs/terminal.md). Bound: FER <= 1.5e-2.
    EXPECT_EQ(rep.phase_rotations, 0u);
    EXPECT_LE(rep.fer(), 1.5e-2) << rep;
}

TEST(rf_pass, qpsk_full_pass_stays_locked_from_aos_to_los) {
    const auto rep = run_pass(rf_modulation::qpsk, 7.0);
    // Measured (seed 99): 20463 of 21024 frames, FER 2.7e-2, lock never lost; 588 carrier
    // rotations (cycle slips through the 20 Hz phase noise, each undone by the resolver on
    // the next marker at the cost of about a frame). Bound: FER <= 4e-2.
    EXPECT_LE(rep.fer(), 4e-2) << rep;
}

}  // namespace
}  // namespace qlink::terminal
