// Durable key store: keys encrypted at rest in SQLite, each key served at most once per purpose.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qlink::keymgmt {

/// A key ID is a UUID (16 bytes); both ends of a link derive the same IDs.
using key_id = std::array<std::uint8_t, 16>;

/// Canonical 8-4-4-4-12 lower-case hex form.
std::string key_id_to_string(const key_id& id);
/// Parses the canonical form (either case); nullopt on anything else.
std::optional<key_id> parse_key_id(std::string_view text);

/// Owned secret bytes: allocated from the OpenSSL secure heap when it is initialised
/// (plain heap otherwise) and cleansed when released. Move-only so no stray copies exist.
class secret_bytes {
public:
    secret_bytes() = default;
    explicit secret_bytes(std::size_t size);
    explicit secret_bytes(std::span<const std::uint8_t> bytes);
    ~secret_bytes();
    secret_bytes(secret_bytes&& other) noexcept;
    secret_bytes& operator=(secret_bytes&& other) noexcept;
    secret_bytes(const secret_bytes&) = delete;
    secret_bytes& operator=(const secret_bytes&) = delete;

    std::uint8_t* data() { return data_; }
    const std::uint8_t* data() const { return data_; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }
    std::span<std::uint8_t> span() { return {data_, size_}; }
    std::span<const std::uint8_t> span() const { return {data_, size_}; }
    /// Keeps the first n bytes, cleansing the rest.
    void truncate(std::size_t n);

private:
    void release();
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0;
};

/// Lifecycle as in CCSDS SDLS extended procedures. A key is DEACTIVATED once handed out
/// to its first consumer and DESTROYED (material erased, ID kept as a tombstone so it can
/// never be stored again) once every entitled consumer has had it, or when it expires.
enum class key_state : std::uint8_t { preactive = 0, active = 1, deactivated = 2, destroyed = 3 };
std::string_view to_string(key_state s);

/// One key to store; material is borrowed for the call only.
struct new_key {
    key_id id;
    std::span<const std::uint8_t> material;
};

/// A key handed out by the store.
struct served_key {
    key_id id;
    secret_bytes material;
};

enum class store_status : std::uint8_t {
    ok,
    full,          ///< max_key_count reached
    not_enough,    ///< fewer matching keys than requested
    not_found,     ///< unknown key ID, or not granted to this consumer
    already_served,
    duplicate_id,  ///< key ID already in the store (or a tombstone of it)
    bad_request,   ///< invalid argument (sizes, empty lists)
    io_error,      ///< SQLite or crypto failure
};
std::string_view to_string(store_status s);

struct store_result {
    store_status status = store_status::ok;
    std::string message;  ///< human-readable reason when status != ok; never contains key material
    std::size_t count = 0;
    bool ok() const { return status == store_status::ok; }
};

/// Seconds since the Unix epoch; injected so tests control expiry.
using clock_fn = std::function<std::int64_t()>;
clock_fn system_clock_fn();

struct store_counts {
    std::uint64_t preactive = 0;
    std::uint64_t active = 0;
    std::uint64_t deactivated = 0;
    std::uint64_t destroyed = 0;
};

class key_store {
public:
    struct config {
        std::filesystem::path db_path;
        /// 32 raw bytes, mode 0600 (group/world access refused).
        std::filesystem::path master_key_path;
        /// Create the master key file (0600, random) when it does not exist.
        bool create_master_key = true;
        /// Keys that are not DESTROYED count against this limit.
        std::uint64_t max_key_count = 100000;
        /// A key not fully consumed this long after being stored is destroyed. 0 = never.
        std::chrono::seconds key_lifetime{7 * 24 * 3600};
        /// synchronous=FULL: a commit survives power loss, not only a process crash.
        bool full_sync = true;
        /// Hand-out pool (0 = off). take_next then reserves this many keys at a time for the same
        /// (owner, grantees, size, partition) in one durable transaction that records them as
        /// already handed out to that owner, and serves later requests from memory without a
        /// commit of their own; a background thread tops the pool up at half. After a crash
        /// the reserved keys count as delivered to the owner (never served to anyone else; each
        /// grantee can still fetch them once) and their number is reported at the next open
        /// (stats_t::pool_unconfirmed_at_open). Clean shutdown and expire() return them to ACTIVE.
        /// One process per database while pools are on. See docs/keymgmt.md, "Key store and
        /// crash safety".
        std::size_t handout_pool = 0;
    };

