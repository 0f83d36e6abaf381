// qlinkd telemetry rendering: /status JSON and /metrics Prometheus text from one link_status snapshot.
#include "qlink/terminal/telemetry.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace qlink::terminal {

namespace {

// JSON has no NaN/Inf: a non-finite measurement is as unknown as a missing one.
std::string jnum(const std::optional<double>& v)
{
    if (!v || !std::isfinite(*v)) return "null";
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", *v);
    return buf;
}

std::string jnum(const std::optional<std::uint64_t>& v) { return v ? std::to_string(*v) : "null"; }

std::string jstr(const std::string& s)
{
    std::string o = "\"";
    for (char c : s) {
        if (c == '"' || c == '\\') {
            o += '\\';
            o += c;
        } else if (static_cast<unsigned char>(c) < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
            o += buf;
        } else {
            o += c;
        }
    }
    return o + "\"";
}

class prom {
public:
    void gauge(const char* name, const char* help, const std::optional<double>& v) { put(name, help, "gauge", jnum(v), v.has_value()); }
    void gauge(const char* name, const char* help, const std::optional<std::uint64_t>& v)
    {
        put(name, help, "gauge", jnum(v), v.has_value());
    }
    void counter(const char* name, const char* help, const std::optional<std::uint64_t>& v)
    {
        put(name, help, "counter", jnum(v), v.has_value());
    }
    void state(const char* name, const char* help, const std::string& current, std::initializer_list<const char*> all)
    {
        o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " gauge\n";
        for (const char* s : all) o_ << name << "{state=\"" << s << "\"} " << (current == s ? 1 : 0) << '\n';
    }
    std::string str() const { return o_.str(); }

private:
    void put(const char* name, const char* help, const char* type, const std::string& value, bool known)
    {
        o_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
        // An unknown value is NaN for a gauge (Prometheus convention) and absent for a counter.
        if (known && value != "null") {
            o_ << name << ' ' << value << '\n';
        } else if (std::string_view(type) == "gauge") {
            o_ << name << " NaN\n";
        }
    }
    std::ostringstream o_;
};

}  // namespace

