// CCSDS pseudo-randomizer: scalar reference (64-bit words) and run-time dispatch.
#include "qlink/modem/randomizer.hpp"

#include <algorithm>
#include <cstring>

#include "randomizer/randomizer_tables.hpp"

namespace qlink::modem {
namespace {

using detail::rand_bits;
using detail::rand_tables;

void randomize_generic(std::uint8_t* data, std::size_t n) {
    std::size_t o = 0, i = 0;
    // Eight bytes at a time through memcpy (no aliasing games); the table makes every window contiguous.
    for (; i + 8 <= n; i += 8) {
        std::uint64_t a = 0, b = 0;
        std::memcpy(&a, data + i, 8);
        std::memcpy(&b, rand_tables.bytes.data() + o, 8);
        a ^= b;
        std::memcpy(data + i, &a, 8);
        o += 8;
        if (o >= 255) o -= 255;
    }
    for (; i < n; ++i) {
        data[i] ^= rand_tables.bytes[o];
        if (++o == 255) o = 0;
    }
}

void randomize_llr_generic(std::int8_t* soft, std::size_t n) {
    // Runs of up to one period against the mask table, branch-free so the compiler can vectorise:
    // (v ^ m) - m negates where m = -1. -128 is not a legal LLR; clamping first keeps the flip in range.
    std::size_t i = 0;
    while (i < n) {
        const std::size_t run = std::min(n - i, rand_bits);
        const std::int8_t* mask = rand_tables.llr_mask.data();
        for (std::size_t k = 0; k < run; ++k) {
            const int v = std::max<int>(soft[i + k], -127);
            const int m = mask[k];
            soft[i + k] = static_cast<std::int8_t>((v ^ m) - m);
        }
        i += run;
    }
}

bool use_avx2(isa level) {
#if defined(__x86_64__)
    return level >= isa::avx2 && isa_supported(isa::avx2);
#else
    (void)level;
    return false;
#endif
}

}  // namespace

std::span<const std::uint8_t, ccsds_randomizer_period> ccsds_randomizer_sequence() {
    return std::span<const std::uint8_t, ccsds_randomizer_period>(rand_tables.bytes.data(), ccsds_randomizer_period);
}

void ccsds_randomize(std::span<std::uint8_t> frame, isa level) {
    if (frame.empty()) return;
#if defined(__x86_64__)
    if (use_avx2(level)) return detail::randomize_avx2(frame.data(), frame.size());
#endif
    randomize_generic(frame.data(), frame.size());
}

void ccsds_randomize_llr(std::span<llr_t> soft, isa level) {
    if (soft.empty()) return;
#if defined(__x86_64__)
    if (use_avx2(level)) return detail::randomize_llr_avx2(soft.data(), soft.size());
#endif
    randomize_llr_generic(soft.data(), soft.size());
}

void ccsds_randomize(std::span<std::uint8_t> frame) { ccsds_randomize(frame, best_isa()); }
void ccsds_randomize_llr(std::span<llr_t> soft) { ccsds_randomize_llr(soft, best_isa()); }

}  // namespace qlink::modem
