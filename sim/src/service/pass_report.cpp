// Pass tables and their writers: CSV, JSON and a small self-contained SVG line plot.
#include "qlink/sim/pass_report.hpp"
#include "qlink/sim/report_text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace qlink::sim {

std::size_t report_table::column(const std::string& name) const {
    return static_cast<std::size_t>(std::find(columns.begin(), columns.end(), name) - columns.begin());
}

std::vector<double> report_table::series(const std::string& name) const {
    const std::size_t c = column(name);
    std::vector<double> out;
    if (c == columns.size()) return out;
    out.reserve(rows.size());
    for (const auto& r : rows) out.push_back(c < r.size() ? r[c] : std::numeric_limits<double>::quiet_NaN());
    return out;
}

report_table pass_geometry_table(const sgp4_propagator& sat, const ground_station& station, const pass_info& pass,
                                 const pass_table_config& cfg, const std::function<void(double)>& progress) {
    report_table t;
    t.columns = {"azimuth_deg",  "elevation_deg",     "range_km",           "range_rate_km_s",
                 "doppler_hz",   "doppler_rate_hz_s", "optical_doppler_hz", "point_ahead_urad"};
    if (cfg.step <= duration::zero() || pass.los < pass.aos) return t;
    const double f_opt = speed_of_light_m_s / cfg.optical_wavelength_m;
    const double total = std::chrono::duration<double>(pass.los - pass.aos).count();
    for (time_point tt = pass.aos; tt <= pass.los; tt += cfg.step) {
        const auto s = station.observe(sat, tt);
        const double nan = std::numeric_limits<double>::quiet_NaN();
        if (s.error != sgp4_error::none) {
            t.rows.push_back(std::vector<double>(t.columns.size(), nan));
        } else {
            t.rows.push_back({s.look.azimuth_deg, s.look.elevation_deg, s.look.range_km, s.look.range_rate_km_s,
                              doppler_shift_hz(cfg.carrier_hz, s.look.range_rate_km_s),
                              doppler_rate_hz_s(cfg.carrier_hz, s.range_accel_km_s2),
                              doppler_shift_hz(f_opt, s.look.range_rate_km_s), s.point_ahead_rad * 1e6});
        }
        t.times.push_back(tt);
        if (progress && total > 0.0) progress(std::chrono::duration<double>(tt - pass.aos).count() / total);
    }
    return t;
}

namespace {

using report_text::json_string;
using report_text::nice_step;
using report_text::xml_escape;

std::string num(double v) {
    if (!std::isfinite(v)) return {};
    char b[32];
    std::snprintf(b, sizeof b, "%.10g", v);
    return b;
}

bool is_number(const std::string& s) {
    double v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return !s.empty() && ec == std::errc{} && p == s.data() + s.size() && std::isfinite(v);
}

}  // namespace

void write_csv(std::ostream& out, const report_table& t) {
    out << "time_utc";
    for (const auto& c : t.columns) out << ',' << c;
    out << '\n';
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        out << format_iso8601_utc(t.times[i]);
        for (double v : t.rows[i]) out << ',' << num(v);
        out << '\n';
    }
}

void write_json(std::ostream& out, const report_table& t, const std::vector<std::pair<std::string, std::string>>& meta) {
    out << "{\n  \"meta\": {";
    for (std::size_t i = 0; i < meta.size(); ++i) {
        out << (i ? ",\n    " : "\n    ") << json_string(meta[i].first) << ": "
            << (is_number(meta[i].second) ? meta[i].second : json_string(meta[i].second));
    }
    out << "\n  },\n  \"columns\": [";
    for (std::size_t i = 0; i < t.columns.size(); ++i) out << (i ? ", " : "") << json_string(t.columns[i]);
    out << "],\n  \"samples\": [";
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        out << (i ? ",\n    " : "\n    ") << "{\"time_utc\": " << json_string(format_iso8601_utc(t.times[i]));
        for (std::size_t c = 0; c < t.columns.size() && c < t.rows[i].size(); ++c) {
            const std::string v = num(t.rows[i][c]);
            out << ", " << json_string(t.columns[c]) << ": " << (v.empty() ? "null" : v);
        }
        out << '}';
    }
    out << "\n  ]\n}\n";
}

