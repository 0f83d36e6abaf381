// qlinkd main loop: air transport threads, user TCP/UDP ports and TUN interface, telemetry HTTP, qkmd scrape, SIGTERM drain.
#include "qlink/terminal/qlinkd.hpp"

#include "qlink/modem/cpu.hpp"
#include "qlink/keymgmt/https_server.hpp"
#include "qlink/sim/air_client.hpp"
#include "qlink/terminal/link_engine.hpp"
#include "qlink/terminal/fallback_keys.hpp"
#include "qlink/terminal/link_keys.hpp"
#include "qlink/terminal/telemetry.hpp"

#include "daemon_log.hpp"
#include "pat_runner.hpp"
#include "relay_clock.hpp"
#include "rf_return.hpp"
#include "tun.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <random>
#include <cerrno>
#include <chrono>
#include <deque>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

namespace qlink::terminal {

namespace {

using steady = std::chrono::steady_clock;

double seconds_since(steady::time_point t) { return std::chrono::duration<double>(steady::now() - t).count(); }

// ------------------------------------------------------------------------------------------
// Sockets

struct listen_result {
    int fd = -1;
    std::uint16_t port = 0;
    std::string error;
};

listen_result open_listener(const std::string& address, std::uint16_t port, int type)
{
    listen_result r;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, address.c_str(), &a.sin_addr) != 1) {
        r.error = "address " + address + " is not an IPv4 address";
        return r;
    }
    const int fd = ::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        r.error = std::string("socket: ") + std::strerror(errno);
        return r;
    }
    const int one = 1;
    if (type == SOCK_STREAM) ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || (type == SOCK_STREAM && ::listen(fd, 16) != 0)) {
        r.error = "cannot listen on " + address + ":" + std::to_string(port) + ": " + std::strerror(errno);
        ::close(fd);
        return r;
    }
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    r.fd = fd;
    r.port = ntohs(a.sin_port);
    return r;
}

// Plain HTTP/1.0 GET with a deadline, for qkmd's /metrics on loopback. Empty on any failure.
std::string http_get(const std::string& host, std::uint16_t port, const std::string& path, int timeout_ms)
{
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) return {};
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return {};
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
        const std::string req = "GET " + path + " HTTP/1.0\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
        if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
            char buf[8192];
            const auto deadline = steady::now() + std::chrono::milliseconds(timeout_ms);
            while (out.size() < (1u << 20) && steady::now() < deadline) {
                const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
                if (n <= 0) break;
                out.append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    ::close(fd);
    if (out.rfind("HTTP/1.", 0) != 0 || out.find(" 200 ") == std::string::npos) return {};
    const auto body = out.find("\r\n\r\n");
    return body == std::string::npos ? std::string{} : out.substr(body + 4);
}

// ------------------------------------------------------------------------------------------
// A byte buffer consumed from the front without moving memory on every call.

class byte_queue {
public:
    std::span<const std::uint8_t> data() const { return {buf_.data() + head_, buf_.size() - head_}; }
    bool empty() const { return head_ == buf_.size(); }
    std::size_t size() const { return buf_.size() - head_; }
    void consume(std::size_t n)
    {
        head_ += n;
        if (head_ == buf_.size()) {
            buf_.clear();
            head_ = 0;
        }
    }
    void append(const std::uint8_t* p, std::size_t n) { buf_.insert(buf_.end(), p, p + n); }

private:
    std::vector<std::uint8_t> buf_;
    std::size_t head_ = 0;
};

// ------------------------------------------------------------------------------------------

class daemon {
public:
    daemon(const qlinkd_config& cfg, const qlinkd_run_options& opt) : cfg_(cfg), opt_(opt), log_(cfg.log.json, cfg.log.debug)
    {
        log_.set_role(std::string(role_name(cfg.link.role)));
    }

    int run();

private:
    // keys, engine
    bool make_keys_and_engine();
    bool open_delivery_record(link_engine_config& ec);
    // air
    void air_loop();
    void air_tx_loop(sim::air_client* client, std::size_t block_bits, double tx_bps);
    void stop_air();
    // PAT gating of the downlink (terminal.pat = "simulated"): messages wait here until the PAT
    // has stepped through their time, then lose what fell where the terminal did not point.
    void hold_for_pat(std::span<const std::int8_t> llrs, double t0, double t_end);
    void release_held(double bps, bool all);
    // user ports
    void user_loop();
    void user_stream_io();
    void user_datagram_io();
    bool open_tun();
    void user_tun_io();
    // telemetry
    link_status status();
    void scrape_qkmd();
    int finish(bool drained);

    const qlinkd_config& cfg_;
    const qlinkd_run_options& opt_;
    daemon_log log_;

    memory_key_pair memory_;
    std::shared_ptr<key_id_directory> directory_;
    std::unique_ptr<inject_key_source> inject_tx_, inject_rx_;
    std::unique_ptr<counting_key_source> tx_keys_, rx_keys_;
    std::unique_ptr<fallback_key_source> fallback_;  // security.on_exhaustion = "fallback"
    std::unique_ptr<fallback_id_router> rx_route_;   // fallback IDs never go to qkmd
    std::unique_ptr<link_engine> engine_;
    std::unique_ptr<pat_runner> pat_;  // terminal.pat = "simulated"
    // rf.radio = "sim": made at the first connection (it needs the relay's return line rate), used
    // by the air sender, read by telemetry; rf_mu_ guards it.
    std::mutex rf_mu_;
    std::unique_ptr<rf_return_link> rf_;
    std::atomic<double> return_esn0_db_{-100.0};
    struct held_message {
        std::vector<std::int8_t> llrs;
        double t0 = 0.0, t_end = 0.0;
    };
    std::deque<held_message> held_;                 // air receive thread only
    std::vector<std::vector<std::int8_t>> spare_;   // their buffers, reused
    std::atomic<std::uint64_t> pat_gated_llrs_{0};  // downlink LLRs erased because the PAT did not point

    // air state (guarded by air_mu_ unless atomic)
    std::mutex air_mu_;
    bool air_connected_ = false, air_ever_connected_ = false, air_got_message_ = false, link_up_ = false;
    std::uint64_t rx_ok_at_link_up_ = 0;
    std::optional<double> elevation_, rx_power_, esn0_, downlink_bps_, return_bps_;
    std::atomic<double> sim_time_{0.0};
    relay_clock relay_clock_;  // the relay's clock between messages: paces the transmitter
    std::atomic<bool> have_sim_time_{false};
    std::atomic<bool> ended_{false}, air_stop_{false}, air_fatal_{false};
    std::mutex fd_mu_;  // air_fd_ is shut down only while its connection cannot be closed
    int air_fd_ = -1;
    std::atomic<std::uint64_t> air_rx_msgs_{0}, air_tx_msgs_{0}, air_tx_bits_{0}, air_rx_llrs_{0}, air_reconnects_{0},
        air_protocol_errors_{0};
    std::thread air_thread_;
    std::random_device spi_seed_;  // first SPI and ARQ sessions per start (see make_keys_and_engine)

