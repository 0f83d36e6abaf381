// Tests terminal/src/daemon/fallback_keys.cpp against the openssl command line (X25519 derive, HKDF),
// the [security] fallback configuration errors, the persisted counter across restarts, two link
// engines whose QKD keys run out mid-transfer and continue on fallback keys, then return to QKD keys,
// and two qlinkd processes (test relay) whose keys run out while a file crosses.
#include "qlink/keymgmt/inject.hpp"
#include "qlink/modem/key_source.hpp"
#include "qlink/terminal/fallback_keys.hpp"
#include "qlink/terminal/link_engine.hpp"
#include "qlink/terminal/link_keys.hpp"
#include "qlink/terminal/qlinkd_config.hpp"

#include "support/loopback.hpp"
#include "support/temp_dir.hpp"
#include "unit/keymgmt/store/test_keys.hpp"
#include "unit/terminal/daemon/clean_relay.hpp"
#include "unit/terminal/daemon/qlinkd_proc.hpp"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace qlink;
using namespace qlink::terminal;
namespace fs = std::filesystem;

namespace {

using key = std::array<std::uint8_t, modem::link_key_length>;

using qlink::test::temp_dir;

// Runs a shell command; its stdout, and the exit status in *status.
std::string sh(const std::string& cmd, int* status = nullptr)
{
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = ::pclose(p);
    if (status != nullptr) *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

// Lower-case hex of a command's binary stdout.
std::string sh_hex(const std::string& cmd) { return sh(cmd + " | od -An -tx1 -v | tr -d ' \\n'"); }

using keymgmt::test::to_hex;

// Two X25519 key pairs made by openssl: g (ground) and s (space), PEM private and public files.
struct key_files {
    temp_dir dir;
    std::string g, g_pub, s, s_pub;
    key_files()
    {
        g = (dir.path / "ground.pem").string();
        g_pub = (dir.path / "ground_pub.pem").string();
        s = (dir.path / "space.pem").string();
        s_pub = (dir.path / "space_pub.pem").string();
        for (const auto& [priv, pub] : {std::pair{g, g_pub}, std::pair{s, s_pub}}) {
            int st = -1;
            sh("openssl genpkey -algorithm X25519 -out " + priv + " 2>&1 && openssl pkey -in " + priv + " -pubout -out " +
                   pub + " 2>&1",
               &st);
            EXPECT_EQ(st, 0) << "openssl genpkey/pkey failed";
            ::chmod(priv.c_str(), 0600);
        }
    }
    fallback_key_source::config cfg(link_role role, const std::string& state) const
    {
        fallback_key_source::config c;
        c.private_key_pem = role == link_role::ground ? g : s;
        c.peer_public_key_pem = role == link_role::ground ? s_pub : g_pub;
        c.state_file = state;
        c.role = role;
        c.spacecraft_id = 0xAB;
        c.vcid = 1;
        return c;
    }
    std::string state(const std::string& name) const { return (dir.path / name).string(); }
};

TEST(fallback_keys, x25519_shared_secret_equals_openssl_pkeyutl_derive)
{
    key_files f;
    const std::string ref = sh_hex("openssl pkeyutl -derive -inkey " + f.g + " -peerkey " + f.s_pub);
    ASSERT_EQ(ref.size(), 64u) << "openssl pkeyutl -derive gave no 32-byte secret";
    const auto ours = x25519_shared_from_pem(f.g, f.s_pub);
    EXPECT_EQ(to_hex(ours.span()), ref);
    // Static-static: the far end gets the same secret from its own private key.
    const auto theirs = x25519_shared_from_pem(f.s, f.g_pub);
    EXPECT_EQ(to_hex(theirs.span()), ref);
    // The public key we read from the private file is the one openssl exports.
    const auto pub = x25519_public_from_private_pem(f.g);
    EXPECT_EQ(to_hex(pub), sh_hex("openssl pkey -pubin -in " + f.g_pub + " -outform DER | tail -c 32"));
}

TEST(fallback_keys, link_key_equals_openssl_hkdf_of_the_documented_inputs)
{
    key_files f;
    fallback_key_source g(f.cfg(link_role::ground, f.state("g.state")));
    key k{};
    const auto id = g.next_key(k);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(*id, 0xFFF00000u);  // ground direction, index 0

    // The inputs written out here, independently of fallback_info(), from openssl's own outputs.
    const std::string shared = sh_hex("openssl pkeyutl -derive -inkey " + f.s + " -peerkey " + f.g_pub);
    const std::string g_raw = sh_hex("openssl pkey -pubin -in " + f.g_pub + " -outform DER | tail -c 32");
    const std::string s_raw = sh_hex("openssl pkey -pubin -in " + f.s_pub + " -outform DER | tail -c 32");
    const std::string label = "qlink fallback link key v1";
    std::string info = to_hex({reinterpret_cast<const std::uint8_t*>(label.data()), label.size()});
    info += "00" "00ab" "01" "47" "fff00000" + g_raw + s_raw;  // 0x00, SCID, VCID, 'G', key ID, keys
    const std::string salt = "qlink fallback salt v1";
    const std::string salt_hex = to_hex({reinterpret_cast<const std::uint8_t*>(salt.data()), salt.size()});
    const std::string ref = sh_hex("openssl kdf -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:" + shared +
                                   " -kdfopt hexsalt:" + salt_hex + " -kdfopt hexinfo:" + info + " -binary HKDF");
    ASSERT_EQ(ref.size(), 64u) << "openssl kdf failed";
    EXPECT_EQ(to_hex(k), ref);
    const auto mine = fallback_info(0xAB, 1, link_role::ground, 0xFFF00000u, x25519_public_from_private_pem(f.g),
                                    x25519_public_from_private_pem(f.s));
    EXPECT_EQ(to_hex(mine), info);
}

TEST(fallback_keys, both_ends_derive_the_same_key_and_the_directions_never_share_one)
{
    key_files f;
    fallback_key_source g(f.cfg(link_role::ground, f.state("g.state")));
    fallback_key_source s(f.cfg(link_role::space, f.state("s.state")));
    std::set<std::string> seen;
    for (int i = 0; i < 20; ++i) {
        key gk{}, sk{}, peer{};
        const auto gid = g.next_key(gk);
        const auto sid = s.next_key(sk);
        ASSERT_TRUE(gid && sid);
        EXPECT_EQ(*gid, fallback_key_id(link_role::ground, static_cast<std::uint32_t>(i)));
        EXPECT_EQ(*sid, fallback_key_id(link_role::space, static_cast<std::uint32_t>(i)));
        EXPECT_TRUE(is_fallback_key_id(*gid) && is_fallback_key_id(*sid));
        EXPECT_NE(*gid, *sid);
        // The receiving end derives the sender's key by ID alone.
        ASSERT_TRUE(s.key_by_id(*gid, peer));
        EXPECT_EQ(peer, gk);
        ASSERT_TRUE(g.key_by_id(*sid, peer));
        EXPECT_EQ(peer, sk);
        // An end never accepts its own direction's IDs for received frames (a reflected frame).
        EXPECT_FALSE(g.key_by_id(*gid, peer));
        EXPECT_FALSE(s.key_by_id(*sid, peer));
        EXPECT_TRUE(seen.insert(to_hex(gk)).second);
        EXPECT_TRUE(seen.insert(to_hex(sk)).second);
    }
    key k{};
    EXPECT_FALSE(g.key_by_id(12345, k)) << "a QKD-range ID is not a fallback key";
    EXPECT_EQ(g.counters().keys_sent.load(), 20u);
    EXPECT_EQ(g.counters().keys_received.load(), 20u);
    EXPECT_EQ(g.counters().refused.load(), 21u);

    // Another link (spacecraft ID) with the same key pair gets other keys.
    auto c = f.cfg(link_role::space, f.state("other.state"));
    c.spacecraft_id = 0x12;
    fallback_key_source other(c);
    key a{}, b{};
    ASSERT_TRUE(other.key_by_id(fallback_key_id(link_role::ground, 0), a));
    ASSERT_TRUE(s.key_by_id(fallback_key_id(link_role::ground, 0), b));
    EXPECT_NE(a, b);
}

TEST(fallback_keys, the_counter_survives_restarts_and_no_id_or_key_is_used_twice)
{
    key_files f;
    const auto state = f.state("ground.state");
    std::set<std::uint32_t> ids;
    std::set<std::string> keys;
    std::uint32_t highest = 0;
    for (int start = 0; start < 4; ++start) {
        auto c = f.cfg(link_role::ground, state);
        c.reserve = 4;
        fallback_key_source g(c);
        if (start > 0) {
            EXPECT_GT(g.next_index(), highest) << "a restarted source must start above every used index";
        }
        for (int i = 0; i < 3 + start; ++i) {  // 3, 4, 5, 6 keys: inside, at and across the reserve
            key k{};
            const auto id = g.next_key(k);
            ASSERT_TRUE(id.has_value()) << g.last_error();
            EXPECT_TRUE(ids.insert(*id).second) << "key ID " << *id << " handed out twice";
            EXPECT_TRUE(keys.insert(to_hex(k)).second);
            highest = *id & (fallback_keys_per_direction - 1);
        }
        // Written ahead: the file already covers what was handed out.
        std::ifstream in(state);
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const auto pos = text.find("next_index ");
        ASSERT_NE(pos, std::string::npos) << text;
        EXPECT_GT(std::stoul(text.substr(pos + 11)), highest);
        EXPECT_EQ(text.find(to_hex(x25519_shared_from_pem(f.g, f.s_pub).span())), std::string::npos);
    }
    struct stat st {};
    ASSERT_EQ(::stat(state.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_EQ(ids.size(), 18u);

    // The same state file with another key pair is refused, not trusted or reset.
    auto wrong = f.cfg(link_role::ground, state);
    wrong.private_key_pem = f.s;
    wrong.peer_public_key_pem = f.g_pub;
    try {
        fallback_key_source x(wrong);
        ADD_FAILURE() << "a foreign state file was accepted";
    } catch (const fallback_key_error& e) {
        EXPECT_NE(std::string(e.what()).find("belongs to another key pair"), std::string::npos) << e.what();
    }
    // A damaged state file is refused (the counter is never guessed).
    std::ofstream(state) << "qlink-fallback-state v1\ntag zz\nnext_index\n";
    EXPECT_THROW(fallback_key_source x(f.cfg(link_role::ground, state)), fallback_key_error);
}

TEST(fallback_keys, no_key_is_handed_out_when_the_counter_cannot_be_written)
{
    key_files f;
    const fs::path sub = f.dir.path / "state";
    fs::create_directory(sub);
    auto c = f.cfg(link_role::ground, (sub / "g.state").string());
    c.reserve = 1;
    fallback_key_source g(c);
    key k{};
    ASSERT_TRUE(g.next_key(k).has_value());
    fs::remove_all(sub);  // the disk is gone: a key now could be reused after a restart
    EXPECT_FALSE(g.next_key(k).has_value());
    EXPECT_EQ(g.counters().state_errors.load(), 1u);
    EXPECT_NE(g.last_error().find("fallback state"), std::string::npos) << g.last_error();
    fs::create_directory(sub);
    const auto id = g.next_key(k);
    ASSERT_TRUE(id.has_value());
    EXPECT_EQ(*id, fallback_key_id(link_role::ground, 1)) << "the failed attempt consumed no index";
}

TEST(fallback_keys, qkmd_keys_with_a_link_id_in_the_fallback_range_are_skipped_and_never_asked_for)
{
    temp_dir dir;
    keymgmt::key_store::config sc;
    sc.db_path = dir.path / "keys.db";
    sc.master_key_path = dir.path / "master.key";
    sc.full_sync = false;
    auto store = keymgmt::open_key_store(sc);
    // The oldest key's UUID starts with 0xFFF...: its link ID would read as a fallback key ID.
    keymgmt::key_id in_range{}, normal{};
    for (std::size_t i = 0; i < in_range.size(); ++i) {
        in_range[i] = static_cast<std::uint8_t>(0x11 * i);
        normal[i] = static_cast<std::uint8_t>(0x21 + i);
    }
    in_range[0] = 0xFF;
    in_range[1] = 0xF4;
    in_range[15] |= 1;  // both in partition 1, the one NEXT_KEY below draws from
    normal[15] |= 1;
    std::array<std::uint8_t, 32> m1{}, m2{};
    m1.fill(0x5A);
    m2.fill(0xA5);
    const std::vector<keymgmt::new_key> keys{{in_range, m1}, {normal, m2}};
    ASSERT_TRUE(store->add(keys, keymgmt::key_state::active).ok());
    keymgmt::inject_server::config ic;
    ic.socket_path = (dir.path / "inject.sock").string();
    ic.partition = 1;
    auto server = keymgmt::start_inject_server(ic, *store);

    std::vector<std::string> errors;
    inject_key_source src({ic.socket_path, 1, [&](const std::string& m) { errors.push_back(m); }},
                          std::make_shared<key_id_directory>());
    ASSERT_TRUE(is_fallback_key_id(key_id_directory::link_id_of(in_range)));
    key k{};
    const auto id = src.next_key(k);
    ASSERT_TRUE(id.has_value()) << (errors.empty() ? "" : errors.back());
    EXPECT_EQ(*id, key_id_directory::link_id_of(normal)) << "the in-range key must be skipped";
    EXPECT_EQ(k, m2);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("fallback range"), std::string::npos) << errors[0];
    // A fallback ID is refused at once: not a qkmd error, not an unknown ID at qkmd.
    EXPECT_FALSE(src.key_by_id(fallback_key_id(link_role::space, 3), k));
    EXPECT_EQ(errors.size(), 1u);
    EXPECT_EQ(src.counters().unknown_ids.load(), 0u);
}

// ---- configuration ----

std::string config_text(const std::string& security)
{
    return "[link]\nrole = \"ground\"\n[air]\nport = 4000\n[keys]\nsource = \"memory\"\n[security]\n" + security;
}

std::string config_error(const std::string& security)
{
    try {
        parse_qlinkd_config(config_text(security));
    } catch (const qlinkd_config_error& e) {
        return e.what();
    }
    return "(accepted)";
}

std::string fallback_keys_text(const std::string& priv, const std::string& pub, const std::string& state)
{
    return "on_exhaustion = \"fallback\"\nfallback_private_key = \"" + priv + "\"\nfallback_peer_public_key = \"" + pub +
           "\"\nfallback_state = \"" + state + "\"\n";
}

void expect_error(const std::string& security, const std::string& key_name, const std::string& what)
{
    const auto e = config_error(security);
    EXPECT_NE(e.find("key 'security." + key_name + "'"), std::string::npos) << e;
    EXPECT_NE(e.find(what), std::string::npos) << e;
}

TEST(fallback_keys, configuration_accepts_good_files_and_names_the_key_of_bad_ones)
{
    key_files f;
    const auto state = f.state("g.state");
    const auto good = parse_qlinkd_config(config_text(fallback_keys_text(f.g, f.s_pub, state)));
    EXPECT_EQ(good.security.on_exhaustion, exhaustion_policy::fallback);
    EXPECT_EQ(good.security.fallback_private_key, f.g);
    EXPECT_FALSE(fs::exists(state)) << "checking the configuration writes nothing";
    const auto ec = make_fallback_config(good);
    EXPECT_EQ(ec.role, link_role::ground);
    EXPECT_EQ(ec.state_file, state);

    // Relative paths are relative to the configuration file.
    const auto rel = parse_qlinkd_config(config_text(fallback_keys_text("ground.pem", "space_pub.pem", "g.state")), "x",
                                         f.dir.path.string());
    EXPECT_EQ(rel.security.fallback_peer_public_key, f.s_pub);

    expect_error("on_exhaustion = \"fallback\"\n", "fallback_private_key", "is required");
    expect_error("on_exhaustion = \"fallback\"\nfallback_private_key = \"" + f.g + "\"\n", "fallback_peer_public_key",
                 "is required");
    expect_error("on_exhaustion = \"fallback\"\nfallback_private_key = \"" + f.g + "\"\nfallback_peer_public_key = \"" +
                     f.s_pub + "\"\n",
                 "fallback_state", "is required");
    expect_error(fallback_keys_text(f.g + ".missing", f.s_pub, state), "fallback_private_key", "No such file");
    expect_error(fallback_keys_text(f.g, f.s_pub + ".missing", state), "fallback_peer_public_key", "cannot read");
    expect_error(fallback_keys_text(f.g_pub, f.s_pub, state), "fallback_private_key", "holds a PUBLIC key");
    expect_error(fallback_keys_text(f.g, f.s, state), "fallback_peer_public_key", "holds a PRIVATE key");
    expect_error(fallback_keys_text(f.g, f.g_pub, state), "fallback_peer_public_key", "own public key");
    expect_error(fallback_keys_text(f.g, f.s_pub, (f.dir.path / "nodir" / "g.state").string()), "fallback_state",
                 "does not exist");

    // Not X25519: an Ed25519 key pair.
    const auto ed = f.state("ed.pem"), ed_pub = f.state("ed_pub.pem");
    int st = -1;
    sh("openssl genpkey -algorithm ED25519 -out " + ed + " && openssl pkey -in " + ed + " -pubout -out " + ed_pub, &st);
    ASSERT_EQ(st, 0);
    ::chmod(ed.c_str(), 0600);
    expect_error(fallback_keys_text(ed, f.s_pub, state), "fallback_private_key", "not X25519");
    expect_error(fallback_keys_text(f.g, ed_pub, state), "fallback_peer_public_key", "not X25519");
    // Garbage instead of PEM.
    const auto junk = f.state("junk.pem");
    std::ofstream(junk) << "not a key\n";
    ::chmod(junk.c_str(), 0600);
    expect_error(fallback_keys_text(junk, f.s_pub, state), "fallback_private_key", "not a PEM private key");

    // A private key others can read is refused.
    ::chmod(f.g.c_str(), 0644);
    expect_error(fallback_keys_text(f.g, f.s_pub, state), "fallback_private_key", "accessible by others (mode 0644)");
    ::chmod(f.g.c_str(), 0600);

    // The fallback keys belong to the fallback policy only.
    const auto e = config_error("fallback_private_key = \"" + f.g + "\"\n");
    EXPECT_NE(e.find("only used with security.on_exhaustion = \"fallback\""), std::string::npos) << e;
}

// ---- two link engines: QKD keys run out mid-transfer ----

std::uint8_t content(int dir, std::uint64_t off)
{
    std::uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ (static_cast<std::uint64_t>(dir) << 60);
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9ull;
    return static_cast<std::uint8_t>(x >> 32);
}

// The sender's coded bits as clean, confident LLRs (BPSK: bit 0 -> +, soft_bits.hpp).
void carry(link_engine& from, link_engine& to, std::size_t bytes, double t)
{
    std::vector<std::uint8_t> packed(bytes);
    from.pull_tx_bits(packed, t);
    std::vector<std::int8_t> llr(8 * bytes);
    for (std::size_t i = 0; i < llr.size(); ++i) {
        llr[i] = ((packed[i >> 3] >> (7 - (i & 7))) & 1) != 0 ? std::int8_t{-100} : std::int8_t{100};
    }
    to.push_rx_llrs(llr, t);
}

struct stream_side {
    std::uint64_t sent = 0, got = 0;
    bool intact = true;
};

void feed(link_engine& e, int dir, stream_side& s, std::uint64_t total)
{
    std::vector<std::uint8_t> buf(2048);
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), total - s.sent));
    for (std::size_t i = 0; i < n; ++i) buf[i] = content(dir, s.sent + i);
    s.sent += e.send(0, std::span(buf).first(n));
}

