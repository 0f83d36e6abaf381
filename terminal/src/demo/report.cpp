// The pass report: time series to CSV/JSON and a self-contained report.html with inline SVG plots.
#include "qlink/terminal/report.hpp"
#include "qlink/sim/report_text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <ostream>
#include <sstream>
#include <system_error>

namespace qlink::terminal {

namespace {

using sim::report_text::csv_field;
using sim::report_text::json_string;
using sim::report_text::nice_step;
using sim::report_text::xml_escape;

using str_member = std::string pass_sample::*;
using num_member = double pass_sample::*;

// One column: either a number or a string member, never both.
struct column_def {
    std::string_view name;
    num_member num = nullptr;
    str_member str = nullptr;
};

const std::vector<column_def>& columns() {
    static const std::vector<column_def> c = {
        {"sim_time_s", &pass_sample::sim_time_s},
        {"wall_time_s", &pass_sample::wall_time_s},
        {"elevation_deg", &pass_sample::elevation_deg},
        {"rx_power_dbm", &pass_sample::rx_power_dbm},
        {"esn0_db", &pass_sample::esn0_db},
        {"link_state", nullptr, &pass_sample::link_state},
        {"pat_state", nullptr, &pass_sample::pat_state},
        {"frames_rx_ok", &pass_sample::frames_rx_ok},
        {"frames_crc_fail", &pass_sample::frames_crc_fail},
        {"decode_fail", &pass_sample::decode_fail},
        {"rs_corrected", &pass_sample::rs_corrected},
        {"ldpc_iterations", &pass_sample::ldpc_iterations},
        {"channel_bit_errors", &pass_sample::channel_bit_errors},
        {"frames_tx", &pass_sample::frames_tx},
        {"arq_retransmissions", &pass_sample::arq_retransmissions},
        {"arq_in_flight", &pass_sample::arq_in_flight},
        {"arq_srtt_s", &pass_sample::arq_srtt_s},
        {"bytes_delivered", &pass_sample::bytes_delivered},
        {"bytes_sent", &pass_sample::bytes_sent},
        {"qber", &pass_sample::qber},
        {"secret_key_rate_bps", &pass_sample::secret_key_rate_bps},
        {"key_pool_level", &pass_sample::key_pool_level},
        {"keys_consumed", &pass_sample::keys_consumed},
        {"key_rotations", &pass_sample::key_rotations},
        {"active_key_id", &pass_sample::active_key_id},
    };
    return c;
}

std::string num(double v, const char* fmt = "%.10g") {
    if (!std::isfinite(v)) return {};
    char b[48];
    std::snprintf(b, sizeof b, fmt, v);
    return b;
}

std::string tick_label(double v, double step) {
    if (std::fabs(v) < step * 1e-9) v = 0.0;
    return num(v, "%.6g");
}

struct line_series {
    std::string name;
    std::string color;
    std::vector<double> y;
};

struct plot_panel {
    std::string y_label;  // with unit
    std::vector<line_series> lines;
};

struct plot_spec {
    std::string id;
    std::string title;
    std::vector<plot_panel> panels;
};

// Per simulated second rate of a cumulative counter; NaN where unknown or where the counter went
// backwards (a restarted daemon starts from zero again).
std::vector<double> rate(const std::vector<pass_sample>& s, num_member m) {
    std::vector<double> r(s.size(), no_value);
    for (std::size_t i = 1; i < s.size(); ++i) {
        const double dt = s[i].sim_time_s - s[i - 1].sim_time_s;
        const double dv = s[i].*m - s[i - 1].*m;
        if (std::isfinite(dt) && dt > 0 && std::isfinite(dv) && dv >= 0) r[i] = dv / dt;
    }
    return r;
}

std::vector<double> sum_rates(const std::vector<double>& a, const std::vector<double>& b) {
    std::vector<double> r(a.size(), no_value);
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        const bool fa = std::isfinite(a[i]), fb = std::isfinite(b[i]);
        if (fa || fb) r[i] = (fa ? a[i] : 0.0) + (fb ? b[i] : 0.0);
    }
    return r;
}

std::vector<double> column(const std::vector<pass_sample>& s, num_member m, double scale = 1.0) {
    std::vector<double> r;
    r.reserve(s.size());
    for (const auto& x : s) r.push_back(x.*m * scale);
    return r;
}

// A blocked beam (cloud, below the mask) has no received power: the simulator reports the
// link budget times a zero factor, -300 dBm. No detector resolves anything near that, so the
// plot shows a gap there (the shading says why) instead of a cliff that flattens the fades.
constexpr double no_signal_dbm = -200.0;

std::vector<double> power_column(const std::vector<pass_sample>& s) {
    auto r = column(s, &pass_sample::rx_power_dbm);
    for (auto& v : r)
        if (v < no_signal_dbm) v = no_value;
    return r;
}

// Intervals [t0, t1) during which the ground link was not up (fades, clouds, below the mask).
std::vector<std::pair<double, double>> down_intervals(const std::vector<pass_sample>& s) {
    std::vector<std::pair<double, double>> out;
    for (std::size_t i = 0; i + 1 < s.size(); ++i) {
        if (s[i].link_state.empty() || s[i].link_state == "up") continue;
        if (!std::isfinite(s[i].sim_time_s) || !std::isfinite(s[i + 1].sim_time_s)) continue;
        if (!out.empty() && out.back().second == s[i].sim_time_s)
            out.back().second = s[i + 1].sim_time_s;
        else
            out.emplace_back(s[i].sim_time_s, s[i + 1].sim_time_s);
    }
    return out;
}

std::string fmt2(double v) { return num(v, "%.2f"); }

std::string render_plot(const plot_spec& spec, const std::vector<double>& x,
                        const std::vector<std::pair<double, double>>& down, const std::vector<rotation_event>& rot) {
    const int width = 900, left = 80, right = 20, top = 44, gap = 46, bottom = 46, panel_h = 200;
    const int n = static_cast<int>(spec.panels.size());
    const int height = top + n * panel_h + std::max(0, n - 1) * gap + bottom;
    const int pw = width - left - right;
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"plot-" << xml_escape(spec.id) << "\" width=\"" << width
      << "\" height=\"" << height << "\" viewBox=\"0 0 " << width << ' ' << height
      << "\" font-family=\"sans-serif\" font-size=\"12\" role=\"img\">\n"
      << "<title>" << xml_escape(spec.title) << "</title>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << width / 2 << "\" y=\"20\" text-anchor=\"middle\" font-size=\"15\">" << xml_escape(spec.title)
      << "</text>\n";

    double x0 = std::numeric_limits<double>::infinity(), x1 = -x0;
    for (double v : x)
        if (std::isfinite(v)) x0 = std::min(x0, v), x1 = std::max(x1, v);
    if (!(x1 > x0)) x0 = std::isfinite(x0) ? x0 : 0.0, x1 = x0 + 1.0;
    auto px = [&](double v) { return left + (std::clamp(v, x0, x1) - x0) / (x1 - x0) * pw; };
    const double xstep = nice_step(x1 - x0, 8);

    for (int p = 0; p < n; ++p) {
        const auto& pan = spec.panels[static_cast<std::size_t>(p)];
        const int py0 = top + p * (panel_h + gap);
        double y0 = std::numeric_limits<double>::infinity(), y1 = -y0;
        for (const auto& l : pan.lines)
            for (std::size_t i = 0; i < l.y.size() && i < x.size(); ++i)
                if (std::isfinite(l.y[i]) && std::isfinite(x[i])) y0 = std::min(y0, l.y[i]), y1 = std::max(y1, l.y[i]);
        const bool empty = !std::isfinite(y0);
        if (empty) y0 = 0.0, y1 = 1.0;
        if (y1 - y0 < 1e-12 * std::max(1.0, std::fabs(y0))) y0 -= 0.5, y1 += 0.5;
        const double ystep = nice_step(y1 - y0, 5);
        y0 = std::floor(y0 / ystep) * ystep;
        y1 = std::ceil(y1 / ystep) * ystep;
        auto py = [&](double v) { return py0 + panel_h - (v - y0) / (y1 - y0) * panel_h; };

        s << "<g class=\"panel\">\n";
        // Link-down shading first so the lines stay on top.
        for (const auto& [a, b] : down)
            s << "<rect class=\"link-down\" x=\"" << fmt2(px(a)) << "\" y=\"" << py0 << "\" width=\""
              << fmt2(std::max(1.0, px(b) - px(a))) << "\" height=\"" << panel_h
              << "\" fill=\"#f4c7c3\" fill-opacity=\"0.6\"/>\n";
        for (double v = y0; v <= y1 + ystep * 1e-6; v += ystep) {
            const double yy = py(v);
            s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << fmt2(yy) << "\" y2=\"" << fmt2(yy)
              << "\" stroke=\"#ddd\"/>\n<text x=\"" << left - 6 << "\" y=\"" << fmt2(yy + 4)
              << "\" text-anchor=\"end\">" << tick_label(v, ystep) << "</text>\n";
        }
        for (double v = std::ceil(x0 / xstep) * xstep; v <= x1 + xstep * 1e-6; v += xstep) {
            const double xx = px(v);
            s << "<line x1=\"" << fmt2(xx) << "\" x2=\"" << fmt2(xx) << "\" y1=\"" << py0 << "\" y2=\"" << py0 + panel_h
              << "\" stroke=\"#eee\"/>\n<text x=\"" << fmt2(xx) << "\" y=\"" << py0 + panel_h + 15
              << "\" text-anchor=\"middle\">" << tick_label(v, xstep) << "</text>\n";
        }
        s << "<rect x=\"" << left << "\" y=\"" << py0 << "\" width=\"" << pw << "\" height=\"" << panel_h
          << "\" fill=\"none\" stroke=\"#444\"/>\n";
        s << "<text transform=\"translate(18," << py0 + panel_h / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
          << xml_escape(pan.y_label) << "</text>\n";
        for (const auto& r : rot) {
            if (!std::isfinite(r.sim_time_s)) continue;
            const double xx = px(r.sim_time_s);
            s << "<line class=\"rotation\" x1=\"" << fmt2(xx) << "\" x2=\"" << fmt2(xx) << "\" y1=\"" << py0
              << "\" y2=\"" << py0 + panel_h << "\" stroke=\"#9467bd\" stroke-dasharray=\"4,3\"><title>key rotation "
              << xml_escape(r.label) << " at " << num(r.sim_time_s, "%.1f") << " s</title></line>\n";
        }
        for (const auto& l : pan.lines) {
            // NaN breaks the polyline into segments.
            std::string pts;
            auto flush = [&] {
                if (!pts.empty())
                    s << "<polyline class=\"series\" fill=\"none\" stroke=\"" << xml_escape(l.color)
                      << "\" stroke-width=\"1.5\" points=\"" << pts << "\"/>\n";
                pts.clear();
            };
            for (std::size_t i = 0; i < l.y.size() && i < x.size(); ++i) {
                if (!std::isfinite(l.y[i]) || !std::isfinite(x[i])) {
                    flush();
                    continue;
                }
                char b[64];
                std::snprintf(b, sizeof b, "%.2f,%.2f ", px(x[i]), py(l.y[i]));
                pts += b;
            }
            flush();
        }
        // Legend, top right inside the panel.
        int ly = py0 + 14;
        for (const auto& l : pan.lines) {
            s << "<line x1=\"" << left + pw - 200 << "\" x2=\"" << left + pw - 182 << "\" y1=\"" << ly - 4
              << "\" y2=\"" << ly - 4 << "\" stroke=\"" << xml_escape(l.color) << "\" stroke-width=\"2\"/>"
              << "<text x=\"" << left + pw - 178 << "\" y=\"" << ly << "\">" << xml_escape(l.name) << "</text>\n";
            ly += 15;
        }
        if (empty)
            s << "<text x=\"" << left + pw / 2 << "\" y=\"" << py0 + panel_h / 2
              << "\" text-anchor=\"middle\" fill=\"#888\">no data reported</text>\n";
        s << "</g>\n";
    }
    s << "<text x=\"" << left + pw / 2 << "\" y=\"" << height - 10
      << "\" text-anchor=\"middle\">simulated time since pass start (s)</text>\n</svg>\n";
    return s.str();
}

std::vector<plot_spec> plot_specs(const pass_timeseries& ts) {
    const auto& s = ts.samples;
    std::vector<plot_spec> p;
    p.push_back({"elevation", "Satellite elevation", {{"elevation (deg)", {{"elevation", "#1f77b4", column(s, &pass_sample::elevation_deg)}}}}});
    p.push_back({"rx-power",
                 "Received optical power (fades and cloud blocks shaded)",
                 {{"received power (dBm)", {{"optical downlink", "#2ca02c", power_column(s)}}},
                  {"return link Es/N0 (dB)", {{"RF return link", "#8c564b", column(s, &pass_sample::esn0_db)}}}}});
    p.push_back({"frame-errors",
                 "Errors before and after decoding (ground receiver)",
                 {{"before decoding (1/s)",
                   {{"channel bit errors (est.)", "#ff7f0e", rate(s, &pass_sample::channel_bit_errors)},
                    {"RS symbols corrected", "#17becf", rate(s, &pass_sample::rs_corrected)}}},
                  {"after decoding (frames/s)",
                   {{"frames failed (CRC or decode)", "#d62728",
                     sum_rates(rate(s, &pass_sample::frames_crc_fail), rate(s, &pass_sample::decode_fail))},
                    {"frames received ok", "#2ca02c", rate(s, &pass_sample::frames_rx_ok)}}}}});
    p.push_back({"arq",
                 "ARQ retransmissions and user data delivered",
                 {{"retransmissions (frames/s)", {{"retransmissions", "#d62728", rate(s, &pass_sample::arq_retransmissions)}}},
                  {"user data (kB)",
                   {{"sent into space qlinkd", "#7f7f7f", column(s, &pass_sample::bytes_sent, 1e-3)},
                    {"delivered by ground qlinkd", "#1f77b4", column(s, &pass_sample::bytes_delivered, 1e-3)}}}}});
    p.push_back({"qber", "QKD quantum bit error rate", {{"QBER (%)", {{"QBER", "#9467bd", column(s, &pass_sample::qber, 100.0)}}}}});
    p.push_back({"key-rate",
                 "QKD secret key rate",
                 {{"secret key rate (bit/s)", {{"secret key rate", "#2ca02c", column(s, &pass_sample::secret_key_rate_bps)}}}}});
    p.push_back({"key-pool",
                 "Key pool level and keys consumed by the link (rotations marked)",
                 {{"keys", {{"pool level (ground qkmd)", "#1f77b4", column(s, &pass_sample::key_pool_level)},
                            {"keys consumed", "#ff7f0e", column(s, &pass_sample::keys_consumed)}}}}});
    return p;
}

}  // namespace

