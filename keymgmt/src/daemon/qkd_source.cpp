// QKD key source: reads the simulator's QKD event port, runs post-processing sessions with the peer qkmd, commits keys at both ends.
#include "qlink/keymgmt/qkd_source.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace qlink::keymgmt {

namespace {

using clock_type = std::chrono::steady_clock;

// ------------------------------------------------------------------------------ byte helpers

void put_le(std::vector<std::uint8_t>& o, std::uint64_t v, int n)
{
    for (int i = 0; i < n; ++i) {
        o.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
}

std::uint64_t get_le(const std::uint8_t* p, int n)
{
    std::uint64_t v = 0;
    for (int i = n - 1; i >= 0; --i) {
        v = (v << 8) | p[i];
    }
    return v;
}

// Bounds-checked little-endian reader for peer frames: a short frame reads as failure.
struct reader {
    std::span<const std::uint8_t> in;
    std::size_t pos = 0;
    bool ok = true;
    std::uint64_t le(int n)
    {
        if (!ok || in.size() - pos < static_cast<std::size_t>(n)) {
            ok = false;
            return 0;
        }
        const auto v = get_le(in.data() + pos, n);
        pos += static_cast<std::size_t>(n);
        return v;
    }
};

// ------------------------------------------------------------------------------ sockets

class fd_guard {
public:
    explicit fd_guard(int fd = -1) : fd_(fd) {}
    ~fd_guard() { reset(); }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const { return fd_; }
    void reset(int fd = -1)
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }

private:
    int fd_;
};

// Waits until fd is readable/writable, in 100 ms slices so `stop` is honoured. false on stop,
// deadline or error.
bool wait_fd(int fd, short events, const std::atomic<bool>& stop, clock_type::time_point deadline)
{
    while (!stop) {
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, 100);
        if (r > 0) {
            return true;
        }
        if (r < 0 && errno != EINTR) {
            return false;
        }
        if (clock_type::now() >= deadline) {
            return false;
        }
    }
    return false;
}

bool read_exact(int fd, std::uint8_t* buf, std::size_t n, const std::atomic<bool>& stop, clock_type::time_point deadline)
{
    std::size_t got = 0;
    while (got < n) {
        if (!wait_fd(fd, POLLIN, stop, deadline)) {
            return false;
        }
        const ssize_t r = ::recv(fd, buf + got, n - got, 0);
        if (r == 0) {
            return false;
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return false;
        }
        got += static_cast<std::size_t>(r);
    }
    return true;
}

bool write_all(int fd, const std::uint8_t* buf, std::size_t n, const std::atomic<bool>& stop, clock_type::time_point deadline)
{
    std::size_t sent = 0;
    while (sent < n) {
        if (!wait_fd(fd, POLLOUT, stop, deadline)) {
            return false;
        }
        const ssize_t r = ::send(fd, buf + sent, n - sent, MSG_NOSIGNAL);
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            return false;
        }
        sent += static_cast<std::size_t>(r);
    }
    return true;
}

int tcp_connect(const std::string& host, std::uint16_t port)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) {
        return -1;
    }
    int fd = -1;
    for (auto* a = res; a != nullptr && fd < 0; a = a->ai_next) {
        fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
            ::close(fd);
            fd = -1;
        }
    }
    ::freeaddrinfo(res);
    if (fd >= 0) {
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return fd;
}

int tcp_listen(const std::string& address, std::uint16_t port)
{
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    addrinfo* res = nullptr;
    if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr) {
        throw std::runtime_error("QKD source: peer_listen '" + address + "' is not a numeric IP address");
    }
    const int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    const bool ok = fd >= 0 && ::bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, 4) == 0;
    ::freeaddrinfo(res);
    if (!ok) {
        const std::string why = std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
        }
        throw std::runtime_error("QKD source: cannot listen on " + address + ":" + std::to_string(port) + ": " + why);
    }
    return fd;
}

// Sleeps up to `d` in small slices; false when stop was requested.
bool nap(std::chrono::milliseconds d, const std::atomic<bool>& stop)
{
    const auto end = clock_type::now() + d;
    while (!stop && clock_type::now() < end) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !stop;
}

// ------------------------------------------------------------------------------ event blocks

struct event_block {
    std::uint64_t id = 0;
    std::uint32_t flags = 0;
    double sim_time = 0;
    std::array<std::uint64_t, intensity_count> sent{};
    std::vector<alice_event> alice;
    std::vector<bob_event> bob;
    std::size_t detections() const { return std::max(alice.size(), bob.size()); }
};

