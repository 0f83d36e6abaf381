// Tests terminal/src/daemon/config.cpp: a full configuration parses; every kind of bad value names its key (PAT keys too).
#include "qlink/terminal/qlinkd_config.hpp"
#include "support/source_path.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

using namespace qlink::terminal;

namespace {

const std::string minimal = R"(
[link]
role = "ground"
[air]
port = 4000
[keys]
source = "memory"
)";

// The error message of parsing `text`, or "" when it parsed.
std::string error_of(const std::string& text, const std::string& base_dir = {})
{
    try {
        parse_qlinkd_config(text, "test.toml", base_dir);
    } catch (const qlinkd_config_error& e) {
        return e.what();
    }
    return {};
}

}  // namespace

TEST(qlinkd_config, minimal_has_role_dependent_defaults)
{
    const auto g = parse_qlinkd_config(minimal);
    EXPECT_EQ(g.link.role, link_role::ground);
    EXPECT_EQ(g.air.port, 4000);
    EXPECT_EQ(g.air.host, "127.0.0.1");
    EXPECT_EQ(g.user.address, "127.0.0.1");
    EXPECT_EQ(g.telemetry.address, "127.0.0.1");
    EXPECT_EQ(g.keys.source, key_source_kind::memory);
    EXPECT_EQ(g.security.on_exhaustion, exhaustion_policy::stop);
    // The two ends' defaults mirror each other: what ground sends is what space expects.
    std::string space_text = minimal;
    space_text.replace(space_text.find("\"ground\""), 8, "\"space\"");
    const auto s = parse_qlinkd_config(space_text);
    EXPECT_EQ(g.link.tx_profile, s.link.rx_profile);
    EXPECT_EQ(g.link.rx_profile, s.link.tx_profile);
    EXPECT_NE(g.link.tx_profile, g.link.rx_profile);
}

TEST(qlinkd_config, state_dir_is_off_by_default_and_relative_to_the_config)
{
    EXPECT_EQ(parse_qlinkd_config(minimal).link.state_dir, "");  // no delivery record: no resume
    std::string text = minimal;
    text.replace(text.find("role = \"ground\"\n"), 16, "role = \"ground\"\nstate_dir = \"state\"\n");
    EXPECT_EQ(parse_qlinkd_config(text, "t.toml", "/etc/qlink").link.state_dir, "/etc/qlink/state");
    text.replace(text.find("\"state\""), 7, "\"/var/lib/qlinkd\"");
    EXPECT_EQ(parse_qlinkd_config(text, "t.toml", "/etc/qlink").link.state_dir, "/var/lib/qlinkd");
}

TEST(qlinkd_config, full_file_round_trips_into_engine_config)
{
    const auto c = parse_qlinkd_config(R"(
[link]
role = "space"
tx_profile = "ccsds-tm-rs223i4-conv12"
rx_profile = "ccsds-tm-rs223i1-conv12"
spacecraft_id = 42
tx_vcid = 3
drain_timeout_s = 2.5
exit_after_pass = true
[station]
lat_deg = 52.0116
lon_deg = 4.3571
alt_m = 0
[air]
host = "127.0.0.1"
port = 40123
block_bits = 8192
tx_lead_s = 0.02
[keys]
source = "qkmd"
socket = "/run/qkmd/inject.sock"
qkmd_metrics = "127.0.0.1:9464"
[security]
mode = "auth_only"
rotate_every_frames = 5000
rotate_every_s = 30
on_exhaustion = "stop"
[arq]
window = 2048
rto_min_ms = 5
rto_max_ms = 3000
ack_interval_ms = 10
[user]
tcp_port = 7000
udp_port = 7001
udp_deliver = "127.0.0.1:7002"
[telemetry]
port = 9100
[log]
format = "json"
)");
    EXPECT_EQ(c.link.role, link_role::space);
    EXPECT_TRUE(c.station.present);
    EXPECT_DOUBLE_EQ(c.station.lat_deg, 52.0116);
    EXPECT_EQ(c.keys.socket, "/run/qkmd/inject.sock");
    EXPECT_DOUBLE_EQ(c.air.tx_lead_s, 0.02);
    EXPECT_TRUE(c.log.json);
    const auto e = make_engine_config(c);
    EXPECT_EQ(e.role, link_role::space);
    EXPECT_EQ(e.spacecraft_id, 42);
    EXPECT_EQ(e.tx_vcid, 3);
    EXPECT_EQ(e.sdls_mode, qlink::modem::sdls_mode::auth_only);
    EXPECT_EQ(e.rotate_every_frames, 5000u);
    EXPECT_DOUBLE_EQ(e.rotate_every_s, 30.0);
    EXPECT_EQ(e.arq_window, 2048u);
    EXPECT_DOUBLE_EQ(e.rto_min_s, 0.005);
    EXPECT_DOUBLE_EQ(e.rto_max_s, 3.0);
    EXPECT_DOUBLE_EQ(e.ack_interval_s, 0.010);
    EXPECT_EQ(e.key_exhaustion_policy, qlink::modem::key_exhaustion_policy::stop);
}

