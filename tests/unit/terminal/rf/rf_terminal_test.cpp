// Tests the RF terminal: program track on the sim mount, a failing rotator, Debian's rotctld -m 1, and the receiver on a sim radio with overflows.
#include "qlink/terminal/rf_terminal.hpp"
#include "rf_pass_sim.hpp"
#include "support/child_process.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <deque>
#include <numbers>
#include <thread>

namespace qlink::terminal {
namespace {

using namespace std::chrono_literals;

const test::pass_world& world() { return test::shared_world(); }

double separation_deg(hw::az_el a, hw::az_el b) {
    const double d = std::numbers::pi / 180.0;
    const double x = std::sin(a.el_deg * d) * std::sin(b.el_deg * d) +
                     std::cos(a.el_deg * d) * std::cos(b.el_deg * d) * std::cos((a.az_deg - b.az_deg) * d);
    return std::acos(std::clamp(x, -1.0, 1.0)) / d;
}

struct track_run {
    double max_error_deg = 0.0;  // pointing error once on target after AOS
    std::string worst;
    std::size_t samples = 0;
};

/// Ticks the track every 50 ms of simulated time from `from` to `to`, measuring the
/// pointing error (mount position vs ephemeris) from `judge_from` on.
track_run drive(rf_program_track& track, hw::mount& m, sim::sim_clock& clock, sim::time_point to,
                const sim::pass_info& pass, const test::pass_world& w) {
    const sim::time_point judge_from = pass.aos;
    track_run run;
    while (clock.now() < to) {
        track.tick();
        clock.advance(50ms);
        if (clock.now() >= judge_from && clock.now() <= pass.los) {
            hw::az_el pos;
            EXPECT_TRUE(m.get_position(pos));
            const auto s = w.station.observe(*w.sat, clock.now());
            const double e = separation_deg(hw::mount_to_sky(pos), {s.look.azimuth_deg, s.look.elevation_deg});
            if (e > run.max_error_deg && e > 0.5)
                run.worst = "at AOS+" + std::to_string(std::chrono::duration<double>(clock.now() - pass.aos).count()) +
                            " s mount (" + std::to_string(pos.az_deg) + ", " + std::to_string(pos.el_deg) + ") sky (" +
                            std::to_string(s.look.azimuth_deg) + ", " + std::to_string(s.look.elevation_deg) + ")";
            run.max_error_deg = std::max(run.max_error_deg, e);
            ++run.samples;
        }
    }
    return run;
}

TEST(rf_program_track, follows_a_zenith_pass_in_flip_mode) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    sim::sim_clock clock(w.pass.aos - 130s);
    hw::sim_mount_config mc;
    mc.limits = {0.0, 450.0, 0.0, 180.0};
    mc.slew_rate_deg_s = 6.0;
    auto m = hw::create_sim_mount(mc, clock);
    rf_program_track track(*m, *w.sat, w.station, clock, w.pass, {});
    EXPECT_TRUE(track.flip()) << "max elevation " << w.pass.max_elevation_deg;
    EXPECT_EQ(track.state(), track_state::idle);
    // Pre-positioned before AOS, then on target within 0.5 deg for the whole pass.
    const auto run = drive(track, *m, clock, w.pass.los + 2s, w.pass, w);
    EXPECT_GT(run.samples, 1000u);
    EXPECT_LT(run.max_error_deg, 0.5) << run.worst;
    EXPECT_EQ(track.state(), track_state::finished);
    const auto& s = track.stats();
    const double pass_s = std::chrono::duration<double>(w.pass.los - w.pass.aos + 120s).count();
    EXPECT_NEAR(double(s.commands_ok), pass_s * 10.0, pass_s * 0.5);  // 10 Hz
    EXPECT_EQ(s.timeouts + s.disconnects + s.rejected + s.protocol_errors + s.unmappable, 0u);
    EXPECT_LT(s.max_az_step_deg, 5.0);
}

/// A pass whose ground track crosses north as seen from the station (azimuth wraps 359 -> 0).
std::optional<sim::pass_info> north_crossing_pass(const test::pass_world& w) {
    const auto start = *sim::parse_iso8601_utc("2026-11-28T12:00:00Z");
    for (const auto& p : sim::find_passes(*w.sat, w.station, start, start + std::chrono::hours(48))) {
        double prev = -1.0;
        for (auto t = p.aos; t <= p.los; t += 5s) {
            const double az = w.station.observe(*w.sat, t).look.azimuth_deg;
            if (prev >= 0.0 && std::abs(az - prev) > 180.0 && p.max_elevation_deg < 70.0) return p;
            prev = az;
        }
    }
    return std::nullopt;
}

TEST(rf_program_track, crossing_north_uses_the_450_degree_range_without_unwinding) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    const auto pass = north_crossing_pass(w);
    ASSERT_TRUE(pass) << "no north-crossing pass in 48 h";
    sim::sim_clock clock(pass->aos - 130s);
    hw::sim_mount_config mc;
    mc.limits = {0.0, 450.0, 0.0, 90.0};
    mc.slew_rate_deg_s = 30.0;  // this test is about the azimuth branch, not slew limits
    auto m = hw::create_sim_mount(mc, clock);
    rf_program_track track(*m, *w.sat, w.station, clock, *pass, {});
    EXPECT_FALSE(track.flip());
    const auto run = drive(track, *m, clock, pass->los + 1s, *pass, w);
    EXPECT_LT(run.max_error_deg, 0.5) << run.worst;
    EXPECT_LT(track.stats().max_az_step_deg, 5.0) << "the mount unwound";
    EXPECT_EQ(track.stats().unmappable, 0u);

