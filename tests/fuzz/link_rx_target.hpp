// Receive-path fuzz entry point (frame parse -> SDLS verify -> packet extraction -> ARQ) and its seeds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace qlink::fuzz {

struct link_rx_stats {
    std::uint64_t frames = 0;
    std::uint64_t security_rejected = 0;
    std::uint64_t packets = 0;
    std::uint64_t arq_bytes_delivered = 0;
    std::uint64_t acks_accepted = 0;
};

// One input: byte 0 bit 0 selects SDLS verification (set) or clear frames, bit 1 recomputes
// each frame's FECF before parsing; the rest is cut into
// transfer frames of link_rx_frame_length bytes (a short tail is fed too). Never throws.
int link_rx_one_input(const std::uint8_t* data, std::size_t size, link_rx_stats* stats = nullptr);

inline constexpr std::size_t link_rx_frame_length = 256;

// Valid inputs (protected and clear) carrying ARQ data segments and acks in space packets,
// deterministic: the replay test mutates them and they seed libFuzzer.
std::vector<std::vector<std::uint8_t>> link_rx_seed_corpus();

} // namespace qlink::fuzz
