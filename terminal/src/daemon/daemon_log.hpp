// qlinkd structured log: one line per event on stderr (logfmt or JSON), named channels, never per frame.
#pragma once

#include <chrono>
#include <cstdio>
#include <ctime>
#include <initializer_list>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <utility>

namespace qlink::terminal {

class daemon_log {
public:
    using fields = std::initializer_list<std::pair<const char*, std::string>>;

    daemon_log(bool json, bool debug) : json_(json), debug_(debug) {}
    void set_role(std::string role) { role_ = std::move(role); }

    void info(const char* chan, const char* event, fields f = {}) { write("info", chan, event, f); }
    void warn(const char* chan, const char* event, fields f = {}) { write("warn", chan, event, f); }
    void error(const char* chan, const char* event, fields f = {}) { write("error", chan, event, f); }
    void debug(const char* chan, const char* event, fields f = {})
    {
        if (debug_) write("debug", chan, event, f);
    }
    /// Repeated failures (a key source that keeps refusing) log the first few times, then every
    /// 100th with a count, so a failing per-frame path cannot flood the log.
    void warn_limited(const char* chan, const char* event, const std::string& message)
    {
        std::uint64_t n = 0;
        {
            std::lock_guard lk(mu_);
            n = ++repeats_[event];
        }
        if (n <= 5 || n % 100 == 0) write("warn", chan, event, {{"error", message}, {"count", std::to_string(n)}});
    }

    static std::string num(double v)
    {
        char b[32];
        std::snprintf(b, sizeof b, "%.6g", v);
        return b;
    }

private:
    static std::string quote_json(const std::string& s)
    {
        std::string o = "\"";
        for (char c : s) {
            if (c == '"' || c == '\\') {
                o += '\\';
                o += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                o += ' ';
            } else {
                o += c;
            }
        }
        return o + '"';
    }
    static std::string value_logfmt(const std::string& s)
    {
        const bool plain = !s.empty() && s.find_first_of(" =\"\t\n") == std::string::npos;
        return plain ? s : quote_json(s);
    }

    void write(const char* level, const char* chan, const char* event, fields f)
    {
        const auto now = std::chrono::system_clock::now();
        const auto t = std::chrono::system_clock::to_time_t(now);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
        std::tm tm{};
        ::gmtime_r(&t, &tm);
        char ts[80];  // fits any int fields (GCC's -Wformat-truncation bound), a timestamp uses 24
        std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                      tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
        std::string line;
        if (json_) {
            line = std::string("{\"ts\":\"") + ts + "\",\"level\":\"" + level + "\",\"chan\":\"" + chan +
                   "\",\"role\":" + quote_json(role_) + ",\"event\":\"" + event + "\"";
            for (const auto& [k, v] : f) line += std::string(",\"") + k + "\":" + quote_json(v);
            line += "}";
        } else {
            line = std::string("ts=") + ts + " level=" + level + " chan=" + chan + " role=" + role_ + " event=" + event;
            for (const auto& [k, v] : f) line += std::string(" ") + k + "=" + value_logfmt(v);
        }
        std::lock_guard lk(mu_);
        std::cerr << line << '\n' << std::flush;
    }

    bool json_, debug_;
    std::string role_ = "?";
    std::mutex mu_;
    std::map<std::string, std::uint64_t> repeats_;
};

}  // namespace qlink::terminal