void pass_timeseries::derive_rotations() {
    rotations.clear();
    double last = no_value;
    for (const auto& s : samples) {
        const double v = s.key_rotations;
        if (std::isfinite(v) && std::isfinite(last) && v > last) {
            // Appended, not "literal" + string: GCC 12 -O2 warns falsely (-Wrestrict) on that operator+.
            const std::string key = std::isfinite(s.active_key_id) ? std::string("key ").append(num(s.active_key_id, "%.0f")) : "";
            // Several rotations in one poll interval share the sample's time.
            for (double k = last; k < v; k += 1.0)
                rotations.push_back({s.sim_time_s, key.empty() ? std::string("#").append(num(k + 1, "%.0f")) : key});
        }
        if (std::isfinite(v)) last = v;
    }
}

std::vector<std::string_view> timeseries_columns() {
    std::vector<std::string_view> r;
    for (const auto& c : columns()) r.push_back(c.name);
    return r;
}

void write_timeseries_csv(std::ostream& out, const pass_timeseries& ts) {
    const auto& cols = columns();
    for (std::size_t i = 0; i < cols.size(); ++i) out << (i ? "," : "") << cols[i].name;
    out << '\n';
    for (const auto& s : ts.samples) {
        for (std::size_t i = 0; i < cols.size(); ++i) {
            if (i) out << ',';
            out << (cols[i].num ? num(s.*cols[i].num) : csv_field(s.*cols[i].str));
        }
        out << '\n';
    }
}

