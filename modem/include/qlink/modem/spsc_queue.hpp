// Bounded lock-free single-producer single-consumer queue connecting pipeline threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

namespace qlink::modem {

// Slots are allocated once; try_push fails when full (backpressure: the producer decides whether
// to wait or drop), try_pop fails when empty. Exactly one thread may push and one may pop.
// Indices grow without wrapping back (64-bit), the slot is index & mask.
template <typename T>
class spsc_queue {
public:
    explicit spsc_queue(std::size_t capacity) : slots_(capacity), mask_(capacity - 1)
    {
        if (capacity < 2 || (capacity & (capacity - 1)) != 0) {
            throw std::invalid_argument("spsc_queue capacity must be a power of two >= 2");
        }
    }
    spsc_queue(const spsc_queue&) = delete;
    spsc_queue& operator=(const spsc_queue&) = delete;

    std::size_t capacity() const { return slots_.size(); }

    template <typename U>
    bool try_push(U&& v)
    {
        const std::size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_cache_ == slots_.size()) {
            // Refresh the consumer's position only when the queue looks full: keeps the shared
            // cache line off the fast path.
            head_cache_ = head_.load(std::memory_order_acquire);
            if (t - head_cache_ == slots_.size()) {
                return false;
            }
        }
        slots_[t & mask_] = std::forward<U>(v);
        tail_.store(t + 1, std::memory_order_release);
        return true;
    }

    bool try_pop(T& out)
    {
        const std::size_t h = head_.load(std::memory_order_relaxed);
        if (h == tail_cache_) {
            tail_cache_ = tail_.load(std::memory_order_acquire);
            if (h == tail_cache_) {
                return false;
            }
        }
        out = std::move(slots_[h & mask_]);
        head_.store(h + 1, std::memory_order_release);
        return true;
    }

    // Approximate from any thread; exact from either endpoint when the other is idle.
    std::size_t size() const
    {
        return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire);
    }

private:
    static constexpr std::size_t line = 64;
    std::vector<T> slots_;
    std::size_t mask_;
    alignas(line) std::atomic<std::size_t> head_{0}; // consumer-owned
    alignas(line) std::size_t tail_cache_ = 0;        // consumer's copy of tail_
    alignas(line) std::atomic<std::size_t> tail_{0}; // producer-owned
    alignas(line) std::size_t head_cache_ = 0;        // producer's copy of head_
};

} // namespace qlink::modem
