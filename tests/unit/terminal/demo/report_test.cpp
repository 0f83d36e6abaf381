// Tests the pass report writer on a synthetic pass: every plot present, XML well formed (python3's
// expat parser as the oracle), CSV/JSON consistent with the series, rotations and fades marked.
#include "qlink/terminal/report.hpp"
#include "support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace qlink::terminal {
namespace {

namespace fs = std::filesystem;

int run_cmd(const std::string& cmd, std::string& out) {
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return -1;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
    const int st = ::pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

using qlink::test::temp_dir;

// A 10-minute pass polled every 2 s: elevation arc, a cloud block at 200-240 s and a fade at
// 400 s, counters growing, one rotation every 100 s, QBER only while keys are distilled.
pass_timeseries synthetic_pass() {
    pass_timeseries ts;
    double rot = 0;
    for (int i = 0; i < 300; ++i) {
        pass_sample s;
        const double t = 2.0 * i;
        s.sim_time_s = t;
        s.wall_time_s = t / 10.0;
        s.elevation_deg = 10.0 + 60.0 * std::sin(3.14159265 * t / 600.0);
        const bool down = (t >= 200 && t < 240) || (t >= 400 && t < 404);
        s.link_state = down ? "down" : "up";
        s.pat_state = down ? "ACQUISITION" : "COMMUNICATION";
        // The simulator reports a blocked beam (cloud) as -300 dBm; the fade is a real -90 dBm.
        s.rx_power_dbm = (t >= 200 && t < 240) ? -300.0 : down ? -90.0 : -60.0 + 0.1 * s.elevation_deg;
        s.esn0_db = 8.0 + 0.05 * s.elevation_deg;
        s.frames_rx_ok = 100.0 * t;
        s.frames_crc_fail = std::floor(t / 50.0);
        s.decode_fail = std::floor(t / 120.0);
        s.rs_corrected = 30.0 * t;
        s.channel_bit_errors = 500.0 * t;
        s.frames_tx = 101.0 * t;
        s.arq_retransmissions = t < 240 ? 0.0 : 40.0;
        s.arq_in_flight = 8;
        s.bytes_sent = 2000.0 * t;
        s.bytes_delivered = 1990.0 * t;
        s.qber = t > 60 && t < 540 ? 0.03 : no_value;
        s.secret_key_rate_bps = t > 60 && t < 540 ? 1200.0 : no_value;
        s.key_pool_level = 20 + std::fmod(t, 100.0) / 10.0;
        s.keys_consumed = std::floor(t / 100.0);
        if (i > 0 && std::fmod(t, 100.0) == 0.0) rot += 1;
        s.key_rotations = rot;
        s.active_key_id = 40 + rot;
        ts.samples.push_back(s);
    }
    ts.summary = {{"file", "demo.bin (4 MiB), SHA-256 match"}, {"key rotations", "5"}, {"odd <chars> & \"quotes\"", "ok"}};
    ts.derive_rotations();
    return ts;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

TEST(pass_report, rotations_derived_from_counter) {
    const auto ts = synthetic_pass();
    ASSERT_EQ(ts.rotations.size(), 5u);
    EXPECT_DOUBLE_EQ(ts.rotations[0].sim_time_s, 100.0);
    EXPECT_EQ(ts.rotations[0].label, "key 41");
    EXPECT_DOUBLE_EQ(ts.rotations[4].sim_time_s, 500.0);

    // Two rotations inside one poll interval give two events; a restarted daemon (counter back to
    // zero) gives none.
    pass_timeseries t2;
    for (double r : {0.0, 2.0, 0.0, 1.0}) {
        pass_sample s;
        s.sim_time_s = static_cast<double>(t2.samples.size());
        s.key_rotations = r;
        t2.samples.push_back(s);
    }
    t2.derive_rotations();
    ASSERT_EQ(t2.rotations.size(), 3u);
    EXPECT_EQ(t2.rotations[0].sim_time_s, 1.0);
    EXPECT_EQ(t2.rotations[1].sim_time_s, 1.0);
    EXPECT_EQ(t2.rotations[2].sim_time_s, 3.0);
}

TEST(pass_report, blocked_beam_is_a_gap_not_a_cliff_in_the_power_plot) {
    temp_dir d;
    const auto r = write_pass_report(d.path / "out", synthetic_pass(), "power");
    ASSERT_TRUE(r.ok) << r.error;
    const std::string html = slurp(r.html);
    // The power axis spans the real readings (-90..-53 dBm), not the -300 dBm "no signal" value.
    EXPECT_EQ(html.find(">-300</text>"), std::string::npos);
    EXPECT_EQ(html.find(">-200</text>"), std::string::npos);
    EXPECT_NE(html.find(">-90</text>"), std::string::npos);
}

TEST(pass_report, html_is_well_formed_with_every_plot) {
    temp_dir d;
    const auto ts = synthetic_pass();
    const auto r = write_pass_report(d.path / "out", ts, "qlink pass <test> & report");
    ASSERT_TRUE(r.ok) << r.error;
    ASSERT_TRUE(fs::exists(r.html));

    // expat (through python3) parses the whole page as XML: any unescaped character, unclosed tag or
    // bad attribute fails here. It prints, per plot id, the number of polylines, rotation markers and
    // link-down rectangles it holds.
    const std::string py =
        "import sys, xml.etree.ElementTree as ET\n"
        "t = ET.parse(sys.argv[1])\n"
        "S = '{http://www.w3.org/2000/svg}'\n"
        "for svg in t.iter(S + 'svg'):\n"
        "    n = lambda tag, cls: sum(1 for e in svg.iter(S + tag) if e.get('class') == cls)\n"
        "    print(svg.get('id'), n('polyline', 'series'), n('line', 'rotation'), n('rect', 'link-down'))\n";
    const fs::path script = d.path / "check.py";
    std::ofstream(script) << py;
    std::string out;
    ASSERT_EQ(run_cmd("python3 " + script.string() + " " + r.html.string() + " 2>&1", out), 0) << out;

    std::istringstream lines(out);
    std::string id;
    int polylines = 0, rotations = 0, downs = 0;
    std::vector<std::string> seen;
    while (lines >> id >> polylines >> rotations >> downs) {
        seen.push_back(id);
        EXPECT_GT(polylines, 0) << id;
        // Every panel carries every rotation and both link-down intervals.
        EXPECT_GT(rotations, 0) << id;
        EXPECT_EQ(rotations % 5, 0) << id;
        EXPECT_EQ(downs, rotations / 5 * 2) << id;
    }
    std::vector<std::string> want;
    for (auto p : report_plot_ids()) want.push_back("plot-" + std::string(p));
    EXPECT_EQ(seen, want) << out;

    const std::string html = slurp(r.html);
    EXPECT_NE(html.find("odd &lt;chars&gt; &amp; &quot;quotes&quot;"), std::string::npos);
    EXPECT_EQ(html.find("<script"), std::string::npos);  // self-contained and inert
    EXPECT_EQ(html.find("http://", html.find("<body")), html.find("http://www.w3.org/2000/svg", html.find("<body")));
    EXPECT_NE(html.find("(deg)"), std::string::npos);
    EXPECT_NE(html.find("(dBm)"), std::string::npos);
    EXPECT_NE(html.find("(bit/s)"), std::string::npos);
    EXPECT_NE(html.find("QBER (%)"), std::string::npos);
}

TEST(pass_report, csv_and_json_match_the_series) {
    temp_dir d;
    const auto ts = synthetic_pass();
    const auto r = write_pass_report(d.path, ts, "t");
    ASSERT_TRUE(r.ok) << r.error;

    const std::string csv = slurp(r.csv);
    std::istringstream cs(csv);
    std::string header, line;
    std::getline(cs, header);
    EXPECT_EQ(header.rfind("sim_time_s,wall_time_s,elevation_deg,", 0), 0u) << header;
    std::size_t rows = 0;
    while (std::getline(cs, line)) ++rows;
    EXPECT_EQ(rows, ts.samples.size());

    // python3's json module reads it back: sample count, a value, null for NaN, rotations, summary.
    const std::string py =
        "import sys, json\n"
        "j = json.load(open(sys.argv[1]))\n"
        "s = j['samples']\n"
        "print(len(s), s[50]['elevation_deg'], s[0]['qber'] is None, s[50]['qber'], len(j['rotations']),\n"
        "      j['rotations'][0]['sim_time_s'], s[50]['link_state'], j['summary']['key rotations'], len(j['columns']))\n";
    const fs::path script = d.path / "check.py";
    std::ofstream(script) << py;
    std::string out;
    ASSERT_EQ(run_cmd("python3 " + script.string() + " " + r.json.string() + " 2>&1", out), 0) << out;
    std::istringstream o(out);
    std::size_t n = 0, nrot = 0, ncols = 0;
    double elev = 0, qber = 0, rot0 = 0;
    std::string qnull, state, rot_summary;
    o >> n >> elev >> qnull >> qber >> nrot >> rot0 >> state >> rot_summary >> ncols;
    EXPECT_EQ(n, ts.samples.size()) << out;
    EXPECT_NEAR(elev, ts.samples[50].elevation_deg, 1e-6);
    EXPECT_EQ(qnull, "True");
    EXPECT_NEAR(qber, 0.03, 1e-12);
    EXPECT_EQ(nrot, 5u);
    EXPECT_DOUBLE_EQ(rot0, 100.0);
    EXPECT_EQ(state, "up");
    EXPECT_EQ(rot_summary, "5");
    EXPECT_EQ(ncols, timeseries_columns().size());
}

TEST(pass_report, empty_and_unknown_series_still_render) {
    temp_dir d;
    pass_timeseries ts;  // nothing recorded (every daemon failed to start)
    auto r = write_pass_report(d.path, ts, "empty");
    ASSERT_TRUE(r.ok) << r.error;
    std::string out;
    EXPECT_EQ(run_cmd("python3 -c 'import sys,xml.etree.ElementTree as E; E.parse(sys.argv[1])' " + r.html.string() +
                          " 2>&1",
                      out),
              0)
        << out;
    // One sample, all NaN; a counter that goes backwards.
    ts.samples.resize(3);
    ts.samples[1].sim_time_s = 1;
    ts.samples[2].sim_time_s = 2;
    ts.samples[1].arq_retransmissions = 10;
    ts.samples[2].arq_retransmissions = 0;
    const std::string html = render_report_html(ts, "T");
    EXPECT_EQ(html.find("nan"), std::string::npos);  // no NaN/inf coordinates leak into the SVG
    EXPECT_EQ(html.find("inf"), std::string::npos);
    EXPECT_NE(html.find("no data reported"), std::string::npos);
}

TEST(pass_report, unwritable_directory_is_an_error_not_a_crash) {
    temp_dir d;
    std::ofstream(d.path / "file") << "x";
    const auto r = write_pass_report(d.path / "file" / "sub", pass_timeseries{}, "t");
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("file"), std::string::npos) << r.error;
}

// The page in a real browser: scripts/check-report (headless Chromium) sees no console error,
// every plot in the DOM and a non-blank screenshot.
TEST(pass_report, renders_in_headless_chromium) {
    const char* src = std::getenv("QLINK_SOURCE_DIR");
    ASSERT_NE(src, nullptr) << "QLINK_SOURCE_DIR not set (ctest sets it)";
    temp_dir d;
    const auto r = write_pass_report(d.path, synthetic_pass(), "qlink pass report (synthetic)");
    ASSERT_TRUE(r.ok) << r.error;
    std::string out;
    const int rc = run_cmd(std::string(src) + "/scripts/check-report " + r.html.string() + " 2>&1", out);
    if (rc == 77) GTEST_SKIP() << out;
    EXPECT_EQ(rc, 0) << out;
    EXPECT_NE(out.find("7 plots in the DOM"), std::string::npos) << out;

    // The check can fail: a page whose script throws is refused.
    std::ofstream(d.path / "bad.html") << "<!DOCTYPE html><html><body><p>x</p><script>undefined_fn();</script></body></html>";
    out.clear();
    EXPECT_EQ(run_cmd(std::string(src) + "/scripts/check-report --plots 0 " + (d.path / "bad.html").string() + " 2>&1", out), 1)
        << out;
}

}  // namespace
}  // namespace qlink::terminal
