// The generic marker search kernel and the run-time choice between variants.
#include "sync/marker_search.hpp"

#include "qlink/modem/cpu.hpp"

#include <bit>
#include <stdexcept>
#include <string>

namespace qlink::modem {
namespace detail {

std::size_t marker_find_generic(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker,
                                unsigned tolerance, bool inverted_too) {
    const std::uint64_t mask = marker.bits >= 64 ? ~0ull : ((1ull << marker.bits) - 1);
    const std::uint64_t m = marker.pattern & mask;
    const unsigned hi = marker.bits - tolerance;
    std::uint64_t w = window;
    for (std::size_t i = 0; i < soft.size(); ++i) {
        w = (w << 1) | (static_cast<std::uint8_t>(soft[i]) >> 7);
        const auto d = static_cast<unsigned>(std::popcount((w ^ m) & mask));
        if (d <= tolerance || (inverted_too && d >= hi)) {
            window = w;
            return i;
        }
    }
    window = w;
    return soft.size();
}

}  // namespace detail

namespace {

class marker_search_generic final : public marker_search_kernel {
public:
    std::size_t find(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker, unsigned tolerance,
                     bool inverted_too) const override {
        return detail::marker_find_generic(soft, window, marker, tolerance, inverted_too);
    }
};

#if defined(__x86_64__)
class marker_search_avx2 final : public marker_search_kernel {
public:
    std::size_t find(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker, unsigned tolerance,
                     bool inverted_too) const override {
        return detail::marker_find_avx2(soft, window, marker, tolerance, inverted_too);
    }
};
#endif

}  // namespace

std::unique_ptr<marker_search_kernel> create_marker_search_kernel(std::string_view isa_name) {
    const auto level = parse_isa(isa_name);
    if (!level)
        throw std::invalid_argument("marker search: unknown isa '" + std::string(isa_name) +
                                    "' (allowed: auto, generic, sse41, avx2, avx512)");
    if (!isa_supported(*level))
        throw std::invalid_argument("marker search: isa '" + std::string(isa_name) + "' is not supported by this CPU");
#if defined(__x86_64__)
    // No wider variant exists: the AVX2 one serves avx512 machines too.
    if (*level >= isa::avx2) return std::make_unique<marker_search_avx2>();
#endif
    return std::make_unique<marker_search_generic>();
}

}  // namespace qlink::modem
