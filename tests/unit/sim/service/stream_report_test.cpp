// Tests the soft-bit stream port (header, framing, BER vs theory) and the CSV/JSON/SVG writers.
#include "support/loopback.hpp"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "qlink/sim/pass_report.hpp"
#include "qlink/sim/report_text.hpp"
#include "qlink/sim/stream_server.hpp"

namespace {

using namespace qlink::sim;

int connect_to(std::uint16_t port) { return qlink::test::connect_loopback(port); }

bool read_exact(int fd, std::uint8_t* p, std::size_t n) {
    while (n > 0) {
        const auto k = recv(fd, p, n, 0);
        if (k <= 0) return false;
        p += k;
        n -= static_cast<std::size_t>(k);
    }
    return true;
}

std::uint32_t u32(const std::uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | static_cast<std::uint32_t>(p[3]) << 24; }

// Reads the header and `blocks` blocks; returns hard-decision errors against the seed's bits.
std::size_t stream_errors(std::uint16_t port, std::uint64_t seed, int blocks, std::size_t& bits, std::size_t& erasures) {
    const int fd = connect_to(port);
    EXPECT_GE(fd, 0);
    std::uint8_t h[stream_header_size];
    EXPECT_TRUE(read_exact(fd, h, sizeof h));
    EXPECT_EQ(std::memcmp(h, "QLSB", 4), 0);
    EXPECT_EQ(h[4] | h[5] << 8, 1);
    EXPECT_EQ(h[6] | h[7] << 8, 1);
    const std::uint32_t n = u32(h + 8);
    std::uint64_t s = 0;
    for (int i = 7; i >= 0; --i) s = s << 8 | h[16 + i];
    EXPECT_EQ(s, seed);
    stream_bit_source ref(seed);
    std::size_t errors = 0;
    std::vector<std::uint8_t> buf(n);
    for (int b = 0; b < blocks; ++b) {
        std::uint8_t bh[8];
        EXPECT_TRUE(read_exact(fd, bh, 8));
        EXPECT_EQ(u32(bh), static_cast<std::uint32_t>(b));
        EXPECT_EQ(u32(bh + 4), n);
        EXPECT_TRUE(read_exact(fd, buf.data(), n));
        for (std::uint32_t i = 0; i < n; ++i) {
            const auto llr = static_cast<std::int8_t>(buf[i]);
            EXPECT_NE(llr, -128);
            erasures += llr == 0;
            errors += static_cast<std::uint8_t>(llr < 0) != ref.next();
            ++bits;
        }
    }
    close(fd);
    return errors;
}

TEST(stream, header_framing_and_ber_match_bpsk_theory) {
    softbit_stream_server::config cfg;
    cfg.port = 0;
    cfg.esn0_db = 4.0;
    cfg.seed = 77;
    cfg.bits_per_second = 0.0;
    cfg.block_llrs = 8192;
    auto srv = start_softbit_stream_server(cfg);
    // A client that connects and leaves at once must not stop the service.
    const int quitter = connect_to(srv->port());
    close(quitter);
    std::size_t bits = 0, erasures = 0;
    const std::size_t errors = stream_errors(srv->port(), 77, 6, bits, erasures);
    // Pb = Q(sqrt(2 Es/N0)) = 0.5 erfc(sqrt(Es/N0)); 49152 bits -> ~610 errors, 5 sigma ~ 20 %.
    const double pb = 0.5 * std::erfc(std::sqrt(std::pow(10.0, 0.4)));
    const double ber = static_cast<double>(errors) / static_cast<double>(bits);
    EXPECT_NEAR(ber, pb, 0.2 * pb) << errors << " errors in " << bits;
    EXPECT_LT(erasures, bits / 50);
    srv->stop();

    cfg.esn0_db = 20.0;
    auto clean = start_softbit_stream_server(cfg);
    bits = 0;
    EXPECT_EQ(stream_errors(clean->port(), 77, 2, bits, erasures), 0u);
    clean->stop();
}

TEST(stream, follows_the_es_n0_source_and_no_signal_is_noise) {
    softbit_stream_server::config cfg;
    cfg.port = 0;
    cfg.seed = 9;
    cfg.bits_per_second = 0.0;
    cfg.esn0_now_db = [] { return 30.0; };
    auto strong = start_softbit_stream_server(cfg);
    std::size_t bits = 0, erasures = 0;
    EXPECT_EQ(stream_errors(strong->port(), 9, 2, bits, erasures), 0u);
    strong->stop();
    cfg.esn0_now_db = [] { return -std::numeric_limits<double>::infinity(); };
    auto none = start_softbit_stream_server(cfg);
    bits = 0;
    const double ber = static_cast<double>(stream_errors(none->port(), 9, 4, bits, erasures)) / static_cast<double>(bits);
    EXPECT_NEAR(ber, 0.5, 0.02);  // 16384 bits: sigma of the estimate 0.004
    none->stop();
}

TEST(stream, pointed_es_n0_budget) {
    EXPECT_DOUBLE_EQ(pointed_esn0_db(10.0, 1000.0, 30.0, 0.0, 1.0), 10.0);
    EXPECT_NEAR(pointed_esn0_db(10.0, 2000.0, 30.0, 0.0, 1.0), 10.0 - 6.0206, 1e-4);
    EXPECT_NEAR(pointed_esn0_db(10.0, 1000.0, 30.0, 0.5, 1.0), 7.0, 1e-12);  // half the beamwidth off: -3 dB
    EXPECT_TRUE(std::isinf(pointed_esn0_db(10.0, 1000.0, -1.0, 0.0, 1.0)));
    EXPECT_TRUE(std::isinf(pointed_esn0_db(10.0, 1000.0, 10.0, 0.0, 0.0)));
}

TEST(clock, scaled_clock_starts_at_start_and_rejects_bad_scale) {
    const auto t0 = *parse_iso8601_utc("2026-11-28T21:56:00Z");
    const scaled_clock frozen(t0, 0.0);
    EXPECT_EQ(frozen.now(), t0);
    EXPECT_EQ(frozen.now(), t0);
    const scaled_clock running(t0, 10.0);
    EXPECT_GE(running.now(), t0);
    EXPECT_THROW(scaled_clock(t0, -1.0), std::invalid_argument);
    EXPECT_THROW(scaled_clock(t0, 5000.0), std::invalid_argument);
}

TEST(stream, rejects_bad_configuration) {
    softbit_stream_server::config cfg;
    cfg.esn0_db = 99.0;
    EXPECT_NE(softbit_stream_server::validate(cfg).find("[-10, 40]"), std::string::npos);
    cfg = {};
    cfg.bits_per_second = -5.0;
    EXPECT_NE(softbit_stream_server::validate(cfg).find("bit rate"), std::string::npos);
    EXPECT_THROW(start_softbit_stream_server(cfg), std::invalid_argument);
}

report_table small_table() {
    report_table t;
    t.columns = {"elevation_deg", "qber"};
    const auto t0 = *parse_iso8601_utc("2026-11-28T12:00:00Z");
    for (int i = 0; i < 3; ++i) {
        t.times.push_back(t0 + std::chrono::seconds{i});
        t.rows.push_back({10.0 * i, i == 1 ? std::nan("") : 0.01 * i});
    }
    return t;
}

TEST(report, csv_and_json_forms) {
    const auto t = small_table();
    std::ostringstream csv;
    write_csv(csv, t);
    EXPECT_EQ(csv.str(),
              "time_utc,elevation_deg,qber\n2026-11-28T12:00:00.000Z,0,0\n2026-11-28T12:00:01.000Z,10,\n"
              "2026-11-28T12:00:02.000Z,20,0.02\n");
    std::ostringstream js;
    write_json(js, t, {{"satellite", "SAT \"A\""}, {"max_elevation_deg", "20.5"}});
    const std::string j = js.str();
    EXPECT_NE(j.find("\"satellite\": \"SAT \\\"A\\\"\""), std::string::npos) << j;
    EXPECT_NE(j.find("\"max_elevation_deg\": 20.5"), std::string::npos);
    EXPECT_NE(j.find("\"qber\": null"), std::string::npos);
    EXPECT_NE(j.find("{\"time_utc\": \"2026-11-28T12:00:02.000Z\", \"elevation_deg\": 20, \"qber\": 0.02}"),
              std::string::npos);
    EXPECT_EQ(t.series("qber").size(), 3u);
    EXPECT_TRUE(t.series("nope").empty());
}

TEST(report, svg_has_one_panel_per_series_and_breaks_at_nan) {
    const auto t = small_table();
    const std::string svg = render_svg_plot("pass <1>", {0, 1, 2}, "time since AOS (s)",
                                            {{"elevation (deg)", t.series("elevation_deg")}, {"QBER", t.series("qber")}});
    EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
    EXPECT_NE(svg.find("</svg>"), std::string::npos);
    EXPECT_NE(svg.find("pass &lt;1&gt;"), std::string::npos);
    std::size_t polylines = 0;
    for (auto p = svg.find("<polyline"); p != std::string::npos; p = svg.find("<polyline", p + 1)) ++polylines;
    EXPECT_EQ(polylines, 3u);  // elevation: one line; QBER: split by the NaN into two
    // Degenerate input still yields a valid document.
    const std::string empty = render_svg_plot("", {}, "", {{"none", {}}});
    EXPECT_NE(empty.find("</svg>"), std::string::npos);
}

}  // namespace

