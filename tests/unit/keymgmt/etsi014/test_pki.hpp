// Test PKI for the mTLS tests: a throw-away CA and leaf certificates made with the openssl CLI.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace qlink::keymgmt::test {

/// Runs a shell command, returns its exit status and (optionally) its stdout.
inline int run_cmd(const std::string& cmd, std::string* out = nullptr)
{
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return -1;
    }
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        if (out != nullptr) {
            out->append(buf.data(), n);
        }
    }
    const int st = ::pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

class test_pki {
public:
    explicit test_pki(const std::vector<std::string>& names)
    {
        char tmpl[] = "/tmp/qlink_pki_XXXXXX";
        dir_ = ::mkdtemp(tmpl);
        make_ca("ca", "qlink-test-ca");
        for (const auto& n : names) {
            make_leaf(n, "ca");
        }
    }
    ~test_pki() { std::filesystem::remove_all(dir_); }
    test_pki(const test_pki&) = delete;
    test_pki& operator=(const test_pki&) = delete;

    /// A second CA and a leaf under it (same CN as a real SAE) for impersonation tests.
    void make_rogue(const std::string& cn)
    {
        make_ca("rogue_ca", "rogue-ca");
        make_leaf(cn, "rogue_ca", "rogue_" + cn);
    }

    std::string ca() const { return (dir_ / "ca.crt").string(); }
    std::string cert(const std::string& n) const { return (dir_ / (n + ".crt")).string(); }
    std::string key(const std::string& n) const { return (dir_ / (n + ".key")).string(); }
    const std::filesystem::path& dir() const { return dir_; }

private:
    void sh(const std::string& cmd)
    {
        if (run_cmd("cd " + dir_.string() + " && { " + cmd + "; } >/dev/null 2>&1") != 0) {
            throw std::runtime_error("openssl failed: " + cmd);
        }
    }
    void make_ca(const std::string& file, const std::string& cn)
    {
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + file + ".key -out " +
           file + ".crt -days 2 -subj /CN=" + cn);
    }
    void make_leaf(const std::string& cn, const std::string& ca, std::string file = {})
    {
        if (file.empty()) {
            file = cn;
        }
        sh("printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' > " + file +
           ".ext && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + file + ".key -out " +
           file + ".csr -subj /CN=" + cn + " && openssl x509 -req -in " + file + ".csr -CA " + ca + ".crt -CAkey " +
           ca + ".key -CAcreateserial -out " + file + ".crt -days 2 -extfile " + file + ".ext && chmod 600 " + file +
           ".key");
    }
    std::filesystem::path dir_;
};

}  // namespace qlink::keymgmt::test
