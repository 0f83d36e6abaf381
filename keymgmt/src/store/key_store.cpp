// SQLite key store: schema, master key file handling, AES-256-GCM at rest, atomic take/grant, hand-out pools.
#include "qlink/keymgmt/key_store.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>
#include <utility>

namespace qlink::keymgmt {

std::string_view to_string(key_state s)
{
    switch (s) {
    case key_state::preactive: return "PREACTIVE";
    case key_state::active: return "ACTIVE";
    case key_state::deactivated: return "DEACTIVATED";
    case key_state::destroyed: return "DESTROYED";
    }
    return "?";
}

std::string_view to_string(store_status s)
{
    switch (s) {
    case store_status::ok: return "ok";
    case store_status::full: return "full";
    case store_status::not_enough: return "not_enough";
    case store_status::not_found: return "not_found";
    case store_status::already_served: return "already_served";
    case store_status::duplicate_id: return "duplicate_id";
    case store_status::bad_request: return "bad_request";
    case store_status::io_error: return "io_error";
    }
    return "?";
}

clock_fn system_clock_fn()
{
    return [] {
        return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    };
}

namespace {

constexpr std::size_t master_key_len = 32;
constexpr std::size_t nonce_len = 12;
constexpr std::size_t tag_len = 16;

secret_bytes load_or_create_master_key(const std::filesystem::path& path, bool create)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && create) {
        // Written to a temporary file, fsync'ed, then hard-linked into place (fails if another
        // process won the race): a crash never leaves a short master key behind.
        const std::string tmp = path.string() + ".tmp." + std::to_string(::getpid());
        ::unlink(tmp.c_str());
        const int wfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (wfd < 0) {
            throw std::runtime_error("cannot create master key file " + tmp + ": " + std::strerror(errno));
        }
        secret_bytes fresh(master_key_len);
        if (RAND_priv_bytes(fresh.data(), static_cast<int>(fresh.size())) != 1) {
            ::close(wfd);
            ::unlink(tmp.c_str());
            throw std::runtime_error("RAND_priv_bytes failed creating the master key");
        }
        const ssize_t n = ::write(wfd, fresh.data(), fresh.size());
        const bool synced = ::fsync(wfd) == 0;
        ::close(wfd);
        const bool linked = n == static_cast<ssize_t>(master_key_len) && synced && ::link(tmp.c_str(), path.c_str()) == 0;
        const int link_err = errno;
        ::unlink(tmp.c_str());
        if (!linked && link_err != EEXIST) {
            throw std::runtime_error("cannot write master key file " + path.string() + ": " + std::strerror(link_err));
        }
        if (linked) {
            const int dfd = ::open(path.parent_path().empty() ? "." : path.parent_path().c_str(), O_RDONLY | O_DIRECTORY);
            if (dfd >= 0) {
                ::fsync(dfd);
                ::close(dfd);
            }
            return fresh;
        }
        fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);  // lost the race: use theirs
    }
    if (fd < 0) {
        throw std::runtime_error("cannot open master key file " + path.string() + ": " + std::strerror(errno));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        throw std::runtime_error("master key file " + path.string() + " is not a regular file");
    }
    if ((st.st_mode & 077) != 0) {
        ::close(fd);
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw std::runtime_error("master key file " + path.string() + " has mode " + mode +
                                 ": group/world access refused, chmod 600 it");
    }
    if (st.st_uid != ::geteuid()) {
        ::close(fd);
        throw std::runtime_error("master key file " + path.string() + " is not owned by this user");
    }
    secret_bytes key(master_key_len);
    const ssize_t n = ::read(fd, key.data(), key.size());
    std::uint8_t extra = 0;
    const ssize_t more = ::read(fd, &extra, 1);
    ::close(fd);
    if (n != static_cast<ssize_t>(master_key_len) || more != 0) {
        throw std::runtime_error("master key file " + path.string() + " must hold exactly 32 bytes");
    }
    return key;
}

// One prepared statement, reset on scope exit so it never holds a read transaction open.
class stmt {
public:
    stmt(sqlite3* db, const char* sql)
    {
        if (sqlite3_prepare_v2(db, sql, -1, &s_, nullptr) != SQLITE_OK) {
            throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
        }
    }
    ~stmt() { sqlite3_finalize(s_); }
    stmt(const stmt&) = delete;
    stmt& operator=(const stmt&) = delete;
    sqlite3_stmt* get() { return s_; }
    void reset()
    {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }

private:
    sqlite3_stmt* s_ = nullptr;
};

struct reset_guard {
    stmt& s;
    ~reset_guard() { s.reset(); }
};

