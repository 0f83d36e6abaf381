// The seam between qlink's radio and UHD: the few multi_usrp/streamer calls we make.
// The real port forwards to UHD; tests put a double here (no device needed).
#pragma once

#include "qlink/hw/radio.hpp"

#include <uhd/types/metadata.hpp>

#include <memory>
#include <optional>

namespace qlink::hw::detail {

/// Every call may throw (UHD does); the radio above catches.
class usrp_port {
public:
    virtual ~usrp_port() = default;
    virtual double set_rate(double hz) = 0;                                           ///< returns actual
    virtual double set_center(double hz, std::optional<std::int64_t> at_ns) = 0;     ///< returns actual
    virtual double set_rx_gain(double db) = 0;
    virtual double set_tx_gain(double db) = 0;
    virtual double set_bandwidth(double hz) = 0;
    virtual void set_time(std::int64_t ns, bool at_next_pps) = 0;
    virtual void start_stream(std::optional<std::int64_t> at_ns) = 0;
    virtual void stop_stream() = 0;
    virtual std::size_t recv(cf32* buf, std::size_t n, uhd::rx_metadata_t& md, double timeout_s) = 0;
    virtual std::size_t send(const cf32* buf, std::size_t n, const uhd::tx_metadata_t& md, double timeout_s) = 0;
    /// Drains asynchronous TX events (underflow, late); false when none within the timeout.
    virtual bool recv_async(uhd::async_metadata_t& md, double timeout_s) = 0;
};

/// Our radio over any port.
std::unique_ptr<radio> make_uhd_radio(std::unique_ptr<usrp_port> port);

/// UHD's receive metadata in our terms.
rx_metadata map_rx_metadata(const uhd::rx_metadata_t& md);

/// Nanoseconds <-> UHD time specs.
uhd::time_spec_t to_time_spec(std::int64_t ns);
std::int64_t to_ns(const uhd::time_spec_t& t);

}  // namespace qlink::hw::detail
