// The qlink subcommands: demo (the full pass), chain-demo (chain over BPSK/AWGN), profiles, encode and decode (files); rf-rx/rf-tx in rf_cli.cpp.
#include "cli/cli.hpp"

#include "cli/options.hpp"
#include "cli/rf_cli.hpp"
#include "cli/stream_file.hpp"
#include "qlink/modem/coding_chain.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/sim/awgn.hpp"
#include "qlink/terminal/demo.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <csignal>
#include <charconv>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace qlink::terminal::cli {

namespace {

using modem::chain_decoder;
using modem::chain_encoder;
using modem::chain_frame_report;
using modem::chain_profile;

void print_top_help(std::ostream& out) {
    out << "usage: qlink <command> [options]\n\n"
           "commands:\n"
           "  profiles    list the built-in CCSDS coding profiles and their parameters\n"
           "  demo        a full quantum-secured satellite pass: simulator, qkmd x2, qlinkd x2 on loopback\n"
           "  chain-demo  run generated frames through the coding chain over BPSK/AWGN and report\n"
           "  encode      encode a payload file into a channel stream (hard bits or soft symbols)\n"
           "  decode      decode a channel stream back into the payload\n"
           "  rf-rx       receive a coded RF downlink on a radio (simulated, or a USRP) with Doppler from the TLE\n"
           "  rf-tx       send a file as a coded RF uplink burst, Doppler pre-compensated (simulated, or a USRP)\n\n"
           "`qlink <command> --help` describes a command's options.\n";
}

// ------------------------------------------------------------------ profiles

int cmd_profiles(std::span<const std::string_view> args, std::ostream& out) {
    static constexpr option_spec specs[] = {{"name", "NAME", "show one profile only"}};
    const auto p = parse("profiles", args, specs);
    if (p.help) {
        print_help(out, "profiles", "[--name NAME]", "Lists the built-in coding profiles.", specs);
        return exit_ok;
    }
    const std::string* only = p.get("name");
    if (only && !modem::find_profile(*only))
        throw usage_error{"qlink profiles: --name '" + *only + "' is not a profile (allowed: " + modem::profile_names() +
                          ")"};
    for (const auto& prof : modem::builtin_profiles()) {
        if (only && prof.name != *only) continue;
        out << prof.name << (prof.name == modem::default_profile_name ? "  (default)" : "") << '\n'
            << "  " << prof.description << '\n'
            << "  frame " << modem::frame_bytes(prof) << " B (data " << modem::frame_data_bytes(prof)
            << " B + " << (prof.fecf ? "CRC-16 FECF" : "no FECF") << "), ";
        // With LDPC the RS fields of the profile are ignored by the chain, so printing them would mislead.
        if (prof.ldpc) {
            const auto d = modem::ldpc_code_dims(*prof.ldpc);
            out << "LDPC " << modem::to_string(*prof.ldpc) << " k=" << d.k << " n=" << d.n;
        } else {
            out << "RS(255," << 255 - 2 * prof.rs_e << ") E=" << prof.rs_e << " I=" << prof.rs_interleave << " basis="
                << (prof.basis == modem::rs_basis::dual ? "dual" : "conventional")
                << " virtual_fill=" << prof.virtual_fill;
        }
        out << ", codeblock " << modem::codeblock_bytes(prof) << " B\n"
            << "  randomizer " << (prof.randomizer ? "on" : "off") << ", ASM 0x" << std::hex << std::uppercase
            << std::right << std::setfill('0') << std::setw(static_cast<int>((prof.marker.bits + 3) / 4))
            << prof.marker.pattern << std::setfill(' ') << std::dec << std::nouppercase << " (" << prof.marker.bits << " bits)"
            << ", inner code ";
        if (prof.inner_conv)
            out << "conv K=7 r=" << modem::to_string(prof.conv.rate) << " (" << modem::to_string(prof.conv.convention)
                << ")";
        else
            out << "none";
        out << ", interleaver " << modem::to_string(prof.interleaver.kind);
        if (prof.interleaver.kind == modem::interleaver_kind::convolutional)
            out << " B=" << prof.interleaver.branches << " M=" << prof.interleaver.unit << " (span "
                << modem::interleaver_span(prof.interleaver) << " symbols, delay "
                << modem::interleaver_pair_delay(prof.interleaver) << ")";
        else if (prof.interleaver.kind == modem::interleaver_kind::block)
            out << ' ' << prof.interleaver.rows << 'x' << prof.interleaver.cols;
        out << "\n  " << std::fixed << std::setprecision(1) << modem::channel_bits_per_frame(prof)
            << " channel bits/frame, information rate " << std::setprecision(4) << modem::information_rate(prof)
            << std::defaultfloat << "\n";
    }
    return exit_ok;
}

// ------------------------------------------------------------------ demo

constexpr std::string_view demo_default_profile = "optical-rs223i4-conv12-cil";
constexpr double demo_default_ebn0 = 3.5;

// A default Eb/N0 the profile decodes cleanly at: 3.5 dB is below C2's waterfall (~4 dB) and
// needlessly high for the rate-1/2 AR4JA codes (waterfall near 1.5 dB).
double demo_profile_ebn0(const chain_profile& prof) {
    if (!prof.ldpc) return demo_default_ebn0;
    if (*prof.ldpc == modem::ldpc_code_id::c2) return 4.5;
    const auto d = modem::ldpc_code_dims(*prof.ldpc);
    if (d.k != 0 && 2 * d.k == d.n) return 2.5;
    return demo_default_ebn0;
}

int cmd_chain_demo(std::span<const std::string_view> args, std::ostream& out) {
    static constexpr option_spec specs[] = {
        {"ebn0", "DB", "Eb/N0 per information bit in dB, [-2, 30] (default per profile: 3.5; ldpc-c2 4.5; AR4JA rate 1/2 2.5)"},
        {"frames", "N", "frames to send, [1, 100000] (default 200)"},
        {"seed", "S", "seed of payload and noise (default 1)"},
        {"profile", "NAME", "coding profile (default optical-rs223i4-conv12-cil)"},
    };
    const auto p = parse("chain-demo", args, specs);
    if (p.help) {
        print_help(out, "chain-demo", "[--ebn0 DB] [--frames N] [--seed S] [--profile NAME]",
                   "Sends generated frames through CRC -> RS -> randomizer -> ASM -> conv -> channel interleaver\n"
                   "(LDPC profiles: CRC -> LDPC -> randomizer -> ASM), BPSK over AWGN (soft decisions), and decodes\n"
                   "them back. Exit 0 when every frame is recovered.",
                   specs);
        return exit_ok;
    }
    const auto frames = static_cast<std::size_t>(integer_option("chain-demo", p, "frames", 200, 1, 100000));
    const std::uint64_t seed = integer_option("chain-demo", p, "seed", 1, 0, UINT64_MAX);
    const chain_profile& prof = profile_option("chain-demo", p, demo_default_profile);
    const bool ebn0_given = p.get("ebn0") != nullptr;
    const double ebn0 = number_option("chain-demo", p, "ebn0", demo_profile_ebn0(prof), -2.0, 30.0);

    chain_encoder enc(prof);
    chain_decoder::config dc;
    dc.profile = prof;
    chain_decoder dec(dc);
    sim::bpsk_awgn_channel::config cc;
    cc.ebn0_db = ebn0;
    cc.code_rate = modem::information_rate(prof);
    cc.seed = seed ^ 0x9E3779B97F4A7C15ull;
    sim::bpsk_awgn_channel channel(cc);

    const std::size_t db = enc.data_bytes();
    std::vector<std::uint8_t> sent(frames * db);
    std::mt19937_64 rng(seed);
    for (std::size_t f = 0; f < frames; ++f) {
        std::uint8_t* d = sent.data() + f * db;
        // A sequence number leads each payload so lost frames are counted exactly.
        for (int k = 0; k < 4; ++k) d[k] = static_cast<std::uint8_t>(f >> (24 - 8 * k));
        for (std::size_t k = 4; k < db; ++k) d[k] = static_cast<std::uint8_t>(rng());
    }

    std::vector<std::uint8_t> bits(std::max(enc.max_frame_bits(), enc.max_finish_bits()));
    std::vector<modem::llr_t> soft(bits.size());
    const std::size_t cap = dec.frames_per_push();
    std::vector<std::uint8_t> got(cap * db);
    std::vector<chain_frame_report> reps(cap);
    std::vector<std::uint8_t> recovered(frames, 0);
    std::uint64_t post_bit_errors = 0, delivered_bits = 0, channel_symbols = 0, failed = 0;
    std::size_t expect = 0;
    std::chrono::steady_clock::duration decode_time{};

    auto take = [&](const chain_decoder::result& r) {
        for (std::size_t f = 0; f < r.frames; ++f) {
            const std::uint8_t* d = got.data() + f * db;
            std::size_t seq = expect;
            if (reps[f].ok) seq = (std::size_t{d[0]} << 24) | (std::size_t{d[1]} << 16) | (std::size_t{d[2]} << 8) | d[3];
            if (!reps[f].ok) ++failed;
            if (seq >= frames) continue;
            expect = seq + 1;
            const std::uint8_t* s = sent.data() + seq * db;
            for (std::size_t k = 0; k < db; ++k) post_bit_errors += static_cast<unsigned>(std::popcount(static_cast<unsigned>(d[k] ^ s[k])));
            delivered_bits += 8 * db;
            if (reps[f].ok && std::equal(d, d + db, s)) recovered[seq] = 1;
        }
    };
    auto send = [&](std::size_t n) {
        channel.transmit(std::span<const std::uint8_t>(bits).first(n), std::span<std::int8_t>(soft).first(n));
        channel_symbols += n;
        std::size_t pos = 0;
        while (pos < n) {
            const auto t0 = std::chrono::steady_clock::now();
            const auto r = dec.push(std::span<const modem::llr_t>(soft).subspan(pos, n - pos), got, reps);
            decode_time += std::chrono::steady_clock::now() - t0;
            take(r);
            pos += r.consumed;
            if (!r.ok) break;
        }
    };
    for (std::size_t f = 0; f < frames; ++f) {
        const auto r = enc.encode(std::span<const std::uint8_t>(sent).subspan(f * db, db), bits);
        send(r.bits);
    }
    send(enc.finish(bits).bits);
    const auto t0 = std::chrono::steady_clock::now();
    const auto fr = dec.finish(got, reps);
    decode_time += std::chrono::steady_clock::now() - t0;
    take(fr);

    std::size_t ok_frames = 0;
    for (auto r : recovered) ok_frames += r;
    const auto& c = dec.counters();
    const double secs = std::chrono::duration<double>(decode_time).count();
    const auto hard = channel.totals().hard_errors;
    out << "qlink chain-demo: profile " << prof.name << ", Eb/N0 " << ebn0 << " dB ("
        << (ebn0_given ? "--ebn0" : "profile default") << ", Es/N0 " << std::fixed
        << std::setprecision(2) << channel.es_n0_db() << " dB), seed " << seed << std::defaultfloat << "\n"
        << "  frames sent            " << frames << " (" << db << " data bytes each)\n"
        << "  frames recovered       " << ok_frames << '/' << frames << "\n"
        << "  frames failed          " << failed
        << (prof.ldpc ? " (LDPC did not converge or CRC mismatch)" : " (RS uncorrectable or CRC mismatch)") << ", lost "
        << frames - ok_frames << "\n"
        << "  channel bit errors     " << hard << " of " << channel_symbols << " hard decisions (BER "
        << std::scientific << std::setprecision(2)
        << (channel_symbols ? static_cast<double>(hard) / static_cast<double>(channel_symbols) : 0.0) << ")\n"
        << std::defaultfloat << "  bit errors after decode " << post_bit_errors << " of " << delivered_bits
        << " delivered bits\n";
    if (prof.ldpc) {
        // Failed codeblocks count their full iteration limit in the mean.
        const std::uint64_t blocks = c.frames;
        out << "  LDPC failed frames     " << c.ldpc_failed_frames << " (parity checks unsatisfied)\n"
            << "  LDPC bits corrected    " << c.ldpc_corrected_bits << "\n"
            << "  LDPC mean iterations   " << std::fixed << std::setprecision(2)
            << (blocks ? static_cast<double>(c.ldpc_iterations) / static_cast<double>(blocks) : 0.0)
            << std::defaultfloat << " (over " << blocks << " codeblocks)\n";
    } else {
        out << "  RS symbols corrected   " << c.rs_corrected << " (codewords failed " << c.rs_failed_codewords << ")\n";
    }
    out << "  sync                   acquisitions " << c.sync.markers_found << ", losses " << c.sync.flywheel_to_search
        << ", flywheel " << c.sync.lock_to_flywheel << ", branch realignments " << c.realignments << "\n"
        << "  decode throughput      " << std::fixed << std::setprecision(1)
        << (secs > 0 ? static_cast<double>(channel_symbols) / secs / 1e6 : 0.0) << " Msym/s channel, "
        << (secs > 0 ? static_cast<double>(frames * db * 8) / secs / 1e6 : 0.0) << " Mbit/s data ("
        << std::setprecision(3) << secs << " s)" << std::defaultfloat << "\n";
    return ok_frames == frames ? exit_ok : exit_failed;
}

// ------------------------------------------------------------------ demo (the full pass)

// Ctrl-C / SIGTERM end the pass early; the demo then stops every daemon it started and still
// writes the report. A signal handler can only reach static storage.
std::atomic<bool> demo_stop{false};
extern "C" void demo_on_signal(int) { demo_stop.store(true); }

int cmd_demo(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    static constexpr option_spec specs[] = {
        {"tle", "FILE", "satellite TLE (default: the bundled sim/data/qlinksat-1.tle)"},
        {"station", "LAT,LON,ALT", "ground station, degrees and metres (default Delft 52.0116,4.3571,0)"},
        {"start", "ISO8601", "simulated start time, UTC (default: 30 s before AOS of the first pass after the TLE epoch)"},
        {"speed", "X", "simulated seconds per wall second, (0, 1000] (default 15)"},
        {"out", "DIR", "work dir: configs, PKI, logs, report (default ./qlink-demo-out)"},
        {"file", "FILE", "user file to send down (default: random bytes sized to the pass)"},
        {"file-bytes", "N", "size of the generated user file (default: a twentieth of what the pass can carry)"},
        {"bin-dir", "DIR", "where qlink-sim, qkmd, qlinkd are (default: next to qlink, then PATH)"},
        {"seed", "S", "seed of the simulator and the generated file (default 1)"},
        {"rotate-every", "S", "link key rotation period, simulated seconds, [1, 3600] (default 30)"},
        {"timeout", "S", "give up after this many wall seconds, [10, 86400] (default 600)"},
        {"downlink-bps", "R", "simulated downlink line rate, coded bit/s (default: the simulator's, 100000)"},
        {"downlink-profile", "NAME", "optical downlink modem profile, e.g. ldpc-c2 or ar4ja-4096-r12; list: qlink profiles (default ccsds-tm-rs223i4-conv12)"},
        {"qkd-block", "N", "detections per QKD post-processing block (default 1000000)"},
        {"cloud", "S", "a cloud of S simulated seconds once a third of the file arrived, [0, 600], 0: none (default 8)"},
        {"rf-return", "samples|bits", "RF return link through the station's RF chain at sample level (default) or the relay's per-bit BPSK channel"},
        {"progress", "on|off", "live progress line (default on)"},
        {"link-keys", "qkmd|test", "link keys from qkmd (QKD, default) or qlinkd's TEST-ONLY seeded keys"},
        {"key-source", "qkd|sim", "qkmd's keys from QKD post-processing (default) or its TEST-ONLY seeded source"},
    };
    const auto p = parse("demo", args, specs);
    if (p.help) {
        print_help(out, "demo", "[--tle FILE] [--station LAT,LON,ALT] [--start ISO8601] [--speed X] [--out DIR] [--file FILE]",
                   "Runs one satellite pass end to end on this machine: qlink-sim (orbit, optical downlink with\n"
                   "turbulence and clouds, RF return link, QKD photons), qkmd alice/bob (QKD post-processing into\n"
                   "key stores), qlinkd space/ground (bit-true modem chain, SDLS encryption with keys rotating\n"
                   "from the QKD pool, ARQ). A user file crosses the downlink and is checked by SHA-256; both key\n"
                   "stores are compared over ETSI GS QKD 014. Writes report.html, timeseries.csv/json into --out.\n"
                   "Exit 0 when the file arrived intact and the keys agree, 1 otherwise. Ctrl-C stops cleanly.",
                   specs);
        return exit_ok;
    }
    terminal::demo_config c;
    if (const auto* v = p.get("tle")) c.tle_file = *v;
    if (const auto* v = p.get("station")) c.station = *v;
    if (const auto* v = p.get("start")) c.start = *v;
    if (const auto* v = p.get("out")) c.out_dir = *v;
    if (const auto* v = p.get("file")) c.user_file = *v;
    if (const auto* v = p.get("bin-dir")) c.bin_dir = *v;
    c.speed = number_option("demo", p, "speed", c.speed, 1e-3, 1000.0);
    c.generated_bytes = integer_option("demo", p, "file-bytes", 0, 1, std::uint64_t{1} << 34);
    c.seed = integer_option("demo", p, "seed", 1, 0, UINT64_MAX);
    c.rotate_every_s = number_option("demo", p, "rotate-every", c.rotate_every_s, 1.0, 3600.0);
    c.downlink_bps = number_option("demo", p, "downlink-bps", 0.0, 1.0, 1e9);
    if (const auto* v = p.get("downlink-profile")) {
        if (modem::find_profile(*v) == nullptr)
            throw usage_error{"qlink demo: --downlink-profile '" + *v + "' is not a modem profile; allowed: " + modem::profile_names()};
        c.downlink_profile = *v;
    }
    c.qkd_block_detections = integer_option("demo", p, "qkd-block", c.qkd_block_detections, 100, 4000000);
    c.cloud_s = number_option("demo", p, "cloud", c.cloud_s, 0.0, 600.0);
    c.wall_timeout_s = number_option("demo", p, "timeout", c.wall_timeout_s, 10.0, 86400.0);
    c.rf_samples = choice_option("demo", p, "rf-return", "samples", {"samples", "bits"}) == "samples";
    if (const auto* v = p.get("progress")) {
        if (*v != "on" && *v != "off")
            throw usage_error{"qlink demo: --progress must be on or off, got '" + *v + "'"};
        c.progress = *v == "on";
    }
    if (const auto* v = p.get("link-keys")) {
        if (*v != "qkmd" && *v != "test")
            throw usage_error{"qlink demo: --link-keys must be qkmd or test, got '" + *v + "'"};
        c.link_keys_from_qkmd = *v == "qkmd";
    }
    if (const auto* v = p.get("key-source")) {
        if (*v != "qkd" && *v != "sim")
            throw usage_error{"qlink demo: --key-source must be qkd or sim, got '" + *v + "'"};
        c.keys_from_qkd = *v == "qkd";
    }
    demo_stop.store(false);
    struct sigaction sa {}, old_int{}, old_term{};
    sa.sa_handler = demo_on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int);
    ::sigaction(SIGTERM, &sa, &old_term);
    struct restore {
        struct sigaction i, t;
        ~restore() {
            ::sigaction(SIGINT, &i, nullptr);
            ::sigaction(SIGTERM, &t, nullptr);
        }
    } restore_handlers{old_int, old_term};
    terminal::demo_result r;
    try {
        r = terminal::run_demo(c, out, err, &demo_stop);
    } catch (const std::invalid_argument& e) {
        throw usage_error{"qlink demo: " + std::string(e.what())};
    }
    if (!r.ok) err << "qlink demo: " << r.failure << " (logs in " << (std::filesystem::absolute(c.out_dir) / "logs").string() << ")\n";
    return r.ok ? exit_ok : exit_failed;
}

