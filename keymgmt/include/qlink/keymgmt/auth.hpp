// Wegman-Carter authentication of classical messages: polynomial MAC over GF(2^128), one-time-pad tags.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

namespace qlink::keymgmt {

using gf128_block = std::array<std::uint8_t, 16>;

/// GF(2^128) with modulus x^128 + x^7 + x^2 + x + 1; an element is two little-endian 64-bit words,
/// bit i of the 128-bit integer is the coefficient of x^i.
struct gf128 {
    std::uint64_t lo = 0, hi = 0;
    friend bool operator==(const gf128&, const gf128&) = default;
};
gf128 gf128_mul(gf128 a, gf128 b);

/// Polynomial hash of `msg` at point `key`: the message is padded to 16-byte blocks m_1..m_k
/// (little endian), then block m_{k+1} = bit length, and
///   H = m_1 K^{k+1} + m_2 K^k + ... + m_{k+1} K.
/// Two distinct messages of at most L blocks collide for at most (L+1) of the 2^128 keys.
gf128 poly_hash(gf128 key, std::span<const std::uint8_t> msg);

/// Key material for authentication: one 128-bit hash key (reused, as Wegman-Carter allows when
/// tags are one-time padded) and a stream of 128-bit pads, each used for exactly one message.
/// Pads have absolute indices so both ends stay aligned across sessions; a pad is never reused.
/// Wipes its contents on destruction.
class auth_key_pool {
public:
    /// `pre_shared` = 16 bytes hash key followed by pads (a multiple of 16 bytes; extra bytes ignored).
    explicit auth_key_pool(std::span<const std::uint8_t> pre_shared);
    /// Same, with the first pad at absolute index `first_index` (a pool restored from saved state).
    auth_key_pool(std::span<const std::uint8_t> pre_shared, std::uint64_t first_index);
    ~auth_key_pool();
    auth_key_pool(const auth_key_pool&) = delete;
    auth_key_pool& operator=(const auth_key_pool&) = delete;

    /// Pads left (each 128 bits).
    std::size_t pads_available() const { return pads_.size(); }
    /// Absolute index of the next unused pad.
    std::uint64_t next_pad_index() const { return next_index_; }
    /// Appends pads taken from distilled key (whole 16-byte pads only; returns the pads added).
    std::size_t replenish(std::span<const std::uint8_t> key_bytes);

    /// Absolute index one past the last pad held.
    std::uint64_t end_pad_index() const { return next_index_ + pads_.size(); }
    /// Discards (wipes) every pad below `index`; never goes back. Used to step over pads that may
    /// have been used before a crash.
    void skip_to(std::uint64_t index);
    /// Drops (wipes) pads at absolute index >= `end` (undoes a replenish the peer never made).
    void truncate_end(std::uint64_t end);
    /// Writes the hash key (16 bytes) followed by the unused pads, from next_pad_index(): the
    /// input of the two-argument constructor. `out` holds secrets: the caller cleanses it.
    void export_material(std::vector<std::uint8_t>& out) const;

    /// Tag of `msg` with the next pad; false (nothing consumed) when no pad is left.
    bool sign(std::span<const std::uint8_t> msg, gf128_block& tag, std::uint64_t& pad_index);
    /// Verifies with pad `pad_index`, discarding all earlier pads; false when the pad is already
    /// gone (replay) or not there yet, or when the tag does not match (the pad is consumed anyway).
    bool verify(std::span<const std::uint8_t> msg, const gf128_block& tag, std::uint64_t pad_index);

    std::uint64_t pads_consumed() const { return consumed_; }

private:
    gf128 key_{};
    std::deque<gf128> pads_;
    std::uint64_t next_index_ = 0;
    std::uint64_t consumed_ = 0;
};

}  // namespace qlink::keymgmt
