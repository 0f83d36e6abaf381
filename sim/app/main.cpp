// qlink-sim: command-line front end of the simulator (pass reports, rotctld and soft-bit services).
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numbers>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "qlink/sim/air_relay.hpp"
#include "qlink/sim/fading.hpp"
#include "qlink/sim/optical_link.hpp"
#include "qlink/sim/pass_report.hpp"
#include "qlink/sim/control_server.hpp"
#include "qlink/sim/pass_world.hpp"
#include "qlink/sim/qkd_server.hpp"
#include "qlink/sim/rotctld_server.hpp"
#include "qlink/sim/stream_server.hpp"
#include "qlink/sim/turbulence.hpp"
#if QLINK_SIM_HAS_QKD
#include "qlink/sim/qkd_channel.hpp"
#endif

namespace {

using namespace qlink::sim;

constexpr int exit_usage = 2;
constexpr int exit_failure = 1;

const char* usage_text =
    "usage:\n"
    "  qlink-sim pass  --tle FILE --station LAT,LON,ALT [--start ISO8601-UTC] [--seed N] [--out DIR]\n"
    "                  [--mask DEG] [--step S] [--carrier-hz F]\n"
    "  qlink-sim serve [--rotctld-port N] [--stream-port N] [--bind ADDR] [--slew-rate DEG_S]\n"
    "                  [--esn0-db X] [--bit-rate BPS] [--seed N] [--duration S]\n"
    "                  [--tle FILE --station LAT,LON,ALT [--beamwidth-deg W]] [--start ISO8601-UTC]\n"
    "                  [--time-scale X]\n"
    "  qlink-sim serve --pass --tle FILE [--station LAT,LON,ALT] [--start ISO8601-UTC] [--speed X]\n"
    "                  [--air-port N] [--qkd-port N] [--rotctld-port N] [--downlink-bps R] [--return-bps R]\n"
    "                  [--seed S] [--start-when N] [--qkd-block-s S] [--pulse-rate-hz F] [--min-elevation DEG]\n"
    "                  [--control-port N] [--cloud AT:DUR[,AT:DUR...]] [--bind ADDR] [--exit-after-pass]\n"
    "      the satellite pass for the daemons: air relay (QAIR1) and QKD (QKD1) ports; prints one\n"
    "      'air-port N' / 'qkd-port N' / 'rotctld-port N' / 'control-port N' line each, then 'ready'.\n"
    "      --cloud: scripted clouds blocking the optical links, sim seconds from the pass start;\n"
    "      the control port takes 'cloud DUR' (from now), 'cloud AT DUR' and 'time' at run time\n"
    "See docs/simulator.md.\n";

struct usage_error {
    std::string message;
};

using options = std::map<std::string, std::string>;

options parse_options(int argc, char** argv, int first, const std::set<std::string>& allowed) {
    options o;
    for (int i = first; i < argc; ++i) {
        const std::string k = argv[i];
        if (!allowed.count(k)) {
            std::string list;
            for (const auto& a : allowed) list += " " + a;
            throw usage_error{"unknown option '" + k + "' (allowed:" + list + ")"};
        }
        if (i + 1 >= argc) throw usage_error{"option " + k + " needs a value"};
        if (o.count(k)) throw usage_error{"option " + k + " given twice"};
        o[k] = argv[++i];
    }
    return o;
}

double get_double(const options& o, const std::string& k, double def, double lo, double hi) {
    const auto it = o.find(k);
    if (it == o.end()) return def;
    double v = 0;
    const auto& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(v))
        throw usage_error{k + ": '" + s + "' is not a number"};
    if (v < lo || v > hi) {
        std::ostringstream m;
        m << k << ": " << s << " outside the allowed range [" << lo << ", " << hi << "]";
        throw usage_error{m.str()};
    }
    return v;
}

std::uint64_t get_uint(const options& o, const std::string& k, std::uint64_t def, std::uint64_t hi) {
    const auto it = o.find(k);
    if (it == o.end()) return def;
    std::uint64_t v = 0;
    const auto& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size())
        throw usage_error{k + ": '" + s + "' is not a non-negative integer"};
    if (v > hi) throw usage_error{k + ": " + s + " outside the allowed range [0, " + std::to_string(hi) + "]"};
    return v;
}

