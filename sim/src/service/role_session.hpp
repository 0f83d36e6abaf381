// The opening every two-role simulator service shares (the air relay's ground/space, the QKD port's
// alice/bob): a hello line naming the role, within a timeout, one client per role, "ERR <reason>" and
// close on anything else. One implementation, so the services cannot drift apart in how they treat a
// client's first bytes.
#pragma once

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace qlink::sim::detail {

/// Base of a service's session (CRTP). The server type provides
///   cfg().hello_timeout_s, stats_mut().rejected / .connections, clock().client_connected(),
///   std::string claim(int role, std::shared_ptr<Derived>) (empty when the role was free),
///   void release(int role, const Derived*);
/// Derived provides on_role() (the hello was accepted: role() is set, the service's reply and reads
/// start there) and on_close() (drop its queues). Sessions live on the server's one Asio thread.
template <class Derived, class Server>
class role_session : public std::enable_shared_from_this<Derived> {
public:
    /// hellos[r]: the exact line (without "\n" or "\r\n") that claims role r.
    role_session(boost::asio::ip::tcp::socket s, Server& srv, std::array<std::string_view, 2> hellos)
        : socket_(std::move(s)), timer_(socket_.get_executor()), srv_(srv), hellos_(hellos) {}

    int role() const { return role_; }  ///< -1 until the hello is accepted
    bool open() const { return open_; }

    /// Arms the hello timeout and reads the hello.
    void start() {
        auto self = this->shared_from_this();
        timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
            std::chrono::duration<double>(srv_.cfg().hello_timeout_s)));
        timer_.async_wait([this, self](boost::system::error_code ec) {
            if (!ec && role_ < 0 && open_) {
                ++srv_.stats_mut().rejected;
                close();
            }
        });
        read_hello_byte();
    }

    /// Gives up the role, closes the socket (pending handlers see open() false), drops the queues.
    void close() {
        if (!open_) return;
        open_ = false;
        srv_.release(role_, static_cast<const Derived*>(this));
        boost::system::error_code ec;
        timer_.cancel();
        socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
        socket_.close(ec);
        static_cast<Derived*>(this)->on_close();
    }

protected:
    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer timer_;
    Server& srv_;

private:
    // A byte at a time, so nothing after the newline is consumed before the session's own reads.
    void read_hello_byte() {
        auto self = this->shared_from_this();
        boost::asio::async_read(socket_, boost::asio::buffer(&hello_char_, 1),
                                [this, self](boost::system::error_code ec, std::size_t) {
                                    if (ec || !open_) {
                                        if (open_) ++srv_.stats_mut().rejected;
                                        return close();
                                    }
                                    if (hello_char_ == '\n') return on_hello();
                                    if (hello_.size() >= 64) return reject("hello line longer than 64 characters");
                                    hello_.push_back(hello_char_);
                                    read_hello_byte();
                                });
    }

    void on_hello() {
        if (!hello_.empty() && hello_.back() == '\r') hello_.pop_back();
        int role = -1;
        for (int r = 0; r < 2; ++r)
            if (hello_ == hellos_[r]) role = r;
        if (role < 0)
            return reject("bad hello, expected '" + std::string(hellos_[0]) + "' or '" + std::string(hellos_[1]) + "'");
        if (auto e = srv_.claim(role, this->shared_from_this()); !e.empty()) return reject(e);
        timer_.cancel();
        role_ = role;
        ++srv_.stats_mut().connections;
        srv_.clock().client_connected();
        static_cast<Derived*>(this)->on_role();
    }

    void reject(const std::string& reason) {
        ++srv_.stats_mut().rejected;
        timer_.cancel();
        auto line = std::make_shared<std::string>("ERR " + reason + "\n");
        auto self = this->shared_from_this();
        boost::asio::async_write(socket_, boost::asio::buffer(*line),
                                 [this, self, line](boost::system::error_code, std::size_t) { close(); });
    }

    std::array<std::string_view, 2> hellos_;
    int role_ = -1;
    bool open_ = true;
    char hello_char_ = 0;
    std::string hello_;
};

}  // namespace qlink::sim::detail
