// Toeplitz hashing for privacy amplification: exact NTT convolution mod 998244353, and the naive product.
#include "qlink/keymgmt/toeplitz.hpp"

#include <stdexcept>
#include <vector>

namespace qlink::keymgmt {
namespace {

// p = 119 * 2^23 + 1, generator 3: transforms up to 2^23 points, and p > 2^21 so a convolution of
// 0/1 sequences of length <= 2^21 never wraps.
constexpr std::uint32_t mod_p = 998244353u;
constexpr std::uint32_t generator = 3;
constexpr unsigned max_log2 = 23;

// -p^{-1} mod 2^32 by Newton iteration, for Montgomery reduction with R = 2^32.
constexpr std::uint32_t neg_inverse() {
    std::uint32_t inv = mod_p;  // correct to 3 bits for odd p
    for (int i = 0; i < 5; ++i) inv *= 2u - mod_p * inv;
    return 0u - inv;
}
constexpr std::uint32_t p_neg_inv = neg_inverse();
static_assert(static_cast<std::uint32_t>(mod_p * (0u - p_neg_inv)) == 1u);

inline std::uint32_t mont_reduce(std::uint64_t t) {
    const std::uint32_t m = static_cast<std::uint32_t>(t) * p_neg_inv;
    const std::uint32_t u = static_cast<std::uint32_t>((t + static_cast<std::uint64_t>(m) * mod_p) >> 32);
    return u >= mod_p ? u - mod_p : u;
}
inline std::uint32_t mont_mul(std::uint32_t a, std::uint32_t b) {
    return mont_reduce(static_cast<std::uint64_t>(a) * b);
}
inline std::uint32_t add_mod(std::uint32_t a, std::uint32_t b) {
    const std::uint32_t s = a + b;
    return s >= mod_p ? s - mod_p : s;
}
inline std::uint32_t sub_mod(std::uint32_t a, std::uint32_t b) { return a >= b ? a - b : a + mod_p - b; }

std::uint64_t pow_mod(std::uint64_t b, std::uint64_t e) {
    std::uint64_t r = 1;
    b %= mod_p;
    while (e) {
        if (e & 1) r = r * b % mod_p;
        b = b * b % mod_p;
        e >>= 1;
    }
    return r;
}
// Montgomery form of x: x * 2^32 mod p.
std::uint32_t to_mont(std::uint64_t x) { return static_cast<std::uint32_t>((x % mod_p << 32) % mod_p); }

class toeplitz_hasher_ntt final : public toeplitz_hasher {
public:
    explicit toeplitz_hasher_ntt(const config& cfg) : max_n_(cfg.max_input_bits) {
        if (max_n_ == 0 || 2 * max_n_ - 1 > (std::size_t{1} << max_log2)) {
            throw std::invalid_argument("toeplitz_hasher: max_input_bits must be in [1, 2^22]");
        }
        std::size_t len = 1;
        while (len < 2 * max_n_ - 1) len <<= 1;
        max_len_ = len;
        a_.assign(len, 0);
        b_.assign(len, 0);
        // Level `half` (a power of two) stores w^j, j < half, for w a primitive (2 half)-th root,
        // at [half, 2 half): the same table serves every transform length.
        tw_.assign(len, 0);
        itw_.assign(len, 0);
        for (std::size_t half = 1; half < len; half <<= 1) {
            const std::uint64_t w = pow_mod(generator, (mod_p - 1) / (2 * half));
            const std::uint64_t wi = pow_mod(w, mod_p - 2);
            std::uint64_t x = 1, xi = 1;
            for (std::size_t j = 0; j < half; ++j) {
                tw_[half + j] = to_mont(x);
                itw_[half + j] = to_mont(xi);
                x = x * w % mod_p;
                xi = xi * wi % mod_p;
            }
        }
    }

