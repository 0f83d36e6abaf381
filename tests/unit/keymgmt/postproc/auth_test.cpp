// Tests keymgmt/src/postproc/auth.cpp: GF(2^128) against OpenSSL's GHASH (via AES-GCM), the MAC and the key pool.
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <cstdint>
#include <random>
#include <vector>

#include "qlink/keymgmt/auth.hpp"

namespace qlink::keymgmt {
namespace {

// Shift-and-add reference multiplication, written independently of the 4-bit table version.
gf128 naive_mul(gf128 a, gf128 b) {
    gf128 r{};
    for (int i = 0; i < 128; ++i) {
        const bool bit = i < 64 ? (a.lo >> i) & 1u : (a.hi >> (i - 64)) & 1u;
        if (bit) {
            r.lo ^= b.lo;
            r.hi ^= b.hi;
        }
        const bool top = b.hi >> 63;
        b.hi = (b.hi << 1) | (b.lo >> 63);
        b.lo <<= 1;
        if (top) b.lo ^= 0x87;
    }
    return r;
}

// GCM writes x^0 as the most significant bit of byte 0; ours is the least significant bit.
gf128 from_gcm(const unsigned char* b) {
    gf128 r{};
    for (int byte = 0; byte < 16; ++byte) {
        for (int bit = 0; bit < 8; ++bit) {
            if ((b[byte] >> (7 - bit)) & 1u) {
                const int d = byte * 8 + bit;
                if (d < 64) r.lo |= std::uint64_t{1} << d; else r.hi |= std::uint64_t{1} << (d - 64);
            }
        }
    }
    return r;
}

TEST(gf128, table_multiply_equals_shift_and_add) {
    std::mt19937_64 rng(3);
    for (int i = 0; i < 2000; ++i) {
        const gf128 a{rng(), rng()}, b{rng(), rng()};
        ASSERT_EQ(gf128_mul(a, b), naive_mul(a, b));
    }
    const gf128 one{1, 0};
    const gf128 a{rng(), rng()};
    EXPECT_EQ(gf128_mul(a, one), a);
    // x^127 * x = x^128 = x^7 + x^2 + x + 1
    EXPECT_EQ(gf128_mul({0, std::uint64_t{1} << 63}, {2, 0}), (gf128{0x87, 0}));
}

TEST(gf128, same_field_as_openssl_ghash) {
    // GMAC over one 16-byte AAD block A with AES key K and 96-bit IV:
    //   tag = (A H^2 + L H) + E_K(IV || 1), H = E_K(0), L = length block (128 bits of AAD).
    std::mt19937_64 rng(5);
    for (int trial = 0; trial < 20; ++trial) {
        unsigned char key[16], iv[12], aad[16], tag[16], h_raw[16], j0[16], zero[16] = {};
        for (auto& c : key) c = static_cast<unsigned char>(rng());
        for (auto& c : iv) c = static_cast<unsigned char>(rng());
        for (auto& c : aad) c = static_cast<unsigned char>(rng());
        int len = 0;
        EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
        ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_128_gcm(), nullptr, key, iv), 1);
        ASSERT_EQ(EVP_EncryptUpdate(ctx, nullptr, &len, aad, 16), 1);
        ASSERT_EQ(EVP_EncryptFinal_ex(ctx, nullptr, &len), 1);
        ASSERT_EQ(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
        ASSERT_EQ(EVP_EncryptInit_ex(ctx, EVP_aes_128_ecb(), nullptr, key, nullptr), 1);
        EVP_CIPHER_CTX_set_padding(ctx, 0);
        ASSERT_EQ(EVP_EncryptUpdate(ctx, h_raw, &len, zero, 16), 1);
        unsigned char j0_in[16] = {};
        std::copy(iv, iv + 12, j0_in);
        j0_in[15] = 1;
        ASSERT_EQ(EVP_EncryptUpdate(ctx, j0, &len, j0_in, 16), 1);
        EVP_CIPHER_CTX_free(ctx);
        unsigned char ghash[16], lblock[16] = {};
        for (int i = 0; i < 16; ++i) ghash[i] = tag[i] ^ j0[i];
        lblock[7] = 128;  // len(A) = 128 bits, big endian, then len(C) = 0
        const gf128 h = from_gcm(h_raw), a = from_gcm(aad), l = from_gcm(lblock);
        const gf128 ah2 = gf128_mul(gf128_mul(a, h), h), lh = gf128_mul(l, h);
        EXPECT_EQ((gf128{ah2.lo ^ lh.lo, ah2.hi ^ lh.hi}), from_gcm(ghash));
    }
}

TEST(gf128, poly_hash_is_the_documented_polynomial) {
    std::mt19937_64 rng(9);
    const gf128 k{rng(), rng()};
    std::vector<std::uint8_t> msg(20);
    for (auto& c : msg) c = static_cast<std::uint8_t>(rng());
    gf128 m1{}, m2{};
    for (int i = 0; i < 8; ++i) {
        m1.lo |= std::uint64_t{msg[i]} << (8 * i);
        m1.hi |= std::uint64_t{msg[8 + i]} << (8 * i);
    }
    for (int i = 0; i < 4; ++i) m2.lo |= std::uint64_t{msg[16 + i]} << (8 * i);
    const gf128 len{160, 0};
    const gf128 k2 = naive_mul(k, k), k3 = naive_mul(k2, k);
    const gf128 a = naive_mul(m1, k3), b = naive_mul(m2, k2), c = naive_mul(len, k);
    EXPECT_EQ(poly_hash(k, msg), (gf128{a.lo ^ b.lo ^ c.lo, a.hi ^ b.hi ^ c.hi}));
    // Trailing zero bytes change the hash (length block).
    auto longer = msg;
    longer.push_back(0);
    EXPECT_NE(poly_hash(k, msg), poly_hash(k, longer));
}

std::vector<std::uint8_t> psk(std::size_t pads, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> k(16 + 16 * pads);
    for (auto& c : k) c = static_cast<std::uint8_t>(rng());
    return k;
}

TEST(auth_pool, sign_verify_tamper_replay) {
    const auto k = psk(8, 1);
    auth_key_pool alice(k), bob(k);
    EXPECT_EQ(alice.pads_available(), 8u);
    std::vector<std::uint8_t> m = {1, 2, 3, 4, 5};
    gf128_block tag{};
    std::uint64_t idx = 99;
    ASSERT_TRUE(alice.sign(m, tag, idx));
    EXPECT_EQ(idx, 0u);
    EXPECT_TRUE(bob.verify(m, tag, idx));
    EXPECT_FALSE(bob.verify(m, tag, idx));  // replay: pad 0 is gone

    ASSERT_TRUE(alice.sign(m, tag, idx));
    auto bad = m;
    bad[2] ^= 0x10;
    EXPECT_FALSE(bob.verify(bad, tag, idx));  // tampered, and the pad is spent
    EXPECT_EQ(bob.next_pad_index(), 2u);

    // Skipping ahead discards the pads in between.
    alice.sign(m, tag, idx);
    alice.sign(m, tag, idx);
    EXPECT_EQ(idx, 3u);
    EXPECT_TRUE(bob.verify(m, tag, idx));
    EXPECT_EQ(bob.pads_available(), 4u);
    EXPECT_FALSE(bob.verify(m, tag, 1000));  // beyond the pool
    EXPECT_EQ(bob.pads_consumed(), 4u);
}

TEST(auth_pool, runs_dry_and_replenishes) {
    const auto k = psk(1, 2);
    auth_key_pool a(k), b(k);
    std::vector<std::uint8_t> m(100, 0xAB);
    gf128_block tag{};
    std::uint64_t idx = 0;
    ASSERT_TRUE(a.sign(m, tag, idx));
    EXPECT_FALSE(a.sign(m, tag, idx));
    const auto more = psk(2, 3);
    EXPECT_EQ(a.replenish(std::span(more).first(40)), 2u);  // whole pads only
    EXPECT_EQ(b.replenish(std::span(more).first(40)), 2u);
    ASSERT_TRUE(a.sign(m, tag, idx));
    EXPECT_EQ(idx, 1u);
    EXPECT_TRUE(b.verify(m, tag, idx));
    EXPECT_THROW(auth_key_pool(std::span(k).first(15)), std::invalid_argument);
}

}  // namespace
}  // namespace qlink::keymgmt
