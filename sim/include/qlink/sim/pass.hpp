// Pass prediction: AOS, LOS and maximum elevation above an elevation mask.
#pragma once

#include <optional>
#include <vector>

#include "qlink/sim/ground_station.hpp"

namespace qlink::sim {

struct pass_info {
    time_point aos;
    time_point los;
    time_point max_elevation_time;
    double max_elevation_deg = 0.0;
    double aos_azimuth_deg = 0.0;
    double los_azimuth_deg = 0.0;
};

struct pass_search_config {
    double elevation_mask_deg = 0.0;            // [-5, 89]
    duration coarse_step = std::chrono::seconds{20};  // passes shorter than this above the mask can be missed
    duration horizon = std::chrono::hours{24 * 7};    // how far ahead to look
    duration tolerance = std::chrono::milliseconds{10};  // AOS/LOS root and max-elevation accuracy
};

struct pass_search_result {
    std::optional<pass_info> pass;
    std::string error;  // SGP4 failure or bad configuration; empty when just no pass found
};

/// The first pass whose AOS is after `start` (a pass already in progress at `start`
/// is skipped). Elevation crossings are bracketed on the coarse grid and refined by
/// bisection; the maximum by golden-section search.
pass_search_result find_next_pass(const sgp4_propagator& sat, const ground_station& station, time_point start,
                                  const pass_search_config& cfg = {});

/// All passes with AOS in [start, end).
std::vector<pass_info> find_passes(const sgp4_propagator& sat, const ground_station& station, time_point start,
                                   time_point end, const pass_search_config& cfg = {});

}  // namespace qlink::sim