// Pulses of the k-th block of a session are renumbered k * 2^40 + pulse, so concatenated blocks
// stay sorted; a pulse index at or above 2^40 is refused as garbage.
constexpr unsigned pulse_bits = 40;
constexpr std::uint64_t max_pulse = std::uint64_t{1} << pulse_bits;

// ------------------------------------------------------------------------------ persisted state

// What survives a restart: the authentication pool, the highest pad index that may have been
// used (never use a pad below it again) and a session whose keys are stored but not yet known
// to be stored at the peer.
struct saved_state {
    std::uint64_t watermark = 0;
    std::uint64_t base = 0;  // absolute index of the first pad in material
    std::vector<std::uint8_t> material;  // 16-byte hash key + pads (secret)
    std::uint64_t last_committed = 0;
    std::uint64_t pending = 0;  // session id, 0 = none
    std::uint64_t rollback_end = 0;
    std::vector<key_id> pending_ids;
    ~saved_state() { OPENSSL_cleanse(material.data(), material.size()); }
};

constexpr std::uint32_t state_magic = 0x31534B51;  // "QKS1"

void write_state_file(const std::filesystem::path& path, const saved_state& s)
{
    std::vector<std::uint8_t> b;
    put_le(b, state_magic, 4);
    put_le(b, s.watermark, 8);
    put_le(b, s.base, 8);
    put_le(b, s.last_committed, 8);
    put_le(b, s.pending, 8);
    put_le(b, s.rollback_end, 8);
    put_le(b, s.pending_ids.size(), 4);
    for (const auto& id : s.pending_ids) {
        b.insert(b.end(), id.begin(), id.end());
    }
    put_le(b, s.material.size(), 4);
    b.insert(b.end(), s.material.begin(), s.material.end());
    const auto tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    bool ok = fd >= 0;
    std::size_t off = 0;
    while (ok && off < b.size()) {
        const ssize_t w = ::write(fd, b.data() + off, b.size() - off);
        ok = w > 0;
        off += ok ? static_cast<std::size_t>(w) : 0;
    }
    ok = ok && ::fsync(fd) == 0;
    if (fd >= 0) {
        ::close(fd);
    }
    OPENSSL_cleanse(b.data(), b.size());
    ok = ok && ::rename(tmp.c_str(), path.c_str()) == 0;
    if (ok) {
        // The rename itself must be durable before a pad above the old watermark is used.
        const auto dir = path.parent_path().empty() ? std::filesystem::path(".") : path.parent_path();
        const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            ::fsync(dfd);
            ::close(dfd);
        }
    }
    if (!ok) {
        throw std::runtime_error("QKD source: cannot write state file " + path.string() + ": " + std::strerror(errno));
    }
}