std::string render_status_json(const link_status& s)
{
    std::ostringstream o;
    o << "{\"role\":" << jstr(s.role) << ",\"sim_time\":" << jnum(s.sim_time) << ",\"link_state\":" << jstr(s.link_state)
      << ",\"pat_state\":" << jstr(s.pat_state) << ",\"pat\":{\"acquisitions\":" << jnum(s.pat.acquisitions)
      << ",\"reacquisitions\":" << jnum(s.pat.reacquisitions) << ",\"acquisition_timeouts\":" << jnum(s.pat.acquisition_timeouts)
      << ",\"beacon_dropouts\":" << jnum(s.pat.beacon_dropouts) << ",\"transitions\":" << jnum(s.pat.transitions)
      << ",\"time_to_acquire_s\":" << jnum(s.pat.time_to_acquire_s) << ",\"residual_error_urad\":"
      << jnum(s.pat.residual_error_urad) << ",\"communication_rms_urad\":" << jnum(s.pat.communication_rms_urad)
      << ",\"lag_s\":" << jnum(s.pat.lag_s) << ",\"skipped_s\":" << jnum(s.pat.skipped_s) << "},\"elevation_deg\":" << jnum(s.elevation_deg)
      << ",\"rx_power_dbm\":" << jnum(s.rx_power_dbm) << ",\"esn0_db\":" << jnum(s.esn0_db) << ",\"frames\":{\"tx\":"
      << jnum(s.frames.tx) << ",\"rx_ok\":" << jnum(s.frames.rx_ok) << ",\"rx_crc_fail\":" << jnum(s.frames.rx_crc_fail)
      << ",\"rs_corrected\":" << jnum(s.frames.rs_corrected) << ",\"ldpc_iterations\":" << jnum(s.frames.ldpc_iterations)
      << ",\"decode_fail\":" << jnum(s.frames.decode_fail) << "},\"bits\":{\"rx_channel_errors_est\":"
      << jnum(s.bits.rx_channel_errors_est) << "},\"arq\":{\"retransmissions\":" << jnum(s.arq.retransmissions)
      << ",\"in_flight\":" << jnum(s.arq.in_flight) << ",\"bytes_delivered\":" << jnum(s.arq.bytes_delivered)
      << ",\"bytes_acked\":" << jnum(s.arq.bytes_acked) << ",\"srtt_s\":" << jnum(s.arq.srtt_s) << "},\"keys\":{\"active_key_id\":" << jnum(s.keys.active_key_id)
      << ",\"rotations\":" << jnum(s.keys.rotations) << ",\"keys_consumed\":" << jnum(s.keys.keys_consumed)
      << ",\"pool_level\":" << jnum(s.keys.pool_level) << ",\"fallback_keys\":" << jnum(s.keys.fallback_keys)
      << ",\"source\":" << jstr(s.keys.source) << "},\"qkd\":{\"qber\":" << jnum(s.qkd.qber)
      << ",\"secret_key_rate_bps\":" << jnum(s.qkd.secret_key_rate_bps) << "},\"user\":{\"bytes_in\":" << s.user.bytes_in
      << ",\"bytes_out\":" << s.user.bytes_out << "},\"tun\":";
    if (s.tun.interface.empty()) {
        o << "null";
    } else {
        o << "{\"interface\":" << jstr(s.tun.interface) << ",\"packets_in\":" << s.tun.packets_in << ",\"packets_out\":"
          << s.tun.packets_out << ",\"packets_dropped\":" << s.tun.packets_dropped << ",\"malformed\":" << s.tun.malformed
          << ",\"link_full\":" << s.tun.link_full << "}";
    }
    o << ",\"rf\":";
    if (!s.rf.active) {
        o << "null}";
    } else {
        using opt = std::optional<double>;
        o << "{\"waveform\":" << jstr(s.rf.waveform) << ",\"bits\":" << s.rf.bits << ",\"samples\":" << s.rf.samples
          << ",\"llrs\":" << s.rf.llrs << ",\"doppler_precomp_hz\":" << jnum(opt(s.rf.doppler_precomp_hz))
          << ",\"max_uplink_doppler_hz\":" << jnum(opt(s.rf.max_uplink_doppler_hz))
          << ",\"satellite_residual_hz\":" << jnum(opt(s.rf.satellite_residual_hz))
          << ",\"es_n0_db\":" << jnum(opt(s.rf.es_n0_db))
          << ",\"satellite_locked\":" << (s.rf.satellite_locked ? "true" : "false")
          << ",\"lock_acquired\":" << s.rf.lock_acquired << ",\"radio_errors\":" << s.rf.radio_errors << "}}";
    }
    return o.str();
}

