// The ground station's RF return link at sample level in qlinkd ([rf] radio = "sim"): TX chain, radio, satellite receiver.
#pragma once

#include "qlink/hw/radio.hpp"
#include "qlink/modem/soft_bits.hpp"
#include "qlink/sim/clock.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/terminal/qlinkd_config.hpp"
#include "qlink/terminal/rf_doppler.hpp"
#include "qlink/terminal/rf_sim.hpp"
#include "qlink/terminal/rf_terminal.hpp"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace qlink::terminal {

/// What the return link's coded bits go through with [rf] radio = "sim", so a qlinkd pass runs the
/// station's real transmit chain: terminal::rf_transmitter (RRC BPSK/QPSK, uplink Doppler
/// pre-compensation from the TLE) on hw's sim radio; behind it the satellite's side of the air
/// (rf_sim_satellite: the true uplink Doppler of the pass, its oscillator error, phase noise and
/// AWGN at the relay's return Es/N0, then a receiver with NO Doppler correction). Its demodulated
/// LLRs are what the relay forwards (TX_LLR) to the space end, whose modem decodes them.
/// Simulated time: the burst starts at air.sim_epoch + the first block's sim_time; samples follow.
class rf_return_link {
public:
    struct stats {
        std::uint64_t bits = 0;
        std::uint64_t samples = 0;
        std::uint64_t llrs = 0;
        double applied_offset_hz = 0.0;      ///< last pre-compensation (minus the predicted uplink Doppler)
        double max_abs_doppler_hz = 0.0;     ///< largest true uplink Doppler the channel applied
        double residual_hz = 0.0;            ///< what the satellite's carrier loop tracks
        double es_n0_db = 0.0;               ///< the channel's Es/N0 now
        bool locked = false;
        std::uint64_t lock_acquired = 0;
        std::uint64_t radio_errors = 0;      ///< late, underflows, dropped samples, prediction errors
    };

    /// bits_per_s: the relay's return line rate (coded bits per simulated second). Throws
    /// std::invalid_argument / qlinkd_config_error on a bad configuration.
    rf_return_link(const qlinkd_config& cfg, double bits_per_s);
    ~rf_return_link();

    /// Sends `nbits` packed bits (MSB first) starting at sim_time `t` (first call: burst start);
    /// es_n0_db: the relay's latest return-link Es/N0 (<= -99: link down, the last value is kept).
    /// Returns the LLRs the satellite demodulated meanwhile (valid until the next call).
    std::span<const modem::llr_t> transmit(std::span<const std::uint8_t> packed, std::size_t nbits, double t,
                                           double es_n0_db);
    stats snapshot() const;
    std::string describe() const;

private:
    const qlinkd_config& cfg_;
    std::unique_ptr<sim::sgp4_propagator> sat_;
    sim::ground_station station_;
    doppler_predictor predictor_;
    rf_waveform waveform_;
    std::unique_ptr<rf_sim_satellite> satellite_;
    sim::sim_clock clock_;
    std::unique_ptr<hw::radio> radio_;
    std::unique_ptr<rf_transmitter> tx_;
    std::vector<std::uint8_t> bits_;
    std::vector<modem::llr_t> llrs_;
    double es_n0_db_;
    stats st_;
};

}  // namespace qlink::terminal
