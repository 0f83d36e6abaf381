// Two-line element sets: parsing with checksum validation and error messages naming line and column.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "qlink/sim/clock.hpp"

namespace qlink::sim {

/// One element set as printed in the TLE (angles in degrees, mean motion in rev/day).
struct tle {
    std::string name;               // line 0, may be empty
    int catalog_number = 0;
    char classification = 'U';
    std::string intl_designator;
    int epoch_year = 0;             // four digits (57..99 -> 19xx, 00..56 -> 20xx)
    double epoch_day = 0.0;         // day of year with fraction, 1.0 = Jan 1 00:00 UTC
    double mean_motion_dot = 0.0;   // rev/day^2 (first derivative / 2 as printed)
    double mean_motion_ddot = 0.0;  // rev/day^3 (second derivative / 6 as printed)
    double bstar = 0.0;             // 1/earth radii
    int element_set = 0;
    double inclination_deg = 0.0;
    double raan_deg = 0.0;
    double eccentricity = 0.0;
    double arg_perigee_deg = 0.0;
    double mean_anomaly_deg = 0.0;
    double mean_motion_rev_day = 0.0;
    int rev_number = 0;

    /// Epoch as a Julian date, split into a whole-ish part and a fraction for precision.
    double epoch_jd = 0.0;
    double epoch_jd_fraction = 0.0;
    time_point epoch() const;
};

struct tle_parse_options {
    bool verify_checksum = true;
    /// Characters after column 69 are rejected unless this is set (the Vallado
    /// verification file appends start/stop/step there).
    bool allow_trailing = false;
};

struct tle_parse_result {
    std::optional<tle> value;
    std::string error;  // "line 2, column 9-16 (inclination): ..." when !value
    bool ok() const { return value.has_value(); }
};

/// Parses one element set from its two lines (and an optional name line).
tle_parse_result parse_tle(std::string_view line1, std::string_view line2, std::string_view name = {},
                           const tle_parse_options& options = {});

struct tle_file_result {
    std::vector<tle> sets;
    std::string error;  // first error, with the file line number; empty when ok
    bool ok() const { return error.empty() && !sets.empty(); }
};

/// Parses text holding 2-line or 3-line element sets; blank lines and lines starting
/// with '#' are skipped. Text that holds no element set is an error.
tle_file_result parse_tle_text(std::string_view text, const tle_parse_options& options = {});

/// The modulo-10 checksum of the first 68 characters ('-' counts 1, digits their value).
int tle_checksum(std::string_view line);

}  // namespace qlink::sim
