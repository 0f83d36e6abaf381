// Injection socket: frame parsing and key hand-out, Boost.Asio Unix-domain server with SO_PEERCRED, client.
#include "qlink/keymgmt/inject.hpp"

#include "qlink/keymgmt/hybrid.hpp"

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <openssl/crypto.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <thread>

namespace qlink::keymgmt {

namespace {

void put_u16(std::vector<std::uint8_t>& v, std::uint16_t x)
{
    v.push_back(static_cast<std::uint8_t>(x >> 8));
    v.push_back(static_cast<std::uint8_t>(x));
}

void reply(std::vector<std::uint8_t>& out, inject_status st, const key_id& id, std::span<const std::uint8_t> data)
{
    out.clear();
    out.reserve(2 + id.size() + 2 + data.size());
    out.push_back(inject_wire::version);
    out.push_back(static_cast<std::uint8_t>(st));
    out.insert(out.end(), id.begin(), id.end());
    put_u16(out, static_cast<std::uint16_t>(data.size()));
    out.insert(out.end(), data.begin(), data.end());
}

void reply_error(std::vector<std::uint8_t>& out, inject_status st, std::string_view msg)
{
    reply(out, st, key_id{}, {reinterpret_cast<const std::uint8_t*>(msg.data()), std::min<std::size_t>(msg.size(), 400)});
}

inject_status map(store_status s)
{
    switch (s) {
    case store_status::ok: return inject_status::ok;
    case store_status::not_enough: return inject_status::no_key;
    case store_status::not_found: return inject_status::not_found;
    case store_status::already_served: return inject_status::already_served;
    case store_status::bad_request: return inject_status::bad_request;
    default: return inject_status::internal_error;
    }
}

}  // namespace

void inject_service::handle(std::span<const std::uint8_t> req, std::vector<std::uint8_t>& out)
{
    handle(req, out, ::geteuid());
}

void inject_service::handle(std::span<const std::uint8_t> req, std::vector<std::uint8_t>& out, uid_t peer)
{
    constexpr std::size_t head = 1 + 1 + 1 + 4 + 2;
    if (req.size() < head || req[0] != inject_wire::version) {
        ++counters_.errors;
        reply_error(out, inject_status::bad_request, "bad frame: need version 1 header (9 bytes)");
        return;
    }
    const std::uint8_t op = req[1];
    const std::uint8_t flags = req[2];
    const std::uint32_t spi = (std::uint32_t{req[3]} << 24) | (std::uint32_t{req[4]} << 16) |
                              (std::uint32_t{req[5]} << 8) | req[6];
    const std::size_t key_bytes = (std::size_t{req[7]} << 8) | req[8];
    const bool hybrid = (flags & inject_wire::flag_hybrid) != 0;
    const bool want_lease = (flags & inject_wire::flag_lease) != 0;
    const std::size_t name_bytes = op == inject_wire::op_key_by_id ? 16 : op == inject_wire::op_key_by_link_id ? 4 : 0;
    const std::size_t want = head + name_bytes + (hybrid ? 32 : 0);
    if ((op != inject_wire::op_next_key && op != inject_wire::op_key_by_id && op != inject_wire::op_key_by_link_id) ||
        (flags & ~(inject_wire::flag_hybrid | inject_wire::flag_lease)) != 0) {
        ++counters_.errors;
        reply_error(out, inject_status::bad_request, "unknown op or flags");
        return;
    }
    if (want_lease && op == inject_wire::op_next_key) {
        // An encryption key is never handed out twice: see docs/keymgmt.md, "Leases".
        ++counters_.errors;
        reply_error(out, inject_status::bad_request, "LEASE is for decryption keys (KEY_BY_ID, KEY_BY_LINK_ID) only");
        return;
    }
    if (req.size() != want) {
        ++counters_.errors;
        reply_error(out, inject_status::bad_request,
                    "frame length " + std::to_string(req.size()) + " does not match op/flags (" + std::to_string(want) + ")");
        return;
    }
    const std::string owner = "link:" + std::to_string(spi);
    const auto name = req.subspan(head, name_bytes);
    std::optional<served_key> k;
    if (want_lease) {
        std::lock_guard lk(lease_mu_);
        expire_leases(clock());
        if (lease* l = find_lease(peer, spi, name)) {
            if (l->key_bytes != key_bytes) {
                ++counters_.errors;
                reply_error(out, inject_status::bad_request,
                            "key " + key_id_to_string(l->id) + " was served with key_bytes " + std::to_string(l->key_bytes));
                return;
            }
            if (l->reserves >= cfg_.max_reserves) {
                ++counters_.errors;
                reply_error(out, inject_status::already_served,
                            "key " + key_id_to_string(l->id) + " was served again " + std::to_string(l->reserves) +
                                " times already (lease limit)");
                return;
            }
            ++l->reserves;
            ++counters_.lease_reserves;
            k = served_key{l->id, secret_bytes(l->material.span())};
        }
    }
    if (!k) {
        std::vector<served_key> got;
        store_result r;
        if (op == inject_wire::op_next_key) {
            r = store_.take_next(owner, {}, 1, key_bytes, cfg_.partition, got);
        } else if (op == inject_wire::op_key_by_id) {
            key_id id{};
            std::copy_n(name.begin(), 16, id.begin());
            r = store_.reserve(owner, std::span(&id, 1), key_bytes, {}, &got);
        } else {
            const auto id = resolve_link_id(name);
            if (!id) {
                ++counters_.errors;
                if (want_lease && id.error_status == inject_status::already_served) {
                    ++counters_.leases_refused;
                }
                reply_error(out, id.error_status, id.error);
                return;
            }
            r = store_.reserve(owner, std::span(&*id, 1), key_bytes, {}, &got);
        }
        if (!r.ok() || got.size() != 1) {
            ++counters_.errors;
            if (want_lease && r.status == store_status::already_served) {
                ++counters_.leases_refused;
            }
            reply_error(out, map(r.status), r.message);
            return;
        }
        k = std::move(got.front());
        if (op == inject_wire::op_next_key) {
            ++counters_.keys_next;
        } else {
            ++counters_.keys_by_id;
            if (want_lease) {
                std::lock_guard lk(lease_mu_);
                add_lease(k->id, peer, spi, key_bytes, k->material.span());
            }
        }
    }
    if (hybrid) {
        secret_bytes link(k->material.size() < 32 ? 32 : k->material.size());
        const auto ss = req.subspan(want - 32, 32);
        if (!combine_hybrid_key(k->material.span(), ss, {spi, k->id}, link.span())) {
            ++counters_.errors;
            reply_error(out, inject_status::internal_error, "hybrid key derivation failed");
            return;
        }
        reply(out, inject_status::ok, k->id, link.span());
    } else {
        reply(out, inject_status::ok, k->id, k->material.span());
    }
}

std::chrono::steady_clock::time_point inject_service::clock() const
{
    return cfg_.now ? cfg_.now() : std::chrono::steady_clock::now();
}

std::size_t inject_service::leases() const
{
    std::lock_guard lk(lease_mu_);
    return leases_.size();
}

void inject_service::expire_leases(std::chrono::steady_clock::time_point now)
{
    // Erasing destroys the lease's secret_bytes, which wipes the key copy.
    std::erase_if(leases_, [&](const lease& l) { return l.expires <= now; });
}

void inject_service::add_lease(const key_id& id, uid_t uid, std::uint32_t spi, std::size_t key_bytes,
                               std::span<const std::uint8_t> material)
{
    const auto now = clock();
    expire_leases(now);
    lease l;
    l.id = id;
    l.uid = uid;
    l.spi = spi;
    l.key_bytes = key_bytes;
    l.material = secret_bytes(material);
    l.expires = now + cfg_.lease_time;
    l.order = ++lease_order_;
    leases_.push_back(std::move(l));
    // The link has moved on: only the newest keys of this (peer, spi) can still be in use (the
    // current one, and the one before for frames that were in flight across the switch).
    std::size_t same = 0;
    for (auto it = leases_.rbegin(); it != leases_.rend(); ++it) {
        if (it->uid == uid && it->spi == spi && ++same > cfg_.leases_per_link) {
            it->expires = now;
        }
    }
    expire_leases(now);
    while (leases_.size() > cfg_.max_leases) {
        leases_.erase(std::min_element(leases_.begin(), leases_.end(),
                                       [](const lease& a, const lease& b) { return a.order < b.order; }));
    }
}

inject_service::lease* inject_service::find_lease(uid_t uid, std::uint32_t spi, std::span<const std::uint8_t> name)
{
    lease* best = nullptr;
    for (auto& l : leases_) {
        if (l.uid != uid || l.spi != spi || name.empty() || !std::equal(name.begin(), name.end(), l.id.begin())) {
            continue;
        }
        if (best == nullptr || l.order > best->order) {
            best = &l;
        }
    }
    return best;
}

inject_service::resolved inject_service::resolve_link_id(std::span<const std::uint8_t> link_id)
{
    // The far end names the key by its first 4 ID bytes. Among all keys with that prefix
    // exactly one may still be servable; any more is a collision we refuse to guess at.
    const auto found = store_.find_by_prefix(link_id, 8);
    const std::string name = [&] {
        static constexpr char hex[] = "0123456789abcdef";
        std::string t;
        for (const std::uint8_t b : link_id) {
            t += hex[b >> 4];
            t += hex[b & 15];
        }
        return t;
    }();
    if (found.empty()) {
        return {std::nullopt, inject_status::not_found, "no key with link ID " + name};
    }
    std::optional<key_id> active;
    std::size_t n_active = 0;
    for (const auto& [id, state] : found) {
        if (state == key_state::active) {
            active = id;
            ++n_active;
        }
    }
    if (n_active > 1) {
        ++counters_.link_id_collisions;
        return {std::nullopt, inject_status::not_found,
                "link ID " + name + " names " + std::to_string(n_active) + " active keys; refusing to guess"};
    }
    if (n_active == 1) {
        return {active, inject_status::ok, {}};
    }
    if (found.size() == 1) {
        return {found.front().first, inject_status::ok, {}};  // reserve() reports its state
    }
    return {std::nullopt, inject_status::already_served, "every key with link ID " + name + " was already used"};
}

namespace {

namespace net = boost::asio;
using local = net::local::stream_protocol;

class server_impl final : public inject_server {
public:
    server_impl(const config& c, key_store& store) : cfg_(c), service_(service_config(c), store)
    {
        if (cfg_.socket_path.empty() || cfg_.socket_path.size() >= sizeof(sockaddr_un{}.sun_path)) {
            throw std::runtime_error("inject socket path must be 1.." + std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) +
                                     " characters");
        }
        if (cfg_.mode != 0600 && cfg_.mode != 0660) {
            throw std::runtime_error("inject socket mode must be 0600 or 0660");
        }
        if (cfg_.allowed_uids.empty()) {
            cfg_.allowed_uids.push_back(::geteuid());
        }
        struct stat st {};
        if (::lstat(cfg_.socket_path.c_str(), &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                throw std::runtime_error("inject socket path " + cfg_.socket_path + " exists and is not a socket");
            }
            ::unlink(cfg_.socket_path.c_str());
        }
        acceptor_.emplace(ioc_);
        try {
            acceptor_->open(local());
            // Create the socket file with no permissions for others, then widen to the configured mode.
            const mode_t old = ::umask(0177);
            boost::system::error_code ec;
            acceptor_->bind(local::endpoint(cfg_.socket_path), ec);
            ::umask(old);
            if (ec) {
                throw boost::system::system_error(ec);
            }
            acceptor_->listen();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error("cannot listen on " + cfg_.socket_path + ": " + e.code().message());
        }
        if (::chmod(cfg_.socket_path.c_str(), cfg_.mode) != 0) {
            throw std::runtime_error("cannot chmod " + cfg_.socket_path + ": " + std::strerror(errno));
        }
        net::co_spawn(ioc_, accept_loop(), net::detached);
        thread_ = std::thread([this] { ioc_.run(); });
    }

