// Wegman-Carter message authentication: GF(2^128) polynomial hash, one-time-padded tags, key pool.
#include "qlink/keymgmt/auth.hpp"

#include <openssl/crypto.h>

#include <stdexcept>

namespace qlink::keymgmt {
namespace {

inline gf128 mul_x(gf128 a) {
    const std::uint64_t carry = a.hi >> 63;
    a.hi = (a.hi << 1) | (a.lo >> 63);
    a.lo = (a.lo << 1) ^ (carry * 0x87u);
    return a;
}

// Multiplication by a fixed factor with a 16-entry table of its products by x^0..x^3
// combinations: the other operand is consumed four bits at a time, most significant first.
class gf128_table {
public:
    explicit gf128_table(gf128 h) {
        t_[0] = {};
        t_[1] = h;
        t_[2] = mul_x(h);
        t_[4] = mul_x(t_[2]);
        t_[8] = mul_x(t_[4]);
        for (unsigned i = 2; i < 16; ++i) {
            if ((i & (i - 1)) == 0) continue;
            const unsigned low = i & (0u - i);
            t_[i] = {t_[low].lo ^ t_[i ^ low].lo, t_[low].hi ^ t_[i ^ low].hi};
        }
    }
    ~gf128_table() { OPENSSL_cleanse(t_, sizeof(t_)); }
    gf128_table(const gf128_table&) = delete;
    gf128_table& operator=(const gf128_table&) = delete;

    gf128 mul(gf128 a) const {
        gf128 r{};
        for (int i = 31; i >= 0; --i) {
            // r *= x^4, folding the four bits above x^127 back with x^128 = x^7 + x^2 + x + 1.
            const std::uint64_t o = r.hi >> 60;
            r.hi = (r.hi << 4) | (r.lo >> 60);
            r.lo = (r.lo << 4) ^ o ^ (o << 1) ^ (o << 2) ^ (o << 7);
            const unsigned nib = static_cast<unsigned>(((i >= 16 ? a.hi >> ((i - 16) * 4) : a.lo >> (i * 4))) & 0xFu);
            r.lo ^= t_[nib].lo;
            r.hi ^= t_[nib].hi;
        }
        return r;
    }

private:
    gf128 t_[16];
};

inline std::uint64_t load_le64(const std::uint8_t* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
}
inline void store_le64(std::uint8_t* p, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
gf128 load_block(const std::uint8_t* p) { return {load_le64(p), load_le64(p + 8)}; }
gf128_block store_block(gf128 v) {
    gf128_block b{};
    store_le64(b.data(), v.lo);
    store_le64(b.data() + 8, v.hi);
    return b;
}

gf128 poly_hash_table(const gf128_table& k, std::span<const std::uint8_t> msg) {
    gf128 h{};
    std::size_t i = 0;
    for (; i + 16 <= msg.size(); i += 16) {
        const gf128 m = load_block(msg.data() + i);
        h = k.mul({h.lo ^ m.lo, h.hi ^ m.hi});
    }
    if (i < msg.size()) {
        std::uint8_t last[16] = {};
        for (std::size_t j = 0; i + j < msg.size(); ++j) last[j] = msg[i + j];
        const gf128 m = load_block(last);
        h = k.mul({h.lo ^ m.lo, h.hi ^ m.hi});
        OPENSSL_cleanse(last, sizeof(last));
    }
    // The length block makes messages that differ only by trailing zero bytes distinct.
    h = k.mul({h.lo ^ (static_cast<std::uint64_t>(msg.size()) * 8u), h.hi});
    return h;
}

}  // namespace

gf128 gf128_mul(gf128 a, gf128 b) {
    const gf128_table t(b);
    return t.mul(a);
}

gf128 poly_hash(gf128 key, std::span<const std::uint8_t> msg) {
    const gf128_table t(key);
    return poly_hash_table(t, msg);
}

auth_key_pool::auth_key_pool(std::span<const std::uint8_t> pre_shared) {
    if (pre_shared.size() < 16) throw std::invalid_argument("auth_key_pool: pre-shared key needs at least 16 bytes");
    key_ = load_block(pre_shared.data());
    replenish(pre_shared.subspan(16));
}

auth_key_pool::~auth_key_pool() {
    for (auto& p : pads_) OPENSSL_cleanse(&p, sizeof(p));
    OPENSSL_cleanse(&key_, sizeof(key_));
}

auth_key_pool::auth_key_pool(std::span<const std::uint8_t> pre_shared, std::uint64_t first_index)
    : auth_key_pool(pre_shared) {
    next_index_ = first_index;
}

void auth_key_pool::skip_to(std::uint64_t index) {
    while (next_index_ < index && !pads_.empty()) {
        OPENSSL_cleanse(&pads_.front(), sizeof(gf128));
        pads_.pop_front();
        ++next_index_;
        ++consumed_;
    }
    // Past the end: nothing left, but the index still moves so a pad is never reused.
    if (next_index_ < index) next_index_ = index;
}

void auth_key_pool::truncate_end(std::uint64_t end) {
    while (!pads_.empty() && end_pad_index() > end) {
        OPENSSL_cleanse(&pads_.back(), sizeof(gf128));
        pads_.pop_back();
    }
}

void auth_key_pool::export_material(std::vector<std::uint8_t>& out) const {
    out.clear();
    out.reserve(16 * (1 + pads_.size()));
    const auto put = [&](const gf128& g) {
        gf128_block b = store_block(g);
        out.insert(out.end(), b.begin(), b.end());
        OPENSSL_cleanse(b.data(), b.size());
    };
    put(key_);
    for (const auto& p : pads_) put(p);
}

std::size_t auth_key_pool::replenish(std::span<const std::uint8_t> key_bytes) {
    const std::size_t n = key_bytes.size() / 16;
    for (std::size_t i = 0; i < n; ++i) pads_.push_back(load_block(key_bytes.data() + 16 * i));
    return n;
}

bool auth_key_pool::sign(std::span<const std::uint8_t> msg, gf128_block& tag, std::uint64_t& pad_index) {
    if (pads_.empty()) return false;
    gf128 pad = pads_.front();
    pads_.pop_front();
    pad_index = next_index_++;
    ++consumed_;
    const gf128 h = poly_hash(key_, msg);
    tag = store_block({h.lo ^ pad.lo, h.hi ^ pad.hi});
    OPENSSL_cleanse(&pad, sizeof(pad));
    return true;
}

bool auth_key_pool::verify(std::span<const std::uint8_t> msg, const gf128_block& tag, std::uint64_t pad_index) {
    if (pad_index < next_index_ || pad_index - next_index_ >= pads_.size()) return false;
    while (next_index_ < pad_index) {
        OPENSSL_cleanse(&pads_.front(), sizeof(gf128));
        pads_.pop_front();
        ++next_index_;
        ++consumed_;
    }
    gf128 pad = pads_.front();
    OPENSSL_cleanse(&pads_.front(), sizeof(gf128));
    pads_.pop_front();
    ++next_index_;
    ++consumed_;
    const gf128 h = poly_hash(key_, msg);
    gf128_block expect = store_block({h.lo ^ pad.lo, h.hi ^ pad.hi});
    const bool ok = CRYPTO_memcmp(expect.data(), tag.data(), expect.size()) == 0;
    OPENSSL_cleanse(&pad, sizeof(pad));
    OPENSSL_cleanse(expect.data(), expect.size());
    return ok;
}

}  // namespace qlink::keymgmt
