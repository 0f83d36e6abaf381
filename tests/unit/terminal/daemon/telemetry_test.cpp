// Tests terminal/src/daemon/telemetry.cpp: /status JSON has every pass_spec field (nulls when unknown),
// /metrics is Prometheus text whose samples match the snapshot.
#include "qlink/terminal/telemetry.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <sstream>

using namespace qlink::terminal;
using nlohmann::json;

namespace {

link_status sample()
{
    link_status s;
    s.role = "space";
    s.sim_time = 123.5;
    s.link_state = "up";
    s.pat_state = "n/a";
    s.elevation_deg = 41.25;
    s.rx_power_dbm = -52.5;
    s.esn0_db = std::nan("");  // non-finite must come out as null, never as invalid JSON
    s.frames.tx = 1000;
    s.frames.rx_ok = 990;
    s.frames.rx_crc_fail = 7;
    s.frames.rs_corrected = 321;
    s.frames.decode_fail = 3;
    s.bits.rx_channel_errors_est = 2500;
    s.arq.retransmissions = 12;
    s.arq.in_flight = 4;
    s.arq.bytes_delivered = 1 << 20;
    s.arq.bytes_acked = 1 << 19;
    s.arq.srtt_s = 0.375;
    s.keys.active_key_id = 7;
    s.keys.rotations = 3;
    s.keys.keys_consumed = 8;
    s.keys.pool_level = 992;
    s.user.bytes_in = 555;
    s.user.bytes_out = 444;
    return s;
}

}  // namespace

TEST(qlinkd_telemetry, status_json_has_every_spec_field)
{
    const auto j = json::parse(render_status_json(sample()));
    // pass_spec.md, "qlinkd /status JSON": every field always present.
    for (const char* k : {"role", "sim_time", "link_state", "pat_state", "elevation_deg", "rx_power_dbm", "esn0_db", "frames",
                          "bits", "arq", "keys", "qkd", "user"}) {
        EXPECT_TRUE(j.contains(k)) << k;
    }
    for (const char* k : {"tx", "rx_ok", "rx_crc_fail", "rs_corrected", "ldpc_iterations", "decode_fail"}) {
        EXPECT_TRUE(j["frames"].contains(k)) << k;
    }
    EXPECT_TRUE(j["bits"].contains("rx_channel_errors_est"));
    for (const char* k : {"retransmissions", "in_flight", "bytes_delivered", "bytes_acked", "srtt_s"}) {
        EXPECT_TRUE(j["arq"].contains(k)) << k;
    }
    for (const char* k : {"active_key_id", "rotations", "keys_consumed", "pool_level"}) EXPECT_TRUE(j["keys"].contains(k)) << k;
    for (const char* k : {"qber", "secret_key_rate_bps"}) EXPECT_TRUE(j["qkd"].contains(k)) << k;
    for (const char* k : {"bytes_in", "bytes_out"}) EXPECT_TRUE(j["user"].contains(k)) << k;

    EXPECT_EQ(j["role"], "space");
    EXPECT_DOUBLE_EQ(j["sim_time"].get<double>(), 123.5);
    EXPECT_EQ(j["link_state"], "up");
    EXPECT_DOUBLE_EQ(j["elevation_deg"].get<double>(), 41.25);
    EXPECT_TRUE(j["esn0_db"].is_null());
    EXPECT_TRUE(j["frames"]["ldpc_iterations"].is_null());
    EXPECT_TRUE(j["qkd"]["qber"].is_null());
    EXPECT_EQ(j["frames"]["rx_ok"], 990);
    EXPECT_EQ(j["arq"]["bytes_delivered"], 1 << 20);
    EXPECT_DOUBLE_EQ(j["arq"]["srtt_s"].get<double>(), 0.375);
    EXPECT_EQ(j["keys"]["active_key_id"], 7);
    EXPECT_EQ(j["user"]["bytes_out"], 444);
}

