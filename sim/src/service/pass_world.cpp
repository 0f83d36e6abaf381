// The pass world: one pass precomputed on a sim-time grid from the orbit, link-budget, turbulence, jitter and cloud models.
#include "qlink/sim/pass_world.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <numbers>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "qlink/sim/channel_rng.hpp"
#include "qlink/sim/fading.hpp"
#include "qlink/sim/pointing.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/stream_server.hpp"

namespace qlink::sim {

namespace {

constexpr double d2r = std::numbers::pi / 180.0;
constexpr double planck_h = 6.62607015e-34;

void check(const char* field, double v, double lo, double hi, bool lo_open = false) {
    if (!std::isfinite(v) || (lo_open ? v <= lo : v < lo) || v > hi)
        throw std::invalid_argument(std::string("pass world: ") + field + " = " + std::to_string(v) +
                                    " is out of range; allowed " + (lo_open ? "(" : "[") + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "]");
}

// Independent streams for the models from the one configured seed.
std::uint64_t sub_seed(std::uint64_t seed, std::uint64_t stream) {
    std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (stream + 1);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double db(double x) { return 10.0 * std::log10(std::max(x, 1e-30)); }

}  // namespace

optical_link::config pass_world::config::default_downlink() {
    optical_link::config c;
    c.direction = link_direction::downlink;
    c.wavelength_m = 1550e-9;
    c.tx_power_w = 0.2;
    c.tx_divergence_rad = 150e-6;
    c.tx_optics_efficiency = 0.8;
    c.rx_aperture_diameter_m = 0.25;
    c.rx_optics_efficiency = 0.5;
    c.zenith_transmittance = 0.9;
    return c;
}

cloud_process::config pass_world::config::default_clouds() {
    cloud_process::config c;
    c.mean_clear_s = 200.0;
    c.mean_cloudy_s = 6.0;
    c.cloudy_transmittance = 0.0;
    return c;
}

struct pass_world::scripted_clouds {
    mutable std::mutex mutex;
    std::atomic<std::size_t> count{0};  // read without the lock: most passes script nothing
    std::vector<std::pair<double, double>> intervals;
};

pass_world::pass_world(const tle& elements, const config& cfg)
    : cfg_(cfg),
      downlink_([&] {
          auto d = cfg.downlink;
          // The budget carries the mean jitter loss; the time series below carries h(t) / mean.
          d.pointing_jitter_rad = cfg.pointing_jitter_rad;
          return d;
      }()),
      quantum_(cfg.quantum),
      turbulence_([&] {
          turbulence_model::config t;
          t.profile = cfg.turbulence;
          t.site_altitude_m = std::clamp(cfg.station.altitude_m, 0.0, 8000.0);
          return t;
      }()),
      scripted_(std::make_unique<scripted_clouds>()) {
    check("lead_s", cfg.lead_s, 0.0, 3600.0);
    check("tail_s", cfg.tail_s, 0.0, 3600.0);
    check("min_pass_elevation_deg", cfg.min_pass_elevation_deg, 0.0, 90.0);
    check("optical_mask_deg", cfg.optical_mask_deg, 0.0, 89.0);
    check("rf_mask_deg", cfg.rf_mask_deg, 0.0, 89.0);
    check("sample_rate_hz", cfg.sample_rate_hz, 1.0, 10000.0);
    check("scintillation_coherence_s", cfg.scintillation_coherence_s, 2.0 / cfg.sample_rate_hz, 3600.0);
    check("pointing_jitter_rad", cfg.pointing_jitter_rad, 0.0, 1e-3);
    check("pointing_correlation_s", cfg.pointing_correlation_s, 2.0 / cfg.sample_rate_hz, 3600.0);
    check("optical_slot_rate_hz", cfg.optical_slot_rate_hz, 0.0, 1e12, true);
    check("detector_efficiency", cfg.detector_efficiency, 0.0, 1.0, true);
    check("noise_per_slot", cfg.noise_per_slot, 0.0, 10.0, true);
    check("return_esn0_at_1000km_db", cfg.return_esn0_at_1000km_db, -30.0, 60.0);
    if (auto e = ground_station::validate(cfg.station); !e.empty()) throw std::invalid_argument("pass world: " + e);
    station_ = std::make_unique<ground_station>(cfg.station);
    const auto sat = create_sgp4_propagator(elements);

    // The pass: the first (good enough) one after the start or the TLE epoch.
    pass_search_config pc;
    pc.elevation_mask_deg = 0.0;
    // With an explicit start the pass in progress at that moment counts too (search a little earlier).
    const time_point from = cfg.start ? *cfg.start - std::chrono::minutes(30) : elements.epoch();
    time_point search = from;
    const time_point horizon = from + std::chrono::hours{24 * 7};
    for (;;) {
        pc.horizon = horizon - search;
        if (pc.horizon <= duration::zero()) throw std::runtime_error("pass world: no pass within 7 days of the start");
        const auto found = find_next_pass(*sat, *station_, search, pc);
        if (!found.error.empty()) throw std::runtime_error("pass world: " + found.error);
        if (!found.pass) throw std::runtime_error("pass world: no pass within 7 days of the start");
        const bool usable = cfg.start ? found.pass->los > *cfg.start
                                      : found.pass->max_elevation_deg >= cfg.min_pass_elevation_deg;
        if (usable) {
            pass_ = *found.pass;
            break;
        }
        search = found.pass->los;
    }
    start_ = cfg.start ? *cfg.start : pass_.aos - seconds_d(cfg.lead_s);
    duration_s_ = std::chrono::duration<double>(pass_.los - start_).count() + cfg.tail_s;
    if (!(duration_s_ > 0.0)) throw std::runtime_error("pass world: the pass ends before the start");

    // Geometry once a second (SGP4 is smooth; linear interpolation is far below a metre/mdeg).
    const auto n_geo = static_cast<std::size_t>(std::ceil(duration_s_)) + 2;
    geo_.resize(n_geo);
    for (std::size_t k = 0; k < n_geo; ++k) {
        const auto s = station_->observe(*sat, start_ + std::chrono::seconds(k));
        if (s.error != sgp4_error::none)
            throw std::runtime_error("pass world: SGP4 failed during the pass: " + std::string(to_string(s.error)));
        geo_[k] = {s.look.elevation_deg, s.look.azimuth_deg, s.look.range_km, 0.0, 0.0, 0.0};
    }
    // Budgets and turbulence once a second too: at() is called per message and per QKD sub-step.
    const double site = std::clamp(cfg.station.altitude_m, 0.0, 8000.0);
    // The turbulence integrals are the slow part: every 5 s, interpolated (sigma_I^2 is smooth in elevation).
    auto scint_at = [&](double el_deg) {
        turbulence_model::query q;
        q.wavelength_m = cfg.downlink.wavelength_m;
        q.elevation_rad = std::max(el_deg, 0.5) * d2r;
        q.rx_aperture_diameter_m = cfg.downlink.rx_aperture_diameter_m;
        return turbulence_.evaluate(q).scintillation;
    };
    constexpr std::size_t turb_step = 5;
    for (std::size_t k = 0; k < n_geo; ++k) {
        auto& g = geo_[k];
        const link_geometry lg{std::max(g.elevation_deg, 0.5) * d2r, g.range_km * 1e3, site};
        g.mean_rx_dbm = downlink_.budget(lg).rx_power_dbm;
        g.quantum_db = db(quantum_.budget(lg).rx_power_w / cfg.quantum.tx_power_w);
        if (k % turb_step == 0 || k + 1 == n_geo) g.scint_index = g.elevation_deg > 0.0 ? scint_at(g.elevation_deg) : 0.0;
    }
    for (std::size_t k = 0; k < n_geo; ++k) {
        if (k % turb_step == 0 || k + 1 == n_geo) continue;
        const std::size_t a = k - k % turb_step, b = std::min(a + turb_step, n_geo - 1);
        const double f = static_cast<double>(k - a) / static_cast<double>(b - a);
        // Exact where an end of the interval is below the horizon (no interpolation across it).
        if (geo_[a].scint_index == 0.0 || geo_[b].scint_index == 0.0)
            geo_[k].scint_index = geo_[k].elevation_deg > 0.0 ? scint_at(geo_[k].elevation_deg) : 0.0;
        else
            geo_[k].scint_index = geo_[a].scint_index + f * (geo_[b].scint_index - geo_[a].scint_index);
    }

    // Random processes on the sim-time grid.
    const auto n = static_cast<std::size_t>(std::ceil(duration_s_ * cfg.sample_rate_hz)) + 1;
    log_scint_.resize(n);
    {
        const gauss_markov ar(cfg.scintillation_coherence_s, cfg.sample_rate_hz);
        channel_rng rng(sub_seed(cfg.seed, 0));
        std::normal_distribution<double> g(0.0, 1.0);
        double x = g(rng);
        for (auto& v : log_scint_) {
            v = static_cast<float>(x);
            x = ar.step(x, g(rng));
        }
    }
    jitter_.resize(n);
    {
        pointing_jitter::config pj;
        pj.divergence_rad = cfg.downlink.tx_divergence_rad;
        pj.jitter_rad = cfg.pointing_jitter_rad;
        pj.correlation_time_s = cfg.pointing_correlation_s;
        pj.sample_rate_hz = cfg.sample_rate_hz;
        pj.seed = sub_seed(cfg.seed, 1);
        pointing_jitter p(pj);
        p.generate(jitter_);
        jitter_mean_ = p.mean_loss();
    }
    cloud_t_.resize(n);
    {
        auto cc = cfg.clouds;
        cc.sample_rate_hz = cfg.sample_rate_hz;
        cc.seed = sub_seed(cfg.seed, 2);
        cloud_process c(cc);
        c.generate(cloud_t_);
    }
}

double pass_world::aos_s() const { return std::chrono::duration<double>(pass_.aos - start_).count(); }
double pass_world::los_s() const { return std::chrono::duration<double>(pass_.los - start_).count(); }

pass_world::geo_point pass_world::geometry(double t) const {
    const double x = std::clamp(t, 0.0, static_cast<double>(geo_.size() - 1));
    const auto i = std::min(static_cast<std::size_t>(x), geo_.size() - 2);
    const double f = x - static_cast<double>(i);
    const auto& a = geo_[i];
    const auto& b = geo_[i + 1];
    double daz = b.azimuth_deg - a.azimuth_deg;
    if (daz > 180.0) daz -= 360.0;
    if (daz < -180.0) daz += 360.0;
    double az = a.azimuth_deg + f * daz;
    if (az < 0.0) az += 360.0;
    if (az >= 360.0) az -= 360.0;
    auto lerp = [f](double u, double v) { return u + f * (v - u); };
    return {lerp(a.elevation_deg, b.elevation_deg), az, lerp(a.range_km, b.range_km), lerp(a.mean_rx_dbm, b.mean_rx_dbm),
            lerp(a.quantum_db, b.quantum_db), lerp(a.scint_index, b.scint_index)};
}

double pass_world::optical_mean_rx_power_w(double elevation_deg, double range_km) const {
    if (!(elevation_deg > 0.0)) return 0.0;
    return downlink_.budget({elevation_deg * d2r, range_km * 1e3, std::clamp(cfg_.station.altitude_m, 0.0, 8000.0)})
        .rx_power_w;
}

pass_world::~pass_world() = default;
pass_world::pass_world(pass_world&&) noexcept = default;
pass_world& pass_world::operator=(pass_world&&) noexcept = default;

bool pass_world::add_cloud(double t0_s, double duration_s) {
    if (!std::isfinite(t0_s) || !(duration_s > 0.0 && duration_s <= 3600.0)) return false;
    std::lock_guard lock(scripted_->mutex);
    if (scripted_->intervals.size() >= max_scripted_clouds) return false;
    scripted_->intervals.emplace_back(t0_s, t0_s + duration_s);
    scripted_->count.store(scripted_->intervals.size(), std::memory_order_release);
    return true;
}

bool pass_world::scripted_cloud_at(double t) const {
    if (scripted_->count.load(std::memory_order_acquire) == 0) return false;
    std::lock_guard lock(scripted_->mutex);
    for (const auto& [t0, t1] : scripted_->intervals)
        if (t >= t0 && t < t1) return true;
    return false;
}

world_sample pass_world::at(double t) const {
    world_sample s;
    s.t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, duration_s_);
    const auto g = geometry(s.t);
    s.elevation_deg = g.elevation_deg;
    s.azimuth_deg = g.azimuth_deg;
    s.range_km = g.range_km;
    const auto i = std::min(static_cast<std::size_t>(s.t * cfg_.sample_rate_hz), log_scint_.size() - 1);
    s.cloud_transmittance = scripted_cloud_at(s.t) ? 0.0 : cloud_t_[i];
    s.cloud_blocked = s.cloud_transmittance < 0.5;
    s.above_mask = s.elevation_deg >= cfg_.optical_mask_deg;
    s.link_up = s.above_mask && !s.cloud_blocked;
    s.return_up = s.elevation_deg >= cfg_.rf_mask_deg;
    if (s.return_up) s.return_esn0_db = pointed_esn0_db(cfg_.return_esn0_at_1000km_db, s.range_km, s.elevation_deg, 0.0, 1.0);
    s.noise_per_slot = cfg_.noise_per_slot;
    if (!s.above_mask) return s;

