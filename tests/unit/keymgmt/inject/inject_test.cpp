// Tests keymgmt/src/inject: hybrid combiner against openssl, injection socket at both ends, peer checks.
#include "qlink/keymgmt/hybrid.hpp"
#include "qlink/keymgmt/inject.hpp"
#include "unit/keymgmt/etsi014/test_pki.hpp"
#include "unit/keymgmt/store/test_keys.hpp"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>

using namespace qlink::keymgmt;
using qlink::keymgmt::test::run_cmd;
using qlink::keymgmt::test::test_key_id;
using qlink::keymgmt::test::test_key_material;
using qlink::keymgmt::test::to_hex;

namespace {

constexpr std::uint64_t seed = 99;

struct temp_dir {
    temp_dir()
    {
        char tmpl[] = "/tmp/qlink_inj_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    std::filesystem::path path;
};

std::vector<std::uint8_t> from_hex(const std::string& h)
{
    std::vector<std::uint8_t> v;
    for (std::size_t i = 0; i + 1 < h.size(); i += 2) {
        v.push_back(static_cast<std::uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    }
    return v;
}

std::string hex_of_cmd(const std::string& cmd)
{
    std::string out;
    EXPECT_EQ(run_cmd(cmd + " | od -An -v -tx1 | tr -d ' \\n'", &out), 0) << cmd;
    return out;
}

// Raw X25519 private key -> PEM file via its PKCS#8 DER form (RFC 8410).
std::string write_x25519_pem(const std::filesystem::path& dir, const std::string& name, const std::string& priv_hex)
{
    const auto der = from_hex("302e020100300506032b656e04220420" + priv_hex);
    std::ofstream(dir / (name + ".der"), std::ios::binary).write(reinterpret_cast<const char*>(der.data()),
                                                                  static_cast<std::streamsize>(der.size()));
    const auto pem = (dir / (name + ".pem")).string();
    EXPECT_EQ(run_cmd("openssl pkey -inform DER -in " + (dir / (name + ".der")).string() + " -out " + pem), 0);
    return pem;
}

struct end_point {
    explicit end_point(const std::string& name, int partition, std::uint64_t nkeys = 16)
    {
        key_store::config sc;
        sc.db_path = dir.path / "keys.db";
        sc.master_key_path = dir.path / "master.key";
        store = open_key_store(sc);
        std::vector<std::array<std::uint8_t, 32>> mats;
        std::vector<new_key> keys;
        for (std::uint64_t i = 0; i < nkeys; ++i) {
            mats.push_back(test_key_material(seed, i));
        }
        for (std::uint64_t i = 0; i < nkeys; ++i) {
            keys.push_back({test_key_id(seed, i), mats[i]});
        }
        EXPECT_TRUE(store->add(keys, key_state::active).ok());
        inject_server::config ic;
        ic.socket_path = (dir.path / (name + ".sock")).string();
        ic.partition = partition;
        ic.request_timeout = std::chrono::milliseconds(2000);
        path = ic.socket_path;
        server = start_inject_server(ic, *store);
    }
    temp_dir dir;
    std::string path;
    std::unique_ptr<key_store> store;
    std::unique_ptr<inject_server> server;
};

}  // namespace

TEST(hybrid, matches_openssl_x25519_and_hkdf)
{
    temp_dir d;
    const std::string a_priv = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
    const std::string b_priv = "5dab087e624a8a4b79e17f8b83800ee66f3b1549b06a2a1f8c9a15fd7db1e2a1";  // any 32 bytes
    const auto a_pem = write_x25519_pem(d.path, "a", a_priv);
    const auto b_pem = write_x25519_pem(d.path, "b", b_priv);
    ASSERT_EQ(run_cmd("openssl pkey -in " + b_pem + " -pubout -out " + (d.path / "b_pub.pem").string()), 0);
    const std::string ss_ref =
        hex_of_cmd("openssl pkeyutl -derive -inkey " + a_pem + " -peerkey " + (d.path / "b_pub.pem").string());
    ASSERT_EQ(ss_ref.size(), 64u);

    // Our X25519 with the same private keys.
    const auto a_raw = from_hex(a_priv);
    const secret_bytes a_key(a_raw);
    std::string b_pub_hex =
        hex_of_cmd("openssl pkey -in " + b_pem + " -pubout -outform DER");  // 12-byte SPKI prefix + 32 bytes
    const auto b_pub = from_hex(b_pub_hex.substr(b_pub_hex.size() - 64));
    secret_bytes ss;
    ASSERT_TRUE(x25519_shared_secret(a_key, b_pub, ss));
    EXPECT_EQ(to_hex(ss.span()), ss_ref);

    const auto qkd = test_key_material(seed, 3);
    const hybrid_context ctx{0x01020304u, test_key_id(seed, 3)};
    std::array<std::uint8_t, 32> ours{};
    ASSERT_TRUE(combine_hybrid_key(qkd, ss.span(), ctx, ours));
    const std::string info = to_hex(std::span(reinterpret_cast<const std::uint8_t*>(hybrid_label.data()),
                                              hybrid_label.size())) +
                             "00" + "01020304" + to_hex(ctx.qkd_key_id);
    const std::string ref = hex_of_cmd("openssl kdf -binary -keylen 32 -kdfopt digest:SHA256 -kdfopt hexkey:" +
                                       to_hex(qkd) + ss_ref + " -kdfopt hexinfo:" + info + " HKDF");
    EXPECT_EQ(to_hex(ours), ref);

    // Each input matters.
    std::array<std::uint8_t, 32> other{};
    auto ctx2 = ctx;
    ctx2.spi = 5;
    ASSERT_TRUE(combine_hybrid_key(qkd, ss.span(), ctx2, other));
    EXPECT_NE(other, ours);
    auto qkd2 = qkd;
    qkd2[0] ^= 1;
    ASSERT_TRUE(combine_hybrid_key(qkd2, ss.span(), ctx, other));
    EXPECT_NE(other, ours);
    EXPECT_FALSE(combine_hybrid_key({}, ss.span(), ctx, other));
    EXPECT_EQ(other, (std::array<std::uint8_t, 32>{}));
}

TEST(hybrid, generated_pairs_agree_and_low_order_point_is_refused)
{
    const auto a = x25519_generate();
    const auto b = x25519_generate();
    secret_bytes s1, s2;
    ASSERT_TRUE(x25519_shared_secret(a.private_key, b.public_key, s1));
    ASSERT_TRUE(x25519_shared_secret(b.private_key, a.public_key, s2));
    EXPECT_EQ(to_hex(s1.span()), to_hex(s2.span()));
    const std::array<std::uint8_t, 32> zero{};
    secret_bytes s3;
    EXPECT_FALSE(x25519_shared_secret(a.private_key, zero, s3));
    EXPECT_FALSE(x25519_shared_secret(a.private_key, std::span(zero.data(), 31), s3));
}

TEST(inject, both_ends_get_the_same_keys_in_order)
{
    end_point a("a", 0);
    end_point b("b", 1);
    struct stat st {};
    ASSERT_EQ(::stat(a.path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    inject_client ca(a.path);
    inject_client cb(b.path);
    std::vector<key_id> seen;
    for (int i = 0; i < 5; ++i) {
        const auto ka = ca.next_key(7, 32);
        ASSERT_TRUE(ka.ok()) << ka.message;
        EXPECT_EQ(partition_of(ka.id), 0);
        const auto kb = cb.key_by_id(7, ka.id, 32);
        ASSERT_TRUE(kb.ok()) << kb.message;
        EXPECT_EQ(kb.id, ka.id);
        EXPECT_EQ(to_hex(kb.key.span()), to_hex(ka.key.span()));
        seen.push_back(ka.id);
    }
    // In order: the oldest key of partition 0 first.
    std::vector<key_id> expect;
    for (std::uint64_t i = 0; i < 16 && expect.size() < 5; ++i) {
        if (partition_of(test_key_id(seed, i)) == 0) {
            expect.push_back(test_key_id(seed, i));
        }
    }
    EXPECT_EQ(seen, expect);
    // Served once: the far end cannot fetch it again, unknown IDs are refused.
    auto again = cb.key_by_id(7, seen[0], 32);
    EXPECT_EQ(again.status, inject_status::already_served);
    EXPECT_FALSE(again.message.empty());
    again = cb.key_by_id(7, test_key_id(1, 1), 32);
    EXPECT_EQ(again.status, inject_status::not_found);
    // Truncated key.
    const auto short_key = ca.next_key(8, 16);
    ASSERT_TRUE(short_key.ok());
    EXPECT_EQ(short_key.key.size(), 16u);
    EXPECT_EQ(a.server->counters().keys_next.load(), 6u);
    EXPECT_EQ(b.server->counters().keys_by_id.load(), 5u);
}

std::uint32_t link_id_of(const key_id& id)
{
    return (std::uint32_t{id[0]} << 24) | (std::uint32_t{id[1]} << 16) | (std::uint32_t{id[2]} << 8) | id[3];
}

TEST(inject, far_end_takes_the_key_named_by_its_32_bit_link_id)
{
    end_point a("a", 0);
    end_point b("b", 1);
    inject_client ca(a.path);
    inject_client cb(b.path);
    for (int i = 0; i < 4; ++i) {
        const auto ka = ca.next_key(7, 32);
        ASSERT_TRUE(ka.ok()) << ka.message;
        const auto kb = cb.key_by_link_id(7, link_id_of(ka.id), 32);
        ASSERT_TRUE(kb.ok()) << kb.message;
        EXPECT_EQ(kb.id, ka.id);  // the reply names the full UUID
        EXPECT_EQ(to_hex(kb.key.span()), to_hex(ka.key.span()));
        // Served once, whichever name is used.
        EXPECT_EQ(cb.key_by_link_id(7, link_id_of(ka.id), 32).status, inject_status::already_served);
        EXPECT_EQ(cb.key_by_id(7, ka.id, 32).status, inject_status::already_served);
    }
    EXPECT_EQ(b.server->counters().keys_by_id.load(), 4u);
    const auto unknown = cb.key_by_link_id(7, link_id_of(test_key_id(1, 1)), 32);
    EXPECT_EQ(unknown.status, inject_status::not_found);
    EXPECT_NE(unknown.message.find("no key with link ID"), std::string::npos) << unknown.message;

    // Two ACTIVE keys sharing the 4-byte prefix: the name is ambiguous and refused, never guessed.
    std::uint64_t untouched = 0;  // a partition-1 key: a's NEXT_KEY never took it, so b still has it ACTIVE
    while (partition_of(test_key_id(seed, untouched)) != 1) {
        ++untouched;
    }
    key_id twin = test_key_id(seed, untouched);
    twin[15] ^= 0x5a;
    const auto mat = test_key_material(seed, 99);
    const new_key extra{twin, mat};
    ASSERT_TRUE(b.store->add(std::span(&extra, 1), key_state::active).ok());
    const auto amb = cb.key_by_link_id(7, link_id_of(twin), 32);
    EXPECT_EQ(amb.status, inject_status::not_found);
    EXPECT_NE(amb.message.find("refusing to guess"), std::string::npos) << amb.message;
    EXPECT_EQ(b.server->counters().link_id_collisions.load(), 1u);
    // Once one of the pair is used up by its full ID, the prefix names one key again.
    ASSERT_TRUE(cb.key_by_id(7, twin, 32).ok());
    const auto after = cb.key_by_link_id(7, link_id_of(twin), 32);
    ASSERT_TRUE(after.ok()) << after.message;
    EXPECT_EQ(after.id, test_key_id(seed, untouched));
}

// One request body for inject_service::handle (no length prefix).
std::vector<std::uint8_t> request(std::uint8_t op, std::uint8_t flags, std::uint32_t spi, std::uint16_t key_bytes,
                                  std::span<const std::uint8_t> name)
{
    std::vector<std::uint8_t> b{inject_wire::version,
                                op,
                                flags,
                                static_cast<std::uint8_t>(spi >> 24),
                                static_cast<std::uint8_t>(spi >> 16),
                                static_cast<std::uint8_t>(spi >> 8),
                                static_cast<std::uint8_t>(spi),
                                static_cast<std::uint8_t>(key_bytes >> 8),
                                static_cast<std::uint8_t>(key_bytes)};
    b.insert(b.end(), name.begin(), name.end());
    return b;
}

struct handled {
    inject_status status = inject_status::internal_error;
    key_id id{};
    std::string key_hex;
};

handled call(inject_service& svc, const std::vector<std::uint8_t>& req, uid_t peer)
{
    std::vector<std::uint8_t> out;
    svc.handle(req, out, peer);
    handled h;
    h.status = static_cast<inject_status>(out.at(1));
    std::copy_n(out.begin() + 2, 16, h.id.begin());
    if (h.status == inject_status::ok) {
        h.key_hex = to_hex(std::span<const std::uint8_t>(out.data() + 20, out.size() - 20));
    }
    return h;
}

TEST(inject, decryption_key_is_served_again_to_the_same_peer_under_a_lease)
{
    end_point a("a", 0);
    end_point b("b", 1);
    inject_client ca(a.path);
    inject_client cb(b.path);
    const auto ka = ca.next_key(7, 32);
    ASSERT_TRUE(ka.ok()) << ka.message;
    const auto kb = cb.key_by_id(7, ka.id, 32, {}, true);
    ASSERT_TRUE(kb.ok()) << kb.message;
    EXPECT_EQ(to_hex(kb.key.span()), to_hex(ka.key.span()));
    // The store destroyed it (served), yet the same peer - e.g. its link daemon restarted - gets
    // it again, by full ID or by link ID, from a new connection.
    inject_client cb2(b.path);
    const auto again = cb2.key_by_id(7, ka.id, 32, {}, true);
    ASSERT_TRUE(again.ok()) << again.message;
    EXPECT_EQ(to_hex(again.key.span()), to_hex(ka.key.span()));
    const auto by_link = cb2.key_by_link_id(7, link_id_of(ka.id), 32, {}, true);
    ASSERT_TRUE(by_link.ok()) << by_link.message;
    EXPECT_EQ(by_link.id, ka.id);
    EXPECT_EQ(to_hex(by_link.key.span()), to_hex(ka.key.span()));
    EXPECT_EQ(b.server->counters().lease_reserves.load(), 2u);
    EXPECT_EQ(b.server->counters().keys_by_id.load(), 1u);
    // Without the LEASE flag, or for another SPI, it stays served once.
    EXPECT_EQ(cb2.key_by_id(7, ka.id, 32).status, inject_status::already_served);
    EXPECT_EQ(cb2.key_by_id(8, ka.id, 32, {}, true).status, inject_status::already_served);
    // A lease holds the size it was served with.
    EXPECT_EQ(cb2.key_by_id(7, ka.id, 16, {}, true).status, inject_status::bad_request);

    // Encryption keys are never served twice: NEXT_KEY refuses the flag, and each NEXT_KEY is a
    // new key (a restarted transmitter must not restart its IV counter under a used key).
    const auto op1_lease = request(inject_wire::op_next_key, inject_wire::flag_lease, 7, 32, {});
    std::vector<std::uint8_t> framed{0, 0, 0, static_cast<std::uint8_t>(op1_lease.size())};
    framed.insert(framed.end(), op1_lease.begin(), op1_lease.end());
    const auto refused = ca.raw(framed);
    EXPECT_EQ(refused.status, inject_status::bad_request);
    EXPECT_NE(refused.message.find("decryption keys"), std::string::npos) << refused.message;
    const auto ka2 = ca.next_key(7, 32);
    ASSERT_TRUE(ka2.ok());
    EXPECT_NE(ka2.id, ka.id);
    EXPECT_NE(to_hex(ka2.key.span()), to_hex(ka.key.span()));
    // The transmitting end's own key is not leased to it as a decryption key either.
    EXPECT_EQ(ca.key_by_id(7, ka.id, 32, {}, true).status, inject_status::already_served);
}

TEST(inject, lease_is_for_the_same_peer_uid_and_ends_when_the_link_moves_on_or_expires)
{
    end_point b("b", 1);
    auto t = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
    inject_service::config c;
    c.partition = 1;
    c.lease_time = std::chrono::seconds(60);
    c.max_reserves = 2;
    c.now = [&t] { return t; };
    inject_service svc(c, *b.store);
    const uid_t me = ::geteuid(), other = ::geteuid() + 1;
    std::vector<key_id> ids;
    for (std::uint64_t i = 0; i < 16 && ids.size() < 4; ++i) {
        ids.push_back(test_key_id(seed, i));
    }
    auto by_id = [&](const key_id& id, bool lease, uid_t peer, std::uint32_t spi = 9) {
        return call(svc, request(inject_wire::op_key_by_id, lease ? inject_wire::flag_lease : 0, spi, 32, id), peer);
    };
    const auto first = by_id(ids[0], true, me);
    ASSERT_EQ(first.status, inject_status::ok);
    // Another local uid never gets it, with or without the flag.
    EXPECT_EQ(by_id(ids[0], true, other).status, inject_status::already_served);
    // Same peer: served again, the same bytes, up to max_reserves times.
    const auto r1 = by_id(ids[0], true, me);
    ASSERT_EQ(r1.status, inject_status::ok);
    EXPECT_EQ(r1.key_hex, first.key_hex);
    EXPECT_EQ(by_id(ids[0], true, me).status, inject_status::ok);
    EXPECT_EQ(by_id(ids[0], true, me).status, inject_status::already_served);  // limit 2
    EXPECT_EQ(svc.counters().lease_reserves.load(), 2u);

    // Two more keys for the same link: only the two newest stay leased (the key in use and the
    // one before); the oldest lease is wiped.
    ASSERT_EQ(by_id(ids[1], true, me).status, inject_status::ok);
    ASSERT_EQ(by_id(ids[2], true, me).status, inject_status::ok);
    EXPECT_EQ(svc.leases(), 2u);
    EXPECT_EQ(by_id(ids[0], true, me).status, inject_status::already_served);
    EXPECT_EQ(by_id(ids[1], true, me).status, inject_status::ok);
    EXPECT_EQ(by_id(ids[2], true, me).status, inject_status::ok);
    // A lease for another SPI of the same peer is a separate link.
    ASSERT_EQ(by_id(ids[3], true, me, 10).status, inject_status::ok);
    EXPECT_EQ(svc.leases(), 3u);
    // Expiry: after lease_time nothing is re-served and the copies are gone.
    t += std::chrono::seconds(61);
    EXPECT_EQ(by_id(ids[2], true, me).status, inject_status::already_served);
    EXPECT_EQ(svc.leases(), 0u);
    EXPECT_GE(svc.counters().leases_refused.load(), 3u);
}

TEST(inject, hybrid_keys_agree_at_both_ends)
{
    end_point a("a", 0);
    end_point b("b", 1);
    const auto xa = x25519_generate();
    const auto xb = x25519_generate();
    secret_bytes ssa, ssb;
    ASSERT_TRUE(x25519_shared_secret(xa.private_key, xb.public_key, ssa));
    ASSERT_TRUE(x25519_shared_secret(xb.private_key, xa.public_key, ssb));
    inject_client ca(a.path);
    inject_client cb(b.path);
    const auto ka = ca.next_key(42, 0, ssa.span());
    ASSERT_TRUE(ka.ok()) << ka.message;
    const auto kb = cb.key_by_id(42, ka.id, 0, ssb.span());
    ASSERT_TRUE(kb.ok()) << kb.message;
    EXPECT_EQ(to_hex(ka.key.span()), to_hex(kb.key.span()));
    // It is the combiner output, not the raw QKD key.
    std::uint64_t idx = 0;
    while (test_key_id(seed, idx) != ka.id) {
        ++idx;
    }
    const auto qkd = test_key_material(seed, idx);
    EXPECT_NE(to_hex(ka.key.span()), to_hex(qkd));
    std::array<std::uint8_t, 32> expect{};
    ASSERT_TRUE(combine_hybrid_key(qkd, ssa.span(), {42, ka.id}, expect));
    EXPECT_EQ(to_hex(ka.key.span()), to_hex(expect));
}

TEST(inject, malformed_frames_get_errors_and_the_server_keeps_going)
{
    end_point a("a", -1);
    {
        inject_client c(a.path);
        // Wrong version.
        const std::vector<std::uint8_t> v2{0, 0, 0, 9, 2, 1, 0, 0, 0, 0, 1, 0, 32};
        auto r = c.raw(v2);
        EXPECT_EQ(r.status, inject_status::bad_request);
        EXPECT_NE(r.message.find("version"), std::string::npos);
        // KEY_BY_ID without the key ID.
        const std::vector<std::uint8_t> short_id{0, 0, 0, 9, 1, 2, 0, 0, 0, 0, 1, 0, 32};
        r = c.raw(short_id);
        EXPECT_EQ(r.status, inject_status::bad_request);
        EXPECT_NE(r.message.find("does not match"), std::string::npos);
        // Unknown op.
        const std::vector<std::uint8_t> op9{0, 0, 0, 9, 1, 9, 0, 0, 0, 0, 1, 0, 32};
        EXPECT_EQ(c.raw(op9).status, inject_status::bad_request);
        // Key larger than stored.
        EXPECT_EQ(c.next_key(1, 64).status, inject_status::bad_request);
    }
    {
        inject_client c(a.path);
        // Oversized length prefix: error then disconnect.
        const std::vector<std::uint8_t> huge{0, 1, 0, 0};
        const auto r = c.raw(huge);
        EXPECT_EQ(r.status, inject_status::bad_request);
        EXPECT_FALSE(c.next_key(1, 32).ok());
    }
    inject_client c(a.path);
    EXPECT_TRUE(c.next_key(1, 32).ok());
    EXPECT_EQ(a.store->available(-1), 15u);
}

TEST(inject, peer_with_another_uid_is_refused)
{
    temp_dir d;
    key_store::config sc;
    sc.db_path = d.path / "keys.db";
    sc.master_key_path = d.path / "master.key";
    auto store = open_key_store(sc);
    const auto m = test_key_material(seed, 0);
    const new_key k{test_key_id(seed, 0), m};
    ASSERT_TRUE(store->add(std::span(&k, 1), key_state::active).ok());
    {
        // Only a uid that is not ours is allowed: SO_PEERCRED refuses us.
        inject_server::config ic;
        ic.socket_path = (d.path / "x.sock").string();
        ic.allowed_uids = {::geteuid() + 4242};
        auto srv = start_inject_server(ic, *store);
        inject_client c(ic.socket_path);
        const auto r = c.next_key(1, 32);
        EXPECT_EQ(r.status, inject_status::unauthorized);
        EXPECT_NE(r.message.find("not allowed"), std::string::npos) << r.message;
        EXPECT_EQ(srv->counters().refused_peers.load(), 1u);
        EXPECT_EQ(store->available(-1), 1u);
    }
    if (::geteuid() != 0) {
        GTEST_SKIP() << "the setuid part needs root";
    }
    // A process running as another user (nobody) cannot get a key, even with a 0660 socket in a
    // world-searchable directory: file permissions or SO_PEERCRED stop it.
    ::chmod(d.path.c_str(), 0755);
    inject_server::config ic;
    ic.socket_path = (d.path / "y.sock").string();
    ic.mode = 0660;
    auto srv = start_inject_server(ic, *store);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
            std::_Exit(10);
        }
        try {
            inject_client c(ic.socket_path);
            const auto r = c.next_key(1, 32);
            std::_Exit(r.ok() ? 11 : 0);
        } catch (const std::exception&) {
            std::_Exit(0);  // connect refused by permissions
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    EXPECT_EQ(store->available(-1), 1u);
    // Our own uid still works.
    inject_client c(ic.socket_path);
    EXPECT_TRUE(c.next_key(1, 32).ok());
}