// ------------------------------------------------------------------ encode / decode

int cmd_encode(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    static constexpr option_spec specs[] = {
        {"profile", "NAME", "coding profile (default ccsds-tm-rs223i4-conv12)"},
        {"in", "FILE", "payload to send (any bytes)"},
        {"out", "FILE", "channel stream to write"},
        {"format", "bits|f32|i8", "stream format (default bits), see docs/formats.md"},
    };
    const auto p = parse("encode", args, specs);
    if (p.help) {
        print_help(out, "encode", "--in payload.bin --out stream [--profile NAME] [--format bits|f32|i8]",
                   "Splits the payload into frames (6-byte header: sequence number and length; the last frame\n"
                   "zero-filled) and encodes them with the profile into a channel stream.",
                   specs);
        return exit_ok;
    }
    const chain_profile& prof = profile_option("encode", p, modem::default_profile_name);
    const std::string& in = required("encode", p, "in");
    const std::string& outp = required("encode", p, "out");
    const stream_format fmt = format_option("encode", p);
    std::string error;
    const auto summary = encode_file(prof, in, outp, fmt, error);
    if (!summary) {
        err << "qlink encode: " << error << '\n';
        return exit_failed;
    }
    out << "qlink encode: " << summary->payload_bytes << " payload bytes in " << summary->frames << " frames of "
        << modem::frame_data_bytes(prof) << " data bytes, " << summary->channel_bits << " channel bits ("
        << to_string(fmt) << ") -> " << outp << '\n';
    return exit_ok;
}

