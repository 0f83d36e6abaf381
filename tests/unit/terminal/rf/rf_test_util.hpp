// Test helpers for the RF modem tests: bit streams, demodulation through the sim channel, and BER with ambiguity resolution.
#pragma once

#include "qlink/sim/rf_channel.hpp"
#include "qlink/terminal/rf_modem.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qlink::terminal::test {

inline std::vector<std::uint8_t> random_bits(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<std::uint8_t> bits(n);
    for (auto& b : bits) b = static_cast<std::uint8_t>(rng() & 1);
    return bits;
}

/// Theoretical coherent bit error rate on AWGN: BPSK Q(sqrt(2 Es/N0)), Gray QPSK Q(sqrt(Es/N0)).
inline double theory_ber(rf_modulation m, double es_n0_db) {
    const double es_n0 = std::pow(10.0, es_n0_db / 10.0);
    const double eb_n0 = m == rf_modulation::bpsk ? es_n0 : es_n0 / 2.0;
    return 0.5 * std::erfc(std::sqrt(eb_n0));
}

/// Hard decisions of demodulated LLRs compared with the transmitted bits: the
/// alignment (demodulator delay) and the Costas phase ambiguity are found on a
/// training window after `skip_symbols`, then errors are counted over the rest.
struct ber_count {
    std::size_t bits = 0;
    std::size_t errors = 0;
    int delay_symbols = -1;
    int rotation = 0;
    std::size_t slips = 0;  ///< windows whose alignment or phase rotation changed (timing or cycle slips)
    double ber() const { return bits ? double(errors) / double(bits) : 1.0; }
};

/// The bit pair of received symbol i after undoing `rot` quarter turns (QPSK) or inversion (BPSK).
inline void derotated_bits(const std::vector<modem::llr_t>& llr, unsigned bps, std::size_t i, int rot,
                           std::uint8_t out[2]) {
    if (bps == 1) {
        out[0] = static_cast<std::uint8_t>(modem::hard_bit(llr[i]) ^ (rot & 1));
        return;
    }
    // Symbol (I, Q) = (1 - 2 b0, 1 - 2 b1) up to scale; a quarter turn back maps (I, Q) -> (Q, -I).
    int I = llr[2 * i] >= 0 ? 1 : -1, Q = llr[2 * i + 1] >= 0 ? 1 : -1;
    for (int r = 0; r < rot; ++r) {
        const int t = I;
        I = Q;
        Q = -t;
    }
    out[0] = I < 0;
    out[1] = Q < 0;
}

inline ber_count count_errors(const std::vector<std::uint8_t>& tx, const std::vector<modem::llr_t>& rx, unsigned bps,
                              std::size_t skip_symbols, std::size_t train_symbols = 512, int max_delay = 64) {
    ber_count best;
    const std::size_t rx_symbols = rx.size() / bps, tx_symbols = tx.size() / bps;
    std::size_t best_err = ~std::size_t{0};
    const int rotations = bps == 1 ? 2 : 4;
    for (int d = 0; d <= max_delay; ++d) {
        for (int rot = 0; rot < rotations; ++rot) {
            std::size_t err = 0;
            for (std::size_t i = skip_symbols; i < skip_symbols + train_symbols; ++i) {
                if (i >= rx_symbols || i < std::size_t(d) || i - d >= tx_symbols) break;
                std::uint8_t b[2];
                derotated_bits(rx, bps, i, rot, b);
                for (unsigned j = 0; j < bps; ++j) err += b[j] != tx[(i - d) * bps + j];
            }
            if (err < best_err) {
                best_err = err;
                best.delay_symbols = d;
                best.rotation = rot;
            }
        }
    }
    for (std::size_t i = skip_symbols + train_symbols; i < rx_symbols; ++i) {
        const std::size_t t = i - best.delay_symbols;
        if (t >= tx_symbols) break;
        std::uint8_t b[2];
        derotated_bits(rx, bps, i, best.rotation, b);
        for (unsigned j = 0; j < bps; ++j) best.errors += b[j] != tx[t * bps + j];
        best.bits += bps;
    }
    return best;
}

/// As count_errors, but re-aligned every `window` symbols (delay within +-4 of the
/// previous one, any rotation), as a frame synchroniser would: a timing or cycle
/// slip costs one window's training part and is counted, instead of turning every
/// later bit into an error.
inline ber_count count_errors_windowed(const std::vector<std::uint8_t>& tx, const std::vector<modem::llr_t>& rx,
                                       unsigned bps, std::size_t skip_symbols, std::size_t window = 4096) {
    ber_count total = count_errors(tx, rx, bps, skip_symbols, 512, 64);
    int delay = total.delay_symbols, rot = total.rotation;
    total = {};
    total.delay_symbols = delay;
    total.rotation = rot;
    const std::size_t rx_symbols = rx.size() / bps, tx_symbols = tx.size() / bps;
    const int rotations = bps == 1 ? 2 : 4;
    for (std::size_t w0 = skip_symbols; w0 + window <= rx_symbols; w0 += window) {
        const std::size_t train = 256;
        std::size_t best = ~std::size_t{0};
        int bd = delay, br = rot;
        for (int d = std::max(0, delay - 4); d <= delay + 4; ++d) {
            for (int r = 0; r < rotations; ++r) {
                std::size_t err = 0;
                for (std::size_t i = w0; i < w0 + train && i - d < tx_symbols; ++i) {
                    std::uint8_t b[2];
                    derotated_bits(rx, bps, i, r, b);
                    for (unsigned j = 0; j < bps; ++j) err += b[j] != tx[(i - d) * bps + j];
                }
                // Prefer staying put on ties.
                if (err < best || (err == best && d == delay && r == rot)) {
                    best = err;
                    bd = d;
                    br = r;
                }
            }
        }
        if (bd != delay || br != rot) ++total.slips;
        delay = bd;
        rot = br;
        for (std::size_t i = w0 + train; i < w0 + window; ++i) {
            if (i - delay >= tx_symbols) break;
            std::uint8_t b[2];
            derotated_bits(rx, bps, i, rot, b);
            for (unsigned j = 0; j < bps; ++j) total.errors += b[j] != tx[(i - delay) * bps + j];
            total.bits += bps;
        }
    }
    return total;
}

}  // namespace qlink::terminal::test