    // The same pass on a 0..360 mount has to unwind once: visible in the step statistic.
    sim::sim_clock clock2(pass->aos - 130s);
    mc.limits = {0.0, 360.0, 0.0, 90.0};
    auto m2 = hw::create_sim_mount(mc, clock2);
    rf_program_track track2(*m2, *w.sat, w.station, clock2, *pass, {});
    drive(track2, *m2, clock2, pass->los + 1s, *pass, w);
    EXPECT_GT(track2.stats().max_az_step_deg, 180.0);
}

/// The simulated mount with scripted failures in front of set_position (a test double at the mount seam).
class flaky_mount final : public hw::mount {
public:
    explicit flaky_mount(hw::mount& inner) : inner_(inner) {}
    std::deque<hw::mount_errc> script;  // outcomes of the next set_position calls (ok passes through)
    unsigned stops = 0, attempts = 0;

    hw::mount_result set_position(hw::az_el target) override {
        ++attempts;
        if (!script.empty()) {
            const auto e = script.front();
            script.pop_front();
            switch (e) {
            case hw::mount_errc::timeout: return {e, 0, "no reply within 200 ms"};
            case hw::mount_errc::disconnected: return {e, 0, "connection refused"};
            case hw::mount_errc::protocol: return {e, 0, "garbage reply 'xyz'"};
            case hw::mount_errc::rejected: return {e, -1, "RPRT -1"};
            default: break;
            }
        }
        return inner_.set_position(target);
    }
    hw::mount_result get_position(hw::az_el& out) override { return inner_.get_position(out); }
    hw::mount_result stop() override {
        ++stops;
        return inner_.stop();
    }
    hw::mount_result park() override { return inner_.park(); }
    std::string_view name() const override { return "flaky"; }
    const hw::mount_limits& limits() const override { return inner_.limits(); }
    const hw::mount_counters& counters() const override { return inner_.counters(); }

private:
    hw::mount& inner_;
};