// The escaping both pass reports share (qlink/sim/report_text.hpp): names in a report come from files.
TEST(report_text, escapes_json_xml_and_csv_control_characters_included) {
    using namespace qlink::sim::report_text;
    EXPECT_EQ(json_string("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
    EXPECT_EQ(xml_escape("<a & \"b\">\x01\x1f"), "&lt;a &amp; &quot;b&quot;&gt;  ");
    EXPECT_EQ(xml_escape("tab\tand\nline"), "tab\tand\nline");
    EXPECT_EQ(csv_field("plain"), "plain");
    EXPECT_EQ(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    EXPECT_DOUBLE_EQ(nice_step(100.0, 5), 20.0);
    EXPECT_DOUBLE_EQ(nice_step(0.7, 8), 0.1);
    EXPECT_DOUBLE_EQ(nice_step(0.0, 5), 1.0);
}

TEST(report, svg_plot_title_and_labels_are_escaped_control_characters_included) {
    qlink::sim::svg_panel p;
    p.label = "snr <dB>\x02";
    p.y = {1.0, 2.0, 3.0};
    const std::string svg = qlink::sim::render_svg_plot("pass \x01<QLINK&1>", {0.0, 1.0, 2.0}, "t [s]", {p});
    EXPECT_NE(svg.find("pass  &lt;QLINK&amp;1&gt;"), std::string::npos);
    EXPECT_NE(svg.find("snr &lt;dB&gt; "), std::string::npos);
    EXPECT_EQ(svg.find('\x01'), std::string::npos);
    EXPECT_EQ(svg.find('\x02'), std::string::npos);
}
