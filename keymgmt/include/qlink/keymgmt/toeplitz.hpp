// Privacy amplification: Toeplitz hashing, computed exactly as an NTT convolution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace qlink::keymgmt {

/// Bits are unpacked, one per byte (0 or 1). The m x n Toeplitz matrix is
///   T[i][j] = seed[i - j + n - 1],   i < m, j < n,   seed has n + m - 1 bits,
/// and the output is y = T x over GF(2). Entry (i, j) depends on i - j only, so y is the middle of
/// the integer convolution seed * x taken mod 2: the hasher computes that convolution with a
/// number-theoretic transform over p = 998244353, exact because every sum is <= n < p.
struct toeplitz_result {
    bool ok = false;
    std::string_view error;  ///< Static text when !ok.
};

class toeplitz_hasher {
public:
    struct config {
        std::size_t max_input_bits = std::size_t{1} << 20;  ///< Largest n; tables take ~32 n bytes.
    };
    virtual ~toeplitz_hasher() = default;
    /// y = T(seed) x. seed.size() == x.size() + y.size() - 1, 1 <= y.size() <= x.size() <= max.
    /// Allocates nothing (buffers sized at construction).
    virtual toeplitz_result hash(std::span<const std::uint8_t> seed, std::span<const std::uint8_t> x,
                                 std::span<std::uint8_t> y) = 0;
};

/// Throws std::invalid_argument when max_input_bits is 0 or too large for the transform.
std::unique_ptr<toeplitz_hasher> create_toeplitz_hasher(const toeplitz_hasher::config& cfg);

/// Reference: the matrix product bit by bit, O(n m). Same contract as hash().
toeplitz_result toeplitz_hash_naive(std::span<const std::uint8_t> seed, std::span<const std::uint8_t> x,
                                    std::span<std::uint8_t> y);

}  // namespace qlink::keymgmt