TEST(rf_program_track, failing_rotator_is_counted_stopped_and_retried) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    sim::sim_clock clock(w.pass.aos + 30s);
    hw::sim_mount_config mc;
    mc.limits = {0.0, 450.0, 0.0, 180.0};
    auto inner = hw::create_sim_mount(mc, clock);
    flaky_mount m(*inner);
    rf_program_track::config cfg;
    cfg.fault_after = 3;
    rf_program_track track(m, *w.sat, w.station, clock, w.pass, cfg);
    auto run_for = [&](std::chrono::milliseconds d) {
        const auto end = clock.now() + d;
        while (clock.now() < end) {
            track.tick();
            clock.advance(10ms);
        }
    };
    run_for(1s);
    EXPECT_EQ(track.state(), track_state::tracking);
    // Two failures in a row: counted and retried, no fault.
    m.script = {hw::mount_errc::timeout, hw::mount_errc::protocol};
    run_for(1s);
    EXPECT_EQ(track.state(), track_state::tracking);
    EXPECT_EQ(track.stats().timeouts, 1u);
    EXPECT_EQ(track.stats().protocol_errors, 1u);
    EXPECT_EQ(m.stops, 0u);
    // The rotator goes away: fault after three, stop sent once, retried once a second.
    m.script.assign(8, hw::mount_errc::disconnected);
    const unsigned before = m.attempts;
    run_for(3s);
    EXPECT_EQ(track.state(), track_state::fault);
    EXPECT_EQ(track.stats().faults, 1u);
    EXPECT_EQ(m.stops, 1u);
    EXPECT_NE(track.last_error().find("refused"), std::string::npos);
    // 3 at 10 Hz, then one per second: 3 + ~3 attempts in 3 s, not 30.
    EXPECT_LE(m.attempts - before, 7u);
    EXPECT_GE(m.attempts - before, 5u);
    // It comes back: the next accepted command recovers the track.
    m.script.clear();
    run_for(1500ms);
    EXPECT_EQ(track.state(), track_state::tracking);
    EXPECT_EQ(track.stats().recoveries, 1u);
    EXPECT_TRUE(track.last_error().empty());
    // A device refusal counts as rejected.
    m.script = {hw::mount_errc::rejected};
    run_for(300ms);
    EXPECT_EQ(track.stats().rejected, 1u);
    EXPECT_EQ(track.state(), track_state::tracking);
}

TEST(rf_program_track, configuration_errors_name_the_field) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    sim::sim_clock clock(w.pass.aos);
    auto m = hw::create_sim_mount({}, clock);
    rf_program_track::config cfg;
    cfg.update_interval = 1ms;
    try {
        rf_program_track t(*m, *w.sat, w.station, clock, w.pass, cfg);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("update_interval"), std::string::npos);
    }
    sim::pass_info backwards = w.pass;
    std::swap(backwards.aos, backwards.los);
    EXPECT_THROW(rf_program_track(*m, *w.sat, w.station, clock, backwards, {}), std::invalid_argument);
}