int cmd_decode(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    static constexpr option_spec specs[] = {
        {"profile", "NAME", "coding profile (default ccsds-tm-rs223i4-conv12)"},
        {"in", "FILE", "channel stream to read"},
        {"out", "FILE", "recovered payload to write"},
        {"format", "bits|f32|i8", "stream format (default bits), see docs/formats.md"},
    };
    const auto p = parse("decode", args, specs);
    if (p.help) {
        print_help(out, "decode", "--in stream --out payload.bin [--profile NAME] [--format bits|f32|i8]",
                   "Decodes a channel stream (may start mid-frame, contain noise, slips and inverted polarity)\n"
                   "and writes the payload of every frame recovered, in sequence order. Exit 0 when frames were\n"
                   "recovered with no gap between the first and the last, 1 otherwise.",
                   specs);
        return exit_ok;
    }
    const chain_profile& prof = profile_option("decode", p, modem::default_profile_name);
    const std::string& in = required("decode", p, "in");
    const std::string& outp = required("decode", p, "out");
    const stream_format fmt = format_option("decode", p);
    std::string error;
    const auto s = decode_file(prof, in, outp, fmt, error);
    if (!s) {
        err << "qlink decode: " << error << '\n';
        return exit_failed;
    }
    out << "qlink decode: " << s->payload_bytes << " payload bytes -> " << outp << "\n"
        << "  frames recovered     " << s->frames_ok;
    if (s->frames_ok) out << " (sequence " << s->first_seq << " .. " << s->last_seq << ")";
    out << "\n  frames missing       " << s->missing << " (gaps in the sequence)\n"
        << "  frames failed        " << s->frames_failed << " (RS uncorrectable or CRC mismatch)\n"
        << "  RS symbols corrected " << s->counters.rs_corrected << "\n"
        << "  sync                 acquisitions " << s->counters.sync.markers_found << ", losses "
        << s->counters.sync.flywheel_to_search << ", slips recovered " << s->counters.sync.flywheel_resync
        << ", inversions " << s->counters.sync.inversions << ", branch realignments " << s->counters.realignments
        << "\n  channel symbols      " << s->counters.channel_symbols << "\n";
    if (s->last_frame_short) out << "  last frame           length field beyond the frame: ignored\n";
    return s->frames_ok > 0 && s->missing == 0 ? exit_ok : exit_failed;
}

}  // namespace

