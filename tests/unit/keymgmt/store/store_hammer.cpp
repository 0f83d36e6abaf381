// Child process for the crash-safety test: adds, takes and serves keys as fast as it can until
// SIGKILLed, logging every delivered key (fdatasync'ed) so the parent can check the invariants.
#include "test_keys.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

using namespace qlink::keymgmt;

namespace {

void log_line(int fd, char tag, const served_key& k)
{
    const std::string line = std::string(1, tag) + " " + key_id_to_string(k.id) + " " +
                             test::to_hex(k.material.span()) + "\n";
    if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()) || ::fdatasync(fd) != 0) {
        std::_Exit(3);
    }
}

}  // namespace

int main(int argc, char** argv)
{
    if (argc != 3 && argc != 4) {
        std::fprintf(stderr, "usage: %s <dir> <seed> [handout_pool]\n", argv[0]);
        return 2;
    }
    const std::string dir = argv[1];
    const std::uint64_t seed = std::strtoull(argv[2], nullptr, 10);
    key_store::config cfg;
    cfg.db_path = dir + "/keys.db";
    cfg.master_key_path = dir + "/master.key";
    cfg.max_key_count = 1000000;
    cfg.handout_pool = argc == 4 ? std::strtoull(argv[3], nullptr, 10) : 0;
    auto store = open_key_store(cfg);
    const int fd = ::open((dir + "/delivered.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        return 3;
    }
    const auto c = store->counts();
    std::uint64_t next = c.preactive + c.active + c.deactivated + c.destroyed;
    const std::vector<std::string> slaves{"slave"};
    // Tells the parent we are running, so its kill delay does not depend on start-up time, and
    // how many pooled keys the previous (killed) run left unconfirmed.
    std::printf("ready %llu\n", static_cast<unsigned long long>(store->stats().pool_unconfirmed_at_open));
    std::fflush(stdout);
    for (;;) {
        std::vector<std::array<std::uint8_t, 32>> mats;
        std::vector<new_key> batch;
        for (int i = 0; i < 8; ++i) {
            mats.push_back(test::test_key_material(seed, next + static_cast<std::uint64_t>(i)));
        }
        for (int i = 0; i < 8; ++i) {
            batch.push_back({test::test_key_id(seed, next + static_cast<std::uint64_t>(i)), mats[static_cast<std::size_t>(i)]});
        }
        if (!store->add(batch, key_state::active).ok()) {
            return 4;
        }
        next += 8;
        std::vector<served_key> got;
        if (!store->take_next("master", slaves, 3, 0, -1, got).ok()) {
            return 5;
        }
        for (const auto& k : got) {
            log_line(fd, 'M', k);
        }
        for (const auto& k : got) {
            std::vector<served_key> dec;
            if (!store->take_granted("slave", std::span(&k.id, 1), dec).ok()) {
                return 6;
            }
            log_line(fd, 'S', dec.front());
        }
    }
}