TEST(rf_program_track, drives_real_rotctld_and_survives_it_stalling_and_dying) {
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    const unsigned short port = qlink::test::free_tcp_port();
    auto start_server = [&] {
        return std::make_unique<qlink::test::child_process>(std::vector<std::string>{
            "rotctld", "-m", "1", "-T", "127.0.0.1", "-t", std::to_string(port)});
    };
    auto server = start_server();
    ASSERT_TRUE(qlink::test::wait_for_tcp(port)) << "rotctld did not start (is libhamlib-utils installed?)";
    hw::rotctld_config rc;
    rc.port = port;
    rc.timeout = 200ms;
    rc.limits = {0.0, 450.0, 0.0, 90.0};
    auto m = hw::create_rotctld_mount(rc);
    // Real time from a point early in the pass (low elevation, slow motion).
    sim::scaled_clock clock(w.pass.aos + 20s, 1.0);
    rf_program_track::config cfg;
    cfg.retry_interval = 300ms;
    rf_program_track track(*m, *w.sat, w.station, clock, w.pass, cfg);
    auto run_for = [&](std::chrono::milliseconds d) {
        const auto end = std::chrono::steady_clock::now() + d;
        while (std::chrono::steady_clock::now() < end) {
            track.tick();
            std::this_thread::sleep_for(10ms);
        }
    };
    run_for(1500ms);
    EXPECT_EQ(track.state(), track_state::tracking) << track.last_error();
    EXPECT_GE(track.stats().commands_ok, 10u);  // ~10 Hz
    hw::az_el pos;
    ASSERT_TRUE(m->get_position(pos));

    // Stalled server: timeouts, then fault and a stop, then recovery when it resumes.
    server->signal(SIGSTOP);
    run_for(1500ms);
    EXPECT_GE(track.stats().timeouts, 3u);
    EXPECT_EQ(track.state(), track_state::fault);
    EXPECT_EQ(track.stats().stops, 1u);
    server->signal(SIGCONT);
    run_for(1500ms);
    EXPECT_EQ(track.state(), track_state::tracking) << track.last_error();
    EXPECT_EQ(track.stats().recoveries, 1u);

    // Dead server: disconnects, fault; a restarted server is picked up again.
    server->kill(SIGKILL);
    run_for(1000ms);
    EXPECT_GE(track.stats().disconnects, 1u);
    EXPECT_EQ(track.state(), track_state::fault);
    server = start_server();
    ASSERT_TRUE(qlink::test::wait_for_tcp(port));
    run_for(1500ms);
    EXPECT_EQ(track.state(), track_state::tracking) << track.last_error();
    EXPECT_EQ(track.stats().recoveries, 2u);
    EXPECT_GE(m->counters().reconnects, 1u);
}

/// Decodes `soft` and compares every good frame with what was sent (its sequence number in bytes 0..1).
void check_frames(modem::chain_decoder& dec, std::span<const modem::llr_t> soft, std::span<std::uint8_t> out,
                  std::span<modem::chain_frame_report> reports, const std::vector<std::vector<std::uint8_t>>& sent,
                  std::size_t& good, std::size_t& bad_data) {
    dec.push_all(soft, out, reports, [&](const modem::chain_decoder::result& d) {
        for (std::size_t f = 0; f < d.frames; ++f) {
            if (!reports[f].ok) continue;
            const std::uint8_t* p = out.data() + f * dec.data_bytes();
            const std::size_t seq = (std::size_t(p[0]) << 8) | p[1];
            if (seq < sent.size() && std::equal(p, p + dec.data_bytes(), sent[seq].begin()))
                ++good;
            else
                ++bad_data;
        }
    });
}

/// A radio that loses a buffer now and then and says so (overflow), in front of the sim radio.
class overflowing_radio final : public hw::radio {
public:
    overflowing_radio(hw::radio& inner, unsigned every) : inner_(inner), every_(every), scratch_(16384) {}
    unsigned injected = 0;

    hw::radio_result configure(const hw::radio_settings& s) override { return inner_.configure(s); }
    hw::radio_settings actual() const override { return inner_.actual(); }
    hw::radio_result tune(double f, std::optional<std::int64_t> t) override { return inner_.tune(f, t); }
    hw::radio_result set_time(std::int64_t ns, bool pps) override { return inner_.set_time(ns, pps); }
    hw::radio_result start_rx(std::optional<std::int64_t> t) override { return inner_.start_rx(t); }
    hw::radio_result stop_rx() override { return inner_.stop_rx(); }
    std::size_t recv(std::span<hw::cf32> buf, hw::rx_metadata& md, double timeout_s) override {
        if (++calls_ % every_ == 0) {
            // The samples of one buffer never reach the host.
            inner_.recv(std::span<hw::cf32>(scratch_).first(std::min(buf.size(), scratch_.size())), md, timeout_s);
            const std::size_t n = inner_.recv(buf, md, timeout_s);
            md.error = hw::rx_metadata::event::overflow;
            ++injected;
            return n;
        }
        return inner_.recv(buf, md, timeout_s);
    }
    hw::tx_result send(std::span<const hw::cf32> b, const hw::tx_metadata& md, double t) override {
        return inner_.send(b, md, t);
    }
    std::string_view driver() const override { return "overflowing"; }
    const hw::radio_counters& counters() const override { return inner_.counters(); }

private:
    hw::radio& inner_;
    unsigned every_;
    unsigned calls_ = 0;
    std::vector<hw::cf32> scratch_;
};

