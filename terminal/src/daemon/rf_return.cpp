// qlinkd's sample-level RF return link: rf_transmitter on the sim radio, the simulated satellite's receiver behind it.
#include "rf_return.hpp"

#include "qlink/modem/profile.hpp"
#include "qlink/sim/air_client.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace qlink::terminal {

namespace {

const modem::chain_profile& tx_profile(const qlinkd_config& cfg) {
    const modem::chain_profile* p = modem::find_profile(cfg.link.tx_profile);
    if (p == nullptr) throw qlinkd_config_error("rf: unknown link.tx_profile " + cfg.link.tx_profile);
    return *p;
}

// Pre-compensation refresh: 25 ms at the return line rate keeps the step between two refreshes
// (Doppler rate x 25 ms, < 150 Hz at LEO X-band) well inside the satellite loop's pull-in.
std::size_t buffer_samples(double sample_rate_hz) {
    return std::clamp<std::size_t>(static_cast<std::size_t>(sample_rate_hz * 0.025), 64, 1u << 16);
}

}  // namespace

rf_return_link::rf_return_link(const qlinkd_config& cfg, double bits_per_s)
    : cfg_(cfg), sat_(sim::create_sgp4_propagator(load_tle(cfg))), station_(station_config(cfg)),
      predictor_(*sat_, station_, {cfg.rf.uplink_hz, cfg.rf.uplink_hz, 0.0}), clock_(*cfg.air.sim_epoch),
      es_n0_db_(6.0) {
    if (!(bits_per_s > 0.0)) throw std::invalid_argument("rf: the relay's return line rate must be > 0");
    // BPSK only: QPSK's decision-directed carrier loop slips at the return link's low symbol rates
    // through the simulated phase noise (docs/qlinkd.md).
    waveform_.modulation = rf_modulation::bpsk;
    waveform_.samples_per_symbol = cfg.rf.samples_per_symbol;
    waveform_.sample_rate_hz = bits_per_s * cfg.rf.samples_per_symbol;
    if (const auto e = validate(waveform_); !e.empty()) throw qlinkd_config_error("[rf]: " + e);

    rf_sim_satellite::config sc;
    sc.waveform = waveform_;
    sc.profile = &tx_profile(cfg);
    sc.es_n0_db = es_n0_db_;
    sc.oscillator_error_hz = cfg.rf.oscillator_error_hz;
    sc.phase_noise_linewidth_hz = cfg.rf.phase_noise_linewidth_hz;
    sc.seed = cfg.rf.seed;
    sc.on_llrs = [this](std::span<const modem::llr_t> l) { llrs_.insert(llrs_.end(), l.begin(), l.end()); };
    satellite_ = std::make_unique<rf_sim_satellite>(predictor_, sc);
    radio_ = hw::create_sim_radio(satellite_->radio_config(), clock_);
    hw::radio_settings rs;
    rs.sample_rate_hz = waveform_.sample_rate_hz;
    rs.center_freq_hz = cfg.rf.uplink_hz;
    if (const auto r = radio_->configure(rs); !r) throw std::invalid_argument("rf: configuring the sim radio failed: " + r.message);

    rf_transmitter::config tc;
    tc.mod.waveform = waveform_;
    tc.precompensate_doppler = cfg.rf.precompensate_doppler;
    tc.buffer_samples = buffer_samples(waveform_.sample_rate_hz);
    tx_ = std::make_unique<rf_transmitter>(*radio_, &predictor_, tc);
}

rf_return_link::~rf_return_link() = default;

std::span<const modem::llr_t> rf_return_link::transmit(std::span<const std::uint8_t> packed, std::size_t nbits,
                                                       double t, double es_n0_db) {
    llrs_.clear();
    if (es_n0_db > -99.0 && std::isfinite(es_n0_db) && es_n0_db != es_n0_db_) {
        es_n0_db_ = es_n0_db;
        satellite_->set_uplink_es_n0_db(es_n0_db);
    }
    if (!tx_->in_burst()) {
        const auto start = *cfg_.air.sim_epoch + std::chrono::duration_cast<sim::duration>(std::chrono::duration<double>(t));
        clock_.set(start);
        tx_->start_burst(start.time_since_epoch().count());
    }
    bits_.resize(nbits);
    sim::unpack_bits_msb(packed, bits_);
    tx_->transmit(bits_);
    // The sim radio does not drive the clock on transmit: it follows the burst's air time.
    clock_.set(sim::time_point{} + sim::duration{tx_->air_time_ns()});
    st_.bits += nbits;
    st_.llrs += llrs_.size();
    return llrs_;
}

rf_return_link::stats rf_return_link::snapshot() const {
    stats s = st_;
    const auto& tc = tx_->stats();
    const auto& up = satellite_->uplink();
    s.samples = tc.samples;
    s.applied_offset_hz = tx_->applied_offset_hz();
    s.max_abs_doppler_hz = up.max_abs_doppler_hz;
    s.residual_hz = up.residual_hz;
    s.locked = up.locked;
    s.lock_acquired = up.lock_acquired;
    s.es_n0_db = es_n0_db_;
    s.radio_errors = tc.late + tc.underflows + tc.samples_dropped + tc.prediction_errors;
    return s;
}

std::string rf_return_link::describe() const {
    std::ostringstream os;
    os << to_string(waveform_.modulation) << ", " << waveform_.samples_per_symbol << " samples/symbol at "
       << waveform_.sample_rate_hz << " sample/s, uplink " << cfg_.rf.uplink_hz / 1e9 << " GHz, Doppler pre-compensation "
       << (cfg_.rf.precompensate_doppler ? "on" : "off");
    return os.str();
}

}  // namespace qlink::terminal
