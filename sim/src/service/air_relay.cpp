// Air relay: QAIR1 sessions on one Asio thread, paced reads, optical/RF channels per message, end of pass.
#include "qlink/sim/air_relay.hpp"
#include "service/listen.hpp"
#include "service/role_session.hpp"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <deque>
#include <limits>
#include <list>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>

namespace qlink::sim {

namespace {

air_channel_result bad(const char* msg) {
    air_channel_result r;
    r.ok = false;
    r.error = msg;
    return r;
}

const char* check_args(double bps, std::span<const std::uint8_t> packed, std::size_t nbits,
                       std::span<std::int8_t> llr) {
    if (!(bps > 0.0) || !std::isfinite(bps)) return "air channel: bit rate must be > 0";
    if (packed.size() < air_packed_size(nbits)) return "air channel: packed input shorter than ceil(nbits / 8)";
    if (llr.size() < nbits) return "air channel: LLR output shorter than nbits";
    return nullptr;
}

// Bits from index i on that fall in the same world grid sample as bit i.
std::size_t chunk_len(double t0, double bps, std::size_t i, std::size_t nbits, double rate) {
    const double t = t0 + static_cast<double>(i) / bps;
    const double next = (std::floor(t * rate) + 1.0) / rate;
    const double n = std::ceil((next - t) * bps);
    return std::clamp<std::size_t>(static_cast<std::size_t>(std::max(n, 1.0)), 1, nbits - i);
}

std::size_t count_errors(std::span<const std::uint8_t> bits, std::span<const std::int8_t> llr) {
    std::size_t e = 0;
    for (std::size_t k = 0; k < bits.size(); ++k) e += llr[k] == 0 || (llr[k] < 0) != (bits[k] != 0);
    return e;
}

photon_receiver::config receiver_config(const pass_world& w, std::uint64_t seed) {
    photon_receiver::config c;
    c.detector_efficiency = w.settings().detector_efficiency;
    c.dark_count_rate_hz = 0.0;  // the world's noise_per_slot already holds dark and background counts
    c.slot_duration_s = 1.0 / w.settings().optical_slot_rate_hz;
    c.background_photons_per_slot = w.settings().noise_per_slot / w.settings().detector_efficiency;
    c.seed = seed;
    return c;
}

}  // namespace

air_downlink_channel::air_downlink_channel(const pass_world& world, double llr_scale, std::uint64_t seed)
    : world_(world), scale_(llr_scale), rx_(receiver_config(world, seed)) {
    if (!(llr_scale > 0.0 && llr_scale <= 100.0)) throw std::invalid_argument("downlink_llr_scale must be in (0, 100]");
}

air_channel_result air_downlink_channel::process(double t0, double bps, std::span<const std::uint8_t> packed,
                                                 std::size_t nbits, std::span<std::int8_t> llr) {
    if (const char* e = check_args(bps, packed, nbits, llr)) return bad(e);
    air_channel_result r;
    r.llrs = nbits;
    const auto s0 = world_.at(t0);
    r.info = {s0.link_up, t0, static_cast<float>(s0.elevation_deg), static_cast<float>(s0.rx_power_dbm),
              static_cast<float>(s0.photons_per_slot), static_cast<float>(s0.return_esn0_db)};
    if (nbits == 0) return r;
    if (bits_.size() < nbits) bits_.resize(nbits), counts_.resize(nbits);
    const std::span<std::uint8_t> bits(bits_.data(), nbits);
    unpack_bits_msb(packed, bits);
    const double rate = world_.settings().sample_rate_hz;
    const double eta = world_.settings().detector_efficiency;
    for (std::size_t i = 0; i < nbits;) {
        const std::size_t n = chunk_len(t0, bps, i, nbits, rate);
        const auto s = i == 0 ? s0 : world_.at(t0 + static_cast<double>(i) / bps);
        const auto out = llr.subspan(i, n);
        if (!s.link_up) {
            std::fill(out.begin(), out.end(), std::int8_t{0});
            r.erased += n;
        } else {
            const double at_aperture = s.photons_per_slot / eta;
            const std::span<std::uint32_t> counts(counts_.data() + i, n);
            rx_.receive_ook(bits.subspan(i, n), at_aperture, {}, counts);
            ook_llr(counts, rx_.signal_mean(at_aperture), rx_.noise_mean(), scale_, out);
        }
        i += n;
    }
    r.hard_errors = count_errors(bits, llr.first(nbits));
    return r;
}

air_return_channel::air_return_channel(const pass_world& world, double llr_scale, std::uint64_t seed)
    : world_(world), scale_(llr_scale), rng_(seed) {
    if (!(llr_scale > 0.0 && llr_scale <= 100.0)) throw std::invalid_argument("return_llr_scale must be in (0, 100]");
}

air_channel_result air_return_channel::process(double t0, double bps, std::span<const std::uint8_t> packed,
                                               std::size_t nbits, std::span<std::int8_t> llr) {
    if (const char* e = check_args(bps, packed, nbits, llr)) return bad(e);
    air_channel_result r;
    r.llrs = nbits;
    const auto s0 = world_.at(t0);
    r.info = {s0.return_up, t0, static_cast<float>(s0.elevation_deg), std::numeric_limits<float>::quiet_NaN(),
              static_cast<float>(s0.return_esn0_db), static_cast<float>(s0.return_esn0_db)};
    const double rate = world_.settings().sample_rate_hz;
    for (std::size_t i = 0; i < nbits;) {
        const std::size_t n = chunk_len(t0, bps, i, nbits, rate);
        const auto s = i == 0 ? s0 : world_.at(t0 + static_cast<double>(i) / bps);
        if (!s.return_up) {
            std::fill(llr.begin() + static_cast<std::ptrdiff_t>(i), llr.begin() + static_cast<std::ptrdiff_t>(i + n),
                      std::int8_t{0});
            r.erased += n;
        } else {
            const double sigma2 = 1.0 / (2.0 * std::pow(10.0, s.return_esn0_db / 10.0));
            const double gain = scale_ * 2.0 / sigma2;
            std::normal_distribution<double> noise(0.0, std::sqrt(sigma2));
            for (std::size_t k = i; k < i + n; ++k) {
                const bool one = (packed[k / 8] >> (7 - k % 8)) & 1u;
                const double y = (one ? -1.0 : 1.0) + noise(rng_);
                const double q = std::clamp(std::nearbyint(gain * y), -127.0, 127.0);
                llr[k] = static_cast<std::int8_t>(q);
                r.hard_errors += q == 0.0 || (q < 0.0) != one;
            }
        }
        i += n;
    }
    r.hard_errors += r.erased;
    return r;
}

air_channel_result air_gate_llrs(const pass_world& world, bool downlink, double t0, double bps,
                                 std::span<const std::int8_t> in, std::span<std::int8_t> out) {
    if (!(bps > 0.0) || !std::isfinite(bps)) return bad("air channel: bit rate must be > 0");
    if (out.size() < in.size()) return bad("air channel: LLR output shorter than the input");
    air_channel_result r;
    r.llrs = in.size();
    const auto s0 = world.at(t0);
    auto up = [downlink](const world_sample& s) { return downlink ? s.link_up : s.return_up; };
    r.info = {up(s0), t0, static_cast<float>(s0.elevation_deg),
              downlink ? static_cast<float>(s0.rx_power_dbm) : std::numeric_limits<float>::quiet_NaN(),
              static_cast<float>(downlink ? s0.photons_per_slot : s0.return_esn0_db), static_cast<float>(s0.return_esn0_db)};
    const double rate = world.settings().sample_rate_hz;
    for (std::size_t i = 0; i < in.size();) {
        const std::size_t n = chunk_len(t0, bps, i, in.size(), rate);
        const auto s = i == 0 ? s0 : world.at(t0 + static_cast<double>(i) / bps);
        if (up(s)) {
            std::copy_n(in.begin() + static_cast<std::ptrdiff_t>(i), n, out.begin() + static_cast<std::ptrdiff_t>(i));
        } else {
            std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(i), n, std::int8_t{0});
            r.erased += n;
        }
        i += n;
    }
    return r;
}

