// Tests the qlink tool: profiles, chain-demo, encode/decode round trips and damaged streams, option errors, rf-rx/rf-tx.
#include "cli/cli.hpp"
#include "cli/stream_file.hpp"
#include "qlink/sim/ground_station.hpp"
#include "qlink/sim/sgp4.hpp"
#include "qlink/sim/tle.hpp"
#include "qlink/terminal/demo.hpp"
#include "support/child_process.hpp"
#include "support/loopback.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace qlink::terminal::cli {
namespace {

namespace fs = std::filesystem;

struct outcome {
    int code;
    std::string out, err;
};

outcome qlink(std::vector<std::string> args) {
    std::vector<std::string_view> v(args.begin(), args.end());
    std::ostringstream o, e;
    const int c = run(v, o, e);
    return {c, o.str(), e.str()};
}

class cli_files : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::temp_directory_path() /
               ("qlink_cli_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(dir_);
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }
    std::string path(const std::string& name) const { return (dir_ / name).string(); }

    static void write(const std::string& p, const std::vector<std::uint8_t>& d) {
        std::ofstream f(p, std::ios::binary);
        f.write(reinterpret_cast<const char*>(d.data()), static_cast<std::streamsize>(d.size()));
    }
    static std::vector<std::uint8_t> read(const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    }
    static std::vector<std::uint8_t> payload(std::size_t n, std::uint64_t seed) {
        std::mt19937_64 rng(seed);
        std::vector<std::uint8_t> d(n);
        for (auto& b : d) b = static_cast<std::uint8_t>(rng());
        return d;
    }
    static std::vector<float> as_f32(const std::vector<std::uint8_t>& raw) {
        std::vector<float> v(raw.size() / 4);
        std::memcpy(v.data(), raw.data(), v.size() * 4);
        return v;
    }
    static std::vector<std::uint8_t> from_f32(const std::vector<float>& v) {
        std::vector<std::uint8_t> raw(v.size() * 4);
        std::memcpy(raw.data(), v.data(), raw.size());
        return raw;
    }

    fs::path dir_;
};

// Default profile: 890 data bytes per frame, 884 payload bytes after the header.
constexpr std::size_t per_frame = 884;

TEST(cli, profiles_lists_every_builtin_with_parameters) {
    const auto r = qlink({"profiles"});
    EXPECT_EQ(r.code, 0);
    for (const auto& p : modem::builtin_profiles()) EXPECT_NE(r.out.find(p.name), std::string::npos) << p.name;
    EXPECT_NE(r.out.find("RS(255,223) E=16 I=4"), std::string::npos);
    EXPECT_NE(r.out.find("r=3/4"), std::string::npos);
    EXPECT_NE(r.out.find("ASM 0x1ACFFC1D"), std::string::npos);
    EXPECT_EQ(qlink({"profiles", "--name", "nope"}).code, 2);
}

TEST(cli, profiles_describe_ldpc_codes_not_rs_fields) {
    const auto r = qlink({"profiles"});
    ASSERT_EQ(r.code, 0);
    // Each LDPC profile's block names its code with k and n from the modem's own table, and no RS line.
    std::size_t ldpc_profiles = 0;
    for (const auto& p : modem::builtin_profiles()) {
        const auto at = r.out.find(p.name + (p.name == modem::default_profile_name ? "  (default)\n" : "\n"));
        ASSERT_NE(at, std::string::npos) << p.name;
        const auto next = r.out.find("\n  ", r.out.find("channel bits/frame", at));
        const std::string block = r.out.substr(at, next == std::string::npos ? std::string::npos : next - at);
        if (!p.ldpc) {
            EXPECT_NE(block.find("RS(255,"), std::string::npos) << block;
            EXPECT_EQ(block.find("LDPC"), std::string::npos) << block;
            continue;
        }
        ++ldpc_profiles;
        const auto d = modem::ldpc_code_dims(*p.ldpc);
        const std::string want = "LDPC " + std::string(modem::to_string(*p.ldpc)) + " k=" + std::to_string(d.k) +
                                 " n=" + std::to_string(d.n);
        EXPECT_NE(block.find(want), std::string::npos) << want << "\n" << block;
        EXPECT_EQ(block.find("RS(255,"), std::string::npos) << block;
        EXPECT_EQ(block.find(" E="), std::string::npos) << block;
        EXPECT_EQ(block.find(" I="), std::string::npos) << block;
    }
    EXPECT_EQ(ldpc_profiles, 5u);
    // Fixed numbers from CCSDS 131.0-B section 7, independent of the table above.
    const auto c2 = qlink({"profiles", "--name", "ldpc-c2"});
    EXPECT_EQ(c2.code, 0);
    EXPECT_NE(c2.out.find("frame 892 B"), std::string::npos) << c2.out;
    EXPECT_NE(c2.out.find("k=7136 n=8160"), std::string::npos) << c2.out;
    EXPECT_NE(c2.out.find("codeblock 1020 B"), std::string::npos) << c2.out;
    EXPECT_NE(c2.out.find("ASM 0x034776C7272895B0 (64 bits)"), std::string::npos) << c2.out;  // 131.0-B 9.3.4
    EXPECT_NE(qlink({"profiles", "--name", "ar4ja-1024-r12"}).out.find("k=1024 n=2048"), std::string::npos);
    EXPECT_NE(qlink({"profiles", "--name", "ar4ja-16384-r45"}).out.find("k=16384 n=20480"), std::string::npos);
}

