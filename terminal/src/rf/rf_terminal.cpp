// Program track (pass -> mount axes, failure handling), the Doppler-corrected radio receiver and the pre-compensating transmitter.
#include "qlink/terminal/rf_terminal.hpp"

#include "rf_preamble.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace qlink::terminal {

std::string_view to_string(track_state s) {
    switch (s) {
    case track_state::idle: return "idle";
    case track_state::tracking: return "tracking";
    case track_state::fault: return "fault";
    case track_state::finished: return "finished";
    }
    return "?";
}

namespace {

void check(bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument(what);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// program track

rf_program_track::rf_program_track(hw::mount& mount, const sim::sgp4_propagator& sat,
                                   const sim::ground_station& station, const sim::clock& clock,
                                   const sim::pass_info& pass, const config& cfg)
    : mount_(mount), sat_(sat), station_(station), clock_(clock), pass_(pass), cfg_(cfg) {
    using namespace std::chrono_literals;
    check(cfg.update_interval >= 10ms && cfg.update_interval <= 10s,
          "rf_program_track: update_interval not in [10 ms, 10 s]");
    check(cfg.pre_position >= 0s && cfg.pre_position <= 3600s, "rf_program_track: pre_position not in [0, 3600] s");
    check(cfg.flip_above_deg >= 0.0 && cfg.flip_above_deg <= 90.0, "rf_program_track: flip_above_deg not in [0, 90]");
    check(cfg.fault_after >= 1, "rf_program_track: fault_after must be >= 1");
    check(cfg.retry_interval >= cfg.update_interval && cfg.retry_interval <= 60s,
          "rf_program_track: retry_interval not in [update_interval, 60 s]");
    check(pass.los > pass.aos, "rf_program_track: pass LOS is not after AOS");
    plan();
}

bool rf_program_track::map(sim::time_point t, double current_az, hw::az_el& sky, hw::az_el& axes) const {
    const sim::pass_sample s = station_.observe(sat_, t);
    if (s.error != sim::sgp4_error::none) return false;
    const hw::mount_limits& lim = mount_.limits();
    // Below the mount's lowest elevation (before AOS, at the mask) point at the horizon edge.
    sky = {s.look.azimuth_deg, std::clamp(s.look.elevation_deg, std::max(0.0, lim.el_min_deg), 90.0)};
    return hw::map_to_mount(sky, current_az, lim, flip_, axes);
}

void rf_program_track::plan() {
    const hw::mount_limits& lim = mount_.limits();
    // Flip mode keeps a near-zenith pass from needing a fast azimuth swing, if the mount can look backwards.
    flip_ = pass_.max_elevation_deg >= cfg_.flip_above_deg && lim.el_max_deg >= 180.0;

    // Choose the azimuth branch at AOS for which the whole pass, followed command
    // by command with map_to_mount, never jumps (unwinds) and stays in range.
    hw::az_el sky, axes;
    const double pass_s = std::chrono::duration<double>(pass_.los - pass_.aos).count();
    const int steps = std::max(2, int(pass_s / 2.0));
    double best_cost = 1e300;
    start_az_ = 0.0;
    for (int branch = -1; branch <= 1; ++branch) {
        if (!map(pass_.aos, 0.0, sky, axes)) continue;
        double az = std::fmod(axes.az_deg, 360.0) + 360.0 * branch;
        if (az < lim.az_min_deg || az > lim.az_max_deg) continue;
        const double start = az;
        double worst_step = 0.0;
        bool fits = true;
        for (int i = 1; i <= steps && fits; ++i) {
            const auto t = pass_.aos + sim::seconds_d(pass_s * i / steps);
            if (!map(t, az, sky, axes)) {
                fits = false;
                break;
            }
            worst_step = std::max(worst_step, std::abs(axes.az_deg - az));
            az = axes.az_deg;
        }
        if (!fits) continue;
        // Prefer the branch without an unwind; among equals the one nearest the middle of the range.
        const double cost = worst_step + 1e-3 * std::abs(start - 0.5 * (lim.az_min_deg + lim.az_max_deg));
        if (cost < best_cost) {
            best_cost = cost;
            start_az_ = start;
        }
    }
    current_az_ = start_az_;
}

rf_program_track::tick_result rf_program_track::tick() {
    tick_result r;
    ++counters_.ticks;
    const sim::time_point now = clock_.now();
    if (state_ == track_state::finished || now < pass_.aos - cfg_.pre_position) {
        r.state = state_;
        return r;
    }
    if (now > pass_.los) {
        state_ = track_state::finished;
        if (cfg_.park_at_los) mount_.park();
        r.state = state_;
        return r;
    }
    const auto interval = state_ == track_state::fault ? std::chrono::duration_cast<sim::duration>(cfg_.retry_interval)
                                                       : std::chrono::duration_cast<sim::duration>(cfg_.update_interval);
    if (attempted_ && now - last_attempt_ < interval) {
        r.state = state_;
        return r;
    }
    if (state_ == track_state::idle) state_ = track_state::tracking;
    attempted_ = true;
    last_attempt_ = now;

    const sim::time_point t = std::max(now, pass_.aos);
    if (!map(t, current_az_, r.sky, r.axes)) {
        ++counters_.unmappable;
        last_error_ = "direction outside the mount's limits";
        r.state = state_;
        return r;
    }
    r.commanded = true;
    r.mount = mount_.set_position(r.axes);
    if (r.mount) {
        if (have_command_) counters_.max_az_step_deg = std::max(counters_.max_az_step_deg, std::abs(r.axes.az_deg - current_az_));
        have_command_ = true;
        current_az_ = r.axes.az_deg;
        ++counters_.commands_ok;
        consecutive_failures_ = 0;
        if (state_ == track_state::fault) {
            ++counters_.recoveries;
            state_ = track_state::tracking;
        }
        last_error_.clear();
    } else {
        switch (r.mount.code) {
        case hw::mount_errc::timeout: ++counters_.timeouts; break;
        case hw::mount_errc::disconnected: ++counters_.disconnects; break;
        case hw::mount_errc::rejected: ++counters_.rejected; break;
        case hw::mount_errc::protocol: ++counters_.protocol_errors; break;
        case hw::mount_errc::out_of_range: ++counters_.unmappable; break;
        case hw::mount_errc::ok: break;
        }
        last_error_ = r.mount.message;
        ++consecutive_failures_;
        if (state_ == track_state::tracking && consecutive_failures_ >= cfg_.fault_after) {
            // Safe state: the mount must not keep slewing to a stale target.
            mount_.stop();
            ++counters_.stops;
            ++counters_.faults;
            state_ = track_state::fault;
        }
    }
    r.state = state_;
    return r;
}

// ---------------------------------------------------------------------------------------------
// receiver

rf_receiver::rf_receiver(hw::radio& radio, const doppler_predictor* predictor, const config& cfg)
    : radio_(radio), predictor_(predictor), cfg_(cfg), demod_(cfg.demod) {
    check(cfg.buffer_samples >= 64 && cfg.buffer_samples <= (std::size_t{1} << 22),
          "rf_receiver: buffer_samples not in [64, 4194304]");
    check(cfg.recv_timeout_s > 0.0 && cfg.recv_timeout_s <= 60.0, "rf_receiver: recv_timeout_s not in (0, 60]");
    if (cfg.phase) {
        check(cfg.phase->modulation == cfg.demod.waveform.modulation,
              "rf_receiver: phase.modulation (" + std::string(to_string(cfg.phase->modulation)) +
                  ") is not the waveform's (" + std::string(to_string(cfg.demod.waveform.modulation)) + ")");
        resolver_.emplace(*cfg.phase);
    }
    buffer_.resize(cfg.buffer_samples);
}

std::size_t rf_receiver::max_llrs() const { return demod_.max_llrs(cfg_.buffer_samples); }

rf_receiver::step_result rf_receiver::receive(std::span<modem::llr_t> llrs) {
    step_result r;
    if (llrs.size() < max_llrs()) return {0, 0, hw::rx_metadata::event::none, false, "rf_receiver::receive: LLR buffer smaller than max_llrs()"};
    hw::rx_metadata md;
    const std::size_t n = radio_.recv(buffer_, md, cfg_.recv_timeout_s);
    r.event = md.error;
    switch (md.error) {
    case hw::rx_metadata::event::none: break;
    case hw::rx_metadata::event::overflow: ++counters_.overflows; break;
    case hw::rx_metadata::event::timeout: ++counters_.timeouts; break;
    default: ++counters_.other_errors; break;
    }
    if (n == 0) return r;
    const std::size_t got = std::min(n, buffer_.size());
    ++counters_.buffers;
    counters_.samples += got;

    const double fs = cfg_.demod.waveform.sample_rate_hz;
    std::int64_t t_ns;
    if (md.has_time) {
        t_ns = md.time_ns;
    } else {
        ++counters_.untimed_buffers;
        t_ns = next_time_ns_;
    }
    if (predictor_ && cfg_.correct_doppler && (md.has_time || have_time_)) {
        const auto d = predictor_->downlink(sim::time_point{} + sim::duration{t_ns});
        if (d.ok)
            demod_.set_carrier_correction(d.offset_hz, d.rate_hz_s);
        else
            ++counters_.prediction_errors;
    }
    have_time_ = have_time_ || md.has_time;
    next_time_ns_ = t_ns + static_cast<std::int64_t>(std::llround(double(got) / fs * 1e9));

    const auto d = demod_.demodulate(std::span<const cf32>(buffer_.data(), got), llrs);
    r.samples = d.samples;
    r.llrs = d.llrs;
    counters_.llrs += d.llrs;
    if (resolver_) {
        // The demodulator writes whole symbols, so the resolver's symbol grid holds across calls.
        resolver_->process(llrs.first(d.llrs));
        const auto& ps = resolver_->stats();
        counters_.phase_rotations = ps.rotation_changes;
        counters_.phase_words = ps.words_found;
        counters_.phase_words_missed = ps.words_missed;
    }
    return r;
}

// ---------------------------------------------------------------------------------------------
// transmitter

namespace {

std::size_t tx_buffer_samples(const rf_transmitter::config& cfg) {
    // Whole symbols, and room for the modulator's filter tail in one buffer.
    const std::size_t sps = cfg.mod.waveform.samples_per_symbol;
    const std::size_t tail = std::size_t{cfg.mod.waveform.filter_delay} * sps;
    return std::max(cfg.buffer_samples / std::max<std::size_t>(sps, 1) * sps, tail);
}

}  // namespace

rf_transmitter::rf_transmitter(hw::radio& radio, const doppler_predictor* predictor, const config& cfg)
    : radio_(radio), predictor_(predictor), cfg_(cfg), mod_(cfg.mod), bps_(bits_per_symbol(cfg.mod.waveform.modulation)) {
    check(cfg.buffer_samples >= 64 && cfg.buffer_samples <= (std::size_t{1} << 22),
          "rf_transmitter: buffer_samples not in [64, 4194304]");
    check(cfg.send_timeout_s > 0.0 && cfg.send_timeout_s <= 60.0, "rf_transmitter: send_timeout_s not in (0, 60]");
    check(cfg.preamble_s >= 0.0 && cfg.preamble_s <= 60.0, "rf_transmitter: preamble_s not in [0, 60]");
    buffer_.resize(tx_buffer_samples(cfg));
    carry_.reserve(buffer_.size() / cfg.mod.waveform.samples_per_symbol * bps_ + bps_);
}

std::int64_t rf_transmitter::air_time_ns() const {
    return t0_ns_ + static_cast<std::int64_t>(std::llround(double(burst_samples_) / cfg_.mod.waveform.sample_rate_hz * 1e9));
}

void rf_transmitter::refresh() {
    if (!predictor_ || !cfg_.precompensate_doppler) return;
    const auto d = predictor_->uplink(sim::time_point{} + sim::duration{air_time_ns()});
    if (!d.ok) {
        ++counters_.prediction_errors;
        return;
    }
    applied_hz_ = -d.offset_hz;
    mod_.set_carrier_offset(-d.offset_hz, -d.rate_hz_s);
}

rf_transmitter::step_result rf_transmitter::start_burst(std::int64_t t_ns) {
    step_result r;
    if (in_burst_) r = end_burst();
    in_burst_ = first_send_ = true;
    t0_ns_ = t_ns;
    burst_samples_ = 0;
    ++counters_.bursts;
    // The preamble: random symbols (no sync marker in them), staged through carry_ (empty here).
    const auto& w = cfg_.mod.waveform;
    std::uint64_t left = static_cast<std::uint64_t>(cfg_.preamble_s * w.sample_rate_hz / w.samples_per_symbol) * bps_;
    std::uint64_t x = detail::preamble_state(counters_.bursts);
    const std::size_t per_buffer = buffer_.size() / w.samples_per_symbol * bps_;
    while (left > 0) {
        const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(left, per_buffer));
        for (std::size_t i = 0; i < n; ++i) carry_.push_back(detail::next_preamble_bit(x));
        r.samples += modulate_and_send(n);
        left -= n;
    }
    return r;
}

std::size_t rf_transmitter::modulate_and_send(std::size_t n_bits) {
    refresh();
    const auto m = mod_.modulate(std::span<const std::uint8_t>(carry_).first(n_bits), buffer_);
    carry_.erase(carry_.begin(), carry_.begin() + static_cast<std::ptrdiff_t>(n_bits));
    if (!m.ok) return 0;
    counters_.bits += n_bits;
    return send(m.samples, false).samples;
}

rf_transmitter::step_result rf_transmitter::send(std::size_t n, bool end) {
    hw::tx_metadata md;
    md.start_of_burst = md.has_time = first_send_;
    md.time_ns = t0_ns_;
    md.end_of_burst = end;
    std::size_t off = 0;
    do {
        const auto t = radio_.send(std::span<const cf32>(buffer_.data() + off, n - off), md, cfg_.send_timeout_s);
        counters_.underflows += t.underflow;
        counters_.late += t.late;
        off += std::min(t.sent, n - off);
        if (off >= n) break;
        ++counters_.short_sends;
        if (t.sent == 0) {
            counters_.samples_dropped += n - off;
            break;
        }
        md.start_of_burst = md.has_time = false;
    } while (true);
    first_send_ = false;
    ++counters_.buffers;
    counters_.samples += off;
    burst_samples_ += off;
    return {0, off, true, nullptr};
}

rf_transmitter::step_result rf_transmitter::transmit(std::span<const std::uint8_t> bits) {
    step_result r;
    if (!in_burst_) return {0, 0, false, "rf_transmitter::transmit: no burst started (call start_burst)"};
    const std::size_t per_buffer = buffer_.size() / cfg_.mod.waveform.samples_per_symbol * bps_;
    for (std::size_t pos = 0; pos < bits.size();) {
        // carry_ holds what a previous call left (< bps_ bits) and stages this buffer's bits.
        const std::size_t take = std::min(per_buffer - carry_.size(), bits.size() - pos);
        carry_.insert(carry_.end(), bits.begin() + static_cast<std::ptrdiff_t>(pos),
                      bits.begin() + static_cast<std::ptrdiff_t>(pos + take));
        pos += take;
        const std::size_t whole = carry_.size() / bps_ * bps_;
        if (whole > 0) r.samples += modulate_and_send(whole);
    }
    r.bits = bits.size();
    return r;
}

rf_transmitter::step_result rf_transmitter::end_burst() {
    step_result r;
    if (!in_burst_) return r;
    if (!carry_.empty()) {
        carry_.resize(bps_, 0);
        r.samples += modulate_and_send(bps_);
    }
    refresh();
    const auto f = mod_.flush(buffer_);
    r.samples += send(f.ok ? f.samples : 0, true).samples;
    in_burst_ = false;
    return r;
}

}  // namespace qlink::terminal