std::string air_relay::validate(const config& c) {
    auto num = [](double v) { return std::to_string(v); };
    if (!(c.downlink_bps > 0.0 && c.downlink_bps <= 1e9))
        return "air relay: downlink_bps " + num(c.downlink_bps) + " outside the allowed range (0, 1e9]";
    if (!(c.return_bps > 0.0 && c.return_bps <= 1e9))
        return "air relay: return_bps " + num(c.return_bps) + " outside the allowed range (0, 1e9]";
    if (!(c.downlink_llr_scale > 0.0 && c.downlink_llr_scale <= 100.0)) return "air relay: downlink_llr_scale outside (0, 100]";
    if (!(c.return_llr_scale > 0.0 && c.return_llr_scale <= 100.0)) return "air relay: return_llr_scale outside (0, 100]";
    if (!(c.read_ahead_s > 0.0 && c.read_ahead_s <= 60.0)) return "air relay: read_ahead_s outside (0, 60]";
    if (c.max_queue_bytes < (1u << 20)) return "air relay: max_queue_bytes must be >= 1 MiB";
    if (c.socket_buffer_bytes < 2048 || c.socket_buffer_bytes > (16u << 20))
        return "air relay: socket_buffer_bytes " + std::to_string(c.socket_buffer_bytes) + " outside [2048, 16777216]";
    if (!(c.hello_timeout_s > 0.0 && c.hello_timeout_s <= 3600.0)) return "air relay: hello_timeout_s outside (0, 3600]";
    return {};
}

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using steady = std::chrono::steady_clock;