TEST(qlinkd_config, bad_values_name_the_key_and_what_is_allowed)
{
    struct bad_case {
        std::string text;
        std::vector<std::string> must_contain;
    };
    const std::string keys = "[keys]\nsource = \"memory\"\n";
    const std::string air = "[air]\nport = 4000\n";
    const std::vector<bad_case> cases = {
        {air + keys, {"link.role", "ground, space"}},
        {"[link]\nrole = \"moon\"\n" + air + keys, {"link.role", "\"moon\"", "ground, space"}},
        {"[link]\nrole = \"ground\"\n" + keys, {"air.port", "required"}},
        {"[link]\nrole = \"ground\"\n[air]\nport = 70000\n" + keys, {"air.port", "70000", "1..65535"}},
        {"[link]\nrole = \"ground\"\n[air]\nport = 4000\ntx_lead_s = 0\n" + keys, {"air.tx_lead_s", "0.005"}},
        {"[link]\nrole = \"ground\"\n" + air, {"keys.source", "qkmd, memory"}},
        {"[link]\nrole = \"ground\"\n" + air + "[keys]\nsource = \"qkmd\"\n", {"keys.socket", "required"}},
        {"[link]\nrole = \"ground\"\ntx_profile = \"turbo\"\n" + air + keys, {"link.tx_profile", "turbo", "ccsds-tm-rs223i4-conv12"}},
        {"[link]\nrole = \"ground\"\ncolour = 1\n" + air + keys, {"link.colour", "allowed keys", "tx_profile"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[arq]\nwindow = 1000\n", {"arq.window", "power of two"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[arq]\nrto_min_ms = 50\nrto_max_ms = 10\n", {"arq.rto_max_ms", "rto_min_ms"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[security]\nmode = \"rot13\"\n", {"security.mode", "auth_enc, auth_only, enc_only"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[security]\non_exhaustion = \"fallback\"\n", {"security.on_exhaustion", "stop"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[security]\nrotate_every_frames = 4\n", {"security.rotate_every_frames", "32.."}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[user]\ntcp_port = \"80\"\n", {"user.tcp_port", "integer"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[user]\nudp_deliver = \"nowhere\"\n", {"user.udp_deliver", "host:port"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[telemetry]\naddress = \"localhost\"\n", {"telemetry.address", "numeric"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[station]\nlat_deg = 95\nlon_deg = 4\n", {"station.lat_deg", "-90..90"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[station]\nlon_deg = 4\n", {"station.lat_deg", "required"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[satellite]\ntle = \"/nonexistent.tle\"\n", {"satellite.tle", "cannot read"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[log]\nformat = \"xml\"\n", {"log.format", "logfmt, json"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[keys2]\n", {"keys2", "allowed keys"}},
        {"[link]\nrole = \"ground\"\n" + air + "[keys]\nsource = \"memory\"\nsocket = \"/x\"\n", {"keys.socket", "qkmd"}},
        {"[link\nrole = 1\n", {"test.toml:1"}},
        {"link = 3\n", {"'link' must be a table"}},
    };
    for (const auto& c : cases) {
        const auto e = error_of(c.text);
        ASSERT_FALSE(e.empty()) << "accepted:\n" << c.text;
        EXPECT_EQ(e.find('\n'), std::string::npos) << "not one line: " << e;
        for (const auto& m : c.must_contain) EXPECT_NE(e.find(m), std::string::npos) << "'" << m << "' missing in: " << e;
    }
}

TEST(qlinkd_config, tle_file_is_parsed_relative_to_the_config)
{
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("qlinkd_cfg_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    {
        std::ofstream(dir / "sat.tle") << "ISS (ZARYA)\n"
                                          "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2927\n"
                                          "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537\n";
        std::ofstream(dir / "broken.tle") << "1 25544U 98067A   08264.51782528 -.00002182  00000-0 -11606-4 0  2928\n"
                                             "2 25544  51.6416 247.4627 0006703 130.5360 325.0288 15.72125391563537\n";
    }
    const std::string head = minimal;
    const auto ok = parse_qlinkd_config(head + "[satellite]\ntle = \"sat.tle\"\nname = \"ISS (ZARYA)\"\n", "t", dir.string());
    EXPECT_EQ(ok.satellite.tle_file, (dir / "sat.tle").string());
    EXPECT_NE(error_of(head + "[satellite]\ntle = \"sat.tle\"\nname = \"HUBBLE\"\n", dir.string()).find("satellite.name"),
              std::string::npos);
    const auto e = error_of(head + "[satellite]\ntle = \"broken.tle\"\n", dir.string());
    EXPECT_NE(e.find("satellite.tle"), std::string::npos) << e;
    EXPECT_NE(e.find("checksum"), std::string::npos) << e;
    fs::remove_all(dir);
}

TEST(qlinkd_config, host_port_split)
{
    EXPECT_EQ(split_host_port("127.0.0.1:9464")->second, 9464);
    EXPECT_EQ(split_host_port("127.0.0.1:9464")->first, "127.0.0.1");
    EXPECT_FALSE(split_host_port("127.0.0.1"));
    EXPECT_FALSE(split_host_port(":80"));
    EXPECT_FALSE(split_host_port("a:0"));
    EXPECT_FALSE(split_host_port("a:65536"));
    EXPECT_FALSE(split_host_port("a:8x"));
}

namespace {

// The bundled sample TLE (sim/data), absolute: the PAT keys need a real element set.
std::string sample_tle() { return qlink::test::sample_tle_path(); }

std::string pat_ground(const std::string& terminal_extra = "", const std::string& air_extra = "sim_epoch = \"2026-11-28T13:00:00Z\"\n")
{
    return "[link]\nrole = \"ground\"\n[air]\nport = 4000\n" + air_extra + "[keys]\nsource = \"memory\"\n"
           "[station]\nlat_deg = 52.0\nlon_deg = 4.37\nalt_m = 0\n[satellite]\ntle = \"" + sample_tle() +
           "\"\n[terminal]\npat = \"simulated\"\n" + terminal_extra;
}

}  // namespace

TEST(qlinkd_config, pat_is_off_by_default_and_simulated_reads_its_keys)
{
    const auto off = parse_qlinkd_config(minimal);
    EXPECT_FALSE(off.terminal.pat_simulated);
    EXPECT_FALSE(off.air.sim_epoch);

    const auto c = parse_qlinkd_config(pat_ground("fine_rate_hz = 2000\ncoarse_rate_hz = 80\nmount_rate_hz = 50\n"
                                                  "elevation_mask_deg = 15\nuncertainty_cone_urad = 1500\n"
                                                  "pointing_bias_urad = 400\nsignal_loss_timeout_s = 1.5\n"
                                                  "acquisition_timeout_s = 20\nmax_lag_s = 3\nseed = 9\n"));
    EXPECT_TRUE(c.terminal.pat_simulated);
    ASSERT_TRUE(c.air.sim_epoch);
    EXPECT_EQ(qlink::sim::format_iso8601_utc(*c.air.sim_epoch), "2026-11-28T13:00:00.000Z");
    EXPECT_EQ(c.terminal.pointing_bias_urad, 400.0);
    EXPECT_EQ(c.terminal.max_lag_s, 3.0);
    EXPECT_EQ(c.terminal.seed, 9u);
    const pat_config p = make_pat_config(c);
    EXPECT_EQ(p.fine_rate_hz, 2000.0);
    EXPECT_EQ(p.coarse_rate_hz, 80.0);
    EXPECT_EQ(p.mount_rate_hz, 50.0);
    EXPECT_EQ(p.elevation_mask_deg, 15.0);
    EXPECT_DOUBLE_EQ(p.uncertainty_cone_rad, 1.5e-3);
    EXPECT_EQ(p.signal_loss_timeout_s, 1.5);
    EXPECT_EQ(p.acquisition_timeout_s, 20.0);
    EXPECT_EQ(validate(p), "");
}

TEST(qlinkd_config, pat_errors_name_the_key_and_what_is_needed)
{
    const std::string keys = "[keys]\nsource = \"memory\"\n";
    const std::string air = "[air]\nport = 4000\n";
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {minimal + "[terminal]\npat = \"real\"\n", {"terminal.pat", "\"real\"", "off, simulated"}},
        {minimal + "[terminal]\nspeed = 3\n", {"terminal.speed", "allowed keys", "fine_rate_hz"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[terminal]\npat = \"simulated\"\n", {"terminal.pat", "[station]"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[station]\nlat_deg = 52\nlon_deg = 4\n[terminal]\npat = \"simulated\"\n",
         {"terminal.pat", "satellite.tle"}},
        {pat_ground("", ""), {"terminal.pat", "air.sim_epoch"}},
        {pat_ground("", "sim_epoch = \"yesterday\"\n"), {"air.sim_epoch", "yesterday"}},
        {"[link]\nrole = \"space\"\n" + air + keys + "[terminal]\npat = \"simulated\"\n", {"terminal.pat", "ground", "off"}},
        {pat_ground("fine_rate_hz = 100\n"), {"terminal.fine_rate_hz", "300..20000"}},
        {pat_ground("coarse_rate_hz = 10\n"), {"terminal.coarse_rate_hz", "70..20000"}},
        {pat_ground("fine_rate_hz = 500\ncoarse_rate_hz = 800\n"), {"terminal.coarse_rate_hz", "fine_rate_hz"}},
        {pat_ground("elevation_mask_deg = 95\n"), {"terminal.elevation_mask_deg", "0..89"}},
        {pat_ground("uncertainty_cone_urad = 100\n"), {"terminal.uncertainty_cone_urad", "200..50000"}},
        {pat_ground("max_lag_s = \"long\"\n"), {"terminal.max_lag_s", "number"}},
    };
    for (const auto& [text, must] : cases) {
        const auto e = error_of(text);
        ASSERT_FALSE(e.empty()) << "accepted:\n" << text;
        EXPECT_EQ(e.find('\n'), std::string::npos) << "not one line: " << e;
        for (const auto& m : must) EXPECT_NE(e.find(m), std::string::npos) << "'" << m << "' missing in: " << e;
    }
}

TEST(qlinkd_config, rf_radio_sim_reads_its_keys_and_names_what_it_needs)
{
    const auto def = parse_qlinkd_config(minimal);
    EXPECT_FALSE(def.rf.radio_sim);
    const auto c = parse_qlinkd_config(pat_ground("", "sim_epoch = \"2026-11-28T13:00:00Z\"\n") +
                                       "[rf]\nradio = \"sim\"\nsamples_per_symbol = 8\n"
                                       "uplink_hz = 2.05e9\nprecompensate_doppler = false\noscillator_error_hz = -300\nseed = 4\n");
    EXPECT_TRUE(c.rf.radio_sim);
    EXPECT_EQ(c.rf.samples_per_symbol, 8u);
    EXPECT_EQ(c.rf.uplink_hz, 2.05e9);
    EXPECT_FALSE(c.rf.precompensate_doppler);
    EXPECT_EQ(c.rf.oscillator_error_hz, -300.0);
    EXPECT_EQ(c.rf.seed, 4u);

    const std::string keys = "[keys]\nsource = \"memory\"\n";
    const std::string air = "[air]\nport = 4000\nsim_epoch = \"2026-11-28T13:00:00Z\"\n";
    const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
        {minimal + "[rf]\nradio = \"usrp\"\n", {"rf.radio", "\"usrp\"", "relay, sim"}},
        {minimal + "[rf]\nuplink_hz = 2e9\n", {"rf.uplink_hz", "only used with rf.radio = \"sim\""}},
        {"[link]\nrole = \"space\"\n" + air + keys + "[rf]\nradio = \"sim\"\n", {"rf.radio", "link.role = \"ground\""}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[rf]\nradio = \"sim\"\n", {"rf.radio", "[station]"}},
        {"[link]\nrole = \"ground\"\n" + air + keys + "[station]\nlat_deg = 52\nlon_deg = 4\n[rf]\nradio = \"sim\"\n",
         {"rf.radio", "satellite.tle"}},
        {pat_ground("", "") + "[rf]\nradio = \"sim\"\n", {"air.sim_epoch"}},
        {pat_ground() + "[rf]\nradio = \"sim\"\nsamples_per_symbol = 1\n", {"rf.samples_per_symbol", "2..16"}},
        {pat_ground() + "[rf]\nradio = \"sim\"\nmodulation = \"qpsk\"\n", {"rf.modulation", "allowed keys"}},
    };
    for (const auto& [text, must] : cases) {
        const auto e = error_of(text);
        ASSERT_FALSE(e.empty()) << "accepted:\n" << text;
        EXPECT_EQ(e.find('\n'), std::string::npos) << "not one line: " << e;
        for (const auto& m : must) EXPECT_NE(e.find(m), std::string::npos) << "'" << m << "' missing in: " << e;
    }
}
