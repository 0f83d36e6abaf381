// The channel models' random engine: xoshiro256++ seeded through splitmix64 from a 64-bit seed.
#pragma once

#include <cstdint>
#include <limits>

namespace qlink::sim {

/// xoshiro256++ (Blackman & Vigna 2019): a UniformRandomBitGenerator several times faster than
/// std::mt19937_64, which matters when a pass draws 1e7 Gaussians. Each model owns one, seeded
/// from its config, so runs are reproducible and models do not share state.
class channel_rng {
public:
    using result_type = std::uint64_t;

    explicit channel_rng(std::uint64_t seed = 1) {
        // splitmix64 spreads any seed (0 included) over the 256-bit state.
        for (auto& w : s_) {
            seed += 0x9e3779b97f4a7c15ull;
            std::uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            w = z ^ (z >> 31);
        }
    }

    static constexpr result_type min() { return 0; }
    static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

    result_type operator()() {
        const std::uint64_t result = rotl(s_[0] + s_[3], 23) + s_[0];
        const std::uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }

    /// Uniform double in (0, 1): never 0, so log() of it is finite.
    double uniform() { return (static_cast<double>((*this)() >> 11) + 0.5) * 0x1.0p-53; }

private:
    static constexpr std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    std::uint64_t s_[4];
};

}  // namespace qlink::sim
