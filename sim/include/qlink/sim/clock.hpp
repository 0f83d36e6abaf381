// Time for the simulator: the UTC time point type, ISO 8601 text, and the injected clock.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace qlink::sim {

/// UTC instant with nanosecond resolution (leap seconds ignored, as in POSIX time).
using time_point = std::chrono::sys_time<std::chrono::nanoseconds>;
using duration = std::chrono::nanoseconds;

/// Converts seconds (may be fractional) to the simulator's duration.
inline duration seconds_d(double s) {
    return std::chrono::duration_cast<duration>(std::chrono::duration<double>(s));
}

/// Parses "YYYY-MM-DDTHH:MM:SS[.fff][Z]" (also "YYYY-MM-DD HH:MM:SS", "YYYY-MM-DD").
/// Returns nullopt and sets `error` (if given) on malformed text or out-of-range fields.
std::optional<time_point> parse_iso8601_utc(std::string_view text, std::string* error = nullptr);

/// Formats as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_iso8601_utc(time_point t);

/// Julian date (UTC used as UT1: the difference, < 0.9 s, is below SGP4's own accuracy).
double julian_date(time_point t);

/// The clock every time-dependent part of qlink reads; injected so tests and the
/// simulator can run faster than real time.
class clock {
public:
    virtual ~clock() = default;
    virtual time_point now() const = 0;
};

/// Wall-clock time.
class real_clock final : public clock {
public:
    time_point now() const override;
};

/// A clock that only moves when told; thread safe.
class sim_clock final : public clock {
public:
    explicit sim_clock(time_point start) : now_(start) {}
    time_point now() const override;
    /// Moves the clock forward; a negative step is refused (returns false).
    bool advance(duration step);
    /// Jumps to `t` if it is not earlier than now (time never runs backwards).
    bool set(time_point t);

private:
    mutable std::mutex mutex_;
    time_point now_;
};

/// Simulated time that runs with the wall clock from a chosen start, `scale` times as fast
/// (0 freezes it). Lets a service replay a pass at a given date, or fast-forward one.
class scaled_clock final : public clock {
public:
    /// Throws std::invalid_argument unless 0 <= scale <= 1000.
    scaled_clock(time_point start, double scale);
    time_point now() const override;

private:
    time_point start_;
    std::chrono::steady_clock::time_point wall_start_;
    double scale_;
};

std::unique_ptr<clock> create_real_clock();

}  // namespace qlink::sim
