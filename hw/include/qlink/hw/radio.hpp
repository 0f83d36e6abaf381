// The radio interface (streaming complex baseband with metadata), its driver table and back-ends.
#pragma once

#include "qlink/sim/clock.hpp"
#include "qlink/sim/rf_channel.hpp"

#include <complex>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qlink::hw {

using cf32 = std::complex<float>;

/// Front-end settings. Values are what the caller asks for; the radio reports
/// what the hardware actually set (rates and frequencies get quantised).
struct radio_settings {
    double sample_rate_hz = 1e6;
    double center_freq_hz = 8.2e9;
    double rx_gain_db = 30.0;
    double tx_gain_db = 0.0;
    double bandwidth_hz = 0.0;  ///< 0 = the device's default for the sample rate
};

enum class radio_errc { ok, no_device, bad_config, device_error, timeout, not_streaming };
std::string_view to_string(radio_errc e);

struct radio_result {
    radio_errc code = radio_errc::ok;
    std::string message;
    explicit operator bool() const { return code == radio_errc::ok; }
};

/// What happened on the receive stream, reported as data (UHD's rx_metadata_t idea).
struct rx_metadata {
    enum class event { none, overflow, late_command, timeout, broken_chain, bad_packet, other };
    event error = event::none;
    bool has_time = false;
    std::int64_t time_ns = 0;  ///< time of the first sample in the buffer (device or simulated clock)
    bool end_of_burst = false;
};

struct tx_metadata {
    bool has_time = false;      ///< send at time_ns instead of as soon as possible
    std::int64_t time_ns = 0;
    bool start_of_burst = false;
    bool end_of_burst = false;
};

struct tx_result {
    std::size_t sent = 0;
    bool underflow = false;
    bool late = false;
};

/// Counters every radio keeps.
struct radio_counters {
    std::uint64_t rx_samples = 0;
    std::uint64_t tx_samples = 0;
    std::uint64_t overflows = 0;
    std::uint64_t underflows = 0;
    std::uint64_t late_commands = 0;
    std::uint64_t timeouts = 0;
    std::uint64_t other_errors = 0;
};

class radio {
public:
    virtual ~radio() = default;
    virtual radio_result configure(const radio_settings& s) = 0;
    /// The settings the device actually runs with.
    virtual radio_settings actual() const = 0;
    /// Retunes now, or at the given device time (timed command).
    virtual radio_result tune(double center_freq_hz, std::optional<std::int64_t> at_time_ns = std::nullopt) = 0;
    /// Sets the device clock that stamps samples and times commands, in ns since the Unix epoch
    /// (UTC): now, or at the next PPS edge. The Doppler predictions read sample timestamps as UTC,
    /// so a station sets this once at start-up (to the host's NTP/GPS time, or a GPSDO's at PPS).
    virtual radio_result set_time(std::int64_t ns_since_epoch, bool at_next_pps = false) = 0;
    virtual radio_result start_rx(std::optional<std::int64_t> at_time_ns = std::nullopt) = 0;
    virtual radio_result stop_rx() = 0;
    /// Receives up to buf.size() samples into the caller's buffer; returns how many.
    virtual std::size_t recv(std::span<cf32> buf, rx_metadata& md, double timeout_s) = 0;
    virtual tx_result send(std::span<const cf32> buf, const tx_metadata& md, double timeout_s) = 0;
    virtual std::string_view driver() const = 0;
    virtual const radio_counters& counters() const = 0;
};

/// Simulated radio: what the satellite transmits (`source`), through the sim
/// RF channel (Doppler, phase noise, AWGN), timestamped by the simulated clock;
/// what the station transmits goes to `sink`. Runs as fast as it is called.
struct sim_radio_config {
    sim::rf_channel::config channel{};
    /// Fills a buffer with the satellite's transmitted baseband at the radio's
    /// sample rate; called from recv().
    std::function<void(std::span<cf32>)> source;
    /// Receives what the station transmits (may be empty).
    std::function<void(std::span<const cf32>, const tx_metadata&)> sink;
    /// Advance the clock by the duration of the samples delivered (simulated
    /// time follows the stream); otherwise the clock is driven elsewhere.
    bool drive_clock = false;
    /// The channel's Doppler truth (offset Hz, rate Hz/s) at a time, e.g. from the pass geometry;
    /// read at the timestamp of every recv() buffer (linear within it). Empty: the channel's fixed
    /// frequency_offset_hz / frequency_rate_hz_s.
    std::function<std::pair<double, double>(sim::time_point)> doppler;
};

std::unique_ptr<radio> create_sim_radio(const sim_radio_config& cfg, sim::sim_clock& clock);

/// Radios are chosen at run time from this table: "sim", and "uhd" where the
/// build found UHD. `args` is the device argument string UHD users know
/// ("type=b200,serial=3150A1B"), unused by "sim".
struct radio_driver {
    std::string_view name;
    bool available;
    std::string_view description;
};
std::span<const radio_driver> radio_drivers();

/// Opens a UHD device. Errors (no device, bad arguments, UHD exceptions) come
/// back as a result with a message naming the arguments; nothing UHD throws
/// escapes hw/uhd.
struct uhd_radio_config {
    std::string args;                  ///< "type=b200,serial=..."; empty = first device found
    std::string subdev;                ///< e.g. "A:A"; empty = default
    std::string rx_antenna = "RX2";
    std::string tx_antenna = "TX/RX";
    std::string clock_source;          ///< "internal", "external", "gpsdo"; empty = default
};
std::unique_ptr<radio> create_uhd_radio(const uhd_radio_config& cfg, radio_result& error);

/// Parses a UHD argument string ("key=value,key=value") into pairs; false (with
/// `error` naming the bad token) on syntax errors such as "type=b200,,=x".
bool parse_device_args(std::string_view args, std::vector<std::pair<std::string, std::string>>& out,
                       std::string& error);

}  // namespace qlink::hw
