// The simulated az/el mount the rotctld service drives: slew-rate limited, advancing with an injected clock.
#pragma once

#include <mutex>
#include <string>

#include "qlink/sim/clock.hpp"

namespace qlink::sim {

struct mount_position {
    double azimuth_deg = 0.0;
    double elevation_deg = 0.0;
};

class sim_mount {
public:
    struct config {
        double min_azimuth_deg = -180.0;  // rotctld convention: az may run past 360 for cable wrap
        double max_azimuth_deg = 450.0;
        double min_elevation_deg = 0.0;
        double max_elevation_deg = 90.0;
        double slew_rate_deg_s = 6.0;     // per axis, (0, 360]
        mount_position park{0.0, 90.0};
        mount_position initial{0.0, 90.0};
    };

    /// Message naming the field and its allowed range, or empty.
    static std::string validate(const config& cfg);
    /// Throws std::invalid_argument (configuration edge). The clock must outlive the mount.
    sim_mount(const config& cfg, const clock& clk);

    /// Commands a new target; false (and no change) when outside the limits or not finite.
    bool set_target(double azimuth_deg, double elevation_deg);
    /// Current position, advanced to the clock's now.
    mount_position position();
    mount_position target();
    /// Holds the current position.
    void stop();
    /// Slews to the park position.
    void park();
    const config& settings() const { return cfg_; }

private:
    void advance_locked();

    config cfg_;
    const clock& clock_;
    std::mutex mutex_;
    mount_position pos_;
    mount_position target_;
    time_point last_;
};

}  // namespace qlink::sim