    ~server_impl() override
    {
        stop();
        acceptor_.reset();
    }
    server_impl(const server_impl&) = delete;
    server_impl& operator=(const server_impl&) = delete;

    inject_counters& counters() override { return service_.counters(); }

    void stop() override
    {
        if (stopped_.exchange(true)) {
            return;
        }
        ioc_.stop();
        if (thread_.joinable()) {
            thread_.join();
        }
        ::unlink(cfg_.socket_path.c_str());
    }

private:
    static inject_service::config service_config(const config& c)
    {
        inject_service::config s;
        s.partition = c.partition;
        s.lease_time = c.lease_time;
        return s;
    }

    net::awaitable<void> accept_loop()
    {
        for (;;) {
            local::socket s(ioc_);
            try {
                s = co_await acceptor_->async_accept(net::use_awaitable);
            } catch (const boost::system::system_error& e) {
                if (e.code() == net::error::operation_aborted) {
                    co_return;
                }
                continue;
            }
            ucred cred{};
            socklen_t len = sizeof cred;
            const bool known = ::getsockopt(s.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 &&
                               std::find(cfg_.allowed_uids.begin(), cfg_.allowed_uids.end(), cred.uid) !=
                                   cfg_.allowed_uids.end();
            if (!known || active_ >= cfg_.max_connections) {
                ++service_.counters().refused_peers;
                std::vector<std::uint8_t> body;
                reply_error(body, inject_status::unauthorized,
                            known ? "too many connections" : "peer uid not allowed on this socket");
                const std::array<std::uint8_t, 4> length{0, 0, static_cast<std::uint8_t>(body.size() >> 8),
                                                         static_cast<std::uint8_t>(body.size())};
                const std::array<net::const_buffer, 2> frame{net::buffer(length), net::buffer(body)};
                boost::system::error_code ec;
                net::write(s, frame, ec);
                s.close(ec);
                continue;
            }
            ++active_;
            net::co_spawn(ioc_, session(std::move(s), cred.uid), net::detached);
        }
    }

    net::awaitable<void> session(local::socket s, uid_t peer)
    {
        struct guard {
            std::size_t& n;
            ~guard() { --n; }
        } g{active_};
        // One timer bounds each request; a silent or slow peer is disconnected.
        net::steady_timer timer(ioc_);
        std::vector<std::uint8_t> body;
        std::vector<std::uint8_t> out;
        for (;;) {
            std::array<std::uint8_t, 4> len{};
            timer.expires_after(cfg_.request_timeout);
            timer.async_wait([&s](boost::system::error_code ec) {
                if (!ec) {
                    boost::system::error_code ignored;
                    s.close(ignored);
                }
            });
            try {
                co_await net::async_read(s, net::buffer(len), net::use_awaitable);
                const std::size_t n = (std::size_t{len[0]} << 24) | (std::size_t{len[1]} << 16) |
                                      (std::size_t{len[2]} << 8) | len[3];
                if (n == 0 || n > inject_wire::max_frame) {
                    ++service_.counters().errors;
                    reply_error(out, inject_status::bad_request, "frame length must be 1..512");
                    co_await send(s, out);
                    co_return;
                }
                body.resize(n);
                co_await net::async_read(s, net::buffer(body), net::use_awaitable);
                timer.cancel();
                service_.handle(body, out, peer);
                OPENSSL_cleanse(body.data(), body.size());
                co_await send(s, out);
                OPENSSL_cleanse(out.data(), out.size());
            } catch (const std::exception&) {
                OPENSSL_cleanse(body.data(), body.size());
                OPENSSL_cleanse(out.data(), out.size());
                timer.cancel();
                co_return;
            }
        }
    }

    static net::awaitable<void> send(local::socket& s, const std::vector<std::uint8_t>& body)
    {
        std::array<std::uint8_t, 4> len{0, 0, static_cast<std::uint8_t>(body.size() >> 8),
                                        static_cast<std::uint8_t>(body.size())};
        std::array<net::const_buffer, 2> bufs{net::buffer(len), net::buffer(body)};
        co_await net::async_write(s, bufs, net::use_awaitable);
    }

    config cfg_;
    inject_service service_;
    std::size_t active_ = 0;  // only touched on the single io thread
    std::atomic<bool> stopped_{false};
    net::io_context ioc_{1};
    std::optional<local::acceptor> acceptor_;
    std::thread thread_;
};

bool write_all(int fd, const std::uint8_t* p, std::size_t n)
{
    while (n > 0) {
        const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0) {
            if (w < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        p += w;
        n -= static_cast<std::size_t>(w);
    }
    return true;
}

bool read_all(int fd, std::uint8_t* p, std::size_t n)
{
    while (n > 0) {
        const ssize_t r = ::recv(fd, p, n, 0);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) {
                continue;
            }
            return false;
        }
        p += r;
        n -= static_cast<std::size_t>(r);
    }
    return true;
}

}  // namespace

