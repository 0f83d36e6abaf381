// Test helpers for the convolutional code: a libfec-convention reference encoder, AWGN/BPSK LLRs, libfec decoding,
// chunked streaming decode.
#pragma once

#include "qlink/modem/conv.hpp"
#include "qlink/modem/soft_bits.hpp"

extern "C" {
#include <fec.h>
}

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace qlink::modem::conv_test {

inline std::vector<std::uint8_t> random_bytes(std::size_t n, std::mt19937_64& rng) {
    std::vector<std::uint8_t> v(n);
    for (auto& b : v) b = static_cast<std::uint8_t>(rng());
    return v;
}

inline unsigned bit_at(std::span<const std::uint8_t> packed, std::size_t i) {
    return (packed[i >> 3] >> (7 - (i & 7))) & 1u;
}

// Rate-1/2 encoding the way libfec's own test programs do it (fec.h parity()
// over the shift register, newest bit in bit 0), with `polys` in libfec's
// sign convention (negative = inverted). `tail` appends 6 zero bits.
inline std::vector<std::uint8_t> libfec_style_encode(std::span<const std::uint8_t> packed, std::size_t n,
                                                     const int polys[2], bool tail) {
    std::vector<std::uint8_t> out;
    unsigned encstate = 0;
    const std::size_t total = n + (tail ? 6 : 0);
    for (std::size_t i = 0; i < total; ++i) {
        const unsigned bit = i < n ? bit_at(packed, i) : 0u;
        encstate = (encstate << 1) | bit;
        for (int k = 0; k < 2; ++k)
            out.push_back(static_cast<std::uint8_t>((polys[k] < 0) ^ parity(static_cast<int>(encstate & static_cast<unsigned>(std::abs(polys[k]))))));
    }
    return out;
}

// BPSK (0 -> +1) over AWGN at Eb/N0 for code rate `rate`, received amplitude
// scaled by `scale` into int8 LLRs.
inline std::vector<llr_t> bpsk_awgn(std::span<const std::uint8_t> bits, double ebn0_db, double rate, double scale,
                                    std::mt19937_64& rng) {
    const double esn0 = std::pow(10.0, ebn0_db / 10.0) * rate;
    const double sigma = std::sqrt(1.0 / (2.0 * esn0));
    std::normal_distribution<double> noise(0.0, sigma);
    std::vector<llr_t> out(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) {
        const double y = (bits[i] ? -1.0 : 1.0) + noise(rng);
        out[i] = quantize_llr(static_cast<float>(y * scale));
    }
    return out;
}

// libfec soft symbol: 0 = certain 0, 255 = certain 1, 128 = erasure.
inline unsigned char to_libfec(llr_t l) { return static_cast<unsigned char>(std::clamp(128 - int{l}, 0, 255)); }

// Decodes one terminated rate-1/2 block (n info bits + tail) with libfec's
// portable decoder; `pairs` holds 2 * (n + 6) LLRs, already depunctured.
class libfec_decoder {
public:
    explicit libfec_decoder(std::size_t n) : n_(n), vp_(create_viterbi27(static_cast<int>(n))), syms_(2 * (n + 6)) {}
    ~libfec_decoder() { delete_viterbi27(vp_); }
    libfec_decoder(const libfec_decoder&) = delete;
    libfec_decoder& operator=(const libfec_decoder&) = delete;

    std::vector<std::uint8_t> decode(std::span<const llr_t> pairs) {
        for (std::size_t i = 0; i < syms_.size(); ++i) syms_[i] = to_libfec(pairs[i]);
        init_viterbi27(vp_, 0);
        update_viterbi27_blk(vp_, syms_.data(), static_cast<int>(n_ + 6));
        std::vector<std::uint8_t> out((n_ + 7) / 8);
        chainback_viterbi27(vp_, out.data(), static_cast<unsigned>(n_), 0);
        return out;
    }

private:
    std::size_t n_;
    void* vp_;
    std::vector<unsigned char> syms_;
};

inline std::size_t bit_errors(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::size_t n) {
    std::size_t e = 0;
    for (std::size_t i = 0; i < n; ++i) e += bit_at(a, i) != bit_at(b, i);
    return e;
}

// The libfec polynomial setting matching a convention at rate 1/2.
inline void libfec_polys(conv_convention c, int polys[2]) {
    switch (c) {
    case conv_convention::ccsds: polys[0] = V27POLYB; polys[1] = -V27POLYA; break;
    case conv_convention::uninverted: polys[0] = V27POLYB; polys[1] = V27POLYA; break;
    case conv_convention::swapped: polys[0] = V27POLYA; polys[1] = V27POLYB; break;
    }
}

// Reinserts erasures at punctured positions: coded symbols -> 2 per info step.
inline std::vector<llr_t> depuncture(const conv_code& code, std::span<const llr_t> coded, std::size_t steps) {
    static const bool pat12[][2] = {{true, true}};
    static const bool pat23[][2] = {{true, true}, {false, true}};
    static const bool pat34[][2] = {{true, true}, {false, true}, {true, false}};
    static const bool pat56[][2] = {{true, true}, {false, true}, {true, false}, {false, true}, {true, false}};
    static const bool pat78[][2] = {{true, true}, {false, true}, {false, true}, {false, true},
                                    {true, false}, {false, true}, {true, false}};
    const bool(*pat)[2] = pat12;
    std::size_t period = 1;
    switch (code.rate) {
    case conv_rate::r1_2: break;
    case conv_rate::r2_3: pat = pat23; period = 2; break;
    case conv_rate::r3_4: pat = pat34; period = 3; break;
    case conv_rate::r5_6: pat = pat56; period = 5; break;
    case conv_rate::r7_8: pat = pat78; period = 7; break;
    }
    std::vector<llr_t> out(2 * steps, llr_erasure);
    std::size_t k = 0;
    for (std::size_t j = 0; j < steps; ++j)
        for (int s = 0; s < 2; ++s)
            if (pat[j % period][s]) out[2 * j + s] = coded[k++];
    return out;
}

// Streams `soft` through a streaming decoder in pieces of the given sizes (cycled) and flushes.
inline std::vector<std::uint8_t> stream_decode(viterbi_decoder& dec, std::span<const llr_t> soft,
                                        std::span<const std::size_t> pieces, std::size_t& bits) {
    std::vector<std::uint8_t> all;
    bits = 0;
    std::size_t pos = 0, p = 0;
    while (pos < soft.size()) {
        const std::size_t k = std::min(pieces[p++ % pieces.size()], soft.size() - pos);
        std::vector<std::uint8_t> out(dec.max_stream_output_bytes(k));
        const auto r = dec.decode(soft.subspan(pos, k), out);
        EXPECT_TRUE(r.ok) << (r.error ? r.error : "");
        EXPECT_EQ(r.bits_out % 8, 0u);
        all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(r.bits_out / 8));
        bits += r.bits_out;
        pos += k;
    }
    std::vector<std::uint8_t> out(dec.max_flush_bytes());
    const auto r = dec.flush(out);
    EXPECT_TRUE(r.ok);
    all.insert(all.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>((r.bits_out + 7) / 8));
    bits += r.bits_out;
    return all;
}

}  // namespace qlink::modem::conv_test