// A progress bar on stderr, shown only once a run has taken more than a second.
class progress_bar {
public:
    void update(double fraction) {
        const auto now = std::chrono::steady_clock::now();
        if (now - start_ < std::chrono::seconds{1}) return;
        if (shown_ && now - last_ < std::chrono::milliseconds{100} && fraction < 1.0) return;
        last_ = now;
        shown_ = true;
        const int w = 40, filled = static_cast<int>(std::clamp(fraction, 0.0, 1.0) * w);
        std::fprintf(stderr, "\r[%s%s] %3d%%", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                     std::string(static_cast<std::size_t>(w - filled), ' ').c_str(), static_cast<int>(fraction * 100));
        std::fflush(stderr);
    }
    ~progress_bar() {
        if (shown_) std::fputc('\n', stderr);
    }

private:
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
    bool shown_ = false;
};

std::string read_small_file(const std::string& path, const std::string& what) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    if (ec) throw usage_error{what + " '" + path + "': " + ec.message()};
    if (size > (1u << 20)) throw usage_error{what + " '" + path + "': " + std::to_string(size) + " bytes, more than the 1 MiB a TLE file may have"};
    std::ifstream in(path, std::ios::binary);
    if (!in) throw usage_error{what + " '" + path + "': cannot be opened"};
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Channel columns from the optical and QKD models, per row of the geometry table.
void add_channel_columns(report_table& t, double site_alt_m, std::uint64_t seed) {
    optical_link::config lc;  // downlink, 1550 nm, the channel models' defaults
    const optical_link link(lc);
    turbulence_model::config tc;
    tc.site_altitude_m = std::clamp(site_alt_m, 0.0, 8000.0);
    tc.satellite_altitude_m = 500e3;
    const turbulence_model turb(tc);
#if QLINK_SIM_HAS_QKD
    const qkd_channel qkd(qkd_channel::config{});
#endif
    std::vector<std::string> extra = {"link_loss_db", "rx_power_dbm", "rx_power_faded_dbm", "scintillation_index",
                                      "fried_r0_m", "coherence_time_ms"};
#if QLINK_SIM_HAS_QKD
    extra.insert(extra.end(), {"qkd_channel_transmittance", "qkd_gain", "qkd_qber"});
#endif
    const std::size_t el_c = t.column("elevation_deg"), rng_c = t.column("range_km"), pa_c = t.column("point_ahead_urad");
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        auto& row = t.rows[i];
        std::vector<double> v(extra.size(), nan);
        const double el = row[el_c], rng = row[rng_c];
        // The sec(zenith) turbulence and air-mass models need the satellite a little above the horizon.
        if (std::isfinite(el) && el >= 1.0) {
            try {
                const link_geometry geo{el * std::numbers::pi / 180.0, rng * 1e3, tc.site_altitude_m};
                const link_budget b = link.budget(geo);
                turbulence_model::query q;
                q.wavelength_m = lc.wavelength_m;
                q.elevation_rad = geo.elevation_rad;
                q.rx_aperture_diameter_m = lc.rx_aperture_diameter_m;
                // Line-of-sight angular rate = v_perp / range, v_perp from the point-ahead angle.
                q.slew_rate_rad_s = row[pa_c] * 1e-6 * speed_of_light_m_s / 2.0 / (rng * 1e3);
                const turbulence_state ts = turb.evaluate(q);
                fading_process::config fc;
                fc.scintillation_index = std::clamp(ts.scintillation, 1e-6, 20.0);
                fc.sample_rate_hz = 10e3;
                fc.coherence_time_s = std::max(ts.intensity_coherence_time_s, 2.0 / fc.sample_rate_hz);
                fc.seed = seed + i;
                auto fading = create_fading_process(fc);
                float g = 1.0f;
                fading->generate(std::span<float>(&g, 1));
                v[0] = b.tx_power_dbm - b.rx_power_dbm;
                v[1] = b.rx_power_dbm;
                v[2] = b.rx_power_dbm + 10.0 * std::log10(std::max(static_cast<double>(g), 1e-30));
                v[3] = ts.scintillation;
                v[4] = ts.r0_m;
                v[5] = ts.intensity_coherence_time_s * 1e3;
#if QLINK_SIM_HAS_QKD
                const double eta = b.rx_power_w / lc.tx_power_w;
                const auto e = qkd.expected(eta, intensity_class::signal);
                v[6] = eta;
                v[7] = e.gain;
                v[8] = e.qber;
#endif
            } catch (const std::exception&) {
                // Outside a model's validity: leave this row's channel values empty.
            }
        }
        row.insert(row.end(), v.begin(), v.end());
    }
    t.columns.insert(t.columns.end(), extra.begin(), extra.end());
}