    // user side
    struct connection {
        int fd = -1;
        std::uint8_t stream = 0;
        bool read_eof = false;   // the user will send no more
        bool write_dead = false; // the user is gone: nothing more can be delivered
        byte_queue in;           // taken from the user, not yet accepted by the engine
        std::string peer;
    };
    // Per stream: taken from the engine, not yet written to a user. Kept per stream, not per
    // connection, so a user that goes away leaves them to the next connection on the stream (the
    // engine confirms to the far end only what was written: ack_consumed_only).
    std::array<byte_queue, link_max_streams> stream_out_;
    std::unique_ptr<delivery_record> record_;  // link.state_dir: what the users hold, for a restart
    int tcp_fd_ = -1, udp_fd_ = -1;
    std::uint16_t tcp_port_ = 0, udp_port_ = 0, telemetry_port_ = 0;
    std::vector<connection> conns_;
    std::atomic<bool> user_stop_{false}, draining_{false};
    std::atomic<std::uint64_t> user_bytes_in_{0}, user_bytes_out_{0}, user_conns_{0}, dgram_in_{0}, dgram_out_{0},
        dgram_dropped_{0};
    std::atomic<std::uint64_t> pending_user_bytes_{0};  // taken from users, not yet in the engine
    sockaddr_in udp_dest_{};
    bool udp_dest_known_ = false;
    std::thread user_thread_;
    std::vector<std::uint8_t> io_buf_ = std::vector<std::uint8_t>(64 * 1024);

    // user.tun: IP packets on the engine's IP datagram channel. Its own buffer (a packet up to the
    // 64 KiB IP limit, so nothing the kernel hands over is cut), allocated once.
    std::unique_ptr<tun_device> tun_;
    bool tun_dead_ = false;  // a read failed for good (interface deleted under us): no longer polled
    std::vector<std::uint8_t> tun_buf_;
    std::atomic<std::uint64_t> tun_in_{0}, tun_out_{0}, tun_malformed_{0}, tun_link_full_{0}, tun_write_failed_{0};

    // qkmd scrape (guarded by scrape_mu_)
    std::mutex scrape_mu_;
    std::optional<double> pool_level_, qber_, skr_;

    std::unique_ptr<keymgmt::https_server> http_;
};

bool daemon::make_keys_and_engine()
{
    const bool ground = cfg_.link.role == link_role::ground;
    modem::link_key_source* tx = nullptr;
    modem::link_key_source* rx = nullptr;
    if (cfg_.keys.source == key_source_kind::memory) {
        memory_ = make_memory_keys(cfg_.keys.memory_seed, cfg_.keys.memory_keys, ground);
        tx = memory_.tx.get();
        rx = memory_.rx.get();
        log_.warn("keys", "test_keys", {{"source", "memory"}, {"note", "TEST ONLY: keys derived from a seed, not secret"}});
    } else {
        directory_ = std::make_shared<key_id_directory>();
        auto on_error = [this](const std::string& m) { log_.warn_limited("keys", "key_source_error", m); };
        inject_tx_ = std::make_unique<inject_key_source>(inject_key_source::config{cfg_.keys.socket, 1, on_error}, directory_);
        inject_rx_ = std::make_unique<inject_key_source>(inject_key_source::config{cfg_.keys.socket, 2, on_error}, directory_);
        tx = inject_tx_.get();
        rx = inject_rx_.get();
    }
    tx_keys_ = std::make_unique<counting_key_source>(*tx);
    rx_keys_ = std::make_unique<counting_key_source>(*rx);
    auto ec = make_engine_config(cfg_);
    modem::link_key_source* rx_engine = rx_keys_.get();
    if (cfg_.security.on_exhaustion == exhaustion_policy::fallback) {
        auto fc = make_fallback_config(cfg_);
        // Every classical key is announced: the link has lost QKD's guarantees until keys return.
        fc.on_tx_key = [this](std::uint32_t id, std::uint64_t n) {
            log_.warn("keys", "fallback_key",
                      {{"key_id", std::to_string(id)}, {"fallback_keys", std::to_string(n)},
                       {"note", "QKD keys exhausted: classical X25519 link key, no forward secrecy"}});
        };
        try {
            fallback_ = std::make_unique<fallback_key_source>(std::move(fc));
        } catch (const fallback_key_error& e) {
            log_.error("keys", "bad_fallback_keys", {{"error", e.what()}});
            std::cerr << "qlinkd: configuration: " << e.what() << '\n';
            return false;
        }
        rx_route_ = std::make_unique<fallback_id_router>(*rx_keys_, *fallback_);
        rx_engine = rx_route_.get();
        ec.fallback_keys = fallback_.get();
        log_.info("keys", "fallback_ready", {{"next_index", std::to_string(fallback_->next_index())},
                                             {"state", cfg_.security.fallback_state}});
    }
    ec.rto_initial_s = std::clamp(ec.rto_initial_s, ec.rto_min_s, ec.rto_max_s);
    // The first SDLS SPI of this process's transmitter. After a restart the far end still holds the
    // SA its predecessor left ACTIVE; a fresh key under that same SPI is refused there (auth failure)
    // until the next rotation, and with it every ack of ours. So each start draws its first SPI
    // (here, at the configuration edge), in the lower half so rotations do not wrap; a draw that
    // hits a live SA of the predecessor (a few in 32767) only costs the wait as before.
    ec.spi = static_cast<std::uint16_t>(std::uniform_int_distribution<int>(1, 0x7FFF)(spi_seed_));
    // ARQ sessions drawn per start too: the relay's simulated time (from which they are derived
    // otherwise) repeats from run to run, and a delivery record left by another link must not match
    // this link's sender.
    for (std::uint32_t* session : {&ec.arq_tx_session, &ec.arq_rx_session}) {
        do {
            *session = static_cast<std::uint32_t>(spi_seed_());
        } while (*session == 0);
    }
    // The far end releases a byte only once it is written to our user's socket (user_stream_io), so
    // what is buffered here when this process dies is resent to the next one.
    ec.ack_consumed_only = true;
    if (!open_delivery_record(ec)) return false;
    // Keys running out stops protected traffic: that must be loud (rate-limited, never key bytes).
    ec.on_alarm = [this](std::string_view m) { log_.warn_limited("keys", "alarm", std::string(m)); };
    try {
        engine_ = link_engine::create(ec, *tx_keys_, *rx_engine);
    } catch (const std::invalid_argument& e) {
        log_.error("link", "bad_link_config", {{"error", e.what()}});
        std::cerr << "qlinkd: configuration: " << e.what() << '\n';
        return false;
    }
    return true;
}

