// Per-second pass tables (geometry plus any extra columns) and their CSV, JSON and SVG forms.
#pragma once

#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "qlink/sim/pass.hpp"

namespace qlink::sim {

/// A time series table: one row per instant, one double per named column (NaN = no value).
struct report_table {
    std::vector<std::string> columns;
    std::vector<time_point> times;
    std::vector<std::vector<double>> rows;

    std::size_t column(const std::string& name) const;  // columns.size() when absent
    std::vector<double> series(const std::string& name) const;
};

struct pass_table_config {
    duration step = std::chrono::seconds{1};
    double carrier_hz = 8.4e9;          // for the Doppler columns (> 0)
    double optical_wavelength_m = 1550e-9;
};

/// Geometry columns every `step` from AOS to LOS: azimuth_deg, elevation_deg, range_km,
/// range_rate_km_s, doppler_hz, doppler_rate_hz_s, optical_doppler_hz, point_ahead_urad.
/// `progress` (optional) gets the fraction done after each row.
report_table pass_geometry_table(const sgp4_propagator& sat, const ground_station& station, const pass_info& pass,
                                 const pass_table_config& cfg, const std::function<void(double)>& progress = {});

/// CSV: header "time_utc,<columns>", ISO 8601 times, NaN written as an empty field.
void write_csv(std::ostream& out, const report_table& t);

/// JSON: {"meta": {...meta pairs...}, "columns": [...], "samples": [{"time_utc": ..., col: value}, ...]}.
/// `meta` values are written as JSON strings unless they parse fully as numbers.
void write_json(std::ostream& out, const report_table& t, const std::vector<std::pair<std::string, std::string>>& meta);

/// One stacked panel of an SVG plot.
struct svg_panel {
    std::string label;  // y-axis label with unit
    std::vector<double> y;
    std::string color = "#1f77b4";
};

/// Renders panels stacked over a shared x axis (seconds); NaN points break the line.
std::string render_svg_plot(const std::string& title, const std::vector<double>& x, const std::string& x_label,
                            const std::vector<svg_panel>& panels, int width = 900, int panel_height = 220);

}  // namespace qlink::sim
