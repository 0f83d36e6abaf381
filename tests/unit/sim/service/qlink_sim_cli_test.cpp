// Tests the qlink-sim program end to end: pass reports, bad input messages and exit codes, serve + rotctl.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

struct run_result {
    int exit_code;
    std::string out;
};

run_result run(const std::string& args) {
    run_result r{-1, {}};
    FILE* p = popen((std::string(QLINK_SIM_EXE) + " " + args + " 2>&1").c_str(), "r");
    if (!p) return r;
    std::array<char, 512> buf{};
    while (fgets(buf.data(), buf.size(), p)) r.out += buf.data();
    const int st = pclose(p);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

std::string src(const std::string& rel) {
    const char* d = std::getenv("QLINK_SOURCE_DIR");
    return std::string(d ? d : ".") + "/" + rel;
}

std::string slurp(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::filesystem::path temp_dir(const std::string& name) {
    auto d = std::filesystem::temp_directory_path() / ("qlink_sim_cli_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(d);
    return d;
}

TEST(qlink_sim_cli, pass_writes_csv_json_svg) {
    const auto dir = temp_dir("pass");
    const auto r = run("pass --tle " + src("sim/data/qlinksat-1.tle") +
                       " --station 48.0785,11.2795,600 --start 2026-11-28T13:00:00Z --seed 5 --out " + dir.string());
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // The first pass after 13:00 (python3-sgp4/numpy oracle: AOS 20:23:38.34, max 14.26 deg).
    EXPECT_NE(r.out.find("AOS        2026-11-28T20:23:38"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("14.26 deg"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("warning"), std::string::npos);
    const std::string csv = slurp(dir / "pass.csv");
    std::size_t lines = 0;
    for (char c : csv) lines += c == '\n';
    EXPECT_EQ(lines, 1u + 593u);  // header + one row per second of the 592.3 s pass
    EXPECT_EQ(csv.rfind("time_utc,azimuth_deg,elevation_deg,range_km,range_rate_km_s,doppler_hz", 0), 0u);
    EXPECT_NE(csv.find("rx_power_dbm"), std::string::npos);
#if QLINK_SIM_HAS_QKD
    // The QKD columns are there and the QBER at the highest point is in the 0.5-5 % a
    // clear-sky LEO downlink gives (Liao et al. 2017 report 1-3 %).
    EXPECT_NE(csv.find("qkd_gain,qkd_qber"), std::string::npos);
    EXPECT_NE(slurp(dir / "pass.svg").find("QKD QBER (%)"), std::string::npos);
    {
        std::istringstream rows(csv);
        std::string header, row;
        std::getline(rows, header);
        std::size_t el_col = 0, qber_col = 0, col = 0;
        for (std::size_t b = 0, e; b <= header.size(); b = e + 1, ++col) {
            e = header.find(',', b);
            if (e == std::string::npos) e = header.size();
            const std::string name = header.substr(b, e - b);
            if (name == "elevation_deg") el_col = col;
            if (name == "qkd_qber") qber_col = col;
        }
        double best_el = -90, qber_at_best = -1;
        while (std::getline(rows, row)) {
            std::vector<std::string> f;
            for (std::size_t b = 0, e; b <= row.size(); b = e + 1) {
                e = row.find(',', b);
                if (e == std::string::npos) e = row.size();
                f.push_back(row.substr(b, e - b));
            }
            const double el = std::stod(f.at(el_col));
            if (el > best_el && !f.at(qber_col).empty()) best_el = el, qber_at_best = std::stod(f.at(qber_col));
        }
        EXPECT_GT(best_el, 14.0);
        EXPECT_GT(qber_at_best, 0.005);
        EXPECT_LT(qber_at_best, 0.05);
    }
#endif
    const std::string json = slurp(dir / "pass.json");
    EXPECT_NE(json.find("\"max_elevation_deg\": 14.26"), std::string::npos);
    EXPECT_NE(json.find("\"samples\": ["), std::string::npos);
    const std::string svg = slurp(dir / "pass.svg");
    EXPECT_NE(svg.find("<svg"), std::string::npos);
    EXPECT_NE(svg.find("received power (dBm)"), std::string::npos);
    EXPECT_NE(svg.find("elevation (deg)"), std::string::npos);
    // Same seed, same bytes.
    const auto dir2 = temp_dir("pass2");
    ASSERT_EQ(run("pass --tle " + src("sim/data/qlinksat-1.tle") +
                  " --station 48.0785,11.2795,600 --start 2026-11-28T13:00:00Z --seed 5 --out " + dir2.string())
                  .exit_code,
              0);
    EXPECT_EQ(slurp(dir2 / "pass.csv"), csv);
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(dir2);
}

TEST(qlink_sim_cli, old_tle_gets_a_warning) {
    const auto dir = temp_dir("old");
    const auto r = run("pass --tle " + src("sim/data/qlinksat-1.tle") +
                       " --station 48.0785,11.2795,600 --start 2027-03-01T00:00:00Z --out " + dir.string());
    EXPECT_NE(r.out.find("warning: the TLE epoch"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("days before the start time"), std::string::npos) << r.out;
    std::filesystem::remove_all(dir);
}

TEST(qlink_sim_cli, bad_input_gives_clear_message_and_exit_code) {
    const std::string tle = src("sim/data/qlinksat-1.tle");
    struct bad_case {
        std::string args, fragment;
    };
    const auto dir = temp_dir("bad");
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "bad.tle") << "SAT\n1 99901U 26001A   26332.50000000  .00001200  00000-0  58000-4 0  9997\n"
                                      "2 99901  97.4000 215.3000 0011000  90.0000 270.1500 15.21000000 50012\n";
    std::ofstream(dir / "image.tle") << "\x89PNG\r\n\x1a\n\x00\x00binary";
    const bad_case cases[] = {
        {"", "usage"},
        {"fly", "unknown command"},
        {"pass --station 1,2,3", "--tle FILE is required"},
        {"pass --tle " + tle, "--station LAT,LON,ALT is required"},
        {"pass --tle /nonexistent.tle --station 1,2,3", "/nonexistent.tle"},
        {"pass --tle " + (dir / "bad.tle").string() + " --station 1,2,3", "line 1, column 69 (checksum)"},
        {"pass --tle " + (dir / "image.tle").string() + " --station 1,2,3", "--tle"},
        {"pass --tle " + tle + " --station 95,2,3", "latitude"},
        {"pass --tle " + tle + " --station 45,2,99999", "[-500, 9000]"},
        {"pass --tle " + tle + " --station 45,2,3 --start tomorrow", "--start"},
        {"pass --tle " + tle + " --station 45,2,3 --seed -4", "--seed"},
        {"pass --tle " + tle + " --station 45,2,3 --mask 120", "[-5, 89]"},
        {"pass --tle " + tle + " --station 45,2,3 --step -1", "--step"},
        {"pass --tle " + tle + " --station 45,2,3 --bogus 1", "unknown option"},
        {"serve --rotctld-port 70000", "[0, 65535]"},
        {"serve --slew-rate -3", "--slew-rate"},
        {"serve --esn0-db 80", "--esn0-db"},
        {"serve --bit-rate -1", "--bit-rate"},
        {"serve --tle " + tle, "--tle and --station go together"},
        {"serve --tle " + tle + " --station 45,2,3 --time-scale 5000", "--time-scale"},
        {"serve --tle " + (dir / "bad.tle").string() + " --station 45,2,3", "checksum"},
        {"serve --start 2026-13-01", "--start"},
    };
    for (const auto& c : cases) {
        const auto r = run(c.args);
        EXPECT_NE(r.exit_code, 0) << c.args;
        EXPECT_NE(r.exit_code, -1) << c.args << " crashed";
        EXPECT_NE(r.out.find(c.fragment), std::string::npos) << c.args << "\n" << r.out;
        EXPECT_EQ(r.out.find("AddressSanitizer"), std::string::npos) << r.out;
    }
    std::filesystem::remove_all(dir);
}

TEST(qlink_sim_cli, serve_answers_real_rotctl) {
    FILE* p = popen((std::string(QLINK_SIM_EXE) + " serve --rotctld-port 0 --stream-port 0 --duration 4 --tle " +
                     src("sim/data/qlinksat-1.tle") +
                     " --station 48.0785,11.2795,600 --start 2026-11-28T21:50:00Z --time-scale 2 2>&1")
                        .c_str(),
                    "r");
    ASSERT_NE(p, nullptr);
    std::array<char, 512> buf{};
    ASSERT_NE(fgets(buf.data(), buf.size(), p), nullptr);
    const std::string first = buf.data();
    const auto colon = first.find("127.0.0.1:");
    ASSERT_NE(colon, std::string::npos) << first;
    const int port = std::atoi(first.c_str() + colon + 10);
    ASSERT_GT(port, 0);
    const std::string rotctl = "rotctl -m 2 -r 127.0.0.1:" + std::to_string(port) + " ";
    EXPECT_EQ(std::system((rotctl + "P 10 20 >/dev/null 2>&1").c_str()), 0);
    FILE* q = popen((rotctl + "p 2>&1").c_str(), "r");
    ASSERT_NE(q, nullptr);
    double az = -1, el = -1;
    EXPECT_EQ(std::fscanf(q, "%lf %lf", &az, &el), 2);
    pclose(q);
    // Moving from the initial (0, 90) toward (10, 20) at 6 deg/s in real time.
    EXPECT_GE(az, 0.0);
    EXPECT_LE(az, 10.0);
    EXPECT_GE(el, 20.0);
    EXPECT_LE(el, 90.0);
    std::string rest;
    while (fgets(buf.data(), buf.size(), p)) rest += buf.data();
    const int st = pclose(p);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << rest;
    EXPECT_NE(rest.find("stopped:"), std::string::npos) << rest;
    EXPECT_NE(rest.find("satellite next pass: AOS 2026-11-28T21:57:00"), std::string::npos) << rest;
}

}  // namespace
