// QKD port: BB84 decoy blocks from qkd_channel at the pass transmittance, one Asio thread, same block ids at both ends.
#include "qlink/sim/qkd_server.hpp"
#include "service/listen.hpp"
#include "service/role_session.hpp"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <list>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace qlink::sim {

namespace {

void put_u32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint32_t get_u32(const std::uint8_t* p) {
    std::uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
std::uint64_t get_u64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}

}  // namespace

void encode_qkd_block_header(const qkd_block_header& h, std::span<std::uint8_t, qkd_block_header_size> out) {
    std::memset(out.data(), 0, qkd_block_header_size);
    put_u32(&out[0], qkd_block_magic);
    put_u32(&out[4], h.flags);
    put_u64(&out[8], h.block_id);
    std::uint64_t t;
    std::memcpy(&t, &h.sim_time, 8);
    put_u64(&out[16], t);
    for (int c = 0; c < 3; ++c) put_u64(&out[24 + 8 * c], h.pulses_sent[c]);
    put_u32(&out[48], h.count);
}

bool decode_qkd_block_header(std::span<const std::uint8_t, qkd_block_header_size> in, qkd_block_header& h) {
    if (get_u32(&in[0]) != qkd_block_magic) return false;
    h.flags = get_u32(&in[4]);
    h.block_id = get_u64(&in[8]);
    const std::uint64_t t = get_u64(&in[16]);
    std::memcpy(&h.sim_time, &t, 8);
    for (int c = 0; c < 3; ++c) h.pulses_sent[c] = get_u64(&in[24 + 8 * c]);
    h.count = get_u32(&in[48]);
    return true;
}

void encode_qkd_record(const qkd_record& r, std::span<std::uint8_t, qkd_record_size> out) {
    std::memset(out.data(), 0, qkd_record_size);
    put_u64(&out[0], r.pulse);
    out[8] = r.intensity;
    out[9] = r.basis;
    out[10] = r.bit;
}

qkd_record decode_qkd_record(std::span<const std::uint8_t, qkd_record_size> in) {
    return {get_u64(&in[0]), in[8], in[9], in[10]};
}

std::string qkd_server::validate(const config& c) {
    if (!(c.block_s >= 0.01 && c.block_s <= 60.0)) return "qkd port: block_s outside the allowed range [0.01, 60]";
    if (c.max_queue_bytes < (1u << 20)) return "qkd port: max_queue_bytes must be >= 1 MiB";
    if (!(c.hello_timeout_s > 0.0 && c.hello_timeout_s <= 3600.0)) return "qkd port: hello_timeout_s outside (0, 3600]";
    if (!(c.channel.pulse_rate_hz * c.block_s <= 1e12)) return "qkd port: pulse_rate_hz x block_s must be <= 1e12";
    try {
        qkd_channel probe(c.channel);
    } catch (const std::invalid_argument& e) {
        return std::string("qkd port: channel ") + e.what();
    }
    return {};
}

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

class qkd_impl;

class qkd_session : public detail::role_session<qkd_session, qkd_impl> {
public:
    qkd_session(tcp::socket s, qkd_impl& srv) : role_session(std::move(s), srv, {"QKD1 alice", "QKD1 bob"}) {}
    /// Queues a shared block; false when the queue is over its limit (the block is dropped).
    bool enqueue(std::shared_ptr<const std::vector<std::uint8_t>> b);

private:
    friend role_session;
    void on_role();  // role(): 0 alice, 1 bob
    void on_close();
    void watch();
    void do_write();

    char c_ = 0;
    std::deque<std::shared_ptr<const std::vector<std::uint8_t>>> outq_;
    std::size_t out_bytes_ = 0;
    bool writing_ = false;
};

