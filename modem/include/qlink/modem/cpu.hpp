// Run-time CPU feature detection and the ISA choice every SIMD factory uses.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

namespace qlink::modem {

/// Instruction-set levels a kernel may be built for, in increasing order.
enum class isa { generic, sse41, avx2, avx512 };

struct cpu_features {
    bool sse41 = false;
    bool avx2 = false;     ///< AVX2 + FMA + BMI2, with OS support for YMM state.
    bool avx512 = false;   ///< AVX-512 F/BW/VL/DQ, with OS support for ZMM state.
    bool pclmul = false;   ///< PCLMULQDQ (128-bit carry-less multiply).
    bool vpclmul = false;  ///< VPCLMULQDQ on YMM/ZMM.
    bool gfni = false;     ///< Galois-field new instructions.
};

/// Features of the CPU this process runs on (detected once, thread-safe).
const cpu_features& host_cpu();

/// True when `level` can execute on this CPU.
bool isa_supported(isa level);

/// The widest ISA this CPU runs. The environment variable QLINK_ISA
/// (generic|sse41|avx2|avx512) caps it, so a whole process can be forced onto
/// a narrower path for comparison or debugging.
isa best_isa();

/// Every ISA level this CPU runs, generic first.
std::vector<isa> supported_isas();

std::string_view to_string(isa level);

/// Parses "generic", "sse41", "avx2", "avx512"; "auto" gives best_isa().
/// Returns nullopt for anything else.
std::optional<isa> parse_isa(std::string_view name);

}  // namespace qlink::modem
