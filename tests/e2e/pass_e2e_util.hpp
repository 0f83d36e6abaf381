// Shared set-up of the end-to-end pass tests: a shortened pass of the bundled TLE over Delft.
#pragma once

#include "qlink/sim/clock.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/demo.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include <unistd.h>

namespace qlink::e2e {

namespace fs = std::filesystem;

inline fs::path build_dir() { return fs::path(QLINK_BUILD_DIR); }

/// True when the file (a program) contains `text`: tells a relay with `serve --pass` or a qkmd with
/// the QKD source from older builds of the same programs.
inline bool binary_mentions(const fs::path& p, const std::string& text) {
    std::ifstream f(p, std::ios::binary);
    const std::string b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    return std::search(b.begin(), b.end(), text.begin(), text.end()) != b.end();
}

/// Why the relay + qkmd part of the demo cannot run from this build, empty when it can.
inline std::string missing_relay_or_qkd() {
    const auto sim = build_dir() / "sim/app/qlink-sim", qkmd = build_dir() / "keymgmt/app/qkmd";
    if (::access(sim.c_str(), X_OK) != 0) return "qlink-sim is not built";
    if (::access(qkmd.c_str(), X_OK) != 0) return "qkmd is not built";
    if (!binary_mentions(sim, "serve --pass")) return "this qlink-sim has no `serve --pass` relay yet";
    if (!binary_mentions(qkmd, "source.qkd_port")) return "this qkmd has no QKD key source yet";
    return {};
}

/// The three programs the demo starts, or the first one missing.
inline std::string missing_program() {
    if (auto m = missing_relay_or_qkd(); !m.empty()) return m;
    for (const char* p : {"sim/app/qlink-sim", "keymgmt/app/qkmd", "terminal/app/qlinkd"})
        if (::access((build_dir() / p).c_str(), X_OK) != 0) return p;
    return {};
}

struct temp_dir {
    fs::path path;
    temp_dir() {
        char t[] = "/tmp/qlink_e2e_XXXXXX";
        path = ::mkdtemp(t);
    }
    ~temp_dir() {
        if (!::testing::Test::HasFailure()) fs::remove_all(path);  // kept for the logs when a test failed
    }
};

/// Start time `before_los_s` simulated seconds before LOS of the bundled TLE's first pass over Delft.
inline std::string start_before_los(double before_los_s) {
    const auto tle = terminal::find_bundled_tle();
    if (!tle) return {};
    std::ifstream f(*tle);
    std::stringstream s;
    s << f.rdbuf();
    const auto parsed = sim::parse_tle_text(s.str());
    if (!parsed.ok()) return {};
    std::string err;
    const auto st = sim::parse_station("52.0116,4.3571,0", err);
    const auto sat = sim::create_sgp4_propagator(parsed.sets.front());
    const sim::ground_station station(*st);
    // The demo's pass: the first after the epoch that climbs to 30 degrees (qlink-sim --min-elevation).
    auto pass = sim::find_next_pass(*sat, station, parsed.sets.front().epoch());
    while (pass.pass && pass.pass->max_elevation_deg < 30.0) pass = sim::find_next_pass(*sat, station, pass.pass->los);
    if (!pass.pass) return {};
    return sim::format_iso8601_utc(pass.pass->los - sim::seconds_d(before_los_s));
}

/// Every plot id of the report appears as an <svg id="plot-..."> in report.html.
inline std::string missing_plot(const fs::path& html) {
    std::ifstream f(html);
    std::stringstream s;
    s << f.rdbuf();
    for (auto id : terminal::report_plot_ids())
        if (s.str().find("id=\"plot-" + std::string(id) + "\"") == std::string::npos) return std::string(id);
    return {};
}

}  // namespace qlink::e2e