class qkd_impl final : public qkd_server {
public:
    qkd_impl(const config& cfg, const pass_world& world, pass_clock& clock)
        : cfg_(cfg), world_(world), clock_(clock), acceptor_(io_), tick_(io_), channel_([&] {
              auto c = cfg.channel;
              c.seed = cfg.seed ^ 0x2545f4914f6cdd1dull;
              return c;
          }()),
          rng_(cfg.seed ^ 0x9e3779b97f4a7c15ull), events_(1u << 16) {
        port_ = detail::listen_on(acceptor_, cfg.bind_address, cfg.port, "qkd port");
        accept();
        tick();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~qkd_impl() override { stop(); }
    std::uint16_t port() const override { return port_; }
    const counters& stats() const override { return stats_; }
    void stop() override {
        std::call_once(stopped_, [this] {
            asio::post(io_, [this] {
                boost::system::error_code ec;
                acceptor_.close(ec);
                tick_.cancel();
                for (auto& w : sessions_)
                    if (auto s = w.lock()) s->close();
            });
            io_.stop();
            if (thread_.joinable()) thread_.join();
        });
    }

    const config& cfg() const { return cfg_; }
    counters& stats_mut() { return stats_; }
    pass_clock& clock() { return clock_; }
    bool ended() const { return ended_; }
    std::shared_ptr<const std::vector<std::uint8_t>> end_block(int role) const { return end_blocks_[role]; }

    std::string claim(int role, const std::shared_ptr<qkd_session>& s) {
        if (auto cur = roles_[role].lock(); cur && cur->open())
            return std::string("role ") + (role == 0 ? "alice" : "bob") + " already connected";
        roles_[role] = s;
        return {};
    }
    void release(int role, const qkd_session* s) {
        if (role < 0) return;
        if (auto cur = roles_[role].lock(); !cur || cur.get() == s) roles_[role].reset();
    }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                return accept();
            }
            auto s = std::make_shared<qkd_session>(std::move(sock), *this);
            sessions_.remove_if([](const std::weak_ptr<qkd_session>& w) { return w.expired(); });
            sessions_.push_back(s);
            s->start();
            accept();
        });
    }

    void tick() {
        tick_.expires_after(std::chrono::milliseconds(10));
        tick_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            if (clock_.started() && !ended_) {
                const double now = clock_.sim_time();
                while (!ended_ && (static_cast<double>(next_block_ + 1) * cfg_.block_s <= now + 1e-9 ||
                                   (clock_.ended() && static_cast<double>(next_block_) * cfg_.block_s < clock_.duration_s())))
                    emit_block();
                if (clock_.ended() && static_cast<double>(next_block_) * cfg_.block_s >= clock_.duration_s()) emit_end();
            }
            tick();
        });
    }

    // One block: the pulses of [t0, t1) in sub-steps of the world grid, so fades and clouds
    // inside a block change the transmittance where they happen.
    void emit_block() {
        const double t0 = static_cast<double>(next_block_) * cfg_.block_s;
        const double t1 = std::min(t0 + cfg_.block_s, clock_.duration_s());
        const double step = 1.0 / world_.settings().sample_rate_hz;
        const std::uint64_t first_pulse = channel_.next_pulse_index();
        alice_.clear();
        bob_.clear();
        bool any_up = false;
        std::uint64_t total_pulses = 0;
        for (double t = t0; t < t1 - 1e-12; t += step) {
            const double dt = std::min(step, t1 - t);
            const auto s = world_.at(t + 0.5 * dt);
            any_up = any_up || s.link_up;
            std::uint64_t pulses = static_cast<std::uint64_t>(std::llround(cfg_.channel.pulse_rate_hz * (t + dt - t0))) -
                                   total_pulses;
            total_pulses += pulses;
            while (pulses > 0) {
                const auto r = channel_.simulate(s.qkd_transmittance, pulses, events_);
                if (!r.ok) break;  // cannot happen: transmittance is clamped to [0, 1]
                pulses -= r.pulses;
                for (std::size_t i = 0; i < r.detections; ++i) {
                    const auto& d = events_[i];
                    const std::uint64_t p = d.pulse_index - first_pulse;
                    alice_.push_back({p, static_cast<std::uint8_t>(d.intensity), d.alice_basis, d.alice_bit});
                    bob_.push_back({p, 0xFF, d.bob_basis, d.bob_bit});
                }
            }
        }
        qkd_block_header h;
        h.flags = any_up ? 0u : qkd_flag_link_down;
        h.block_id = next_block_++;
        h.sim_time = t0;
        // What Alice sent per class: a multinomial split of the block's pulses by the class probabilities.
        std::uint64_t left = total_pulses;
        double p_left = 1.0;
        for (int c = 0; c < 2; ++c) {
            const double p = p_left > 0.0 ? std::clamp(cfg_.channel.probabilities[c] / p_left, 0.0, 1.0) : 0.0;
            const auto k = p >= 1.0 ? left : std::binomial_distribution<std::uint64_t>(left, p)(rng_);
            h.pulses_sent[c] = k;
            left -= k;
            p_left -= cfg_.channel.probabilities[c];
        }
        h.pulses_sent[2] = left;
        h.count = static_cast<std::uint32_t>(alice_.size());
        send(0, h, alice_);
        h.pulses_sent = {0, 0, 0};
        send(1, h, bob_);
        ++stats_.blocks;
        stats_.detections += alice_.size();
    }

    void emit_end() {
        qkd_block_header h;
        h.flags = qkd_flag_end_of_pass | qkd_flag_link_down;
        h.block_id = next_block_;
        h.sim_time = clock_.duration_s();
        for (int role = 0; role < 2; ++role) {
            auto b = std::make_shared<std::vector<std::uint8_t>>(qkd_block_header_size);
            encode_qkd_block_header(h, std::span<std::uint8_t, qkd_block_header_size>(b->data(), qkd_block_header_size));
            end_blocks_[role] = b;
            if (auto s = roles_[role].lock(); s && s->open()) s->enqueue(b);
        }
        ended_ = true;
    }

    void send(int role, const qkd_block_header& h, const std::vector<qkd_record>& recs) {
        auto s = roles_[role].lock();
        if (!s || !s->open()) return;
        auto b = std::make_shared<std::vector<std::uint8_t>>(qkd_block_header_size + recs.size() * qkd_record_size);
        encode_qkd_block_header(h, std::span<std::uint8_t, qkd_block_header_size>(b->data(), qkd_block_header_size));
        std::uint8_t* p = b->data() + qkd_block_header_size;
        for (const auto& r : recs) {
            encode_qkd_record(r, std::span<std::uint8_t, qkd_record_size>(p, qkd_record_size));
            p += qkd_record_size;
        }
        if (!s->enqueue(std::move(b))) ++stats_.dropped_blocks;
    }

    config cfg_;
    const pass_world& world_;
    pass_clock& clock_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    asio::steady_timer tick_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::once_flag stopped_;
    counters stats_;
    std::list<std::weak_ptr<qkd_session>> sessions_;
    std::weak_ptr<qkd_session> roles_[2];
    qkd_channel channel_;
    std::mt19937_64 rng_;
    std::vector<qkd_detection> events_;
    std::vector<qkd_record> alice_, bob_;  // reused block to block
    std::uint64_t next_block_ = 0;
    bool ended_ = false;
    std::shared_ptr<const std::vector<std::uint8_t>> end_blocks_[2];
};

