// Tests the station transmit chain: uplink Doppler pre-compensation into the simulated satellite, QPSK bit carry, radio trouble.
#include "qlink/terminal/rf_sim.hpp"
#include "qlink/terminal/rf_terminal.hpp"
#include "rf_pass_sim.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>

namespace qlink::terminal {
namespace {

using namespace std::chrono_literals;

const test::pass_world& world() { return test::shared_world(); }

struct uplink_run {
    std::size_t frames_sent = 0;
    std::size_t frames_good = 0;      // decoded by the satellite and equal to what was sent
    std::size_t frames_bad_data = 0;  // decoded "good" but different (must stay 0)
    rf_sim_satellite::uplink_stats sat;
    rf_transmitter::counters tx;
    double applied_hz = 0.0;  // the transmitter's pre-compensation at the end
    double truth_hz = 0.0;    // the true uplink Doppler at the end
};

/// The station sends `seconds` of numbered frames from `t0` through the sim radio; the satellite
/// (true uplink Doppler, no correction of its own) decodes them.
uplink_run run_uplink(sim::time_point t0, double seconds, bool precompensate, rf_modulation modulation) {
    const auto& w = world();
    uplink_run run;
    const modem::chain_profile& profile = *modem::find_profile("ccsds-tm-rs223i1-conv12");
    const doppler_predictor truth(*w.sat, w.station, {});
    // The station's prediction is 50 ms off (clock error): it leaves a residual the loop tracks.
    const doppler_predictor predicted(*w.sat, w.station, {8.2e9, 7.2e9, 0.05});
    rf_waveform wf;
    wf.modulation = modulation;
    wf.sample_rate_hz = 1e6;
    std::vector<std::vector<std::uint8_t>> sent;
    rf_sim_satellite::config sc;
    sc.waveform = wf;
    sc.profile = &profile;
    sc.es_n0_db = modulation == rf_modulation::bpsk ? 5.0 : 9.0;
    sc.seed = 3;
    sc.on_frame = [&](std::span<const std::uint8_t> d) {
        const std::size_t seq = (std::size_t(d[0]) << 8) | d[1];
        if (seq < sent.size() && std::equal(d.begin(), d.end(), sent[seq].begin()))
            ++run.frames_good;
        else
            ++run.frames_bad_data;
    };
    rf_sim_satellite sat(truth, sc);
    sim::sim_clock clock(t0);
    auto radio = hw::create_sim_radio(sat.radio_config(), clock);

    rf_transmitter::config tc;
    tc.mod.waveform = wf;
    tc.precompensate_doppler = precompensate;
    rf_transmitter tx(*radio, &predicted, tc);
    modem::chain_encoder enc(profile);
    std::vector<std::uint8_t> data(enc.data_bytes()), bits(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    std::mt19937_64 rng(11);
    EXPECT_TRUE(tx.start_burst(t0.time_since_epoch().count()).ok);
    while (tx.air_time_ns() < (t0 + sim::seconds_d(seconds)).time_since_epoch().count()) {
        for (auto& b : data) b = static_cast<std::uint8_t>(rng());
        data[0] = static_cast<std::uint8_t>(sent.size() >> 8);
        data[1] = static_cast<std::uint8_t>(sent.size());
        sent.push_back(data);
        const auto e = enc.encode(data, bits);
        const auto r = tx.transmit(std::span<const std::uint8_t>(bits).first(e.bits));
        EXPECT_TRUE(r.ok) << r.error;
        EXPECT_EQ(r.bits, e.bits);
    }
    const auto f = enc.finish(bits);
    tx.transmit(std::span<const std::uint8_t>(bits).first(f.bits));
    EXPECT_TRUE(tx.end_burst().ok);
    sat.finish_uplink();
    run.frames_sent = sent.size();
    run.sat = sat.uplink();
    run.tx = tx.stats();
    run.applied_hz = tx.applied_offset_hz();
    run.truth_hz = truth.uplink(sim::time_point{} + sim::duration{tx.air_time_ns()}).offset_hz;
    std::cout << to_string(modulation) << (precompensate ? " pre-compensated" : " uncompensated") << ": satellite decoded "
              << run.frames_good << " of " << run.frames_sent << " frames (" << run.sat.frames_failed
              << " failed), uplink Doppler up to " << run.sat.max_abs_doppler_hz << " Hz, transmitter applied "
              << run.applied_hz << " Hz, satellite loop residual " << run.sat.residual_hz << " Hz, locked "
              << run.sat.locked << "\n";
    return run;
}

TEST(rf_transmitter, precompensated_uplink_reaches_the_satellite_on_its_nominal_carrier) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    // A minute after AOS: ~150 kHz of uplink Doppler, far outside the satellite's loop pull-in.
    const sim::time_point t0 = w.pass.aos + 60s;
    const auto with = run_uplink(t0, 1.0, true, rf_modulation::bpsk);
    EXPECT_GT(with.sat.max_abs_doppler_hz, 100e3);
    // The transmitter applies minus the (slightly late) prediction.
    EXPECT_NEAR(with.applied_hz, -with.truth_hz, 200.0);
    EXPECT_TRUE(with.sat.locked);
    EXPECT_LT(std::abs(with.sat.residual_hz), 300.0) << with.sat.residual_hz;
    EXPECT_EQ(with.frames_bad_data, 0u);
    EXPECT_EQ(with.frames_good, with.frames_sent) << with.frames_good << " of " << with.frames_sent;
    EXPECT_GT(with.frames_sent, 30u);
    EXPECT_EQ(with.tx.bursts, 1u);
    EXPECT_EQ(with.tx.samples_dropped, 0u);
    EXPECT_EQ(with.tx.prediction_errors, 0u);

    // The control: the same uplink without pre-compensation never reaches the satellite.
    const auto without = run_uplink(t0, 1.0, false, rf_modulation::bpsk);
    EXPECT_EQ(without.applied_hz, 0.0);
    EXPECT_EQ(without.frames_good, 0u);
    EXPECT_EQ(without.frames_bad_data, 0u);
}

TEST(rf_transmitter, qpsk_uplink_through_closest_approach) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    // Closest approach: the Doppler rate is largest (~2.6 kHz/s at 7.2 GHz); QPSK's phase resolver on the satellite.
    const auto r = run_uplink(w.pass.max_elevation_time - 500ms, 1.0, true, rf_modulation::qpsk);
    EXPECT_EQ(r.frames_bad_data, 0u);
    EXPECT_GE(r.frames_good + 1, r.frames_sent) << r.frames_good << " of " << r.frames_sent;
    EXPECT_GT(r.frames_sent, 60u);
}

/// Records what the station sends.
class capture_radio final : public hw::radio {
public:
    std::vector<cf32> samples;
    std::vector<hw::tx_metadata> md;
    std::size_t accept_at_most = SIZE_MAX;  // per send
    unsigned zero_every = 0;                // every n-th send takes nothing
    hw::radio_result configure(const hw::radio_settings&) override { return {}; }
    hw::radio_settings actual() const override { return {}; }
    hw::radio_result tune(double, std::optional<std::int64_t>) override { return {}; }
    hw::radio_result set_time(std::int64_t, bool) override { return {}; }
    hw::radio_result start_rx(std::optional<std::int64_t>) override { return {}; }
    hw::radio_result stop_rx() override { return {}; }
    std::size_t recv(std::span<hw::cf32>, hw::rx_metadata& m, double) override {
        m.error = hw::rx_metadata::event::timeout;
        return 0;
    }
    hw::tx_result send(std::span<const hw::cf32> b, const hw::tx_metadata& m, double) override {
        md.push_back(m);
        if (zero_every && md.size() % zero_every == 0) return {0, false, false};
        const std::size_t n = std::min(b.size(), accept_at_most);
        samples.insert(samples.end(), b.begin(), b.begin() + static_cast<std::ptrdiff_t>(n));
        return {n, n < b.size(), false};
    }
    std::string_view driver() const override { return "capture"; }
    const hw::radio_counters& counters() const override { return counters_; }

private:
    hw::radio_counters counters_;
};

TEST(rf_transmitter, qpsk_bits_split_anywhere_give_the_same_burst) {
    rf_transmitter::config tc;
    tc.mod.waveform.modulation = rf_modulation::qpsk;
    tc.buffer_samples = 256;
    tc.preamble_s = 0.0;
    std::mt19937_64 rng(4);
    std::vector<std::uint8_t> bits(3001);
    for (auto& b : bits) b = static_cast<std::uint8_t>(rng() & 1);
    capture_radio whole, split;
    {
        rf_transmitter tx(whole, nullptr, tc);
        tx.start_burst(1'000);
        ASSERT_TRUE(tx.transmit(bits).ok);
        tx.end_burst();
    }
    {
        rf_transmitter tx(split, nullptr, tc);
        tx.start_burst(1'000);
        for (std::size_t pos = 0; pos < bits.size();) {
            const std::size_t n = std::min<std::size_t>(1 + rng() % 77, bits.size() - pos);
            const auto r = tx.transmit(std::span<const std::uint8_t>(bits).subspan(pos, n));
            ASSERT_TRUE(r.ok);
            EXPECT_EQ(r.bits, n);
            pos += n;
        }
        tx.end_burst();
        // 1501 symbols (the odd bit padded) and the filter tail, all on air.
        EXPECT_EQ(tx.stats().samples, (1501u + 7u) * 4u);
        EXPECT_EQ(tx.stats().bits, 3002u);
    }
    ASSERT_EQ(whole.samples.size(), split.samples.size());
    EXPECT_TRUE(whole.samples == split.samples);
    // One timed start, one end.
    ASSERT_FALSE(split.md.empty());
    EXPECT_TRUE(split.md.front().start_of_burst && split.md.front().has_time);
    EXPECT_EQ(split.md.front().time_ns, 1'000);
    EXPECT_TRUE(split.md.back().end_of_burst);
    for (std::size_t i = 1; i < split.md.size(); ++i) EXPECT_FALSE(split.md[i].start_of_burst);
}

TEST(rf_transmitter, a_slow_radio_is_counted_and_the_burst_goes_on) {
    rf_transmitter::config tc;
    tc.buffer_samples = 1024;
    tc.preamble_s = 0.001;  // 250 symbols
    capture_radio radio;
    radio.accept_at_most = 300;
    radio.zero_every = 7;
    rf_transmitter tx(radio, nullptr, tc);
    std::vector<std::uint8_t> bits(4096, 1);
    EXPECT_FALSE(tx.transmit(bits).ok);  // no burst yet: an error, nothing sent
    EXPECT_TRUE(radio.md.empty());
    tx.start_burst(0);
    const auto r = tx.transmit(bits);
    EXPECT_TRUE(r.ok);
    tx.end_burst();
    const auto& s = tx.stats();
    EXPECT_GT(s.short_sends, 0u);
    EXPECT_GT(s.samples_dropped, 0u);
    EXPECT_GT(s.underflows, 0u);
    EXPECT_EQ(s.samples + s.samples_dropped, (250u + 4096u + 7u) * 4u);
    EXPECT_EQ(s.bits, 250u + 4096u);
    EXPECT_EQ(s.samples, radio.samples.size());
    // Air time follows what the radio took.
    EXPECT_EQ(tx.air_time_ns(), static_cast<std::int64_t>(std::llround(double(s.samples) / 1e6 * 1e9)));
}

}  // namespace
}  // namespace qlink::terminal
