// The antenna/telescope mount interface, its rotctld and simulated back-ends, and az/el mapping.
#pragma once

#include "qlink/sim/clock.hpp"

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace qlink::hw {

/// Pointing direction in degrees. Azimuth from north through east; elevation
/// above the horizon (up to 180 on a flip mount, where el > 90 looks "backwards").
struct az_el {
    double az_deg = 0.0;
    double el_deg = 0.0;
};

/// How a mount call ended. `rejected` is the device saying no (rotctld's
/// `RPRT -n`); `timeout` and `disconnected` are the link to the device failing,
/// which the caller handles differently (retry/reconnect vs. give up on a command).
enum class mount_errc { ok, rejected, timeout, disconnected, protocol, out_of_range };

std::string_view to_string(mount_errc e);

struct mount_result {
    mount_errc code = mount_errc::ok;
    int rprt = 0;         ///< the RPRT code when code == rejected
    std::string message;  ///< human-readable, empty when ok

    explicit operator bool() const { return code == mount_errc::ok; }
};

/// Mechanical range of a mount. Azimuth may exceed 360 (e.g. 0..450) so a pass
/// crossing north needs no unwind; elevation up to 180 on flip mounts.
struct mount_limits {
    double az_min_deg = 0.0;
    double az_max_deg = 450.0;
    double el_min_deg = 0.0;
    double el_max_deg = 90.0;
};

/// Counters every mount keeps.
struct mount_counters {
    unsigned long commands = 0;
    unsigned long rejected = 0;
    unsigned long timeouts = 0;
    unsigned long reconnects = 0;
    unsigned long protocol_errors = 0;
};

class mount {
public:
    virtual ~mount() = default;
    /// Commands a move (returns when the device accepted it, not when it arrived).
    virtual mount_result set_position(az_el target) = 0;
    virtual mount_result get_position(az_el& out) = 0;
    virtual mount_result stop() = 0;
    virtual mount_result park() = 0;
    virtual std::string_view name() const = 0;
    virtual const mount_limits& limits() const = 0;
    virtual const mount_counters& counters() const = 0;
};

/// Hamlib rotctld TCP client.
struct rotctld_config {
    std::string host = "127.0.0.1";
    unsigned short port = 4533;
    std::chrono::milliseconds timeout{1000};  ///< per command (connect, send, reply)
    mount_limits limits{};
};

/// Creates a rotctld client. Connecting is lazy: the first command connects,
/// and a command after a lost connection reconnects once before failing.
std::unique_ptr<mount> create_rotctld_mount(const rotctld_config& cfg);

/// Simulated mount: the simulator's slew-limited mount (sim::sim_mount) behind
/// this interface, moving in the time of the injected clock.
struct sim_mount_config {
    double slew_rate_deg_s = 6.0;  ///< per axis
    az_el park{0.0, 90.0};
    az_el initial{0.0, 90.0};
    mount_limits limits{};
};

/// Throws std::invalid_argument naming the bad field (configuration edge).
std::unique_ptr<mount> create_sim_mount(const sim_mount_config& cfg, const sim::clock& clock);

/// Maps a topocentric direction (az in [0,360), el in [0,90]) onto mount axes.
///
/// Azimuth: among az, az+360 (and az-360) within the limits, the one nearest to
/// `current_az_deg` — a pass that crosses north then continues past 360 instead
/// of unwinding through the whole circle. With `flip`, the mount points with
/// (az+180, 180-el), which keeps an overhead pass from needing a fast azimuth
/// swing near zenith. Returns false when no mapping fits the limits.
bool map_to_mount(az_el sky, double current_az_deg, const mount_limits& limits, bool flip, az_el& out);

/// Inverse of map_to_mount: the sky direction a mount position looks at.
az_el mount_to_sky(az_el axes);

}  // namespace qlink::hw
