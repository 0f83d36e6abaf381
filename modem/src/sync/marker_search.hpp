// Private: the marker search kernel variants (generic reference, AVX2).
#pragma once

#include "qlink/modem/frame_sync.hpp"

namespace qlink::modem::detail {

/// The reference: one shift, xor and popcount per soft bit.
std::size_t marker_find_generic(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker,
                                unsigned tolerance, bool inverted_too);

#if defined(__x86_64__)
/// 32 soft bits per step: sign bits gathered with one movemask, then the
/// candidate windows are tested without a loop-carried dependency.
std::size_t marker_find_avx2(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker,
                             unsigned tolerance, bool inverted_too);
#endif

}  // namespace qlink::modem::detail