void write_timeseries_json(std::ostream& out, const pass_timeseries& ts) {
    const auto& cols = columns();
    out << "{\n  \"summary\": {";
    for (std::size_t i = 0; i < ts.summary.size(); ++i)
        out << (i ? ",\n    " : "\n    ") << json_string(ts.summary[i].first) << ": " << json_string(ts.summary[i].second);
    out << "\n  },\n  \"columns\": [";
    for (std::size_t i = 0; i < cols.size(); ++i) out << (i ? ", " : "") << json_string(cols[i].name);
    out << "],\n  \"rotations\": [";
    for (std::size_t i = 0; i < ts.rotations.size(); ++i) {
        const std::string t = num(ts.rotations[i].sim_time_s);
        out << (i ? ",\n    " : "\n    ") << "{\"sim_time_s\": " << (t.empty() ? "null" : t)
            << ", \"label\": " << json_string(ts.rotations[i].label) << '}';
    }
    out << "\n  ],\n  \"samples\": [";
    for (std::size_t r = 0; r < ts.samples.size(); ++r) {
        const auto& s = ts.samples[r];
        out << (r ? ",\n    " : "\n    ") << '{';
        for (std::size_t i = 0; i < cols.size(); ++i) {
            out << (i ? ", " : "") << json_string(cols[i].name) << ": ";
            if (cols[i].num) {
                const std::string v = num(s.*cols[i].num);
                out << (v.empty() ? "null" : v);
            } else {
                out << json_string(s.*cols[i].str);
            }
        }
        out << '}';
    }
    out << "\n  ]\n}\n";
}