TEST(qlinkd_telemetry, fresh_status_is_idle_with_nulls)
{
    const auto j = json::parse(render_status_json(link_status{}));
    EXPECT_EQ(j["link_state"], "idle");
    EXPECT_EQ(j["pat_state"], "n/a");
    EXPECT_TRUE(j["sim_time"].is_null());
    EXPECT_TRUE(j["frames"]["tx"].is_null());
    EXPECT_TRUE(j["keys"]["pool_level"].is_null());
    EXPECT_TRUE(j["arq"]["srtt_s"].is_null());  // no round trip measured yet
    EXPECT_EQ(j["user"]["bytes_in"], 0);
}

TEST(qlinkd_telemetry, role_strings_are_escaped)
{
    link_status s;
    s.role = "a\"b\\c\n";
    const auto j = json::parse(render_status_json(s));
    EXPECT_EQ(j["role"], "a\"b\\c\n");
}

TEST(qlinkd_telemetry, metrics_text_matches_snapshot)
{
    const auto s = sample();
    const auto text = render_metrics(s);
    EXPECT_EQ(prometheus_value(text, "qlinkd_frames_rx_ok_total"), 990.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_arq_retransmissions_total"), 12.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_arq_srtt_seconds"), 0.375);
    EXPECT_EQ(prometheus_value(text, "qlinkd_key_rotations_total"), 3.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_elevation_degrees"), 41.25);
    EXPECT_EQ(prometheus_value(text, "qlinkd_link_state{state=\"up\"}"), 1.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_link_state{state=\"down\"}"), 0.0);
    EXPECT_FALSE(prometheus_value(text, "qlinkd_esn0_db"));  // NaN: unknown
    EXPECT_NE(text.find("qlinkd_esn0_db NaN\n"), std::string::npos);
    EXPECT_EQ(text.find("\nqlinkd_ldpc_iterations_total "), std::string::npos);  // unknown counter: no sample
    // Every sample line is `name[{labels}] value` after its HELP/TYPE lines; every name is qlinkd_*.
    std::istringstream is(text);
    std::string line;
    int samples = 0;
    while (std::getline(is, line)) {
        if (line.rfind("# ", 0) == 0) {
            EXPECT_TRUE(line.rfind("# HELP qlinkd_", 0) == 0 || line.rfind("# TYPE qlinkd_", 0) == 0) << line;
            continue;
        }
        ++samples;
        EXPECT_EQ(line.rfind("qlinkd_", 0), 0u) << line;
        const auto sp = line.rfind(' ');
        ASSERT_NE(sp, std::string::npos) << line;
        const auto v = line.substr(sp + 1);
        EXPECT_TRUE(v == "NaN" || std::isfinite(std::stod(v))) << line;
    }
    EXPECT_GT(samples, 30);
}

TEST(qlinkd_telemetry, prometheus_value_reads_qkmd_exposition)
{
    const std::string qkmd = "# HELP qkmd_keys_stored x\n# TYPE qkmd_keys_stored gauge\n"
                             "qkmd_keys_stored{state=\"preactive\"} 3\nqkmd_keys_stored{state=\"active\"} 250\n"
                             "qkmd_qber 0.0215\nqkmd_secret_key_rate_bps NaN\nqkmd_keys_stored_total 9\n";
    EXPECT_EQ(prometheus_value(qkmd, "qkmd_keys_stored{state=\"active\"}"), 250.0);
    EXPECT_EQ(prometheus_value(qkmd, "qkmd_qber"), 0.0215);
    EXPECT_FALSE(prometheus_value(qkmd, "qkmd_secret_key_rate_bps"));
    EXPECT_FALSE(prometheus_value(qkmd, "qkmd_keys_stored"));  // prefix of other names only
    EXPECT_FALSE(prometheus_value("", "qkmd_qber"));
    EXPECT_FALSE(prometheus_value("qkmd_qber garbage\n", "qkmd_qber"));
}

