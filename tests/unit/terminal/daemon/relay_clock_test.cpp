// Tests relay_clock: qlinkd's view of the relay's simulated clock between messages, which paces its
// transmitter (air.tx_lead_s). It must follow the stamps' rate, keep running when no message comes
// (the far end's transmitter may be waiting on this one), and start over for a new relay.
#include "relay_clock.hpp"

#include <gtest/gtest.h>

namespace {

using qlink::terminal::relay_clock;
using namespace std::chrono_literals;

TEST(relay_clock, says_nothing_until_the_stamps_have_moved_over_the_baseline)
{
    relay_clock c;
    const auto t0 = relay_clock::steady::time_point{} + 1000s;
    EXPECT_FALSE(c.now(t0));
    c.observe(10.0, t0);
    EXPECT_FALSE(c.now(t0 + 50ms));
    c.observe(11.5, t0 + 100ms);  // moving, but 100 ms of baseline is too short for a rate
    EXPECT_FALSE(c.now(t0 + 150ms));
    c.observe(13.0, t0 + 200ms);
    ASSERT_TRUE(c.now(t0 + 200ms));
    EXPECT_NEAR(*c.now(t0 + 200ms), 13.0, 1e-9);
}

TEST(relay_clock, extrapolates_at_the_stamps_rate_and_keeps_running_without_messages)
{
    relay_clock c;
    const auto t0 = relay_clock::steady::time_point{} + 5s;
    for (int k = 0; k <= 10; ++k) c.observe(100.0 + 1.5 * k, t0 + k * 100ms);  // x15: 1.5 sim s per 100 ms
    ASSERT_TRUE(c.now(t0 + 1s));
    EXPECT_NEAR(*c.now(t0 + 1s), 115.0, 1e-6);
    EXPECT_NEAR(*c.now(t0 + 1050ms), 115.75, 1e-6);
    // No message for 2 s: the clock goes on (a transmitter paced on it is never stuck).
    EXPECT_NEAR(*c.now(t0 + 3s), 145.0, 1e-6);
}

TEST(relay_clock, a_clock_that_starts_late_is_measured_from_when_it_moves)
{
    relay_clock c;
    const auto t0 = relay_clock::steady::time_point{} + 5s;
    // The relay's clock waits for its other clients: stamps say 0 for a second.
    for (int k = 0; k <= 10; ++k) c.observe(0.0, t0 + k * 100ms);
    EXPECT_FALSE(c.now(t0 + 1s));
    // Then runs at x10 from t0 + 1 s.
    for (int k = 1; k <= 4; ++k) c.observe(1.0 * k, t0 + 1s + k * 100ms);
    ASSERT_TRUE(c.now(t0 + 1400ms));
    EXPECT_NEAR(*c.now(t0 + 1500ms), 5.0, 1e-6);
}

TEST(relay_clock, a_stamp_that_goes_back_or_a_reset_starts_over)
{
    relay_clock c;
    const auto t0 = relay_clock::steady::time_point{} + 5s;
    for (int k = 0; k <= 5; ++k) c.observe(50.0 + k, t0 + k * 100ms);
    ASSERT_TRUE(c.now(t0 + 500ms));
    c.observe(2.0, t0 + 600ms);  // a new relay, a new pass clock
    EXPECT_FALSE(c.now(t0 + 600ms));
    c.observe(3.0, t0 + 700ms);
    c.observe(4.0, t0 + 800ms);
    ASSERT_TRUE(c.now(t0 + 800ms));
    EXPECT_NEAR(*c.now(t0 + 900ms), 5.0, 1e-6);
    c.reset();
    EXPECT_FALSE(c.now(t0 + 900ms));
}

}  // namespace