std::string render_metrics(const link_status& s)
{
    using u64 = std::optional<std::uint64_t>;
    prom p;
    p.gauge("qlinkd_sim_time_seconds", "Simulated time of the pass (from the air relay).", s.sim_time);
    p.state("qlinkd_link_state", "Link state (1 = current).", s.link_state, {"up", "down", "acquiring", "idle", "ended"});
    p.state("qlinkd_pat_state", "Pointing, acquisition and tracking state (1 = current).", s.pat_state,
            {"IDLE", "PROGRAM_TRACK", "ACQUISITION", "COARSE_TRACK", "FINE_TRACK", "COMMUNICATION", "n/a"});
    p.counter("qlinkd_pat_acquisitions_total", "PAT acquisitions (beacon found: ACQUISITION -> COARSE_TRACK).", s.pat.acquisitions);
    p.counter("qlinkd_pat_reacquisitions_total", "PAT beacon losses beyond the signal-loss timeout (back to ACQUISITION).",
              s.pat.reacquisitions);
    p.counter("qlinkd_pat_acquisition_timeouts_total", "PAT acquisition scans that timed out without a detection.",
              s.pat.acquisition_timeouts);
    p.counter("qlinkd_pat_beacon_dropouts_total", "PAT beacon gaps while tracking.", s.pat.beacon_dropouts);
    p.counter("qlinkd_pat_transitions_total", "PAT state transitions.", s.pat.transitions);
    p.gauge("qlinkd_pat_time_to_acquire_seconds", "Time to acquire of the last PAT acquisition (simulated seconds).",
            s.pat.time_to_acquire_s);
    p.gauge("qlinkd_pat_residual_error_urad", "PAT pointing error estimate now (quad cell or camera), microradians.",
            s.pat.residual_error_urad);
    p.gauge("qlinkd_pat_communication_rms_urad", "RMS fine pointing error of the current/last COMMUNICATION, microradians.",
            s.pat.communication_rms_urad);
    p.gauge("qlinkd_pat_lag_seconds", "How far the PAT controller is behind the relay's simulated time.", s.pat.lag_s);
    p.gauge("qlinkd_pat_skipped_seconds", "Simulated time the PAT skipped to stay within terminal.max_lag_s.",
            s.pat.skipped_s);
    if (!s.mount.health.empty()) {
        p.state("qlinkd_mount_health", "Real mount (rotctld) health (1 = current); not ok: PAT held idle, mount stopped.",
                s.mount.health, {"ok", "fault", "too_fast"});
    }
    p.counter("qlinkd_mount_failed_commands_total", "rotctld commands that failed (RPRT error, timeout, disconnect, garbage).",
              s.mount.failed_commands);
    p.counter("qlinkd_mount_faults_total", "Real mount health changes into fault.", s.mount.faults);
    p.counter("qlinkd_mount_pace_faults_total", "Mount stopped because the pass ran faster than real time.", s.mount.pace_faults);
    p.counter("qlinkd_mount_holds_total", "Times the PAT was held idle until the real mount answered again.", s.mount.holds);
    p.counter("qlinkd_mount_commands_total", "Commands sent to rotctld (P, p, S, K).", s.mount.commands);
    p.counter("qlinkd_mount_rejected_total", "rotctld RPRT -n replies.", s.mount.rejected);
    p.counter("qlinkd_mount_timeouts_total", "rotctld commands without an answer in time.", s.mount.timeouts);
    p.counter("qlinkd_mount_reconnects_total", "Reconnections to rotctld.", s.mount.reconnects);
    p.counter("qlinkd_mount_protocol_errors_total", "rotctld replies that were not the protocol.", s.mount.protocol_errors);
    p.gauge("qlinkd_mount_azimuth_degrees", "Real mount azimuth axis as last read back (p).", s.mount.az_deg);
    p.gauge("qlinkd_mount_elevation_degrees", "Real mount elevation axis as last read back (p).", s.mount.el_deg);
    p.gauge("qlinkd_mount_error_degrees", "Largest axis difference of that reading to the command in force.", s.mount.error_deg);
    p.gauge("qlinkd_mount_pace", "Relay simulated seconds per wall second (a real mount needs <= 1.2).", s.mount.pace);
    p.gauge("qlinkd_elevation_degrees", "Satellite elevation seen from the station.", s.elevation_deg);
    p.gauge("qlinkd_rx_power_dbm", "Received power of the link this end receives.", s.rx_power_dbm);
    p.gauge("qlinkd_esn0_db", "Es/N0 (RF) or photons per slot (optical) of the received link.", s.esn0_db);
    p.counter("qlinkd_frames_tx_total", "Transfer frames transmitted (idle frames included).", s.frames.tx);
    p.counter("qlinkd_frames_rx_ok_total", "Transfer frames received and accepted.", s.frames.rx_ok);
    p.counter("qlinkd_frames_rx_crc_fail_total", "Received frames with a bad FECF.", s.frames.rx_crc_fail);
    p.counter("qlinkd_rs_corrected_total", "Reed-Solomon symbols corrected.", s.frames.rs_corrected);
    p.counter("qlinkd_ldpc_iterations_total", "LDPC decoder iterations.", s.frames.ldpc_iterations);
    p.counter("qlinkd_decode_fail_total", "Codeblocks the decoder could not correct.", s.frames.decode_fail);
    p.counter("qlinkd_rx_channel_errors_est_total", "Channel bit errors estimated from the decoder's corrections.",
              s.bits.rx_channel_errors_est);
    p.counter("qlinkd_arq_retransmissions_total", "ARQ segments sent again.", s.arq.retransmissions);
    p.gauge("qlinkd_arq_in_flight", "ARQ segments sent and not yet acknowledged.", s.arq.in_flight);
    p.counter("qlinkd_arq_bytes_delivered_total", "User bytes delivered in order to this end's users.", s.arq.bytes_delivered);
    p.counter("qlinkd_arq_bytes_acked_total", "User bytes the far end acknowledged.", s.arq.bytes_acked);
    p.gauge("qlinkd_arq_srtt_seconds", "Smoothed ARQ round trip (sim seconds).", s.arq.srtt_s);
    p.gauge("qlinkd_active_key_id", "Link key ID protecting transmitted frames now.", s.keys.active_key_id);
    p.counter("qlinkd_key_rotations_total", "Key rotations of the transmitter.", s.keys.rotations);
    p.counter("qlinkd_keys_consumed_total", "Keys taken from the key source (both directions).", s.keys.keys_consumed);
    p.gauge("qlinkd_key_pool_level", "Keys ready in the key source (qkmd ACTIVE keys).", s.keys.pool_level);
    p.counter("qlinkd_fallback_keys_total", "Classical X25519 fallback keys this transmitter took (QKD keys had run out).",
              s.keys.fallback_keys);
    p.state("qlinkd_key_source", "Source of the transmit key now (1 = current).", s.keys.source, {"primary", "fallback"});
    p.gauge("qlinkd_qkd_qber", "QBER of the current pass (from qkmd).", s.qkd.qber);
    p.gauge("qlinkd_qkd_secret_key_rate_bps", "Secret key rate of the current pass (from qkmd).", s.qkd.secret_key_rate_bps);
    p.counter("qlinkd_user_bytes_in_total", "Bytes taken from local users (TCP and UDP).", u64{s.user.bytes_in});
    p.counter("qlinkd_user_bytes_out_total", "Bytes handed to local users (TCP and UDP).", u64{s.user.bytes_out});
    p.counter("qlinkd_air_messages_rx_total", "RX_LLR messages from the relay.", u64{s.extra.air_messages_rx});
    p.counter("qlinkd_air_messages_tx_total", "TX_BITS messages to the relay.", u64{s.extra.air_messages_tx});
    p.counter("qlinkd_air_bits_tx_total", "Coded bits sent to the relay.", u64{s.extra.air_bits_tx});
    p.counter("qlinkd_air_llrs_rx_total", "Soft bits received from the relay.", u64{s.extra.air_llrs_rx});
    p.counter("qlinkd_air_reconnects_total", "Connections to the relay after the first.", u64{s.extra.air_reconnects});
    p.counter("qlinkd_air_protocol_errors_total", "Malformed messages from the relay.", u64{s.extra.air_protocol_errors});
    p.counter("qlinkd_user_connections_total", "User TCP connections accepted.", u64{s.extra.user_connections});
    p.counter("qlinkd_user_datagrams_in_total", "User datagrams taken.", u64{s.extra.user_datagrams_in});
    p.counter("qlinkd_user_datagrams_out_total", "Datagrams delivered to local users.", u64{s.extra.user_datagrams_out});
    p.counter("qlinkd_user_datagrams_dropped_total", "User datagrams refused (link queue full or no receiver).",
              u64{s.extra.user_datagrams_dropped});
    // Without a TUN interface: HELP and TYPE only, no sample (like the other counters of absent parts).
    const bool tun = !s.tun.interface.empty();
    p.counter("qlinkd_tun_packets_in_total", "IP packets read from the TUN interface and sent over the link.",
              tun ? u64{s.tun.packets_in} : u64{});
    p.counter("qlinkd_tun_packets_out_total", "IP packets from the far end written to the TUN interface.",
              tun ? u64{s.tun.packets_out} : u64{});
    p.counter("qlinkd_tun_packets_dropped_total", "IP packets dropped at this end (malformed, link full, write failed).",
              tun ? u64{s.tun.packets_dropped} : u64{});
    p.counter("qlinkd_tun_malformed_total", "Packets that were not whole IPv4/IPv6 packets (either direction), dropped.",
              tun ? u64{s.tun.malformed} : u64{});
    p.counter("qlinkd_tun_link_full_total", "IP packets dropped because the link's IP queue was full.",
              tun ? u64{s.tun.link_full} : u64{});
    // rf.radio = "sim": the station's sample-level RF return chain (absent otherwise).
    const bool rf = s.rf.active;
    auto rf_num = [rf](double v) { return rf ? std::optional<double>(v) : std::nullopt; };
    p.counter("qlinkd_rf_samples_total", "Samples the station's RF return chain sent to the radio.", rf ? u64{s.rf.samples} : u64{});
    p.counter("qlinkd_rf_radio_errors_total", "RF transmit trouble: late bursts, underflows, dropped samples, failed predictions.",
              rf ? u64{s.rf.radio_errors} : u64{});
    p.gauge("qlinkd_rf_doppler_precomp_hz", "Uplink Doppler pre-compensation applied now (Hz).", rf_num(s.rf.doppler_precomp_hz));
    p.gauge("qlinkd_rf_satellite_residual_hz", "Carrier offset the simulated satellite's loop tracks (what pre-compensation left).",
            rf_num(s.rf.satellite_residual_hz));
    p.gauge("qlinkd_rf_satellite_locked", "1 while the simulated satellite's carrier loop is locked.",
            rf_num(s.rf.satellite_locked ? 1.0 : 0.0));
    p.gauge("qlinkd_rf_es_n0_db", "Es/N0 of the simulated RF return channel (the relay's link budget), dB.", rf_num(s.rf.es_n0_db));
    p.counter("qlinkd_key_errors_total", "Key source failures (qkmd unreachable, unknown key ID, no key).",
              u64{s.extra.key_errors});
    p.counter("qlinkd_pat_rx_erased_bits_total",
              "Downlink LLRs erased because the terminal was not pointing (not FINE_TRACK or COMMUNICATION).",
              s.extra.pat_gated_llrs);
    p.gauge("qlinkd_downlink_bps", "Simulated downlink line rate (coded bits per simulated second).", s.extra.downlink_bps);
    p.gauge("qlinkd_return_bps", "Simulated return line rate (coded bits per simulated second).", s.extra.return_bps);
    return p.str();
}

std::optional<double> prometheus_value(const std::string& text, const std::string& series)
{
    std::size_t pos = 0;
    while (pos < text.size()) {
        const auto eol = text.find('\n', pos);
        const std::string_view line(text.data() + pos, (eol == std::string::npos ? text.size() : eol) - pos);
        pos = eol == std::string::npos ? text.size() : eol + 1;
        if (line.size() <= series.size() || line.substr(0, series.size()) != series || line[series.size()] != ' ') continue;
        auto v = line.substr(series.size() + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        if (v.starts_with("NaN")) return std::nullopt;
        double d = 0.0;
        const auto r = std::from_chars(v.data(), v.data() + v.size(), d);
        if (r.ec != std::errc()) return std::nullopt;
        return d;
    }
    return std::nullopt;
}

}  // namespace qlink::terminal