int cmd_pass(int argc, char** argv) {
    const auto o = parse_options(argc, argv, 2,
                                 {"--tle", "--station", "--start", "--seed", "--out", "--mask", "--step", "--carrier-hz"});
    if (!o.count("--tle")) throw usage_error{"pass: --tle FILE is required"};
    if (!o.count("--station")) throw usage_error{"pass: --station LAT,LON,ALT is required"};

    const auto text = read_small_file(o.at("--tle"), "--tle");
    const auto parsed = parse_tle_text(text);
    if (!parsed.ok()) throw usage_error{"--tle '" + o.at("--tle") + "': " + parsed.error};
    const tle& el = parsed.sets.front();
    std::string err;
    const auto st_cfg = parse_station(o.at("--station"), err);
    if (!st_cfg) throw usage_error{"--station: " + err};
    const ground_station station(*st_cfg);

    time_point start = real_clock{}.now();
    if (o.count("--start")) {
        const auto t = parse_iso8601_utc(o.at("--start"), &err);
        if (!t) throw usage_error{"--start: " + err};
        start = *t;
    }
    const std::uint64_t seed = get_uint(o, "--seed", 1, ~0ull);
    pass_search_config pc;
    pc.elevation_mask_deg = get_double(o, "--mask", 0.0, -5.0, 89.0);
    pass_table_config tc;
    tc.step = seconds_d(get_double(o, "--step", 1.0, 0.001, 60.0));
    tc.carrier_hz = get_double(o, "--carrier-hz", 8.4e9, 1e3, 1e15);
    const std::string out_dir = o.count("--out") ? o.at("--out") : ".";

    const double age_days = std::chrono::duration<double>(start - el.epoch()).count() / 86400.0;
    if (std::fabs(age_days) > 7.0)
        std::fprintf(stderr,
                     "warning: the TLE epoch (%s) is %.1f days %s the start time; SGP4 errors grow by roughly "
                     "1-3 km per day away from epoch, use a fresh element set\n",
                     format_iso8601_utc(el.epoch()).c_str(), std::fabs(age_days), age_days > 0 ? "before" : "after");

    const auto sat = create_sgp4_propagator(el);
    const auto found = find_next_pass(*sat, station, start, pc);
    if (!found.error.empty()) {
        std::fprintf(stderr, "qlink-sim: %s\n", found.error.c_str());
        return exit_failure;
    }
    if (!found.pass) {
        std::fprintf(stderr, "qlink-sim: no pass above %.1f deg within 7 days after %s\n", pc.elevation_mask_deg,
                     format_iso8601_utc(start).c_str());
        return exit_failure;
    }
    const pass_info& p = *found.pass;
    const std::string name = el.name.empty() ? std::to_string(el.catalog_number) : el.name;
    std::printf("satellite  %s (catalog %d, epoch %s)\n", name.c_str(), el.catalog_number,
                format_iso8601_utc(el.epoch()).c_str());
    std::printf("station    %.5f, %.5f, %.1f m\n", st_cfg->latitude_deg, st_cfg->longitude_deg, st_cfg->altitude_m);
    std::printf("AOS        %s  azimuth %6.1f deg\n", format_iso8601_utc(p.aos).c_str(), p.aos_azimuth_deg);
    std::printf("max elev.  %s  %6.2f deg\n", format_iso8601_utc(p.max_elevation_time).c_str(), p.max_elevation_deg);
    std::printf("LOS        %s  azimuth %6.1f deg\n", format_iso8601_utc(p.los).c_str(), p.los_azimuth_deg);
    std::printf("duration   %.1f s\n", std::chrono::duration<double>(p.los - p.aos).count());

    report_table table;
    {
        progress_bar bar;
        table = pass_geometry_table(*sat, station, p, tc, [&](double f) { bar.update(0.9 * f); });
        add_channel_columns(table, st_cfg->altitude_m, seed);
        bar.update(1.0);
    }

    std::error_code ec;
    std::filesystem::create_directories(out_dir, ec);
    if (ec) throw usage_error{"--out '" + out_dir + "': " + ec.message()};
    const std::filesystem::path dir(out_dir);
    auto open = [&](const char* file) {
        std::ofstream f(dir / file);
        if (!f) throw usage_error{"--out: cannot write '" + (dir / file).string() + "'"};
        return f;
    };
    {
        auto f = open("pass.csv");
        write_csv(f, table);
    }
    {
        auto f = open("pass.json");
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", p.max_elevation_deg);
        write_json(f, table,
                   {{"satellite", name}, {"catalog_number", std::to_string(el.catalog_number)},
                    {"tle_epoch_utc", format_iso8601_utc(el.epoch())}, {"station", o.at("--station")},
                    {"aos_utc", format_iso8601_utc(p.aos)}, {"los_utc", format_iso8601_utc(p.los)},
                    {"max_elevation_utc", format_iso8601_utc(p.max_elevation_time)}, {"max_elevation_deg", buf},
                    {"elevation_mask_deg", std::to_string(pc.elevation_mask_deg)}, {"seed", std::to_string(seed)},
                    {"carrier_hz", std::to_string(tc.carrier_hz)}});
    }
    {
        std::vector<double> x;
        for (const auto& t : table.times) x.push_back(std::chrono::duration<double>(t - p.aos).count());
        std::vector<svg_panel> panels;
        const auto pw = table.series("rx_power_dbm");
        const bool have_power = std::any_of(pw.begin(), pw.end(), [](double v) { return std::isfinite(v); });
        if (have_power) {
            panels.push_back({"received power (dBm)", table.series("rx_power_faded_dbm"), "#9ecae1"});
            panels.push_back({"mean received power (dBm)", pw, "#1f77b4"});
        }
        if (table.column("qkd_qber") < table.columns.size()) {
            auto q = table.series("qkd_qber");
            for (auto& v : q) v *= 100.0;
            panels.push_back({"QKD QBER (%)", q, "#d62728"});
        }
        panels.push_back({"elevation (deg)", table.series("elevation_deg"), "#2ca02c"});
        panels.push_back({"range (km)", table.series("range_km"), "#9467bd"});
        auto f = open("pass.svg");
        f << render_svg_plot(name + " pass, AOS " + format_iso8601_utc(p.aos), x, "time since AOS (s)", panels);
    }
    std::printf("wrote      %s/pass.csv, pass.json, pass.svg (%zu samples)\n", out_dir.c_str(), table.rows.size());
    return 0;
}