class relay_impl;

class air_session : public detail::role_session<air_session, relay_impl> {
public:
    air_session(tcp::socket s, relay_impl& relay) : role_session(std::move(s), relay, {"QAIR1 ground", "QAIR1 space"}) {}
    void enqueue(std::vector<std::uint8_t> buf);
    std::size_t queued_bytes() const { return out_bytes_; }
    void send_end_of_pass();

private:
    friend role_session;
    void on_role();  // role(): 0 ground, 1 space
    void on_close();
    void read_header();
    void read_payload();
    void schedule_next_read();
    void do_write();

    bool eop_sent_ = false;
    std::array<std::uint8_t, air_header_size> hdr_{};
    air_header header_{};
    std::vector<std::uint8_t> payload_;
    std::deque<std::vector<std::uint8_t>> outq_;
    std::size_t out_bytes_ = 0;
    bool writing_ = false;
    steady::time_point next_read_{};
};

class relay_impl final : public air_relay {
public:
    relay_impl(const config& cfg, const pass_world& world, pass_clock& clock)
        : cfg_(cfg), world_(world), clock_(clock), acceptor_(io_), tick_(io_),
          down_(world, cfg.downlink_llr_scale, cfg.seed ^ 0x5851f42d4c957f2dull),
          ret_(world, cfg.return_llr_scale, cfg.seed ^ 0x14057b7ef767814full) {
        port_ = detail::listen_on(acceptor_, cfg.bind_address, cfg.port, "air relay");
        boost::system::error_code ig;  // accepted sockets inherit it (and lose autotuning)
        acceptor_.set_option(asio::socket_base::receive_buffer_size(static_cast<int>(cfg.socket_buffer_bytes)), ig);
        accept();
        tick();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~relay_impl() override { stop(); }
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

    // --- used by sessions, all on the io thread ---
    const config& cfg() const { return cfg_; }
    pass_clock& clock() { return clock_; }
    bool pass_over() const { return eop_done_; }
    counters& stats_mut() { return stats_; }

    /// Empty string when the role slot was free and is now taken by `s`.
    std::string claim(int role, const std::shared_ptr<air_session>& s) {
        if (auto cur = roles_[role].lock(); cur && cur->open())
            return std::string("role ") + (role == 0 ? "ground" : "space") + " already connected";
        roles_[role] = s;
        return {};
    }
    void release(int role, const air_session* s) {
        if (role < 0) return;
        if (auto cur = roles_[role].lock(); !cur || cur.get() == s) roles_[role].reset();
    }
    std::shared_ptr<air_session> peer_of(int role) {
        auto p = roles_[1 - role].lock();
        return p && p->open() ? p : nullptr;
    }

    std::vector<std::uint8_t> get_buffer(std::size_t n) {
        std::vector<std::uint8_t> b;
        if (!pool_.empty()) {
            b = std::move(pool_.back());
            pool_.pop_back();
        }
        b.resize(n);
        return b;
    }
    void put_buffer(std::vector<std::uint8_t> b) {
        if (pool_.size() < 64) pool_.push_back(std::move(b));
    }

    /// Runs the sender's bits through its channel and queues the LLRs for the other side.
    void forward(int sender, const air_header& h, std::span<const std::uint8_t> payload) {
        const bool soft = h.type == air_msg_type::tx_llr;
        (soft ? stats_.llrs_in : stats_.bits_in)[sender] += h.count;
        if (eop_done_ || h.count == 0) return;
        auto dest = peer_of(sender);
        if (!dest) {
            stats_.dropped_bits += h.count;
            return;
        }
        const double t0 = clock_.sim_time();
        auto buf = get_buffer(air_header_size + h.count + air_trailer_size);
        const std::span<std::int8_t> llr(reinterpret_cast<std::int8_t*>(buf.data() + air_header_size), h.count);
        const double bps = sender == 1 ? cfg_.downlink_bps : cfg_.return_bps;
        const air_channel_result r =
            soft ? air_gate_llrs(world_, sender == 1, t0, bps,
                                 std::span(reinterpret_cast<const std::int8_t*>(payload.data()), h.count), llr)
            : sender == 1 ? down_.process(t0, bps, payload, h.count, llr)
                          : ret_.process(t0, bps, payload, h.count, llr);
        const int receiver = 1 - sender;
        stats_.llrs_out[receiver] += r.llrs;
        stats_.erased[receiver] += r.erased;
        encode_air_header({air_msg_type::rx_llr, static_cast<std::uint16_t>(r.info.link_up ? air_flag_link_up : 0),
                           h.count, t0},
                          std::span<std::uint8_t, air_header_size>(buf.data(), air_header_size));
        encode_air_trailer(r.info, std::span<std::uint8_t, air_trailer_size>(buf.data() + air_header_size + h.count,
                                                                              air_trailer_size));
        dest->enqueue(std::move(buf));
    }

    void add_session(const std::shared_ptr<air_session>& s) {
        sessions_.remove_if([](const std::weak_ptr<air_session>& w) { return w.expired(); });
        sessions_.push_back(s);
    }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                return accept();
            }
            boost::system::error_code ig;
            sock.set_option(tcp::no_delay(true), ig);
            sock.set_option(asio::socket_base::receive_buffer_size(static_cast<int>(cfg_.socket_buffer_bytes)), ig);
            auto s = std::make_shared<air_session>(std::move(sock), *this);
            add_session(s);
            s->start();
            accept();
        });
    }

    // End of pass: checked every 10 ms of wall time.
    void tick() {
        tick_.expires_after(std::chrono::milliseconds(10));
        tick_.async_wait([this](boost::system::error_code ec) {
            if (ec) return;
            if (!eop_done_ && clock_.ended()) {
                eop_done_ = true;
                for (auto& w : sessions_)
                    if (auto s = w.lock(); s && s->role() >= 0) s->send_end_of_pass();
            }
            tick();
        });
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
    std::list<std::weak_ptr<air_session>> sessions_;
    std::weak_ptr<air_session> roles_[2];
    std::vector<std::vector<std::uint8_t>> pool_;
    air_downlink_channel down_;
    air_return_channel ret_;
    bool eop_done_ = false;
};

