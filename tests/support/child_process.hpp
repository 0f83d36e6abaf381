// Test support: start a real peer program (rotctld, openssl, our own daemons) as a child process.
#pragma once

#include "support/loopback.hpp"

#include <csignal>
#include <string>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

namespace qlink::test {

/// A child process, killed (SIGKILL) and reaped when the object goes away.
class child_process {
public:
    /// Starts `argv[0]` (looked up in PATH) with the given arguments; stdout and
    /// stderr go to /dev/null unless `quiet` is false.
    explicit child_process(std::vector<std::string> argv, bool quiet = true) {
        pid_ = ::fork();
        if (pid_ == 0) {
            if (quiet) {
                FILE* devnull = std::fopen("/dev/null", "w");
                if (devnull) {
                    ::dup2(fileno(devnull), 1);
                    ::dup2(fileno(devnull), 2);
                }
            }
            std::vector<char*> args;
            for (auto& a : argv) args.push_back(a.data());
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
    }
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() { kill(SIGKILL); }

    bool running() const { return pid_ > 0; }
    pid_t pid() const { return pid_; }
    void signal(int sig) const {
        if (pid_ > 0) ::kill(pid_, sig);
    }
    /// Sends `sig` and reaps the child; returns its wait status.
    int kill(int sig = SIGTERM) {
        if (pid_ <= 0) return 0;
        ::kill(pid_, sig);
        ::kill(pid_, SIGCONT);  // a stopped child must run to die of SIGTERM
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return status;
    }

private:
    pid_t pid_ = -1;
};

}  // namespace qlink::test
