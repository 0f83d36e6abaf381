// Simulated radio: satellite baseband through the sim RF channel, in simulated time.
#include "qlink/hw/radio.hpp"

#include <cmath>
#include <stdexcept>

namespace qlink::hw {
namespace {

class sim_radio final : public radio {
public:
    sim_radio(const sim_radio_config& cfg, sim::sim_clock& clock) : cfg_(cfg), clock_(clock) {
        settings_.sample_rate_hz = cfg.channel.sample_rate_hz;
        channel_ = sim::create_rf_channel(cfg.channel);  // throws on bad config: a configuration edge
    }

    radio_result configure(const radio_settings& s) override {
        if (!(s.sample_rate_hz > 0) || !(s.center_freq_hz > 0))
            return {radio_errc::bad_config, "sample_rate_hz and center_freq_hz must be > 0"};
        if (s.sample_rate_hz != settings_.sample_rate_hz) {
            sim::rf_channel::config c = cfg_.channel;
            c.sample_rate_hz = s.sample_rate_hz;
            try {
                channel_ = sim::create_rf_channel(c);
            } catch (const std::exception& e) {
                return {radio_errc::bad_config, e.what()};
            }
            cfg_.channel = c;
        }
        settings_ = s;
        return {};
    }

    radio_settings actual() const override { return settings_; }

    radio_result tune(double center_freq_hz, std::optional<std::int64_t>) override {
        if (!(center_freq_hz > 0)) return {radio_errc::bad_config, "center frequency must be > 0"};
        settings_.center_freq_hz = center_freq_hz;
        return {};
    }

    radio_result set_time(std::int64_t ns, bool) override {
        // The simulated clock only runs forward (other parts of the simulation read it).
        if (!clock_.set(sim::time_point(sim::duration(ns))))
            return {radio_errc::bad_config, "the simulated clock cannot be set back in time"};
        return {};
    }
    radio_result start_rx(std::optional<std::int64_t>) override {
        streaming_ = true;
        return {};
    }
    radio_result stop_rx() override {
        streaming_ = false;
        return {};
    }

    std::size_t recv(std::span<cf32> buf, rx_metadata& md, double) override {
        md = {};
        if (!streaming_ || !cfg_.source) {
            md.error = rx_metadata::event::timeout;
            ++counters_.timeouts;
            return 0;
        }
        md.has_time = true;
        const sim::time_point t = clock_.now();
        md.time_ns = t.time_since_epoch().count();
        if (cfg_.doppler) {
            const auto [offset_hz, rate_hz_s] = cfg_.doppler(t);
            channel_->set_doppler(offset_hz, rate_hz_s);
        }
        cfg_.source(buf);
        channel_->process(buf, buf);
        counters_.rx_samples += buf.size();
        if (cfg_.drive_clock) clock_.advance(sim::seconds_d(double(buf.size()) / settings_.sample_rate_hz));
        return buf.size();
    }

    tx_result send(std::span<const cf32> buf, const tx_metadata& md, double) override {
        if (cfg_.sink) cfg_.sink(buf, md);
        counters_.tx_samples += buf.size();
        return {buf.size(), false, false};
    }

    std::string_view driver() const override { return "sim"; }
    const radio_counters& counters() const override { return counters_; }

private:
    sim_radio_config cfg_;
    sim::sim_clock& clock_;
    std::unique_ptr<sim::rf_channel> channel_;
    radio_settings settings_;
    radio_counters counters_;
    bool streaming_ = false;
};

}  // namespace

std::unique_ptr<radio> create_sim_radio(const sim_radio_config& cfg, sim::sim_clock& clock) {
    return std::make_unique<sim_radio>(cfg, clock);
}

std::string_view to_string(radio_errc e) {
    switch (e) {
    case radio_errc::ok: return "ok";
    case radio_errc::no_device: return "no_device";
    case radio_errc::bad_config: return "bad_config";
    case radio_errc::device_error: return "device_error";
    case radio_errc::timeout: return "timeout";
    case radio_errc::not_streaming: return "not_streaming";
    }
    return "?";
}

bool parse_device_args(std::string_view args, std::vector<std::pair<std::string, std::string>>& out,
                       std::string& error) {
    out.clear();
    while (!args.empty()) {
        const std::size_t comma = args.find(',');
        std::string_view token = args.substr(0, comma);
        args = comma == std::string_view::npos ? std::string_view{} : args.substr(comma + 1);
        while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
        while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
        const std::size_t eq = token.find('=');
        if (token.empty() || eq == 0 || eq == std::string_view::npos || eq + 1 == token.size()) {
            error = "device argument '" + std::string(token) + "' is not key=value";
            return false;
        }
        out.emplace_back(std::string(token.substr(0, eq)), std::string(token.substr(eq + 1)));
    }
    return true;
}

}  // namespace qlink::hw