TEST(rf_receiver, sim_radio_with_doppler_and_overflows_keeps_decoding) {
    using namespace qlink::modem;
    const auto& w = world();
    ASSERT_TRUE(w.sat);
    const double fs = 1e6;
    // Around closest approach: the Doppler rate is at its largest (~3 kHz/s).
    const sim::time_point t0 = w.pass.max_elevation_time - 1s;
    sim::sim_clock clock(t0);
    const doppler_predictor predictor(*w.sat, w.station, {});
    const auto d0 = predictor.downlink(t0);

    // The satellite: coded frames with sequence numbers, BPSK, 4 samples/symbol.
    rf_waveform wf;
    wf.sample_rate_hz = fs;
    rf_modulator mod({wf, 1.0f});
    const chain_profile& profile = *find_profile(default_profile_name);
    chain_encoder enc(profile);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<hw::cf32> pending;
    std::size_t pending_pos = 0;
    std::mt19937_64 rng(5);
    std::vector<std::uint8_t> bits(enc.max_frame_bits());
    hw::sim_radio_config rcfg;
    rcfg.channel.sample_rate_hz = fs;
    rcfg.channel.samples_per_symbol = 4;
    rcfg.channel.es_n0_db = 4.0;
    rcfg.channel.signal_power = mod.sample_power();
    rcfg.channel.frequency_offset_hz = d0.offset_hz;  // a 2 s stretch: linear Doppler is exact enough
    rcfg.channel.frequency_rate_hz_s = d0.rate_hz_s;
    rcfg.drive_clock = true;
    rcfg.source = [&](std::span<hw::cf32> out) {
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (pending_pos == pending.size()) {
                std::vector<std::uint8_t> data(enc.data_bytes());
                for (auto& b : data) b = static_cast<std::uint8_t>(rng());
                const auto seq = static_cast<std::uint32_t>(sent.size());
                data[0] = std::uint8_t(seq >> 8);
                data[1] = std::uint8_t(seq);
                sent.push_back(data);
                const std::size_t nb = enc.encode(data, bits).bits;
                pending.resize(nb * 4);
                mod.modulate(std::span<const std::uint8_t>(bits).first(nb), pending);
                pending_pos = 0;
            }
            out[i] = pending[pending_pos++];
        }
    };
    auto sim = hw::create_sim_radio(rcfg, clock);
    overflowing_radio radio(*sim, 40);
    ASSERT_TRUE(radio.start_rx({}));

    rf_receiver::config cfg;
    cfg.demod.waveform = wf;
    rf_receiver rx(radio, &predictor, cfg);
    chain_decoder::config dc;
    dc.profile = profile;
    chain_decoder dec(dc);
    std::vector<llr_t> llrs(rx.max_llrs());
    std::vector<std::uint8_t> out(dec.frames_per_push() * dec.data_bytes());
    std::vector<chain_frame_report> reports(dec.frames_per_push());
    std::size_t good = 0, bad_data = 0;
    for (int i = 0; i < 122; ++i) {  // 122 x 16384 samples = 2 s
        const auto r = rx.receive(llrs);
        ASSERT_TRUE(r.ok);
        check_frames(dec, std::span<const llr_t>(llrs).first(r.llrs), out, reports, sent, good, bad_data);
    }
    EXPECT_EQ(rx.stats().overflows, radio.injected);
    EXPECT_EQ(radio.injected, 3u);
    EXPECT_EQ(bad_data, 0u);
    EXPECT_TRUE(rx.demodulator().locked());
    // ~30 frames sent; each overflow costs at most the frames it cut plus resync.
    EXPECT_GE(good + 3 * 3 + 2, sent.size()) << good << " of " << sent.size();
    EXPECT_GT(good, 15u);
    // Not enough room for an LLR buffer: an error result, nothing received.
    std::vector<llr_t> small(10);
    EXPECT_FALSE(rx.receive(small).ok);
}


