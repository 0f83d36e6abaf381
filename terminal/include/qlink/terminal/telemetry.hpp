// qlinkd telemetry: the /status snapshot (pass_spec.md) and its JSON and Prometheus renderings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace qlink::terminal {

/// Everything /status and /metrics show. Unknown numbers are nullopt (JSON null, no Prometheus
/// sample). Field names follow the JSON keys of pass_spec.md.
struct link_status {
    std::string role = "ground";
    std::optional<double> sim_time;
    std::string link_state = "idle";  ///< up | down | acquiring | idle | ended
    std::string pat_state = "n/a";    ///< IDLE | PROGRAM_TRACK | ... | n/a
    std::optional<double> elevation_deg, rx_power_dbm, esn0_db;

    /// PAT counters (terminal.pat = "simulated"; all null with PAT off). /status "pat":{...}.
    struct {
        std::optional<std::uint64_t> acquisitions;         ///< beacon found (ACQUISITION -> COARSE_TRACK)
        std::optional<std::uint64_t> reacquisitions;      ///< beacon lost beyond the timeout, back to ACQUISITION
        std::optional<std::uint64_t> acquisition_timeouts; ///< scans that ran out without a detection
        std::optional<std::uint64_t> beacon_dropouts;      ///< beacon gaps while tracking
        std::optional<std::uint64_t> transitions;          ///< state changes
        std::optional<double> time_to_acquire_s;           ///< of the last acquisition (simulated seconds)
        std::optional<double> residual_error_urad;         ///< current pointing error estimate (tracking states)
        std::optional<double> communication_rms_urad;      ///< rms fine error of the current/last COMMUNICATION
        std::optional<double> lag_s;                       ///< PAT behind the relay's time (simulated seconds)
        std::optional<double> skipped_s;                   ///< simulated time skipped to bound that lag
    } pat;

    /// The real mount (terminal.mount = "rotctld"; empty/null otherwise). /metrics only.
    struct {
        std::string health;  ///< ok | fault | too_fast; empty without a real mount
        std::optional<std::uint64_t> failed_commands, faults, pace_faults, holds;
        std::optional<std::uint64_t> commands, rejected, timeouts, reconnects, protocol_errors;
        std::optional<double> az_deg, el_deg, error_deg, pace;
    } mount;

    struct {
        std::optional<std::uint64_t> tx, rx_ok, rx_crc_fail, rs_corrected, ldpc_iterations, decode_fail;
    } frames;
    struct {
        std::optional<std::uint64_t> rx_channel_errors_est;
    } bits;
    struct {
        std::optional<std::uint64_t> retransmissions, in_flight, bytes_delivered, bytes_acked;
        /// Smoothed round trip of the ARQ (data out, acknowledgement back), sim seconds; null before a sample.
        std::optional<double> srtt_s;
    } arq;
    struct {
        std::optional<std::uint64_t> active_key_id, rotations, keys_consumed, pool_level;
        /// security.on_exhaustion = "fallback": classical keys this transmitter took (null under "stop").
        std::optional<std::uint64_t> fallback_keys;
        /// "fallback" while the transmit key is a classical fallback key, else "primary" (QKD or test keys).
        std::string source = "primary";
    } keys;
    struct {
        std::optional<double> qber, secret_key_rate_bps;
    } qkd;
    struct {
        std::uint64_t bytes_in = 0, bytes_out = 0;
    } user;
    /// user.tun: IP packets through the link. /status "tun": null without a TUN interface.
    struct {
        std::string interface;  ///< empty: no TUN interface
        std::uint64_t packets_in = 0;       ///< read from the interface and queued on the link
        std::uint64_t packets_out = 0;      ///< from the far end, written to the interface
        std::uint64_t packets_dropped = 0;  ///< every drop at this end (the next two, write failures, receive queue full)
        std::uint64_t malformed = 0;        ///< not a whole IPv4/IPv6 packet (either direction)
        std::uint64_t link_full = 0;        ///< the link's IP queue was full (backpressure: dropped, never waited for)
    } tun;

    /// rf.radio = "sim": the station's RF return chain at sample level. /status "rf": null otherwise.
    struct {
        bool active = false;
        std::string waveform;               ///< modulation, rate, carrier, pre-compensation on/off
        std::uint64_t bits = 0;             ///< coded bits modulated
        std::uint64_t samples = 0;          ///< samples the radio took
        std::uint64_t llrs = 0;             ///< LLRs the simulated satellite demodulated (sent to the relay)
        double doppler_precomp_hz = 0.0;    ///< last pre-compensation applied (minus the predicted uplink Doppler)
        double max_uplink_doppler_hz = 0.0; ///< largest true uplink Doppler so far
        double satellite_residual_hz = 0.0; ///< what the satellite's carrier loop tracks
        double es_n0_db = 0.0;              ///< the channel's Es/N0 (the relay's return link budget)
        bool satellite_locked = false;
        std::uint64_t lock_acquired = 0;
        std::uint64_t radio_errors = 0;     ///< late, underflows, dropped samples, prediction errors
    } rf;

    /// Not in /status (kept out of the agreed schema) but in /metrics.
    struct {
        std::uint64_t air_messages_rx = 0, air_messages_tx = 0, air_bits_tx = 0, air_llrs_rx = 0;
        std::uint64_t air_reconnects = 0, air_protocol_errors = 0;
        std::uint64_t user_connections = 0, user_datagrams_in = 0, user_datagrams_out = 0, user_datagrams_dropped = 0;
        std::uint64_t key_errors = 0;
        std::optional<double> downlink_bps, return_bps;
        /// terminal.pat = "simulated": downlink LLRs erased because the terminal was not pointing
        /// (not in FINE_TRACK or COMMUNICATION); absent with PAT off.
        std::optional<std::uint64_t> pat_gated_llrs;
    } extra;
};

/// One JSON object, every field of pass_spec.md present, unknown numbers null.
std::string render_status_json(const link_status& s);
/// Prometheus text exposition (version 0.0.4), metric names qlinkd_*.
std::string render_metrics(const link_status& s);

/// Reads one Prometheus sample value (`name` or `name{labels}` exactly) from exposition text;
/// nullopt when absent or not a number. Used to scrape qkmd's /metrics.
std::optional<double> prometheus_value(const std::string& text, const std::string& series);

}  // namespace qlink::terminal
