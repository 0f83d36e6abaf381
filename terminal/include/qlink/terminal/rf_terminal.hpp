// The RF terminal: pass-driven antenna program track through hw::mount and the Doppler-corrected receiver on hw::radio.
#pragma once

#include "qlink/hw/mount.hpp"
#include "qlink/hw/radio.hpp"
#include "qlink/sim/clock.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/terminal/rf_doppler.hpp"
#include "qlink/terminal/rf_modem.hpp"
#include "qlink/terminal/rf_phase.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::terminal {

enum class track_state { idle, tracking, fault, finished };
std::string_view to_string(track_state s);

/// Open-loop program track of one pass: every update_interval the ephemeris
/// direction (pre-positioned at the AOS direction before AOS) is mapped onto the
/// mount axes (map_to_mount: 0..450 deg azimuth branch chosen once for the whole
/// pass so crossing north never unwinds; flip mode for near-zenith passes when the
/// mount reaches 180 deg elevation) and commanded.
///
/// A failing rotator (timeout, disconnect, garbage, refusal) is counted per kind
/// and retried on the next tick; after `fault_after` failures in a row the mount
/// is told to stop (safe state), the track goes to `fault`, and it retries every
/// retry_interval until a command is accepted again (a recovery, counted).
class rf_program_track {
public:
    struct config {
        std::chrono::milliseconds update_interval{100};  ///< 10 Hz, [10 ms, 10 s]
        std::chrono::seconds pre_position{120};          ///< start pointing this long before AOS
        double flip_above_deg = 78.0;                    ///< max elevation above which flip mode is used, [0, 90]
        unsigned fault_after = 3;                        ///< consecutive failures before stop + fault, >= 1
        std::chrono::milliseconds retry_interval{1000};  ///< in fault, [update_interval, 60 s]
        bool park_at_los = true;
    };
    struct counters {
        std::uint64_t ticks = 0;
        std::uint64_t commands_ok = 0;
        std::uint64_t timeouts = 0;
        std::uint64_t disconnects = 0;
        std::uint64_t rejected = 0;
        std::uint64_t protocol_errors = 0;
        std::uint64_t unmappable = 0;  ///< directions outside the mount's limits (not sent)
        std::uint64_t stops = 0;       ///< safe-state stops sent on entering fault
        std::uint64_t faults = 0;
        std::uint64_t recoveries = 0;
        double max_az_step_deg = 0.0;  ///< largest azimuth change between consecutive commands
    };
    struct tick_result {
        track_state state = track_state::idle;
        bool commanded = false;    ///< a set_position was sent this tick
        hw::az_el sky{};           ///< the ephemeris direction
        hw::az_el axes{};          ///< what was (or would have been) commanded
        hw::mount_result mount{};  ///< outcome of the command sent this tick
    };

    /// Throws std::invalid_argument naming the field (configuration edge). The
    /// mount, propagator, station and clock must outlive the track.
    rf_program_track(hw::mount& mount, const sim::sgp4_propagator& sat, const sim::ground_station& station,
                     const sim::clock& clock, const sim::pass_info& pass, const config& cfg);

    /// Call at least at the update rate; sends at most one command.
    tick_result tick();

    track_state state() const { return state_; }
    bool flip() const { return flip_; }
    /// Azimuth branch chosen for AOS (may be above 360).
    double aos_axis_az_deg() const { return start_az_; }
    const counters& stats() const { return counters_; }
    /// Last failure message (empty when none).
    const std::string& last_error() const { return last_error_; }

private:
    bool map(sim::time_point t, double current_az, hw::az_el& sky, hw::az_el& axes) const;
    void plan();

    hw::mount& mount_;
    const sim::sgp4_propagator& sat_;
    const sim::ground_station& station_;
    const sim::clock& clock_;
    sim::pass_info pass_;
    config cfg_;
    track_state state_ = track_state::idle;
    bool flip_ = false;
    double start_az_ = 0.0;
    double current_az_ = 0.0;
    bool have_command_ = false;
    unsigned consecutive_failures_ = 0;
    sim::time_point last_attempt_{};
    bool attempted_ = false;
    counters counters_;
    std::string last_error_;
};

/// Receives from a radio, removes the predicted Doppler at each buffer's
/// timestamp, demodulates to LLRs and (with `phase`) undoes the carrier phase
/// ambiguity on them. Radio events (overflow, timeout, ...) are counted, never
/// thrown; after an overflow the loops keep running and the frame synchroniser
/// downstream re-acquires.
class rf_receiver {
public:
    struct config {
        rf_demodulator::config demod{};
        std::size_t buffer_samples = 16384;  ///< per recv(), [64, 1 << 22]
        double recv_timeout_s = 0.1;
        bool correct_doppler = true;
        /// Phase-ambiguity resolver on the LLRs, e.g. rf_phase_resolver::for_profile(profile,
        /// modulation); its modulation must be the waveform's. Needed for QPSK into the coding
        /// chain (a 90 deg rotation is no codeword); empty: the LLRs go out as demodulated (BPSK
        /// alone is fine: the chain's synchroniser corrects an inverted stream).
        std::optional<rf_phase_resolver::config> phase;
    };
    struct counters {
        std::uint64_t buffers = 0;
        std::uint64_t samples = 0;
        std::uint64_t llrs = 0;
        std::uint64_t overflows = 0;
        std::uint64_t timeouts = 0;
        std::uint64_t other_errors = 0;
        std::uint64_t untimed_buffers = 0;    ///< no timestamp: time carried on from the previous buffer
        std::uint64_t prediction_errors = 0;  ///< SGP4 failed; the last correction is kept
        std::uint64_t phase_rotations = 0;    ///< carrier phase changes the resolver found and undid
        std::uint64_t phase_words = 0;        ///< unique words the resolver found
        std::uint64_t phase_words_missed = 0; ///< ... expected but not found (noise, or not there)
    };
    struct step_result {
        std::size_t samples = 0;
        std::size_t llrs = 0;
        hw::rx_metadata::event event = hw::rx_metadata::event::none;
        bool ok = true;
        const char* error = nullptr;
    };

