// CCSDS CRC-16/CRC-32: table-driven scalar reference and run-time kernel dispatch.
#include "qlink/modem/crc.hpp"

#include "qlink/modem/cpu.hpp"
#include "crc/crc_kernels.hpp"

namespace qlink::modem {
namespace detail {
namespace {

template <class P>
std::uint32_t update_table(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    static constexpr auto table = P::make_table();
    std::uint32_t c = crc & static_cast<std::uint32_t>(P::mask);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned idx = ((c >> (P::width - 8)) ^ data[i]) & 0xff;
        c = static_cast<std::uint32_t>(((std::uint64_t{c} << 8) ^ table[idx]) & P::mask);
    }
    return c;
}

}  // namespace

std::uint32_t crc16_update_generic(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return update_table<crc16_params>(crc, data, n);
}
std::uint32_t crc32_update_generic(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return update_table<crc32_params>(crc, data, n);
}

#if !defined(__x86_64__)
std::uint32_t crc16_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return crc16_update_generic(crc, data, n);
}
std::uint32_t crc32_update_pclmul(std::uint32_t crc, const std::uint8_t* data, std::size_t n) {
    return crc32_update_generic(crc, data, n);
}
#endif

}  // namespace detail

bool crc_kernel_supported(crc_kernel k) {
    switch (k) {
    case crc_kernel::generic: return true;
#if defined(__x86_64__)
    // The folding kernel also needs SSSE3/SSE4.1 for the byte reversal; QLINK_ISA=generic turns it off.
    case crc_kernel::pclmul: return host_cpu().pclmul && best_isa() >= isa::sse41;
#else
    case crc_kernel::pclmul: return false;
#endif
    }
    return false;
}

crc_kernel best_crc_kernel() {
    static const crc_kernel best = crc_kernel_supported(crc_kernel::pclmul) ? crc_kernel::pclmul : crc_kernel::generic;
    return best;
}

std::vector<crc_kernel> supported_crc_kernels() {
    std::vector<crc_kernel> out{crc_kernel::generic};
    if (crc_kernel_supported(crc_kernel::pclmul)) out.push_back(crc_kernel::pclmul);
    return out;
}

std::string_view to_string(crc_kernel k) {
    switch (k) {
    case crc_kernel::generic: return "generic";
    case crc_kernel::pclmul: return "pclmul";
    }
    return "unknown";
}

std::optional<crc_kernel> parse_crc_kernel(std::string_view name) {
    if (name == "auto") return best_crc_kernel();
    for (crc_kernel k : {crc_kernel::generic, crc_kernel::pclmul})
        if (name == to_string(k)) return crc_kernel_supported(k) ? std::optional<crc_kernel>{k} : std::nullopt;
    return std::nullopt;
}

std::uint16_t crc16_ccsds_update(std::uint16_t crc, std::span<const std::uint8_t> data, crc_kernel k) {
    if (k == crc_kernel::pclmul && crc_kernel_supported(k))
        return static_cast<std::uint16_t>(detail::crc16_update_pclmul(crc, data.data(), data.size()));
    return static_cast<std::uint16_t>(detail::crc16_update_generic(crc, data.data(), data.size()));
}

std::uint32_t crc32_ccsds_update(std::uint32_t crc, std::span<const std::uint8_t> data, crc_kernel k) {
    if (k == crc_kernel::pclmul && crc_kernel_supported(k))
        return detail::crc32_update_pclmul(crc, data.data(), data.size());
    return detail::crc32_update_generic(crc, data.data(), data.size());
}

std::uint16_t crc16_ccsds_update(std::uint16_t crc, std::span<const std::uint8_t> data) {
    return crc16_ccsds_update(crc, data, best_crc_kernel());
}
std::uint32_t crc32_ccsds_update(std::uint32_t crc, std::span<const std::uint8_t> data) {
    return crc32_ccsds_update(crc, data, best_crc_kernel());
}
namespace {

template <unsigned W, class Full>
std::optional<std::uint32_t> update_bits(std::uint32_t crc, std::span<const std::uint8_t> data, std::size_t nbits,
                                         std::uint32_t poly, Full full) {
    if (nbits > data.size() * 8) return std::nullopt;
    const std::size_t whole = nbits / 8;
    std::uint64_t c = full(crc, data.first(whole));
    const std::uint64_t top = std::uint64_t{1} << (W - 1), mask = (top << 1) - 1;
    const unsigned rest = static_cast<unsigned>(nbits % 8);
    for (unsigned k = 0; k < rest; ++k) {
        const bool in = (data[whole] >> (7 - k)) & 1;
        const bool fb = ((c & top) != 0) != in;
        c = (c << 1) & mask;
        if (fb) c ^= poly;
    }
    return static_cast<std::uint32_t>(c);
}

}  // namespace

std::optional<std::uint16_t> crc16_ccsds_update_bits(std::uint16_t crc, std::span<const std::uint8_t> data,
                                                     std::size_t nbits) {
    const auto r = update_bits<16>(crc, data, nbits, 0x1021, [](std::uint32_t c, std::span<const std::uint8_t> d) {
        return std::uint32_t{crc16_ccsds_update(static_cast<std::uint16_t>(c), d)};
    });
    if (!r) return std::nullopt;
    return static_cast<std::uint16_t>(*r);
}

std::optional<std::uint32_t> crc32_ccsds_update_bits(std::uint32_t crc, std::span<const std::uint8_t> data,
                                                     std::size_t nbits) {
    return update_bits<32>(crc, data, nbits, 0x20044009, [](std::uint32_t c, std::span<const std::uint8_t> d) {
        return crc32_ccsds_update(c, d);
    });
}

std::uint16_t crc16_ccsds(std::span<const std::uint8_t> data) { return crc16_ccsds_update(crc16_ccsds_init, data); }
std::uint32_t crc32_ccsds(std::span<const std::uint8_t> data) { return crc32_ccsds_update(crc32_ccsds_init, data); }

}  // namespace qlink::modem
