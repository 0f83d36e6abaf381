// Private: the hard-decision packing kernel variants (generic reference, AVX2).
#pragma once

#include "qlink/modem/soft_bits.hpp"

#include <cstdint>
#include <span>

namespace qlink::modem::detail {

/// The reference: bit = (llr < 0), or (llr > 0) when `inverted` (the decision on the negated
/// value; an erasure stays 0 either way). Writes ceil(soft.size() / 8) bytes, MSB first.
void hard_pack_generic(std::span<const llr_t> soft, std::uint8_t* packed, bool inverted);

#if defined(__x86_64__)
/// 32 decisions per movemask: the bytes of each 8-group are reversed first so the mask comes out
/// MSB first, byte by byte.
void hard_pack_avx2(std::span<const llr_t> soft, std::uint8_t* packed, bool inverted);
#endif

}  // namespace qlink::modem::detail