// Sim time of the pass as a clock (for the simulated mount behind the rotctld port).
class pass_time_clock final : public qlink::sim::clock {
public:
    pass_time_clock(time_point start, const pass_clock& c) : start_(start), clock_(c) {}
    time_point now() const override { return start_ + seconds_d(clock_.sim_time()); }

private:
    time_point start_;
    const pass_clock& clock_;
};

int cmd_serve_pass(int argc, char** argv) {
    // --exit-after-pass is the only flag without a value.
    std::vector<char*> args(argv, argv + argc);
    bool exit_after_pass = false;
    for (auto it = args.begin() + 3; it != args.end();) {
        if (std::string(*it) == "--exit-after-pass") {
            exit_after_pass = true;
            it = args.erase(it);
        } else {
            ++it;
        }
    }
    const auto o = parse_options(static_cast<int>(args.size()), args.data(), 3,
                                 {"--tle", "--station", "--start", "--speed", "--air-port", "--qkd-port", "--rotctld-port",
                                  "--downlink-bps", "--return-bps", "--seed", "--start-when", "--qkd-block-s",
                                  "--pulse-rate-hz", "--min-elevation", "--bind", "--control-port", "--cloud"});
    if (!o.count("--tle")) throw usage_error{"serve --pass: --tle FILE is required (e.g. sim/data/qlinksat-1.tle)"};
    const auto parsed = parse_tle_text(read_small_file(o.at("--tle"), "--tle"));
    if (!parsed.ok()) throw usage_error{"--tle '" + o.at("--tle") + "': " + parsed.error};
    pass_world::config wc;
    std::string err;
    if (o.count("--station")) {
        const auto st = parse_station(o.at("--station"), err);
        if (!st) throw usage_error{"--station: " + err};
        wc.station = *st;
    }
    if (o.count("--start")) {
        const auto t = parse_iso8601_utc(o.at("--start"), &err);
        if (!t) throw usage_error{"--start: " + err};
        wc.start = *t;
    }
    wc.min_pass_elevation_deg = get_double(o, "--min-elevation", 30.0, 0.0, 89.0);
    const std::uint64_t seed = get_uint(o, "--seed", 1, ~0ull);
    wc.seed = seed;
    const double speed = get_double(o, "--speed", 10.0, 0.001, 10000.0);
    const auto start_when = static_cast<unsigned>(get_uint(o, "--start-when", 1, 64));
    if (start_when == 0) throw usage_error{"--start-when: must be >= 1"};
    const std::string bind = o.count("--bind") ? o.at("--bind") : "127.0.0.1";
    air_relay::config ac;
    ac.bind_address = bind;
    ac.port = static_cast<std::uint16_t>(get_uint(o, "--air-port", 0, 65535));
    ac.downlink_bps = get_double(o, "--downlink-bps", 100e3, 1.0, 1e9);
    ac.return_bps = get_double(o, "--return-bps", 10e3, 1.0, 1e9);
    ac.seed = seed;
    qkd_server::config qc;
    qc.bind_address = bind;
    qc.port = static_cast<std::uint16_t>(get_uint(o, "--qkd-port", 0, 65535));
    qc.block_s = get_double(o, "--qkd-block-s", 1.0, 0.01, 60.0);
    qc.channel.pulse_rate_hz = get_double(o, "--pulse-rate-hz", 100e6, 1.0, 1e10);
    qc.seed = seed;
    const bool want_rotctld = o.count("--rotctld-port") > 0;
    rotctld_server::config rc;
    rc.bind_address = bind;
    rc.port = static_cast<std::uint16_t>(get_uint(o, "--rotctld-port", 0, 65535));

    const bool want_control = o.count("--control-port") > 0;
    control_server::config cc;
    cc.bind_address = bind;
    cc.port = static_cast<std::uint16_t>(get_uint(o, "--control-port", 0, 65535));

    std::unique_ptr<pass_world> world;
    try {
        world = std::make_unique<pass_world>(parsed.sets.front(), wc);
    } catch (const std::invalid_argument& e) {
        throw usage_error{e.what()};
    } catch (const std::runtime_error& e) {
        std::fprintf(stderr, "qlink-sim serve: %s\n", e.what());
        return exit_failure;
    }
    if (o.count("--cloud")) {
        // AT:DUR[,AT:DUR...], sim seconds from the pass start.
        std::istringstream list(o.at("--cloud"));
        for (std::string item; std::getline(list, item, ',');) {
            const auto colon = item.find(':');
            char* end_at = nullptr;
            char* end_dur = nullptr;
            const double at = colon == std::string::npos ? NAN : std::strtod(item.c_str(), &end_at);
            const double dur = colon == std::string::npos ? NAN : std::strtod(item.c_str() + colon + 1, &end_dur);
            if (colon == std::string::npos || end_at != item.c_str() + colon || *end_dur != '\0' || !(at >= 0) ||
                !world->add_cloud(at, dur))
                throw usage_error{"--cloud: '" + item + "' is not AT:DUR (sim seconds, AT >= 0, 0 < DUR <= 3600, at most " +
                                  std::to_string(pass_world::max_scripted_clouds) + " clouds)"};
        }
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    pass_clock clk(world->duration_s(), speed, start_when);
    const pass_time_clock mount_clock(world->start(), clk);
    sim_mount mount(sim_mount::config{}, mount_clock);
    std::unique_ptr<air_relay> air;
    std::unique_ptr<qkd_server> qkd;
    std::unique_ptr<rotctld_server> rot;
    std::unique_ptr<control_server> control;
    try {
        air = start_air_relay(ac, *world, clk);
        qkd = start_qkd_server(qc, *world, clk);
        if (want_rotctld) rot = start_rotctld_server(rc, mount);
        if (want_control) control = start_control_server(cc, *world, clk);
    } catch (const std::invalid_argument& e) {
        throw usage_error{e.what()};
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qlink-sim serve: %s\n", e.what());
        return exit_failure;
    }
    const auto& p = world->pass();
    std::printf("air-port %u\n", air->port());
    std::printf("qkd-port %u\n", qkd->port());
    if (rot) std::printf("rotctld-port %u\n", rot->port());
    if (control) std::printf("control-port %u\n", control->port());
    std::printf("pass start %s aos %s los %s max-elevation %.2f duration-s %.1f speed %g downlink-bps %g return-bps %g "
                "pulse-rate-hz %g\n",
                format_iso8601_utc(world->start()).c_str(), format_iso8601_utc(p.aos).c_str(),
                format_iso8601_utc(p.los).c_str(), p.max_elevation_deg, world->duration_s(), speed, ac.downlink_bps,
                ac.return_bps, qc.channel.pulse_rate_hz);
    std::printf("ready\n");
    std::fflush(stdout);

    std::chrono::steady_clock::time_point ended_at{};
    for (;;) {
        timespec ts{0, 50'000'000};
        const int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (exit_after_pass && clk.ended()) {
            // Give the END_OF_PASS messages a moment to leave the queues, then go.
            if (ended_at == std::chrono::steady_clock::time_point{}) ended_at = std::chrono::steady_clock::now();
            if (std::chrono::steady_clock::now() - ended_at > std::chrono::milliseconds(500)) break;
        }
    }
    if (control) control->stop();
    air->stop();
    qkd->stop();
    if (rot) rot->stop();
    const auto& a = air->stats();
    const auto& q = qkd->stats();
    std::fprintf(stderr,
                 "qlink-sim serve: stopped at sim time %.1f s; air: %llu clients, %llu rejected, %llu protocol errors, "
                 "%llu downlink bits, %llu return bits, %llu dropped; qkd: %llu clients, %llu rejected, %llu blocks, "
                 "%llu detections\n",
                 clk.sim_time(), static_cast<unsigned long long>(a.connections.load()),
                 static_cast<unsigned long long>(a.rejected.load()),
                 static_cast<unsigned long long>(a.protocol_errors.load()),
                 static_cast<unsigned long long>(a.bits_in[1].load()), static_cast<unsigned long long>(a.bits_in[0].load()),
                 static_cast<unsigned long long>(a.dropped_bits.load()),
                 static_cast<unsigned long long>(q.connections.load()), static_cast<unsigned long long>(q.rejected.load()),
                 static_cast<unsigned long long>(q.blocks.load()), static_cast<unsigned long long>(q.detections.load()));
    return 0;
}

int cmd_serve(int argc, char** argv) {
    if (argc > 2 && std::string(argv[2]) == "--pass") return cmd_serve_pass(argc, argv);
    const auto o = parse_options(argc, argv, 2,
                                 {"--rotctld-port", "--stream-port", "--bind", "--slew-rate", "--esn0-db", "--bit-rate",
                                  "--seed", "--duration", "--tle", "--station", "--beamwidth-deg", "--start",
                                  "--time-scale"});
    const std::string bind = o.count("--bind") ? o.at("--bind") : "127.0.0.1";
    rotctld_server::config rc;
    rc.bind_address = bind;
    rc.port = static_cast<std::uint16_t>(get_uint(o, "--rotctld-port", 4533, 65535));
    softbit_stream_server::config sc;
    sc.bind_address = bind;
    sc.port = static_cast<std::uint16_t>(get_uint(o, "--stream-port", 4534, 65535));
    sc.esn0_db = get_double(o, "--esn0-db", 6.0, -10.0, 40.0);
    sc.bits_per_second = get_double(o, "--bit-rate", 1e6, 0.0, 1e10);
    sc.seed = get_uint(o, "--seed", 1, ~0ull);
    sim_mount::config mc;
    mc.slew_rate_deg_s = get_double(o, "--slew-rate", 6.0, 1e-6, 360.0);
    const double duration_s = get_double(o, "--duration", 0.0, 0.0, 1e9);
    const double beamwidth = get_double(o, "--beamwidth-deg", 1.0, 1e-4, 90.0);
    const double time_scale = get_double(o, "--time-scale", 1.0, 0.0, 1000.0);
    std::string err;
    time_point start = real_clock{}.now();
    if (o.count("--start")) {
        const auto t = parse_iso8601_utc(o.at("--start"), &err);
        if (!t) throw usage_error{"--start: " + err};
        start = *t;
    }
    // Optional simulated satellite: the stream's Es/N0 follows its range and the mount's pointing.
    std::unique_ptr<sgp4_propagator> sat;
    std::unique_ptr<ground_station> station;
    if (o.count("--tle") != o.count("--station"))
        throw usage_error{"--tle and --station go together (the satellite is seen from the station)"};
    if (o.count("--tle")) {
        const auto parsed = parse_tle_text(read_small_file(o.at("--tle"), "--tle"));
        if (!parsed.ok()) throw usage_error{"--tle '" + o.at("--tle") + "': " + parsed.error};
        const auto st_cfg = parse_station(o.at("--station"), err);
        if (!st_cfg) throw usage_error{"--station: " + err};
        sat = create_sgp4_propagator(parsed.sets.front());
        station = std::make_unique<ground_station>(*st_cfg);
    }

    // Signals are taken synchronously (sigtimedwait) so the service threads never see them.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);

    const scaled_clock clk(start, time_scale);
    sim_mount mount(mc, clk);
    if (sat) {
        const double base = sc.esn0_db;
        sc.esn0_now_db = [&, base, beamwidth]() {
            const time_point now = clk.now();
            const auto s = station->observe(*sat, now);
            if (s.error != sgp4_error::none) return -std::numeric_limits<double>::infinity();
            const auto m = mount.position();
            constexpr double d2r = std::numbers::pi / 180.0;
            const double c = std::sin(m.elevation_deg * d2r) * std::sin(s.look.elevation_deg * d2r) +
                             std::cos(m.elevation_deg * d2r) * std::cos(s.look.elevation_deg * d2r) *
                                 std::cos((m.azimuth_deg - s.look.azimuth_deg) * d2r);
            const double error_deg = std::acos(std::clamp(c, -1.0, 1.0)) / d2r;
            return pointed_esn0_db(base, s.look.range_km, s.look.elevation_deg, error_deg, beamwidth);
        };
    }
    std::unique_ptr<rotctld_server> rot;
    std::unique_ptr<softbit_stream_server> stream;
    try {
        rot = start_rotctld_server(rc, mount);
        stream = start_softbit_stream_server(sc);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qlink-sim: %s\n", e.what());
        return exit_failure;
    }
    std::printf("rotctld  listening on %s:%u (Hamlib NET rotctl: rotctl -m 2 -r %s:%u)\n", bind.c_str(), rot->port(),
                bind.c_str(), rot->port());
    std::printf("stream   listening on %s:%u (int8 LLR blocks, Es/N0 %.1f dB, seed %llu)\n", bind.c_str(),
                stream->port(), sc.esn0_db, static_cast<unsigned long long>(sc.seed));
    if (sat) {
        const auto next = find_next_pass(*sat, *station, start);
        if (next.pass)
            std::printf("satellite next pass: AOS %s, max %.1f deg at %s, LOS %s (simulated time runs x%g from %s)\n",
                        format_iso8601_utc(next.pass->aos).c_str(), next.pass->max_elevation_deg,
                        format_iso8601_utc(next.pass->max_elevation_time).c_str(),
                        format_iso8601_utc(next.pass->los).c_str(), time_scale, format_iso8601_utc(start).c_str());
    }
    std::fflush(stdout);
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(duration_s);
    for (;;) {
        timespec ts{0, 200'000'000};
        const int sig = sigtimedwait(&set, nullptr, &ts);
        if (sig == SIGINT || sig == SIGTERM) break;
        if (duration_s > 0.0 && std::chrono::steady_clock::now() >= until) break;
    }
    rot->stop();
    stream->stop();
    std::printf("stopped: %llu rotctld connections, %llu commands, %llu errors\n",
                static_cast<unsigned long long>(rot->stats().connections.load()),
                static_cast<unsigned long long>(rot->stats().commands.load()),
                static_cast<unsigned long long>(rot->stats().errors.load()));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? exit_usage : 0;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "pass") return cmd_pass(argc, argv);
        if (cmd == "serve") return cmd_serve(argc, argv);
        std::fprintf(stderr, "qlink-sim: unknown command '%s' (pass | serve)\n%s", cmd.c_str(), usage_text);
        return exit_usage;
    } catch (const usage_error& e) {
        std::fprintf(stderr, "qlink-sim %s: %s\n", cmd.c_str(), e.message.c_str());
        return exit_usage;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "qlink-sim %s: %s\n", cmd.c_str(), e.what());
        return exit_usage;
    }
}
