// UTC text conversion, Julian dates, and the real and simulated clocks.
#include "qlink/sim/clock.hpp"

#include <charconv>
#include <cstdio>
#include <stdexcept>

namespace qlink::sim {

namespace {

bool parse_int(std::string_view s, int& out) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && p == s.data() + s.size();
}

bool fail(std::string* error, std::string msg) {
    if (error) *error = std::move(msg);
    return false;
}

}  // namespace

std::optional<time_point> parse_iso8601_utc(std::string_view text, std::string* error) {
    const std::string expect = "expected YYYY-MM-DDTHH:MM:SS[.fff][Z] (UTC)";
    if (text.size() < 10 || text[4] != '-' || text[7] != '-') {
        fail(error, "time '" + std::string(text) + "': " + expect);
        return std::nullopt;
    }
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
    if (!parse_int(text.substr(0, 4), y) || !parse_int(text.substr(5, 2), mo) || !parse_int(text.substr(8, 2), d)) {
        fail(error, "time '" + std::string(text) + "': " + expect);
        return std::nullopt;
    }
    std::int64_t frac_ns = 0;
    std::string_view rest = text.substr(10);
    if (!rest.empty()) {
        if ((rest[0] != 'T' && rest[0] != ' ') || rest.size() < 9 || rest[3] != ':' || rest[6] != ':' ||
            !parse_int(rest.substr(1, 2), h) || !parse_int(rest.substr(4, 2), mi) || !parse_int(rest.substr(7, 2), s)) {
            fail(error, "time '" + std::string(text) + "': " + expect);
            return std::nullopt;
        }
        rest = rest.substr(9);
        if (!rest.empty() && rest[0] == '.') {
            rest = rest.substr(1);
            std::int64_t scale = 100000000;
            std::size_t n = 0;
            while (n < rest.size() && rest[n] >= '0' && rest[n] <= '9') {
                frac_ns += (rest[n] - '0') * scale;
                scale /= 10;
                ++n;
            }
            if (n == 0) {
                fail(error, "time '" + std::string(text) + "': no digits after '.'; " + expect);
                return std::nullopt;
            }
            rest = rest.substr(n);
        }
        if (rest == "Z" || rest == "+00:00") rest = {};
        if (!rest.empty()) {
            fail(error, "time '" + std::string(text) + "': only UTC ('Z') is accepted; " + expect);
            return std::nullopt;
        }
    }
    if (y < 1957 || y > 2100) {
        fail(error, "time '" + std::string(text) + "': year " + std::to_string(y) + " outside 1957..2100");
        return std::nullopt;
    }
    const std::chrono::year_month_day ymd{std::chrono::year{y}, std::chrono::month{static_cast<unsigned>(mo)},
                                          std::chrono::day{static_cast<unsigned>(d)}};
    if (!ymd.ok()) {
        fail(error, "time '" + std::string(text) + "': no such date (month 1..12, day within the month)");
        return std::nullopt;
    }
    if (h > 23 || mi > 59 || s > 59) {
        fail(error, "time '" + std::string(text) + "': hour 0..23, minute 0..59, second 0..59");
        return std::nullopt;
    }
    return time_point{std::chrono::sys_days{ymd}} + std::chrono::hours{h} + std::chrono::minutes{mi} +
           std::chrono::seconds{s} + std::chrono::nanoseconds{frac_ns};
}

std::string format_iso8601_utc(time_point t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const std::chrono::year_month_day ymd{day};
    auto rem = std::chrono::duration_cast<std::chrono::milliseconds>(t - day).count();
    const int h = static_cast<int>(rem / 3600000);
    rem %= 3600000;
    const int mi = static_cast<int>(rem / 60000);
    rem %= 60000;
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), h, mi,
                  static_cast<int>(rem / 1000), static_cast<int>(rem % 1000));
    return buf;
}

double julian_date(time_point t) {
    const auto day = std::chrono::floor<std::chrono::days>(t);
    const double frac = std::chrono::duration<double, std::ratio<86400>>(t - day).count();
    return 2440587.5 + static_cast<double>(day.time_since_epoch().count()) + frac;
}

time_point real_clock::now() const {
    return std::chrono::time_point_cast<duration>(std::chrono::system_clock::now());
}

time_point sim_clock::now() const {
    std::lock_guard lock(mutex_);
    return now_;
}

bool sim_clock::advance(duration step) {
    if (step.count() < 0) return false;
    std::lock_guard lock(mutex_);
    now_ += step;
    return true;
}

bool sim_clock::set(time_point t) {
    std::lock_guard lock(mutex_);
    if (t < now_) return false;
    now_ = t;
    return true;
}

scaled_clock::scaled_clock(time_point start, double scale)
    : start_(start), wall_start_(std::chrono::steady_clock::now()), scale_(scale) {
    if (!(scale >= 0.0 && scale <= 1000.0))
        throw std::invalid_argument("clock time scale " + std::to_string(scale) + " outside the allowed range [0, 1000]");
}

time_point scaled_clock::now() const {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start_).count();
    return start_ + seconds_d(wall * scale_);
}

std::unique_ptr<clock> create_real_clock() { return std::make_unique<real_clock>(); }

}  // namespace qlink::sim