/// Turns the carrier phase by whole quarter turns at given sample counts (a
/// cycle slip or a re-lock on another constellation point), behind the channel.
class slipping_radio final : public hw::radio {
public:
    struct slip {
        std::size_t at_sample;
        int quarter_turns;
    };
    slipping_radio(hw::radio& inner, std::vector<slip> slips) : inner_(inner), slips_(std::move(slips)) {}

    hw::radio_result configure(const hw::radio_settings& s) override { return inner_.configure(s); }
    hw::radio_settings actual() const override { return inner_.actual(); }
    hw::radio_result tune(double f, std::optional<std::int64_t> t) override { return inner_.tune(f, t); }
    hw::radio_result set_time(std::int64_t ns, bool pps) override { return inner_.set_time(ns, pps); }
    hw::radio_result start_rx(std::optional<std::int64_t> t) override { return inner_.start_rx(t); }
    hw::radio_result stop_rx() override { return inner_.stop_rx(); }
    std::size_t recv(std::span<hw::cf32> buf, hw::rx_metadata& md, double timeout_s) override {
        const std::size_t n = inner_.recv(buf, md, timeout_s);
        static constexpr hw::cf32 turn[4] = {{1, 0}, {0, 1}, {-1, 0}, {0, -1}};
        for (std::size_t i = 0; i < n; ++i, ++count_) {
            for (const auto& s : slips_)
                if (s.at_sample == count_) turns_ = (turns_ + 4 + s.quarter_turns % 4) % 4;
            buf[i] *= turn[turns_];
        }
        return n;
    }
    hw::tx_result send(std::span<const hw::cf32> b, const hw::tx_metadata& md, double t) override {
        return inner_.send(b, md, t);
    }
    std::string_view driver() const override { return "slipping"; }
    const hw::radio_counters& counters() const override { return inner_.counters(); }

private:
    hw::radio& inner_;
    std::vector<slip> slips_;
    std::size_t count_ = 0;
    int turns_ = 0;
};

struct receiver_run {
    std::size_t sent = 0, good = 0, bad_data = 0;
    rf_receiver::counters rx{};
    rf_demodulator::counters demod{};
    bool locked = false;
};

