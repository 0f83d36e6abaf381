// Deterministic replay of the receive-path fuzz target: seed corpus plus seeded mutations (gcc build).
#include "link_rx_target.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace {

using namespace qlink::fuzz;

TEST(link_rx_fuzz, seeds_reach_arq_through_verification)
{
    const auto corpus = link_rx_seed_corpus();
    ASSERT_GE(corpus.size(), 4u);
    for (const auto& in : corpus) {
        link_rx_stats st;
        link_rx_one_input(in.data(), in.size(), &st);
        EXPECT_GT(st.frames, 0u);
        EXPECT_EQ(st.security_rejected, 0u);
        EXPECT_GT(st.packets, 0u);
        EXPECT_GT(st.arq_bytes_delivered, 0u); // the seeds exercise the whole path, not just parsing
        EXPECT_GT(st.acks_accepted, 0u);
    }
    // Optional: write the corpus for libFuzzer (see docs/link.md, "ARQ and receive-path fuzzing").
    if (const char* dir = std::getenv("QLINK_FUZZ_WRITE_CORPUS")) {
        std::filesystem::create_directories(dir);
        for (std::size_t i = 0; i < corpus.size(); ++i) {
            std::ofstream f(std::string(dir) + "/seed" + std::to_string(i), std::ios::binary);
            f.write(reinterpret_cast<const char*>(corpus[i].data()), static_cast<std::streamsize>(corpus[i].size()));
        }
    }
}

TEST(link_rx_fuzz, tampered_protected_frame_is_rejected_and_not_delivered)
{
    const auto corpus = link_rx_seed_corpus();
    auto in = corpus.front();
    ASSERT_EQ(in[0] & 1, 1);
    // Flip one bit in the data field of the first frame (the target recomputes the FECF, bit 1 of
    // byte 0): GCM must refuse it.
    ASSERT_EQ(in[0] & 2, 2);
    in[1 + 40] ^= 0x10;
    link_rx_stats st;
    link_rx_one_input(in.data(), in.size(), &st);
    EXPECT_GT(st.security_rejected, 0u);
    link_rx_stats clean;
    link_rx_one_input(corpus.front().data(), corpus.front().size(), &clean);
    EXPECT_LT(st.arq_bytes_delivered, clean.arq_bytes_delivered);
}

TEST(link_rx_fuzz, seeded_mutations_never_crash)
{
    const auto corpus = link_rx_seed_corpus();
    std::mt19937_64 rng(20261129);
    link_rx_stats total;
    for (int iter = 0; iter < 20000; ++iter) {
        auto in = corpus[rng() % corpus.size()];
        const int edits = 1 + static_cast<int>(rng() % 8);
        for (int e = 0; e < edits && !in.empty(); ++e) {
            const std::size_t at = rng() % in.size();
            switch (rng() % 6) {
            case 0: in[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8)); break;
            case 1: in[at] = static_cast<std::uint8_t>(rng()); break;
            case 2: in.insert(in.begin() + static_cast<long>(at), static_cast<std::uint8_t>(rng())); break;
            case 3: in.erase(in.begin() + static_cast<long>(at)); break;
            case 4: in.resize(at + 1); break;
            default: {
                const auto& other = corpus[rng() % corpus.size()];
                const std::size_t from = rng() % other.size();
                const std::size_t n = std::min<std::size_t>(rng() % 300, other.size() - from);
                std::copy_n(other.begin() + static_cast<long>(from), std::min(n, in.size() - at),
                            in.begin() + static_cast<long>(at));
            }
            }
        }
        link_rx_one_input(in.data(), in.size(), &total);
    }
    // Both outcomes happen: mutations that break authentication, and ones (in clear mode or
    // outside the protected frames) whose packets still reach the ARQ parser.
    EXPECT_GT(total.security_rejected, 100u);
    EXPECT_GT(total.arq_bytes_delivered, 0u);
}

} // namespace
