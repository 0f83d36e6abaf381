// Tests for the CCSDS Reed-Solomon codec against libfec: encoding, correction, failure detection, interleaving.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

extern "C" {
#include <fec.h>
}

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"

using namespace qlink::modem;

namespace {

using bytes = std::vector<std::uint8_t>;

bytes random_bytes(std::mt19937_64& rng, std::size_t n) {
    bytes v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

// libfec's encoder/decoder for one codeword of our configuration (our symbols in our basis).
struct libfec_peer {
    unsigned e, fill;
    rs_basis basis;
    void* rs8 = nullptr;  // E = 8: init_rs_char with the CCSDS field and roots

    libfec_peer(unsigned e_, unsigned fill_, rs_basis b) : e(e_), fill(fill_), basis(b) {
        if (e == 8) rs8 = init_rs_char(8, 0x187, 120, 11, 16, static_cast<int>(fill));
    }
    ~libfec_peer() {
        if (rs8) free_rs_char(rs8);
    }
    libfec_peer(const libfec_peer&) = delete;
    libfec_peer& operator=(const libfec_peer&) = delete;

    bytes encode(const bytes& msg) const {
        bytes data = msg, parity(2 * e);
        if (e == 16 && basis == rs_basis::dual) {
            encode_rs_ccsds(data.data(), parity.data(), static_cast<int>(fill));
        } else if (e == 16) {
            encode_rs_8(data.data(), parity.data(), static_cast<int>(fill));
        } else {
            if (basis == rs_basis::dual)
                for (auto& b : data) b = Tal1tab[b];
            encode_rs_char(rs8, data.data(), parity.data());
            if (basis == rs_basis::dual)
                for (auto& b : parity) b = Taltab[b];
        }
        bytes cw = msg;
        cw.insert(cw.end(), parity.begin(), parity.end());
        return cw;
    }
    /// Decodes one (shortened) codeword in place; returns libfec's count or -1.
    int decode(bytes& cw) const {
        if (e == 16 && basis == rs_basis::dual) return decode_rs_ccsds(cw.data(), nullptr, 0, static_cast<int>(fill));
        if (e == 16) return decode_rs_8(cw.data(), nullptr, 0, static_cast<int>(fill));
        if (basis == rs_basis::dual)
            for (auto& b : cw) b = Tal1tab[b];
        const int r = decode_rs_char(rs8, cw.data(), nullptr, 0);
        if (basis == rs_basis::dual)
            for (auto& b : cw) b = Taltab[b];
        return r;
    }
};

std::vector<std::string> kernels() {
    std::vector<std::string> k{"generic"};
    if (isa_supported(isa::sse41)) k.push_back("sse41");
    if (isa_supported(isa::avx2)) k.push_back("avx2");
    return k;
}

class rs_kernel_test : public ::testing::TestWithParam<std::string> {
protected:
    std::unique_ptr<rs_codec> make(unsigned e, unsigned il, rs_basis b, unsigned fill) const {
        rs_config c;
        c.e = e;
        c.interleave = il;
        c.basis = b;
        c.virtual_fill = fill;
        c.isa = GetParam();
        return create_rs_codec(c);
    }
};

// Flips `count` distinct symbols of cw (positions in [0, cw.size())) by random nonzero values.
void add_errors(std::mt19937_64& rng, bytes& cw, unsigned count) {
    std::vector<std::size_t> pos(cw.size());
    for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = i;
    std::shuffle(pos.begin(), pos.end(), rng);
    for (unsigned i = 0; i < count; ++i) cw[pos[i]] ^= static_cast<std::uint8_t>(1 + rng() % 255);
}

}  // namespace

TEST_P(rs_kernel_test, encode_matches_libfec_bit_for_bit) {
    std::mt19937_64 rng(1);
    for (unsigned e : {16u, 8u})
        for (rs_basis b : {rs_basis::dual, rs_basis::conventional})
            for (unsigned fill : {0u, 1u, 33u, 128u, 254u - 2 * e})
                for (unsigned il : {1u, 2u, 3u, 5u, 8u}) {
                    const auto codec = make(e, il, b, fill);
                    const libfec_peer peer(e, fill, b);
                    const auto msg = random_bytes(rng, codec->message_size());
                    bytes block(codec->codeblock_size());
                    ASSERT_TRUE(codec->encode(msg, block));
                    const unsigned k = 255 - 2 * e - fill;
                    for (unsigned w = 0; w < il; ++w) {
                        bytes m(k);
                        for (unsigned t = 0; t < k; ++t) m[t] = msg[t * il + w];
                        const bytes ref = peer.encode(m);
                        for (unsigned t = 0; t < ref.size(); ++t)
                            ASSERT_EQ(block[t * il + w], ref[t]) << "e=" << e << " fill=" << fill << " I=" << il
                                                                 << " w=" << w << " t=" << t;
                    }
                    auto copy = block;
                    const auto r = codec->decode(copy);
                    EXPECT_TRUE(r.ok);
                    EXPECT_EQ(r.corrected, 0u);
                    EXPECT_EQ(copy, block);
                }
}

TEST_P(rs_kernel_test, corrects_every_pattern_of_up_to_e_errors) {
    std::mt19937_64 rng(2);
    for (unsigned e : {16u, 8u})
        for (rs_basis b : {rs_basis::dual, rs_basis::conventional})
            for (unsigned fill : {0u, 50u, 254u - 2 * e}) {
                const auto codec = make(e, 1, b, fill);
                const libfec_peer peer(e, fill, b);
                for (int trial = 0; trial < 300; ++trial) {
                    const auto msg = random_bytes(rng, codec->message_size());
                    bytes cw(codec->codeblock_size());
                    ASSERT_TRUE(codec->encode(msg, cw));
                    auto rx = cw;
                    const unsigned nerr = 1 + static_cast<unsigned>(trial % e);
                    add_errors(rng, rx, nerr);
                    auto fec = rx;
                    ASSERT_EQ(peer.decode(fec), static_cast<int>(nerr));
                    const auto r = codec->decode(rx);
                    ASSERT_TRUE(r.ok) << "e=" << e << " fill=" << fill << " nerr=" << nerr;
                    ASSERT_EQ(r.corrected, nerr);
                    ASSERT_EQ(r.per_codeword[0], static_cast<int>(nerr));
                    ASSERT_EQ(rx, cw);
                }
            }
}

TEST_P(rs_kernel_test, beyond_e_errors_are_flagged_never_falsely_corrected) {
    // Past E errors a bounded-distance decoder either detects failure (word left as received) or lands
    // on another codeword within E symbols (a miscorrection, possible in principle). What must never
    // happen is a "success" whose output is not a codeword within E of what was received.
    std::mt19937_64 rng(3);
    for (unsigned e : {16u, 8u})
        for (unsigned fill : {0u, 100u}) {
            const auto codec = make(e, 1, rs_basis::dual, fill);
            const libfec_peer peer(e, fill, rs_basis::dual);
            unsigned failures = 0, miscorrections = 0, agree = 0;
            const int trials = 400;
            for (int trial = 0; trial < trials; ++trial) {
                const auto msg = random_bytes(rng, codec->message_size());
                bytes cw(codec->codeblock_size());
                ASSERT_TRUE(codec->encode(msg, cw));
                auto rx = cw;
                add_errors(rng, rx, e + 1 + static_cast<unsigned>(trial % 8));
                const auto received = rx;
                auto fec = rx;
                const int fr = peer.decode(fec);
                const auto r = codec->decode(rx);
                if (!r.ok) {
                    ++failures;
                    ASSERT_EQ(r.per_codeword[0], -1);
                    ASSERT_EQ(r.failed_codewords, 1u);
                    ASSERT_EQ(rx, received);
                } else {
                    ++miscorrections;
                    // The output must be a codeword (re-encoding its message reproduces it) ...
                    bytes re(codec->codeblock_size());
                    ASSERT_TRUE(codec->encode(std::span<const std::uint8_t>(rx).first(codec->message_size()), re));
                    ASSERT_EQ(re, rx);
                    // ... within E symbols of the received word, as many as reported.
                    unsigned dist = 0;
                    for (std::size_t i = 0; i < rx.size(); ++i) dist += rx[i] != received[i];
                    ASSERT_LE(dist, e);
                    ASSERT_EQ(dist, r.corrected);
                }
                // libfec is a bounded-distance decoder too: a decodable word has one answer.
                if ((fr >= 0) == r.ok && (!r.ok || fec == rx)) ++agree;
            }
            std::printf("[ info ] RS E=%u fill=%u, %d words with E+1..E+8 errors: %u flagged, %u miscorrected, "
                        "%u/%d identical to libfec\n", e, fill, trials, failures, miscorrections, agree, trials);
            EXPECT_GT(failures, static_cast<unsigned>(trials * 9 / 10));
            if (fill == 0) {
                EXPECT_EQ(agree, static_cast<unsigned>(trials));
            }
        }
}

TEST_P(rs_kernel_test, interleaved_bursts_are_spread_over_codewords) {
    std::mt19937_64 rng(4);
    for (unsigned il : {1u, 2u, 3u, 4u, 5u, 8u})
        for (unsigned e : {16u, 8u}) {
            const auto codec = make(e, il, rs_basis::dual, 7);
            for (int trial = 0; trial < 20; ++trial) {
                const auto msg = random_bytes(rng, codec->message_size());
                bytes block(codec->codeblock_size());
                ASSERT_TRUE(codec->encode(msg, block));
                // A burst of E*I consecutive symbols puts exactly E errors into every codeword.
                auto rx = block;
                const std::size_t start = rng() % (block.size() - e * il + 1);
                for (std::size_t i = start; i < start + e * il; ++i) rx[i] ^= static_cast<std::uint8_t>(1 + rng() % 255);
                auto r = codec->decode(rx);
                ASSERT_TRUE(r.ok) << "I=" << il;
                ASSERT_EQ(r.corrected, e * il);
                for (unsigned w = 0; w < il; ++w) ASSERT_EQ(r.per_codeword[w], static_cast<int>(e));
                ASSERT_EQ(rx, block);
                // One symbol more overloads exactly one codeword; the others still decode.
                rx = block;
                const std::size_t s2 = rng() % (block.size() - e * il);
                for (std::size_t i = s2; i < s2 + e * il + 1; ++i) rx[i] ^= static_cast<std::uint8_t>(1 + rng() % 255);
                r = codec->decode(rx);
                const unsigned over = static_cast<unsigned>(s2 % il);  // codeword that got E+1
                for (unsigned w = 0; w < il; ++w) {
                    if (w == over) continue;
                    ASSERT_EQ(r.per_codeword[w], static_cast<int>(e)) << "I=" << il << " w=" << w;
                    for (std::size_t t = w; t < block.size(); t += il) ASSERT_EQ(rx[t], block[t]);
                }
                if (r.per_codeword[over] < 0) {
                    EXPECT_FALSE(r.ok);
                    EXPECT_EQ(r.failed_codewords, 1u);
                }
            }
        }
}

TEST_P(rs_kernel_test, same_result_as_generic_on_noise_and_errors) {
    if (GetParam() == "generic") GTEST_SKIP() << "reference itself";
    std::mt19937_64 rng(5);
    for (unsigned e : {16u, 8u})
        for (unsigned fill : {0u, 19u}) {
            const auto fast = make(e, 2, rs_basis::conventional, fill);
            rs_config gc;
            gc.e = e;
            gc.interleave = 2;
            gc.basis = rs_basis::conventional;
            gc.virtual_fill = fill;
            gc.isa = "generic";
            const auto ref = create_rs_codec(gc);
            for (int trial = 0; trial < 300; ++trial) {
                bytes block(fast->codeblock_size());
                if (trial % 3 == 0) {
                    block = random_bytes(rng, block.size());  // garbage
                } else {
                    const auto msg = random_bytes(rng, fast->message_size());
                    ASSERT_TRUE(fast->encode(msg, block));
                    add_errors(rng, block, static_cast<unsigned>(rng() % (3 * e)));
                }
                auto a = block, b = block;
                const auto ra = fast->decode(a);
                const auto rb = ref->decode(b);
                ASSERT_EQ(a, b);
                ASSERT_EQ(ra.ok, rb.ok);
                ASSERT_EQ(ra.corrected, rb.corrected);
                ASSERT_EQ(ra.failed_codewords, rb.failed_codewords);
                ASSERT_EQ(ra.per_codeword, rb.per_codeword);
            }
        }
}

TEST_P(rs_kernel_test, wrong_sizes_are_errors_not_crashes) {
    const auto codec = make(16, 4, rs_basis::dual, 10);
    EXPECT_EQ(codec->message_size(), 4u * (223 - 10));
    EXPECT_EQ(codec->codeblock_size(), 4u * (255 - 10));
    EXPECT_EQ(codec->kernel_name(), GetParam());
    bytes msg(codec->message_size()), block(codec->codeblock_size());
    EXPECT_FALSE(codec->encode({}, block));
    EXPECT_FALSE(codec->encode(msg, {}));
    EXPECT_FALSE(codec->encode(std::span<const std::uint8_t>(msg).first(msg.size() - 1), block));
    EXPECT_FALSE(codec->encode(msg, std::span<std::uint8_t>(block).first(block.size() - 1)));
    for (std::size_t n : {std::size_t{0}, block.size() - 1, block.size() + 1}) {
        bytes b(n, 0x5a);
        const auto r = codec->decode(b);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.failed_codewords, 4u);
        EXPECT_EQ(r.per_codeword[0], -1);
        EXPECT_EQ(b, bytes(n, 0x5a));
    }
}

