// AVX2 hard-decision packing: 32 int8 LLRs -> 4 bytes with one movemask.
#include "sync/hard_pack.hpp"

#include <immintrin.h>

#include <cstring>

namespace qlink::modem::detail {

void hard_pack_avx2(std::span<const llr_t> soft, std::uint8_t* packed, bool inverted) {
    // Reversing each 8-byte group puts the group's first LLR at the mask's highest bit of its byte.
    const __m256i rev = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,  //
                                         7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
    const __m256i zero = _mm256_setzero_si256();
    const std::size_t n = soft.size();
    const llr_t* src = soft.data();
    std::size_t i = 0;
    if (inverted) {
        for (; i + 32 <= n; i += 32) {
            const __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)), rev);
            const auto m = static_cast<std::uint32_t>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(v, zero)));
            std::memcpy(packed + i / 8, &m, 4);
        }
    } else {
        for (; i + 32 <= n; i += 32) {
            const __m256i v = _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)), rev);
            const auto m = static_cast<std::uint32_t>(_mm256_movemask_epi8(v));
            std::memcpy(packed + i / 8, &m, 4);
        }
    }
    if (i < n) hard_pack_generic(soft.subspan(i), packed + i / 8, inverted);
}

}  // namespace qlink::modem::detail