void drain(link_engine& e, int dir, stream_side& s)
{
    std::vector<std::uint8_t> buf(65536);
    for (std::size_t n; (n = e.receive(0, buf)) > 0;) {
        for (std::size_t i = 0; i < n; ++i) {
            if (buf[i] != content(dir, s.got + i)) s.intact = false;
        }
        s.got += n;
    }
}

void add_keys(modem::memory_key_source& tx, modem::memory_key_source& rx, std::uint32_t first, std::uint32_t n)
{
    for (std::uint32_t id = first; id < first + n; ++id) {
        key k{};
        for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(id * 31 + i * 7);
        tx.add(id, k);
        rx.add(id, k);
    }
}

TEST(fallback_keys, link_engines_keep_carrying_data_on_fallback_keys_when_qkd_keys_run_out_and_return_to_qkd)
{
    key_files f;
    // QKD stand-ins: 3 keys per direction, then nothing (until the test refills the downlink's).
    modem::memory_key_source down_tx, down_rx, up_tx, up_rx;
    add_keys(down_tx, down_rx, 1, 3);
    add_keys(up_tx, up_rx, 1001, 3);
    std::vector<std::string> alarms;
    std::vector<std::uint32_t> warned;
    auto gcfg = f.cfg(link_role::ground, f.state("g.state"));
    auto scfg = f.cfg(link_role::space, f.state("s.state"));
    scfg.on_tx_key = [&](std::uint32_t id, std::uint64_t) { warned.push_back(id); };
    fallback_key_source g_fb(gcfg), s_fb(scfg);
    fallback_id_router g_rx(down_rx, g_fb), s_rx(up_rx, s_fb);

    link_engine_config sc;
    sc.role = link_role::space;
    sc.tx_profile = "ccsds-tm-rs223i4-conv12";
    sc.rx_profile = "ccsds-tm-rs223i1-conv12";
    sc.rotate_every_frames = 40;
    sc.announce_frames = 8;
    sc.worker_threads = false;
    sc.key_exhaustion_policy = modem::key_exhaustion_policy::fallback;
    sc.on_alarm = [&](std::string_view m) { alarms.emplace_back(m); };
    link_engine_config gc = sc;
    gc.role = link_role::ground;
    std::swap(gc.tx_profile, gc.rx_profile);
    sc.fallback_keys = &s_fb;
    gc.fallback_keys = &g_fb;
    gc.on_alarm = nullptr;
    auto space = link_engine::create(sc, down_tx, s_rx);
    auto ground = link_engine::create(gc, up_tx, g_rx);

    constexpr std::uint64_t down_total = 300000, up_total = 10000;
    stream_side down, up;
    bool saw_fallback = false, refilled = false, back_to_qkd = false;
    std::uint64_t got_at_fallback = 0;
    std::set<std::uint32_t> down_ids;
    double t = 0.0;
    for (int step = 0; step < 20000; ++step) {
        t = step * 0.001;
        feed(*space, 0, down, down_total);
        feed(*ground, 1, up, up_total);
        carry(*space, *ground, 250, t);
        carry(*ground, *space, 40, t);
        drain(*ground, 0, down);
        drain(*space, 1, up);
        const auto ss = space->stats();
        if (ss.active_key_id != 0) down_ids.insert(ss.active_key_id);
        if (is_fallback_key_id(ss.active_key_id) && !saw_fallback) {
            saw_fallback = true;
            got_at_fallback = down.got;
        }
        // Once the downlink has run on fallback keys for a while, QKD keys arrive again.
        if (saw_fallback && !refilled && s_fb.counters().keys_sent.load() >= 3) {
            add_keys(down_tx, down_rx, 4, 50);
            refilled = true;
        }
        if (refilled && ss.active_key_id != 0 && !is_fallback_key_id(ss.active_key_id)) back_to_qkd = true;
        if (back_to_qkd && down.got == down_total && up.got == up_total) break;
    }
    for (int i = 0; i < 200; ++i) {  // the last acks cross
        t += 0.001;
        carry(*space, *ground, 250, t);
        carry(*ground, *space, 40, t);
    }
    const auto ss = space->stats();
    const auto gs = ground->stats();
    EXPECT_EQ(down.got, down_total) << "by t=" << t;
    EXPECT_EQ(up.got, up_total);
    EXPECT_TRUE(down.intact);
    EXPECT_TRUE(up.intact);
    EXPECT_TRUE(saw_fallback);
    EXPECT_LT(got_at_fallback, down_total * 3 / 4) << "the QKD keys must run out mid-transfer";
    EXPECT_TRUE(back_to_qkd) << "the transmitter must take QKD keys again once they are there";

    // Both directions ran on fallback keys, the far end derived each one, and nothing was refused.
    EXPECT_GE(s_fb.counters().keys_sent.load(), 3u);
    EXPECT_GE(g_fb.counters().keys_sent.load(), 1u) << "the uplink's 3 QKD keys ran out too";
    EXPECT_EQ(g_fb.counters().keys_received.load(), s_fb.counters().keys_sent.load());
    EXPECT_EQ(s_fb.counters().keys_received.load(), g_fb.counters().keys_sent.load());
    EXPECT_EQ(gs.auth_failures, 0u);
    EXPECT_EQ(ss.auth_failures, 0u);
    EXPECT_FALSE(ss.traffic_stopped);
    EXPECT_EQ(ss.keys_exhausted, 0u) << "with fallback keys no frame waited for a key";
    // Loud: the on_tx_key hook saw every fallback key, and the SDLS alarm named the fallback.
    EXPECT_EQ(warned.size(), s_fb.counters().keys_sent.load());
    bool alarm_fallback = false;
    for (const auto& a : alarms) alarm_fallback |= a.find("fallback") != std::string::npos;
    EXPECT_TRUE(alarm_fallback);
    // QKD IDs and fallback IDs were both in use on the downlink.
    std::size_t fb = 0;
    for (auto id : down_ids) fb += is_fallback_key_id(id) ? 1 : 0;
    EXPECT_GE(fb, 3u);
    EXPECT_GT(down_ids.size(), fb);
    EXPECT_TRUE(space->finish().empty());
    EXPECT_TRUE(ground->finish().empty());
}

