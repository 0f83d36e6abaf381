// Convolutional code tables (generators, puncturing patterns) and the encoder.
#include "conv_tables.hpp"

#include "qlink/modem/conv.hpp"

#include <bit>

namespace qlink::modem {
namespace conv_detail {

namespace {
// CCSDS 131.0-B table 3-2, one entry per info bit of the period: which of the
// (first, second) symbols is sent.
constexpr puncture_column p12[] = {{true, true}};
constexpr puncture_column p23[] = {{true, true}, {false, true}};
constexpr puncture_column p34[] = {{true, true}, {false, true}, {true, false}};
constexpr puncture_column p56[] = {{true, true}, {false, true}, {true, false}, {false, true}, {true, false}};
constexpr puncture_column p78[] = {{true, true},  {false, true}, {false, true}, {false, true},
                                   {true, false}, {false, true}, {true, false}};
// The same patterns for the swapped emission order (G2 first): the table
// keeps selecting G1 / G2 symbols, only their order on the wire changes, so
// the punctured code stays the CCSDS one (puncturing the swapped pair with the
// unswapped table gives a catastrophic code at 7/8).
constexpr puncture_column s23[] = {{true, true}, {true, false}};
constexpr puncture_column s34[] = {{true, true}, {true, false}, {false, true}};
constexpr puncture_column s56[] = {{true, true}, {true, false}, {false, true}, {true, false}, {false, true}};
constexpr puncture_column s78[] = {{true, true},  {true, false}, {true, false}, {true, false},
                                   {false, true}, {true, false}, {false, true}};
}  // namespace

puncture_pattern pattern_of(const conv_code& code) {
    auto make = [](std::span<const puncture_column> cols) {
        puncture_pattern p;
        p.columns = cols;
        std::uint32_t off = 0;
        for (std::size_t i = 0; i < cols.size(); ++i) {
            p.offset[i] = off;
            off += (cols[i].first ? 1u : 0u) + (cols[i].second ? 1u : 0u);
        }
        p.symbols_per_period = off;
        return p;
    };
    const bool sw = code.convention == conv_convention::swapped;
    switch (code.rate) {
    case conv_rate::r1_2: return make(p12);
    case conv_rate::r2_3: return make(sw ? std::span<const puncture_column>(s23) : p23);
    case conv_rate::r3_4: return make(sw ? std::span<const puncture_column>(s34) : p34);
    case conv_rate::r5_6: return make(sw ? std::span<const puncture_column>(s56) : p56);
    case conv_rate::r7_8: return make(sw ? std::span<const puncture_column>(s78) : p78);
    }
    return make(p12);
}

generators generators_of(const conv_code& code) {
    // Punctured CCSDS codes carry no inversion (131.0-B 3.4), the rate-1/2 code inverts G2.
    switch (code.convention) {
    case conv_convention::ccsds:
        return {poly_g1, poly_g2, 0, code.rate == conv_rate::r1_2 ? 1u : 0u};
    case conv_convention::uninverted: return {poly_g1, poly_g2, 0, 0};
    case conv_convention::swapped: return {poly_g2, poly_g1, 0, 0};
    }
    return {poly_g1, poly_g2, 0, 0};
}

}  // namespace conv_detail

using namespace conv_detail;

std::size_t conv_coded_bits(const conv_code& code, std::size_t info_bits) {
    const puncture_pattern p = pattern_of(code);
    const std::size_t period = p.columns.size();
    std::size_t coded = (info_bits / period) * p.symbols_per_period;
    const std::size_t rest = info_bits % period;
    if (rest) coded += p.offset[rest];
    return coded;
}

std::size_t conv_info_bits(const conv_code& code, std::size_t coded_bits) {
    const puncture_pattern p = pattern_of(code);
    const std::size_t period = p.columns.size();
    std::size_t info = (coded_bits / p.symbols_per_period) * period;
    const std::size_t rest = coded_bits % p.symbols_per_period;
    if (rest == 0) return info;
    for (std::size_t c = 1; c < period; ++c)
        if (p.offset[c] == rest) return info + c;
    return static_cast<std::size_t>(-1);
}

conv_encoder::conv_encoder(conv_code code) : code_(code) {}

void conv_encoder::reset() {
    reg_ = 0;
    phase_ = 0;
}

void conv_encoder::preload(std::uint8_t last_bits) { reg_ = last_bits & 63u; }

namespace {

// Encodes `n` bits taken from `bit_at(i)`; the caller has checked `out`.
template <class BitAt>
std::size_t encode_bits(const conv_code& code, std::uint32_t& reg, std::uint32_t& phase, std::size_t n,
                        BitAt bit_at, std::span<std::uint8_t> out) {
    const puncture_pattern p = pattern_of(code);
    const generators g = generators_of(code);
    std::size_t w = 0;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint32_t full = (reg << 1) | bit_at(i);
        const puncture_column col = p.columns[phase];
        if (col.first) out[w++] = static_cast<std::uint8_t>((std::popcount(full & g.first) & 1) ^ g.inv_first);
        if (col.second)
            out[w++] = static_cast<std::uint8_t>((std::popcount(full & g.second) & 1) ^ g.inv_second);
        reg = full & 63u;
        if (++phase == p.columns.size()) phase = 0;
    }
    return w;
}

std::size_t coded_bits_from_phase(const conv_code& code, std::uint32_t phase, std::size_t n) {
    const puncture_pattern p = pattern_of(code);
    const std::size_t period = p.columns.size();
    std::size_t w = (n / period) * p.symbols_per_period;
    for (std::size_t i = 0; i < n % period; ++i) {
        const puncture_column col = p.columns[(phase + i) % period];
        w += (col.first ? 1u : 0u) + (col.second ? 1u : 0u);
    }
    return w;
}

}  // namespace

std::size_t conv_encoder::encode(std::span<const std::uint8_t> in_packed, std::size_t n_bits,
                                 std::span<std::uint8_t> out_bits) {
    if (in_packed.size() < (n_bits + 7) / 8) return 0;
    if (out_bits.size() < coded_bits_from_phase(code_, phase_, n_bits)) return 0;
    return encode_bits(
        code_, reg_, phase_, n_bits,
        [&](std::size_t i) -> std::uint32_t { return (in_packed[i >> 3] >> (7 - (i & 7))) & 1u; }, out_bits);
}

std::size_t conv_encoder::flush_tail(std::span<std::uint8_t> out_bits) {
    if (out_bits.size() < coded_bits_from_phase(code_, phase_, conv_tail_bits)) return 0;
    return encode_bits(code_, reg_, phase_, conv_tail_bits, [](std::size_t) -> std::uint32_t { return 0; },
                       out_bits);
}

std::size_t conv_encode_tailbiting(const conv_code& code, std::span<const std::uint8_t> in_packed,
                                   std::size_t n_bits, std::span<std::uint8_t> out_bits) {
    if (n_bits == 0 || in_packed.size() < (n_bits + 7) / 8) return 0;
    if (out_bits.size() < conv_coded_bits(code, n_bits)) return 0;
    auto bit = [&](std::size_t i) -> std::uint32_t { return (in_packed[i >> 3] >> (7 - (i & 7))) & 1u; };
    // The register holds the block's last 6 bits (cyclically, for blocks shorter than 6).
    std::uint32_t reg = 0;
    for (std::size_t k = 6; k > 0; --k) reg = (reg << 1) | bit((n_bits * 6 + n_bits - k) % n_bits);
    std::uint32_t phase = 0;
    return encode_bits(code, reg, phase, n_bits, bit, out_bits);
}

}  // namespace qlink::modem
