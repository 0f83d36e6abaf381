// qlinkd configuration: the TOML schema, parsed and validated into typed settings.
#pragma once

#include "qlink/sim/clock.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/fallback_keys.hpp"
#include "qlink/terminal/link_engine.hpp"
#include "qlink/terminal/pat.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace qlink::terminal {

/// A configuration error; the message names the key and the allowed values or range.
class qlinkd_config_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class key_source_kind { qkmd, memory };
enum class security_mode { auth_enc, auth_only, enc_only };
enum class exhaustion_policy { stop, fallback };
/// The mount the PAT commands: the simulated gimbal only, or also a real one through Hamlib rotctld.
enum class mount_kind { simulated, rotctld };

/// An IPv4 address with its prefix length, "10.77.0.1/30".
struct ipv4_prefix {
    std::array<std::uint8_t, 4> address{};
    std::uint8_t length = 0;  ///< 1..32
    bool operator==(const ipv4_prefix&) const = default;
};

/// Longest TUN interface name the kernel takes (IFNAMSIZ - 1).
inline constexpr std::size_t tun_name_max = 15;

struct qlinkd_config {
    struct link_section {
        link_role role = link_role::ground;
        std::string tx_profile;  ///< modem chain profile (profile.hpp) of what this end transmits
        std::string rx_profile;  ///< ... and of what it receives (the peer's tx_profile)
        std::uint16_t spacecraft_id = 0xAB;  ///< AOS: 8 bits
        std::uint8_t tx_vcid = 1;
        /// SIGTERM: keep the air link running this long (wall seconds) for ARQ to drain.
        double drain_timeout_s = 10.0;
        /// Exit (after draining) once the relay says END_OF_PASS.
        bool exit_after_pass = false;
        /// Directory of the delivery record (what this end's users hold per stream) that a restart
        /// resumes from; empty: none (a restart may lose or repeat bytes; docs/qlinkd.md).
        std::string state_dir;
    } link;

    struct station_section {
        bool present = false;
        double lat_deg = 0.0, lon_deg = 0.0, alt_m = 0.0;
    } station;

    struct satellite_section {
        std::string tle_file;  ///< empty: none (the relay owns the pass geometry)
        std::string tle_name;  ///< the satellite's name when the file holds several sets
    } satellite;

    struct air_section {
        std::string host = "127.0.0.1";
        std::uint16_t port = 0;  ///< required
        double connect_timeout_s = 10.0;
        /// Coded bits per TX_BITS message; 0 = about 10 ms of the simulated line rate.
        std::uint32_t block_bits = 0;
        /// Kernel send buffer. Every byte queued in the kernel (and in the relay's receive buffer)
        /// is channel time ahead of the relay's clock, i.e. ARQ round trip: 4 KiB, which the
        /// kernel doubles, is 0.8 s of a 10 kbit/s return link sent as TX_LLR bytes. tx_lead_s
        /// keeps the transmitter from filling it.
        std::uint32_t send_buffer_bytes = 4096;
        /// How far ahead of the relay's simulated clock the transmitter may hand a message to
        /// the relay (its first bit's air time; a message adds its own length, block_bits): the
        /// queue between the link layer and the air, i.e. latency for every frame and every ARQ
        /// acknowledgement. The relay reads up to its read_ahead_s (0.25 s) early, so with a
        /// lead + message below that nothing waits in socket buffers.
        double tx_lead_s = 0.05;
        /// UTC instant the relay's sim_time counts from (its "pass start"); required by PAT.
        std::optional<sim::time_point> sim_epoch;
    } air;

    /// The optical terminal's pointing, acquisition and tracking (ground role).
    struct terminal_section {
        /// false ("off"): pat_state "n/a"; true ("simulated"): terminal::pat_controller over the
        /// simulated mount, FSM/quad cell and transceiver, stepped on the relay's simulated time.
        bool pat_simulated = false;
        double fine_rate_hz = 1000.0;      ///< controller step rate in simulated time
        double coarse_rate_hz = 100.0;     ///< camera / coarse loop rate
        /// simulated: the gimbal's command rate in simulated time (100 Hz left the simulated gimbal a
        /// sawtooth the FSM could not null: FINE_TRACK at ~20 urad, never COMMUNICATION).
        /// rotctld: P commands per wall second to the real mount (default 10, allowed 1..50); the
        /// simulated gimbal twin the optics sees then keeps min(1000, fine_rate_hz).
        double mount_rate_hz = 1000.0;
        /// rotctld: the real mount follows the PAT's mount commands on wall-clock time, so the
        /// pass must run at real time (the relay's sim_time may not run faster than 1.2 x wall).
        mount_kind mount = mount_kind::simulated;
        std::string mount_host = "127.0.0.1";   ///< rotctld's address (mount_address = "host:port")
        std::uint16_t mount_port = 4533;
        double mount_timeout_ms = 1000.0;       ///< per rotctld command (connect, send, reply)
        /// rotctld: the real mount counts as on its command (PROGRAM_TRACK may end) within this.
        double mount_settle_deg = 0.5;
        /// Mechanical range of the mount (both the real one and the simulated twin): azimuth may run
        /// past 360 (0..450: a pass across north needs no unwind), elevation to 180 on a flip mount.
        hw::mount_limits mount_limits{};
        bool mount_flip = false;                ///< point with (az + 180, 180 - el): overhead passes without an azimuth swing
        double elevation_mask_deg = 10.0;
        double uncertainty_cone_urad = 1000.0;  ///< acquisition scan half-angle
        double pointing_bias_urad = 300.0;      ///< simulated mount-model error the scan must find
        double acquisition_timeout_s = 30.0;
        double signal_loss_timeout_s = 0.5;
        double mount_slew_deg_s = 6.0;
        /// PAT further behind the relay than this (simulated seconds) skips ahead: bounded cost.
        double max_lag_s = 5.0;
        std::uint64_t seed = 1;
    } terminal;

