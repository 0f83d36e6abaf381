// Tests terminal/src/daemon/link_keys.cpp: the qkmd injection adapter against two real key stores
// and injection servers (both ends hold the same keys), and the seeded test keys against openssl.
#include "qlink/keymgmt/inject.hpp"
#include "qlink/terminal/link_keys.hpp"
#include "support/temp_dir.hpp"
#include "unit/keymgmt/etsi014/test_pki.hpp"
#include "unit/keymgmt/store/test_keys.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

using namespace qlink;
using namespace qlink::terminal;
using keymgmt::test::test_key_id;
using keymgmt::test::test_key_material;
using keymgmt::test::to_hex;

namespace {

constexpr std::uint64_t seed = 4242;

using qlink::test::temp_dir;

// One end's qkmd: a key store holding keys 0..n-1 of `seed` and its injection socket.
struct kme {
    kme(const std::string& name, int partition, std::uint64_t n)
    {
        keymgmt::key_store::config sc;
        sc.db_path = dir.path / "keys.db";
        sc.master_key_path = dir.path / "master.key";
        sc.full_sync = false;
        store = keymgmt::open_key_store(sc);
        std::vector<std::array<std::uint8_t, 32>> mats;
        std::vector<keymgmt::new_key> keys;
        for (std::uint64_t i = 0; i < n; ++i) mats.push_back(test_key_material(seed, i));
        for (std::uint64_t i = 0; i < n; ++i) keys.push_back({test_key_id(seed, i), mats[i]});
        EXPECT_TRUE(store->add(keys, keymgmt::key_state::active).ok());
        socket = (dir.path / (name + ".sock")).string();
        start(partition);
    }
    void start(int partition)
    {
        keymgmt::inject_server::config ic;
        ic.socket_path = socket;
        ic.partition = partition;
        server = keymgmt::start_inject_server(ic, *store);
    }
    temp_dir dir;
    std::string socket;
    std::unique_ptr<keymgmt::key_store> store;
    std::unique_ptr<keymgmt::inject_server> server;
};

std::optional<std::uint64_t> index_of(const keymgmt::key_id& id, std::uint64_t n)
{
    for (std::uint64_t i = 0; i < n; ++i) {
        if (test_key_id(seed, i) == id) return i;
    }
    return std::nullopt;
}

}  // namespace

TEST(inject_key_source, both_ends_get_the_same_key_under_the_same_link_id)
{
    constexpr std::uint64_t n = 24;
    kme space("space", 1, n), ground("ground", 0, n);
    std::vector<std::string> errors;
    auto on_error = [&](const std::string& m) { errors.push_back(m); };
    // Separate directories: the receiving end knows nothing but the 32-bit link ID it reads in
    // the security header; its qkmd resolves it (KEY_BY_LINK_ID).
    auto space_dir = std::make_shared<key_id_directory>();
    auto ground_dir = std::make_shared<key_id_directory>();
    inject_key_source tx({space.socket, 1, on_error}, space_dir);
    inject_key_source rx({ground.socket, 1, on_error}, ground_dir);

    std::set<std::uint32_t> ids;
    for (int k = 0; k < 8; ++k) {
        std::array<std::uint8_t, 32> a{}, b{};
        const auto id = tx.next_key(a);
        ASSERT_TRUE(id.has_value()) << (errors.empty() ? "" : errors.back());
        EXPECT_TRUE(ids.insert(*id).second) << "link ID handed out twice";
        const auto uuid = space_dir->resolve(*id);
        ASSERT_TRUE(uuid.has_value());
        // The key came from qkmd: it is the stored material of that UUID, from space's partition (odd).
        const auto idx = index_of(*uuid, n);
        ASSERT_TRUE(idx.has_value());
        EXPECT_EQ(to_hex(a), to_hex(test_key_material(seed, *idx)));
        EXPECT_EQ(keymgmt::partition_of(*uuid), 1);
        EXPECT_EQ(*id, key_id_directory::link_id_of(*uuid));

        EXPECT_FALSE(ground_dir->resolve(*id).has_value());
        ASSERT_TRUE(rx.key_by_id(*id, b)) << (errors.empty() ? "" : errors.back());
        EXPECT_EQ(to_hex(a), to_hex(b));
        EXPECT_EQ(ground_dir->resolve(*id), uuid);  // learned from qkmd's reply
        // A restarted receiver (a new source, nothing remembered) asks for the key in use by its
        // link ID and gets it again under qkmd's lease (same uid, same SPI).
        inject_key_source restarted({ground.socket, 1, on_error}, std::make_shared<key_id_directory>());
        std::array<std::uint8_t, 32> again{};
        ASSERT_TRUE(restarted.key_by_id(*id, again)) << (errors.empty() ? "" : errors.back());
        EXPECT_EQ(to_hex(again), to_hex(a));
        // ... but not for another SPI (another link).
        inject_key_source other_link({ground.socket, 2, on_error}, std::make_shared<key_id_directory>());
        EXPECT_FALSE(other_link.key_by_id(*id, again));
    }
    // A link ID no key of this store has: refused and counted, not guessed.
    std::array<std::uint8_t, 32> c{};
    std::uint32_t stranger = 0x01020304;
    while (ids.count(stranger) != 0) ++stranger;
    EXPECT_FALSE(rx.key_by_id(stranger, c));
    EXPECT_EQ(tx.counters().keys_taken.load(), 8u);
    EXPECT_EQ(rx.counters().keys_taken.load(), 8u);
    EXPECT_EQ(rx.counters().unknown_ids.load(), 1u);
    EXPECT_EQ(rx.counters().errors.load(), 1u);
    EXPECT_EQ(errors.size(), 9u);  // the unknown link ID and the 8 refusals to the other SPI
    for (const auto& e : errors) {
        // Messages name IDs, never key material.
        for (std::uint64_t i = 0; i < n; ++i) EXPECT_EQ(e.find(to_hex(test_key_material(seed, i))), std::string::npos);
    }
}

