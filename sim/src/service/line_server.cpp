// The line-at-a-time TCP service behind the simulator's rotctld and control ports.
#include "service/line_server.hpp"
#include "service/listen.hpp"

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <list>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace qlink::sim::detail {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

class session;

}  // namespace

struct line_server::impl {
    impl(config c, handler h, line_service_counters& s)
        : cfg(std::move(c)), on_line(std::move(h)), stats(s), acceptor(io) {}

    void accept();
    void forget_expired() {
        std::lock_guard lock(mutex);
        sessions.remove_if([](const std::weak_ptr<session>& w) { return w.expired(); });
    }

    config cfg;
    handler on_line;
    line_service_counters& stats;
    asio::io_context io;
    tcp::acceptor acceptor;
    std::uint16_t port = 0;
    std::thread thread;
    std::once_flag stopped;
    std::mutex mutex;
    std::list<std::weak_ptr<session>> sessions;
};

namespace {

class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket s, line_server::impl& srv) : socket_(std::move(s)), server_(srv) {}
    void start() { read(); }
    void close() {
        boost::system::error_code ec;
        socket_.shutdown(tcp::socket::shutdown_both, ec);
        socket_.close(ec);
    }

private:
    void read() {
        auto self = shared_from_this();
        asio::async_read_until(socket_, asio::dynamic_buffer(buf_, server_.cfg.max_line), '\n',
                               [this, self](boost::system::error_code ec, std::size_t n) {
                                   if (ec == asio::error::not_found) {  // longer than the limit: say so, hang up
                                       ++server_.stats.errors;
                                       write(server_.cfg.too_long_reply, true);
                                       return;
                                   }
                                   if (ec) {
                                       close();
                                       return;
                                   }
                                   std::string_view line(buf_.data(), n - 1);
                                   if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                                   ++server_.stats.commands;
                                   line_reply r = server_.on_line(line);
                                   buf_.erase(0, n);
                                   if (r.error) ++server_.stats.errors;
                                   if (r.text.empty()) {
                                       if (r.close)
                                           close();
                                       else
                                           read();
                                       return;
                                   }
                                   write(std::move(r.text), r.close);
                               });
    }
    void write(std::string reply, bool then_close) {
        auto self = shared_from_this();
        auto data = std::make_shared<std::string>(std::move(reply));
        asio::async_write(socket_, asio::buffer(*data),
                          [this, self, data, then_close](boost::system::error_code ec, std::size_t) {
                              if (ec || then_close) {
                                  close();
                                  return;
                              }
                              read();
                          });
    }

    tcp::socket socket_;
    line_server::impl& server_;
    std::string buf_;
};

}  // namespace

void line_server::impl::accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
            accept();
            return;
        }
        forget_expired();
        std::size_t live = 0;
        {
            std::lock_guard lock(mutex);
            live = sessions.size();
        }
        if (live >= cfg.max_clients) {
            ++stats.rejected;
            boost::system::error_code ig;
            sock.close(ig);
        } else {
            ++stats.connections;
            auto s = std::make_shared<session>(std::move(sock), *this);
            {
                std::lock_guard lock(mutex);
                sessions.push_back(s);
            }
            s->start();
        }
        accept();
    });
}

line_server::line_server(config cfg, handler h, line_service_counters& stats) {
    if (cfg.max_line < 16 || cfg.max_clients == 0)
        throw std::invalid_argument(cfg.what + ": max_line must be >= 16 and max_clients >= 1");
    if (!h) throw std::invalid_argument(cfg.what + ": no line handler");
    impl_ = std::make_unique<impl>(std::move(cfg), std::move(h), stats);
    impl_->port = listen_on(impl_->acceptor, impl_->cfg.bind_address, impl_->cfg.port, impl_->cfg.what);
    impl_->accept();
    impl_->thread = std::thread([i = impl_.get()] { i->io.run(); });
}

line_server::~line_server() { stop(); }

std::uint16_t line_server::port() const { return impl_->port; }

void line_server::stop() {
    std::call_once(impl_->stopped, [i = impl_.get()] {
        asio::post(i->io, [i] {
            boost::system::error_code ec;
            i->acceptor.close(ec);
            std::lock_guard lock(i->mutex);
            for (auto& w : i->sessions)
                if (auto s = w.lock()) s->close();
        });
        i->io.stop();
        if (i->thread.joinable()) i->thread.join();
    });
}

}  // namespace qlink::sim::detail
