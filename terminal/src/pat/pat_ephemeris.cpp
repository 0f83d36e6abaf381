// The SGP4 pointing reference for PAT: apparent direction and transmit point-ahead.
#include "qlink/terminal/pat.hpp"

#include <cmath>

namespace qlink::terminal {
namespace {

class sgp4_ephemeris final : public pat_ephemeris {
public:
    sgp4_ephemeris(const sim::sgp4_propagator& sat, const sim::ground_station& station)
        : sat_(sat), station_(station) {}

    pat_target at(sim::time_point t) const override {
        pat_target out;
        const sim::pass_sample s = station_.observe(sat_, t);
        if (s.error != sim::sgp4_error::none) return out;
        out.valid = true;
        out.sky = {s.look.azimuth_deg, s.look.elevation_deg};
        // Direction of the apparent motion over 0.1 s: the point-ahead leads along it.
        const sim::pass_sample later = station_.observe(sat_, t + std::chrono::milliseconds(100));
        if (later.error == sim::sgp4_error::none) {
            const hw::tilt d = hw::sky_offset(out.sky, {later.look.azimuth_deg, later.look.elevation_deg});
            const double n = std::hypot(d.x_rad, d.y_rad);
            if (n > 0.0) out.point_ahead = {s.point_ahead_rad * d.x_rad / n, s.point_ahead_rad * d.y_rad / n};
        }
        return out;
    }

private:
    const sim::sgp4_propagator& sat_;
    const sim::ground_station& station_;
};

}  // namespace

std::unique_ptr<pat_ephemeris> create_sgp4_ephemeris(const sim::sgp4_propagator& sat,
                                                     const sim::ground_station& station) {
    return std::make_unique<sgp4_ephemeris>(sat, station);
}

}  // namespace qlink::terminal