TEST(inject_key_source, runs_dry_then_recovers_when_qkmd_comes_back)
{
    constexpr std::uint64_t n = 4;  // two keys in each partition
    kme space("space", 1, n);
    std::vector<std::string> errors;
    auto dir = std::make_shared<key_id_directory>();
    inject_key_source tx({space.socket, 1, [&](const std::string& m) { errors.push_back(m); }}, dir);
    std::array<std::uint8_t, 32> k{};
    int got = 0;
    while (tx.next_key(k)) ++got;
    EXPECT_EQ(got, 2);
    EXPECT_EQ(tx.counters().no_key.load(), 1u);

    // qkmd goes away: a clean failure with a message, then a reconnect once it is back.
    space.server->stop();
    space.server.reset();
    EXPECT_FALSE(tx.next_key(k));
    EXPECT_FALSE(errors.empty());
    const auto before = tx.counters().errors.load();
    EXPECT_FALSE(tx.next_key(k));  // cannot connect: counted again
    EXPECT_GT(tx.counters().errors.load(), before);
    std::vector<keymgmt::new_key> more;
    auto mat = test_key_material(seed, 1001);
    more.push_back({test_key_id(seed, 1001), mat});
    ASSERT_TRUE(space.store->add(more, keymgmt::key_state::active).ok());
    space.start(-1);
    const auto id = tx.next_key(k);
    ASSERT_TRUE(id.has_value()) << errors.back();
    // Now serving every partition: the oldest key not yet taken, which is what the store holds for it.
    const auto uuid = dir->resolve(*id);
    ASSERT_TRUE(uuid.has_value());
    const auto idx = index_of(*uuid, n);
    EXPECT_EQ(to_hex(k), idx ? to_hex(test_key_material(seed, *idx)) : to_hex(mat));
}

TEST(memory_keys, ends_agree_and_directions_never_share_a_key)
{
    constexpr std::uint32_t n = 50;
    auto g = make_memory_keys(7, n, true);
    auto s = make_memory_keys(7, n, false);
    std::set<std::uint32_t> ground_ids, space_ids;
    std::array<std::uint8_t, 32> a{}, b{};
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto gid = g.tx->next_key(a);
        ASSERT_TRUE(gid);
        EXPECT_EQ(*gid % 2, 1u);
        ASSERT_TRUE(s.rx->key_by_id(*gid, b));
        EXPECT_EQ(to_hex(a), to_hex(b));
        ground_ids.insert(*gid);
        const auto sid = s.tx->next_key(a);
        ASSERT_TRUE(sid);
        EXPECT_EQ(*sid % 2, 0u);
        ASSERT_TRUE(g.rx->key_by_id(*sid, b));
        EXPECT_EQ(to_hex(a), to_hex(b));
        space_ids.insert(*sid);
        EXPECT_FALSE(g.rx->key_by_id(*gid, b));  // a direction's key is not in the other's table
    }
    EXPECT_EQ(ground_ids.size(), n);
    EXPECT_EQ(space_ids.size(), n);
    EXPECT_FALSE(g.tx->next_key(a));  // exhausted, never recycled
    auto other = make_memory_keys(8, 1, true);
    std::array<std::uint8_t, 32> c{};
    ASSERT_TRUE(other.tx->next_key(c));
    auto again = make_memory_keys(7, 1, true);
    ASSERT_TRUE(again.tx->next_key(a));
    EXPECT_NE(to_hex(a), to_hex(c));
}

TEST(memory_keys, derivation_matches_openssl_hmac)
{
    // Key with link ID 4 is index 3: HMAC-SHA-256(key = seed as 8 bytes BE, "qlinkd-memory-key" || 3 as 8 bytes BE).
    auto s = make_memory_keys(0x0102030405060708ull, 2, false);
    std::array<std::uint8_t, 32> k{};
    ASSERT_TRUE(s.tx->next_key(k));   // ID 2
    const auto id = s.tx->next_key(k);  // ID 4
    ASSERT_EQ(id, 4u);
    std::string out;
    ASSERT_EQ(keymgmt::test::run_cmd("printf 'qlinkd-memory-key\\000\\000\\000\\000\\000\\000\\000\\003' | openssl dgst -sha256 "
                                     "-mac HMAC -macopt hexkey:0102030405060708 -r",
                                     &out),
              0);
    EXPECT_EQ(out.substr(0, 64), to_hex(k));
}
