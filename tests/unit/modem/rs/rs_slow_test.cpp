// Long randomised Reed-Solomon runs against libfec (label slow): many error patterns, miscorrection rate.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

extern "C" {
#include <fec.h>
}

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/reed_solomon.hpp"

using namespace qlink::modem;

namespace {

std::unique_ptr<rs_codec> make(unsigned e, unsigned fill) {
    rs_config c;
    c.e = e;
    c.basis = rs_basis::conventional;  // libfec's decode_rs_char speaks conventional basis for both E
    c.virtual_fill = fill;
    return create_rs_codec(c);
}

struct counts {
    unsigned trials = 0, decoded = 0, flagged = 0, miscorrected = 0, libfec_disagreed = 0;
};

counts run(unsigned e, unsigned fill, unsigned min_err, unsigned max_err, unsigned trials, std::uint64_t seed) {
    const auto codec = make(e, fill);
    void* peer = init_rs_char(8, 0x187, 128 - static_cast<int>(e), 11, 2 * static_cast<int>(e), static_cast<int>(fill));
    std::mt19937_64 rng(seed);
    counts c;
    std::vector<std::uint8_t> msg(codec->message_size()), cw(codec->codeblock_size());
    std::vector<std::size_t> pos(cw.size());
    for (unsigned t = 0; t < trials; ++t) {
        for (auto& b : msg) b = static_cast<std::uint8_t>(rng());
        codec->encode(msg, cw);
        auto rx = cw;
        for (std::size_t i = 0; i < pos.size(); ++i) pos[i] = i;
        std::shuffle(pos.begin(), pos.end(), rng);
        const unsigned nerr = min_err + static_cast<unsigned>(rng() % (max_err - min_err + 1));
        for (unsigned i = 0; i < nerr; ++i) rx[pos[i]] ^= static_cast<std::uint8_t>(1 + rng() % 255);
        auto fec = rx;
        const auto received = rx;
        const int fr = decode_rs_char(peer, fec.data(), nullptr, 0);
        const auto r = codec->decode(rx);
        ++c.trials;
        if (r.ok) {
            ++c.decoded;
            if (rx != cw) ++c.miscorrected;
            unsigned dist = 0;
            for (std::size_t i = 0; i < rx.size(); ++i) dist += rx[i] != received[i];
            EXPECT_LE(dist, e);
            EXPECT_EQ(dist, r.corrected);
        } else {
            ++c.flagged;
            EXPECT_EQ(rx, received);
        }
        if ((fr >= 0) != r.ok || (r.ok && fec != rx)) ++c.libfec_disagreed;
    }
    free_rs_char(peer);
    return c;
}

}  // namespace

TEST(rs_slow, up_to_e_errors_always_corrected) {
    for (unsigned e : {16u, 8u})
        for (unsigned fill : {0u, 60u}) {
            const auto c = run(e, fill, 1, e, 20000, 100 + e + fill);
            EXPECT_EQ(c.decoded, c.trials);
            EXPECT_EQ(c.miscorrected, 0u);
            EXPECT_EQ(c.libfec_disagreed, 0u);
        }
}

TEST(rs_slow, beyond_e_errors_miscorrection_rate) {
    for (unsigned e : {16u, 8u}) {
        const auto c = run(e, 0, e + 1, e + 1, 50000, 200 + e);
        std::printf("[ info ] RS E=%u, %u words with E+1 errors: %u flagged, %u miscorrected (rate %.2e), "
                    "%u disagreements with libfec\n", e, c.trials, c.flagged, c.miscorrected,
                    static_cast<double>(c.miscorrected) / c.trials, c.libfec_disagreed);
        EXPECT_EQ(c.decoded, c.miscorrected);  // beyond E a "success" can only be a miscorrection
        EXPECT_LT(c.miscorrected, c.trials / 100);
        EXPECT_EQ(c.libfec_disagreed, 0u);
    }
}
