// Tests keymgmt/src/postproc/toeplitz.cpp: NTT Toeplitz hashing against the matrix product and a GF(2) polynomial product.
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "qlink/keymgmt/toeplitz.hpp"

namespace qlink::keymgmt {
namespace {

std::vector<std::uint8_t> random_bits(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng() & 1u);
    return v;
}

// Independent oracle for large sizes: Toeplitz hashing is the middle of the GF(2)[x] product
// seed(x) * x(x); multiply word-wise with carry-less 64x64 products (schoolbook).
std::vector<std::uint8_t> clmul_oracle(const std::vector<std::uint8_t>& seed, const std::vector<std::uint8_t>& x, std::size_t m) {
    auto pack = [](const std::vector<std::uint8_t>& b) {
        std::vector<std::uint64_t> w((b.size() + 63) / 64, 0);
        for (std::size_t i = 0; i < b.size(); ++i) w[i / 64] |= std::uint64_t{b[i]} << (i % 64);
        return w;
    };
    const auto a = pack(seed), b = pack(x);
    std::vector<std::uint64_t> prod(a.size() + b.size() + 1, 0);
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (!a[i]) continue;
        for (std::size_t j = 0; j < b.size(); ++j) {
            std::uint64_t lo = 0, hi = 0;
            const std::uint64_t u = a[i], v = b[j];
            for (int k = 0; k < 64; ++k) {
                if ((v >> k) & 1u) {
                    lo ^= u << k;
                    if (k) hi ^= u >> (64 - k);
                }
            }
            prod[i + j] ^= lo;
            prod[i + j + 1] ^= hi;
        }
    }
    const std::size_t n = x.size();
    std::vector<std::uint8_t> y(m);
    for (std::size_t i = 0; i < m; ++i) y[i] = static_cast<std::uint8_t>((prod[(i + n - 1) / 64] >> ((i + n - 1) % 64)) & 1u);
    return y;
}

TEST(toeplitz, ntt_equals_naive_on_random_small_sizes) {
    std::mt19937_64 rng(42);
    auto h = create_toeplitz_hasher({.max_input_bits = 4096});
    for (int trial = 0; trial < 200; ++trial) {
        const std::size_t n = 1 + rng() % (trial < 100 ? 64 : 1500);
        const std::size_t m = 1 + rng() % n;
        const auto seed = random_bits(n + m - 1, rng);
        const auto x = random_bits(n, rng);
        std::vector<std::uint8_t> y_fast(m, 7), y_naive(m, 9);
        ASSERT_TRUE(h->hash(seed, x, y_fast).ok);
        ASSERT_TRUE(toeplitz_hash_naive(seed, x, y_naive).ok);
        ASSERT_EQ(y_fast, y_naive) << "n=" << n << " m=" << m;
    }
}

TEST(toeplitz, naive_is_the_matrix_product) {
    // 3x4 matrix written out: T[i][j] = s[i - j + 3].
    const std::vector<std::uint8_t> s = {1, 0, 1, 1, 0, 1};  // n + m - 1 = 6
    const std::vector<std::uint8_t> x = {1, 1, 0, 1};
    std::vector<std::uint8_t> y(3);
    ASSERT_TRUE(toeplitz_hash_naive(s, x, y).ok);
    for (std::size_t i = 0; i < 3; ++i) {
        int acc = 0;
        for (std::size_t j = 0; j < 4; ++j) acc ^= s[i + 3 - j] & x[j];
        EXPECT_EQ(y[i], acc);
    }
    EXPECT_EQ(y, (std::vector<std::uint8_t>{1, 1, 0}));  // worked by hand
}

TEST(toeplitz, ntt_equals_gf2_polynomial_product_at_large_size) {
    std::mt19937_64 rng(7);
    const std::size_t n = 40000, m = 23457;
    auto h = create_toeplitz_hasher({.max_input_bits = n});
    const auto seed = random_bits(n + m - 1, rng);
    const auto x = random_bits(n, rng);
    std::vector<std::uint8_t> y(m);
    ASSERT_TRUE(h->hash(seed, x, y).ok);
    EXPECT_EQ(y, clmul_oracle(seed, x, m));
}

TEST(toeplitz, million_bit_block_hashes) {
    std::mt19937_64 rng(11);
    const std::size_t n = 1000000, m = 600000;
    auto h = create_toeplitz_hasher({.max_input_bits = n});
    const auto seed = random_bits(n + m - 1, rng);
    auto x = random_bits(n, rng);
    std::vector<std::uint8_t> y1(m), y2(m);
    ASSERT_TRUE(h->hash(seed, x, y1).ok);
    // Spot-check rows against the definition, and linearity: T(x + e_j) = T x + column j.
    for (std::size_t i : {std::size_t{0}, std::size_t{12345}, m - 1}) {
        std::uint8_t acc = 0;
        for (std::size_t j = 0; j < n; ++j) acc ^= seed[i + n - 1 - j] & x[j];
        EXPECT_EQ(y1[i], acc) << i;
    }
    const std::size_t j = 777;
    x[j] ^= 1u;
    ASSERT_TRUE(h->hash(seed, x, y2).ok);
    for (std::size_t i = 0; i < m; i += 997) EXPECT_EQ(y1[i] ^ y2[i], seed[i + n - 1 - j]) << i;
}

TEST(toeplitz, bad_lengths_are_errors) {
    auto h = create_toeplitz_hasher({.max_input_bits = 64});
    std::vector<std::uint8_t> seed(10), x(8), y(3), big(100), ybig(9);
    EXPECT_TRUE(h->hash(seed, x, y).ok);
    EXPECT_FALSE(h->hash(std::span(seed).first(9), x, y).ok);
    EXPECT_FALSE(h->hash(seed, {}, y).ok);
    EXPECT_FALSE(h->hash(seed, x, {}).ok);
    EXPECT_FALSE(h->hash(std::vector<std::uint8_t>(16), x, ybig).ok);  // m > n
    EXPECT_FALSE(h->hash(std::vector<std::uint8_t>(102), big, y).ok);  // n > max
    EXPECT_FALSE(toeplitz_hash_naive(std::span(seed).first(9), x, y).ok);
    EXPECT_THROW(create_toeplitz_hasher({.max_input_bits = 0}), std::invalid_argument);
    EXPECT_THROW(create_toeplitz_hasher({.max_input_bits = std::size_t{1} << 24}), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::keymgmt
