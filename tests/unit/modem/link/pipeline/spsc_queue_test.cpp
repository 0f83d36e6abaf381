// Bounded SPSC queue: order, backpressure, and a two-thread transfer checked item by item.
#include "qlink/modem/spsc_queue.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <thread>

namespace {

using qlink::modem::spsc_queue;

TEST(spsc_queue, fills_to_capacity_then_refuses_and_keeps_fifo_order)
{
    spsc_queue<int> q(8);
    for (int i = 0; i < 8; ++i) {
        EXPECT_TRUE(q.try_push(i));
    }
    EXPECT_FALSE(q.try_push(99)); // full: backpressure, nothing overwritten
    EXPECT_EQ(q.size(), 8u);
    int v = -1;
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(q.try_pop(v));
        EXPECT_EQ(v, i);
    }
    EXPECT_FALSE(q.try_pop(v));
    EXPECT_EQ(v, 7);
    // Wrap around the slot array many times.
    for (int i = 0; i < 1000; ++i) {
        ASSERT_TRUE(q.try_push(i));
        ASSERT_TRUE(q.try_pop(v));
        ASSERT_EQ(v, i);
    }
}

TEST(spsc_queue, bad_capacity_throws)
{
    EXPECT_THROW(spsc_queue<int>(6), std::invalid_argument);
    EXPECT_THROW(spsc_queue<int>(1), std::invalid_argument);
}

// Blocks of bytes whose content depends on the sequence number, pushed by one thread and popped by
// another through a small queue (so the producer hits backpressure often); every block is checked.
TEST(spsc_queue, two_threads_transfer_every_block_in_order)
{
    using block = std::array<std::uint8_t, 64>;
    struct item {
        std::uint64_t seq = 0;
        block data{};
    };
    constexpr std::uint64_t n = 50000;
    spsc_queue<item> q(64);
    std::uint64_t full_hits = 0;
    std::thread producer([&] {
        for (std::uint64_t s = 0; s < n; ++s) {
            item it;
            it.seq = s;
            for (std::size_t i = 0; i < it.data.size(); ++i) {
                it.data[i] = static_cast<std::uint8_t>(s * 31 + i);
            }
            while (!q.try_push(it)) {
                ++full_hits;
                std::this_thread::yield();
            }
        }
    });
    std::uint64_t errors = 0;
    item it;
    for (std::uint64_t s = 0; s < n;) {
        if (!q.try_pop(it)) {
            std::this_thread::yield();
            continue;
        }
        bool ok = it.seq == s;
        for (std::size_t i = 0; ok && i < it.data.size(); ++i) {
            ok = it.data[i] == static_cast<std::uint8_t>(s * 31 + i);
        }
        errors += ok ? 0 : 1;
        ++s;
    }
    producer.join();
    EXPECT_EQ(errors, 0u);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_FALSE(q.try_pop(it));
    (void)full_hits; // depends on scheduling; not asserted
}

} // namespace
