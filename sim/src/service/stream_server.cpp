// Soft-bit stream service: per-client BPSK/AWGN LLR blocks with a fixed header, paced by a timer.
#include "qlink/sim/stream_server.hpp"
#include "service/listen.hpp"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <list>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

namespace qlink::sim {

struct stream_bit_source::impl {
    std::mt19937_64 engine;
    std::uint64_t word = 0;
    int left = 0;
};

stream_bit_source::stream_bit_source(std::uint64_t seed) : impl_(std::make_shared<impl>()) { impl_->engine.seed(seed); }

std::uint8_t stream_bit_source::next() {
    if (impl_->left == 0) {
        impl_->word = impl_->engine();
        impl_->left = 64;
    }
    --impl_->left;
    return static_cast<std::uint8_t>((impl_->word >> impl_->left) & 1u);
}

std::string softbit_stream_server::validate(const config& c) {
    if (!(c.esn0_db >= -10.0 && c.esn0_db <= 40.0))
        return "stream Es/N0 " + std::to_string(c.esn0_db) + " dB outside the allowed range [-10, 40]";
    if (c.block_llrs < 1 || c.block_llrs > (1u << 20)) return "stream block length outside the allowed range [1, 1048576]";
    if (!(c.llr_scale > 0.0 && c.llr_scale <= 100.0)) return "stream LLR scale outside the allowed range (0, 100]";
    if (!(c.bits_per_second >= 0.0 && c.bits_per_second <= 1e10))
        return "stream bit rate " + std::to_string(c.bits_per_second) + " outside the allowed range [0, 1e10] (0 = unpaced)";
    if (c.max_clients == 0) return "stream max_clients must be >= 1";
    return {};
}

namespace {

namespace asio = boost::asio;
using asio::ip::tcp;

void put_u16(std::uint8_t* p, std::uint16_t v) { p[0] = v & 0xff, p[1] = v >> 8; }
void put_u32(std::uint8_t* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_u64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void put_f32(std::uint8_t* p, float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    put_u32(p, u);
}

class stream_session : public std::enable_shared_from_this<stream_session> {
public:
    stream_session(tcp::socket s, const softbit_stream_server::config& cfg)
        : socket_(std::move(s)), timer_(socket_.get_executor()), cfg_(cfg), bits_(cfg.seed),
          noise_(cfg.seed ^ 0x9e3779b97f4a7c15ull), buf_(8 + cfg.block_llrs) {
        const double esn0 = std::pow(10.0, cfg.esn0_db / 10.0);
        sigma_ = std::sqrt(1.0 / (2.0 * esn0));
        llr_gain_ = cfg.llr_scale * 2.0 / (sigma_ * sigma_);
    }

    void start() {
        std::vector<std::uint8_t> h(stream_header_size, 0);
        std::memcpy(h.data(), stream_magic.data(), 4);
        put_u16(&h[4], 1);
        put_u16(&h[6], 1);
        put_u32(&h[8], cfg_.block_llrs);
        put_f32(&h[12], static_cast<float>(cfg_.esn0_db));
        put_u64(&h[16], cfg_.seed);
        put_f32(&h[24], static_cast<float>(cfg_.llr_scale));
        header_ = std::move(h);
        auto self = shared_from_this();
        next_ = std::chrono::steady_clock::now();
        asio::async_write(socket_, asio::buffer(header_), [this, self](boost::system::error_code ec, std::size_t) {
            if (ec) return close();
            send_block();
        });
    }

    void close() {
        boost::system::error_code ec;
        timer_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

private:
    void send_block() {
        put_u32(&buf_[0], seq_++);
        put_u32(&buf_[4], cfg_.block_llrs);
        double sigma = sigma_, gain = llr_gain_, amplitude = 1.0;
        if (cfg_.esn0_now_db) {
            const double db = cfg_.esn0_now_db();
            if (std::isfinite(db)) {
                sigma = std::sqrt(1.0 / (2.0 * std::pow(10.0, std::clamp(db, -30.0, 60.0) / 10.0)));
                gain = cfg_.llr_scale * 2.0 / (sigma * sigma);
            } else {
                amplitude = 0.0;  // no signal: the receiver sees noise at the base level
            }
        }
        std::normal_distribution<double> n(0.0, sigma);
        for (std::uint32_t i = 0; i < cfg_.block_llrs; ++i) {
            const double y = (bits_.next() ? -amplitude : amplitude) + n(noise_);
            const double q = std::clamp(std::nearbyint(gain * y), -127.0, 127.0);
            buf_[8 + i] = static_cast<std::uint8_t>(static_cast<std::int8_t>(q));
        }
        auto self = shared_from_this();
        asio::async_write(socket_, asio::buffer(buf_), [this, self](boost::system::error_code ec, std::size_t) {
            if (ec) return close();
            if (cfg_.bits_per_second <= 0.0) return send_block();
            next_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                std::chrono::duration<double>(cfg_.block_llrs / cfg_.bits_per_second));
            timer_.expires_at(next_);
            timer_.async_wait([this, self](boost::system::error_code e) {
                if (e) return close();
                send_block();
            });
        });
    }

    tcp::socket socket_;
    asio::steady_timer timer_;
    softbit_stream_server::config cfg_;
    stream_bit_source bits_;
    std::mt19937_64 noise_;
    std::vector<std::uint8_t> header_;
    std::vector<std::uint8_t> buf_;
    double sigma_ = 1.0, llr_gain_ = 1.0;
    std::uint32_t seq_ = 0;
    std::chrono::steady_clock::time_point next_;
};

class stream_server_impl final : public softbit_stream_server {
public:
    explicit stream_server_impl(const config& cfg) : cfg_(cfg), acceptor_(io_) {
        port_ = detail::listen_on(acceptor_, cfg.bind_address, cfg.port, "stream port");
        accept();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~stream_server_impl() override { stop(); }
    std::uint16_t port() const override { return port_; }
    void stop() override {
        std::call_once(stopped_, [this] {
            asio::post(io_, [this] {
                boost::system::error_code ec;
                acceptor_.close(ec);
                for (auto& w : sessions_)
                    if (auto s = w.lock()) s->close();
            });
            io_.stop();
            if (thread_.joinable()) thread_.join();
        });
    }

private:
    void accept() {
        acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
                return accept();
            }
            sessions_.remove_if([](const std::weak_ptr<stream_session>& w) { return w.expired(); });
            if (sessions_.size() >= cfg_.max_clients) {
                boost::system::error_code ig;
                sock.close(ig);
            } else {
                auto s = std::make_shared<stream_session>(std::move(sock), cfg_);
                sessions_.push_back(s);
                s->start();
            }
            accept();
        });
    }

    config cfg_;
    asio::io_context io_;
    tcp::acceptor acceptor_;
    std::uint16_t port_ = 0;
    std::thread thread_;
    std::once_flag stopped_;
    std::list<std::weak_ptr<stream_session>> sessions_;  // touched only on the io thread
};

}  // namespace

double pointed_esn0_db(double esn0_at_1000km_db, double range_km, double elevation_deg, double pointing_error_deg,
                       double beamwidth_deg) {
    if (!(elevation_deg >= 0.0) || !(range_km > 0.0) || !(beamwidth_deg > 0.0))
        return -std::numeric_limits<double>::infinity();
    const double x = pointing_error_deg / beamwidth_deg;
    return esn0_at_1000km_db - 20.0 * std::log10(range_km / 1000.0) - 12.0 * x * x;
}

std::unique_ptr<softbit_stream_server> start_softbit_stream_server(const softbit_stream_server::config& cfg) {
    if (auto e = softbit_stream_server::validate(cfg); !e.empty()) throw std::invalid_argument(e);
    return std::make_unique<stream_server_impl>(cfg);
}

}  // namespace qlink::sim