// The delivery record in link.state_dir: where each stream's user was when the last process stopped
// (or died), handed to the engine as its resume points. Order per write to a user (user_stream_io):
// record the position the write leads to (intend), write, record what was written (commit), then tell
// the engine (consumed), which only then lets the far end release those bytes. Why this order, kill by
// kill: docs/qlinkd.md, "Restart of the far end".
bool daemon::open_delivery_record(link_engine_config& ec)
{
    if (cfg_.link.state_dir.empty()) return true;
    std::error_code fe;
    std::filesystem::create_directories(cfg_.link.state_dir, fe);
    if (fe) {
        log_.error("link", "bad_state_dir", {{"state_dir", cfg_.link.state_dir}, {"error", fe.message()}});
        std::cerr << "qlinkd: link.state_dir " << cfg_.link.state_dir << ": " << fe.message() << '\n';
        return false;
    }
    const std::string path = (std::filesystem::path(cfg_.link.state_dir) / "delivery.state").string();
    try {
        record_ = std::make_unique<delivery_record>(path);
    } catch (const std::runtime_error& e) {
        log_.error("link", "bad_delivery_record", {{"error", e.what()}});
        std::cerr << "qlinkd: " << e.what() << '\n';
        return false;
    }
    for (std::uint8_t k = 0; k < link_max_streams; ++k) {
        const auto e = record_->loaded(k);
        if (!e) continue;
        // A write was in progress when the last process died. A send() the kill interrupts completes
        // (non-blocking socket) and the process dies on its return, so take it as written; it was not
        // only if the kill fell in the few instructions before the call, or the socket took part of it.
        if (e->intended != e->written) {
            const bool same = e->intended.sender_session == e->written.sender_session && e->intended.offset >= e->written.offset;
            log_.warn("link", "delivery_uncertain",
                      {{"stream", std::to_string(k)}, {"first_byte", std::to_string(e->written.offset)},
                       {"length", same ? std::to_string(e->intended.offset - e->written.offset) : std::string("?")},
                       {"note", "a write to the user was in progress at the last stop; taken as written"}});
        }
        ec.resume[k] = e->intended;
        record_->commit(k, e->intended);
        log_.info("link", "resume", {{"stream", std::to_string(k)}, {"offset", std::to_string(e->intended.offset)},
                                     {"sender_session", std::to_string(e->intended.sender_session)}, {"record", path}});
    }
    return true;
}

// ------------------------------------------------------------------------------------------
// Air transport: one thread receives (and owns the connection), one sends while connected.

void daemon::air_tx_loop(sim::air_client* client, std::size_t block_bits, double tx_bps)
{
    std::vector<std::uint8_t> packed(block_bits / 8);
    // The air time of the next bit handed to the relay if the line stays busy: the transmitter
    // runs at most air.tx_lead_s ahead of the simulated clock (the far end's messages), so bits
    // leave the link layer as the line takes them instead of waiting in socket buffers.
    // Until the relay's clock rate is known (its first 0.2 s), the socket buffers alone hold it back.
    double air_clock = 0.0;
    while (!air_stop_.load() && !ended_.load()) {
        if (const auto now = relay_clock_.now(steady::now())) {
            air_clock = std::max(air_clock, *now);  // an idle or starved line: the next bit goes out now
            if (air_clock - *now > cfg_.air.tx_lead_s) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                continue;
            }
        }
        const double t = sim_time_.load();
        const std::size_t bits = engine_->pull_tx_bits(packed, t);
        if (bits == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        sim::air_io_result r;
        if (cfg_.rf.radio_sim) {
            // The return link's RF chain runs here; the relay forwards what the satellite demodulated.
            // Only this thread transmits, so the LLR span stays valid after the lock (which
            // telemetry takes) is released for the possibly long send.
            std::span<const std::int8_t> llrs;
            {
                std::lock_guard lk(rf_mu_);
                llrs = rf_->transmit(packed, bits, t, return_esn0_db_.load());
            }
            if (!llrs.empty()) r = client->send_llrs(llrs, t);
        } else {
            r = client->send_packed(packed, bits, t);
        }
        if (!r.ok()) break;  // the receive side sees the same failure and reports it
        ++air_tx_msgs_;
        air_tx_bits_ += bits;
        air_clock += static_cast<double>(bits) / tx_bps;
    }
}

void daemon::hold_for_pat(std::span<const std::int8_t> llrs, double t0, double t_end)
{
    held_message m;
    if (!spare_.empty()) {
        m.llrs = std::move(spare_.back());
        spare_.pop_back();
    }
    m.llrs.assign(llrs.begin(), llrs.end());
    m.t0 = t0;
    m.t_end = t_end;
    held_.push_back(std::move(m));
}

void daemon::release_held(double bps, bool all)
{
    const double covered = pat_->covered_until();
    while (!held_.empty() && (all || held_.front().t_end <= covered + 1e-9)) {
        held_message& m = held_.front();
        pat_gated_llrs_ += pat_->gate(m.t0, bps, m.llrs);
        engine_->push_rx_llrs(m.llrs, m.t0);
        if (spare_.size() < 64) spare_.push_back(std::move(m.llrs));
        held_.pop_front();
    }
}