std::unique_ptr<inject_server> start_inject_server(const inject_server::config& cfg, key_store& store)
{
    return std::make_unique<server_impl>(cfg, store);
}

inject_client::inject_client(const std::string& socket_path)
{
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof sa.sun_path) {
        throw std::runtime_error("socket path too long");
    }
    std::memcpy(sa.sun_path, socket_path.c_str(), socket_path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        const std::string why = std::strerror(errno);
        if (fd_ >= 0) {
            ::close(fd_);
        }
        throw std::runtime_error("cannot connect to " + socket_path + ": " + why);
    }
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

inject_client::~inject_client()
{
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

namespace {

/// One request body: header, the op's key name (none, 16-byte ID or 4-byte link ID), the
/// optional X25519 secret. Built in secure memory since the secret may be in it.
secret_bytes request_body(std::uint8_t op, std::uint32_t spi, std::uint16_t key_bytes,
                          std::span<const std::uint8_t> name, std::span<const std::uint8_t> ss, bool lease = false)
{
    secret_bytes b(9 + name.size() + ss.size());
    const std::uint8_t h[9] = {inject_wire::version,
                               op,
                               static_cast<std::uint8_t>((ss.empty() ? 0 : inject_wire::flag_hybrid) |
                                                         (lease ? inject_wire::flag_lease : 0)),
                               static_cast<std::uint8_t>(spi >> 24),
                               static_cast<std::uint8_t>(spi >> 16),
                               static_cast<std::uint8_t>(spi >> 8),
                               static_cast<std::uint8_t>(spi),
                               static_cast<std::uint8_t>(key_bytes >> 8),
                               static_cast<std::uint8_t>(key_bytes)};
    std::memcpy(b.data(), h, 9);
    if (!name.empty()) {
        std::memcpy(b.data() + 9, name.data(), name.size());
    }
    if (!ss.empty()) {
        std::memcpy(b.data() + 9 + name.size(), ss.data(), ss.size());
    }
    return b;
}

}  // namespace

inject_reply inject_client::next_key(std::uint32_t spi, std::uint16_t key_bytes, std::span<const std::uint8_t> ss)
{
    return call(request_body(inject_wire::op_next_key, spi, key_bytes, {}, ss).span());
}

inject_reply inject_client::key_by_id(std::uint32_t spi, const key_id& id, std::uint16_t key_bytes,
                                      std::span<const std::uint8_t> ss, bool lease)
{
    return call(request_body(inject_wire::op_key_by_id, spi, key_bytes, id, ss, lease).span());
}

inject_reply inject_client::key_by_link_id(std::uint32_t spi, std::uint32_t link_id, std::uint16_t key_bytes,
                                           std::span<const std::uint8_t> ss, bool lease)
{
    const std::uint8_t name[4] = {static_cast<std::uint8_t>(link_id >> 24), static_cast<std::uint8_t>(link_id >> 16),
                                  static_cast<std::uint8_t>(link_id >> 8), static_cast<std::uint8_t>(link_id)};
    return call(request_body(inject_wire::op_key_by_link_id, spi, key_bytes, name, ss, lease).span());
}

inject_reply inject_client::call(std::span<const std::uint8_t> body)
{
    const std::uint8_t len[4] = {static_cast<std::uint8_t>(body.size() >> 24), static_cast<std::uint8_t>(body.size() >> 16),
                                 static_cast<std::uint8_t>(body.size() >> 8), static_cast<std::uint8_t>(body.size())};
    secret_bytes frame(4 + body.size());
    std::memcpy(frame.data(), len, 4);
    std::memcpy(frame.data() + 4, body.data(), body.size());
    return raw(frame.span());
}

inject_reply inject_client::raw(std::span<const std::uint8_t> frame)
{
    inject_reply r;
    if (!write_all(fd_, frame.data(), frame.size())) {
        r.message = "send failed";
        return r;
    }
    std::uint8_t len[4];
    if (!read_all(fd_, len, 4)) {
        r.message = "connection closed by qkmd";
        return r;
    }
    const std::size_t n = (std::size_t{len[0]} << 24) | (std::size_t{len[1]} << 16) | (std::size_t{len[2]} << 8) | len[3];
    if (n < 20 || n > 70000) {
        r.message = "bad response length";
        return r;
    }
    secret_bytes body(n);
    if (!read_all(fd_, body.data(), n)) {
        r.message = "connection closed by qkmd";
        return r;
    }
    const std::size_t dn = (std::size_t{body.data()[18]} << 8) | body.data()[19];
    if (body.data()[0] != inject_wire::version || dn != n - 20) {
        r.message = "malformed response";
        return r;
    }
    r.status = static_cast<inject_status>(body.data()[1]);
    std::memcpy(r.id.data(), body.data() + 2, 16);
    if (r.status == inject_status::ok) {
        r.key = secret_bytes(std::span<const std::uint8_t>(body.data() + 20, dn));
    } else {
        r.message.assign(reinterpret_cast<const char*>(body.data() + 20), dn);
    }
    return r;
}

}  // namespace qlink::keymgmt
