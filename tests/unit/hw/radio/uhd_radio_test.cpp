// Tests the UHD back-end's metadata and error handling through a double at the usrp_port seam.
#include "uhd/usrp_port.hpp"

#include <gtest/gtest.h>

#include <uhd/exception.hpp>

#include <deque>

namespace qlink::hw::detail {
namespace {

/// Plays back scripted UHD behaviour.
class scripted_port final : public usrp_port {
public:
    std::deque<uhd::rx_metadata_t::error_code_t> rx_errors;
    std::deque<uhd::async_metadata_t::event_code_t> async_events;
    std::optional<std::int64_t> last_tune_time;
    bool throw_on_rate = false;
    bool throw_on_time = false;
    std::optional<std::pair<std::int64_t, bool>> last_time;

    double set_rate(double hz) override {
        if (throw_on_rate) throw uhd::value_error("rate out of range");
        return hz * 0.999;  // devices quantise rates
    }
    double set_center(double hz, std::optional<std::int64_t> at_ns) override {
        last_tune_time = at_ns;
        return hz + 1.0;
    }
    double set_rx_gain(double db) override { return db; }
    double set_tx_gain(double db) override { return db; }
    double set_bandwidth(double hz) override { return hz; }
    void set_time(std::int64_t ns, bool at_next_pps) override {
        if (throw_on_time) throw uhd::runtime_error("no PPS signal");
        last_time = {ns, at_next_pps};
    }
    void start_stream(std::optional<std::int64_t>) override {}
    void stop_stream() override {}
    std::size_t recv(cf32*, std::size_t n, uhd::rx_metadata_t& md, double) override {
        md.reset();
        md.has_time_spec = true;
        md.time_spec = uhd::time_spec_t(5, 0.25);
        if (!rx_errors.empty()) {
            md.error_code = rx_errors.front();
            rx_errors.pop_front();
            if (md.error_code != uhd::rx_metadata_t::ERROR_CODE_NONE) return 0;
        }
        return n;
    }
    std::size_t send(const cf32*, std::size_t n, const uhd::tx_metadata_t&, double) override { return n; }
    bool recv_async(uhd::async_metadata_t& md, double) override {
        if (async_events.empty()) return false;
        md.event_code = async_events.front();
        async_events.pop_front();
        return true;
    }
};

TEST(uhd_radio_seam, overflow_late_and_timeout_are_data_and_counted) {
    auto port = std::make_unique<scripted_port>();
    auto* p = port.get();
    p->rx_errors = {uhd::rx_metadata_t::ERROR_CODE_NONE, uhd::rx_metadata_t::ERROR_CODE_OVERFLOW,
                    uhd::rx_metadata_t::ERROR_CODE_LATE_COMMAND, uhd::rx_metadata_t::ERROR_CODE_TIMEOUT};
    auto r = make_uhd_radio(std::move(port));
    ASSERT_TRUE(r->start_rx());
    std::vector<cf32> buf(64);
    rx_metadata md;
    EXPECT_EQ(r->recv(buf, md, 0.1), 64u);
    EXPECT_EQ(md.error, rx_metadata::event::none);
    EXPECT_TRUE(md.has_time);
    EXPECT_EQ(md.time_ns, 5'250'000'000);
    r->recv(buf, md, 0.1);
    EXPECT_EQ(md.error, rx_metadata::event::overflow);
    r->recv(buf, md, 0.1);
    EXPECT_EQ(md.error, rx_metadata::event::late_command);
    r->recv(buf, md, 0.1);
    EXPECT_EQ(md.error, rx_metadata::event::timeout);
    EXPECT_EQ(r->counters().overflows, 1u);
    EXPECT_EQ(r->counters().late_commands, 1u);
    EXPECT_EQ(r->counters().timeouts, 1u);
    EXPECT_EQ(r->counters().rx_samples, 64u);
}

TEST(uhd_radio_seam, tx_underflow_reported_from_async_events) {
    auto port = std::make_unique<scripted_port>();
    port->async_events = {uhd::async_metadata_t::EVENT_CODE_BURST_ACK, uhd::async_metadata_t::EVENT_CODE_UNDERFLOW,
                          uhd::async_metadata_t::EVENT_CODE_TIME_ERROR};
    auto r = make_uhd_radio(std::move(port));
    std::vector<cf32> buf(32);
    tx_result t = r->send(buf, {}, 0.1);
    EXPECT_EQ(t.sent, 32u);
    EXPECT_TRUE(t.underflow);
    EXPECT_TRUE(t.late);
    EXPECT_EQ(r->counters().underflows, 1u);
    EXPECT_EQ(r->counters().other_errors, 0u);
}

TEST(uhd_radio_seam, uhd_exceptions_become_results_and_actual_values_are_kept) {
    auto port = std::make_unique<scripted_port>();
    auto* p = port.get();
    auto r = make_uhd_radio(std::move(port));
    ASSERT_TRUE(r->configure({2e6, 8.2e9, 20, 5, 0}));
    EXPECT_DOUBLE_EQ(r->actual().sample_rate_hz, 2e6 * 0.999);
    EXPECT_DOUBLE_EQ(r->actual().center_freq_hz, 8.2e9 + 1.0);
    ASSERT_TRUE(r->tune(8.21e9, 1'500'000'000));
    EXPECT_EQ(p->last_tune_time, 1'500'000'000);
    p->throw_on_rate = true;
    radio_result bad = r->configure({3e6, 8.2e9, 20, 5, 0});
    EXPECT_EQ(bad.code, radio_errc::device_error);
    EXPECT_NE(bad.message.find("rate out of range"), std::string::npos);
    EXPECT_DOUBLE_EQ(r->actual().sample_rate_hz, 2e6 * 0.999);  // unchanged after a failure
}

TEST(uhd_radio_seam, set_time_reaches_the_device_and_its_failure_is_a_result) {
    auto port = std::make_unique<scripted_port>();
    auto* p = port.get();
    auto r = make_uhd_radio(std::move(port));
    ASSERT_TRUE(r->set_time(1'764'000'000'123'456'789, false));
    ASSERT_TRUE(p->last_time);
    EXPECT_EQ(p->last_time->first, 1'764'000'000'123'456'789);
    EXPECT_FALSE(p->last_time->second);
    ASSERT_TRUE(r->set_time(1'764'000'001'000'000'000, true));
    EXPECT_TRUE(p->last_time->second);
    p->throw_on_time = true;
    const radio_result bad = r->set_time(0, true);
    EXPECT_EQ(bad.code, radio_errc::device_error);
    EXPECT_NE(bad.message.find("no PPS signal"), std::string::npos) << bad.message;
}

TEST(uhd_radio_seam, time_specs_round_trip) {
    for (std::int64_t ns : {0LL, 1LL, 999'999'999LL, 1'000'000'000LL, 123'456'789'012LL})
        EXPECT_EQ(to_ns(to_time_spec(ns)), ns);
}

}  // namespace
}  // namespace qlink::hw::detail
