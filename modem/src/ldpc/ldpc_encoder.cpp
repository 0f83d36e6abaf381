// Systematic quasi-cyclic LDPC encoder; the generator is derived once from H in the ring GF(2)[x]/(x^z - 1).
#include "qlink/modem/ldpc.hpp"

#include <bit>
#include <stdexcept>

namespace qlink::modem {
namespace {

using poly = std::vector<std::uint64_t>;

// Arithmetic on z x z binary circulants, each represented by its first row as
// a polynomial (bit i = coefficient of x^i). The product of circulants is the
// product of their polynomials modulo x^z - 1, so a block matrix of circulants
// can be inverted like a matrix over a commutative ring.
class circulant_ring {
public:
    explicit circulant_ring(std::size_t z) : z_(z), words_((z + 63) / 64), dwords_((2 * z + 127) / 64) {}

    std::size_t words() const { return words_; }
    std::size_t dwords() const { return dwords_; }
    poly zero() const { return poly(words_, 0); }
    poly one() const { return monomial(0); }
    poly monomial(std::size_t t) const {
        poly p = zero();
        flip(p, t % z_);
        return p;
    }
    poly all_ones() const {
        poly p = zero();
        for (std::size_t i = 0; i < z_; ++i) flip(p, i);
        return p;
    }
    static void flip(poly& p, std::size_t i) { p[i / 64] ^= std::uint64_t{1} << (i % 64); }
    static bool bit(const poly& p, std::size_t i) { return (p[i / 64] >> (i % 64)) & 1; }
    static bool is_zero(const poly& p) {
        for (auto w : p)
            if (w) return false;
        return true;
    }

    // The row written twice (2z bits), so a cyclic shift is an extraction.
    poly doubled(const poly& p) const {
        poly d(dwords_, 0);
        for (std::size_t i = 0; i < z_; ++i)
            if (bit(p, i)) {
                flip(d, i);
                flip(d, i + z_);
            }
        return d;
    }

    // dst ^= x^t * p, with d = doubled(p): (x^t p)[i] = p[i - t] = d[i + z - t].
    void xor_shifted(std::uint64_t* dst, const std::uint64_t* d, std::size_t t) const {
        const std::size_t start = z_ - t;
        const std::size_t q0 = start / 64, r = start % 64;
        for (std::size_t w = 0; w < words_; ++w) {
            const std::size_t q = q0 + w;
            std::uint64_t v = d[q] >> r;
            if (r) v |= d[q + 1] << (64 - r);
            dst[w] ^= v;
        }
        if (z_ % 64) dst[words_ - 1] &= (std::uint64_t{1} << (z_ % 64)) - 1;
    }

    poly mul(const poly& a, const poly& b) const {
        poly out = zero();
        const poly d = doubled(b);
        for (std::size_t w = 0; w < words_; ++w)
            for (std::uint64_t m = a[w]; m; m &= m - 1)
                xor_shifted(out.data(), d.data(), w * 64 + static_cast<std::size_t>(std::countr_zero(m)));
        return out;
    }

    void add(poly& a, const poly& b) const {
        for (std::size_t w = 0; w < words_; ++w) a[w] ^= b[w];
    }

    // p(x^2): squaring is the Frobenius map in characteristic 2.
    poly square(const poly& p) const {
        poly out = zero();
        for (std::size_t i = 0; i < z_; ++i)
            if (bit(p, i)) flip(out, (2 * i) % z_);
        return out;
    }

