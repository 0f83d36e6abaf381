// Tests the simulated radio (sim RF channel behind the radio interface) and device-argument parsing.
#include "qlink/hw/radio.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

namespace qlink::hw {
namespace {

sim_radio_config tone_radio(double offset_hz, double fs) {
    sim_radio_config cfg;
    cfg.channel.sample_rate_hz = fs;
    cfg.channel.add_noise = false;
    cfg.channel.frequency_offset_hz = offset_hz;
    cfg.source = [](std::span<cf32> buf) {
        for (auto& s : buf) s = {1.0f, 0.0f};  // an unmodulated carrier at 0 Hz
    };
    cfg.drive_clock = true;
    return cfg;
}

TEST(sim_radio, receives_the_doppler_shifted_carrier_in_simulated_time) {
    const double fs = 1e6, offset = 12.5e3;
    sim::sim_clock clock(sim::time_point{});
    auto r = create_sim_radio(tone_radio(offset, fs), clock);
    ASSERT_TRUE(r->configure({fs, 8.2e9, 30, 0, 0}));
    ASSERT_TRUE(r->start_rx());
    std::vector<cf32> buf(10000);
    rx_metadata md;
    ASSERT_EQ(r->recv(buf, md, 0.1), buf.size());
    EXPECT_EQ(md.error, rx_metadata::event::none);
    EXPECT_TRUE(md.has_time);
    EXPECT_EQ(md.time_ns, 0);
    // Mean phase step per sample gives the frequency offset.
    double phase = 0;
    for (std::size_t i = 1; i < buf.size(); ++i) phase += std::arg(buf[i] * std::conj(buf[i - 1]));
    const double measured = phase / double(buf.size() - 1) * fs / (2 * std::numbers::pi);
    EXPECT_NEAR(measured, offset, 1.0);
    // The clock followed the stream: 10000 samples at 1 MS/s.
    ASSERT_EQ(r->recv(buf, md, 0.1), buf.size());
    EXPECT_EQ(md.time_ns, 10'000'000);
    EXPECT_EQ(r->counters().rx_samples, 20000u);
}

TEST(sim_radio, doppler_truth_is_read_at_each_buffer_and_the_clock_can_be_set_forward) {
    const double fs = 1e6;
    sim::sim_clock clock(sim::time_point{});
    sim_radio_config cfg = tone_radio(0.0, fs);
    std::vector<std::int64_t> asked;
    // A Doppler that grows 1 kHz per simulated millisecond, so each buffer sees another carrier.
    cfg.doppler = [&](sim::time_point t) {
        asked.push_back(t.time_since_epoch().count());
        return std::pair{1e3 * double(t.time_since_epoch().count()) / 1e6, 0.0};
    };
    auto r = create_sim_radio(cfg, clock);
    ASSERT_TRUE(r->set_time(5'000'000));  // 5 ms
    EXPECT_FALSE(r->set_time(1'000'000));  // not back
    ASSERT_TRUE(r->start_rx());
    std::vector<cf32> buf(2000);
    rx_metadata md;
    for (const double expect_hz : {5e3, 7e3}) {
        ASSERT_EQ(r->recv(buf, md, 0.1), buf.size());
        double phase = 0;
        for (std::size_t i = 1; i < buf.size(); ++i) phase += std::arg(buf[i] * std::conj(buf[i - 1]));
        EXPECT_NEAR(phase / double(buf.size() - 1) * fs / (2 * std::numbers::pi), expect_hz, 1.0);
    }
    EXPECT_EQ(asked, (std::vector<std::int64_t>{5'000'000, 7'000'000}));
}

TEST(sim_radio, reports_problems_as_data) {
    sim::sim_clock clock(sim::time_point{});
    auto r = create_sim_radio(tone_radio(0, 1e6), clock);
    std::vector<cf32> buf(16);
    rx_metadata md;
    EXPECT_EQ(r->recv(buf, md, 0.1), 0u);  // not streaming yet
    EXPECT_EQ(md.error, rx_metadata::event::timeout);
    EXPECT_EQ(r->counters().timeouts, 1u);
    EXPECT_EQ(r->configure({-1, 8e9, 0, 0, 0}).code, radio_errc::bad_config);
    EXPECT_EQ(r->tune(0).code, radio_errc::bad_config);
}

TEST(sim_radio, transmit_goes_to_the_sink) {
    sim::sim_clock clock(sim::time_point{});
    sim_radio_config cfg = tone_radio(0, 1e6);
    std::size_t got = 0;
    cfg.sink = [&](std::span<const cf32> s, const tx_metadata&) { got += s.size(); };
    auto r = create_sim_radio(cfg, clock);
    std::vector<cf32> buf(100);
    EXPECT_EQ(r->send(buf, {}, 0.1).sent, 100u);
    EXPECT_EQ(got, 100u);
}

TEST(radio_drivers, table_names_sim_and_uhd) {
    auto drivers = radio_drivers();
    ASSERT_EQ(drivers.size(), 2u);
    EXPECT_EQ(drivers[0].name, "sim");
    EXPECT_TRUE(drivers[0].available);
    EXPECT_EQ(drivers[1].name, "uhd");
}

TEST(device_args, parses_uhd_style_strings) {
    std::vector<std::pair<std::string, std::string>> kv;
    std::string err;
    ASSERT_TRUE(parse_device_args("type=b200,serial=3150A1B", kv, err));
    ASSERT_EQ(kv.size(), 2u);
    EXPECT_EQ(kv[0], (std::pair<std::string, std::string>{"type", "b200"}));
    EXPECT_EQ(kv[1].second, "3150A1B");
    ASSERT_TRUE(parse_device_args("", kv, err));
    EXPECT_TRUE(kv.empty());
    EXPECT_FALSE(parse_device_args("type=b200,,serial=1", kv, err));
    EXPECT_FALSE(parse_device_args("=x", kv, err));
    EXPECT_FALSE(parse_device_args("type", kv, err));
    EXPECT_NE(err.find("'type'"), std::string::npos);
}

TEST(uhd_radio, without_a_device_says_so_clearly) {
    // "type=b200" restricts UHD's search to USB: no network discovery traffic.
    radio_result err;
    auto r = create_uhd_radio({"type=b200,serial=QLINKTEST"}, err);
    EXPECT_EQ(r, nullptr);
    EXPECT_EQ(err.code, radio_errc::no_device);
    EXPECT_NE(err.message.find("type=b200,serial=QLINKTEST"), std::string::npos) << err.message;
    auto bad = create_uhd_radio({"type=b200,,"}, err);
    EXPECT_EQ(bad, nullptr);
    EXPECT_EQ(err.code, radio_errc::bad_config);
}

}  // namespace
}  // namespace qlink::hw
