// The generic hard-decision packing kernel and the run-time choice between variants.
#include "sync/hard_pack.hpp"

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/frame_sync.hpp"

#include <stdexcept>
#include <string>

namespace qlink::modem {
namespace detail {

void hard_pack_generic(std::span<const llr_t> soft, std::uint8_t* packed, bool inverted) {
    const std::size_t whole = soft.size() / 8;
    for (std::size_t b = 0; b < whole; ++b) {
        std::uint64_t w = 0;
        for (std::size_t k = 0; k < 8; ++k) {
            const llr_t v = soft[8 * b + k];
            w |= std::uint64_t{inverted ? v > 0 : v < 0} << (8 * k);
        }
        packed[b] = gather_msb_first(w);
    }
    if (whole * 8 == soft.size()) return;
    std::uint8_t last = 0;
    for (std::size_t i = whole * 8; i < soft.size(); ++i) {
        const llr_t v = soft[i];
        last |= static_cast<std::uint8_t>((inverted ? v > 0 : v < 0) << (7 - (i & 7)));
    }
    packed[whole] = last;
}

}  // namespace detail

namespace {

class hard_pack_generic_kernel final : public hard_decision_kernel {
public:
    void pack(std::span<const llr_t> soft, std::span<std::uint8_t> packed, bool inverted) const override {
        detail::hard_pack_generic(soft.first(std::min(soft.size(), 8 * packed.size())), packed.data(), inverted);
    }
    std::string_view name() const override { return "generic"; }
};

#if defined(__x86_64__)
class hard_pack_avx2_kernel final : public hard_decision_kernel {
public:
    void pack(std::span<const llr_t> soft, std::span<std::uint8_t> packed, bool inverted) const override {
        detail::hard_pack_avx2(soft.first(std::min(soft.size(), 8 * packed.size())), packed.data(), inverted);
    }
    std::string_view name() const override { return "avx2"; }
};
#endif

}  // namespace

std::unique_ptr<hard_decision_kernel> create_hard_decision_kernel(std::string_view isa_name) {
    const auto level = parse_isa(isa_name);
    if (!level)
        throw std::invalid_argument("hard decision kernel: unknown isa '" + std::string(isa_name) +
                                    "' (allowed: auto, generic, sse41, avx2, avx512)");
    if (!isa_supported(*level))
        throw std::invalid_argument("hard decision kernel: isa '" + std::string(isa_name) +
                                    "' is not supported by this CPU");
#if defined(__x86_64__)
    // No SSE4.1 or AVX-512 variant: AVX2 serves avx512 machines, sse41 gets the generic one.
    if (*level >= isa::avx2) return std::make_unique<hard_pack_avx2_kernel>();
#endif
    return std::make_unique<hard_pack_generic_kernel>();
}

}  // namespace qlink::modem
