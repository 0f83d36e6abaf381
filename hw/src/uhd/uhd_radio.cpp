// UHD (USRP) radio back-end: UHD exceptions stop here and become radio_result messages.
#include "usrp_port.hpp"

#include <uhd/device.hpp>
#include <uhd/exception.hpp>
#include <uhd/stream.hpp>
#include <uhd/types/tune_request.hpp>
#include <uhd/usrp/multi_usrp.hpp>

#include <cmath>

namespace qlink::hw {
namespace detail {

uhd::time_spec_t to_time_spec(std::int64_t ns) {
    const std::int64_t secs = ns >= 0 ? ns / 1'000'000'000 : -((-ns + 999'999'999) / 1'000'000'000);
    return uhd::time_spec_t(static_cast<time_t>(secs), double(ns - secs * 1'000'000'000) * 1e-9);
}

std::int64_t to_ns(const uhd::time_spec_t& t) {
    return static_cast<std::int64_t>(t.get_full_secs()) * 1'000'000'000 +
           static_cast<std::int64_t>(std::llround(t.get_frac_secs() * 1e9));
}

rx_metadata map_rx_metadata(const uhd::rx_metadata_t& md) {
    rx_metadata out;
    out.has_time = md.has_time_spec;
    if (md.has_time_spec) out.time_ns = to_ns(md.time_spec);
    out.end_of_burst = md.end_of_burst;
    using ec = uhd::rx_metadata_t::error_code_t;
    switch (md.error_code) {
    case ec::ERROR_CODE_NONE: out.error = rx_metadata::event::none; break;
    case ec::ERROR_CODE_TIMEOUT: out.error = rx_metadata::event::timeout; break;
    case ec::ERROR_CODE_LATE_COMMAND: out.error = rx_metadata::event::late_command; break;
    case ec::ERROR_CODE_BROKEN_CHAIN: out.error = rx_metadata::event::broken_chain; break;
    case ec::ERROR_CODE_OVERFLOW: out.error = rx_metadata::event::overflow; break;
    case ec::ERROR_CODE_BAD_PACKET: out.error = rx_metadata::event::bad_packet; break;
    default: out.error = rx_metadata::event::other; break;
    }
    return out;
}

namespace {

/// The real port: multi_usrp and its streamers.
class multi_usrp_port final : public usrp_port {
public:
    multi_usrp_port(uhd::usrp::multi_usrp::sptr usrp, const uhd_radio_config& cfg)
        : usrp_(std::move(usrp)) {
        if (!cfg.clock_source.empty()) usrp_->set_clock_source(cfg.clock_source);
        if (!cfg.subdev.empty()) usrp_->set_rx_subdev_spec(uhd::usrp::subdev_spec_t(cfg.subdev));
        if (!cfg.rx_antenna.empty()) usrp_->set_rx_antenna(cfg.rx_antenna);
        if (!cfg.tx_antenna.empty()) usrp_->set_tx_antenna(cfg.tx_antenna);
        uhd::stream_args_t args("fc32", "sc16");
        rx_ = usrp_->get_rx_stream(args);
        tx_ = usrp_->get_tx_stream(args);
    }
    double set_rate(double hz) override {
        usrp_->set_rx_rate(hz);
        usrp_->set_tx_rate(hz);
        return usrp_->get_rx_rate();
    }
    double set_center(double hz, std::optional<std::int64_t> at_ns) override {
        if (at_ns) usrp_->set_command_time(to_time_spec(*at_ns));
        usrp_->set_rx_freq(uhd::tune_request_t(hz));
        usrp_->set_tx_freq(uhd::tune_request_t(hz));
        if (at_ns) usrp_->clear_command_time();
        return usrp_->get_rx_freq();
    }
    double set_rx_gain(double db) override {
        usrp_->set_rx_gain(db);
        return usrp_->get_rx_gain();
    }
    double set_tx_gain(double db) override {
        usrp_->set_tx_gain(db);
        return usrp_->get_tx_gain();
    }
    double set_bandwidth(double hz) override {
        usrp_->set_rx_bandwidth(hz);
        return usrp_->get_rx_bandwidth();
    }
    void set_time(std::int64_t ns, bool at_next_pps) override {
        if (at_next_pps) usrp_->set_time_next_pps(to_time_spec(ns));
        else usrp_->set_time_now(to_time_spec(ns));
    }
    void start_stream(std::optional<std::int64_t> at_ns) override {
        uhd::stream_cmd_t cmd(uhd::stream_cmd_t::STREAM_MODE_START_CONTINUOUS);
        cmd.stream_now = !at_ns.has_value();
        if (at_ns) cmd.time_spec = to_time_spec(*at_ns);
        rx_->issue_stream_cmd(cmd);
    }
    void stop_stream() override {
        rx_->issue_stream_cmd(uhd::stream_cmd_t(uhd::stream_cmd_t::STREAM_MODE_STOP_CONTINUOUS));
    }
    std::size_t recv(cf32* buf, std::size_t n, uhd::rx_metadata_t& md, double timeout_s) override {
        return rx_->recv(buf, n, md, timeout_s);
    }
    std::size_t send(const cf32* buf, std::size_t n, const uhd::tx_metadata_t& md, double timeout_s) override {
        return tx_->send(buf, n, md, timeout_s);
    }
    bool recv_async(uhd::async_metadata_t& md, double timeout_s) override {
        return tx_->recv_async_msg(md, timeout_s);
    }

private:
    uhd::usrp::multi_usrp::sptr usrp_;
    uhd::rx_streamer::sptr rx_;
    uhd::tx_streamer::sptr tx_;
};

/// Runs `f`, turning anything UHD throws into a device_error result.
template <typename F>
radio_result guarded(std::string_view what, F&& f) {
    try {
        f();
        return {};
    } catch (const uhd::exception& e) {
        return {radio_errc::device_error, std::string(what) + ": " + e.what()};
    } catch (const std::exception& e) {
        return {radio_errc::device_error, std::string(what) + ": " + e.what()};
    }
}

class uhd_radio final : public radio {
public:
    explicit uhd_radio(std::unique_ptr<usrp_port> port) : port_(std::move(port)) {}

    radio_result configure(const radio_settings& s) override {
        if (!(s.sample_rate_hz > 0) || !(s.center_freq_hz > 0) || s.bandwidth_hz < 0)
            return {radio_errc::bad_config, "sample_rate_hz and center_freq_hz must be > 0, bandwidth_hz >= 0"};
        radio_settings got = s;
        radio_result r = guarded("configuring the USRP", [&] {
            got.sample_rate_hz = port_->set_rate(s.sample_rate_hz);
            got.center_freq_hz = port_->set_center(s.center_freq_hz, std::nullopt);
            got.rx_gain_db = port_->set_rx_gain(s.rx_gain_db);
            got.tx_gain_db = port_->set_tx_gain(s.tx_gain_db);
            if (s.bandwidth_hz > 0) got.bandwidth_hz = port_->set_bandwidth(s.bandwidth_hz);
        });
        if (r) actual_ = got;
        return r;
    }

    radio_settings actual() const override { return actual_; }

    radio_result tune(double hz, std::optional<std::int64_t> at_ns) override {
        if (!(hz > 0)) return {radio_errc::bad_config, "center frequency must be > 0"};
        return guarded("tuning the USRP", [&] { actual_.center_freq_hz = port_->set_center(hz, at_ns); });
    }

    radio_result set_time(std::int64_t ns, bool at_next_pps) override {
        return guarded("setting the USRP time", [&] { port_->set_time(ns, at_next_pps); });
    }

    radio_result start_rx(std::optional<std::int64_t> at_ns) override {
        radio_result r = guarded("starting the receive stream", [&] { port_->start_stream(at_ns); });
        streaming_ = bool(r);
        return r;
    }

    radio_result stop_rx() override {
        streaming_ = false;
        return guarded("stopping the receive stream", [&] { port_->stop_stream(); });
    }

    std::size_t recv(std::span<cf32> buf, rx_metadata& md, double timeout_s) override {
        md = {};
        if (!streaming_) {
            md.error = rx_metadata::event::other;
            ++counters_.other_errors;
            return 0;
        }
        uhd::rx_metadata_t umd;
        std::size_t n = 0;
        try {
            n = port_->recv(buf.data(), buf.size(), umd, timeout_s);
        } catch (const std::exception&) {
            md.error = rx_metadata::event::other;
            ++counters_.other_errors;
            return 0;
        }
        md = map_rx_metadata(umd);
        counters_.rx_samples += n;
        switch (md.error) {
        case rx_metadata::event::none: break;
        case rx_metadata::event::overflow: ++counters_.overflows; break;
        case rx_metadata::event::late_command: ++counters_.late_commands; break;
        case rx_metadata::event::timeout: ++counters_.timeouts; break;
        default: ++counters_.other_errors; break;
        }
        return n;
    }

    tx_result send(std::span<const cf32> buf, const tx_metadata& md, double timeout_s) override {
        uhd::tx_metadata_t umd;
        umd.has_time_spec = md.has_time;
        if (md.has_time) umd.time_spec = to_time_spec(md.time_ns);
        umd.start_of_burst = md.start_of_burst;
        umd.end_of_burst = md.end_of_burst;
        tx_result out;
        try {
            out.sent = port_->send(buf.data(), buf.size(), umd, timeout_s);
            uhd::async_metadata_t amd;
            while (port_->recv_async(amd, 0.0)) {
                using ev = uhd::async_metadata_t::event_code_t;
                if (amd.event_code == ev::EVENT_CODE_UNDERFLOW || amd.event_code == ev::EVENT_CODE_UNDERFLOW_IN_PACKET) {
                    out.underflow = true;
                    ++counters_.underflows;
                } else if (amd.event_code == ev::EVENT_CODE_TIME_ERROR) {
                    out.late = true;
                    ++counters_.late_commands;
                } else if (amd.event_code != ev::EVENT_CODE_BURST_ACK) {
                    ++counters_.other_errors;
                }
            }
        } catch (const std::exception&) {
            ++counters_.other_errors;
        }
        counters_.tx_samples += out.sent;
        return out;
    }

    std::string_view driver() const override { return "uhd"; }
    const radio_counters& counters() const override { return counters_; }

private:
    std::unique_ptr<usrp_port> port_;
    radio_settings actual_;
    radio_counters counters_;
    bool streaming_ = false;
};

}  // namespace

std::unique_ptr<radio> make_uhd_radio(std::unique_ptr<usrp_port> port) {
    return std::make_unique<uhd_radio>(std::move(port));
}

}  // namespace detail

std::unique_ptr<radio> create_uhd_radio(const uhd_radio_config& cfg, radio_result& error) {
    error = {};
    std::vector<std::pair<std::string, std::string>> pairs;
    std::string why;
    if (!parse_device_args(cfg.args, pairs, why)) {
        error = {radio_errc::bad_config, why};
        return nullptr;
    }
    try {
        const uhd::device_addr_t addr(cfg.args);
        if (uhd::device::find(addr, uhd::device::USRP).empty()) {
            error = {radio_errc::no_device, "no USRP found (args \"" + cfg.args +
                                                "\"); check the cable, power and `uhd_find_devices`"};
            return nullptr;
        }
        auto usrp = uhd::usrp::multi_usrp::make(addr);
        return detail::make_uhd_radio(std::make_unique<detail::multi_usrp_port>(usrp, cfg));
    } catch (const std::exception& e) {
        error = {radio_errc::device_error, "opening the USRP (args \"" + cfg.args + "\") failed: " + e.what()};
        return nullptr;
    }
}

}  // namespace qlink::hw