int run(std::span<const std::string_view> args, std::ostream& out, std::ostream& err) {
    if (args.empty()) {
        print_top_help(err);
        return exit_usage;
    }
    const std::string_view cmd = args[0];
    const auto rest = args.subspan(1);
    try {
        if (cmd == "--help" || cmd == "-h" || cmd == "help") {
            print_top_help(out);
            return exit_ok;
        }
        if (cmd == "profiles") return cmd_profiles(rest, out);
        if (cmd == "demo") return cmd_demo(rest, out, err);
        if (cmd == "chain-demo") return cmd_chain_demo(rest, out);
        if (cmd == "encode") return cmd_encode(rest, out, err);
        if (cmd == "decode") return cmd_decode(rest, out, err);
        if (cmd == "rf-rx") return cmd_rf_rx(rest, out, err);
        if (cmd == "rf-tx") return cmd_rf_tx(rest, out, err);
        err << "qlink: unknown command '" << cmd << "' (allowed: profiles, demo, chain-demo, encode, decode, rf-rx, rf-tx)\n";
        return exit_usage;
    } catch (const usage_error& e) {
        err << e.message << '\n';
        return exit_usage;
    } catch (const std::exception& e) {
        err << "qlink " << cmd << ": " << e.what() << '\n';
        return exit_failed;
    }
}

}  // namespace qlink::terminal::cli
