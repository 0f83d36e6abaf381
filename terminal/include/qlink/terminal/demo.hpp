// `qlink demo`: one quantum-secured pass end to end — simulator, two qkmd, two qlinkd — on loopback.
#pragma once

#include "qlink/terminal/report.hpp"

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

namespace qlink::terminal {

struct demo_config {
    std::filesystem::path out_dir = "qlink-demo-out";  ///< configs, PKI, logs, stores, report
    /// Where qlink-sim, qkmd and qlinkd are: a folder holding them, or a build tree's root. Empty:
    /// next to the running qlink (build tree layout), then PATH.
    std::filesystem::path bin_dir;
    std::filesystem::path tle_file;  ///< empty: the bundled sim/data/qlinksat-1.tle
    std::string station = "52.0116,4.3571,0";  ///< lat,lon,alt_m (Delft)
    std::string start;                          ///< ISO 8601 UTC; empty: AOS - 30 s of the first pass
    double speed = 15.0;                        ///< simulated seconds per wall second (the ~12-min default pass in < 60 s)
    std::filesystem::path user_file;            ///< empty: generate `generated_bytes` random bytes
    std::uint64_t generated_bytes = 0;          ///< 0: sized from the link's line rate and the pass
    std::uint64_t seed = 1;
    double poll_hz = 4.0;
    double rotate_every_s = 30.0;   ///< link key rotation (simulated seconds)
    double wall_timeout_s = 600.0;  ///< give up (and report) after this long
    double qkd_block_s = 1.0;
    double downlink_bps = 0;  ///< simulated downlink line rate (coded bit/s); 0: the simulator's default
    /// Modem profile of the optical downlink (modem::builtin_profiles(): the concatenated CCSDS chain,
    /// or an LDPC one such as "ldpc-c2" / "ar4ja-4096-r12"); the return link keeps qlinkd's default.
    std::string downlink_profile = "ccsds-tm-rs223i4-conv12";
    /// Detections per post-processing block: large enough for a positive finite-key length, small
    /// enough that the link gets its first keys early. Measured on the default pass: 200 000
    /// (qkmd's default) gives no key and 500 000 none either; 1 000 000 gives the first keys ~280 s
    /// into the pass (about 110 keys of 256 bits by LOS, the file arrives); 2 000 000 about 800 keys
    /// but the first only at ~430 s, too late for the file at 100 kbit/s.
    std::size_t qkd_block_detections = 1000000;
    bool keys_from_qkd = true;             ///< false: qkmd's test key source (both ends seeded alike)
    /// Where qlinkd takes link keys: true = its qkmd (injection socket, QKD keys); false = qlinkd's
    /// TEST-ONLY seeded keys (for isolating link problems from key problems; said in the summary).
    bool link_keys_from_qkmd = true;
    bool progress = true;                  ///< live progress line on `out` (\r updated)
    /// A cloud over the station for this many simulated seconds, put by the simulator's control port
    /// where it tests the link: once a third of the file has arrived (the random clouds of the
    /// pass may miss the transfer). 0: none, only the random clouds.
    double cloud_s = 8.0;
    /// The RF return link at sample level: the ground qlinkd runs the station's RF transmit chain
    /// (RRC BPSK, uplink Doppler pre-compensation) into the simulated satellite's receiver
    /// ([rf] radio = "sim"). false: the relay's per-bit BPSK + AWGN channel.
    bool rf_samples = true;

    /// Hook for fault tests: called once per poll with the demo's view of the pass; may kill and
    /// restart daemons through the control (see demo_control).
    std::function<void(class demo_control&)> on_poll;
};

/// What `on_poll` can see and do while the pass runs.
class demo_control {
public:
    virtual ~demo_control() = default;
    virtual double sim_time_s() const = 0;  ///< latest simulated time reported, NaN before the first
    virtual const pass_sample& last_sample() const = 0;
    /// Kill -9 one daemon ("qkmd-alice", "qkmd-bob", "qlinkd-space", "qlinkd-ground").
    virtual bool kill_daemon(const std::string& name) = 0;
    /// Start a killed daemon again with the same configuration (and ports where the daemon allows).
    virtual bool restart_daemon(const std::string& name) = 0;
};

struct demo_result {
    bool ok = false;          ///< everything below held
    std::string failure;      ///< first reason when not ok, one line
    bool file_intact = false; ///< SHA-256 of what ground delivered equals the file's
    bool keys_agree = false;  ///< ETSI 014: both KMEs returned the same bytes for the same key IDs
    bool keys_unique = false; ///< no key ID used twice by the link (from the qlinkd logs) nor served twice
    std::uint64_t file_bytes = 0, bytes_delivered = 0;
    std::uint64_t rotations = 0, retransmissions = 0;
    /// Fades (ground link out of "up" and back) while user data was still undelivered, and how
    /// many of them ARQ repaired: it retransmitted and delivery resumed within 60 s.
    std::uint64_t fades = 0, fades_recovered = 0;
    double downlink_bps = 0, return_bps = 0;  ///< simulated line rates (coded bits per simulated second)
    double sim_seconds = 0, wall_seconds = 0;
    std::string sha256;
    report_files report;
    pass_timeseries series;
};

/// Runs the demo. `stop` (optional) ends it early, e.g. from a SIGINT handler; everything started is
/// stopped on every path. Throws only for a bad configuration (std::invalid_argument, one line).
demo_result run_demo(const demo_config& cfg, std::ostream& out, std::ostream& err,
                     const std::atomic<bool>* stop = nullptr);

/// The bundled sample TLE (installed or in the source tree this qlink was built from), if found.
std::optional<std::filesystem::path> find_bundled_tle();

}  // namespace qlink::terminal