TEST(cli, chain_demo_ldpc_c2_at_its_default_ebn0_recovers_every_frame) {
    const auto r = qlink({"chain-demo", "--profile", "ldpc-c2", "--frames", "20"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Eb/N0 4.5 dB (profile default"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("frames recovered       20/20"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("frames failed          0 "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("bit errors after decode 0 of"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("LDPC failed frames     0 "), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("RS symbols corrected"), std::string::npos) << r.out;
    // At 4.5 dB the channel flips bits (about 1e-2 at this rate), so the decoder must have corrected
    // some and needed more than one iteration on average.
    const auto cb = r.out.find("LDPC bits corrected    ");
    ASSERT_NE(cb, std::string::npos) << r.out;
    EXPECT_GT(std::stoull(r.out.substr(cb + 23)), 0u) << r.out;
    const auto it = r.out.find("LDPC mean iterations   ");
    ASSERT_NE(it, std::string::npos) << r.out;
    const double iters = std::stod(r.out.substr(it + 23));
    EXPECT_GT(iters, 1.0) << r.out;
    EXPECT_LE(iters, 25.0) << r.out;
}

TEST(cli, chain_demo_ebn0_default_follows_the_profile_and_the_option_wins) {
    // Rate-1/2 AR4JA defaults to 2.5 dB; an explicit --ebn0 is used and reported as given.
    auto r = qlink({"chain-demo", "--profile", "ar4ja-1024-r12", "--frames", "10"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Eb/N0 2.5 dB (profile default"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("frames recovered       10/10"), std::string::npos) << r.out;
    r = qlink({"chain-demo", "--profile", "ldpc-c2", "--frames", "3", "--ebn0", "6"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Eb/N0 6 dB (--ebn0"), std::string::npos) << r.out;
    // Far below C2's threshold the LDPC failures are counted and the exit says so.
    r = qlink({"chain-demo", "--profile", "ldpc-c2", "--frames", "3", "--ebn0", "1"});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(r.out.find("LDPC failed frames     0 "), std::string::npos) << r.out;
    // RS profiles keep 3.5 dB.
    r = qlink({"chain-demo", "--profile", "ccsds-tm-rs223i4-conv12", "--frames", "2"});
    EXPECT_NE(r.out.find("Eb/N0 3.5 dB (profile default"), std::string::npos) << r.out;
}

TEST(cli, chain_demo_recovers_every_frame_and_reports) {
    const auto r = qlink({"chain-demo", "--frames", "20", "--seed", "3"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("frames recovered       20/20"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("RS symbols corrected"), std::string::npos);
    EXPECT_NE(r.out.find("Mbit/s"), std::string::npos);
    EXPECT_NE(r.out.find("bit errors after decode 0 of"), std::string::npos) << r.out;
}

TEST(cli, chain_demo_fails_with_exit_1_when_the_channel_is_too_bad) {
    const auto r = qlink({"chain-demo", "--frames", "5", "--ebn0", "-1", "--profile", "ccsds-tm-rs223i4-conv12"});
    EXPECT_EQ(r.code, 1) << r.out;
    EXPECT_EQ(r.out.find("frames recovered       5/5"), std::string::npos);
}

TEST(cli, every_subcommand_has_help) {
    for (const char* c : {"profiles", "demo", "chain-demo", "encode", "decode"}) {
        const auto r = qlink({c, "--help"});
        EXPECT_EQ(r.code, 0) << c;
        EXPECT_NE(r.out.find("usage: qlink"), std::string::npos) << c;
        EXPECT_NE(r.out.find("--help"), std::string::npos) << c;
    }
    EXPECT_EQ(qlink({"--help"}).code, 0);
}

TEST(cli, bad_options_give_one_clear_line_and_exit_2) {
    struct bad {
        std::vector<std::string> args;
        std::string must_name;
    };
    const std::vector<bad> cases = {
        {{"chain-demo", "--ebn0", "loud"}, "--ebn0"},
        {{"chain-demo", "--frames", "0"}, "--frames"},
        {{"chain-demo", "--frobnicate", "1"}, "--frobnicate"},
        {{"chain-demo", "--profile", "nope"}, "ccsds-tm-rs223i4-conv12"},
        {{"encode", "--in", "a", "--out", "b", "--format", "wav"}, "bits, f32, i8"},
        {{"encode", "--out", "b"}, "--in"},
        {{"decode", "--in", "a"}, "--out"},
        {{"decode", "stray"}, "stray"},
        {{"chain-demo", "--seed"}, "--seed"},
        {{"teleport"}, "profiles, demo, chain-demo, encode, decode"},
        {{}, "usage"},
    };
    for (const auto& c : cases) {
        const auto r = qlink(c.args);
        EXPECT_EQ(r.code, 2) << r.err;
        EXPECT_NE(r.err.find(c.must_name), std::string::npos) << r.err;
        if (!c.args.empty()) {
            EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
        }
    }
}

TEST_F(cli_files, round_trip_every_format_with_partial_last_frame) {
    const auto data = payload(5 * per_frame + 123, 1);
    write(path("p.bin"), data);
    for (const char* fmt : {"bits", "f32", "i8"}) {
        auto r = qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", fmt});
        ASSERT_EQ(r.code, 0) << r.err;
        EXPECT_NE(r.out.find("in 6 frames"), std::string::npos) << r.out;
        r = qlink({"decode", "--in", path("s"), "--out", path("o.bin"), "--format", fmt});
        EXPECT_EQ(r.code, 0) << r.out << r.err;
        EXPECT_EQ(read(path("o.bin")), data) << fmt;
    }
    // Empty payload: one frame saying "0 bytes".
    write(path("empty"), {});
    ASSERT_EQ(qlink({"encode", "--in", path("empty"), "--out", path("s")}).code, 0);
    ASSERT_EQ(qlink({"decode", "--in", path("s"), "--out", path("o.bin")}).code, 0);
    EXPECT_TRUE(read(path("o.bin")).empty());
}

TEST_F(cli_files, stream_cut_mid_frame_decodes_the_rest) {
    const auto data = payload(8 * per_frame, 2);
    write(path("p.bin"), data);
    ASSERT_EQ(qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", "i8"}).code, 0);
    auto s = read(path("s"));
    s.erase(s.begin(), s.begin() + 9001);  // into frame 0, odd: symbol pairs split
    write(path("cut"), s);
    const auto r = qlink({"decode", "--in", path("cut"), "--out", path("o.bin"), "--format", "i8"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    // Frame 0 is cut; while the wrong symbol-pair alignment is tried, frames 1-2 may pass.
    const auto at = r.out.find("(sequence ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::size_t first = std::stoul(r.out.substr(at + 10));
    EXPECT_GE(first, 1u);
    EXPECT_LE(first, 3u);  // measured: 3 (one wrong alignment trial, then a Viterbi warm-up)
    EXPECT_NE(r.out.find(" .. 7)"), std::string::npos) << r.out;
    const auto o = read(path("o.bin"));
    EXPECT_EQ(o, std::vector<std::uint8_t>(data.begin() + static_cast<std::ptrdiff_t>(first * per_frame), data.end()));
}

TEST_F(cli_files, noisy_soft_stream_decodes_exactly) {
    const auto data = payload(6 * per_frame + 10, 3);
    write(path("p.bin"), data);
    ASSERT_EQ(qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", "f32"}).code, 0);
    auto v = as_f32(read(path("s")));
    // Es/N0 = 0 dB per coded symbol (hard BER ~8%), at amplitude 0.3: the decoder rescales.
    std::mt19937_64 rng(4);
    std::normal_distribution<float> noise(0.0f, std::sqrt(0.5f));
    std::size_t flipped = 0;
    for (auto& x : v) {
        const float y = x + noise(rng);
        flipped += (y < 0) != (x < 0);
        x = 0.3f * y;
    }
    EXPECT_GT(flipped, v.size() / 20);
    write(path("noisy"), from_f32(v));
    const auto r = qlink({"decode", "--in", path("noisy"), "--out", path("o.bin"), "--format", "f32"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(read(path("o.bin")), data);
    EXPECT_EQ(r.out.find("RS symbols corrected 0\n"), std::string::npos) << r.out;
}

TEST_F(cli_files, inverted_streams_decode) {
    const auto data = payload(4 * per_frame + 1, 5);
    write(path("p.bin"), data);
    ASSERT_EQ(qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", "bits"}).code, 0);
    auto b = read(path("s"));
    for (auto& x : b) x = static_cast<std::uint8_t>(~x);
    write(path("inv"), b);
    auto r = qlink({"decode", "--in", path("inv"), "--out", path("o.bin")});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(read(path("o.bin")), data);
    EXPECT_NE(r.out.find("inversions 1"), std::string::npos) << r.out;

    ASSERT_EQ(qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", "f32"}).code, 0);
    auto v = as_f32(read(path("s")));
    for (auto& x : v) x = -x;
    write(path("inv"), from_f32(v));
    r = qlink({"decode", "--in", path("inv"), "--out", path("o.bin"), "--format", "f32"});
    EXPECT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_EQ(read(path("o.bin")), data);
}

TEST_F(cli_files, inserted_and_deleted_bits_are_survived) {
    const auto data = payload(12 * per_frame, 6);
    write(path("p.bin"), data);
    ASSERT_EQ(qlink({"encode", "--in", path("p.bin"), "--out", path("s"), "--format", "i8"}).code, 0);
    auto s = read(path("s"));
    const std::size_t fl = 16448;  // channel bits per frame of the default profile
    s.erase(s.begin() + static_cast<std::ptrdiff_t>(3 * fl + 5000));                      // delete one bit
    s.insert(s.begin() + static_cast<std::ptrdiff_t>(7 * fl + 9000), {127, 127});          // insert two
    write(path("slip"), s);
    const auto r = qlink({"decode", "--in", path("slip"), "--out", path("o.bin"), "--format", "i8"});
    EXPECT_EQ(r.code, 1) << r.out;  // frames are missing: says so
    const auto o = read(path("o.bin"));
    // Whatever came out is whole frames of the payload, in order, and most of them.
    EXPECT_EQ(o.size() % per_frame, 0u);
    EXPECT_GE(o.size() / per_frame, 6u) << r.out;  // a slip costs about three frames
    std::size_t j = 0;
    for (std::size_t f = 0; f < o.size() / per_frame; ++f) {
        while (j < 12 && !std::equal(o.begin() + static_cast<std::ptrdiff_t>(f * per_frame),
                                     o.begin() + static_cast<std::ptrdiff_t>((f + 1) * per_frame),
                                     data.begin() + static_cast<std::ptrdiff_t>(j * per_frame)))
            ++j;
        ASSERT_LT(j, 12u) << "output frame " << f << " is not a payload frame";
        ++j;
    }
    EXPECT_NE(r.out.find("frames missing       "), std::string::npos);
    EXPECT_EQ(r.out.find("frames missing       0 "), std::string::npos) << r.out;
    EXPECT_EQ(o.size() / per_frame + std::stoul(r.out.substr(r.out.find("frames missing") + 21)), 12u) << r.out;
}

TEST_F(cli_files, garbage_and_missing_files_are_errors_not_crashes) {
    std::vector<std::uint8_t> junk(20000);
    std::mt19937 rng(7);
    for (auto& j : junk) j = static_cast<std::uint8_t>(rng());
    write(path("junk"), junk);
    for (const char* fmt : {"bits", "f32", "i8"}) {
        const auto r = qlink({"decode", "--in", path("junk"), "--out", path("o.bin"), "--format", fmt});
        EXPECT_EQ(r.code, 1) << fmt;
        EXPECT_NE(r.out.find("frames recovered     0"), std::string::npos) << r.out;
    }
    write(path("odd"), {1, 2, 3});
    auto r = qlink({"decode", "--in", path("odd"), "--out", path("o.bin"), "--format", "f32"});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("float32"), std::string::npos) << r.err;
    r = qlink({"decode", "--in", path("does-not-exist"), "--out", path("o.bin")});
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos);
    r = qlink({"encode", "--in", path("junk"), "--out", path("no/such/dir/s")});
    EXPECT_EQ(r.code, 1);
}

// rf-rx and rf-tx on the sim radio: the station code a USRP user runs, against the simulated
// satellite over the pass's RF channel (Doppler up to ~190 kHz at AOS, phase noise, AWGN).

TEST_F(cli_files, rf_rx_receives_the_satellites_file_with_doppler_removed) {
    const auto sent = payload(20000, 8);
    write(path("sat.bin"), sent);
    const auto r = qlink({"rf-rx", "--sim-file", path("sat.bin"), "--out", path("got.bin"), "--es-n0", "5"});
    EXPECT_EQ(r.code, exit_ok) << r.out << r.err;
    EXPECT_EQ(read(path("got.bin")), sent);
    EXPECT_NE(r.out.find("received intact"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Doppler removed     193"), std::string::npos) << r.out;  // AOS of the default pass
    // Without the Doppler from the TLE the 194 kHz carrier is far outside the loop: nothing arrives.
    const auto off = qlink({"rf-rx", "--sim-file", path("sat.bin"), "--out", path("off.bin"), "--doppler", "off",
                            "--duration", "2"});
    EXPECT_EQ(off.code, exit_failed) << off.out << off.err;
    EXPECT_TRUE(read(path("off.bin")).empty());
    EXPECT_NE(off.out.find("NOT received intact"), std::string::npos) << off.out;
}

TEST_F(cli_files, rf_rx_qpsk_through_closest_approach) {
    const auto sent = payload(30000, 9);
    write(path("sat.bin"), sent);
    // Closest approach (69.7 deg near 22:02:00 UTC): the Doppler crosses zero at its largest rate.
    const auto r = qlink({"rf-rx", "--modulation", "qpsk", "--es-n0", "10", "--sim-file", path("sat.bin"), "--out",
                          path("got.bin"), "--start", "2026-11-28T22:01:59Z"});
    EXPECT_EQ(r.code, exit_ok) << r.out << r.err;
    EXPECT_EQ(read(path("got.bin")), sent);
}

TEST_F(cli_files, rf_tx_precompensated_uplink_reaches_the_satellite_intact) {
    const auto sent = payload(15000, 10);
    write(path("up.bin"), sent);
    const auto r = qlink({"rf-tx", "--in", path("up.bin"), "--es-n0", "5"});
    EXPECT_EQ(r.code, exit_ok) << r.out << r.err;
    EXPECT_NE(r.out.find("file received intact"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("Doppler pre-comp.   -170"), std::string::npos) << r.out;
    // The satellite does no Doppler correction of its own: without pre-compensation it gets nothing.
    const auto off = qlink({"rf-tx", "--in", path("up.bin"), "--doppler", "off"});
    EXPECT_EQ(off.code, exit_failed) << off.out << off.err;
    EXPECT_NE(off.out.find("decoded 0 of"), std::string::npos) << off.out;
}

TEST_F(cli_files, rf_rx_points_a_real_rotctld_through_the_pass) {
    const unsigned short port = qlink::test::free_tcp_port();
    qlink::test::child_process rotctld({"rotctld", "-m", "1", "-T", "127.0.0.1", "-t", std::to_string(port)});
    ASSERT_TRUE(qlink::test::wait_for_tcp(port)) << "rotctld did not start (is libhamlib-utils installed?)";
    const auto sent = payload(20000, 12);
    write(path("sat.bin"), sent);
    // Near the top of the default pass (69.7 deg near 22:02:00 UTC): the antenna points high.
    const auto r = qlink({"rf-rx", "--sim-file", path("sat.bin"), "--out", path("got.bin"), "--start",
                          "2026-11-28T22:01:50Z", "--mount", "rotctld", "--mount-address",
                          "127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(r.code, exit_ok) << r.out << r.err;
    EXPECT_EQ(read(path("got.bin")), sent);
    // About 10 commands per simulated second, every one accepted by rotctld.
    const auto at = r.out.find("  mount               rotctld 127.0.0.1:" + std::to_string(port) + ": ");
    ASSERT_NE(at, std::string::npos) << r.out;
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    unsigned ok = 0;
    ASSERT_EQ(std::sscanf(line.c_str() + line.find(": ") + 2, "%u commands ok", &ok), 1) << line;
    EXPECT_GE(ok, 8u) << line;
    EXPECT_NE(line.find(", 0 timeouts, 0 disconnects, 0 rejected, state tracking"), std::string::npos) << line;
    float az = 0, el = 0;
    ASSERT_EQ(std::sscanf(line.c_str() + line.find("last az"), "last az %f el %f", &az, &el), 2) << line;
    // The last command is the ephemeris direction ~1.4 s after the start (SGP4 from the bundled TLE over Delft).
    const auto tle_path = find_bundled_tle();
    ASSERT_TRUE(tle_path);
    const auto tle_bytes = read(tle_path->string());
    const auto tle = sim::parse_tle_text(std::string(tle_bytes.begin(), tle_bytes.end()));
    ASSERT_TRUE(tle.ok() && !tle.sets.empty());
    const auto sat = sim::create_sgp4_propagator(tle.sets.front());
    const sim::ground_station delft({"delft", 52.0116, 4.3571, 0.0});
    const auto want = delft.observe(*sat, *sim::parse_iso8601_utc("2026-11-28T22:01:51Z"));
    EXPECT_NEAR(el, want.look.elevation_deg, 1.0) << line;
    EXPECT_NEAR(az, want.look.azimuth_deg, 5.0) << line;  // near zenith the azimuth moves ~2 deg/s
    EXPECT_GT(el, 60.0f) << line;

    // rotctld gone: the reception goes on, the track reports the failures (and no command got through).
    rotctld.kill(SIGKILL);
    const auto gone = qlink({"rf-rx", "--sim-file", path("sat.bin"), "--out", path("got2.bin"), "--mount", "rotctld",
                             "--mount-address", "127.0.0.1:" + std::to_string(port)});
    EXPECT_EQ(gone.code, exit_ok) << gone.out << gone.err;
    EXPECT_EQ(read(path("got2.bin")), sent);
    EXPECT_NE(gone.out.find(": 0 commands ok"), std::string::npos) << gone.out;
    EXPECT_NE(gone.out.find("state fault"), std::string::npos) << gone.out;
}

TEST_F(cli_files, rf_commands_on_a_usrp_that_is_not_there_fail_with_one_clear_line) {
    write(path("up.bin"), payload(100, 1));
    for (const auto& cmd : std::vector<std::vector<std::string>>{
             {"rf-rx", "--radio", "uhd", "--args", "type=b200,serial=QLINKTEST0"},
             {"rf-tx", "--radio", "uhd", "--args", "type=b200,serial=QLINKTEST0", "--in", path("up.bin")}}) {
        const auto r = qlink(cmd);
        EXPECT_EQ(r.code, exit_failed) << r.out << r.err;
        // With UHD: the device search finds nothing; a build without UHD says how to get it.
        const bool no_device = r.err.find("no USRP found (args \"type=b200,serial=QLINKTEST0\")") != std::string::npos;
        const bool no_uhd = r.err.find("built without UHD") != std::string::npos;
        EXPECT_TRUE(no_device || no_uhd) << r.err;
        EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    }
}

TEST_F(cli_files, rf_option_errors_name_the_option) {
    auto r = qlink({"rf-rx", "--radio", "usrp"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--radio must be one of sim, uhd, got 'usrp'"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--radio", "uhd", "--es-n0", "3"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--es-n0 is for --radio sim"), std::string::npos) << r.err;
    r = qlink({"rf-tx", "--args", "type=b200", "--in", "x"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--args is for --radio uhd"), std::string::npos) << r.err;
    r = qlink({"rf-tx"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--in is required"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--rate", "5"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--rate must be a number in"), std::string::npos) << r.err;
    r = qlink({"rf-tx", "--in", path("missing.bin")});
    EXPECT_EQ(r.code, exit_failed);
    EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--mount-address", "127.0.0.1:4533"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("--mount-address is for --mount rotctld"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--mount", "rotctld", "--mount-address", "localhost"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("must be HOST:PORT"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--mount", "sim", "--mount-limits", "0,360,0"});
    EXPECT_EQ(r.code, exit_usage);
    EXPECT_NE(r.err.find("must be AZ0,AZ1,EL0,EL1"), std::string::npos) << r.err;
    r = qlink({"rf-rx", "--help"});
    EXPECT_EQ(r.code, exit_ok);
    EXPECT_NE(r.out.find("--radio sim|uhd"), std::string::npos);
}

}  // namespace
}  // namespace qlink::terminal::cli