class sqlite_key_store final : public key_store {
    using count_table = std::array<std::array<std::int64_t, 2>, 4>;

public:
    sqlite_key_store(const config& c, clock_fn clock) : cfg_(c), clock_(std::move(clock))
    {
        master_ = load_or_create_master_key(cfg_.master_key_path, cfg_.create_master_key);

        if (sqlite3_open_v2(cfg_.db_path.c_str(), &db_,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr) != SQLITE_OK) {
            const std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
            sqlite3_close(db_);
            throw std::runtime_error("cannot open key store " + cfg_.db_path.string() + ": " + msg);
        }
        ::chmod(cfg_.db_path.c_str(), 0600);
        exec("PRAGMA journal_mode=WAL");
        exec(cfg_.full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        exec("PRAGMA busy_timeout=5000");
        exec("CREATE TABLE IF NOT EXISTS keys("
             " seq INTEGER PRIMARY KEY AUTOINCREMENT, id BLOB NOT NULL UNIQUE, part INTEGER NOT NULL,"
             " state INTEGER NOT NULL, created INTEGER NOT NULL, owner TEXT, size INTEGER NOT NULL,"
             " nonce BLOB, ct BLOB)");
        exec("CREATE INDEX IF NOT EXISTS keys_by_state ON keys(state, part, seq)");
        exec("CREATE TABLE IF NOT EXISTS grants(id BLOB NOT NULL, consumer TEXT NOT NULL,"
             " served INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(id, consumer))");
        ins_ = std::make_unique<stmt>(db_, "INSERT INTO keys(id, part, state, created, size, nonce, ct)"
                                           " VALUES(?,?,?,?,?,?,?)");
        // Two statements, each with its own index, so taking the oldest keys reads only those
        // rows: with "(?1 < 0 OR part = ?1)" in one statement SQLite sorted every ACTIVE key
        // on each hand-out (~0.1 s per enc_keys with 10^5 keys stored).
        exec("CREATE INDEX IF NOT EXISTS keys_by_state_seq ON keys(state, seq)");
        pick_ = std::make_unique<stmt>(db_, "SELECT id, nonce, ct, size FROM keys WHERE state = 1 AND part = ?1"
                                            " ORDER BY seq LIMIT ?2");
        pick_any_ = std::make_unique<stmt>(db_, "SELECT id, nonce, ct, size FROM keys WHERE state = 1"
                                                " ORDER BY seq LIMIT ?2");
        by_id_ = std::make_unique<stmt>(db_, "SELECT state, nonce, ct, size, owner FROM keys WHERE id = ?");
        // BLOBs compare with memcmp, so a prefix is the ID range [prefix 00.., prefix ff..]
        // and the UNIQUE index on id answers it without a scan.
        by_prefix_ = std::make_unique<stmt>(db_, "SELECT id, state FROM keys WHERE id BETWEEN ?1 AND ?2"
                                                 " ORDER BY id LIMIT ?3");
        set_deact_ = std::make_unique<stmt>(db_, "UPDATE keys SET state = 2, owner = ?, size = ? WHERE id = ?");
        kill_ = std::make_unique<stmt>(db_, "UPDATE keys SET state = 3, owner = COALESCE(?, owner), nonce = NULL,"
                                            " ct = NULL WHERE id = ?");
        kill_grants_ = std::make_unique<stmt>(db_, "DELETE FROM grants WHERE id = ?");
        grant_ = std::make_unique<stmt>(db_, "INSERT OR IGNORE INTO grants(id, consumer) VALUES(?, ?)");
        grant_get_ = std::make_unique<stmt>(db_, "SELECT served FROM grants WHERE id = ? AND consumer = ?");
        grant_serve_ = std::make_unique<stmt>(db_, "UPDATE grants SET served = 1 WHERE id = ? AND consumer = ?");
        grant_left_ = std::make_unique<stmt>(db_, "SELECT COUNT(*) FROM grants WHERE id = ? AND served = 0");
        activate_ = std::make_unique<stmt>(db_, "UPDATE keys SET state = 1 WHERE id = ? AND state = 0");
        data_version_ = std::make_unique<stmt>(db_, "PRAGMA data_version");
        count_all_ = std::make_unique<stmt>(db_, "SELECT state, part, COUNT(*) FROM keys GROUP BY state, part");
        // A pooled key that was never given to its owner goes back to ACTIVE whole (hand_out
        // recorded the truncated size; the ciphertext holds the full key plus the GCM tag).
        unpool_ = std::make_unique<stmt>(db_, "UPDATE keys SET state = 1, owner = NULL, size = length(ct) - 16"
                                              " WHERE id = ? AND state = 2");
        // Keys reserved for a hand-out pool and not known to be delivered (see recover_pools).
        exec("CREATE TABLE IF NOT EXISTS pool_reserved(id BLOB PRIMARY KEY) WITHOUT ROWID");
        reserved_add_ = std::make_unique<stmt>(db_, "INSERT OR IGNORE INTO pool_reserved(id) VALUES(?)");
        reserved_del_ = std::make_unique<stmt>(db_, "DELETE FROM pool_reserved WHERE id = ?");
        recover_pools();
        {
            std::lock_guard lock(mu_);
            cached_counts();
        }
        // Fetched once (last, so no throw above can leak it): EVP_aes_256_gcm() makes OpenSSL 3
        // look the cipher up again on every init, which showed in the hand-out profile.
        aes_gcm_ = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
        start_checkpointer();
        if (cfg_.handout_pool > 0) {
            refiller_ = std::thread([this] { refill_loop(); });
        }
    }

    ~sqlite_key_store() override
    {
        if (refiller_.joinable()) {
            {
                std::lock_guard pl(pool_mu_);
                stopping_ = true;
            }
            pool_cv_.notify_all();
            refiller_.join();
        }
        // Keys reserved for pools but never handed out go back to ACTIVE (if this fails they stay
        // recorded as handed out to their owner: wasted, never served twice).
        if (cfg_.handout_pool > 0) {
            std::lock_guard lock(mu_);
            txn t(*this);
            std::lock_guard pl(pool_mu_);
            if (t.ok && flush_pools_db() && t.commit()) {
                clear_pools();
            }
        }
        stop_checkpointer();  // nothing uses db_ any more
        unpool_.reset();
        reserved_add_.reset();
        reserved_del_.reset();
        ins_.reset();
        pick_.reset();
        pick_any_.reset();
        by_id_.reset();
        by_prefix_.reset();
        set_deact_.reset();
        kill_.reset();
        kill_grants_.reset();
        grant_.reset();
        grant_get_.reset();
        grant_serve_.reset();
        grant_left_.reset();
        activate_.reset();
        data_version_.reset();
        count_all_.reset();
        sqlite3_close(db_);
        EVP_CIPHER_free(aes_gcm_);
    }

    sqlite_key_store(const sqlite_key_store&) = delete;
    sqlite_key_store& operator=(const sqlite_key_store&) = delete;

    store_result add(std::span<const new_key> keys, key_state initial) override
    {
        if (keys.empty()) {
            return {store_status::bad_request, "no keys to add", 0};
        }
        if (initial != key_state::preactive && initial != key_state::active) {
            return {store_status::bad_request, "new keys start PREACTIVE or ACTIVE", 0};
        }
        for (const auto& k : keys) {
            if (k.material.empty() || k.material.size() > 65536) {
                return {store_status::bad_request, "key material must be 1..65536 bytes", 0};
            }
        }
        std::lock_guard lock(mu_);
        txn t(*this);
        if (!t.ok) {
            return io_fail("begin");
        }
        const std::uint64_t live = count_live();
        if (live + keys.size() > cfg_.max_key_count) {
            return {store_status::full,
                    "key store full: " + std::to_string(live) + " keys stored, max_key_count " +
                        std::to_string(cfg_.max_key_count),
                    0};
        }
        const std::int64_t now = clock_();
        std::vector<std::uint8_t> blob;
        for (const auto& k : keys) {
            std::array<std::uint8_t, nonce_len> nonce{};
            if (RAND_bytes(nonce.data(), nonce_len) != 1 || !seal(k.id, nonce, k.material, blob)) {
                return io_fail("encrypt");
            }
            auto* s = ins_->get();
            reset_guard g{*ins_};
            sqlite3_bind_blob(s, 1, k.id.data(), k.id.size(), SQLITE_STATIC);
            sqlite3_bind_int(s, 2, partition_of(k.id));
            sqlite3_bind_int(s, 3, static_cast<int>(initial));
            sqlite3_bind_int64(s, 4, now);
            sqlite3_bind_int64(s, 5, static_cast<std::int64_t>(k.material.size()));
            sqlite3_bind_blob(s, 6, nonce.data(), nonce_len, SQLITE_STATIC);
            sqlite3_bind_blob(s, 7, blob.data(), static_cast<int>(blob.size()), SQLITE_STATIC);
            const int rc = sqlite3_step(s);
            if (rc == SQLITE_CONSTRAINT) {
                return {store_status::duplicate_id, "key ID " + key_id_to_string(k.id) + " already stored", 0};
            }
            if (rc != SQLITE_DONE) {
                return io_fail("insert");
            }
            ++delta_[static_cast<std::size_t>(initial)][part_index(k.id)];
        }
        if (!t.commit()) {
            return io_fail("commit");
        }
        return {store_status::ok, {}, keys.size()};
    }

    store_result activate(std::span<const key_id> ids) override
    {
        std::lock_guard lock(mu_);
        txn t(*this);
        if (!t.ok) {
            return io_fail("begin");
        }
        std::size_t n = 0;
        for (const auto& id : ids) {
            reset_guard g{*activate_};
            sqlite3_bind_blob(activate_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
            if (sqlite3_step(activate_->get()) != SQLITE_DONE) {
                return io_fail("activate");
            }
            if (sqlite3_changes(db_) > 0) {
                ++n;
                --delta_[0][part_index(id)];
                ++delta_[1][part_index(id)];
            }
        }
        if (!t.commit()) {
            return io_fail("commit");
        }
        return {store_status::ok, {}, n};
    }

    store_result take_next(std::string_view owner, std::span<const std::string> grantees, std::size_t count,
                           std::size_t size_bytes, int partition, std::vector<served_key>& out) override
    {
        if (count == 0) {
            return {store_status::bad_request, "number of keys must be at least 1", 0};
        }
        // Pools only for hand-outs with grantees: without any the key is destroyed as it is
        // handed out, so a pooled one would lose its material before anyone received it.
        if (cfg_.handout_pool > 0 && !grantees.empty()) {
            return take_pooled(owner, grantees, count, size_bytes, partition, out);
        }
        std::vector<served_key> got;
        const auto r = batched([&] { return take_next_txn(owner, grantees, count, size_bytes, partition, got); });
        if (r.ok()) {
            for (auto& k : got) {
                out.push_back(std::move(k));
            }
        }
        return r;
    }

    // take_next inside the caller's transaction; `got` is only handed out if it commits.
    store_result take_next_txn(std::string_view owner, std::span<const std::string> grantees, std::size_t count,
                               std::size_t size_bytes, int partition, std::vector<served_key>& got)
    {
        {
            stmt& pick = partition < 0 ? *pick_any_ : *pick_;
            reset_guard g{pick};
            if (partition >= 0) {
                sqlite3_bind_int(pick.get(), 1, partition);
            }
            sqlite3_bind_int64(pick.get(), 2, static_cast<std::int64_t>(count));
            int rc = 0;
            while ((rc = sqlite3_step(pick.get())) == SQLITE_ROW) {
                served_key k;
                if (!read_row(pick.get(), 0, k)) {
                    return io_fail("decrypt");
                }
                got.push_back(std::move(k));
            }
            if (rc != SQLITE_DONE) {
                return io_fail("select");
            }
        }
        if (got.size() < count) {
            const std::size_t have = got.size();
            got.clear();  // rows read as ACTIVE here may be taken by the next transaction
            return {store_status::not_enough,
                    "requested " + std::to_string(count) + " keys but only " + std::to_string(have) +
                        " are available",
                    have};
        }
        for (auto& k : got) {
            if (size_bytes > k.material.size()) {
                got.clear();
                return {store_status::bad_request,
                        "requested key size " + std::to_string(size_bytes * 8) + " bits exceeds the stored key size " +
                            std::to_string(k.material.size() * 8),
                        0};
            }
            if (size_bytes != 0) {
                k.material.truncate(size_bytes);
            }
            if (!hand_out(k.id, owner, k.material.size(), grantees)) {
                got.clear();
                return io_fail("update");
            }
        }
        return {store_status::ok, {}, count};
    }

    store_result take_granted(std::string_view consumer, std::span<const key_id> ids, std::vector<served_key>& out,
                              std::string_view owner) override
    {
        if (ids.empty()) {
            return {store_status::bad_request, "no key IDs given", 0};
        }
        std::vector<served_key> got;
        const auto r = batched([&] { return take_granted_txn(consumer, ids, got, owner); });
        if (r.ok()) {
            for (auto& k : got) {
                out.push_back(std::move(k));
            }
        }
        return r;
    }

    store_result take_granted_txn(std::string_view consumer, std::span<const key_id> ids, std::vector<served_key>& got,
                                  std::string_view owner)
    {
        for (const auto& id : ids) {
            int served = -1;
            {
                reset_guard g{*grant_get_};
                bind_id_consumer(*grant_get_, id, consumer);
                const int rc = sqlite3_step(grant_get_->get());
                if (rc == SQLITE_ROW) {
                    served = sqlite3_column_int(grant_get_->get(), 0);
                } else if (rc != SQLITE_DONE) {
                    return io_fail("select");
                }
            }
            if (served < 0 || is_unissued(id)) {
                // A pooled key is granted in the store already but its owner does not have it yet.
                return {store_status::not_found, "key ID " + key_id_to_string(id) + " is not available to this SAE",
                        0};
            }
            if (served != 0) {
                return {store_status::already_served, "key ID " + key_id_to_string(id) + " was already delivered",
                        0};
            }
            served_key k;
            {
                reset_guard g{*by_id_};
                sqlite3_bind_blob(by_id_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
                if (sqlite3_step(by_id_->get()) != SQLITE_ROW ||
                    sqlite3_column_int(by_id_->get(), 0) != static_cast<int>(key_state::deactivated)) {
                    return {store_status::not_found, "key ID " + key_id_to_string(id) + " is no longer available", 0};
                }
                if (!owner.empty()) {
                    const auto* o = sqlite3_column_text(by_id_->get(), 4);
                    if (o == nullptr || std::string_view(reinterpret_cast<const char*>(o)) != owner) {
                        return {store_status::not_found,
                                "key ID " + key_id_to_string(id) + " was not issued to " + std::string(owner), 0};
                    }
                }
                k.id = id;
                if (!read_row(by_id_->get(), 1, k, &id)) {
                    return io_fail("decrypt");
                }
            }
            {
                reset_guard g{*grant_serve_};
                bind_id_consumer(*grant_serve_, id, consumer);
                if (sqlite3_step(grant_serve_->get()) != SQLITE_DONE) {
                    return io_fail("update");
                }
            }
            std::int64_t left = 0;
            {
                reset_guard g{*grant_left_};
                sqlite3_bind_blob(grant_left_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
                if (sqlite3_step(grant_left_->get()) != SQLITE_ROW) {
                    return io_fail("select");
                }
                left = sqlite3_column_int64(grant_left_->get(), 0);
            }
            if (left == 0) {
                if (!kill(id, nullptr)) {
                    return io_fail("destroy");
                }
                --delta_[2][part_index(id)];
                ++delta_[3][part_index(id)];
            }
            got.push_back(std::move(k));
        }
        return {store_status::ok, {}, ids.size()};
    }

    store_result reserve(std::string_view owner, std::span<const key_id> ids, std::size_t size_bytes,
                         std::span<const std::string> grantees, std::vector<served_key>* out) override
    {
        if (ids.empty()) {
            return {store_status::bad_request, "no key IDs given", 0};
        }
        std::vector<served_key> got;
        const auto r = batched([&] { return reserve_txn(owner, ids, size_bytes, grantees, got); });
        if (r.ok() && out != nullptr) {
            for (auto& k : got) {
                out->push_back(std::move(k));
            }
        }
        return r;
    }

    store_result reserve_txn(std::string_view owner, std::span<const key_id> ids, std::size_t size_bytes,
                             std::span<const std::string> grantees, std::vector<served_key>& got)
    {
        for (const auto& id : ids) {
            served_key k;
            {
                reset_guard g{*by_id_};
                sqlite3_bind_blob(by_id_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
                const int rc = sqlite3_step(by_id_->get());
                if (rc == SQLITE_DONE) {
                    return {store_status::not_found, "key ID " + key_id_to_string(id) + " is not in this store", 0};
                }
                if (rc != SQLITE_ROW) {
                    return io_fail("select");
                }
                const int st = sqlite3_column_int(by_id_->get(), 0);
                if (st != static_cast<int>(key_state::active)) {
                    return {st == static_cast<int>(key_state::preactive) ? store_status::not_found
                                                                          : store_status::already_served,
                            "key ID " + key_id_to_string(id) + " is " + std::string(to_string(key_state(st))), 0};
                }
                k.id = id;
                if (!read_row(by_id_->get(), 1, k, &id)) {
                    return io_fail("decrypt");
                }
            }
            if (size_bytes > k.material.size()) {
                return {store_status::bad_request, "requested key size exceeds the stored key size", 0};
            }
            if (size_bytes != 0) {
                k.material.truncate(size_bytes);
            }
            if (!hand_out(id, owner, k.material.size(), grantees)) {
                return io_fail("update");
            }
            got.push_back(std::move(k));
        }
        return {store_status::ok, {}, ids.size()};
    }

    store_result destroy(std::span<const key_id> ids) override
    {
        std::lock_guard lock(mu_);
        txn t(*this);
        if (!t.ok) {
            return io_fail("begin");
        }
        // pool_mu_ from the first kill to the commit: a pooled key being destroyed is not handed
        // out meanwhile, and stays pooled if the commit fails (database and pool agree).
        std::unique_lock pl(pool_mu_, std::defer_lock);
        if (cfg_.handout_pool > 0) {
            pl.lock();
        }
        for (const auto& id : ids) {
            if (!kill(id, nullptr)) {
                return io_fail("destroy");
            }
        }
        if (!forget_reserved(ids)) {
            return io_fail("destroy");
        }
        t.invalidates_counts = true;  // the keys' previous states are not tracked here
        if (!t.commit()) {
            return io_fail("commit");
        }
        if (pl.owns_lock()) {
            // A destroyed key must not be served from a pool either (dropped there lazily).
            for (const auto& id : ids) {
                unissue(id);
            }
        }
        return {store_status::ok, {}, ids.size()};
    }

    std::size_t expire() override
    {
        if (cfg_.key_lifetime.count() <= 0) {
            return 0;
        }
        std::lock_guard lock(mu_);
        const std::int64_t limit = clock_() - cfg_.key_lifetime.count();
        txn t(*this);
        if (!t.ok) {
            return 0;
        }
        // Pools hold the oldest keys, the first to expire: return them all to ACTIVE in this
        // transaction (refills need mu_, so none can interleave) and let the expiry decide.
        std::unique_lock pl(pool_mu_, std::defer_lock);
        if (cfg_.handout_pool > 0) {
            pl.lock();
            if (!flush_pools_db()) {
                return 0;
            }
        }
        stmt unres(db_, "DELETE FROM pool_reserved WHERE id IN (SELECT id FROM keys WHERE state < 3 AND created < ?)");
        sqlite3_bind_int64(unres.get(), 1, limit);
        if (sqlite3_step(unres.get()) != SQLITE_DONE) {
            return 0;
        }
        stmt gone(db_, "DELETE FROM grants WHERE id IN (SELECT id FROM keys WHERE state < 3 AND created < ?)");
        sqlite3_bind_int64(gone.get(), 1, limit);
        if (sqlite3_step(gone.get()) != SQLITE_DONE) {
            return 0;
        }
        stmt upd(db_, "UPDATE keys SET state = 3, nonce = NULL, ct = NULL WHERE state < 3 AND created < ?");
        sqlite3_bind_int64(upd.get(), 1, limit);
        if (sqlite3_step(upd.get()) != SQLITE_DONE) {
            return 0;
        }
        const auto n = static_cast<std::size_t>(sqlite3_changes(db_));
        t.invalidates_counts = true;
        if (!t.commit()) {
            return 0;
        }
        if (pl.owns_lock()) {
            clear_pools();
        }
        return n;
    }

    store_counts counts() override
    {
        const auto c = counts_now();
        // Keys reserved in pools are DEACTIVATED in the database but nobody has them yet.
        const std::int64_t pooled = pooled_[0].load() + pooled_[1].load();
        store_counts r;
        r.preactive = static_cast<std::uint64_t>(c[0][0] + c[0][1]);
        r.active = static_cast<std::uint64_t>(c[1][0] + c[1][1] + pooled);
        r.deactivated = static_cast<std::uint64_t>(std::max<std::int64_t>(0, c[2][0] + c[2][1] - pooled));
        r.destroyed = static_cast<std::uint64_t>(c[3][0] + c[3][1]);
        return r;
    }

    std::uint64_t available(int partition) override
    {
        const auto c = counts_now();
        const std::int64_t pooled =
            partition < 0 ? pooled_[0].load() + pooled_[1].load() : pooled_[static_cast<std::size_t>(partition & 1)].load();
        return static_cast<std::uint64_t>(
            std::max<std::int64_t>(0, (partition < 0 ? c[1][0] + c[1][1] : c[1][partition & 1]) + pooled));
    }

    stats_t stats() const override
    {
        stats_t r;
        r.commits = commits_.load();
        r.batched_ops = batched_ops_.load();
        r.pool_refills = pool_refills_.load();
        r.pool_served = pool_served_.load();
        r.pooled_keys = static_cast<std::uint64_t>(std::max<std::int64_t>(0, pooled_[0].load() + pooled_[1].load()));
        r.pool_unconfirmed_at_open = unconfirmed_at_open_;
        return r;
    }

    std::optional<key_state> state_of(const key_id& id) override
    {
        std::lock_guard lock(mu_);
        reset_guard g{*by_id_};
        sqlite3_bind_blob(by_id_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
        if (sqlite3_step(by_id_->get()) != SQLITE_ROW) {
            return std::nullopt;
        }
        return static_cast<key_state>(sqlite3_column_int(by_id_->get(), 0));
    }

    std::vector<std::pair<key_id, key_state>> find_by_prefix(std::span<const std::uint8_t> prefix,
                                                             std::size_t limit) override
    {
        std::vector<std::pair<key_id, key_state>> found;
        if (prefix.empty() || prefix.size() > key_id{}.size() || limit == 0) {
            return found;
        }
        key_id lo{};
        key_id hi{};
        hi.fill(0xff);
        std::copy(prefix.begin(), prefix.end(), lo.begin());
        std::copy(prefix.begin(), prefix.end(), hi.begin());
        std::lock_guard lock(mu_);
        reset_guard g{*by_prefix_};
        sqlite3_bind_blob(by_prefix_->get(), 1, lo.data(), lo.size(), SQLITE_STATIC);
        sqlite3_bind_blob(by_prefix_->get(), 2, hi.data(), hi.size(), SQLITE_STATIC);
        sqlite3_bind_int64(by_prefix_->get(), 3, static_cast<sqlite3_int64>(std::min<std::size_t>(limit, 1u << 20)));
        while (sqlite3_step(by_prefix_->get()) == SQLITE_ROW) {
            const void* blob = sqlite3_column_blob(by_prefix_->get(), 0);
            if (blob == nullptr || sqlite3_column_bytes(by_prefix_->get(), 0) != static_cast<int>(lo.size())) {
                continue;
            }
            key_id id{};
            std::memcpy(id.data(), blob, id.size());
            found.emplace_back(id, static_cast<key_state>(sqlite3_column_int(by_prefix_->get(), 1)));
        }
        return found;
    }

    const config& cfg() const override { return cfg_; }

private:
    // BEGIN IMMEDIATE takes the write lock up front so two processes never both read a key
    // as ACTIVE; anything not committed is rolled back on scope exit.
    // Counter changes of the open transaction (delta_) reach the cached counts only on commit.
    struct txn {
        explicit txn(sqlite_key_store& st) : s(st)
        {
            s.delta_ = {};
            ok = s.exec_ok("BEGIN IMMEDIATE");
        }
        ~txn()
        {
            if (ok && !done) {
                s.exec_ok("ROLLBACK");
            }
            s.delta_ = {};
        }
        bool commit()
        {
            done = s.exec_ok("COMMIT");
            if (done) {
                s.apply_delta(invalidates_counts);
            }
            return done;
        }
        bool invalidates_counts = false;
        txn(const txn&) = delete;
        txn& operator=(const txn&) = delete;
        sqlite_key_store& s;
        bool ok = false;
        bool done = false;
    };

    void exec(const char* sql)
    {
        char* err = nullptr;
        if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
            std::string msg = err ? err : "unknown";
            sqlite3_free(err);
            throw std::runtime_error("key store " + cfg_.db_path.string() + ": " + msg);
        }
    }

    bool exec_ok(const char* sql) { return sqlite3_exec(db_, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

    store_result io_fail(const char* what)
    {
        return {store_status::io_error, std::string("key store ") + what + " failed: " + sqlite3_errmsg(db_), 0};
    }

    std::uint64_t count_live()
    {
        const auto& c = cached_counts();
        std::int64_t n = 0;
        for (std::size_t st = 0; st < 3; ++st) {
            n += c[st][0] + c[st][1];
        }
        return static_cast<std::uint64_t>(n);
    }

    static std::size_t part_index(const key_id& id) { return static_cast<std::size_t>(partition_of(id)); }

    // Key counts per (state, partition), kept in memory and updated by every committed
    // transaction, so status requests and availability checks cost no table scan. Recounted
    // when another connection (another process) committed since: SQLite's data_version says so.
    // Caller holds mu_.
    const count_table& cached_counts()
    {
        std::int64_t dv = -1;
        {
            reset_guard g{*data_version_};
            if (sqlite3_step(data_version_->get()) == SQLITE_ROW) {
                dv = sqlite3_column_int64(data_version_->get(), 0);
            }
        }
        if (!counts_valid_ || dv != data_version_seen_ || dv < 0) {
            count_table c{};
            reset_guard g{*count_all_};
            while (sqlite3_step(count_all_->get()) == SQLITE_ROW) {
                const int st = sqlite3_column_int(count_all_->get(), 0);
                const int part = sqlite3_column_int(count_all_->get(), 1);
                c[static_cast<std::size_t>(std::clamp(st, 0, 3))][static_cast<std::size_t>(part & 1)] +=
                    sqlite3_column_int64(count_all_->get(), 2);
            }
            counts_ = c;
            counts_valid_ = true;
            data_version_seen_ = dv;
            publish_counts();
        }
        return counts_;
    }

    // Counts for status requests: exact when the store is idle, else the counts published by
    // the last commit. Waiting for mu_ would make a status request wait for the fsync of a
    // concurrent hand-out batch (a lock convoy that set the status p99).
    count_table counts_now()
    {
        std::unique_lock lock(mu_, std::try_to_lock);
        if (lock.owns_lock()) {
            return cached_counts();
        }
        count_table c{};
        for (std::size_t st = 0; st < 4; ++st) {
            for (std::size_t p = 0; p < 2; ++p) {
                c[st][p] = published_[st * 2 + p].load(std::memory_order_relaxed);
            }
        }
        return c;
    }

    void publish_counts()
    {
        for (std::size_t st = 0; st < 4; ++st) {
            for (std::size_t p = 0; p < 2; ++p) {
                published_[st * 2 + p].store(counts_[st][p], std::memory_order_relaxed);
            }
        }
    }

    void apply_delta(bool invalidate)
    {
        if (invalidate) {
            counts_valid_ = false;
        } else if (counts_valid_) {
            for (std::size_t st = 0; st < 4; ++st) {
                for (std::size_t p = 0; p < 2; ++p) {
                    counts_[st][p] += delta_[st][p];
                }
            }
            publish_counts();
        }
        delta_ = {};
    }

    // Group commit. Every hand-out must be durable (fsync'd with synchronous=FULL) before its keys
    // leave the process; concurrent hand-outs therefore share one transaction and one fsync: the
    // first caller becomes the leader, runs every queued operation in its own SAVEPOINT (a failing
    // one is rolled back alone), commits once and wakes the others. No caller sees its keys
    // before that commit returned, so the at-most-once guarantee is the same as with one
    // transaction per request. If the commit fails, every operation of the batch fails.
    // `undo` (optional) reverts in-memory effects of a successful `fn` when the batch's commit
    // fails; run_batch calls it under mu_, before any other transaction can run.
    struct batch_job {
        std::function<store_result()> fn;
        std::function<void()> undo;
        store_result result;
        bool done = false;
    };

    store_result batched(std::function<store_result()> fn, std::function<void()> undo = {})
    {
        batch_job job{std::move(fn), std::move(undo), {}, false};
        std::unique_lock ql(queue_mu_);
        queue_.push_back(&job);
        while (!job.done) {
            if (leader_busy_) {
                queue_cv_.wait(ql);
                continue;
            }
            leader_busy_ = true;
            std::vector<batch_job*> batch(queue_.begin(), queue_.end());
            queue_.clear();
            ql.unlock();
            run_batch(batch);
            ql.lock();
            leader_busy_ = false;
            queue_cv_.notify_all();
        }
        return job.result;
    }

    void run_batch(const std::vector<batch_job*>& batch)
    {
        std::lock_guard lock(mu_);
        txn t(*this);
        if (!t.ok) {
            for (auto* j : batch) {
                j->result = io_fail("begin");
            }
        } else {
            ++commits_;
            batched_ops_ += batch.size();
            // Pooled keys handed out since the last commit are delivered: drop their recovery rows.
            std::vector<key_id> issued;
            if (cfg_.handout_pool > 0) {
                std::lock_guard pl(pool_mu_);
                issued.swap(issued_pending_);
            }
            if (!forget_reserved(issued)) {
                requeue_issued(issued);
                issued.clear();
            }
            for (auto* j : batch) {
                const auto before = delta_;
                if (!exec_ok("SAVEPOINT op")) {
                    j->result = io_fail("savepoint");
                    continue;
                }
                try {
                    j->result = j->fn();
                } catch (const std::exception& e) {
                    j->result = {store_status::io_error, std::string("key store: ") + e.what(), 0};
                }
                if (!j->result.ok()) {
                    exec_ok("ROLLBACK TO op");
                    delta_ = before;
                }
                exec_ok("RELEASE op");
            }
            if (!t.commit()) {
                const auto fail = io_fail("commit");
                for (auto* j : batch) {
                    if (j->result.ok() && j->undo) {
                        j->undo();
                    }
                    j->result = fail;
                }
                requeue_issued(issued);
            }
        }
        std::lock_guard ql(queue_mu_);
        for (auto* j : batch) {
            j->done = true;
        }
    }

    // Inside a transaction: the keys are no longer "reserved for a pool, maybe not delivered".
    bool forget_reserved(std::span<const key_id> ids)
    {
        for (const auto& id : ids) {
            reset_guard g{*reserved_del_};
            sqlite3_bind_blob(reserved_del_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
            if (sqlite3_step(reserved_del_->get()) != SQLITE_DONE) {
                return false;
            }
        }
        return true;
    }

    // The transaction that was to record these deliveries did not commit: the next one does.
    void requeue_issued(const std::vector<key_id>& ids)
    {
        if (ids.empty()) {
            return;
        }
        std::lock_guard pl(pool_mu_);
        issued_pending_.insert(issued_pending_.end(), ids.begin(), ids.end());
    }

    // At open: rows left in pool_reserved are keys that were reserved for a hand-out pool when
    // the previous process stopped without closing the store (crash, kill -9), minus those whose
    // delivery a later commit recorded. Each was either handed out to its owner (after the last
    // commit) or never: nothing durable tells which, and returning one to ACTIVE could serve a
    // delivered key a second time. So they stay as the database says, handed out to their owner
    // (never served to a master again, each slave can fetch it once, expiry destroys it), and
    // their number is reported (stats().pool_unconfirmed_at_open; qkmd logs it and exports it in
    // /metrics) as an upper bound on the keys lost to the crash.
    void recover_pools()
    {
        stmt n(db_, "SELECT COUNT(*) FROM pool_reserved");
        if (sqlite3_step(n.get()) == SQLITE_ROW) {
            unconfirmed_at_open_ = static_cast<std::uint64_t>(sqlite3_column_int64(n.get(), 0));
        }
        n.reset();
        if (unconfirmed_at_open_ > 0) {
            exec("DELETE FROM pool_reserved");
        }
    }

    void bind_id_consumer(stmt& s, const key_id& id, std::string_view consumer)
    {
        sqlite3_bind_blob(s.get(), 1, id.data(), id.size(), SQLITE_STATIC);
        sqlite3_bind_text(s.get(), 2, consumer.data(), static_cast<int>(consumer.size()), SQLITE_STATIC);
    }

    // Reads (id?, nonce, ct, size) starting at column `col` and decrypts into k.
    bool read_row(sqlite3_stmt* s, int col, served_key& k, const key_id* known_id = nullptr)
    {
        if (known_id == nullptr) {
            if (sqlite3_column_bytes(s, col) != static_cast<int>(k.id.size())) {
                return false;
            }
            std::memcpy(k.id.data(), sqlite3_column_blob(s, col), k.id.size());
            ++col;
        }
        const int nlen = sqlite3_column_bytes(s, col);
        const auto* nonce = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, col));
        const int clen = sqlite3_column_bytes(s, col + 1);
        const auto* ct = static_cast<const std::uint8_t*>(sqlite3_column_blob(s, col + 1));
        const auto size = static_cast<std::size_t>(sqlite3_column_int64(s, col + 2));
        if (nlen != static_cast<int>(nonce_len) || clen <= static_cast<int>(tag_len) || nonce == nullptr ||
            ct == nullptr) {
            return false;
        }
        if (!open_sealed(k.id, {nonce, nonce_len}, {ct, static_cast<std::size_t>(clen)}, k.material)) {
            return false;
        }
        if (size < k.material.size()) {
            k.material.truncate(size);
        }
        return true;
    }

    // An ACTIVE key goes to `owner`: DEACTIVATED with grants, or DESTROYED when nobody else may have it.
    bool hand_out(const key_id& id, std::string_view owner, std::size_t size, std::span<const std::string> grantees)
    {
        --delta_[1][part_index(id)];
        ++delta_[grantees.empty() ? 3 : 2][part_index(id)];
        if (grantees.empty()) {
            return kill(id, &owner);
        }
        {
            reset_guard g{*set_deact_};
            sqlite3_bind_text(set_deact_->get(), 1, owner.data(), static_cast<int>(owner.size()), SQLITE_STATIC);
            sqlite3_bind_int64(set_deact_->get(), 2, static_cast<std::int64_t>(size));
            sqlite3_bind_blob(set_deact_->get(), 3, id.data(), id.size(), SQLITE_STATIC);
            if (sqlite3_step(set_deact_->get()) != SQLITE_DONE) {
                return false;
            }
        }
        for (const auto& who : grantees) {
            reset_guard g{*grant_};
            bind_id_consumer(*grant_, id, who);
            if (sqlite3_step(grant_->get()) != SQLITE_DONE) {
                return false;
            }
        }
        return true;
    }

    bool kill(const key_id& id, const std::string_view* owner)
    {
        {
            reset_guard g{*kill_};
            if (owner != nullptr) {
                sqlite3_bind_text(kill_->get(), 1, owner->data(), static_cast<int>(owner->size()), SQLITE_STATIC);
            } else {
                sqlite3_bind_null(kill_->get(), 1);
            }
            sqlite3_bind_blob(kill_->get(), 2, id.data(), id.size(), SQLITE_STATIC);
            if (sqlite3_step(kill_->get()) != SQLITE_DONE) {
                return false;
            }
        }
        reset_guard g{*kill_grants_};
        sqlite3_bind_blob(kill_grants_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
        return sqlite3_step(kill_grants_->get()) == SQLITE_DONE;
    }

    bool seal(const key_id& id, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> pt,
              std::vector<std::uint8_t>& out)
    {
        out.assign(pt.size() + tag_len, 0);
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        int len = 0;
        bool good = c != nullptr && aes_gcm_ != nullptr && EVP_EncryptInit_ex(c, aes_gcm_, nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) == 1 &&
                    EVP_EncryptInit_ex(c, nullptr, nullptr, master_.data(), nonce.data()) == 1 &&
                    EVP_EncryptUpdate(c, nullptr, &len, id.data(), static_cast<int>(id.size())) == 1 &&
                    EVP_EncryptUpdate(c, out.data(), &len, pt.data(), static_cast<int>(pt.size())) == 1 &&
                    EVP_EncryptFinal_ex(c, out.data() + len, &len) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, tag_len, out.data() + pt.size()) == 1;
        EVP_CIPHER_CTX_free(c);
        return good;
    }

    bool open_sealed(const key_id& id, std::span<const std::uint8_t> nonce, std::span<const std::uint8_t> ct,
                     secret_bytes& out)
    {
        const std::size_t n = ct.size() - tag_len;
        secret_bytes pt(n);
        EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
        int len = 0;
        std::array<std::uint8_t, tag_len> tag{};
        std::memcpy(tag.data(), ct.data() + n, tag_len);
        bool good = c != nullptr && aes_gcm_ != nullptr && EVP_DecryptInit_ex(c, aes_gcm_, nullptr, nullptr, nullptr) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) == 1 &&
                    EVP_DecryptInit_ex(c, nullptr, nullptr, master_.data(), nonce.data()) == 1 &&
                    EVP_DecryptUpdate(c, nullptr, &len, id.data(), static_cast<int>(id.size())) == 1 &&
                    EVP_DecryptUpdate(c, pt.data(), &len, ct.data(), static_cast<int>(n)) == 1 &&
                    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, tag_len, tag.data()) == 1 &&
                    EVP_DecryptFinal_ex(c, pt.data() + len, &len) == 1;
        EVP_CIPHER_CTX_free(c);
        if (good) {
            out = std::move(pt);
        }
        return good;
    }

    // WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the commit
    // that crosses 1000 WAL pages: that commit then copies ~4 MB into the database and fsyncs
    // it, and with group commit every request of the batch waits for it (a p99 spike). Here
    // the commit only signals; a thread with its own connection runs a PASSIVE checkpoint,
    // which never blocks writers or readers. Durability is unchanged: a checkpoint only copies
    // committed WAL frames. If the thread cannot be started, SQLite's own checkpoint stays on.
    static int wal_hook(void* self, sqlite3*, const char*, int pages)
    {
        auto* st = static_cast<sqlite_key_store*>(self);
        if (pages >= 1000) {
            {
                std::lock_guard lk(st->ckpt_mu_);
                st->ckpt_wanted_ = true;
            }
            st->ckpt_cv_.notify_one();
        }
        return SQLITE_OK;
    }

    void start_checkpointer()
    {
        if (sqlite3_open_v2(cfg_.db_path.c_str(), &ckpt_db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
            SQLITE_OK) {
            sqlite3_close(ckpt_db_);
            ckpt_db_ = nullptr;
            return;
        }
        sqlite3_busy_timeout(ckpt_db_, 5000);
        sqlite3_exec(ckpt_db_, cfg_.full_sync ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL", nullptr,
                     nullptr, nullptr);
        sqlite3_wal_autocheckpoint(ckpt_db_, 0);
        ckpt_thread_ = std::thread([this] {
            std::unique_lock lk(ckpt_mu_);
            for (;;) {
                ckpt_cv_.wait(lk, [&] { return ckpt_stop_ || ckpt_wanted_; });
                if (ckpt_stop_) {
                    return;
                }
                ckpt_wanted_ = false;
                lk.unlock();
                sqlite3_wal_checkpoint_v2(ckpt_db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
                ++checkpoints_;
                lk.lock();
            }
        });
        sqlite3_wal_hook(db_, &sqlite_key_store::wal_hook, this);  // replaces the automatic checkpoint
    }

    void stop_checkpointer()
    {
        if (ckpt_thread_.joinable()) {
            sqlite3_wal_autocheckpoint(db_, 1000);  // back to SQLite's own before the thread goes
            {
                std::lock_guard lk(ckpt_mu_);
                ckpt_stop_ = true;
            }
            ckpt_cv_.notify_one();
            ckpt_thread_.join();
        }
        sqlite3_close(ckpt_db_);
        ckpt_db_ = nullptr;
    }

    // Hand-out pools. A pool belongs to one (owner, grantees, size, partition). Its keys were
    // taken by take_next_txn in a committed transaction, exactly as if `owner` had received
    // them (DEACTIVATED, owner recorded, grants written); they are decrypted and wait in memory.
    // Serving one is then only a pop: nothing is written, because the durable record that says
    // "this key belongs to owner" already exists. Crash argument: after a crash the database
    // says every pooled key was handed out to its owner, so none is ever picked again (take_next
    // picks ACTIVE keys only) and each grantee can fetch it once, like any issued key; a key the
    // owner never received is merely wasted. While the process runs, unissued_ lists pooled
    // keys the owner does not have yet; take_granted refuses them, so a grantee cannot fetch a
    // key before its owner got it.
    struct pool_key {
        std::string owner;
        std::vector<std::string> grantees;  // sorted, unique
        std::size_t size = 0;
        int partition = -1;
        bool operator<(const pool_key& o) const
        {
            return std::tie(owner, grantees, size, partition) < std::tie(o.owner, o.grantees, o.size, o.partition);
        }
    };
    struct pool {
        std::deque<served_key> keys;
        bool refilling = false;
    };

    bool is_unissued(const key_id& id)
    {
        if (cfg_.handout_pool == 0) {
            return false;
        }
        std::lock_guard pl(pool_mu_);
        return unissued_.count(id) != 0;
    }

    // Caller holds pool_mu_.
    bool unissue(const key_id& id)
    {
        if (unissued_.erase(id) == 0) {
            return false;
        }
        --pooled_[part_index(id)];
        return true;
    }

    // ACTIVE keys of the partition, for sizing a reservation (a hint: the transaction decides).
    std::uint64_t active_hint(int partition)
    {
        const auto c = counts_now();
        return static_cast<std::uint64_t>(
            std::max<std::int64_t>(0, partition < 0 ? c[1][0] + c[1][1] : c[1][partition & 1]));
    }

    // Keys to reserve ahead: a pool's worth, but never more than an eighth of the ACTIVE keys,
    // so one (owner, slave) pair cannot hoard a small stock that other pairs need too.
    std::size_t pool_extra(int partition)
    {
        return static_cast<std::size_t>(std::min<std::uint64_t>(cfg_.handout_pool, active_hint(partition) / 8));
    }

    // Takes `n` keys for the pool durably (group commit) under a fresh ticket. The keys enter
    // unissued_ inside the transaction, before any grantee could see the committed grants, and
    // the recovery table pool_reserved records them in the same transaction. If the commit fails
    // they leave unissued_ again in run_batch, still under mu_: once mu_ is released they are
    // ACTIVE and the next transaction may reserve them for another pool, so unmarking them any
    // later (by ID, from this thread) could unmark that pool's keys and strand them DEACTIVATED
    // outside every pool. For the same reason the caller keeps only keys still marked with its
    // own ticket (an expiry may have returned them to ACTIVE and another pool reserved them).
    store_result reserve_for_pool(const pool_key& pk, std::size_t n, std::vector<served_key>& got,
                                  std::uint64_t& ticket)
    {
        {
            std::lock_guard pl(pool_mu_);
            ticket = ++last_ticket_;
        }
        std::vector<key_id> marked;
        auto r = batched(
            [&] {
                auto res = take_next_txn(pk.owner, pk.grantees, n, pk.size, pk.partition, got);
                if (!res.ok()) {
                    return res;
                }
                for (const auto& k : got) {
                    reset_guard g{*reserved_add_};
                    sqlite3_bind_blob(reserved_add_->get(), 1, k.id.data(), k.id.size(), SQLITE_STATIC);
                    if (sqlite3_step(reserved_add_->get()) != SQLITE_DONE) {
                        got.clear();
                        return io_fail("pool record");
                    }
                }
                std::lock_guard pl(pool_mu_);
                for (const auto& k : got) {
                    if (unissued_.emplace(k.id, ticket).second) {
                        ++pooled_[part_index(k.id)];
                        marked.push_back(k.id);
                    }
                }
                return res;
            },
            [&] {
                std::lock_guard pl(pool_mu_);
                for (const auto& id : marked) {
                    unissue(id);
                }
                marked.clear();
            });
        if (!r.ok()) {
            got.clear();
        } else {
            ++pool_refills_;
        }
        return r;
    }

    // Caller holds pool_mu_: the keys of a committed reservation join the back of the pool,
    // except any an expiry or destroy took back meanwhile (no longer marked with this ticket).
    void adopt(pool& p, std::vector<served_key>& got, std::uint64_t ticket)
    {
        for (auto& k : got) {
            const auto it = unissued_.find(k.id);
            if (it != unissued_.end() && it->second == ticket) {
                p.keys.push_back(std::move(k));
            }
        }
        got.clear();
    }

    store_result take_pooled(std::string_view owner, std::span<const std::string> grantees, std::size_t count,
                             std::size_t size_bytes, int partition, std::vector<served_key>& out)
    {
        pool_key pk{std::string(owner), std::vector<std::string>(grantees.begin(), grantees.end()), size_bytes,
                    partition < 0 ? -1 : (partition & 1)};
        std::sort(pk.grantees.begin(), pk.grantees.end());
        pk.grantees.erase(std::unique(pk.grantees.begin(), pk.grantees.end()), pk.grantees.end());
        std::unique_lock pl(pool_mu_);
        auto& p = pools_[pk];  // map nodes stay put: the reference survives unlocking
        for (int races = 0; races < 3;) {
            if (p.keys.size() >= count) {
                // Keys destroyed or returned to ACTIVE meanwhile (destroy, expire) are no longer
                // in unissued_: they are dropped here, so this loop always makes progress. The
                // valid ones stay marked until the whole request can be served.
                std::vector<served_key> mine;
                while (mine.size() < count && !p.keys.empty()) {
                    served_key k = std::move(p.keys.front());
                    p.keys.pop_front();
                    if (unissued_.count(k.id) != 0) {
                        mine.push_back(std::move(k));
                    }
                }
                if (mine.size() < count) {
                    for (auto it = mine.rbegin(); it != mine.rend(); ++it) {
                        p.keys.push_front(std::move(*it));
                    }
                    continue;  // now short: reserve below
                }
                pool_served_ += count;
                for (auto& k : mine) {
                    unissue(k.id);
                    issued_pending_.push_back(k.id);
                    out.push_back(std::move(k));
                }
                if (p.keys.size() < (cfg_.handout_pool + 1) / 2 && !p.refilling && !stopping_) {
                    p.refilling = true;
                    refill_queue_.push_back(pk);
                    pool_cv_.notify_one();
                }
                return {store_status::ok, {}, count};
            }
            if (p.refilling) {
                // One reservation per pool at a time: waiting for it batches the requests that
                // find the pool short instead of each committing its own reservation.
                pool_ready_cv_.wait(pl, [&] { return !p.refilling; });
                continue;
            }
            // Short and nobody refilling: reserve this request's keys plus a pool's worth in one
            // durable transaction (this caller waits for that commit, like take_next without pools).
            // Keys still pooled count towards the request (they may be too few for it alone).
            p.refilling = true;
            const std::size_t need = count - std::min(count, p.keys.size());
            pl.unlock();
            const std::size_t want = need + pool_extra(pk.partition);
            std::vector<served_key> got;
            std::uint64_t ticket = 0;
            auto r = reserve_for_pool(pk, want, got, ticket);
            if ((r.status == store_status::not_enough || r.status == store_status::bad_request) && want > need) {
                r = reserve_for_pool(pk, need, got, ticket);
            }
            pl.lock();
            p.refilling = false;
            pool_ready_cv_.notify_all();
            if (!r.ok()) {
                return r;
            }
            // The new keys go behind the ones pooled before (oldest first); the loop serves them.
            adopt(p, got, ticket);
            ++races;  // only an expiry/destroy racing with us can make the next round short again
        }
        return {store_status::io_error, "key store: hand-out kept racing with expiry/destroy; try again", 0};
    }

    void refill_loop()
    {
        std::unique_lock pl(pool_mu_);
        for (;;) {
            pool_cv_.wait(pl, [&] { return stopping_ || !refill_queue_.empty(); });
            if (stopping_) {
                return;
            }
            const pool_key pk = refill_queue_.front();
            refill_queue_.pop_front();
            pl.unlock();
            const std::size_t want = pool_extra(pk.partition);
            std::vector<served_key> got;
            std::uint64_t ticket = 0;
            store_result r{store_status::not_enough, {}, 0};
            if (want > 0) {
                r = reserve_for_pool(pk, want, got, ticket);
            }
            pl.lock();
            auto& p = pools_[pk];
            p.refilling = false;
            if (r.ok()) {
                adopt(p, got, ticket);
            }
            pool_ready_cv_.notify_all();
        }
    }

    // Inside an open transaction (caller holds mu_ and pool_mu_, and keeps pool_mu_ until the
    // commit returned, so no pooled key is handed out meanwhile): every unissued pooled key back
    // to ACTIVE in the database. The pools are emptied only once that commit succeeded
    // (clear_pools); if it fails, database and pools still agree (the keys stay pooled).
    bool flush_pools_db()
    {
        for (const auto& [id, ticket] : unissued_) {
            {
                reset_guard g{*kill_grants_};
                sqlite3_bind_blob(kill_grants_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
                if (sqlite3_step(kill_grants_->get()) != SQLITE_DONE) {
                    return false;
                }
            }
            reset_guard g{*unpool_};
            sqlite3_bind_blob(unpool_->get(), 1, id.data(), id.size(), SQLITE_STATIC);
            if (sqlite3_step(unpool_->get()) != SQLITE_DONE) {
                return false;
            }
            if (sqlite3_changes(db_) > 0) {
                --delta_[2][part_index(id)];
                ++delta_[1][part_index(id)];
            }
            if (!forget_reserved(std::span(&id, 1))) {
                return false;
            }
        }
        return forget_reserved(issued_pending_);
    }

    // Caller holds pool_mu_; the keys were returned to ACTIVE by a committed flush_pools_db.
    void clear_pools()
    {
        unissued_.clear();
        issued_pending_.clear();
        pooled_[0] = 0;
        pooled_[1] = 0;
        for (auto& [k, p] : pools_) {
            p.keys.clear();
        }
    }

    config cfg_;
    clock_fn clock_;
    secret_bytes master_;
    EVP_CIPHER* aes_gcm_ = nullptr;
    sqlite3* ckpt_db_ = nullptr;
    std::thread ckpt_thread_;
    std::mutex ckpt_mu_;
    std::condition_variable ckpt_cv_;
    bool ckpt_wanted_ = false;
    bool ckpt_stop_ = false;
    std::atomic<std::uint64_t> checkpoints_{0};
    std::mutex mu_;
    count_table counts_{};
    count_table delta_{};
    bool counts_valid_ = false;
    std::int64_t data_version_seen_ = -1;
    std::mutex queue_mu_;
    std::condition_variable queue_cv_;
    std::deque<batch_job*> queue_;
    bool leader_busy_ = false;
    std::atomic<std::uint64_t> commits_{0}, batched_ops_{0}, pool_refills_{0}, pool_served_{0};
    std::array<std::atomic<std::int64_t>, 8> published_{};
    // Hand-out pools (see take_pooled). pool_mu_ is taken after mu_, never before.
    std::mutex pool_mu_;
    std::condition_variable pool_cv_;        // wakes the refiller
    std::condition_variable pool_ready_cv_;  // a reservation finished
    std::map<pool_key, pool> pools_;
    // Every pooled key not yet given to its owner, in any pool, with its reservation's ticket.
    std::map<key_id, std::uint64_t> unissued_;
    std::uint64_t last_ticket_ = 0;
    // Pooled keys handed out since the last transaction: their pool_reserved rows go in the next one.
    std::vector<key_id> issued_pending_;
    std::uint64_t unconfirmed_at_open_ = 0;
    std::array<std::atomic<std::int64_t>, 2> pooled_{};  // unissued_ per partition
    std::deque<pool_key> refill_queue_;
    bool stopping_ = false;
    std::thread refiller_;
    sqlite3* db_ = nullptr;
    std::unique_ptr<stmt> ins_, pick_, pick_any_, by_id_, by_prefix_, set_deact_, kill_, kill_grants_, grant_, grant_get_,
        grant_serve_, grant_left_, activate_, data_version_, count_all_, unpool_, reserved_add_, reserved_del_;
};

}  // namespace

std::unique_ptr<key_store> open_key_store(const key_store::config& cfg, clock_fn clock)
{
    if (cfg.max_key_count == 0) {
        throw std::runtime_error("key store: max_key_count must be at least 1");
    }
    return std::make_unique<sqlite_key_store>(cfg, std::move(clock));
}

}  // namespace qlink::keymgmt