    /// `predictor` may be null (no Doppler correction). Throws std::invalid_argument
    /// on a bad configuration.
    rf_receiver(hw::radio& radio, const doppler_predictor* predictor, const config& cfg);

    /// One recv() of up to buffer_samples, demodulated into `llrs`, which must
    /// hold max_llrs() (otherwise an error result and nothing is received).
    step_result receive(std::span<modem::llr_t> llrs);
    std::size_t max_llrs() const;

    const rf_demodulator& demodulator() const { return demod_; }
    /// Null without config::phase.
    const rf_phase_resolver* phase_resolver() const { return resolver_ ? &*resolver_ : nullptr; }
    const counters& stats() const { return counters_; }

private:
    hw::radio& radio_;
    const doppler_predictor* predictor_;
    config cfg_;
    rf_demodulator demod_;
    std::optional<rf_phase_resolver> resolver_;
    std::vector<cf32> buffer_;
    bool have_time_ = false;
    std::int64_t next_time_ns_ = 0;
    counters counters_;
};

/// The station's transmit chain on hw::radio: coded bits (one per byte, e.g. what
/// modem::chain_encoder writes) are modulated, pre-compensated for the uplink
/// Doppler predicted at each buffer's air time (so the satellite receives its
/// nominal carrier, doppler_predictor::uplink), and sent as one timed burst.
/// Buffers are at most buffer_samples long, so the correction is refreshed at
/// least that often and is linear (offset + rate * t) within each. Radio events
/// (underflow, late, short sends) are counted, never thrown.
class rf_transmitter {
public:
    struct config {
        rf_modulator::config mod{};
        bool precompensate_doppler = true;
        std::size_t buffer_samples = 16384;  ///< per send(), [64, 1 << 22]
        double send_timeout_s = 0.1;         ///< (0, 60]
        /// Random symbols sent at the start of each burst, [0, 60] s: the far receiver's loops
        /// and frame synchroniser lock on them, so the burst's first frame is not lost.
        double preamble_s = 0.25;
    };
    struct counters {
        std::uint64_t bursts = 0;
        std::uint64_t buffers = 0;
        std::uint64_t samples = 0;            ///< accepted by the radio
        std::uint64_t bits = 0;               ///< modulated
        std::uint64_t underflows = 0;
        std::uint64_t late = 0;               ///< the radio missed a timed burst start
        std::uint64_t short_sends = 0;        ///< sends that took only part of a buffer (the rest retried)
        std::uint64_t samples_dropped = 0;    ///< not taken within the timeout: dropped, burst goes on
        std::uint64_t prediction_errors = 0;  ///< SGP4 failed; the last pre-compensation is kept
    };
    struct step_result {
        std::size_t bits = 0;     ///< bits taken (all, unless !ok)
        std::size_t samples = 0;  ///< samples the radio accepted
        bool ok = true;
        const char* error = nullptr;
    };

    /// `predictor` may be null (no pre-compensation). Throws std::invalid_argument on a bad configuration.
    rf_transmitter(hw::radio& radio, const doppler_predictor* predictor, const config& cfg);

    /// Starts a burst whose first sample goes on air at device time t_ns (ns since the epoch, UTC:
    /// see hw::radio::set_time), with the preamble. A burst still open is ended first.
    step_result start_burst(std::int64_t t_ns);
    /// Modulates and sends `bits`. With QPSK an odd count leaves one bit waiting for the next call.
    step_result transmit(std::span<const std::uint8_t> bits);
    /// Sends the waiting bit (padded with 0), the filter tail, and the end-of-burst flag.
    step_result end_burst();

    bool in_burst() const { return in_burst_; }
    /// Device time of the next sample to go on air.
    std::int64_t air_time_ns() const;
    /// Carrier offset applied at the last refresh, Hz (minus the predicted uplink Doppler).
    double applied_offset_hz() const { return applied_hz_; }
    const counters& stats() const { return counters_; }

private:
    step_result send(std::size_t n, bool end);
    void refresh();
    std::size_t modulate_and_send(std::size_t n_bits);

    hw::radio& radio_;
    const doppler_predictor* predictor_;
    config cfg_;
    rf_modulator mod_;
    unsigned bps_;
    std::vector<cf32> buffer_;
    std::vector<std::uint8_t> carry_;
    bool in_burst_ = false, first_send_ = false;
    std::int64_t t0_ns_ = 0;
    std::uint64_t burst_samples_ = 0;
    double applied_hz_ = 0.0;
    counters counters_;
};

}  // namespace qlink::terminal
