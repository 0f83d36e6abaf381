// The satellite end of the simulated RF link, for hw's sim radio: its downlink transmitter and its uplink receiver.
#pragma once

#include "qlink/hw/radio.hpp"
#include "qlink/modem/coding_chain.hpp"
#include "qlink/sim/rf_channel.hpp"
#include "qlink/terminal/rf_doppler.hpp"
#include "qlink/terminal/rf_modem.hpp"
#include "qlink/terminal/rf_phase.hpp"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <vector>

namespace qlink::terminal {

/// What a station with the sim radio talks to, so `qlink rf-rx/rf-tx --radio sim`
/// and the tests run the same station code a USRP user runs:
/// * downlink: frames from `next_frame` are coded with the profile and modulated;
///   radio_config() returns a sim radio whose channel applies the true downlink
///   Doppler of the pass (`truth`), the satellite's oscillator error, phase noise
///   and AWGN at es_n0_db. After the last frame the satellite is silent (noise only).
/// * uplink: what the station sends reaches the sink; it goes through a second
///   channel with the true uplink Doppler into a receiver WITHOUT Doppler
///   correction (a satellite has no ephemeris of the station's pass: it relies
///   on the station's pre-compensation), the phase resolver and the decoder;
///   decoded frames go to `on_frame`.
class rf_sim_satellite {
public:
    struct config {
        rf_waveform waveform{};
        const modem::chain_profile* profile = nullptr;  ///< required
        double es_n0_db = 6.0;                          ///< both directions
        double phase_noise_linewidth_hz = 20.0;
        double oscillator_error_hz = 0.0;               ///< the satellite's carrier error, both directions
        std::uint64_t seed = 1;
        /// Seconds of random symbols before the first frame: a satellite transmits before the
        /// station's pass starts, so the receiver's loops and synchroniser are locked for frame 0.
        double preamble_s = 0.25;
        /// Downlink frames: fill `data` (profile data bytes) and return true, or false when done.
        std::function<bool(std::span<std::uint8_t> data)> next_frame;
        /// Uplink frames the satellite decoded (good CRC/RS only).
        std::function<void(std::span<const std::uint8_t> data)> on_frame;
        /// When set, the uplink's demodulated (and, for QPSK, phase-resolved) LLRs go here instead
        /// of the satellite's decoder: a modem elsewhere decodes them (qlinkd hands them to the
        /// relay, so the space end decodes what this RF chain demodulated).
        std::function<void(std::span<const modem::llr_t> llrs)> on_llrs;
    };
    struct uplink_stats {
        std::uint64_t samples = 0;
        std::uint64_t frames_ok = 0;
        std::uint64_t frames_failed = 0;  ///< including the synchroniser's flywheel frames after a burst
        bool locked = false;
        double residual_hz = 0.0;       ///< carrier the satellite's loop tracks (what pre-compensation left)
        double max_abs_doppler_hz = 0.0;  ///< largest uplink Doppler the channel applied
        std::uint64_t lock_acquired = 0;
    };

    /// Throws std::invalid_argument on a bad configuration.
    rf_sim_satellite(const doppler_predictor& truth, const config& cfg);
    ~rf_sim_satellite();
    rf_sim_satellite(const rf_sim_satellite&) = delete;
    rf_sim_satellite& operator=(const rf_sim_satellite&) = delete;

    /// The sim radio's configuration wired to this satellite (source, sink, Doppler truth);
    /// drive_clock set, so simulated time follows the received stream.
    hw::sim_radio_config radio_config();
    /// Downlink frames handed out so far, and whether the source ran dry.
    std::uint64_t frames_sent() const { return frames_sent_; }
    bool downlink_done() const { return done_; }
    /// Listens 50 ms past the end of the station's last burst and decodes what the uplink receiver still holds.
    void finish_uplink();
    const uplink_stats& uplink() const { return up_; }
    /// The uplink channel's Es/N0 from now on (the pass's link budget as the elevation changes).
    void set_uplink_es_n0_db(double es_n0_db) { up_channel_->set_es_n0_db(es_n0_db); }

private:
    void source(std::span<cf32> out);
    void sink(std::span<const cf32> in, const hw::tx_metadata& md);
    void decode(std::span<const modem::llr_t> llrs);
    void take(const modem::chain_decoder::result& r);

    const doppler_predictor& truth_;
    config cfg_;
    unsigned bps_;
    // downlink
    modem::chain_encoder enc_;
    rf_modulator mod_;
    std::vector<std::uint8_t> frame_, bits_;
    std::vector<cf32> pending_;
    std::size_t pending_pos_ = 0;
    std::uint64_t preamble_symbols_ = 0;
    std::uint64_t preamble_state_ = 0;
    std::uint64_t frames_sent_ = 0;
    bool done_ = false;
    // uplink
    std::unique_ptr<sim::rf_channel> up_channel_;
    rf_demodulator demod_;
    std::optional<rf_phase_resolver> resolver_;
    modem::chain_decoder dec_;
    std::vector<cf32> up_buf_;
    std::vector<modem::llr_t> llrs_;
    std::vector<std::uint8_t> out_;
    std::vector<modem::chain_frame_report> reports_;
    std::int64_t up_t_ns_ = 0;
    uplink_stats up_;
};

}  // namespace qlink::terminal