/// Coded frames (default profile) from the sim radio around closest approach
/// (Doppler corrected from the ephemeris), with phase slips injected, through
/// rf_receiver (resolver on or off) into the chain decoder.
receiver_run run_receiver(rf_modulation m, double es_n0_db, std::vector<slipping_radio::slip> slips, bool resolve,
                          std::size_t buffers, std::uint64_t seed, rf_demodulator::config demod = {}) {
    using namespace qlink::modem;
    receiver_run run;
    const auto& w = world();
    const double fs = 1e6;
    const sim::time_point t0 = w.pass.max_elevation_time - 1s;
    sim::sim_clock clock(t0);
    const doppler_predictor predictor(*w.sat, w.station, {});
    const auto d0 = predictor.downlink(t0);
    rf_waveform wf;
    wf.modulation = m;
    wf.sample_rate_hz = fs;
    rf_modulator mod({wf, 1.0f});
    const chain_profile& profile = *find_profile(default_profile_name);
    chain_encoder enc(profile);
    std::vector<std::vector<std::uint8_t>> sent;
    std::vector<hw::cf32> pending;
    std::size_t pending_pos = 0;
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> bits(enc.max_frame_bits());
    hw::sim_radio_config rcfg;
    rcfg.channel.sample_rate_hz = fs;
    rcfg.channel.samples_per_symbol = 4;
    rcfg.channel.es_n0_db = es_n0_db;
    rcfg.channel.signal_power = mod.sample_power();
    rcfg.channel.frequency_offset_hz = d0.offset_hz + 800.0;  // + a station oscillator error
    rcfg.channel.frequency_rate_hz_s = d0.rate_hz_s;
    rcfg.channel.phase_noise_linewidth_hz = 10.0;
    rcfg.channel.seed = seed + 1;
    rcfg.drive_clock = true;
    rcfg.source = [&](std::span<hw::cf32> out) {
        for (std::size_t i = 0; i < out.size(); ++i) {
            if (pending_pos == pending.size()) {
                std::vector<std::uint8_t> data(enc.data_bytes());
                for (auto& b : data) b = static_cast<std::uint8_t>(rng());
                const auto seq = static_cast<std::uint32_t>(sent.size());
                data[0] = std::uint8_t(seq >> 8);
                data[1] = std::uint8_t(seq);
                sent.push_back(data);
                const std::size_t nb = enc.encode(data, bits).bits;
                pending.resize(nb / bits_per_symbol(m) * 4);
                mod.modulate(std::span<const std::uint8_t>(bits).first(nb), pending);
                pending_pos = 0;
            }
            out[i] = pending[pending_pos++];
        }
    };
    auto sim = hw::create_sim_radio(rcfg, clock);
    slipping_radio radio(*sim, std::move(slips));
    EXPECT_TRUE(radio.start_rx({}));

    rf_receiver::config cfg;
    cfg.demod = demod;
    cfg.demod.waveform = wf;
    if (resolve) cfg.phase = rf_phase_resolver::for_profile(profile, m);
    rf_receiver rx(radio, &predictor, cfg);
    chain_decoder::config dc;
    dc.profile = profile;
    chain_decoder dec(dc);
    std::vector<llr_t> llrs(rx.max_llrs());
    std::vector<std::uint8_t> out(dec.frames_per_push() * dec.data_bytes());
    std::vector<chain_frame_report> reports(dec.frames_per_push());
    for (std::size_t i = 0; i < buffers; ++i) {
        const auto r = rx.receive(llrs);
        EXPECT_TRUE(r.ok);
        check_frames(dec, std::span<const llr_t>(llrs).first(r.llrs), out, reports, sent, run.good, run.bad_data);
    }
    run.sent = sent.size();
    run.rx = rx.stats();
    run.demod = rx.demodulator().stats();
    run.locked = rx.demodulator().locked();
    return run;
}

std::ostream& operator<<(std::ostream& os, const receiver_run& r) {
    return os << "frames " << r.good << "/" << r.sent << " (bad data " << r.bad_data << "), rotations resolved "
              << r.rx.phase_rotations << ", words " << r.rx.phase_words << " missed " << r.rx.phase_words_missed
              << ", lock acquired " << r.demod.lock_acquired << " lost " << r.demod.lock_lost;
}