    // Inverse via Frobenius powers: for z = 2^m, a^(2^m) = a(1) so
    // a^-1 = a^(2^m - 1); for odd z with 2^t = 1 mod z, a^(2^t) = a so
    // a^-1 = a^(2^t - 2). Both are products of repeated squares.
    std::optional<poly> inverse(const poly& a) const {
        poly result = one();
        poly f = a;
        if (std::has_single_bit(z_)) {
            for (std::size_t i = 1; i < z_; i <<= 1) {
                result = mul(result, f);
                f = square(f);
            }
        } else {
            std::size_t t = 1, v = 2 % z_;
            while (v != 1) {
                v = (v * 2) % z_;
                ++t;
            }
            f = square(f);
            for (std::size_t i = 1; i < t; ++i) {
                result = mul(result, f);
                f = square(f);
            }
        }
        if (mul(result, a) != one()) return std::nullopt;
        return result;
    }

private:
    std::size_t z_, words_, dwords_;
};

using poly_matrix = std::vector<std::vector<poly>>;

}  // namespace

ldpc_encoder::ldpc_encoder(ldpc_code_id id) : code_(id) {
    const std::size_t z = code_.z();
    const std::size_t kb = code_.info_blocks(), pb = code_.parity_blocks(), rb = code_.row_blocks();
    circulant_ring ring(z);
    words_ = ring.words();
    dwords_ = ring.dwords();

    // The codeword condition H c^T = 0 read as c H^T = 0 on row vectors of
    // circulant blocks: p Gp = u Gs with G[col][row] = transpose of H's
    // circulant, whose polynomial is h(x^-1).
    poly_matrix gs(kb, std::vector<poly>(rb, ring.zero()));
    poly_matrix gp(pb, std::vector<poly>(rb, ring.zero()));
    for (const auto& e : code_.edges()) {
        auto& target = e.col_block < kb ? gs[e.col_block][e.row_block] : gp[e.col_block - kb][e.row_block];
        circulant_ring::flip(target, (z - e.shift) % z);
    }

    poly_matrix ginv(rb, std::vector<poly>(pb, ring.zero()));  // right (pseudo-)inverse of gp
    if (code_.id() == ldpc_code_id::c2) {
        // Every C2 circulant has weight 2, so the whole matrix vanishes at
        // x = 1 and the 2 x 2 parity part is singular there (rank 1020). Away
        // from x = 1 it is invertible: invert det + J (J = all ones, the
        // idempotent of the x = 1 component), which acts as det^-1 there.
        if (pb != 2 || rb != 2) throw std::logic_error("ldpc: C2 layout");
        poly det = ring.mul(gp[0][0], gp[1][1]);
        ring.add(det, ring.mul(gp[0][1], gp[1][0]));
        ring.add(det, ring.all_ones());
        auto dinv = ring.inverse(det);
        if (!dinv) throw std::logic_error("ldpc: C2 parity part not invertible off x = 1");
        ginv[0][0] = ring.mul(gp[1][1], *dinv);
        ginv[0][1] = ring.mul(gp[0][1], *dinv);
        ginv[1][0] = ring.mul(gp[1][0], *dinv);
        ginv[1][1] = ring.mul(gp[0][0], *dinv);
    } else {
        // Gauss-Jordan over the (local, z = 2^m) ring: a pivot is a unit.
        if (pb != rb) throw std::logic_error("ldpc: AR4JA parity part not square");
        // Row-reduce [gp | I] to [I | gp^-1].
        poly_matrix a = gp;
        poly_matrix x(pb, std::vector<poly>(pb, ring.zero()));
        for (std::size_t i = 0; i < pb; ++i) x[i][i] = ring.one();
        for (std::size_t col = 0; col < pb; ++col) {
            std::size_t piv = pb;
            std::optional<poly> inv;
            for (std::size_t r = col; r < pb && piv == pb; ++r) {
                if (circulant_ring::is_zero(a[r][col])) continue;
                inv = ring.inverse(a[r][col]);
                if (inv) piv = r;
            }
            if (piv == pb) throw std::logic_error("ldpc: AR4JA parity part singular");
            std::swap(a[piv], a[col]);
            std::swap(x[piv], x[col]);
            for (std::size_t c = 0; c < pb; ++c) {
                a[col][c] = ring.mul(a[col][c], *inv);
                x[col][c] = ring.mul(x[col][c], *inv);
            }
            for (std::size_t r = 0; r < pb; ++r) {
                if (r == col || circulant_ring::is_zero(a[r][col])) continue;
                const poly f = a[r][col];
                for (std::size_t c = 0; c < pb; ++c) {
                    if (!circulant_ring::is_zero(a[col][c])) ring.add(a[r][c], ring.mul(f, a[col][c]));
                    if (!circulant_ring::is_zero(x[col][c])) ring.add(x[r][c], ring.mul(f, x[col][c]));
                }
            }
        }
        ginv = x;  // gp * ginv = I, so (u gs ginv) gp = u gs (commutative ring)
    }

    gen_.assign(kb * pb * words_, 0);
    gen2_.assign(kb * pb * dwords_, 0);
    const poly ones = ring.all_ones();
    for (std::size_t i = 0; i < kb; ++i)
        for (std::size_t j = 0; j < pb; ++j) {
            poly w = ring.zero();
            for (std::size_t r = 0; r < rb; ++r)
                if (!circulant_ring::is_zero(gs[i][r])) ring.add(w, ring.mul(gs[i][r], ginv[r][j]));
            // C2: W is unique only up to adding J (all-ones rows are C2
            // codewords of the unexpurgated code); the standard picks the
            // circulant whose upper right corner is 0 (CCSDS 130.1-G-2 8.3).
            if (code_.id() == ldpc_code_id::c2 && circulant_ring::bit(w, z - 1)) ring.add(w, ones);
            std::copy(w.begin(), w.end(), gen_.begin() + static_cast<std::ptrdiff_t>((i * pb + j) * words_));
            const poly d = ring.doubled(w);
            std::copy(d.begin(), d.end(), gen2_.begin() + static_cast<std::ptrdiff_t>((i * pb + j) * dwords_));
        }
    sys_.assign(code_.k_mother(), 0);
    parity_.assign(pb * words_, 0);
}

std::span<const std::uint64_t> ldpc_encoder::generator_row(std::size_t i, std::size_t j) const {
    const std::size_t pb = code_.parity_blocks();
    if (i >= code_.info_blocks() || j >= pb) return {};
    return {gen_.data() + (i * pb + j) * words_, words_};
}

void ldpc_encoder::encode_internal(std::span<const std::uint8_t> info) {
    const std::size_t z = code_.z(), pb = code_.parity_blocks(), fill = code_.fill_bits();
    std::fill(sys_.begin(), sys_.end(), std::uint8_t{0});
    unpack_bits(info, std::span<std::uint8_t>(sys_).subspan(fill, code_.k()));
    std::fill(parity_.begin(), parity_.end(), std::uint64_t{0});
    const std::size_t start_words = dwords_;
    for (std::size_t s = fill; s < sys_.size(); ++s) {
        if (!sys_[s]) continue;
        const std::size_t i = s / z, t = s % z;
        // (x^t w)[c] = w[c - t]: extract z bits from the doubled row at z - t.
        const std::size_t start = z - t, q0 = start / 64, r = start % 64;
        const std::uint64_t* rows = gen2_.data() + i * pb * start_words;
        for (std::size_t j = 0; j < pb; ++j) {
            const std::uint64_t* d = rows + j * start_words;
            std::uint64_t* dst = parity_.data() + j * words_;
            if (r == 0) {
                for (std::size_t w = 0; w < words_; ++w) dst[w] ^= d[q0 + w];
            } else {
                for (std::size_t w = 0; w < words_; ++w) dst[w] ^= (d[q0 + w] >> r) | (d[q0 + w + 1] << (64 - r));
            }
        }
    }
    if (z % 64)
        for (std::size_t j = 0; j < pb; ++j) parity_[j * words_ + words_ - 1] &= (std::uint64_t{1} << (z % 64)) - 1;
}

ldpc_encode_result ldpc_encoder::encode(std::span<const std::uint8_t> info, std::span<std::uint8_t> codeword) {
    if (info.size() != code_.k() / 8 || codeword.size() != code_.n() / 8) return {ldpc_status::bad_length};
    encode_internal(info);
    // Transmitted = information (bit-aligned copy) + transmitted parity + tail zeros.
    std::copy(info.begin(), info.end(), codeword.begin());
    const std::size_t z = code_.z();
    const std::size_t n_par = code_.n() - code_.k() - code_.tail_zero_bits();
    std::fill(codeword.begin() + static_cast<std::ptrdiff_t>(info.size()), codeword.end(), std::uint8_t{0});
    std::size_t pos = code_.k();
    for (std::size_t p = 0; p < n_par; ++p, ++pos) {
        const std::size_t j = p / z, t = p % z;
        const unsigned b = (parity_[j * words_ + t / 64] >> (t % 64)) & 1;
        codeword[pos >> 3] |= static_cast<std::uint8_t>(b << (7 - (pos & 7)));
    }
    return {};
}

ldpc_encode_result ldpc_encoder::encode_mother(std::span<const std::uint8_t> info, std::span<std::uint8_t> mother_bits) {
    if (info.size() != code_.k() / 8 || mother_bits.size() != code_.n_mother()) return {ldpc_status::bad_length};
    encode_internal(info);
    std::copy(sys_.begin(), sys_.end(), mother_bits.begin());
    const std::size_t z = code_.z();
    for (std::size_t p = 0; p < code_.parity_blocks() * z; ++p)
        mother_bits[sys_.size() + p] = (parity_[(p / z) * words_ + (p % z) / 64] >> ((p % z) % 64)) & 1;
    return {};
}

}  // namespace qlink::modem