// ---- two qlinkd processes ----

// A daemon whose test keys (memory_keys per direction, 32 frames each) run out within seconds.
std::string qlinkd_config(const std::string& role, std::uint16_t air_port, const std::string& priv, const std::string& pub,
                          const std::string& state)
{
    return "[link]\nrole = \"" + role + "\"\ndrain_timeout_s = 20\n[air]\nport = " + std::to_string(air_port) +
           "\nconnect_timeout_s = 30\n[keys]\nsource = \"memory\"\nmemory_seed = 5\nmemory_keys = 3\n"
           "[security]\nrotate_every_frames = 32\n" +
           fallback_keys_text(priv, pub, state);
}

std::vector<std::uint32_t> logged_fallback_ids(const std::string& log)
{
    std::vector<std::uint32_t> ids;
    for (auto p = log.find("event=fallback_key "); p != std::string::npos; p = log.find("event=fallback_key ", p + 1)) {
        const auto k = log.find("key_id=", p);
        if (k != std::string::npos) ids.push_back(static_cast<std::uint32_t>(std::stoul(log.substr(k + 7))));
    }
    return ids;
}

TEST(fallback_keys, qlinkd_pair_carries_a_file_on_fallback_keys_after_the_test_keys_run_out)
{
    key_files f;
    // --check-config loads the keys: good files pass, a wrong peer key is one line naming the key.
    const auto check = f.dir.path / "check.toml";
    std::ofstream(check) << qlinkd_config("ground", 4000, f.g, f.s_pub, f.state("g.state"));
    int st = -1;
    auto out = sh(std::string(QLINK_QLINKD_BIN) + " --config " + check.string() + " --check-config 2>&1", &st);
    EXPECT_EQ(st, 0) << out;
    std::ofstream(check) << qlinkd_config("ground", 4000, f.g, f.g_pub, f.state("g.state"));
    out = sh(std::string(QLINK_QLINKD_BIN) + " --config " + check.string() + " --check-config 2>&1", &st);
    EXPECT_EQ(st, 2) << out;
    EXPECT_NE(out.find("security.fallback_peer_public_key"), std::string::npos) << out;
    EXPECT_FALSE(fs::exists(f.state("g.state")));

    qlink::test::clean_relay::config rc;
    qlink::test::clean_relay relay(rc);
    qlink::test::daemon_proc space(f.dir.path, "space", qlinkd_config("space", relay.port(), f.s, f.g_pub, f.state("s.state")));
    qlink::test::daemon_proc ground(f.dir.path, "ground", qlinkd_config("ground", relay.port(), f.g, f.s_pub, f.state("g.state")));
    ASSERT_TRUE(space.wait_ready()) << space.log();
    ASSERT_TRUE(ground.wait_ready()) << ground.log();

    std::vector<std::uint8_t> file(300 * 1024);
    std::mt19937_64 rng(9);
    for (auto& b : file) b = static_cast<std::uint8_t>(rng());
    const int up = qlink::test::connect_loopback(static_cast<std::uint16_t>(space.tcp), 60);
    const int down = qlink::test::connect_loopback(static_cast<std::uint16_t>(ground.tcp), 60);
    ASSERT_GE(up, 0);
    ASSERT_GE(down, 0);
    std::thread writer([&] {
        std::size_t off = 0;
        while (off < file.size()) {
            const ssize_t n = ::send(up, file.data() + off, file.size() - off, MSG_NOSIGNAL);
            if (n <= 0) break;
            off += static_cast<std::size_t>(n);
        }
    });
    std::vector<std::uint8_t> got, buf(65536);
    while (got.size() < file.size()) {
        const ssize_t r = ::recv(down, buf.data(), buf.size(), 0);  // 60 s receive timeout
        if (r <= 0) break;
        got.insert(got.end(), buf.begin(), buf.begin() + r);
    }
    writer.join();
    ASSERT_EQ(got.size(), file.size()) << space.log() << ground.log();
    EXPECT_EQ(qlink::test::sha256_hex(got), qlink::test::sha256_hex(file));

    // The space end (the file's sender) ran out of test keys and went on with fallback keys: loud in
    // its log, its transmit key ID in the fallback range, the ground end derived every one of them.
    const auto s_status = space.status();
    ASSERT_FALSE(s_status.is_discarded());
    EXPECT_TRUE(is_fallback_key_id(s_status["keys"]["active_key_id"].get<std::uint32_t>())) << s_status.dump();
    EXPECT_EQ(s_status["keys"]["source"], "fallback") << s_status.dump();
    // One WARN line per fallback key; the log is read after the status, so it may have a few more.
    EXPECT_GE(s_status["keys"]["fallback_keys"].get<std::uint64_t>(), 1u) << s_status.dump();
    EXPECT_LE(s_status["keys"]["fallback_keys"].get<std::uint64_t>(), logged_fallback_ids(space.log()).size()) << s_status.dump();
    const auto slog = space.log();
    const auto sids = logged_fallback_ids(slog);
    ASSERT_FALSE(sids.empty()) << slog;
    for (std::size_t i = 0; i < sids.size(); ++i) {
        EXPECT_EQ(sids[i], fallback_key_id(link_role::space, static_cast<std::uint32_t>(i))) << "IDs in order, none twice";
    }
    EXPECT_NE(slog.find("level=warn chan=keys role=space event=fallback_key"), std::string::npos) << slog;
    EXPECT_NE(slog.find("source=fallback"), std::string::npos) << slog;
    EXPECT_EQ(slog.find(to_hex(x25519_shared_from_pem(f.g, f.s_pub).span())), std::string::npos) << "secret in the log";
    const auto glog = ground.log();
    // (The return link's few ack frames stay on its test keys here: the ground end only derives.)
    EXPECT_EQ(glog.find("event=key_source_error"), std::string::npos) << glog;
    const auto g_status = ground.status();
    ASSERT_FALSE(g_status.is_discarded());
    EXPECT_GT(g_status["frames"]["rx_ok"].get<std::uint64_t>(), 0u);

    ::close(up);
    ::close(down);
    EXPECT_EQ(space.terminate(), 0) << space.log();
    EXPECT_EQ(ground.terminate(), 0) << ground.log();
    // The counter was written ahead of every key the space end used.
    fallback_key_source again(f.cfg(link_role::space, f.state("s.state")));
    EXPECT_GE(again.next_index(), sids.size());
}

}  // namespace