TEST(qlinkd_telemetry, pat_counters_in_status_and_metrics)
{
    link_status off;
    const auto j0 = json::parse(render_status_json(off));
    ASSERT_TRUE(j0["pat"].is_object());
    EXPECT_TRUE(j0["pat"]["acquisitions"].is_null());
    EXPECT_TRUE(j0["pat"]["residual_error_urad"].is_null());
    EXPECT_EQ(prometheus_value(render_metrics(off), "qlinkd_pat_state{state=\"n/a\"}"), 1.0);
    EXPECT_FALSE(prometheus_value(render_metrics(off), "qlinkd_pat_acquisitions_total"));

    link_status s;
    s.pat_state = "COMMUNICATION";
    s.pat.acquisitions = 2;
    s.pat.reacquisitions = 1;
    s.pat.acquisition_timeouts = 0;
    s.pat.beacon_dropouts = 3;
    s.pat.transitions = 11;
    s.pat.time_to_acquire_s = 0.75;
    s.pat.residual_error_urad = 1.25;
    s.pat.communication_rms_urad = 0.5;
    s.pat.lag_s = 0.01;
    s.pat.skipped_s = 0.0;
    const auto j = json::parse(render_status_json(s));
    EXPECT_EQ(j["pat_state"], "COMMUNICATION");
    EXPECT_EQ(j["pat"]["acquisitions"], 2);
    EXPECT_EQ(j["pat"]["reacquisitions"], 1);
    EXPECT_EQ(j["pat"]["acquisition_timeouts"], 0);
    EXPECT_EQ(j["pat"]["beacon_dropouts"], 3);
    EXPECT_EQ(j["pat"]["transitions"], 11);
    EXPECT_DOUBLE_EQ(j["pat"]["time_to_acquire_s"].get<double>(), 0.75);
    EXPECT_DOUBLE_EQ(j["pat"]["residual_error_urad"].get<double>(), 1.25);
    EXPECT_DOUBLE_EQ(j["pat"]["communication_rms_urad"].get<double>(), 0.5);
    const auto text = render_metrics(s);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_state{state=\"COMMUNICATION\"}"), 1.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_state{state=\"n/a\"}"), 0.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_acquisitions_total"), 2.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_reacquisitions_total"), 1.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_transitions_total"), 11.0);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_time_to_acquire_seconds"), 0.75);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_residual_error_urad"), 1.25);
    EXPECT_EQ(prometheus_value(text, "qlinkd_pat_skipped_seconds"), 0.0);
}

TEST(qlinkd_telemetry, real_mount_and_key_source_in_metrics)
{
    // Without a real mount: no health state, mount counters absent; the key source is "primary".
    link_status off;
    const auto t0 = render_metrics(off);
    EXPECT_EQ(t0.find("qlinkd_mount_health"), std::string::npos);
    EXPECT_FALSE(prometheus_value(t0, "qlinkd_mount_failed_commands_total"));
    EXPECT_EQ(prometheus_value(t0, "qlinkd_key_source{state=\"primary\"}"), 1.0);
    EXPECT_EQ(json::parse(render_status_json(off))["keys"]["source"], "primary");

    link_status s;
    s.mount.health = "fault";
    s.mount.failed_commands = 4;
    s.mount.faults = 1;
    s.mount.commands = 146;
    s.mount.timeouts = 2;
    s.mount.az_deg = 187.5;
    s.mount.error_deg = 0.25;
    s.mount.pace = 1.0;
    s.keys.source = "fallback";
    s.keys.fallback_keys = 3;
    const auto t = render_metrics(s);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_health{state=\"fault\"}"), 1.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_health{state=\"ok\"}"), 0.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_failed_commands_total"), 4.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_commands_total"), 146.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_timeouts_total"), 2.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_azimuth_degrees"), 187.5);
    EXPECT_EQ(prometheus_value(t, "qlinkd_mount_error_degrees"), 0.25);
    EXPECT_EQ(prometheus_value(t, "qlinkd_key_source{state=\"fallback\"}"), 1.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_key_source{state=\"primary\"}"), 0.0);
    EXPECT_EQ(prometheus_value(t, "qlinkd_fallback_keys_total"), 3.0);
    const auto j = json::parse(render_status_json(s));
    EXPECT_EQ(j["keys"]["source"], "fallback");
    EXPECT_EQ(j["keys"]["fallback_keys"], 3);
}
