// The pass time series recorded by `qlink demo` and its report: report.html (inline SVG), CSV and JSON.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <limits>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qlink::terminal {

inline constexpr double no_value = std::numeric_limits<double>::quiet_NaN();

/// One poll of the whole system at one simulated instant. Counters are cumulative as the daemons
/// report them; NaN = not reported (yet). The report turns counters into per-interval rates.
struct pass_sample {
    double sim_time_s = no_value;  ///< seconds since the pass start (from the daemons' status)
    double wall_time_s = no_value; ///< seconds since the demo started
    double elevation_deg = no_value;
    double rx_power_dbm = no_value;  ///< optical downlink at the ground
    double esn0_db = no_value;       ///< return link at the space side (or photons/slot when optical)
    std::string link_state;          ///< up | down | acquiring | idle | ended (ground side)
    std::string pat_state;
    // Ground receiver (downlink) counters.
    double frames_rx_ok = no_value;
    double frames_crc_fail = no_value;
    double decode_fail = no_value;
    double rs_corrected = no_value;
    double ldpc_iterations = no_value;
    double channel_bit_errors = no_value;  ///< estimated channel bit errors before decoding
    // Space sender (downlink) counters.
    double frames_tx = no_value;
    double arq_retransmissions = no_value;
    double arq_in_flight = no_value;
    double arq_srtt_s = no_value;  ///< the sender's smoothed ARQ round trip, sim seconds
    double bytes_delivered = no_value;  ///< user bytes out of ground qlinkd's user port
    double bytes_sent = no_value;       ///< user bytes into space qlinkd's user port
    // Keys and QKD.
    double qber = no_value;  ///< fraction (0.02 = 2 %)
    double secret_key_rate_bps = no_value;
    double key_pool_level = no_value;  ///< keys available to the link (ground qkmd)
    double keys_consumed = no_value;
    double key_rotations = no_value;
    double active_key_id = no_value;
};

/// A key rotation as the report marks it.
struct rotation_event {
    double sim_time_s = 0;
    std::string label;  ///< e.g. "key 17"
};

/// The recorded pass: samples in time order, rotations, and the summary figures (name, value) shown
/// in the report's table and written into the JSON's meta block.
struct pass_timeseries {
    std::vector<pass_sample> samples;
    std::vector<rotation_event> rotations;
    std::vector<std::pair<std::string, std::string>> summary;

    /// Rotation events from increments of `key_rotations` between consecutive samples (used when the
    /// daemons report a counter rather than events).
    void derive_rotations();
};

/// Names of the CSV/JSON columns, in order (the first is sim_time_s).
std::vector<std::string_view> timeseries_columns();

/// CSV: a header of timeseries_columns(), one line per sample, NaN as an empty field.
void write_timeseries_csv(std::ostream& out, const pass_timeseries& ts);

/// JSON: {"summary": {...}, "columns": [...], "rotations": [{"sim_time_s":..,"label":..}],
///        "samples": [{column: value|null|"string"}, ...]}.
void write_timeseries_json(std::ostream& out, const pass_timeseries& ts);

/// Identifiers of the plots in report.html (each is an <svg id="plot-<name>">).
std::vector<std::string_view> report_plot_ids();

/// The report page: one self-contained XHTML-compatible document (no scripts, no external
/// resources) with the summary table and one inline SVG per plot id, rotations marked and
/// link-down intervals shaded in every plot.
std::string render_report_html(const pass_timeseries& ts, std::string_view title);

struct report_files {
    bool ok = false;
    std::string error;  ///< which file could not be written
    std::filesystem::path html, csv, json;
};

/// Writes report.html, timeseries.csv and timeseries.json into `dir` (created if missing).
report_files write_pass_report(const std::filesystem::path& dir, const pass_timeseries& ts, std::string_view title);

}  // namespace qlink::terminal