    toeplitz_result hash(std::span<const std::uint8_t> seed, std::span<const std::uint8_t> x,
                         std::span<std::uint8_t> y) override {
        const std::size_t n = x.size(), m = y.size();
        if (n == 0 || m == 0) return {false, "toeplitz: empty input or output"};
        if (m > n) return {false, "toeplitz: output longer than input"};
        if (n > max_n_) return {false, "toeplitz: input longer than max_input_bits"};
        if (seed.size() != n + m - 1) return {false, "toeplitz: seed must have n + m - 1 bits"};
        std::size_t len = 1;
        while (len < n + m - 1) len <<= 1;
        // Only a_[0, len) and b_[0, len) are used; a cyclic length >= n + m - 1 does not alias the
        // outputs c[n-1 .. n+m-2] (see header).
        for (std::size_t i = 0; i < n + m - 1; ++i) a_[i] = seed[i] & 1u;
        for (std::size_t i = n + m - 1; i < len; ++i) a_[i] = 0;
        for (std::size_t i = 0; i < n; ++i) b_[i] = x[i] & 1u;
        for (std::size_t i = n; i < len; ++i) b_[i] = 0;
        forward(a_.data(), len);
        forward(b_.data(), len);
        // Pointwise products carry a factor R^{-1}; the final scale removes it with R^2 / len.
        for (std::size_t i = 0; i < len; ++i) a_[i] = mont_mul(a_[i], b_[i]);
        inverse(a_.data(), len);
        const std::uint32_t scale = to_mont(pow_mod(len, mod_p - 2) * (std::uint64_t{1} << 32) % mod_p);
        for (std::size_t i = 0; i < m; ++i) {
            y[i] = static_cast<std::uint8_t>(mont_mul(a_[i + n - 1], scale) & 1u);
        }
        return {true, {}};
    }

private:
    // Decimation in frequency, natural order in, bit-reversed out.
    void forward(std::uint32_t* a, std::size_t len) const {
        for (std::size_t half = len >> 1; half >= 1; half >>= 1) {
            const std::uint32_t* w = tw_.data() + half;
            for (std::size_t s = 0; s < len; s += 2 * half) {
                std::uint32_t* lo = a + s;
                std::uint32_t* hi = a + s + half;
                for (std::size_t j = 0; j < half; ++j) {
                    const std::uint32_t u = lo[j], v = hi[j];
                    lo[j] = add_mod(u, v);
                    hi[j] = mont_mul(sub_mod(u, v), w[j]);
                }
            }
        }
    }
    // Decimation in time, bit-reversed in, natural order out (unscaled).
    void inverse(std::uint32_t* a, std::size_t len) const {
        for (std::size_t half = 1; half < len; half <<= 1) {
            const std::uint32_t* w = itw_.data() + half;
            for (std::size_t s = 0; s < len; s += 2 * half) {
                std::uint32_t* lo = a + s;
                std::uint32_t* hi = a + s + half;
                for (std::size_t j = 0; j < half; ++j) {
                    const std::uint32_t u = lo[j], v = mont_mul(hi[j], w[j]);
                    lo[j] = add_mod(u, v);
                    hi[j] = sub_mod(u, v);
                }
            }
        }
    }

    std::size_t max_n_;
    std::size_t max_len_ = 0;
    std::vector<std::uint32_t> a_, b_, tw_, itw_;
};

}  // namespace

std::unique_ptr<toeplitz_hasher> create_toeplitz_hasher(const toeplitz_hasher::config& cfg) {
    return std::make_unique<toeplitz_hasher_ntt>(cfg);
}

toeplitz_result toeplitz_hash_naive(std::span<const std::uint8_t> seed, std::span<const std::uint8_t> x,
                                    std::span<std::uint8_t> y) {
    const std::size_t n = x.size(), m = y.size();
    if (n == 0 || m == 0) return {false, "toeplitz: empty input or output"};
    if (m > n) return {false, "toeplitz: output longer than input"};
    if (seed.size() != n + m - 1) return {false, "toeplitz: seed must have n + m - 1 bits"};
    for (std::size_t i = 0; i < m; ++i) {
        std::uint8_t acc = 0;
        for (std::size_t j = 0; j < n; ++j) acc ^= static_cast<std::uint8_t>(seed[i + n - 1 - j] & x[j] & 1u);
        y[i] = acc;
    }
    return {true, {}};
}

}  // namespace qlink::keymgmt