INSTANTIATE_TEST_SUITE_P(all, rs_kernel_test, ::testing::ValuesIn(kernels()),
                         [](const auto& p) { return p.param; });

TEST(rs_config_check, bad_configuration_names_the_field) {
    auto expect_throw = [](rs_config c, const std::string& field) {
        try {
            (void)create_rs_codec(c);
            ADD_FAILURE() << "no exception for " << field;
        } catch (const std::invalid_argument& ex) {
            EXPECT_NE(std::string(ex.what()).find(field), std::string::npos) << ex.what();
        }
    };
    rs_config c;
    c.e = 10;
    expect_throw(c, "rs_config.e");
    c = {};
    c.interleave = 6;
    expect_throw(c, "rs_config.interleave");
    c.interleave = 0;
    expect_throw(c, "rs_config.interleave");
    c = {};
    c.virtual_fill = 223;
    expect_throw(c, "rs_config.virtual_fill");
    c = {};
    c.e = 8;
    c.virtual_fill = 239;
    expect_throw(c, "rs_config.virtual_fill");
    c = {};
    c.isa = "bogus";
    expect_throw(c, "rs_config.isa");
    if (!isa_supported(isa::avx512)) {
        c.isa = "avx512";
        expect_throw(c, "rs_config.isa");
    }
    c = {};
    c.isa = "generic";
    EXPECT_EQ(create_rs_codec(c)->kernel_name(), "generic");
    if (isa_supported(isa::sse41)) {
        c.isa = "sse41";
        EXPECT_EQ(create_rs_codec(c)->kernel_name(), "sse41");
    }
    c = {};
    c.e = 8;
    c.virtual_fill = 238;  // one message symbol left: still a valid code
    EXPECT_EQ(create_rs_codec(c)->message_size(), 1u);
}