// The carrier phase turns mid-stream (as after a cycle slip); the resolver
// finds the new rotation on the next coded marker and the chain keeps decoding,
// losing at most the frames the slip cut. Without the resolver QPSK loses every
// frame received at a quarter-turn offset (no codeword), which is what makes
// the comparison able to fail.
TEST(rf_receiver, phase_slips_are_resolved_and_frames_keep_decoding) {
    ASSERT_TRUE(world().sat);
    struct scenario {
        rf_modulation m;
        double es_n0_db;
        std::vector<slipping_radio::slip> slips;
    };
    // 2 s at 1 Msample/s: QPSK frames are 32.8 ms, BPSK 65.5 ms.
    const scenario cases[] = {
        {rf_modulation::qpsk, 8.0, {{400'000, 1}, {900'000, 2}, {1'400'000, -1}}},
        {rf_modulation::bpsk, 4.0, {{600'000, 2}, {1'300'000, 2}}},
    };
    const std::size_t buffers = 122;  // x 16384 samples = 2 s
    for (const auto& c : cases) {
        const auto with = run_receiver(c.m, c.es_n0_db, c.slips, true, buffers, 21);
        std::cout << "[ " << to_string(c.m) << " " << c.es_n0_db << " dB, resolver ] " << with << "\n";
        EXPECT_EQ(with.bad_data, 0u);
        // Each slip is one rotation change; the Costas loop's initial ambiguity may add one.
        EXPECT_GE(with.rx.phase_rotations, c.slips.size()) << to_string(c.m);
        EXPECT_LE(with.rx.phase_rotations, c.slips.size() + 1) << to_string(c.m);
        // Acquisition and the cut last frame cost up to three frames, each slip at most the two around it.
        EXPECT_GE(with.good + 3 + 2 * c.slips.size(), with.sent) << to_string(c.m) << ": " << with;
        EXPECT_GE(with.rx.phase_words + 3, with.sent) << to_string(c.m);
        EXPECT_EQ(with.demod.lock_lost, 0u) << to_string(c.m);
        if (c.m == rf_modulation::qpsk) {
            const auto without = run_receiver(c.m, c.es_n0_db, c.slips, false, buffers, 21);
            std::cout << "[ " << to_string(c.m) << " " << c.es_n0_db << " dB, no resolver ] " << without << "\n";
            EXPECT_EQ(without.bad_data, 0u);
            // Two of the four stretches are a quarter turn off whatever the initial ambiguity.
            EXPECT_LT(without.good + with.sent / 4, with.good) << without;
        }
    }
}

TEST(rf_receiver, phase_resolver_for_profiles) {
    using namespace qlink::modem;
    const auto c = rf_phase_resolver::for_profile(*find_profile(default_profile_name), rf_modulation::qpsk);
    // 0x1ACFFC1D from its 7th bit, rate 1/2: 52 channel bits, one word per 2 x 8192 channel bits.
    EXPECT_EQ(c.unique_word.size(), 52u);
    EXPECT_EQ(c.frame_bits, 16384u);
    EXPECT_EQ(c.max_bit_errors, 6u);
    // The word is what the chain encoder puts on the channel, 12 bits into every frame.
    chain_encoder enc(*find_profile(default_profile_name));
    std::vector<std::uint8_t> data(enc.data_bytes(), 0x5a), bits(enc.max_frame_bits());
    for (int f = 0; f < 3; ++f) {
        data[0] = std::uint8_t(f * 77);
        ASSERT_EQ(enc.encode(data, bits).bits, 16384u);
        EXPECT_TRUE(std::equal(c.unique_word.begin(), c.unique_word.end(), bits.begin() + 12)) << "frame " << f;
    }
    const auto l = rf_phase_resolver::for_profile(*find_profile("ldpc-c2"), rf_modulation::bpsk);
    EXPECT_EQ(l.unique_word.size(), 64u);
    EXPECT_EQ(l.frame_bits, 64u + 8160u);
    EXPECT_THROW(rf_phase_resolver::for_profile(*find_profile("ccsds-tm-rs223i4-conv78"), rf_modulation::bpsk),
                 std::invalid_argument);
    EXPECT_THROW(rf_phase_resolver::for_profile(*find_profile("optical-rs223i4-conv12-cil"), rf_modulation::qpsk),
                 std::invalid_argument);
    // A resolver for the wrong modulation is a configuration error.
    sim::sim_clock clock(sim::time_point{});
    hw::sim_radio_config rcfg;
    rcfg.source = [](std::span<hw::cf32> o) { std::fill(o.begin(), o.end(), hw::cf32{}); };
    auto radio = hw::create_sim_radio(rcfg, clock);
    rf_receiver::config cfg;
    cfg.phase = c;  // QPSK word, BPSK waveform
    EXPECT_THROW(rf_receiver(*radio, nullptr, cfg), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::terminal