void air_session::on_role() {
    char line[96];
    std::snprintf(line, sizeof line, "OK %.17g %.17g\n", srv_.cfg().downlink_bps, srv_.cfg().return_bps);
    const std::string s(line);
    enqueue(std::vector<std::uint8_t>(s.begin(), s.end()));
    if (srv_.pass_over()) send_end_of_pass();
    next_read_ = steady::now();
    read_header();
}

void air_session::send_end_of_pass() {
    if (eop_sent_ || !open()) return;
    eop_sent_ = true;
    auto b = srv_.get_buffer(air_header_size);
    encode_air_header({air_msg_type::end_of_pass, 0, 0, srv_.clock().sim_time()},
                      std::span<std::uint8_t, air_header_size>(b.data(), air_header_size));
    ++srv_.stats_mut().end_of_pass_sent;  // before the write starts: a client may see it at once
    enqueue(std::move(b));
}

void air_session::read_header() {
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(hdr_), [this, self](boost::system::error_code ec, std::size_t) {
        if (!open()) return;
        if (ec) {
            ++srv_.stats_mut().disconnects;
            return close();
        }
        const char* err = "";
        if (!decode_air_header(hdr_, header_, err) ||
            (header_.type != air_msg_type::tx_bits && header_.type != air_msg_type::tx_llr)) {
            ++srv_.stats_mut().protocol_errors;
            return close();
        }
        read_payload();
    });
}

