// Child processes of the demo (fork/exec with a stdout pipe, log file, own process group) and a
// minimal loopback HTTP GET for the daemons' telemetry.
#include "demo/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <stdexcept>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace qlink::terminal::demo_detail {

child::child(std::string name, std::vector<std::string> argv, const std::filesystem::path& log)
    : name_(std::move(name)) {
    if (argv.empty()) throw std::runtime_error(name_ + ": nothing to start");
    log_fd_ = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) throw std::runtime_error(name_ + ": cannot open log '" + log.string() + "': " + std::strerror(errno));
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) {
        ::close(log_fd_);
        throw std::runtime_error(name_ + ": pipe: " + std::strerror(errno));
    }
    // Everything the child needs is prepared before fork: only async-signal-safe calls after it.
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) {
        ::close(p[0]);
        ::close(p[1]);
        ::close(log_fd_);
        throw std::runtime_error(name_ + ": fork: " + std::strerror(errno));
    }
    if (pid == 0) {
        ::setpgid(0, 0);  // Ctrl-C reaches the demo only; it stops the children in order
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(126);
        ::dup2(p[1], 1);
        ::dup2(log_fd_, 2);
        const int devnull = ::open("/dev/null", O_RDONLY);
        if (devnull >= 0) ::dup2(devnull, 0);
        ::signal(SIGPIPE, SIG_DFL);
        ::execv(args[0], args.data());
        static const char msg[] = "exec failed\n";
        [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
        ::_exit(127);
    }
    pid_ = pid;
    ::setpgid(pid, pid);  // also here: no race with a signal sent to the group right after fork
    ::close(p[1]);
    out_fd_ = p[0];
    reader_ = std::thread([this] { reader(); });
}

child::~child() {
    if (pid_ > 0 && !exited_) kill_hard();
    if (reader_.joinable()) reader_.join();
    if (out_fd_ >= 0) ::close(out_fd_);
    if (log_fd_ >= 0) ::close(log_fd_);
}

void child::reader() {
    std::string partial;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::read(out_fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        [[maybe_unused]] auto w = ::write(log_fd_, buf, static_cast<std::size_t>(n));
        partial.append(buf, static_cast<std::size_t>(n));
        std::size_t nl;
        while ((nl = partial.find('\n')) != std::string::npos) {
            std::lock_guard lk(mu_);
            lines_.push_back(partial.substr(0, nl));
            partial.erase(0, nl + 1);
            // Only the announcements matter; a chatty child must not grow memory without bound.
            if (lines_.size() > 4096) lines_.erase(lines_.begin() + 64, lines_.begin() + 2048);
            cv_.notify_all();
        }
    }
    std::lock_guard lk(mu_);
    eof_ = true;
    cv_.notify_all();
}

std::optional<std::string> child::wait_line(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lk(mu_);
    for (;;) {
        for (const auto& l : lines_)
            if (l.rfind(prefix, 0) == 0) return l.substr(prefix.size());
        if (eof_) return std::nullopt;
        if (cv_.wait_until(lk, deadline) == std::cv_status::timeout) {
            for (const auto& l : lines_)
                if (l.rfind(prefix, 0) == 0) return l.substr(prefix.size());
            return std::nullopt;
        }
    }
}

void child::reap(int status) {
    exited_ = true;
    if (WIFEXITED(status)) code_ = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) signal_ = WTERMSIG(status);
}

bool child::running() {
    if (pid_ <= 0 || exited_) return false;
    int st = 0;
    const pid_t r = ::waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        reap(st);
        return false;
    }
    return r == 0;
}

std::string child::exit_status() const {
    if (!exited_) return {};
    if (signal_) return "killed by signal " + std::to_string(signal_);
    return "exit " + std::to_string(code_);
}

bool child::stop(std::chrono::milliseconds grace) {
    if (!running()) return true;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (std::chrono::steady_clock::now() < deadline) {
        if (!running()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_hard();
    return false;
}

void child::kill_hard() {
    if (pid_ <= 0 || exited_) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0 && errno == EINTR) {
    }
    reap(st);
}

int tcp_connect(std::uint16_t port, std::chrono::milliseconds timeout) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            ::close(fd);
            return -1;
        }
        pollfd pf{fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (::poll(&pf, 1, static_cast<int>(timeout.count())) != 1 ||
            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
            ::close(fd);
            return -1;
        }
    }
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

std::optional<std::string> http_get(std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int fd = tcp_connect(port, timeout);
    if (fd < 0) return std::nullopt;
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        ::close(fd);
        return std::nullopt;
    }
    std::string resp;
    char buf[8192];
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd pf{fd, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&pf, 1, static_cast<int>(left.count())) != 1) {
            ::close(fd);
            return std::nullopt;
        }
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        resp.append(buf, static_cast<std::size_t>(n));
        if (resp.size() > (8u << 20)) break;  // telemetry is small; anything this big is wrong
    }
    ::close(fd);
    if (resp.rfind("HTTP/1.", 0) != 0 || resp.size() < 12 || resp.compare(9, 3, "200") != 0) return std::nullopt;
    const auto body = resp.find("\r\n\r\n");
    if (body == std::string::npos) return std::nullopt;
    std::string b = resp.substr(body + 4);
    // A chunked answer is decoded here (the daemons send Content-Length, but be liberal).
    const auto head = resp.substr(0, body);
    if (head.find("chunked") != std::string::npos) {
        std::string out;
        std::size_t pos = 0;
        while (pos < b.size()) {
            const auto eol = b.find("\r\n", pos);
            if (eol == std::string::npos) break;
            const std::size_t len = std::strtoul(b.substr(pos, eol - pos).c_str(), nullptr, 16);
            if (len == 0 || eol + 2 + len > b.size()) break;
            out += b.substr(eol + 2, len);
            pos = eol + 2 + len + 2;
        }
        b = std::move(out);
    }
    return b;
}

}  // namespace qlink::terminal::demo_detail
