// Counters every line-oriented simulator service (rotctld, control port) keeps.
#pragma once

#include <atomic>
#include <cstdint>

namespace qlink::sim {

struct line_service_counters {
    std::atomic<std::uint64_t> connections{0};
    std::atomic<std::uint64_t> rejected{0};  // over max_clients
    std::atomic<std::uint64_t> commands{0};
    std::atomic<std::uint64_t> errors{0};    // error replies, over-long lines
};

}  // namespace qlink::sim
