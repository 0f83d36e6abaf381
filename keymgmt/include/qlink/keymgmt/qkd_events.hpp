// The detection records QKD post-processing consumes: each end only has its own.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace qlink::keymgmt {

/// Decoy-state intensity classes, strongest first (Lim et al.: mu1 > mu2 + mu3, mu2 > mu3 >= 0).
enum class intensity_class : std::uint8_t { signal = 0, decoy = 1, vacuum = 2 };
inline constexpr std::size_t intensity_count = 3;

/// Z is the key basis, X the test basis (its bits are all disclosed for phase-error estimation).
enum class qkd_basis : std::uint8_t { z = 0, x = 1 };

/// One pulse as Alice prepared it.
struct alice_event {
    std::uint64_t pulse = 0;  ///< Pulse index in the block, shared time reference of both ends.
    intensity_class intensity = intensity_class::signal;
    qkd_basis basis = qkd_basis::z;
    std::uint8_t bit = 0;  ///< 0 or 1.
};

/// One detection at Bob (a double click already squashed to a random bit by the detector logic).
struct bob_event {
    std::uint64_t pulse = 0;
    qkd_basis basis = qkd_basis::z;
    std::uint8_t bit = 0;
};

/// Alice's view of one block. `pulses` is sorted by pulse index and holds at least every pulse Bob
/// detected (a simulator may hand over only those); `pulses_sent` counts every pulse sent per
/// intensity class (for the gains of the Lo-Ma-Chen estimate).
struct alice_block {
    std::span<const alice_event> pulses;
    std::array<std::uint64_t, intensity_count> pulses_sent{};
};

/// Bob's view of one block: his detections sorted by pulse index.
struct bob_block {
    std::span<const bob_event> detections;
};

}  // namespace qlink::keymgmt