    s.mean_rx_power_dbm = g.mean_rx_dbm;
    s.scintillation_index = g.scint_index;
    // Log-normal intensity with that index: ln I ~ N(-s2/2, s2), s2 = ln(1 + sigma_I^2).
    const double s2 = std::log1p(s.scintillation_index);
    s.scintillation = std::exp(std::sqrt(s2) * log_scint_[i] - 0.5 * s2);
    s.pointing_loss = jitter_[i] / jitter_mean_;
    const double factor = s.scintillation * s.pointing_loss * s.cloud_transmittance;
    s.rx_power_dbm = g.mean_rx_dbm + db(factor);
    const double photon_j = planck_h * speed_of_light_m_s / cfg_.downlink.wavelength_m;
    const double rx_w = std::pow(10.0, g.mean_rx_dbm / 10.0) * 1e-3;
    s.photons_per_slot = cfg_.detector_efficiency * rx_w * factor / photon_j / cfg_.optical_slot_rate_hz;
    // The quantum terminal has its own fine pointing (its mean loss is in its budget) but shares
    // the atmosphere: scintillation and clouds.
    s.qkd_transmittance =
        std::clamp(std::pow(10.0, g.quantum_db / 10.0) * s.scintillation * s.cloud_transmittance, 0.0, 1.0);
    if (s.cloud_blocked) {
        s.photons_per_slot = 0.0;
        s.qkd_transmittance = 0.0;
    }
    return s;
}

}  // namespace qlink::sim

namespace qlink::sim {

pass_clock::pass_clock(double duration_s, double speed, unsigned start_when)
    : duration_s_(duration_s), speed_(speed), start_when_(start_when) {
    if (!(duration_s > 0.0) || !std::isfinite(duration_s))
        throw std::invalid_argument("pass clock: duration must be > 0");
    if (!(speed > 0.0 && speed <= 10000.0)) throw std::invalid_argument("pass clock: speed must be in (0, 10000]");
    if (start_when < 1) throw std::invalid_argument("pass clock: start_when must be >= 1");
}

void pass_clock::client_connected() {
    std::lock_guard lock(mutex_);
    if (++clients_ >= start_when_ && !started_) {
        started_ = true;
        wall_start_ = std::chrono::steady_clock::now();
    }
}

void pass_clock::start_now() {
    std::lock_guard lock(mutex_);
    if (!started_) {
        started_ = true;
        wall_start_ = std::chrono::steady_clock::now();
    }
}

bool pass_clock::started() const {
    std::lock_guard lock(mutex_);
    return started_;
}

double pass_clock::sim_time() const {
    std::lock_guard lock(mutex_);
    if (!started_) return 0.0;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
    return std::min(wall * speed_, duration_s_);
}

}  // namespace qlink::sim
