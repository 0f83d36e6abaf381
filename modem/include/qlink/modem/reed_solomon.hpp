// CCSDS Reed-Solomon (255,255-2E), E = 16 or 8, interleave depth I, shortening, dual/conventional basis.
//
// Code (CCSDS 131.0-B §4): field F(x) = x^8+x^7+x^2+x+1, generator roots alpha^(11 j) for
// j = 128-E .. 127+E. A codeblock is I codewords symbol-interleaved: codeblock byte k belongs to
// codeword k mod I. Shortening removes `virtual_fill` leading (zero) symbols from every codeword;
// they are neither sent nor stored.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace qlink::modem {

enum class rs_basis { dual, conventional };

struct rs_config {
    unsigned e = 16;               ///< correctable symbols per codeword: 16 or 8
    unsigned interleave = 1;       ///< I in {1, 2, 3, 4, 5, 8}
    rs_basis basis = rs_basis::dual;
    unsigned virtual_fill = 0;     ///< shortening per codeword, 0 .. 254-2E
    std::string isa = "auto";      ///< auto | generic | sse41 | avx2 | avx512
};

inline constexpr std::size_t rs_max_interleave = 8;

struct rs_decode_result {
    bool ok = true;                ///< every codeword decoded (no failures, input sizes right)
    unsigned corrected = 0;        ///< symbols corrected over the whole codeblock
    unsigned failed_codewords = 0; ///< codewords detected uncorrectable (left as received)
    /// Per codeword (index < interleave): symbols corrected, or -1 when uncorrectable.
    std::array<std::int16_t, rs_max_interleave> per_codeword{};
};

class rs_codec {
public:
    virtual ~rs_codec() = default;
    /// I * (255 - 2E - fill)
    virtual std::size_t message_size() const = 0;
    /// I * (255 - fill)
    virtual std::size_t codeblock_size() const = 0;
    /// Writes message followed by interleaved parity. False (nothing written) on wrong sizes.
    virtual bool encode(std::span<const std::uint8_t> message, std::span<std::uint8_t> codeblock) const = 0;
    /// Corrects in place. Wrong size: ok = false, failed_codewords = interleave, nothing touched.
    /// An uncorrectable codeword is left exactly as received.
    virtual rs_decode_result decode(std::span<std::uint8_t> codeblock) const = 0;
    /// The kernel actually used ("generic", "sse41", "avx2").
    virtual std::string_view kernel_name() const = 0;
};

/// Throws std::invalid_argument naming the bad field (e, interleave, virtual_fill, isa).
std::unique_ptr<rs_codec> create_rs_codec(const rs_config& config);

}  // namespace qlink::modem
