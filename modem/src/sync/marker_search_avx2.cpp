// AVX2 marker search: mismatch counts for 32 candidate positions at once, one byte lane each.
#include "sync/marker_search.hpp"

#include <immintrin.h>

namespace qlink::modem::detail {
namespace {

inline std::uint64_t advance(std::uint64_t w, const llr_t* soft, std::size_t from, std::size_t to) {
    if (to - from > 64) from = to - 64;
    for (std::size_t q = from; q < to; ++q) w = (w << 1) | (static_cast<std::uint8_t>(soft[q]) >> 7);
    return w;
}

}  // namespace

// Lane j of `acc` counts, for the window ending at soft[p + j], how many soft
// bits disagree with the marker: xor with 0x80 where the marker bit is 1 puts
// "disagree" in the sign bit. A 16-bit prefix is counted first; the rest only
// when some lane could still be a hit, which in random data is rare.
std::size_t marker_find_avx2(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker,
                             unsigned tolerance, bool inverted_too) {
    const unsigned bits = marker.bits;
    const std::size_t n = soft.size();
    const std::size_t lead = bits - 1;  // positions before this need bits from `window`
    if (n <= lead + 32 || bits < 16) return marker_find_generic(soft, window, marker, tolerance, inverted_too);

    const std::uint64_t w0 = window;
    const std::size_t head = marker_find_generic(soft.first(lead), window, marker, tolerance, inverted_too);
    if (head < lead) return head;

    __m256i flip[64];
    for (unsigned k = 0; k < bits; ++k)
        flip[k] = _mm256_set1_epi8(static_cast<char>(((marker.pattern >> (bits - 1 - k)) & 1) ? 0x80 : 0));
    const unsigned prefix = 16;
    const unsigned hi = bits - tolerance;
    // Lanes pass the prefix filter unless already beyond repair in both polarities.
    const __m256i pre_ok_max = _mm256_set1_epi8(static_cast<char>(tolerance + 1));
    const __m256i pre_inv_min = _mm256_set1_epi8(static_cast<char>(prefix > tolerance ? prefix - tolerance - 1 : 0));
    const __m256i tol_v = _mm256_set1_epi8(static_cast<char>(tolerance + 1));
    const __m256i hi_v = _mm256_set1_epi8(static_cast<char>(hi - 1));
    const __m256i zero = _mm256_setzero_si256();
    const llr_t* base = soft.data();

    std::size_t p = lead;
    for (; p + 32 <= n; p += 32) {
        const llr_t* start = base + p - lead;
        __m256i acc = zero;
        for (unsigned k = 0; k < prefix; ++k) {
            const __m256i v = _mm256_xor_si256(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(start + k)), flip[k]);
            acc = _mm256_sub_epi8(acc, _mm256_cmpgt_epi8(zero, v));
        }
        unsigned live = static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(pre_ok_max, acc)));
        if (inverted_too)
            live |= static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(acc, pre_inv_min)));
        if (live == 0) continue;
        for (unsigned k = prefix; k < bits; ++k) {
            const __m256i v = _mm256_xor_si256(
                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(start + k)), flip[k]);
            acc = _mm256_sub_epi8(acc, _mm256_cmpgt_epi8(zero, v));
        }
        unsigned hit = static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(tol_v, acc)));
        if (inverted_too) hit |= static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpgt_epi8(acc, hi_v)));
        if (hit != 0) {
            const std::size_t at = p + static_cast<std::size_t>(__builtin_ctz(hit));
            window = advance(w0, base, 0, at + 1);
            return at;
        }
    }
    std::uint64_t w = advance(w0, base, 0, p);
    const std::size_t tail = marker_find_generic(soft.subspan(p), w, marker, tolerance, inverted_too);
    window = w;
    return p + tail;
}

}  // namespace qlink::modem::detail