void daemon::air_loop()
{
    const bool ground = cfg_.link.role == link_role::ground;
    const auto first_deadline = steady::now() + std::chrono::milliseconds(static_cast<long>(cfg_.air.connect_timeout_s * 1000));
    bool logged_waiting = false;
    while (!air_stop_.load() && !ended_.load()) {
        sim::air_client::config ac;
        ac.host = cfg_.air.host;
        ac.port = cfg_.air.port;
        ac.role = ground ? sim::air_role::ground : sim::air_role::space;
        ac.connect_timeout_ms = 2000;
        ac.io_timeout_ms = 0;
        ac.max_message_bits = std::max<std::uint32_t>(1u << 22, cfg_.air.block_bits);
        std::string error;
        auto client = sim::air_client::connect(ac, error);
        if (!client) {
            if (!air_ever_connected_ && steady::now() > first_deadline) {
                log_.error("air", "relay_unreachable", {{"error", error}, {"host", cfg_.air.host}, {"port", std::to_string(cfg_.air.port)}});
                air_fatal_ = true;
                return;
            }
            if (!logged_waiting) {
                log_.info("air", "waiting_for_relay", {{"error", error}});
                logged_waiting = true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
            continue;
        }
        logged_waiting = false;
        relay_clock_.reset();
        const int sndbuf = static_cast<int>(cfg_.air.send_buffer_bytes);
        ::setsockopt(client->fd(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        const double tx_bps = ground ? client->return_bps() : client->downlink_bps();
        std::size_t block_bits = cfg_.air.block_bits;
        if (block_bits == 0) {
            // About 10 ms of simulated line time per message: small enough for the relay's pacing
            // (and ARQ's round trip), large enough to keep per-message costs low.
            block_bits = static_cast<std::size_t>(tx_bps / 100.0);
            block_bits = std::clamp<std::size_t>((block_bits + 7) / 8 * 8, 1024, 1u << 20);
        }
        {
            std::lock_guard lk(air_mu_);
            if (air_ever_connected_) ++air_reconnects_;
            air_connected_ = air_ever_connected_ = true;
            downlink_bps_ = client->downlink_bps();
            return_bps_ = client->return_bps();
        }
        {
            std::lock_guard lk(fd_mu_);
            air_fd_ = client->fd();
        }
        if (air_stop_.load()) {  // stop_air() ran before air_fd_ was visible to it
            std::lock_guard lk(fd_mu_);
            air_fd_ = -1;
            break;
        }
        if (cfg_.rf.radio_sim) {
            std::lock_guard lk(rf_mu_);
            if (!rf_) {
                try {
                    rf_ = std::make_unique<rf_return_link>(cfg_, client->return_bps());
                } catch (const std::exception& e) {
                    log_.error("rf", "rf_chain_failed", {{"error", e.what()}});
                    air_fatal_ = true;
                    std::lock_guard fl(fd_mu_);
                    air_fd_ = -1;
                    return;
                }
                log_.info("rf", "rf_chain_ready", {{"waveform", rf_->describe()}});
            }
        }
        log_.info("air", "relay_connected",
                  {{"downlink_bps", daemon_log::num(client->downlink_bps())}, {"return_bps", daemon_log::num(client->return_bps())},
                   {"block_bits", std::to_string(block_bits)}});
        std::thread tx([this, c = client.get(), block_bits, tx_bps] { air_tx_loop(c, block_bits, tx_bps); });

        sim::air_message msg;
        std::string why;
        while (!air_stop_.load()) {
            const auto r = client->receive(msg);
            if (r.status == sim::air_status::end_of_pass) {
                ended_ = true;
                log_.info("air", "end_of_pass", {{"sim_time", daemon_log::num(sim_time_.load())}});
                break;
            }
            if (!r.ok()) {
                if (r.status == sim::air_status::protocol_error) ++air_protocol_errors_;
                why = std::string(sim::to_string(r.status)) + ": " + r.error;
                break;
            }
            return_esn0_db_ = msg.info.return_esn0_db;
            const double rx_bps = ground ? client->downlink_bps() : client->return_bps();
            sim_time_ = msg.info.sim_time + msg.llrs.size() / rx_bps;
            relay_clock_.observe(msg.info.sim_time, steady::now());
            if (pat_) {
                // The PAT runs on its own thread; this only queues the channel state up to the
                // message's end. The downlink waits until the PAT has stepped through it, so only
                // what arrived while the terminal pointed reaches the decoder.
                pat_->advance_to(sim_time_.load(), msg.info.link_up);
                hold_for_pat(msg.llrs, msg.info.sim_time, sim_time_.load());
                release_held(rx_bps, false);
            } else {
                engine_->push_rx_llrs(msg.llrs, msg.info.sim_time);
            }
            have_sim_time_ = true;
            ++air_rx_msgs_;
            air_rx_llrs_ += msg.llrs.size();
            bool edge = false;
            {
                std::lock_guard lk(air_mu_);
                air_got_message_ = true;
                elevation_ = msg.info.elevation_deg;
                rx_power_ = msg.info.rx_power_dbm;
                esn0_ = msg.info.esn0_db;
                edge = msg.info.link_up != link_up_;
                link_up_ = msg.info.link_up;
            }
            if (edge) {
                if (msg.info.link_up) {
                    const auto rx_ok = engine_->stats().frames_rx_ok;
                    std::lock_guard lk(air_mu_);
                    rx_ok_at_link_up_ = rx_ok;
                }
                log_.info("air", msg.info.link_up ? "link_up" : "link_down",
                          {{"sim_time", daemon_log::num(msg.info.sim_time)}, {"elevation_deg", daemon_log::num(msg.info.elevation_deg)}});
            }
        }
        if (pat_) release_held(ground ? client->downlink_bps() : client->return_bps(), true);
        ::shutdown(client->fd(), SHUT_RDWR);  // wakes the sender
        tx.join();
        {
            std::lock_guard lk(fd_mu_);
            air_fd_ = -1;
        }
        {
            std::lock_guard lk(air_mu_);
            air_connected_ = false;
            link_up_ = false;
        }
        client.reset();
        if (ended_.load() || air_stop_.load()) break;
        log_.warn("air", "relay_lost", {{"error", why}});
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

void daemon::stop_air()
{
    air_stop_ = true;
    {
        std::lock_guard lk(fd_mu_);
        if (air_fd_ >= 0) ::shutdown(air_fd_, SHUT_RDWR);
    }
    if (air_thread_.joinable()) air_thread_.join();
}

// ------------------------------------------------------------------------------------------
// User side: TCP connections carry ordered streams, the UDP port datagrams.

void daemon::user_stream_io()
{
    // Accept: each connection takes the lowest stream no other connection holds.
    if (!draining_.load()) {
        for (;;) {
            sockaddr_in peer{};
            socklen_t len = sizeof peer;
            const int fd = ::accept4(tcp_fd_, reinterpret_cast<sockaddr*>(&peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0) break;
            std::uint8_t stream = 0;
            while (stream < 8 && std::any_of(conns_.begin(), conns_.end(), [&](const connection& c) { return c.stream == stream; })) {
                ++stream;
            }
            char ip[INET_ADDRSTRLEN] = {};
            ::inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof ip);
            const std::string who = std::string(ip) + ":" + std::to_string(ntohs(peer.sin_port));
            if (stream >= 8) {
                log_.warn("user", "connection_refused", {{"peer", who}, {"reason", "all 8 streams are in use"}});
                ::close(fd);
                continue;
            }
            connection c;
            c.fd = fd;
            c.stream = stream;
            c.peer = who;
            conns_.push_back(std::move(c));
            ++user_conns_;
            log_.info("user", "connection_open", {{"peer", who}, {"stream", std::to_string(stream)}});
        }
    }
    for (auto& c : conns_) {
        // user -> link
        if (c.in.empty() && !c.read_eof && !draining_.load()) {
            const ssize_t n = ::recv(c.fd, io_buf_.data(), io_buf_.size(), 0);
            if (n > 0) {
                c.in.append(io_buf_.data(), static_cast<std::size_t>(n));
                pending_user_bytes_ += static_cast<std::uint64_t>(n);
            } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
                c.read_eof = true;
            }
        }
        if (!c.in.empty()) {
            const std::size_t took = engine_->send(c.stream, c.in.data());
            c.in.consume(took);
            user_bytes_in_ += took;
            pending_user_bytes_ -= took;
        }
        // link -> user. The far end may release a byte only once it is written here (consumed()), and
        // with a record only after the record says so: see open_delivery_record for the order.
        auto& out = stream_out_[c.stream];
        if (out.empty() && !c.write_dead) {
            const std::size_t n = engine_->receive(c.stream, io_buf_);
            if (n > 0) out.append(io_buf_.data(), n);
        }
        while (!out.empty() && !c.write_dead) {
            if (record_) record_->intend(c.stream, engine_->position_after(c.stream, out.size()));
            const ssize_t n = ::send(c.fd, out.data().data(), out.size(), MSG_NOSIGNAL);
            const std::size_t sent = n > 0 ? static_cast<std::size_t>(n) : 0;
            if (record_) record_->commit(c.stream, engine_->position_after(c.stream, sent));
            if (sent > 0) {
                engine_->consumed(c.stream, sent);
                out.consume(sent);
                user_bytes_out_ += sent;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
                break;
            } else {
                // The user left: what is not written stays for the next connection on this stream.
                log_.warn("user", "write_failed", {{"peer", c.peer}, {"stream", std::to_string(c.stream)},
                                                   {"kept_bytes", std::to_string(out.size())}});
                c.write_dead = true;
            }
        }
        // A user that stopped sending and hung up: once what it sent is in the engine, free the stream.
        if (c.read_eof && c.in.empty() && !c.write_dead) {
            char probe;
            const ssize_t n = ::recv(c.fd, &probe, 1, MSG_PEEK);
            if (n == 0) c.write_dead = true;  // fully closed (no half-close reader left)
            pollfd p{c.fd, POLLOUT, 0};
            if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP)) != 0) c.write_dead = true;
        }
    }
    for (auto it = conns_.begin(); it != conns_.end();) {
        if (it->read_eof && it->in.empty() && it->write_dead) {
            log_.info("user", "connection_closed", {{"peer", it->peer}, {"stream", std::to_string(it->stream)}});
            ::close(it->fd);
            it = conns_.erase(it);
        } else {
            ++it;
        }
    }
}

void daemon::user_datagram_io()
{
    if (udp_fd_ < 0) return;
    for (int i = 0; i < 64 && !draining_.load(); ++i) {
        sockaddr_in from{};
        socklen_t len = sizeof from;
        const ssize_t n = ::recvfrom(udp_fd_, io_buf_.data(), io_buf_.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 0) break;
        ++dgram_in_;
        if (cfg_.user.udp_deliver.empty()) {
            udp_dest_ = from;  // replies go to whoever talks to us
            udp_dest_known_ = true;
        }
        if (engine_->send_datagram(std::span<const std::uint8_t>(io_buf_.data(), static_cast<std::size_t>(n)))) {
            user_bytes_in_ += static_cast<std::uint64_t>(n);
        } else {
            ++dgram_dropped_;
        }
    }
    for (int i = 0; i < 64; ++i) {
        const std::size_t n = engine_->receive_datagram(io_buf_);
        if (n == 0) break;
        if (!udp_dest_known_) {
            ++dgram_dropped_;
            continue;
        }
        if (::sendto(udp_fd_, io_buf_.data(), n, 0, reinterpret_cast<const sockaddr*>(&udp_dest_), sizeof udp_dest_) ==
            static_cast<ssize_t>(n)) {
            ++dgram_out_;
            user_bytes_out_ += n;
        } else {
            ++dgram_dropped_;
        }
    }
}

// user.tun: the interface exists for as long as this process holds its fd (not persistent).
bool daemon::open_tun()
{
    if (cfg_.user.tun.empty()) return true;
    tun_device::config tc;
    tc.name = cfg_.user.tun;
    tc.address = cfg_.user.tun_address;
    tc.mtu = cfg_.user.tun_mtu;
    std::string error;
    tun_ = tun_device::open(tc, error);
    if (!tun_) {
        log_.error("user", "tun_failed", {{"tun", cfg_.user.tun}, {"error", error}});
        return false;
    }
    tun_buf_.resize(65536);
    std::string address = "unset";
    if (const auto& a = cfg_.user.tun_address) {
        address = std::to_string(a->address[0]) + "." + std::to_string(a->address[1]) + "." + std::to_string(a->address[2]) +
                  "." + std::to_string(a->address[3]) + "/" + std::to_string(a->length);
    }
    log_.info("user", "tun_ready", {{"tun", tun_->name()}, {"address", address}, {"mtu", std::to_string(cfg_.user.tun_mtu)}});
    return true;
}

// IP expects loss, not delay: a packet the link cannot take now (its IP queue full) is dropped and
// counted, never held, so the loop never blocks on the link. Packets that are not whole IPv4/IPv6
// packets are dropped in both directions (the far end's are authenticated, but a peer bug must not
// reach the kernel).
void daemon::user_tun_io()
{
    if (!tun_ || tun_dead_) return;
    for (int i = 0; i < 64 && !draining_.load(); ++i) {
        const auto r = tun_->read(tun_buf_);
        if (r.status == tun_device::io_status::would_block) break;
        if (r.status == tun_device::io_status::failed) {
            log_.error("user", "tun_read_failed", {{"tun", tun_->name()}, {"error", std::strerror(r.error)},
                                                   {"note", "no more IP traffic through the link until restart"}});
            tun_dead_ = true;
            return;
        }
        const auto packet = std::span<const std::uint8_t>(tun_buf_.data(), r.bytes);
        if (check_ip_packet(packet) != ip_packet_check::ok) {
            ++tun_malformed_;
        } else if (engine_->send_datagram(packet, datagram_channel::ip)) {
            ++tun_in_;
        } else {
            ++tun_link_full_;
        }
    }
    for (int i = 0; i < 64; ++i) {
        const std::size_t n = engine_->receive_datagram(tun_buf_, datagram_channel::ip);
        if (n == 0) break;
        const auto packet = std::span<const std::uint8_t>(tun_buf_.data(), n);
        if (check_ip_packet(packet) != ip_packet_check::ok) {
            ++tun_malformed_;
            continue;
        }
        // A full or down interface refuses (EAGAIN, EIO): IP's loss, counted.
        if (tun_->write(packet).status == tun_device::io_status::ok) {
            ++tun_out_;
        } else {
            ++tun_write_failed_;
        }
    }
}

void daemon::user_loop()
{
    std::vector<pollfd> fds;
    while (!user_stop_.load()) {
        fds.clear();
        fds.push_back({tcp_fd_, POLLIN, 0});
        if (udp_fd_ >= 0) fds.push_back({udp_fd_, POLLIN, 0});
        if (tun_ && !tun_dead_) fds.push_back({tun_->fd(), POLLIN, 0});
        bool busy = false;
        for (const auto& c : conns_) {
            short ev = 0;
            if (c.in.empty() && !c.read_eof) ev |= POLLIN;
            if (!stream_out_[c.stream].empty() && !c.write_dead) ev |= POLLOUT;
            busy = busy || !c.in.empty();
            fds.push_back({c.fd, ev, 0});
        }
        // The engine has no readiness signal: poll it every few milliseconds.
        ::poll(fds.data(), fds.size(), busy ? 1 : 4);
        user_stream_io();
        user_datagram_io();
        user_tun_io();
    }
}

// ------------------------------------------------------------------------------------------
// Telemetry

void daemon::scrape_qkmd()
{
    if (cfg_.keys.qkmd_metrics.empty()) return;
    const auto hp = split_host_port(cfg_.keys.qkmd_metrics);
    const auto text = http_get(hp->first, hp->second, "/metrics", 500);
    std::lock_guard lk(scrape_mu_);
    if (text.empty()) {
        pool_level_.reset();
        return;
    }
    pool_level_ = prometheus_value(text, "qkmd_keys_stored{state=\"active\"}");
    qber_ = prometheus_value(text, "qkmd_qber");
    skr_ = prometheus_value(text, "qkmd_secret_key_rate_bps");
}

link_status daemon::status()
{
    const auto st = engine_->stats();
    link_status s;
    s.role = std::string(role_name(cfg_.link.role));
    if (pat_) {
        const auto p = pat_->snapshot();
        s.pat_state = p.state;
        s.pat.acquisitions = p.counters.acquisitions;
        s.pat.reacquisitions = p.counters.reacquisitions;
        s.pat.acquisition_timeouts = p.counters.acquisition_timeouts;
        s.pat.beacon_dropouts = p.counters.beacon_dropouts;
        s.pat.transitions = p.transitions;
        s.pat.time_to_acquire_s = p.time_to_acquire_s;
        if (p.residual_error_rad) s.pat.residual_error_urad = *p.residual_error_rad * 1e6;
        if (p.communication_rms_rad) s.pat.communication_rms_urad = *p.communication_rms_rad * 1e6;
        s.pat.lag_s = p.lag_s;
        s.pat.skipped_s = p.skipped_s;
        if (p.mount.backend == "rotctld") {
            const auto& m = p.mount;
            s.mount.health = m.health;
            s.mount.failed_commands = m.failed_commands;
            s.mount.faults = m.faults;
            s.mount.pace_faults = m.pace_faults;
            s.mount.holds = m.holds;
            s.mount.commands = m.device.commands;
            s.mount.rejected = m.device.rejected;
            s.mount.timeouts = m.device.timeouts;
            s.mount.reconnects = m.device.reconnects;
            s.mount.protocol_errors = m.device.protocol_errors;
            if (m.position) {
                s.mount.az_deg = m.position->az_deg;
                s.mount.el_deg = m.position->el_deg;
            }
            s.mount.error_deg = m.error_deg;
            s.mount.pace = m.pace;
        }
    }
    if (have_sim_time_.load()) s.sim_time = sim_time_.load();
    {
        std::lock_guard lk(air_mu_);
        if (ended_.load()) {
            s.link_state = "ended";
        } else if (!air_ever_connected_) {
            s.link_state = "idle";
        } else if (!air_connected_) {
            s.link_state = "down";
        } else if (!air_got_message_) {
            s.link_state = "acquiring";
        } else if (!link_up_) {
            s.link_state = "down";
        } else {
            s.link_state = st.frames_rx_ok > rx_ok_at_link_up_ ? "up" : "acquiring";
        }
        s.elevation_deg = elevation_;
        s.rx_power_dbm = rx_power_;
        s.esn0_db = esn0_;
        s.extra.downlink_bps = downlink_bps_;
        s.extra.return_bps = return_bps_;
    }
    s.frames.tx = st.frames_tx;
    s.frames.rx_ok = st.frames_rx_ok;
    s.frames.rx_crc_fail = st.frames_crc_fail;
    s.frames.rs_corrected = st.rs_corrected;
    s.frames.decode_fail = st.decode_fail;
    s.frames.ldpc_iterations = st.ldpc_iterations;
    s.bits.rx_channel_errors_est = st.rx_channel_errors_est;
    s.arq.retransmissions = st.arq_retransmissions;
    s.arq.in_flight = st.arq_in_flight;
    s.arq.bytes_delivered = st.bytes_delivered;
    s.arq.bytes_acked = st.bytes_acked;
    if (st.arq_srtt_s > 0.0) s.arq.srtt_s = st.arq_srtt_s;
    if (st.active_key_id != 0) s.keys.active_key_id = st.active_key_id;
    s.keys.rotations = st.rotations;
    s.keys.keys_consumed = tx_keys_->taken() + rx_keys_->taken();
    if (fallback_) s.keys.fallback_keys = fallback_->counters().keys_sent.load();
    s.keys.source = is_fallback_key_id(st.active_key_id) ? "fallback" : "primary";
    if (cfg_.keys.source == key_source_kind::memory) {
        // Keys left for this end's transmitter.
        const std::uint64_t taken = tx_keys_->taken();
        s.keys.pool_level = taken >= cfg_.keys.memory_keys ? 0 : cfg_.keys.memory_keys - taken;
    }
    {
        // QKD numbers come from qkmd whenever it is named, also when the link runs on test keys.
        std::lock_guard lk(scrape_mu_);
        if (cfg_.keys.source == key_source_kind::qkmd && pool_level_) {
            s.keys.pool_level = static_cast<std::uint64_t>(*pool_level_);
        }
        s.qkd.qber = qber_;
        s.qkd.secret_key_rate_bps = skr_;
    }
    s.user.bytes_in = user_bytes_in_.load();
    s.user.bytes_out = user_bytes_out_.load();
    s.extra.air_messages_rx = air_rx_msgs_.load();
    s.extra.air_messages_tx = air_tx_msgs_.load();
    s.extra.air_bits_tx = air_tx_bits_.load();
    s.extra.air_llrs_rx = air_rx_llrs_.load();
    s.extra.air_reconnects = air_reconnects_.load();
    s.extra.air_protocol_errors = air_protocol_errors_.load();
    s.extra.user_connections = user_conns_.load();
    s.extra.user_datagrams_in = dgram_in_.load();
    s.extra.user_datagrams_out = dgram_out_.load();
    s.extra.user_datagrams_dropped = dgram_dropped_.load();
    s.extra.key_errors = tx_keys_->failures() + rx_keys_->failures();
    if (pat_) s.extra.pat_gated_llrs = pat_gated_llrs_.load();
    if (tun_) {
        s.tun.interface = tun_->name();
        s.tun.packets_in = tun_in_.load();
        s.tun.packets_out = tun_out_.load();
        s.tun.malformed = tun_malformed_.load();
        s.tun.link_full = tun_link_full_.load();
        // Every loss of an IP packet at this end: refused here, or by the engine's receive queue.
        s.tun.packets_dropped = s.tun.malformed + s.tun.link_full + tun_write_failed_.load() + st.ip_packets_dropped;
    }
    {
        std::lock_guard lk(rf_mu_);
        if (rf_) {
            const auto r = rf_->snapshot();
            s.rf.active = true;
            s.rf.waveform = rf_->describe();
            s.rf.bits = r.bits;
            s.rf.samples = r.samples;
            s.rf.llrs = r.llrs;
            s.rf.doppler_precomp_hz = r.applied_offset_hz;
            s.rf.max_uplink_doppler_hz = r.max_abs_doppler_hz;
            s.rf.satellite_residual_hz = r.residual_hz;
            s.rf.es_n0_db = r.es_n0_db;
            s.rf.satellite_locked = r.locked;
            s.rf.lock_acquired = r.lock_acquired;
            s.rf.radio_errors = r.radio_errors;
        }
    }
    return s;
}

// ------------------------------------------------------------------------------------------

int daemon::finish(bool drained)
{
    stop_air();
    if (pat_) {
        pat_->stop();
        const auto p = pat_->snapshot();
        log_.info("pat", "stopped",
                  {{"state", p.state}, {"acquisitions", std::to_string(p.counters.acquisitions)},
                   {"reacquisitions", std::to_string(p.counters.reacquisitions)},
                   {"transitions", std::to_string(p.transitions)}, {"skipped_s", daemon_log::num(p.skipped_s)},
                   {"rx_erased_bits", std::to_string(pat_gated_llrs_.load())}});
    }
    user_stop_ = true;
    if (user_thread_.joinable()) user_thread_.join();
    const auto und = engine_->finish();
    std::uint64_t total = 0;
    for (const auto& u : und) {
        total += u.length;
        log_.warn("link", "undelivered", {{"stream", std::to_string(u.stream)}, {"first_byte", std::to_string(u.first_byte)},
                                          {"length", std::to_string(u.length)}});
    }
    // Bytes read from users that the engine never accepted (it was full to the end).
    for (const auto& c : conns_) {
        if (!c.in.empty()) {
            total += c.in.size();
            log_.warn("link", "undelivered", {{"stream", std::to_string(c.stream)}, {"not_accepted_bytes", std::to_string(c.in.size())}});
        }
        ::close(c.fd);
    }
    conns_.clear();
    for (std::size_t k = 0; k < stream_out_.size(); ++k) {
        // Not written to a user, so not confirmed to the far end either: its report names them.
        if (!stream_out_[k].empty()) {
            log_.warn("user", "unwritten", {{"stream", std::to_string(k)}, {"bytes", std::to_string(stream_out_[k].size())}});
        }
    }
    if (record_ && !record_->sync()) {
        log_.warn("link", "record_sync_failed", {{"record", record_->path()}, {"error", std::strerror(errno)}});
    }
    const auto st = engine_->stats();
    if (tun_) {
        log_.info("user", "tun_closed", {{"tun", tun_->name()}, {"packets_in", std::to_string(tun_in_.load())},
                                         {"packets_out", std::to_string(tun_out_.load())},
                                         {"malformed", std::to_string(tun_malformed_.load())},
                                         {"link_full", std::to_string(tun_link_full_.load())}});
    }
    log_.info("link", "stopped",
              {{"drained", drained ? "true" : "false"}, {"undelivered_bytes", std::to_string(total)},
               {"bytes_acked", std::to_string(st.bytes_acked)}, {"bytes_delivered", std::to_string(st.bytes_delivered)},
               {"rotations", std::to_string(st.rotations)}, {"retransmissions", std::to_string(st.arq_retransmissions)},
               {"srtt_s", std::to_string(st.arq_srtt_s)}, {"resume_trimmed_bytes", std::to_string(st.resume_trimmed_bytes)},
               {"resume_gaps", std::to_string(st.resume_gaps)}});
    if (http_) http_->stop();
    if (tcp_fd_ >= 0) ::close(tcp_fd_);
    if (udp_fd_ >= 0) ::close(udp_fd_);
    return total == 0 ? qlinkd_exit_ok : qlinkd_exit_undelivered;
}

int daemon::run()
{
    log_.info("link", "starting",
              {{"tx_profile", cfg_.link.tx_profile}, {"rx_profile", cfg_.link.rx_profile},
               {"keys", cfg_.keys.source == key_source_kind::qkmd ? "qkmd" : "memory"},
               {"security", std::string(to_string(cfg_.security.mode))},
               {"isa", std::string(modem::to_string(modem::best_isa()))}});  // the SIMD kernels this CPU runs
    if (!make_keys_and_engine()) return qlinkd_exit_config;
    // Before anything starts: without the capability the daemon stops here, with one line.
    if (!open_tun()) return qlinkd_exit_failure;
    if (cfg_.terminal.pat_simulated) {
        try {
            pat_ = std::make_unique<pat_runner>(cfg_, [this](const pat_transition& t, double sim_time, double el) {
                log_.info("pat", "transition",
                          {{"from", std::string(to_string(t.from))}, {"to", std::string(to_string(t.to))},
                           {"reason", std::string(to_string(t.reason))}, {"sim_time", daemon_log::num(sim_time)},
                           {"elevation_deg", daemon_log::num(el)}});
            }, [this](std::string_view event, const mount_snapshot& m) {
                const std::string ev(event);
                const std::string address = cfg_.terminal.mount_host + ":" + std::to_string(cfg_.terminal.mount_port);
                if (ev == "mount_recovered") {
                    log_.info("hw", "mount_recovered", {{"mount", "rotctld"}, {"address", address}});
                } else {
                    log_.warn("hw", ev.c_str(), {{"mount", "rotctld"}, {"address", address}, {"health", m.health}, {"error", m.last_error}});
                }
            });
        } catch (const qlinkd_config_error& e) {
            log_.error("pat", "bad_pat_config", {{"error", e.what()}});
            std::cerr << "qlinkd: configuration: " << e.what() << '\n';
            return qlinkd_exit_config;
        }
        pat_->start();
        log_.info("pat", "started",
                  {{"mode", "simulated"}, {"sim_epoch", sim::format_iso8601_utc(*cfg_.air.sim_epoch)},
                   {"fine_rate_hz", daemon_log::num(cfg_.terminal.fine_rate_hz)},
                   {"elevation_mask_deg", daemon_log::num(cfg_.terminal.elevation_mask_deg)}});
    }

    const auto tcp = open_listener(cfg_.user.address, cfg_.user.tcp_port, SOCK_STREAM);
    if (tcp.fd < 0) {
        log_.error("user", "listen_failed", {{"error", tcp.error}});
        return qlinkd_exit_failure;
    }
    tcp_fd_ = tcp.fd;
    tcp_port_ = tcp.port;
    if (cfg_.user.udp_enabled) {
        const auto udp = open_listener(cfg_.user.address, cfg_.user.udp_port, SOCK_DGRAM);
        if (udp.fd < 0) {
            log_.error("user", "listen_failed", {{"error", udp.error}});
            ::close(tcp_fd_);
            return qlinkd_exit_failure;
        }
        udp_fd_ = udp.fd;
        udp_port_ = udp.port;
        if (!cfg_.user.udp_deliver.empty()) {
            const auto hp = split_host_port(cfg_.user.udp_deliver);
            udp_dest_.sin_family = AF_INET;
            udp_dest_.sin_port = htons(hp->second);
            udp_dest_known_ = ::inet_pton(AF_INET, hp->first.c_str(), &udp_dest_.sin_addr) == 1;
        }
    }
    try {
        keymgmt::https_server::config hc;
        hc.address = cfg_.telemetry.address;
        hc.port = cfg_.telemetry.port;
        hc.threads = 1;
        http_ = keymgmt::start_https_server(hc, [this](const keymgmt::http_request_view& r) {
            keymgmt::http_reply rep;
            const auto path = r.target.substr(0, r.target.find('?'));
            if (r.method != "GET") {
                rep.status = 405;
                rep.body = "{\"error\":\"only GET\"}";
            } else if (path == "/status") {
                rep.body = render_status_json(status());
            } else if (path == "/metrics") {
                rep.body = render_metrics(status());
                rep.content_type = "text/plain; version=0.0.4";
            } else {
                rep.status = 404;
                rep.body = "{\"error\":\"not found; try /status or /metrics\"}";
            }
            return rep;
        });
        telemetry_port_ = http_->port();
    } catch (const std::exception& e) {
        log_.error("telemetry", "listen_failed", {{"error", e.what()}});
        ::close(tcp_fd_);
        if (udp_fd_ >= 0) ::close(udp_fd_);
        return qlinkd_exit_failure;
    }

    air_thread_ = std::thread([this] { air_loop(); });
    user_thread_ = std::thread([this] { user_loop(); });

    std::cout << "telemetry-port " << telemetry_port_ << "\nuser-tcp-port " << tcp_port_ << "\nuser-udp-port " << udp_port_
              << "\nready" << std::endl;
    if (!opt_.ready_file.empty()) {
        const std::string tmp = opt_.ready_file + ".tmp";
        {
            std::ofstream f(tmp);
            f << "{\"telemetry_port\":" << telemetry_port_ << ",\"user_tcp_port\":" << tcp_port_
              << ",\"user_udp_port\":" << udp_port_ << "}\n";
        }
        std::rename(tmp.c_str(), opt_.ready_file.c_str());
    }
    log_.info("link", "ready", {{"telemetry_port", std::to_string(telemetry_port_)}, {"user_tcp_port", std::to_string(tcp_port_)},
                                {"user_udp_port", std::to_string(udp_port_)}});

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    std::uint64_t seen_rotations = 0;
    bool logged_stop = false;
    auto last_scrape = steady::now() - std::chrono::seconds(10);
    // Main loop: signals, the pass end, the key-rotation log and qkmd's numbers.
    for (;;) {
        bool stop = opt_.stop != nullptr && opt_.stop->load();
        if (opt_.handle_signals) {
            timespec ts{0, 100 * 1000 * 1000};
            const int sig = ::sigtimedwait(&sigs, nullptr, &ts);
            if (sig == SIGTERM || sig == SIGINT) {
                log_.info("link", "signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
                stop = true;
            }
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        if (air_fatal_.load()) {
            finish(false);
            return qlinkd_exit_failure;
        }
        const auto st = engine_->stats();
        if (st.rotations != seen_rotations) {
            log_.info("keys", "key_rotation", {{"rotations", std::to_string(st.rotations)}, {"active_key_id", std::to_string(st.active_key_id)},
                                               {"source", is_fallback_key_id(st.active_key_id) ? "fallback" : "primary"},
                                               {"sim_time", daemon_log::num(st.sim_time)}});
            seen_rotations = st.rotations;
        }
        if (st.traffic_stopped && !logged_stop) {
            log_.error("keys", "traffic_stopped", {{"reason", "no link key available (policy stop); data is held until keys arrive"}});
        }
        logged_stop = st.traffic_stopped;
        if (seconds_since(last_scrape) >= 1.0) {
            scrape_qkmd();
            last_scrape = steady::now();
            // To disk once a second (a machine crash); a kill -9 loses nothing of it without this.
            if (record_) record_->sync();
        }
        if (ended_.load() && cfg_.link.exit_after_pass) stop = true;
        if (stop) break;
    }

    // Drain: take no new user data, let ARQ deliver what was accepted (bounded by drain_timeout_s).
    draining_ = true;
    const auto t0 = steady::now();
    bool drained = false;
    for (;;) {
        const auto st = engine_->stats();
        bool air_up = false;
        {
            std::lock_guard lk(air_mu_);
            air_up = air_connected_;
        }
        drained = pending_user_bytes_.load() == 0 && st.bytes_acked >= st.user_bytes_in && st.arq_in_flight == 0;
        if (drained || ended_.load() || !air_up || seconds_since(t0) >= cfg_.link.drain_timeout_s) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log_.info("link", "drain_done", {{"drained", drained ? "true" : "false"}, {"seconds", daemon_log::num(seconds_since(t0))}});
    return finish(drained);
}

void print_help()
{
    std::cout << "qlinkd: the qlink link daemon (one end of a quantum-secured satellite link)\n\n"
                 "usage: qlinkd --config FILE [--check-config] [--ready-file FILE]\n"
                 "       qlinkd --help\n\n"
                 "  --config FILE      TOML configuration (see docs/qlinkd.md for every key)\n"
                 "  --check-config     validate the configuration, print a summary and exit (0 ok, 2 bad)\n"
                 "  --ready-file FILE  write {\"telemetry_port\":..,\"user_tcp_port\":..,\"user_udp_port\":..} when listening\n"
                 "  --help             this text\n\n"
                 "On start qlinkd prints 'telemetry-port N', 'user-tcp-port N', 'user-udp-port N' and 'ready' on stdout;\n"
                 "logs go to stderr, one line per event. SIGTERM/SIGINT: stop taking user data, let ARQ drain\n"
                 "(link.drain_timeout_s), report undelivered data and exit 0 (all delivered) or 3 (data undelivered).\n"
                 "Exit 1: runtime failure (relay unreachable, port in use); exit 2: bad configuration.\n"
                 "Telemetry: GET http://127.0.0.1:<telemetry-port>/status (JSON) and /metrics (Prometheus).\n";
}

}  // namespace

int run_qlinkd(const qlinkd_config& cfg, const qlinkd_run_options& options)
{
    std::signal(SIGPIPE, SIG_IGN);
    if (options.handle_signals) {
        // Block before any thread starts so that only sigtimedwait in the main loop sees them.
        sigset_t sigs;
        sigemptyset(&sigs);
        sigaddset(&sigs, SIGTERM);
        sigaddset(&sigs, SIGINT);
        ::pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    }
    daemon d(cfg, options);
    return d.run();
}

int qlinkd_main(int argc, char** argv)
{
    std::string config_path, ready_file;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--help" || a == "-h") {
            print_help();
            return 0;
        }
        if (a == "--check-config") {
            check = true;
        } else if ((a == "--config" || a == "--ready-file") && i + 1 < argc) {
            (a == "--config" ? config_path : ready_file) = argv[++i];
        } else {
            std::cerr << "qlinkd: unknown or incomplete option '" << a << "'; try qlinkd --help\n";
            return qlinkd_exit_config;
        }
    }
    if (config_path.empty()) {
        std::cerr << "qlinkd: --config FILE is required; try qlinkd --help\n";
        return qlinkd_exit_config;
    }
    qlinkd_config cfg;
    try {
        cfg = load_qlinkd_config(config_path);
    } catch (const qlinkd_config_error& e) {
        std::cerr << "qlinkd: configuration: " << e.what() << '\n';
        return qlinkd_exit_config;
    }
    if (check) {
        // The engine checks the combinations (profiles vs frame sizes, ARQ window, ...): build one
        // with throw-away test keys so that --check-config catches what start-up would.
        try {
            auto keys = make_memory_keys(0, 1, cfg.link.role == link_role::ground);
            auto ec = make_engine_config(cfg);
            ec.rto_initial_s = std::clamp(ec.rto_initial_s, ec.rto_min_s, ec.rto_max_s);
            modem::memory_key_source no_fallback;  // the fallback files were checked by the parser
            if (cfg.security.on_exhaustion == exhaustion_policy::fallback) ec.fallback_keys = &no_fallback;
            auto engine = link_engine::create(ec, *keys.tx, *keys.rx);
            engine->finish();
            // Builds the ephemeris, devices and controller (not started): TLE and station checked too.
            if (cfg.terminal.pat_simulated) pat_runner(cfg, nullptr);
            // The RF chain at a nominal return line rate (the relay announces the real one).
            if (cfg.rf.radio_sim) rf_return_link(cfg, 10e3);
        } catch (const std::invalid_argument& e) {
            std::cerr << "qlinkd: configuration: " << e.what() << '\n';
            return qlinkd_exit_config;
        } catch (const qlinkd_config_error& e) {
            std::cerr << "qlinkd: configuration: " << e.what() << '\n';
            return qlinkd_exit_config;
        }
        std::cout << "configuration ok: role " << role_name(cfg.link.role) << ", tx " << cfg.link.tx_profile << ", rx "
                  << cfg.link.rx_profile << ", air " << cfg.air.host << ":" << cfg.air.port << ", keys "
                  << (cfg.keys.source == key_source_kind::qkmd ? "qkmd " + cfg.keys.socket : std::string("memory (TEST ONLY)"))
                  << ", pat " << (cfg.terminal.pat_simulated ? "simulated" : "off") << ", rf "
                  << (cfg.rf.radio_sim ? "sim" : "relay") << ", tun " << (cfg.user.tun.empty() ? std::string("off") : cfg.user.tun)
                  << '\n';
        return qlinkd_exit_ok;
    }
    return run_qlinkd(cfg, {ready_file, true, nullptr});
}

}  // namespace qlink::terminal
