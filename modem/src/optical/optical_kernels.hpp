// Private: the hot loops of the optical demodulator, one table per ISA.
#pragma once

#include <cstddef>
#include <cstdint>

namespace qlink::modem::detail {

struct optical_kernels {
    /// out[i] = round(clamp(c0 - counts[i] * c1, -127, 127)), float arithmetic in this order.
    void (*ook_poisson)(const std::uint16_t* counts, std::size_t n, float c0, float c1, std::int8_t* out);
    /// For each of `nsym` PPM symbols (stride slots apart, m data slots each)
    /// and each bit p (weight 2^p of the slot index): the largest count among
    /// slots with that bit 0 (max0[sym * bits + bits - 1 - p], i.e. in the
    /// MSB-first order of the LLRs) and 1 (max1[...]).
    void (*ppm_maxima)(const std::uint16_t* counts, std::size_t nsym, unsigned m, unsigned bits, std::size_t stride,
                       std::uint16_t* max0, std::uint16_t* max1);
    /// out[i] = round(clamp((max0[i] - max1[i]) * c1, -127, 127)), float arithmetic.
    void (*ppm_llr)(const std::uint16_t* max0, const std::uint16_t* max1, std::size_t n, float c1, std::int8_t* out);
};

const optical_kernels& optical_kernels_generic();
const optical_kernels& optical_kernels_avx2();

}  // namespace qlink::modem::detail