std::vector<std::uint8_t> read_secret_file(const std::filesystem::path& path, const char* what)
{
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) {
        throw std::runtime_error(std::string("QKD source: cannot read ") + what + " " + path.string() + ": " +
                                 std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
        throw std::runtime_error(std::string("QKD source: ") + what + " " + path.string() +
                                 " must be a regular file without group/world access (chmod 600)");
    }
    std::ifstream in(path, std::ios::binary);
    std::vector<std::uint8_t> b((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return b;
}

bool parse_state(std::span<const std::uint8_t> b, saved_state& s)
{
    reader r{b};
    if (r.le(4) != state_magic) {
        return false;
    }
    s.watermark = r.le(8);
    s.base = r.le(8);
    s.last_committed = r.le(8);
    s.pending = r.le(8);
    s.rollback_end = r.le(8);
    const auto nids = r.le(4);
    if (!r.ok || nids > (b.size() - r.pos) / 16) {
        return false;
    }
    s.pending_ids.resize(nids);
    for (auto& id : s.pending_ids) {
        std::copy_n(b.data() + r.pos, 16, id.begin());
        r.pos += 16;
    }
    const auto nmat = r.le(4);
    if (!r.ok || nmat != b.size() - r.pos || nmat < 16 || nmat % 16 != 0) {
        return false;
    }
    s.material.assign(b.begin() + static_cast<std::ptrdiff_t>(r.pos), b.end());
    return true;
}

// ------------------------------------------------------------------------------ peer channel

// Frames on the classical channel: u32 length (type + payload) | u8 type | payload.
enum class frame : std::uint8_t { hello = 1, begin = 2, accept = 3, reject = 4, pp = 5, commit = 6 };
constexpr std::uint32_t max_frame = 64u << 20;
constexpr std::uint8_t channel_version = 1;
// The pad index sits at this offset of every post-processing envelope (postproc wire format).
constexpr std::size_t pp_pad_offset = 4 + 1 + 1 + 8 + 4;
// Pads are reserved (the watermark persisted) this many at a time.
constexpr std::uint64_t pad_reserve = 32;

class qkd_source_impl final : public qkd_key_source {
public:
    qkd_source_impl(const config& c, key_store& store) : cfg_(c), store_(store)
    {
        if (cfg_.block_detections < 100) {
            throw std::runtime_error("QKD source: block_detections must be at least 100");
        }
        load_pool();
        if (cfg_.who == role::alice) {
            listen_fd_.reset(tcp_listen(cfg_.peer_listen, cfg_.peer_port));
            sockaddr_storage a{};
            socklen_t len = sizeof a;
            ::getsockname(listen_fd_.get(), reinterpret_cast<sockaddr*>(&a), &len);
            bound_port_ = ntohs(a.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&a)->sin6_port
                                                        : reinterpret_cast<sockaddr_in*>(&a)->sin_port);
        }
        set_state("connecting");
        qkd_thread_ = std::thread([this] { qkd_loop(); });
        peer_thread_ = std::thread([this] { peer_loop(); });
    }
    ~qkd_source_impl() override { stop(); }

    std::string_view name() const override { return "qkd"; }
    std::uint16_t peer_port() const override { return bound_port_; }
    std::size_t poll(std::vector<produced_key>&, std::size_t) override { return 0; }  // stored directly

    source_stats stats() const override
    {
        std::lock_guard lock(mu_);
        return stats_;
    }

    void stop() override
    {
        stop_ = true;
        cv_.notify_all();
        if (qkd_thread_.joinable()) {
            qkd_thread_.join();
        }
        if (peer_thread_.joinable()) {
            peer_thread_.join();
        }
    }

private:
    // -------------------------------------------------------------------- state and pool
    void load_pool()
    {
        std::error_code ec;
        if (std::filesystem::exists(cfg_.state_file, ec)) {
            auto b = read_secret_file(cfg_.state_file, "QKD state file");
            const bool ok = parse_state(b, saved_);
            OPENSSL_cleanse(b.data(), b.size());
            if (!ok) {
                throw std::runtime_error("QKD source: state file " + cfg_.state_file.string() +
                                         " is corrupt (remove it only together with the key store and a fresh "
                                         "pre-shared key at both ends)");
            }
        } else {
            auto b = read_secret_file(cfg_.auth_key_file, "pre-shared authentication key");
            const std::size_t need = 16 + 16 * cfg_.postproc.min_auth_pads;
            if (b.size() < need) {
                OPENSSL_cleanse(b.data(), b.size());
                throw std::runtime_error("QKD source: pre-shared authentication key " + cfg_.auth_key_file.string() +
                                         " has " + std::to_string(b.size()) + " bytes; at least " +
                                         std::to_string(need) + " needed (16-byte hash key + 16 bytes per pad, " +
                                         std::to_string(cfg_.postproc.min_auth_pads) + " pads)");
            }
            b.resize(b.size() / 16 * 16);
            saved_.material = std::move(b);
            write_state_file(cfg_.state_file, saved_);
        }
        pool_ = std::make_unique<auth_key_pool>(saved_.material, saved_.base);
        pool_->skip_to(saved_.watermark);
    }

    // Re-saves the pool as it is now (after a commit or rollback).
    void save_pool()
    {
        pool_->export_material(saved_.material);
        saved_.base = pool_->next_pad_index();
        saved_.watermark = std::max(saved_.watermark, saved_.base);
        write_state_file(cfg_.state_file, saved_);
    }

    // Persists a watermark above `index` before any pad up to it is used.
    void reserve_pads(std::uint64_t index)
    {
        if (index + 2 < saved_.watermark) {
            return;
        }
        saved_.watermark = index + pad_reserve;
        write_state_file(cfg_.state_file, saved_);
    }

    void set_state(std::string s)
    {
        std::lock_guard lock(mu_);
        stats_.state = std::move(s);
    }

    // -------------------------------------------------------------------- QKD event port
    void qkd_loop()
    {
        auto backoff = std::chrono::milliseconds(100);
        while (!stop_) {
            fd_guard fd(tcp_connect(cfg_.qkd_host, cfg_.qkd_port));
            if (fd.get() < 0 || !qkd_session(fd.get())) {
                if (pass_ended_) {
                    return;
                }
                nap(backoff, stop_);
                backoff = std::min(backoff * 2, cfg_.max_backoff);
                continue;
            }
            backoff = std::chrono::milliseconds(100);
            if (pass_ended_) {
                return;
            }
        }
    }

    // One connection to the event port; false when it failed before any block arrived.
    bool qkd_session(int fd)
    {
        const std::string hello = std::string("QKD1 ") + (cfg_.who == role::alice ? "alice" : "bob") + "\n";
        const auto far = clock_type::now() + std::chrono::hours(24 * 365);
        const auto soon = clock_type::now() + cfg_.peer_timeout;
        if (!write_all(fd, reinterpret_cast<const std::uint8_t*>(hello.data()), hello.size(), stop_, soon)) {
            return false;
        }
        std::string line;
        for (std::uint8_t c = 0; line.size() < 128;) {
            if (!read_exact(fd, &c, 1, stop_, soon)) {
                return false;
            }
            if (c == '\n') {
                break;
            }
            line.push_back(static_cast<char>(c));
        }
        if (line.rfind("OK ", 0) != 0) {
            record_abort("qkd_port", "QKD port refused us: " + line.substr(0, 100));
            return false;
        }
        std::array<std::uint8_t, qkd_port_wire::header_bytes> h{};
        std::vector<std::uint8_t> rec;
        bool any = false;
        while (!stop_) {
            if (!read_exact(fd, h.data(), h.size(), stop_, far)) {
                return any;
            }
            event_block b;
            const auto magic = get_le(h.data(), 4);
            b.flags = static_cast<std::uint32_t>(get_le(h.data() + 4, 4));
            b.id = get_le(h.data() + 8, 8);
            const std::uint64_t t = get_le(h.data() + 16, 8);
            std::memcpy(&b.sim_time, &t, sizeof t);
            for (std::size_t k = 0; k < intensity_count; ++k) {
                b.sent[k] = get_le(h.data() + 24 + 8 * k, 8);
            }
            const auto count = static_cast<std::uint32_t>(get_le(h.data() + 48, 4));
            if (magic != qkd_port_wire::block_magic || count > qkd_port_wire::max_records) {
                // The stream is out of step; only a new connection can recover it.
                record_abort("qkd_port", "bad block header on the QKD port (magic or count); reconnecting");
                return any;
            }
            rec.resize(std::size_t{count} * qkd_port_wire::record_bytes);
            if (!read_exact(fd, rec.data(), rec.size(), stop_, far)) {
                return any;
            }
            any = true;
            std::uint64_t bad = 0;
            for (std::uint32_t i = 0; i < count; ++i) {
                const std::uint8_t* r = rec.data() + std::size_t{i} * qkd_port_wire::record_bytes;
                const std::uint64_t pulse = get_le(r, 8);
                const std::uint8_t inten = r[8], basis = r[9], bit = r[10];
                // Bob's intensity byte (0xFF by the spec) carries nothing for him and is ignored.
                if (pulse >= max_pulse || basis > 1 || bit > 1 || (cfg_.who == role::alice && inten > 2)) {
                    ++bad;
                    continue;
                }
                if (cfg_.who == role::alice) {
                    b.alice.push_back({pulse, static_cast<intensity_class>(inten), static_cast<qkd_basis>(basis), bit});
                } else {
                    b.bob.push_back({pulse, static_cast<qkd_basis>(basis), bit});
                }
            }
            std::sort(b.alice.begin(), b.alice.end(), [](const auto& x, const auto& y) { return x.pulse < y.pulse; });
            std::sort(b.bob.begin(), b.bob.end(), [](const auto& x, const auto& y) { return x.pulse < y.pulse; });
            // Post-processing needs strictly increasing pulses: a repeated index is a bad record.
            const auto dup_a = std::unique(b.alice.begin(), b.alice.end(),
                                           [](const auto& x, const auto& y) { return x.pulse == y.pulse; });
            const auto dup_b =
                std::unique(b.bob.begin(), b.bob.end(), [](const auto& x, const auto& y) { return x.pulse == y.pulse; });
            bad += static_cast<std::uint64_t>((b.alice.end() - dup_a) + (b.bob.end() - dup_b));
            b.alice.erase(dup_a, b.alice.end());
            b.bob.erase(dup_b, b.bob.end());
            const bool end = (b.flags & qkd_port_wire::flag_end_of_pass) != 0;
            {
                std::lock_guard lock(mu_);
                ++stats_.event_blocks;
                stats_.detections_received += b.detections();
                stats_.sim_time = b.sim_time;
                stats_.bad_records += bad;
                if (b.detections() > 0 && (b.flags & qkd_port_wire::flag_link_down) == 0) {
                    blocks_.push_back(std::move(b));
                    trim_blocks();
                }
                if (end) {
                    pass_ended_ = true;
                }
            }
            cv_.notify_all();
            if (end) {
                return true;
            }
        }
        return any;
    }

    // Keeps the queue bounded when the peer is away (oldest blocks go first). Caller holds mu_.
    void trim_blocks()
    {
        std::size_t total = 0;
        for (const auto& b : blocks_) {
            total += b.detections();
        }
        while (blocks_.size() > 1 && total > 4 * cfg_.block_detections) {
            total -= blocks_.front().detections();
            blocks_.pop_front();
            ++stats_.blocks_discarded;
        }
    }

    // -------------------------------------------------------------------- classical channel
    struct conn {
        int fd;
        qkd_source_impl& self;
        bool send(frame type, std::span<const std::uint8_t> payload) const
        {
            std::vector<std::uint8_t> b;
            b.reserve(5 + payload.size());
            put_le(b, payload.size() + 1, 4);
            b.push_back(static_cast<std::uint8_t>(type));
            b.insert(b.end(), payload.begin(), payload.end());
            return write_all(fd, b.data(), b.size(), self.stop_, clock_type::now() + self.cfg_.peer_timeout);
        }
        // Reads one frame; false on EOF, timeout, stop or an oversized/empty frame.
        bool recv(frame& type, std::vector<std::uint8_t>& payload, clock_type::time_point deadline) const
        {
            std::array<std::uint8_t, 5> h{};
            if (!read_exact(fd, h.data(), 4, self.stop_, deadline)) {
                return false;
            }
            const auto len = static_cast<std::uint32_t>(get_le(h.data(), 4));
            if (len == 0 || len > max_frame) {
                return false;
            }
            if (!read_exact(fd, h.data() + 4, 1, self.stop_, deadline)) {
                return false;
            }
            type = static_cast<frame>(h[4]);
            payload.resize(len - 1);
            return read_exact(fd, payload.data(), payload.size(), self.stop_, deadline);
        }
    };

    void peer_loop()
    {
        auto backoff = std::chrono::milliseconds(100);
        while (!stop_) {
            fd_guard fd;
            if (cfg_.who == role::alice) {
                if (!wait_fd(listen_fd_.get(), POLLIN, stop_, clock_type::now() + std::chrono::seconds(1))) {
                    continue;
                }
                fd.reset(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            } else {
                fd.reset(tcp_connect(cfg_.peer_host, cfg_.peer_port));
                if (fd.get() < 0) {
                    set_state("connecting");
                    nap(backoff, stop_);
                    backoff = std::min(backoff * 2, cfg_.max_backoff);
                    continue;
                }
            }
            if (fd.get() < 0) {
                continue;
            }
            const int one = 1;
            ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            backoff = std::chrono::milliseconds(100);
            try {
                run_connection(conn{fd.get(), *this});
            } catch (const std::exception& e) {
                // State file I/O failed: stop producing keys rather than risk reusing a pad.
                record_abort("internal", std::string("QKD source stopped: ") + e.what());
                set_state("failed");
                return;
            }
            fd.reset();
            if (!stop_) {
                set_state("connecting");
                nap(std::chrono::milliseconds(100), stop_);
            }
        }
    }

    void record_abort(const std::string& reason, const std::string& detail)
    {
        if (stop_) {
            return;  // shutting down: the session was cut by us, not lost
        }
        std::lock_guard lock(mu_);
        ++stats_.aborts;
        ++stats_.aborts_by_reason[reason];
        stats_.last_abort = detail;
    }

    void run_connection(const conn& c)
    {
        // A session recorded as pending whose keys never reached the store (crash in between)
        // is undone before we tell the peer anything: it must not activate keys we lack.
        if (saved_.pending != 0 && !pending_keys_stored()) {
            settle(false);
        }
        // Hello: both ends say what they hold, then settle a session left half-committed.
        std::vector<std::uint8_t> p;
        p.push_back(channel_version);
        p.push_back(cfg_.who == role::alice ? 0 : 1);
        put_le(p, pool_->next_pad_index(), 8);
        put_le(p, saved_.last_committed, 8);
        put_le(p, saved_.pending, 8);
        if (!c.send(frame::hello, p)) {
            return;
        }
        frame t{};
        if (!c.recv(t, p, clock_type::now() + cfg_.peer_timeout) || t != frame::hello) {
            return;
        }
        reader r{p};
        const auto ver = r.le(1), peer_role = r.le(1);
        r.le(8);
        const auto peer_committed = r.le(8), peer_pending = r.le(8);
        if (!r.ok || ver != channel_version || peer_role == (cfg_.who == role::alice ? 0u : 1u)) {
            record_abort("protocol_error", "peer hello malformed or from the same role");
            return;
        }
        if (saved_.pending != 0) {
            settle(saved_.pending == peer_pending || peer_committed >= saved_.pending);
        }
        set_state("accumulating");
        if (cfg_.who == role::bob) {
            bob_loop(c);
        } else {
            alice_loop(c);
        }
    }

    // Finishes a session whose keys are stored PREACTIVE: activate when the peer stored them too,
    // otherwise destroy them and drop the pads the session added.
    bool pending_keys_stored()
    {
        for (const auto& id : saved_.pending_ids) {
            if (!store_.state_of(id).has_value()) {
                return false;
            }
        }
        return true;
    }

    void settle(bool peer_has_it)
    {
        if (peer_has_it && pending_keys_stored()) {
            std::vector<key_id> to_activate;
            for (const auto& id : saved_.pending_ids) {
                if (store_.state_of(id) == key_state::preactive) {
                    to_activate.push_back(id);
                }
            }
            if (!to_activate.empty() && !store_.activate(to_activate).ok()) {
                throw std::runtime_error("cannot activate committed keys");
            }
            saved_.last_committed = saved_.pending;
            std::lock_guard lock(mu_);
            ++stats_.sessions_ok;
            stats_.keys_produced += saved_.pending_ids.size();
            stats_.qber = last_.qber;
            stats_.reconciliation_efficiency = last_.efficiency;
            stats_.secret_key_rate_bps = last_.rate;
            stats_.ec_leak_bits = last_.leak;
        } else {
            std::vector<key_id> present;
            for (const auto& id : saved_.pending_ids) {
                if (store_.state_of(id).has_value()) {
                    present.push_back(id);
                }
            }
            if (!present.empty()) {
                store_.destroy(present);
            }
            pool_->truncate_end(saved_.rollback_end);
            record_abort("not_committed", "session " + std::to_string(saved_.pending) +
                                              " finished here but not at the peer: its keys were destroyed");
        }
        saved_.pending = 0;
        saved_.pending_ids.clear();
        save_pool();
    }

    // True when the connection is closed by the peer (checked while waiting for events).
    static bool peer_gone(int fd)
    {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 0) <= 0) {
            return false;
        }
        std::uint8_t b = 0;
        return ::recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) <= 0;
    }

    void bob_loop(const conn& c)
    {
        while (!stop_) {
            std::vector<event_block> chosen;
            {
                std::unique_lock lock(mu_);
                std::size_t total = 0, n = 0;
                for (; n < blocks_.size() && total < cfg_.block_detections; ++n) {
                    total += blocks_[n].detections();
                }
                const bool full = total >= cfg_.block_detections;
                const bool flush = pass_ended_ && total >= cfg_.block_detections / 2 && n == blocks_.size();
                if (!full && !flush) {
                    if (pass_ended_) {
                        stats_.state = "pass_ended";
                    }
                    cv_.wait_for(lock, std::chrono::milliseconds(200));
                    lock.unlock();
                    if (peer_gone(c.fd)) {
                        return;
                    }
                    continue;
                }
                for (std::size_t i = 0; i < n; ++i) {
                    chosen.push_back(std::move(blocks_.front()));
                    blocks_.pop_front();
                }
            }
            std::vector<std::uint8_t> p;
            put_le(p, pool_->next_pad_index(), 8);
            put_le(p, chosen.size(), 4);
            for (const auto& b : chosen) {
                put_le(p, b.id, 8);
            }
            frame t{};
            if (!c.send(frame::begin, p) || !c.recv(t, p, clock_type::now() + 2 * cfg_.peer_timeout)) {
                record_abort("connection_lost", "peer connection lost before a session started");
                return;
            }
            reader r{p};
            const auto alice_next = r.le(8);
            if (t == frame::reject) {
                std::lock_guard lock(mu_);
                stats_.blocks_discarded += chosen.size();
                continue;
            }
            if (t != frame::accept || !r.ok) {
                record_abort("protocol_error", "unexpected reply to BEGIN");
                return;
            }
            if (!run_session(c, chosen, std::max(alice_next, pool_->next_pad_index()))) {
                return;
            }
        }
    }

    void alice_loop(const conn& c)
    {
        while (!stop_) {
            frame t{};
            std::vector<std::uint8_t> p;
            // Bob may wait long for events; only a dead connection or stop ends this.
            if (!c.recv(t, p, clock_type::now() + std::chrono::hours(24 * 365))) {
                return;
            }
            reader r{p};
            const auto bob_next = r.le(8);
            const auto n = r.le(4);
            if (t != frame::begin || !r.ok || n == 0 || n > (p.size() - r.pos) / 8) {
                record_abort("protocol_error", "expected BEGIN from bob");
                return;
            }
            std::vector<std::uint64_t> ids(n);
            for (auto& id : ids) {
                id = r.le(8);
            }
            std::vector<event_block> chosen;
            if (!collect(ids, chosen)) {
                std::uint8_t why = 1;
                if (!c.send(frame::reject, std::span(&why, 1))) {
                    return;
                }
                std::lock_guard lock(mu_);
                stats_.blocks_discarded += ids.size();
                continue;
            }
            p.clear();
            put_le(p, pool_->next_pad_index(), 8);
            if (!c.send(frame::accept, p)) {
                return;
            }
            if (!run_session(c, chosen, std::max(bob_next, pool_->next_pad_index()))) {
                return;
            }
        }
    }

    // Alice: waits (bounded) until every requested block is here, then takes them; older blocks
    // are dropped (bob will never ask for them).
    bool collect(const std::vector<std::uint64_t>& ids, std::vector<event_block>& out)
    {
        const std::uint64_t last = *std::max_element(ids.begin(), ids.end());
        std::unique_lock lock(mu_);
        const auto deadline = clock_type::now() + cfg_.peer_timeout;
        auto newest = [&] { return blocks_.empty() ? 0 : blocks_.back().id; };
        while (!stop_ && !pass_ended_ && (blocks_.empty() || newest() < last) && clock_type::now() < deadline) {
            cv_.wait_for(lock, std::chrono::milliseconds(100));
        }
        bool all = true;
        for (const auto id : ids) {
            const auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const auto& b) { return b.id == id; });
            if (it == blocks_.end()) {
                all = false;
                break;
            }
        }
        if (all) {
            for (const auto id : ids) {
                const auto it = std::find_if(blocks_.begin(), blocks_.end(), [&](const auto& b) { return b.id == id; });
                out.push_back(std::move(*it));
                blocks_.erase(it);
            }
        }
        std::erase_if(blocks_, [&](const auto& b) { return b.id <= last; });
        return all;
    }

    // One post-processing session over the channel, then the two-step commit. false = the
    // connection is no longer usable (it is closed and re-established).
    bool run_session(const conn& c, const std::vector<event_block>& chosen, std::uint64_t start)
    {
        set_state("session");
        reserve_pads(start);
        pool_->skip_to(start);
        const std::uint64_t session_id = start + 1;  // unique: every session uses at least one pad
        std::vector<alice_event> a;
        std::vector<bob_event> b;
        std::array<std::uint64_t, intensity_count> sent{};
        for (std::size_t k = 0; k < chosen.size(); ++k) {
            const std::uint64_t off = std::uint64_t{k} << pulse_bits;
            for (auto e : chosen[k].alice) {
                e.pulse += off;
                a.push_back(e);
            }
            for (auto e : chosen[k].bob) {
                e.pulse += off;
                b.push_back(e);
            }
            for (std::size_t i = 0; i < intensity_count; ++i) {
                sent[i] += chosen[k].sent[i];
            }
        }
        const double step = chosen.size() > 1
                                ? (chosen.back().sim_time - chosen.front().sim_time) / static_cast<double>(chosen.size() - 1)
                                : 1.0;
        const double span_s = chosen.back().sim_time - chosen.front().sim_time + (step > 0 ? step : 1.0);
        auto pp = cfg_.postproc;
        if (cfg_.who == role::alice) {
            // Alice's choices (sample, seeds, key-ID nonce) must be unpredictable.
            if (RAND_bytes(reinterpret_cast<unsigned char*>(&pp.seed), sizeof pp.seed) != 1) {
                throw std::runtime_error("RAND_bytes failed");
            }
        }
        const std::uint64_t rollback_end = pool_->end_pad_index();
        std::unique_ptr<postproc_endpoint> ep;
        try {
            ep = cfg_.who == role::alice ? create_alice_endpoint(pp, session_id, alice_block{a, sent}, *pool_)
                                         : create_bob_endpoint(pp, session_id, bob_block{b}, *pool_);
        } catch (const std::invalid_argument& e) {
            throw std::runtime_error(std::string("post-processing configuration: ") + e.what());
        }
        std::vector<std::uint8_t> in, out;
        reserve_pads(pool_->next_pad_index());
        if (ep->start(out) && !c.send(frame::pp, out)) {
            record_abort("connection_lost", "peer connection lost during a session");
            return false;
        }
        while (!ep->finished()) {
            frame t{};
            if (!c.recv(t, in, clock_type::now() + cfg_.peer_timeout) || t != frame::pp) {
                record_abort("connection_lost", "peer connection lost or out of step during session " +
                                                    std::to_string(session_id));
                return false;
            }
            std::uint64_t pad = pool_->next_pad_index();
            if (in.size() >= pp_pad_offset + 8) {
                pad = std::max(pad, get_le(in.data() + pp_pad_offset, 8));
            }
            reserve_pads(pad + 1);
            if (ep->on_message(in, out) && !c.send(frame::pp, out)) {
                record_abort("connection_lost", "peer connection lost during a session");
                return false;
            }
        }
        const auto& rep = ep->report();
        if (rep.reason != abort_reason::none) {
            record_abort(std::string(to_string(rep.reason)), rep.detail);
            // The ends may be out of step (one sent an abort the other never read): start afresh.
            return false;
        }
        auto keys = ep->take_keys();
        last_.qber = rep.qber_z;
        last_.efficiency = rep.ec_efficiency;
        last_.leak = static_cast<double>(rep.leaked_ec_bits);
        last_.rate = span_s > 0 ? static_cast<double>(rep.secret_bits) / span_s : std::nan("");
        // Step 1: remember the session (ids, how to undo the pool refill), then store PREACTIVE.
        saved_.pending = session_id;
        saved_.rollback_end = rollback_end;
        saved_.pending_ids.clear();
        for (const auto& k : keys) {
            saved_.pending_ids.push_back(k.id());
        }
        save_pool();
        std::vector<new_key> nk;
        for (const auto& k : keys) {
            nk.push_back({k.id(), k.bytes()});
        }
        bool stored = true;
        if (!nk.empty()) {
            const auto res = store_.add(nk, key_state::preactive);
            stored = res.ok();
            if (!stored) {
                record_abort("store", "cannot store session keys: " + res.message);
            }
        }
        for (auto& k : keys) {
            k.wipe();
        }
        // Step 2: both ends say whether they stored; keys go ACTIVE only when both did.
        std::vector<std::uint8_t> p;
        put_le(p, session_id, 8);
        p.push_back(stored ? 1 : 0);
        frame t{};
        if (!c.send(frame::commit, p) || !c.recv(t, p, clock_type::now() + cfg_.peer_timeout) || t != frame::commit) {
            // Settled at the next hello (the peer tells whether it stored the session).
            return false;
        }
        reader r{p};
        const auto sid = r.le(8);
        const auto ok = r.le(1);
        if (!r.ok || sid != session_id) {
            record_abort("protocol_error", "commit for another session");
            return false;
        }
        settle(stored && ok == 1);
        set_state("accumulating");
        return true;
    }

    config cfg_;
    key_store& store_;
    fd_guard listen_fd_;
    std::uint16_t bound_port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<bool> pass_ended_{false};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<event_block> blocks_;
    source_stats stats_;
    // Owned by the peer thread after construction.
    saved_state saved_;
    std::unique_ptr<auth_key_pool> pool_;
    struct {
        double qber = std::nan(""), efficiency = std::nan(""), rate = std::nan(""), leak = std::nan("");
    } last_;
    std::thread qkd_thread_, peer_thread_;
};

}  // namespace

std::unique_ptr<qkd_key_source> create_qkd_key_source(const qkd_key_source::config& cfg, key_store& store)
{
    return std::make_unique<qkd_source_impl>(cfg, store);
}

}  // namespace qlink::keymgmt