void air_session::read_payload() {
    payload_.resize(header_.type == air_msg_type::tx_llr ? header_.count : air_packed_size(header_.count));
    auto self = shared_from_this();
    asio::async_read(socket_, asio::buffer(payload_), [this, self](boost::system::error_code ec, std::size_t) {
        if (!open()) return;
        if (ec) {
            ++srv_.stats_mut().disconnects;
            return close();
        }
        srv_.forward(role(), header_, payload_);
        // Pacing: a client may run read_ahead_s of sim time ahead; beyond that its bits are read
        // no faster than the line rate x speed (TCP backpressure holds the sender).
        const double bps = (role() == 1 ? srv_.cfg().downlink_bps : srv_.cfg().return_bps) * srv_.clock().speed();
        const auto now = steady::now();
        const auto ahead = std::chrono::duration_cast<steady::duration>(
            std::chrono::duration<double>(srv_.cfg().read_ahead_s / srv_.clock().speed()));
        next_read_ = std::max(next_read_, now - ahead) +
                     std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(header_.count / bps));
        schedule_next_read();
    });
}

void air_session::schedule_next_read() {
    auto self = shared_from_this();
    const auto peer = srv_.peer_of(role());
    const auto now = steady::now();
    if (peer && peer->queued_bytes() > srv_.cfg().max_queue_bytes) {
        // The receiver is not keeping up: hold this sender until its queue drains.
        timer_.expires_after(std::chrono::milliseconds(5));
    } else if (next_read_ > now) {
        timer_.expires_at(next_read_);
    } else {
        return read_header();
    }
    timer_.async_wait([this, self](boost::system::error_code ec) {
        if (ec || !open()) return;
        schedule_next_read();
    });
}

void air_session::enqueue(std::vector<std::uint8_t> buf) {
    if (!open()) return srv_.put_buffer(std::move(buf));
    out_bytes_ += buf.size();
    outq_.push_back(std::move(buf));
    if (!writing_) do_write();
}

void air_session::do_write() {
    if (outq_.empty() || !open()) {
        writing_ = false;
        return;
    }
    writing_ = true;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(outq_.front()), [this, self](boost::system::error_code ec, std::size_t) {
        if (!open()) return;
        if (ec) {
            ++srv_.stats_mut().disconnects;
            return close();
        }
        out_bytes_ -= outq_.front().size();
        srv_.put_buffer(std::move(outq_.front()));
        outq_.pop_front();
        do_write();
    });
}

void air_session::on_close() {
    outq_.clear();
    out_bytes_ = 0;
}

}  // namespace

std::unique_ptr<air_relay> start_air_relay(const air_relay::config& cfg, const pass_world& world, pass_clock& clock) {
    if (auto e = air_relay::validate(cfg); !e.empty()) throw std::invalid_argument(e);
    return std::make_unique<relay_impl>(cfg, world, clock);
}

}  // namespace qlink::sim
