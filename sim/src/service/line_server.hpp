// A small TCP service answering one text line at a time (Boost.Asio, one service thread, many clients).
#pragma once

#include "qlink/sim/service_counters.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::sim::detail {

/// The blank- or tab-separated words of a command line.
inline std::vector<std::string_view> split_words(std::string_view s) {
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
        const std::size_t b = i;
        while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
        if (i > b) out.push_back(s.substr(b, i - b));
    }
    return out;
}

struct line_reply {
    std::string text;    ///< sent as is (include the newline); empty: nothing is sent
    bool close = false;  ///< hang up after sending
    bool error = false;  ///< counted in errors
};

class line_server {
public:
    struct config {
        std::string what;                          ///< service name for errors ("rotctld")
        std::string bind_address = "127.0.0.1";
        std::uint16_t port = 0;                    ///< 0: any free port
        std::size_t max_clients = 32;              ///< more are accepted and closed at once (counted)
        std::size_t max_line = 256;                ///< a longer line gets too_long_reply and a hang-up
        std::string too_long_reply;
    };
    /// Called on the service thread, one line at a time, the line without its newline.
    using handler = std::function<line_reply(std::string_view line)>;

    /// Binds and starts serving. Throws std::invalid_argument for a bad config and
    /// std::runtime_error when the address cannot be bound.
    line_server(config cfg, handler h, line_service_counters& stats);
    ~line_server();
    line_server(const line_server&) = delete;
    line_server& operator=(const line_server&) = delete;

    std::uint16_t port() const;
    /// Stops accepting, closes every connection and joins the service thread. Idempotent.
    void stop();

    struct impl;  // defined in the .cpp (named there by the connection type)

private:
    std::unique_ptr<impl> impl_;
};

}  // namespace qlink::sim::detail
