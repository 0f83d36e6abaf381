// `qlink rf-rx` / `qlink rf-tx`: receive a coded downlink or send a coded uplink through hw::radio with Doppler from the TLE.
//
// The same station code runs on `--radio uhd` (a USRP) and on `--radio sim`, where
// terminal::rf_sim_satellite plays the satellite over the simulated RF channel of the pass.
#include "cli/rf_cli.hpp"

#include "cli/cli.hpp"
#include "cli/options.hpp"
#include "cli/stream_file.hpp"
#include "qlink/hw/mount.hpp"
#include "qlink/hw/radio.hpp"
#include "qlink/modem/coding_chain.hpp"
#include "qlink/sim/pass.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/demo.hpp"
#include "qlink/terminal/rf_sim.hpp"
#include "qlink/terminal/rf_terminal.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>

namespace qlink::terminal::cli {

namespace {

constexpr std::string_view default_rf_profile = "ccsds-tm-rs223i1-conv12";

// Options both commands take; each adds its own.
constexpr option_spec radio_specs[] = {
    {"radio", "sim|uhd", "radio back-end (default sim: the simulated satellite over the pass's RF channel)"},
    {"args", "STR", "UHD device arguments, e.g. type=b200,serial=3150A1B (default: the first USRP found)"},
    {"subdev", "SPEC", "UHD subdevice, e.g. A:A (default: the device's)"},
    {"clock-source", "internal|external|gpsdo", "UHD reference clock (default: the device's)"},
    {"time", "host|pps", "set the device clock to UTC from the host now, or at the next PPS edge (uhd; default host)"},
    {"rate", "HZ", "sample rate, [1e5, 1e8] (default 1e6: 250 ksym/s at 4 samples/symbol)"},
    {"freq", "HZ", "carrier, [1e6, 1e11] (default 8.2e9 downlink / 7.2e9 uplink)"},
    {"gain", "DB", "receive or transmit gain, [0, 90] (default 30 rx / 0 tx)"},
    {"modulation", "bpsk|qpsk", "(default bpsk)"},
    {"profile", "NAME", "coding profile (default ccsds-tm-rs223i1-conv12); list: qlink profiles"},
    {"tle", "FILE", "satellite TLE (default: the bundled sim/data/qlinksat-1.tle)"},
    {"station", "LAT,LON,ALT", "ground station, degrees and metres (default Delft 52.0116,4.3571,0)"},
    {"start", "ISO8601", "sim: simulated start, UTC (default: AOS of the first pass above 30 deg after the TLE epoch); uhd: now"},
    {"duration", "S", "seconds to run, (0, 3600] (default: rx until the simulated file is through, else 10)"},
    {"doppler", "on|off", "Doppler from the TLE: removed on receive, pre-compensated on transmit (default on)"},
    {"es-n0", "DB", "sim: channel Es/N0, [-5, 40] (default 6)"},
    {"seed", "S", "sim: channel and generated-data seed (default 1)"},
    {"mount", "none|sim|rotctld", "antenna program track during the run: none (default), the simulated mount, or Hamlib rotctld"},
    {"mount-address", "HOST:PORT", "rotctld's address (default 127.0.0.1:4533)"},
    {"mount-limits", "AZ0,AZ1,EL0,EL1", "mount axis limits in degrees (default 0,450,0,90; EL1 180 for a flip mount)"},
};

struct rf_setup {
    std::string cmd;
    bool uhd = false;
    rf_waveform waveform;
    const modem::chain_profile* profile = nullptr;
    double freq_hz = 0.0, gain_db = 0.0, es_n0_db = 6.0, duration_s = 0.0;
    bool duration_given = false, doppler = true, time_at_pps = false;
    std::uint64_t seed = 1;
    hw::uhd_radio_config uhd_cfg;
    std::unique_ptr<sim::sgp4_propagator> sat;
    std::optional<sim::ground_station> station;
    std::optional<sim::pass_info> pass;
    sim::time_point start{};
    enum class mount_kind { none, sim, rotctld } mount = mount_kind::none;
    hw::rotctld_config rotctld;
};

hw::mount_limits parse_limits(std::string_view cmd, const std::string& text) {
    double v[4];
    std::size_t pos = 0;
    for (int i = 0; i < 4; ++i) {
        const std::size_t end = i < 3 ? text.find(',', pos) : text.size();
        const auto [ptr, ec] = std::from_chars(text.data() + pos, text.data() + std::min(end, text.size()), v[i]);
        if (end == std::string::npos || ec != std::errc{} || ptr != text.data() + end)
            throw usage_error{"qlink " + std::string(cmd) + ": --mount-limits '" + text + "' must be AZ0,AZ1,EL0,EL1 in degrees (e.g. 0,450,0,90)"};
        pos = end + 1;
    }
    if (!(v[0] < v[1] && v[1] - v[0] >= 360.0 && v[1] - v[0] <= 540.0 && v[2] < v[3] && v[2] >= -5.0 && v[3] <= 180.0))
        throw usage_error{"qlink " + std::string(cmd) + ": --mount-limits '" + text +
                          "': azimuth must span 360..540 deg, elevation lie in [-5, 180] with EL0 < EL1"};
    return {v[0], v[1], v[2], v[3]};
}

std::string read_text(const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

rf_setup parse_setup(std::string_view cmd, const parsed_options& p, bool transmit) {
    rf_setup s;
    s.cmd = std::string(cmd);
    s.uhd = choice_option(cmd, p, "radio", "sim", {"sim", "uhd"}) == "uhd";
    for (const char* k : {"args", "subdev", "clock-source", "time"})
        if (!s.uhd && p.get(k)) throw usage_error{"qlink " + s.cmd + ": --" + k + " is for --radio uhd"};
    for (const char* k : {"es-n0", "seed", "start"})
        if (s.uhd && p.get(k)) throw usage_error{"qlink " + s.cmd + ": --" + k + " is for --radio sim"};
    if (const auto* v = p.get("args")) s.uhd_cfg.args = *v;
    if (const auto* v = p.get("subdev")) s.uhd_cfg.subdev = *v;
    if (p.get("clock-source")) s.uhd_cfg.clock_source = choice_option(cmd, p, "clock-source", "", {"internal", "external", "gpsdo"});
    s.time_at_pps = choice_option(cmd, p, "time", "host", {"host", "pps"}) == "pps";
    s.waveform.sample_rate_hz = number_option(cmd, p, "rate", 1e6, 1e5, 1e8);
    s.waveform.modulation = choice_option(cmd, p, "modulation", "bpsk", {"bpsk", "qpsk"}) == "qpsk" ? rf_modulation::qpsk : rf_modulation::bpsk;
    s.freq_hz = number_option(cmd, p, "freq", transmit ? 7.2e9 : 8.2e9, 1e6, 1e11);
    s.gain_db = number_option(cmd, p, "gain", transmit ? 0.0 : 30.0, 0.0, 90.0);
    s.profile = &profile_option(cmd, p, default_rf_profile);
    s.duration_given = p.get("duration") != nullptr;
    s.duration_s = number_option(cmd, p, "duration", 10.0, 1e-3, 3600.0);
    s.doppler = choice_option(cmd, p, "doppler", "on", {"on", "off"}) == "on";
    s.es_n0_db = number_option(cmd, p, "es-n0", 6.0, -5.0, 40.0);
    s.seed = integer_option(cmd, p, "seed", 1, 0, UINT64_MAX);
    const std::string mount = choice_option(cmd, p, "mount", "none", {"none", "sim", "rotctld"});
    s.mount = mount == "sim" ? rf_setup::mount_kind::sim : mount == "rotctld" ? rf_setup::mount_kind::rotctld : rf_setup::mount_kind::none;
    if (s.mount != rf_setup::mount_kind::rotctld && p.get("mount-address"))
        throw usage_error{"qlink " + s.cmd + ": --mount-address is for --mount rotctld"};
    if (s.mount == rf_setup::mount_kind::none && p.get("mount-limits"))
        throw usage_error{"qlink " + s.cmd + ": --mount-limits needs --mount sim|rotctld"};
    if (const auto* v = p.get("mount-limits")) s.rotctld.limits = parse_limits(cmd, *v);
    if (const auto* v = p.get("mount-address")) {
        const auto colon = v->rfind(':');
        unsigned port = 0;
        const char* end = v->data() + v->size();
        const bool ok = colon != std::string::npos && colon > 0 &&
                        std::from_chars(v->data() + colon + 1, end, port).ptr == end && port > 0 && port < 65536;
        if (!ok) throw usage_error{"qlink " + s.cmd + ": --mount-address '" + *v + "' must be HOST:PORT of rotctld (e.g. 127.0.0.1:4533)"};
        s.rotctld.host = v->substr(0, colon);
        s.rotctld.port = static_cast<unsigned short>(port);
    }

    std::string tle_path;
    if (const auto* v = p.get("tle")) {
        tle_path = *v;
    } else {
        const auto t = find_bundled_tle();
        if (!t) throw usage_error{"qlink " + s.cmd + ": the bundled TLE sim/data/qlinksat-1.tle was not found; pass --tle FILE"};
        tle_path = t->string();
    }
    const auto parsed = sim::parse_tle_text(read_text(tle_path));
    if (!parsed.ok() || parsed.sets.empty())
        throw usage_error{"qlink " + s.cmd + ": --tle '" + tle_path + "': " + (parsed.error.empty() ? "no element set" : parsed.error)};
    s.sat = sim::create_sgp4_propagator(parsed.sets.front());
    std::string why;
    const std::string station_text = p.get("station") ? *p.get("station") : "52.0116,4.3571,0";
    const auto st = sim::parse_station(station_text, why);
    if (!st) throw usage_error{"qlink " + s.cmd + ": --station '" + station_text + "': " + why};
    s.station.emplace(*st);
    std::optional<sim::time_point> start;
    if (s.uhd) {
        // Real time: the pass in progress now, or the next one (the program track needs it).
        s.start = sim::time_point{} + std::chrono::duration_cast<sim::duration>(std::chrono::system_clock::now().time_since_epoch());
        auto now_pass = sim::find_next_pass(*s.sat, *s.station, s.start - std::chrono::hours(1));
        while (now_pass.pass && now_pass.pass->los < s.start) now_pass = sim::find_next_pass(*s.sat, *s.station, now_pass.pass->los);
        s.pass = now_pass.pass;
        if (!s.pass && s.mount != rf_setup::mount_kind::none)
            throw usage_error{"qlink " + s.cmd + ": no pass over " + station_text + " within 7 days: nothing for --mount to track"};
        return s;
    }
    if (const auto* v = p.get("start")) {
        start = sim::parse_iso8601_utc(*v, &why);
        if (!start) throw usage_error{"qlink " + s.cmd + ": --start '" + *v + "': " + why + " (e.g. 2026-03-01T12:00:00Z)"};
    }
    auto found = sim::find_next_pass(*s.sat, *s.station, start ? *start - std::chrono::hours(1) : parsed.sets.front().epoch());
    while (found.pass && ((start && found.pass->los < *start) || (!start && found.pass->max_elevation_deg < 30.0)))
        found = sim::find_next_pass(*s.sat, *s.station, found.pass->los);
    if (!found.pass) throw usage_error{"qlink " + s.cmd + ": no pass over " + station_text + " within 7 days of the start"};
    s.pass = found.pass;
    s.start = start ? *start : found.pass->aos;
    return s;
}

/// Opens the radio: a USRP, or the sim radio wired to `sat`. Empty (error printed) when it fails.
std::unique_ptr<hw::radio> open_radio(const rf_setup& s, rf_sim_satellite* sat, sim::sim_clock& clock, std::ostream& err) {
    std::unique_ptr<hw::radio> radio;
    if (s.uhd) {
        hw::radio_result r;
        radio = hw::create_uhd_radio(s.uhd_cfg, r);
        if (!radio) {
            err << "qlink " << s.cmd << ": " << r.message << '\n';
            return nullptr;
        }
    } else {
        radio = hw::create_sim_radio(sat->radio_config(), clock);
    }
    hw::radio_settings rs;
    rs.sample_rate_hz = s.waveform.sample_rate_hz;
    rs.center_freq_hz = s.freq_hz;
    rs.rx_gain_db = s.gain_db;
    rs.tx_gain_db = s.gain_db;
    if (const auto r = radio->configure(rs); !r) {
        err << "qlink " << s.cmd << ": configuring the radio failed: " << r.message << '\n';
        return nullptr;
    }
    if (s.uhd) {
        // UTC now, or the whole second the next PPS edge marks.
        const std::int64_t now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch()).count();
        const std::int64_t at_ns = s.time_at_pps ? (now_ns / 1'000'000'000 + 1) * 1'000'000'000 : now_ns;
        const auto r = radio->set_time(at_ns, s.time_at_pps);
        if (!r) {
            err << "qlink " << s.cmd << ": " << r.message << '\n';
            return nullptr;
        }
    }
    return radio;
}

/// The simulated satellite of --radio sim: the command's waveform, profile, channel and seed.
rf_sim_satellite::config sim_satellite_config(const rf_setup& s) {
    rf_sim_satellite::config c;
    c.waveform = s.waveform;
    c.profile = s.profile;
    c.es_n0_db = s.es_n0_db;
    c.seed = s.seed;
    c.oscillator_error_hz = 800.0;  // neither end's oscillator is perfect: the carrier loop takes the rest
    return c;
}

/// The antenna program track of --mount, ticked by the command's loop on its clock.
struct station_mount {
    std::unique_ptr<hw::mount> mount;
    std::optional<rf_program_track> track;
    std::string name;
    hw::az_el last_sky{};

    void tick() {
        if (!track) return;
        const auto r = track->tick();
        if (r.commanded) last_sky = r.sky;
    }
    /// Safe state at the end of a run that ends mid-pass: the mount stops where it is.
    void finish() {
        if (track && track->state() == track_state::tracking) mount->stop();
    }
    void print(std::ostream& out) const {
        if (!track) return;
        const auto& c = track->stats();
        out << std::fixed << std::setprecision(1) << "  mount               " << name << ": " << c.commands_ok
            << " commands ok, " << c.timeouts << " timeouts, " << c.disconnects << " disconnects, " << c.rejected
            << " rejected, state " << to_string(track->state()) << ", last az " << last_sky.az_deg << " el "
            << last_sky.el_deg << " deg" << (track->flip() ? " (flip)" : "") << '\n' << std::defaultfloat;
    }
};

void open_mount(station_mount& m, const rf_setup& s, const sim::clock& clock) {
    if (s.mount == rf_setup::mount_kind::none) return;
    if (s.mount == rf_setup::mount_kind::rotctld) {
        m.mount = hw::create_rotctld_mount(s.rotctld);
        m.name = "rotctld " + s.rotctld.host + ":" + std::to_string(s.rotctld.port);
    } else {
        hw::sim_mount_config mc;
        mc.limits = s.rotctld.limits;
        m.mount = hw::create_sim_mount(mc, clock);
        m.name = "simulated";
    }
    m.track.emplace(*m.mount, *s.sat, *s.station, clock, *s.pass, rf_program_track::config{});
}

/// What both commands run on: the radio (with the simulated satellite behind the sim radio), the
/// simulated clock it drives, and the mount on the command's clock (wall time with a USRP).
struct station_rig {
    explicit station_rig(sim::time_point start) : clock(start) {}
    std::unique_ptr<rf_sim_satellite> sat;
    sim::sim_clock clock;
    sim::real_clock wall;
    std::unique_ptr<hw::radio> radio;
    station_mount mount;

    /// False (error printed) when the radio cannot be opened.
    bool open(const rf_setup& s, const doppler_predictor& truth, const rf_sim_satellite::config& sc, std::ostream& err) {
        if (!s.uhd) sat = std::make_unique<rf_sim_satellite>(truth, sc);
        radio = open_radio(s, sat.get(), clock, err);
        if (!radio) return false;
        open_mount(mount, s, s.uhd ? static_cast<const sim::clock&>(wall) : clock);
        return true;
    }
};

std::vector<std::uint8_t> generated_payload(std::size_t n, std::uint64_t seed) {
    std::vector<std::uint8_t> v(n);
    std::mt19937_64 rng(seed);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

void print_common(std::ostream& out, const rf_setup& s, const hw::radio& radio) {
    const auto a = radio.actual();
    out << "  radio               " << radio.driver() << (s.uhd ? " (args \"" + s.uhd_cfg.args + "\")" : "") << ", "
        << a.sample_rate_hz / 1e6 << " Msample/s, " << a.center_freq_hz / 1e9 << " GHz, "
        << to_string(s.waveform.modulation) << ' ' << s.waveform.sample_rate_hz / s.waveform.samples_per_symbol / 1e3
        << " ksym/s, profile " << s.profile->name << '\n'
        << "  start               " << sim::format_iso8601_utc(s.start);
    if (s.pass)
        out << " (pass AOS " << sim::format_iso8601_utc(s.pass->aos) << ", max elevation " << std::fixed << std::setprecision(1)
            << s.pass->max_elevation_deg << std::defaultfloat << " deg)";
    out << '\n';
}

}  // namespace

// ------------------------------------------------------------------ rf-rx

int cmd_rf_rx(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    std::vector<option_spec> specs(std::begin(radio_specs), std::end(radio_specs));
    specs.push_back({"out", "FILE", "write the payload of the frames received (file framing, as `qlink decode`)"});
    specs.push_back({"sim-file", "FILE", "sim: the file the simulated satellite sends (default: --sim-bytes generated bytes)"});
    specs.push_back({"sim-bytes", "N", "sim: size of the generated file, [1, 1e9] (default 65536)"});
    const auto p = parse("rf-rx", args, specs);
    if (p.help) {
        print_help(out, "rf-rx", "[--radio sim|uhd] [--args STR] [--out FILE] [--duration S] [options]",
                   "Receives a coded downlink: radio samples -> Doppler removal predicted from the TLE at each buffer's\n"
                   "timestamp -> RRC matched filter, timing and carrier recovery (BPSK/QPSK) -> phase-ambiguity\n"
                   "resolver (QPSK) -> CCSDS decoding. Frames in the file framing of `qlink encode` are put back\n"
                   "together into --out. With --radio sim the simulated satellite sends a file over the pass's RF\n"
                   "channel (Doppler, phase noise, AWGN) and the command checks it arrived intact (exit 0), else\n"
                   "exit 1. With --radio uhd a USRP is the front end (exit 0 when frames arrived without a gap).",
                   specs);
        return exit_ok;
    }
    rf_setup s = parse_setup("rf-rx", p, false);
    for (const char* k : {"sim-file", "sim-bytes"})
        if (s.uhd && p.get(k)) throw usage_error{std::string("qlink rf-rx: --") + k + " is for --radio sim"};

    const doppler_predictor predictor(*s.sat, *s.station, {s.freq_hz, s.freq_hz, 0.0});
    std::vector<std::uint8_t> sent;
    std::string why;
    if (const auto* f = p.get("sim-file")) {
        if (!read_file_bytes(*f, sent, why)) {
            err << "qlink rf-rx: " << why << '\n';
            return exit_failed;
        }
    } else if (!s.uhd) {
        sent = generated_payload(integer_option("rf-rx", p, "sim-bytes", 65536, 1, 1'000'000'000), s.seed);
    }
    std::uint64_t next = 0;
    const std::uint64_t frames_to_send = file_frame_count(sent.size(), modem::frame_data_bytes(*s.profile));
    rf_sim_satellite::config sc = sim_satellite_config(s);
    sc.next_frame = [&](std::span<std::uint8_t> data) {
        if (next >= frames_to_send) return false;
        fill_file_frame(sent, next++, data);
        return true;
    };
    station_rig rig(s.start);
    if (!rig.open(s, predictor, sc, err)) return exit_failed;
    rf_sim_satellite* const sat = rig.sat.get();
    hw::radio* const radio = rig.radio.get();
    station_mount& mount = rig.mount;

    rf_receiver::config rc;
    rc.demod.waveform = s.waveform;
    rc.demod.waveform.sample_rate_hz = radio->actual().sample_rate_hz;
    rc.correct_doppler = s.doppler;
    if (s.waveform.modulation == rf_modulation::qpsk) rc.phase = rf_phase_resolver::for_profile(*s.profile, s.waveform.modulation);
    rf_receiver rx(*radio, &predictor, rc);
    modem::chain_decoder::config dc;
    dc.profile = *s.profile;
    modem::chain_decoder dec(dc);
    const std::size_t db = dec.data_bytes();
    std::vector<modem::llr_t> llrs(rx.max_llrs());
    std::vector<std::uint8_t> frames(dec.frames_per_push() * db);
    std::vector<modem::chain_frame_report> reps(dec.frames_per_push());
    file_assembler fa;
    auto take = [&](const modem::chain_decoder::result& r) {
        for (std::size_t f = 0; f < r.frames; ++f) fa.take(std::span<const std::uint8_t>(frames).subspan(f * db, db), reps[f].ok);
    };
    const double fs = rc.demod.waveform.sample_rate_hz;
    if (const auto r = radio->start_rx(); !r) {
        err << "qlink rf-rx: starting the receive stream failed: " << r.message << '\n';
        return exit_failed;
    }
    const auto limit = static_cast<std::uint64_t>(s.duration_s * fs);
    std::uint64_t tail = 0;  // samples received since the simulated satellite fell silent
    double min_doppler = 0.0, max_doppler = 0.0;
    bool any = false;
    // The carrier loop as it was on the signal (a simulated satellite falls silent at the end).
    double residual_hz = 0.0, es_n0_db = 0.0, locked_s = 0.0;
    const auto wall0 = std::chrono::steady_clock::now();
    while (true) {
        const auto r = rx.receive(llrs);
        if (!r.ok) {
            err << "qlink rf-rx: " << r.error << '\n';
            return exit_failed;
        }
        mount.tick();
        const double corr = rx.demodulator().carrier_correction_hz();
        min_doppler = any ? std::min(min_doppler, corr) : corr;
        max_doppler = any ? std::max(max_doppler, corr) : corr;
        any = any || r.samples > 0;
        if (rx.demodulator().locked() && !(sat && sat->downlink_done())) {
            residual_hz = rx.demodulator().residual_frequency_hz();
            es_n0_db = rx.demodulator().es_n0_estimate_db();
            locked_s += double(r.samples) / fs;
        }
        dec.push_all(std::span<const modem::llr_t>(llrs).first(r.llrs), frames, reps, take);
        const std::uint64_t n = rx.stats().samples;
        if (sat && sat->downlink_done()) tail += r.samples;
        if (sat && !s.duration_given && tail > static_cast<std::uint64_t>(0.2 * fs)) break;
        if ((s.duration_given || !sat) && n >= limit) break;
        // A radio that stopped delivering (timeouts) must not hold the command forever.
        if (s.uhd && std::chrono::steady_clock::now() - wall0 > std::chrono::duration<double>(s.duration_s + 5.0)) {
            err << "qlink rf-rx: the radio delivered " << double(n) / fs << " s of samples in " << s.duration_s + 5.0
                << " s (" << rx.stats().timeouts << " timeouts); stopping\n";
            break;
        }
    }
    take(dec.finish(frames, reps));
    radio->stop_rx();
    mount.finish();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    if (const auto* o = p.get("out"); o && !write_file_bytes(*o, fa.payload, why)) {
        err << "qlink rf-rx: " << why << '\n';
        return exit_failed;
    }
    const auto& st = rx.stats();
    const auto& demod = rx.demodulator();
    out << "qlink rf-rx: " << fa.payload.size() << " payload bytes" << (p.get("out") ? " -> " + *p.get("out") : std::string()) << '\n';
    print_common(out, s, *radio);
    out << std::fixed << std::setprecision(1)
        << "  received            " << double(st.samples) / fs << " s of samples (" << std::setprecision(2)
        << double(st.samples) / fs / std::max(wall, 1e-9) << "x real time)\n" << std::setprecision(1)
        << "  Doppler removed     " << min_doppler / 1e3 << " .. " << max_doppler / 1e3 << " kHz"
        << (s.doppler ? "" : " (off)") << "\n"
        << "  carrier loop        locked " << locked_s << " s (acquired " << demod.stats().lock_acquired << ", lost "
        << demod.stats().lock_lost << "), last locked: residual " << residual_hz << " Hz, Es/N0 estimate " << es_n0_db
        << " dB\n" << std::defaultfloat
        << "  frames              " << fa.frames_ok << " good, " << fa.frames_failed << " failed, " << fa.missing
        << " missing (gaps)\n"
        << "  radio events        " << st.overflows << " overflows, " << st.timeouts << " timeouts, " << st.other_errors << " other\n";
    if (rc.phase) out << "  phase rotations     " << st.phase_rotations << " undone\n";
    mount.print(out);
    if (sat) {
        const bool intact = fa.payload == sent;
        out << "  satellite sent      " << sat->frames_sent() << " frames, " << sent.size() << " bytes: "
            << (intact ? "received intact" : "NOT received intact") << '\n';
        return intact ? exit_ok : exit_failed;
    }
    return fa.frames_ok > 0 && fa.missing == 0 ? exit_ok : exit_failed;
}

// ------------------------------------------------------------------ rf-tx

int cmd_rf_tx(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    std::vector<option_spec> specs(std::begin(radio_specs), std::end(radio_specs));
    specs.push_back({"in", "FILE", "the file to send (file framing, as `qlink encode`)"});
    specs.push_back({"lead", "S", "uhd: seconds between now and the timed start of the burst, [0.05, 60] (default 0.5)"});
    const auto p = parse("rf-tx", args, specs);
    if (p.help) {
        print_help(out, "rf-tx", "--in FILE [--radio sim|uhd] [--args STR] [options]",
                   "Sends a file as a coded uplink burst: file frames -> CCSDS coding -> BPSK/QPSK with RRC shaping\n"
                   "-> the carrier pre-compensated for the uplink Doppler predicted from the TLE at each buffer's air\n"
                   "time (the satellite receives its nominal carrier) -> the radio, one timed burst. With --radio sim\n"
                   "the simulated satellite receives it over the pass's RF channel without any Doppler correction of\n"
                   "its own and the command checks the file arrived intact (exit 0), else exit 1.",
                   specs);
        return exit_ok;
    }
    rf_setup s = parse_setup("rf-tx", p, true);
    if (!s.uhd && p.get("lead")) throw usage_error{"qlink rf-tx: --lead is for --radio uhd"};
    const double lead_s = number_option("rf-tx", p, "lead", 0.5, 0.05, 60.0);
    std::vector<std::uint8_t> payload;
    std::string why;
    if (!read_file_bytes(required("rf-tx", p, "in"), payload, why)) {
        err << "qlink rf-tx: " << why << '\n';
        return exit_failed;
    }
    const doppler_predictor predictor(*s.sat, *s.station, {s.freq_hz, s.freq_hz, 0.0});
    file_assembler got;
    rf_sim_satellite::config sc = sim_satellite_config(s);
    sc.on_frame = [&](std::span<const std::uint8_t> d) { got.take(d, true); };
    station_rig rig(s.start);
    if (!rig.open(s, predictor, sc, err)) return exit_failed;
    rf_sim_satellite* const sat = rig.sat.get();
    hw::radio* const radio = rig.radio.get();
    station_mount& mount = rig.mount;
    sim::sim_clock& clock = rig.clock;

    rf_transmitter::config tc;
    tc.mod.waveform = s.waveform;
    tc.mod.waveform.sample_rate_hz = radio->actual().sample_rate_hz;
    tc.precompensate_doppler = s.doppler;
    rf_transmitter tx(*radio, &predictor, tc);
    modem::chain_encoder enc(*s.profile);
    std::vector<std::uint8_t> data(enc.data_bytes()), bits(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    const std::uint64_t frames = file_frame_count(payload.size(), enc.data_bytes());
    const std::int64_t t0 = s.start.time_since_epoch().count() + (s.uhd ? static_cast<std::int64_t>(lead_s * 1e9) : 0);
    tx.start_burst(t0);
    double first_applied = 0.0;
    const auto wall0 = std::chrono::steady_clock::now();
    for (std::uint64_t f = 0; f < frames; ++f) {
        fill_file_frame(payload, f, data);
        const auto e = enc.encode(data, bits);
        const auto r = tx.transmit(std::span<const std::uint8_t>(bits).first(e.bits));
        if (!r.ok) {
            err << "qlink rf-tx: " << r.error << '\n';
            return exit_failed;
        }
        if (f == 0) first_applied = tx.applied_offset_hz();
        // Simulated time follows the burst's air time (the sim radio does not drive it on transmit).
        if (!s.uhd) clock.set(sim::time_point{} + sim::duration{tx.air_time_ns()});
        mount.tick();
    }
    const auto fin = enc.finish(bits);
    tx.transmit(std::span<const std::uint8_t>(bits).first(fin.bits));
    tx.end_burst();
    mount.finish();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
    const auto& st = tx.stats();
    const double fs = tc.mod.waveform.sample_rate_hz;
    out << "qlink rf-tx: " << payload.size() << " payload bytes in " << frames << " frames\n";
    print_common(out, s, *radio);
    out << std::fixed << std::setprecision(1)
        << "  sent                " << double(st.samples) / fs << " s of samples in one burst (" << std::setprecision(2)
        << double(st.samples) / fs / std::max(wall, 1e-9) << "x real time)\n" << std::setprecision(1)
        << "  Doppler pre-comp.   " << first_applied / 1e3 << " kHz at the start, " << tx.applied_offset_hz() / 1e3
        << " kHz at the end" << (s.doppler ? "" : " (off)") << "\n" << std::defaultfloat
        << "  radio events        " << st.underflows << " underflows, " << st.late << " late, " << st.short_sends
        << " short sends, " << st.samples_dropped << " samples dropped\n";
    mount.print(out);
    if (!sat) return st.samples_dropped == 0 && st.late == 0 ? exit_ok : exit_failed;
    sat->finish_uplink();
    const auto& up = sat->uplink();
    const bool intact = got.payload == payload && got.missing == 0;
    out << std::fixed << std::setprecision(1) << "  satellite           decoded " << up.frames_ok << " of " << frames
        << " frames, uplink Doppler up to " << up.max_abs_doppler_hz / 1e3 << " kHz, its loop "
        << (up.locked ? "locked" : "NOT locked") << " at " << up.residual_hz << " Hz residual: file "
        << (intact ? "received intact" : "NOT received intact") << '\n' << std::defaultfloat;
    return intact ? exit_ok : exit_failed;
}

}  // namespace qlink::terminal::cli