    /// The RF return link's transmit side (ground role).
    struct rf_section {
        /// false ("relay"): coded bits go to the relay, whose return channel is BPSK + AWGN per bit;
        /// true ("sim"): the station's RF transmit chain at sample level (rf_transmitter on the sim
        /// radio, uplink Doppler pre-compensated from satellite.tle) into the simulated satellite's
        /// uncorrected receiver; its LLRs go to the relay (TX_LLR). Needs [station], satellite.tle
        /// and air.sim_epoch.
        bool radio_sim = false;
        unsigned samples_per_symbol = 4;
        double uplink_hz = 7.2e9;                ///< carrier the Doppler scales with
        bool precompensate_doppler = true;       ///< false: the satellite sees the whole uplink Doppler
        double oscillator_error_hz = 800.0;      ///< the satellite's carrier error (its loop takes it)
        double phase_noise_linewidth_hz = 20.0;
        std::uint64_t seed = 1;
    } rf;

    struct keys_section {
        key_source_kind source = key_source_kind::qkmd;
        std::string socket;           ///< qkmd injection socket (source = qkmd)
        std::string qkmd_metrics;     ///< optional "host:port" of qkmd's /metrics (pool level, QBER, key rate)
        std::uint64_t memory_seed = 1;    ///< TEST ONLY (source = memory)
        std::uint32_t memory_keys = 1000;  ///< TEST ONLY
    } keys;

    struct security_section {
        security_mode mode = security_mode::auth_enc;
        std::uint64_t rotate_every_frames = 1u << 20;
        double rotate_every_s = 0.0;  ///< 0 = off (simulated seconds)
        exhaustion_policy on_exhaustion = exhaustion_policy::stop;
        /// on_exhaustion = fallback (docs/qlinkd.md, "Fallback keys"): this end's X25519 private key
        /// (PEM), the far end's public key (PEM) and the file holding the transmit key counter.
        std::string fallback_private_key, fallback_peer_public_key, fallback_state;
    } security;

    struct arq_section {
        std::uint32_t window = 4096;  ///< segments, power of two, must equal the peer's
        // A space link's round trip is frames queued at the line rate plus the return link's
        // acknowledgement delay, easily seconds at 100 kbit/s; a fade lasts up to tens of
        // seconds. The RTT estimator adapts inside this clamp (cf. RFC 6298's 1 s / 60 s).
        double rto_min_ms = 200.0;
        double rto_max_ms = 60000.0;
        double ack_interval_ms = 20.0;
    } arq;

    struct user_section {
        std::string address = "127.0.0.1";
        std::uint16_t tcp_port = 0;  ///< 0 = any free port (printed)
        std::uint16_t udp_port = 0;
        bool udp_enabled = true;
        /// Where received datagrams go: "host:port"; empty = the last local sender.
        std::string udp_deliver;
        /// TUN interface carrying IP packets across the link (its own datagram channel, never mixed
        /// with the UDP port's); empty = none. Needs CAP_NET_ADMIN and /dev/net/tun.
        std::string tun;
        /// Set on the interface, which is then brought up; nullopt = the operator configures it.
        std::optional<ipv4_prefix> tun_address;
        /// 1400 by default: a packet spans several frames and is lost whole with any of them (no ARQ),
        /// so bigger packets cost more on a fading link; 576..9000.
        std::uint32_t tun_mtu = 1400;
        /// The link's IP queue per direction (link_engine_config::ip_queue_bytes): what does not fit is
        /// dropped (IP's congestion signal). Bigger = more delay before the first loss.
        std::uint32_t tun_queue_bytes = 64u << 10;
    } user;

    struct telemetry_section {
        std::string address = "127.0.0.1";
        std::uint16_t port = 0;
    } telemetry;

    struct log_section {
        bool json = false;  ///< logfmt lines by default, JSON lines with format = "json"
        bool debug = false;
    } log;
};

std::string_view role_name(link_role r);
std::string_view to_string(security_mode m);
std::string_view to_string(exhaustion_policy p);

/// The link engine's configuration for this daemon's settings.
link_engine_config make_engine_config(const qlinkd_config& c);

/// The fallback key source's settings for [security] on_exhaustion = "fallback" (on_tx_key unset).
fallback_key_source::config make_fallback_config(const qlinkd_config& c);

/// The PAT controller's settings for [terminal] (defaults of pat_config for everything not exposed).
pat_config make_pat_config(const qlinkd_config& c);

/// Parses TOML text; throws qlinkd_config_error with one line naming the key. Files named in the
/// configuration (TLE) are read relative to `base_dir` when relative.
qlinkd_config parse_qlinkd_config(std::string_view toml_text, std::string_view source_name = "config",
                                  const std::string& base_dir = {});
qlinkd_config load_qlinkd_config(const std::string& path);

/// satellite.tle's element set (the one named satellite.name, else the first); throws qlinkd_config_error.
sim::tle load_tle(const qlinkd_config& c);
/// [station] as a ground station; throws qlinkd_config_error.
sim::ground_station::config station_config(const qlinkd_config& c);

/// Parses "a.b.c.d/len" (len 1..32, no leading zeros, no spaces); nullopt when malformed.
std::optional<ipv4_prefix> parse_ipv4_prefix(std::string_view text);

/// Splits "host:port"; nullopt when malformed.
std::optional<std::pair<std::string, std::uint16_t>> split_host_port(std::string_view text);

}  // namespace qlink::terminal
