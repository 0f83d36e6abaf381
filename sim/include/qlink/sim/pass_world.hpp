// The satellite-pass world the daemons live in: geometry, optical downlink, RF return link and QKD channel vs sim time.
#pragma once

#include <cstdint>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "qlink/sim/clouds.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/optical_link.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/sim/turbulence.hpp"

namespace qlink::sim {

/// Everything the channels need at one instant of the pass.
struct world_sample {
    double t = 0.0;                     ///< seconds since the pass start (sim_time)
    double elevation_deg = 0.0;
    double azimuth_deg = 0.0;
    double range_km = 0.0;
    bool above_mask = false;            ///< elevation >= the optical mask
    bool cloud_blocked = false;
    bool link_up = false;               ///< optical downlink: above the mask and not blocked by cloud
    bool return_up = false;             ///< RF return link: above the RF mask (clouds do not stop RF)
    double mean_rx_power_dbm = -300.0;  ///< downlink link budget (clear sky, mean pointing loss); -300 below the mask
    double scintillation_index = 0.0;   ///< sigma_I^2 the aperture sees at this elevation
    double scintillation = 1.0;         ///< normalised intensity I(t), mean 1
    double pointing_loss = 1.0;         ///< jitter loss h(t) / its mean (so the budget's mean loss is not counted twice)
    double cloud_transmittance = 1.0;
    double rx_power_dbm = -300.0;       ///< instantaneous: mean budget x I x h x cloud
    double photons_per_slot = 0.0;      ///< detected signal photons per OOK on-slot (0 when down)
    double noise_per_slot = 0.0;        ///< detected noise (background + dark) per slot
    double return_esn0_db = -100.0;     ///< RF return link Es/N0 (-100 when down)
    double qkd_transmittance = 0.0;     ///< quantum channel transmittance (0 when down), Bob's detector excluded
};

class pass_world {
public:
    struct config {
        ground_station::config station{"Delft", 52.0116, 4.3571, 0.0};
        /// Pass start; empty = AOS - lead_s of the first pass at/after the TLE epoch whose maximum
        /// elevation reaches min_pass_elevation_deg (so the world never depends on today's date).
        std::optional<time_point> start;
        double lead_s = 30.0;               ///< [0, 3600]
        double tail_s = 10.0;               ///< [0, 3600] after LOS
        double min_pass_elevation_deg = 30.0;  ///< [0, 90] default pass choice only
        double optical_mask_deg = 10.0;     ///< [0, 89]
        double rf_mask_deg = 5.0;           ///< [0, 89]
        double sample_rate_hz = 100.0;      ///< random processes' grid in sim time, [1, 10000]

        /// Data downlink terminal (1550 nm). Power and divergence are set so mid-pass OOK sees
        /// tens of photons per slot, and low elevations and fades see few.
        optical_link::config downlink = default_downlink();
        /// Quantum channel (same telescope pair, separate budget; transmittance = rx/tx power).
        optical_link::config quantum = {};
        hufnagel_valley turbulence{};
        /// Scintillation correlation time in sim seconds (the physical ms-scale value is shorter than
        /// a sim-time grid step; this is how long fades last for the coded stream), >= 2 / sample_rate.
        double scintillation_coherence_s = 0.05;
        double pointing_jitter_rad = 45e-6;      ///< rms per axis, [0, 1e-3]
        double pointing_correlation_s = 0.3;     ///< tracking-loop correlation time, >= 2 / sample_rate
        cloud_process::config clouds = default_clouds();

        /// Physical OOK slot rate the received power is counted at: each simulated coded bit stands
        /// for one slot of the physical link, whatever the simulated line rate.
        double optical_slot_rate_hz = 1e10;      ///< (0, 1e12]
        double detector_efficiency = 0.5;        ///< (0, 1]
        double noise_per_slot = 0.01;            ///< detected background + dark counts per slot, (0, 10]

        double return_esn0_at_1000km_db = 9.0;   ///< RF return link on boresight at 1000 km, [-30, 60]
        std::uint64_t seed = 1;

