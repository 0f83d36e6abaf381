// CCSDS frame check sequences: CRC-16-CCITT (TM/AOS FECF) and the CCSDS 142.0 CRC-32.
//
// Both are "MSB first, no reflection, preset all ones, no final xor":
//   CRC-16: g(x) = x^16 + x^12 + x^5 + 1          (0x1021),     check("123456789") = 0x29B1
//   CRC-32: g(x) = x^32 + x^29 + x^18 + x^14 + x^3 + 1 (0x20044009), check("123456789") = 0x4FD94EA8
// (the CRC-32 conventions follow the CCSDS FECF encoding procedure with L(X) = all ones;
//  docs/parts/rs_crc.md says how they were derived and what is checked against which peer).
// Because there is no final xor, the CRC value is the register state: feeding it back into
// the *_update functions continues a computation, so crc(a || b) == update(crc(a), b).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

namespace qlink::modem {

/// Implementations of the CRC kernels. `generic` is the table-driven scalar reference;
/// `pclmul` folds 128-bit blocks with PCLMULQDQ (table-free).
enum class crc_kernel { generic, pclmul };

inline constexpr std::uint16_t crc16_ccsds_init = 0xFFFF;
inline constexpr std::uint32_t crc32_ccsds_init = 0xFFFFFFFF;

/// The fastest kernel this CPU runs (respects the QLINK_ISA cap: generic disables folding).
crc_kernel best_crc_kernel();
/// Every kernel this CPU runs, generic first.
std::vector<crc_kernel> supported_crc_kernels();
bool crc_kernel_supported(crc_kernel k);
std::string_view to_string(crc_kernel k);
/// "auto" | "generic" | "pclmul"; nullopt for anything else or a kernel this CPU lacks.
std::optional<crc_kernel> parse_crc_kernel(std::string_view name);

/// CRC over `data`, dispatched to best_crc_kernel(). Empty data gives the preset value.
std::uint16_t crc16_ccsds(std::span<const std::uint8_t> data);
std::uint32_t crc32_ccsds(std::span<const std::uint8_t> data);

/// Incremental form: continue from a previous CRC value (start with the *_init constant).
std::uint16_t crc16_ccsds_update(std::uint16_t crc, std::span<const std::uint8_t> data);
std::uint32_t crc32_ccsds_update(std::uint32_t crc, std::span<const std::uint8_t> data);

/// Bit-granular form for CCSDS 142.0 information blocks, whose lengths (e.g. k = 5006 bits) are not
/// whole bytes: continues `crc` over the first `nbits` bits of `data`, MSB first. nullopt when `data`
/// holds fewer than nbits bits.
std::optional<std::uint16_t> crc16_ccsds_update_bits(std::uint16_t crc, std::span<const std::uint8_t> data,
                                                     std::size_t nbits);
std::optional<std::uint32_t> crc32_ccsds_update_bits(std::uint32_t crc, std::span<const std::uint8_t> data,
                                                     std::size_t nbits);

/// Explicit-kernel entry points (tests, benchmarks). An unsupported kernel falls back to generic.
std::uint16_t crc16_ccsds_update(std::uint16_t crc, std::span<const std::uint8_t> data, crc_kernel k);
std::uint32_t crc32_ccsds_update(std::uint32_t crc, std::span<const std::uint8_t> data, crc_kernel k);

}  // namespace qlink::modem
