// SGP4/SDP4 orbit propagation (Vallado et al. 2006, "Revisiting Spacetrack Report #3", improved mode).
#pragma once

#include <array>
#include <memory>
#include <string_view>

#include "qlink/sim/clock.hpp"
#include "qlink/sim/tle.hpp"

namespace qlink::sim {

using vec3 = std::array<double, 3>;

/// The error codes of the reference implementation, same numbers.
enum class sgp4_error : int {
    none = 0,
    mean_eccentricity = 1,       // mean eccentricity outside [-0.001, 1)
    mean_motion = 2,             // mean motion <= 0
    perturbed_eccentricity = 3,  // perturbed eccentricity outside [0, 1]
    semi_latus_rectum = 4,       // semi-latus rectum < 0
    decayed = 6,                 // radius below the earth's surface: the satellite has decayed
};

std::string_view to_string(sgp4_error e);

enum class gravity_model { wgs72, wgs84 };

/// Result of one propagation: position and velocity in the TEME frame.
struct sgp4_result {
    sgp4_error error = sgp4_error::none;
    vec3 r_km{};
    vec3 v_km_s{};
    bool ok() const { return error == sgp4_error::none; }
};

/// A propagator initialised from one element set. propagate() is const and
/// thread safe: the deep-space resonance integrator restarts from epoch on each
/// call (it uses fixed 720-minute steps, so this gives the reference's numbers).
class sgp4_propagator {
public:
    struct config {
        gravity_model gravity = gravity_model::wgs72;  // what the element sets are fitted with
    };

    virtual ~sgp4_propagator() = default;

    /// Minutes since the element set's epoch.
    virtual sgp4_result propagate_minutes(double tsince_min) const = 0;
    /// At a UTC instant.
    virtual sgp4_result propagate(time_point t) const = 0;
    virtual const tle& elements() const = 0;
    /// True when the orbital period is >= 225 min (SDP4 deep-space branch).
    virtual bool deep_space() const = 0;
};

/// Never fails: bad elements surface as error codes from propagate(), as in the reference.
std::unique_ptr<sgp4_propagator> create_sgp4_propagator(const tle& elements,
                                                        const sgp4_propagator::config& cfg = {});

}  // namespace qlink::sim