    /// Commit activity since open, for benchmarks and /metrics.
    struct stats_t {
        std::uint64_t commits = 0;        ///< group-commit transactions (one fsync each)
        std::uint64_t batched_ops = 0;    ///< operations run inside them
        std::uint64_t pool_refills = 0;   ///< durable pool reservations (part of commits)
        std::uint64_t pool_served = 0;    ///< keys handed out from a pool without a commit
        std::uint64_t pooled_keys = 0;    ///< keys reserved in pools right now
        /// Keys found reserved for a pool at open (the previous process did not close the store)
        /// and not known to have been handed out: kept as handed out to their owner (never served
        /// to a master again); at most this many pooled keys were lost to that stop. 0 after a
        /// clean close.
        std::uint64_t pool_unconfirmed_at_open = 0;
    };

    virtual ~key_store() = default;

    /// Stores keys in one transaction: all or nothing.
    virtual store_result add(std::span<const new_key> keys, key_state initial) = 0;
    /// PREACTIVE -> ACTIVE for the given IDs (e.g. once the peer confirmed them).
    virtual store_result activate(std::span<const key_id> ids) = 0;

    /// Atomically takes the `count` oldest ACTIVE keys whose ID matches the partition
    /// (see partition_of), truncated to size_bytes, records `owner` as having received them
    /// and grants each of `grantees` exactly one later take_granted(). The transaction is
    /// durable before the keys are returned, so a crash cannot serve them twice.
    virtual store_result take_next(std::string_view owner, std::span<const std::string> grantees,
                                   std::size_t count, std::size_t size_bytes, int partition,
                                   std::vector<served_key>& out) = 0;

    /// Atomically serves keys previously granted to `consumer` (all IDs or none). When
    /// `owner` is not empty the keys must also have been handed out to that owner first.
    virtual store_result take_granted(std::string_view consumer, std::span<const key_id> ids,
                                      std::vector<served_key>& out, std::string_view owner = {}) = 0;

    /// Takes specific ACTIVE keys on behalf of a peer (the peer KME or the far end of the
    /// link took them from its copy): truncated to size_bytes (0 = whole key), granted to
    /// `grantees` (none: destroyed at once). All IDs or none. When `out` is given the keys are
    /// also returned, i.e. served to `owner` now.
    virtual store_result reserve(std::string_view owner, std::span<const key_id> ids, std::size_t size_bytes,
                                 std::span<const std::string> grantees, std::vector<served_key>* out) = 0;

    /// Destroys keys: material erased, tombstone kept.
    virtual store_result destroy(std::span<const key_id> ids) = 0;

    /// Destroys keys older than key_lifetime; returns how many.
    virtual std::size_t expire() = 0;

    virtual store_counts counts() = 0;
    /// Keys that are ACTIVE and in the given partition.
    virtual std::uint64_t available(int partition) = 0;
    virtual std::optional<key_state> state_of(const key_id& id) = 0;
    /// Keys (any state, tombstones included) whose ID starts with `prefix` (1..16 bytes), in
    /// ID order, at most `limit`. The link names a key by the first 4 bytes of its ID (the SDLS
    /// security header has a 32-bit key ID field); this resolves that name at the far end.
    virtual std::vector<std::pair<key_id, key_state>> find_by_prefix(std::span<const std::uint8_t> prefix,
                                                                     std::size_t limit) = 0;
    virtual const config& cfg() const = 0;
    virtual stats_t stats() const { return {}; }
};

/// Partition of a key ID (0 or 1 from the last byte's low bit); -1 means "any". Two KMEs that
/// share the same keys each hand out keys of their own partition for enc_keys, so they never
/// pick the same key on their own.
int partition_of(const key_id& id);

/// Opens (creating when needed) the store. Throws std::runtime_error with a clear message on
/// configuration problems: unreadable or badly protected master key, SQLite errors.
std::unique_ptr<key_store> open_key_store(const key_store::config& cfg, clock_fn clock = system_clock_fn());

}  // namespace qlink::keymgmt
