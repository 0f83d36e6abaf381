// Opens a simulator service's listening socket: one place for the bind/listen sequence and its errors.
#pragma once

#include <utility>  // before Asio: Boost 1.74 awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace qlink::sim::detail {

/// Binds `acceptor` to bind_address:port (port 0 = any free port) and listens; returns the port.
/// Throws std::runtime_error naming the service (`what`) and the address on any failure.
inline std::uint16_t listen_on(boost::asio::ip::tcp::acceptor& acceptor, const std::string& bind_address,
                               std::uint16_t port, const std::string& what) {
    using boost::asio::ip::tcp;
    boost::system::error_code ec;
    const auto addr = boost::asio::ip::make_address(bind_address, ec);
    if (ec) throw std::runtime_error(what + ": bind address '" + bind_address + "' is not an IP address");
    const tcp::endpoint ep(addr, port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec)
        throw std::runtime_error(what + ": cannot listen on " + bind_address + ":" + std::to_string(port) + ": " +
                                 ec.message());
    return acceptor.local_endpoint().port();
}

}  // namespace qlink::sim::detail