void qkd_session::on_role() {
    char line[64];
    std::snprintf(line, sizeof line, "OK %.17g\n", srv_.cfg().channel.pulse_rate_hz);
    const std::string s(line);
    enqueue(std::make_shared<const std::vector<std::uint8_t>>(s.begin(), s.end()));
    if (srv_.ended()) enqueue(srv_.end_block(role()));
    watch();
}

// Nothing is expected from the client after its hello: EOF is a disconnect, bytes are a protocol error.
void qkd_session::watch() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(&c_, 1), [this, self](boost::system::error_code ec, std::size_t) {
        if (!open()) return;
        if (ec)
            ++srv_.stats_mut().disconnects;
        else
            ++srv_.stats_mut().protocol_errors;
        close();
    });
}

bool qkd_session::enqueue(std::shared_ptr<const std::vector<std::uint8_t>> b) {
    if (!open() || !b) return false;
    if (out_bytes_ + b->size() > srv_.cfg().max_queue_bytes && b->size() > qkd_block_header_size) return false;
    out_bytes_ += b->size();
    outq_.push_back(std::move(b));
    if (!writing_) do_write();
    return true;
}

void qkd_session::do_write() {
    if (outq_.empty() || !open()) {
        writing_ = false;
        return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(*outq_.front()), [this, self](boost::system::error_code ec, std::size_t) {
        if (!open()) return;
        if (ec) {
            ++srv_.stats_mut().disconnects;
            return close();
        }
        out_bytes_ -= outq_.front()->size();
        outq_.pop_front();
        do_write();
    });
}

void qkd_session::on_close() {
    outq_.clear();
    out_bytes_ = 0;
}

}  // namespace

std::unique_ptr<qkd_server> start_qkd_server(const qkd_server::config& cfg, const pass_world& world, pass_clock& clock) {
    if (auto e = qkd_server::validate(cfg); !e.empty()) throw std::invalid_argument(e);
    return std::make_unique<qkd_impl>(cfg, world, clock);
}

}  // namespace qlink::sim
