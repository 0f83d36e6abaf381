// Private helpers for the post-processing wire format: little-endian fields, packed bits, a portable PRNG.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qlink::keymgmt {

/// splitmix64 (Steele et al.): fully specified, so both ends derive identical permutations and
/// samples from a shared seed whatever their standard library.
class splitmix64 {
public:
    explicit splitmix64(std::uint64_t seed) : s_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        return z ^ (z >> 31);
    }

private:
    std::uint64_t s_;
};

class wire_writer {
public:
    explicit wire_writer(std::vector<std::uint8_t>& out) : out_(out) {}
    void u8(std::uint8_t v) { out_.push_back(v); }
    void u16(std::uint16_t v) { le(v, 2); }
    void u32(std::uint32_t v) { le(v, 4); }
    void u64(std::uint64_t v) { le(v, 8); }
    void f64(double v) {
        std::uint64_t b = 0;
        static_assert(sizeof(b) == sizeof(v));
        __builtin_memcpy(&b, &v, sizeof(b));
        u64(b);
    }
    void bytes(std::span<const std::uint8_t> b) { out_.insert(out_.end(), b.begin(), b.end()); }
    /// LEB128: 7 bits per byte, high bit = more bytes follow.
    void varint(std::uint64_t v) {
        while (v >= 0x80) {
            out_.push_back(static_cast<std::uint8_t>(v | 0x80));
            v >>= 7;
        }
        out_.push_back(static_cast<std::uint8_t>(v));
    }
    std::vector<std::uint8_t>& buffer() { return out_; }

private:
    void le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    std::vector<std::uint8_t>& out_;
};

class wire_reader {
public:
    explicit wire_reader(std::span<const std::uint8_t> in) : in_(in) {}
    bool u8(std::uint8_t& v) {
        std::uint64_t t = 0;
        if (!le(t, 1)) return false;
        v = static_cast<std::uint8_t>(t);
        return true;
    }
    bool u16(std::uint16_t& v) {
        std::uint64_t t = 0;
        if (!le(t, 2)) return false;
        v = static_cast<std::uint16_t>(t);
        return true;
    }
    bool u32(std::uint32_t& v) {
        std::uint64_t t = 0;
        if (!le(t, 4)) return false;
        v = static_cast<std::uint32_t>(t);
        return true;
    }
    bool u64(std::uint64_t& v) { return le(v, 8); }
    bool f64(double& v) {
        std::uint64_t b = 0;
        if (!u64(b)) return false;
        __builtin_memcpy(&v, &b, sizeof(b));
        return true;
    }
    bool bytes(std::size_t n, std::span<const std::uint8_t>& out) {
        if (remaining() < n) return false;
        out = in_.subspan(pos_, n);
        pos_ += n;
        return true;
    }
    bool varint(std::uint64_t& v) {
        v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
            if (pos_ >= in_.size()) return false;
            const std::uint8_t b = in_[pos_++];
            if (shift == 63 && b > 1) return false;  // more than 64 bits
            v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return true;
        }
        return false;
    }
    std::size_t remaining() const { return in_.size() - pos_; }
    bool done() const { return pos_ == in_.size(); }

private:
    bool le(std::uint64_t& v, int n) {
        if (remaining() < static_cast<std::size_t>(n)) return false;
        v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | in_[pos_ + static_cast<std::size_t>(i)];
        pos_ += static_cast<std::size_t>(n);
        return true;
    }
    std::span<const std::uint8_t> in_;
    std::size_t pos_ = 0;
};

/// Bits packed LSB first within a byte, ceil(count / 8) bytes.
class bit_packer {
public:
    bit_packer(wire_writer& w, std::size_t count) : w_(w) { w_.buffer().reserve(w_.buffer().size() + (count + 7) / 8); }
    void push(std::uint8_t bit) {
        cur_ |= static_cast<std::uint8_t>((bit & 1u) << fill_);
        if (++fill_ == 8) flush();
    }
    void finish() {
        if (fill_) flush();
    }

private:
    void flush() {
        w_.u8(cur_);
        cur_ = 0;
        fill_ = 0;
    }
    wire_writer& w_;
    std::uint8_t cur_ = 0;
    unsigned fill_ = 0;
};

inline bool read_packed_bits(wire_reader& r, std::size_t count, std::vector<std::uint8_t>& bits) {
    std::span<const std::uint8_t> b;
    if (!r.bytes((count + 7) / 8, b)) return false;
    bits.resize(count);
    for (std::size_t i = 0; i < count; ++i) bits[i] = (b[i / 8] >> (i % 8)) & 1u;
    return true;
}

}  // namespace qlink::keymgmt