std::string render_svg_plot(const std::string& title, const std::vector<double>& x, const std::string& x_label,
                            const std::vector<svg_panel>& panels, int width, int panel_height) {
    const int left = 80, right = 20, top = 40, gap = 40, bottom = 50;
    width = std::max(width, 300);
    panel_height = std::max(panel_height, 100);
    const int n = static_cast<int>(panels.size());
    const int height = top + n * panel_height + std::max(0, n - 1) * gap + bottom;
    const int pw = width - left - right;
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << width << ' ' << height << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
    s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    s << "<text x=\"" << width / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(title)
      << "</text>\n";

    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0;
    for (double v : x)
        if (std::isfinite(v)) x0 = std::min(x0, v), x1 = std::max(x1, v);
    if (!(x1 > x0)) x0 = 0.0, x1 = 1.0;
    auto px = [&](double v) { return left + (v - x0) / (x1 - x0) * pw; };

    for (int p = 0; p < n; ++p) {
        const auto& pan = panels[static_cast<std::size_t>(p)];
        const int py0 = top + p * (panel_height + gap);
        double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
        for (std::size_t i = 0; i < pan.y.size() && i < x.size(); ++i)
            if (std::isfinite(pan.y[i])) y0 = std::min(y0, pan.y[i]), y1 = std::max(y1, pan.y[i]);
        if (!std::isfinite(y0)) y0 = 0.0, y1 = 1.0;
        if (y1 - y0 < 1e-12 * std::max(1.0, std::fabs(y0))) y0 -= 0.5, y1 += 0.5;
        const double ystep = nice_step(y1 - y0, 5);
        y0 = std::floor(y0 / ystep) * ystep;
        y1 = std::ceil(y1 / ystep) * ystep;
        auto py = [&](double v) { return py0 + panel_height - (v - y0) / (y1 - y0) * panel_height; };

        s << "<rect x=\"" << left << "\" y=\"" << py0 << "\" width=\"" << pw << "\" height=\"" << panel_height
          << "\" fill=\"none\" stroke=\"#444\"/>\n";
        for (double v = y0; v <= y1 + ystep * 1e-6; v += ystep) {
            const double yy = py(v);
            s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << yy << "\" y2=\"" << yy
              << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << yy + 4
              << "\" text-anchor=\"end\">" << num(std::fabs(v) < ystep * 1e-9 ? 0.0 : v) << "</text>\n";
        }
        const double xstep = nice_step(x1 - x0, 8);
        for (double v = std::ceil(x0 / xstep) * xstep; v <= x1 + xstep * 1e-6; v += xstep) {
            const double xx = px(v);
            s << "<line x1=\"" << xx << "\" x2=\"" << xx << "\" y1=\"" << py0 << "\" y2=\"" << py0 + panel_height
              << "\" stroke=\"#eee\"/>\n<text x=\"" << xx << "\" y=\"" << py0 + panel_height + 15
              << "\" text-anchor=\"middle\">" << num(v) << "</text>\n";
        }
        s << "<text transform=\"translate(16," << py0 + panel_height / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
          << xml_escape(pan.label) << "</text>\n";
        // NaN breaks the polyline into segments.
        std::string pts;
        auto flush = [&] {
            if (!pts.empty())
                s << "<polyline fill=\"none\" stroke=\"" << xml_escape(pan.color) << "\" stroke-width=\"1.5\" points=\""
                  << pts << "\"/>\n";
            pts.clear();
        };
        for (std::size_t i = 0; i < pan.y.size() && i < x.size(); ++i) {
            if (!std::isfinite(pan.y[i]) || !std::isfinite(x[i])) {
                flush();
                continue;
            }
            char b[64];
            std::snprintf(b, sizeof b, "%.2f,%.2f ", px(x[i]), py(pan.y[i]));
            pts += b;
        }
        flush();
    }
    s << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 12 << "\" text-anchor=\"middle\">"
      << xml_escape(x_label) << "</text>\n</svg>\n";
    return s.str();
}

}  // namespace qlink::sim
