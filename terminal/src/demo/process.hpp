// The demo's child processes (simulator, daemons): start, watch stdout lines, log to files, stop.
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

namespace qlink::terminal::demo_detail {

/// One daemon started by the demo. Its stdout lines are kept (for the `air-port N` style
/// announcements) and, with its stderr, appended to `<log>`; it runs in its own process group and
/// dies with the demo (PR_SET_PDEATHSIG), so a killed demo leaves nothing behind.
class child {
public:
    /// Starts argv[0] (an absolute path). Throws std::runtime_error when it cannot be started.
    child(std::string name, std::vector<std::string> argv, const std::filesystem::path& log);
    ~child();
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    const std::string& name() const { return name_; }
    pid_t pid() const { return pid_; }

    /// The value after `prefix` on the first stdout line that starts with it (e.g. "air-port ").
    /// nullopt when the child exits or `timeout` passes first.
    std::optional<std::string> wait_line(const std::string& prefix, std::chrono::milliseconds timeout);

    /// Still running (reaps it when it has exited; exit_status() then says how).
    bool running();
    /// Exit status as a short text ("exit 0", "killed by signal 9"), empty while running.
    std::string exit_status() const;
    int exit_code() const { return code_; }  ///< -1 while running or when killed by a signal

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps. Returns true when it exited on its own terms
    /// (before the SIGKILL).
    bool stop(std::chrono::milliseconds grace);
    /// SIGKILL now and reap (fault tests).
    void kill_hard();

private:
    void reader();
    void reap(int status);

    std::string name_;
    pid_t pid_ = -1;
    int out_fd_ = -1;
    int log_fd_ = -1;
    std::thread reader_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::string> lines_;
    bool eof_ = false;
    bool exited_ = false;
    int code_ = -1;
    int signal_ = 0;
};

/// GET http://127.0.0.1:port/path with a timeout; nullopt on any failure or a status other than 200.
std::optional<std::string> http_get(std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout);

/// Connects to 127.0.0.1:port; -1 on failure.
int tcp_connect(std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace qlink::terminal::demo_detail