std::vector<std::string_view> report_plot_ids() {
    return {"elevation", "rx-power", "frame-errors", "arq", "qber", "key-rate", "key-pool"};
}

std::string render_report_html(const pass_timeseries& ts, std::string_view title) {
    std::vector<double> x;
    x.reserve(ts.samples.size());
    for (const auto& s : ts.samples) x.push_back(s.sim_time_s);
    const auto down = down_intervals(ts.samples);

    std::ostringstream h;
    h << "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n"
      << "<meta charset=\"utf-8\"/>\n<title>" << xml_escape(title) << "</title>\n"
      << "<style>\nbody { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 940px; }\n"
         "table { border-collapse: collapse; margin-bottom: 1.5em; }\n"
         "td, th { border: 1px solid #bbb; padding: 3px 10px; text-align: left; }\n"
         "th { background: #eee; }\n"
         "figure { margin: 0 0 1.5em 0; }\n"
         ".note { color: #555; font-size: 90%; }\n</style>\n</head>\n<body>\n"
      << "<h1>" << xml_escape(title) << "</h1>\n<h2>Summary</h2>\n<table id=\"summary\">\n"
      << "<tr><th>figure</th><th>value</th></tr>\n";
    for (const auto& [k, v] : ts.summary) h << "<tr><td>" << xml_escape(k) << "</td><td>" << xml_escape(v) << "</td></tr>\n";
    h << "</table>\n<p class=\"note\">Shaded: intervals in which the ground receiver reported the link not up "
         "(turbulence fades, cloud blocks, below the mask). Dashed purple lines: key rotations ("
      << ts.rotations.size() << " during the pass). Rates are per simulated second between two polls. "
         "The raw series are in timeseries.csv and timeseries.json.</p>\n<h2>Plots</h2>\n";
    for (const auto& spec : plot_specs(ts))
        h << "<figure>\n" << render_plot(spec, x, down, ts.rotations) << "</figure>\n";
    if (!ts.rotations.empty()) {
        h << "<h2>Key rotations</h2>\n<table id=\"rotations\">\n<tr><th>simulated time (s)</th><th>key</th></tr>\n";
        for (const auto& r : ts.rotations)
            h << "<tr><td>" << num(r.sim_time_s, "%.1f") << "</td><td>" << xml_escape(r.label) << "</td></tr>\n";
        h << "</table>\n";
    }
    h << "</body>\n</html>\n";
    return h.str();
}

report_files write_pass_report(const std::filesystem::path& dir, const pass_timeseries& ts, std::string_view title) {
    report_files r;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) {
        r.error = "cannot create '" + dir.string() + "': " + ec.message();
        return r;
    }
    r.html = dir / "report.html";
    r.csv = dir / "timeseries.csv";
    r.json = dir / "timeseries.json";
    auto write = [&](const std::filesystem::path& p, auto&& body) {
        std::ofstream f(p, std::ios::binary | std::ios::trunc);
        if (f) body(f);
        f.flush();
        if (!f) {
            r.error = "cannot write '" + p.string() + "'";
            return false;
        }
        return true;
    };
    if (!write(r.html, [&](std::ostream& o) { o << render_report_html(ts, title); })) return r;
    if (!write(r.csv, [&](std::ostream& o) { write_timeseries_csv(o, ts); })) return r;
    if (!write(r.json, [&](std::ostream& o) { write_timeseries_json(o, ts); })) return r;
    r.ok = true;
    return r;
}

}  // namespace qlink::terminal
