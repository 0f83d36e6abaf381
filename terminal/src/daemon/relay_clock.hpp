// The relay's simulated clock as seen from qlinkd: message timestamps against the steady clock.
//
// Every RX_LLR message carries the simulated time of its first bit, i.e. the relay's clock when it
// read the far end's bits. Between messages the clock is extrapolated at the rate the stamps have
// advanced against the wall since a baseline, so it keeps running when the far end sends nothing
// (a transmitter paced on it never waits for the far end's transmitter, which may be waiting on
// this one). Thread safe: the air receive thread observes, the transmit thread reads.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>

namespace qlink::terminal {

class relay_clock {
public:
    using steady = std::chrono::steady_clock;

    /// Wall baseline the rate estimate needs before now() answers.
    static constexpr std::chrono::milliseconds min_baseline{200};

    /// A message stamped `t` (simulated seconds, its first bit) arrived at `at`.
    void observe(double t, steady::time_point at)
    {
        std::lock_guard lk(mu_);
        // Until the stamps move (a relay whose clock has not started yet says 0) the baseline
        // stays at the latest message; after a stamp that went back (a new relay), it restarts.
        if (!have_ || t <= first_t_ || t < last_t_) {
            first_t_ = t;
            first_at_ = at;
        }
        last_t_ = t;
        last_at_ = at;
        have_ = true;
    }

    /// The relay's simulated time at `at`, or nothing while the rate is not known yet.
    std::optional<double> now(steady::time_point at) const
    {
        std::lock_guard lk(mu_);
        if (!have_ || last_at_ - first_at_ < min_baseline || last_t_ <= first_t_) return std::nullopt;
        const double rate = (last_t_ - first_t_) / std::chrono::duration<double>(last_at_ - first_at_).count();
        return last_t_ + rate * std::chrono::duration<double>(at - last_at_).count();
    }

    /// Forget everything (a new connection).
    void reset()
    {
        std::lock_guard lk(mu_);
        have_ = false;
    }

private:
    mutable std::mutex mu_;
    bool have_ = false;
    double first_t_ = 0.0, last_t_ = 0.0;
    steady::time_point first_at_{}, last_at_{};
};

}  // namespace qlink::terminal
