// One qlinkd program under test: started with a configuration text, its stdout/stderr in files, its
// ready file, /status and /metrics read with curl, SIGTERM with a bounded wait; SIGKILL if a test ends
// without stopping it. Shared by the qlinkd process tests (QLINK_QLINKD_BIN names the program).
#pragma once

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <thread>

namespace qlink::test {

namespace qlinkd_proc_detail {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

inline std::string slurp(const fs::path& p)
{
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline std::string run(const std::string& cmd, int* status)
{
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    const int st = ::pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

// One qlinkd process; stdout/stderr go to files in its directory.
class daemon_proc {
public:
    daemon_proc(const fs::path& dir, const std::string& name, const std::string& config) : dir_(dir), name_(name)
    {
        const auto cfg = dir / (name + ".toml");
        std::ofstream(cfg) << config;
        ready_ = dir / (name + ".ready");
        pid_ = ::fork();
        if (pid_ == 0) {
            const int out = ::open((dir / (name + ".out")).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int err = ::open((dir / (name + ".log")).c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            ::dup2(out, 1);
            ::dup2(err, 2);
            ::execl(QLINK_QLINKD_BIN, "qlinkd", "--config", cfg.c_str(), "--ready-file", ready_.c_str(), nullptr);
            ::_exit(127);
        }
    }
    ~daemon_proc()
    {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    bool wait_ready(std::chrono::seconds limit = 60s)
    {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < end) {
            if (fs::exists(ready_)) {
                const auto j = json::parse(slurp(ready_), nullptr, false);
                if (!j.is_discarded()) {
                    telemetry = j["telemetry_port"];
                    tcp = j["user_tcp_port"];
                    udp = j["user_udp_port"];
                    return true;
                }
            }
            if (exited()) return false;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }
    bool exited()
    {
        if (pid_ <= 0) return true;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            status_ = st;
            return true;
        }
        return false;
    }
    /// Sends SIGTERM and waits (bounded) for the exit status; -1 if it did not exit.
    int terminate(std::chrono::seconds limit = 60s)
    {
        if (pid_ > 0) ::kill(pid_, SIGTERM);
        return wait_exit(limit);
    }
    int wait_exit(std::chrono::seconds limit = 60s)
    {
        const auto end = std::chrono::steady_clock::now() + limit;
        while (!exited() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(20ms);
        if (pid_ > 0) return -1;
        return WIFEXITED(status_) ? WEXITSTATUS(status_) : 128 + WTERMSIG(status_);
    }
    json status() const { return get("/status"); }
    std::string metrics() const
    {
        int st = 0;
        return run("curl -sf --max-time 10 http://127.0.0.1:" + std::to_string(telemetry) + "/metrics", &st);
    }
    json get(const std::string& path) const
    {
        int st = 0;
        const auto body = run("curl -sf --max-time 10 http://127.0.0.1:" + std::to_string(telemetry) + path, &st);
        return json::parse(body, nullptr, false);
    }
    std::string log() const { return slurp(dir_ / (name_ + ".log")); }
    std::string out() const { return slurp(dir_ / (name_ + ".out")); }

    int telemetry = 0, tcp = 0, udp = 0;

private:
    fs::path dir_;
    std::string name_;
    fs::path ready_;
    pid_t pid_ = -1;
    int status_ = 0;
};

}  // namespace qlinkd_proc_detail

using qlinkd_proc_detail::daemon_proc;

/// Lower-case hex SHA-256 of what a user sent or got (short test failure messages).
inline std::string sha256_hex(std::span<const std::uint8_t> d)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_Digest(d.data(), d.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string s;
    for (unsigned i = 0; i < len; ++i) {
        s += hex[md[i] >> 4];
        s += hex[md[i] & 15];
    }
    return s;
}

}  // namespace qlink::test
