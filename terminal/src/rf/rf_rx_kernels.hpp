// The receive chain's SIMD kernels (carrier rotation, block power, polyphase matched-filter dot product) and their run-time choice.
#pragma once

#include "qlink/modem/cpu.hpp"

#include <complex>
#include <cstddef>
#include <optional>
#include <string_view>

namespace qlink::terminal::detail {

using cf32 = std::complex<float>;

// Every kernel fixes its floating-point evaluation order (lanes, then a stated
// reduction tree), and the files are compiled with -ffp-contract=off, so each
// ISA variant returns the generic result bit for bit. The receiver built on
// them is then bit-identical across ISAs, which the tests check.

/// Sum of |x|^2 over n samples, n a multiple of 4. Order: 8 float lanes
/// (re0, im0, ..., re3, im3) accumulate x^2 over groups of 4 samples; the
/// lanes are then added as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)).
using power_fn = float (*)(const cf32* x, std::size_t n);

/// out[i] = in[i] * p[i % 4], with p (4 phasors, one per lane) multiplied by
/// `step` after every group of 4 samples: a carrier rotation whose phasors
/// the caller renormalises per block. n a multiple of 4; in and out may alias.
/// Products are (a.re b.re - a.im b.im, a.im b.re + a.re b.im). `p` is updated.
using rotate_fn = void (*)(const cf32* in, cf32* out, std::size_t n, cf32* p, cf32 step);

/// sum_a x[a] * taps[a] for complex x and real taps, with the taps stored
/// twice each (taps2[2a] = taps2[2a + 1] = taps[a]) and `floats` = 2 * number
/// of taps, a multiple of 16. Order: two 8-lane accumulators take alternate
/// groups of 8 floats, are added lane-wise, then re = (l0 + l4) + (l2 + l6),
/// im = (l1 + l5) + (l3 + l7).
using dot_fn = cf32 (*)(const cf32* x, const float* taps2, std::size_t floats);

struct rx_kernels {
    modem::isa level;
    power_fn power;
    rotate_fn rotate;
    dot_fn dot;
};

/// The kernels for `level`; nullopt when this build or CPU cannot run it.
std::optional<rx_kernels> rx_kernels_for(modem::isa level);

/// Resolves an override string (auto|generic|sse41|avx2|avx512) to the widest
/// kernel set at or below it that this CPU runs; nullopt for an unknown name.
std::optional<rx_kernels> rx_kernels_for(std::string_view isa_name);

rx_kernels rx_kernels_generic();
#if defined(__x86_64__)
rx_kernels rx_kernels_avx2();
#endif

}  // namespace qlink::terminal::detail