        static optical_link::config default_downlink();
        static cloud_process::config default_clouds();
    };

    /// Finds the pass and precomputes the whole pass (geometry at 1 Hz interpolated, fading,
    /// jitter and clouds on the sample grid). Throws std::invalid_argument naming the bad field,
    /// or std::runtime_error when no pass is found within 7 days after the start/epoch.
    pass_world(const tle& elements, const config& cfg);
    ~pass_world();
    pass_world(pass_world&&) noexcept;
    pass_world& operator=(pass_world&&) noexcept;

    /// State at sim_time `t` (seconds since start()); clamped to [0, duration_s()].
    world_sample at(double t) const;

    /// Scripted weather: a cloud that blocks the optical links (data and quantum) over
    /// [t0_s, t0_s + duration_s) of sim time, on top of the random cloud process, so a test or a
    /// demonstration can put an interruption exactly where it matters. Safe to call while other
    /// threads read at(). At most max_scripted_clouds; returns false (and adds nothing) when full or
    /// when t0_s is not finite or duration_s is not in (0, 3600].
    bool add_cloud(double t0_s, double duration_s);
    static constexpr std::size_t max_scripted_clouds = 64;

    /// Absolute time of sim_time 0.
    time_point start() const { return start_; }
    /// Sim seconds from start to LOS + tail_s.
    double duration_s() const { return duration_s_; }
    const pass_info& pass() const { return pass_; }
    /// AOS and LOS in sim seconds.
    double aos_s() const;
    double los_s() const;
    const config& settings() const { return cfg_; }
    double optical_mean_rx_power_w(double elevation_deg, double range_km) const;

private:
    struct geo_point {
        double elevation_deg, azimuth_deg, range_km;
        double mean_rx_dbm;       // downlink budget (elevation clamped to >= 0.5 deg)
        double quantum_db;        // quantum channel rx/tx power, dB
        double scint_index;       // aperture-averaged sigma_I^2
    };
    geo_point geometry(double t) const;

    config cfg_;
    std::unique_ptr<ground_station> station_;
    pass_info pass_{};
    time_point start_{};
    double duration_s_ = 0.0;
    optical_link downlink_;
    optical_link quantum_;
    turbulence_model turbulence_;
    std::vector<geo_point> geo_;      // 1 Hz
    std::vector<float> log_scint_;    // unit Gaussian AR(1), mapped per elevation in at()
    std::vector<float> jitter_;       // pointing loss h(t) (not normalised)
    std::vector<std::uint8_t> cloudy_;
    std::vector<float> cloud_t_;
    double jitter_mean_ = 1.0;
    struct scripted_clouds;  // [t0, t1) intervals behind a mutex; a pointer keeps the world movable
    std::unique_ptr<scripted_clouds> scripted_;
    bool scripted_cloud_at(double t) const;
};

}  // namespace qlink::sim

namespace qlink::sim {

/// The simulation's time master: sim_time = wall seconds since the start trigger x speed,
/// clamped to [0, duration]. It starts when the `start_when`-th client connects (counted over
/// every port that shares the clock). Thread safe.
class pass_clock {
public:
    /// Throws std::invalid_argument unless duration > 0, 0 < speed <= 10000, start_when >= 1.
    pass_clock(double duration_s, double speed, unsigned start_when = 1);

    /// A client connected (after a valid hello); the clock starts on the start_when-th one.
    void client_connected();
    /// Starts now if not started yet (tests, or a server that should not wait).
    void start_now();
    bool started() const;
    double sim_time() const;
    /// Sim time has reached the end of the pass.
    bool ended() const { return sim_time() >= duration_s_; }
    double speed() const { return speed_; }
    double duration_s() const { return duration_s_; }

private:
    double duration_s_;
    double speed_;
    unsigned start_when_;
    mutable std::mutex mutex_;
    unsigned clients_ = 0;
    bool started_ = false;
    std::chrono::steady_clock::time_point wall_start_{};
};

}  // namespace qlink::sim
