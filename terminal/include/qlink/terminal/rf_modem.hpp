// Sample-level RF modem on liquid-dsp: BPSK/QPSK with RRC shaping, timing/carrier recovery, AGC, int8 LLRs out.
//
// Transmit: bits (one per byte) -> symbols (BPSK bit 0 -> +1; QPSK Gray, I carries
//   the first bit, Q the second, each 0 -> +1/sqrt2) -> RRC interpolator
//   (firinterp_crcf) -> optional carrier offset (Doppler pre-compensation, nco_crcf).
// Receive, two engines with the same loops and outputs:
//   native (default): qlink's block receiver, >= 20 Msample/s per core. Per block
//     of 256 samples one AGC gain and one carrier rotation (Doppler correction
//     from the ephemeris, offset + rate); then a polyphase RRC matched filter
//     evaluated only at the strobe and half a symbol before it (2 samples/symbol)
//     driving a Gardner timing loop; SIMD kernels chosen at run time (`isa`).
//   liquid: the same chain on liquid-dsp objects (nco_crcf, agc_crcf,
//     symsync_crcf), kept as the peer for tests and benchmarks.
//   Both: Costas loop at the symbol rate (liquid nco_crcf PLL semantics) -> soft
//   symbols -> int8 LLRs (soft_bits.hpp: positive = bit 0) scaled by the estimated SNR.
//
// The Costas loop (QPSK: soft-decision detector) leaves the usual phase ambiguity
// (180 deg BPSK, 90 deg QPSK): rf_phase_resolver undoes it on the coded marker
// (rf_receiver::config::phase); BPSK alone also decodes without it (the chain's
// synchroniser corrects an inverted ASM).
#pragma once

#include "qlink/modem/soft_bits.hpp"

#include <complex>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace qlink::terminal {

using cf32 = std::complex<float>;

enum class rf_modulation { bpsk, qpsk };
std::string_view to_string(rf_modulation m);
unsigned bits_per_symbol(rf_modulation m);

/// Pulse shape and rates shared by both ends (they must agree).
struct rf_waveform {
    rf_modulation modulation = rf_modulation::bpsk;
    unsigned samples_per_symbol = 4;  ///< [2, 64]
    unsigned filter_delay = 7;        ///< RRC half-length in symbols, [2, 32]
    float rolloff = 0.35f;            ///< RRC excess bandwidth, [0.1, 1]
    double sample_rate_hz = 1e6;      ///< > 0; used to turn Hz into rad/sample
};

/// Checks a waveform; empty when valid, else one line naming the field and its range.
std::string validate(const rf_waveform& w);

class rf_modulator {
public:
    struct config {
        rf_waveform waveform{};
        float amplitude = 1.0f;  ///< symbol amplitude (|symbol| before shaping), (0, 1e3]
    };
    struct result {
        std::size_t bits = 0;     ///< bits consumed
        std::size_t samples = 0;  ///< samples written
        bool ok = true;
        const char* error = nullptr;
    };

    /// Throws std::invalid_argument naming the bad field (configuration edge).
    explicit rf_modulator(const config& cfg);
    ~rf_modulator();
    rf_modulator(const rf_modulator&) = delete;
    rf_modulator& operator=(const rf_modulator&) = delete;

    /// Bits (one per byte, any non-zero = 1); a multiple of bits_per_symbol, and
    /// `out` must hold (bits / bits_per_symbol) * samples_per_symbol samples.
    result modulate(std::span<const std::uint8_t> bits, std::span<cf32> out);
    /// Pushes filter_delay zero symbols so the last real symbol leaves the filter:
    /// writes filter_delay * samples_per_symbol samples.
    result flush(std::span<cf32> out);

    /// Mixes the output up by offset + rate * t from now on (t from this call):
    /// pass minus the predicted uplink Doppler to pre-compensate it. Phase continuous.
    void set_carrier_offset(double offset_hz, double rate_hz_s);

    /// Mean |x|^2 per output sample for random data (what rf_channel's Es/N0 refers to).
    double sample_power() const;
    const config& cfg() const;

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

/// Which receive chain rf_demodulator runs (see the file comment).
enum class rf_demod_engine { native, liquid };
std::string_view to_string(rf_demod_engine e);

class rf_demodulator {
public:
    struct config {
        rf_waveform waveform{};
        rf_demod_engine engine = rf_demod_engine::native;
        /// Kernels of the native receiver: auto|generic|sse41|avx2|avx512 (the widest
        /// variant at or below it that the CPU runs; all give the same output bit for bit).
        std::string isa = "auto";
        unsigned timing_filters = 32;     ///< polyphase sub-filters of the matched-filter bank, [4, 256]
        /// Timing loop bandwidth: native Gardner loop BnT once the Costas loop is locked
        /// (before lock max(0.01, this), a gear shift like the carrier's); liquid symsync lf_bw.
        /// (0, 0.5]; 0 = per engine: native 0.003, liquid 0.01. The two numbers are not the
        /// same loop: at 0.01 the native PI loop jitters more than symsync does at 0.01 and
        /// slips a symbol about once per 2e6 symbols at BPSK 3 dB (each slip costs a frame or
        /// two); at 0.003 it has no slip in 2e7 symbols and about 0.15 dB less implementation loss.
        float timing_bandwidth = 0.0f;
        float carrier_bandwidth = 0.01f;          ///< Costas PLL bandwidth while acquiring (liquid nco_crcf units), (0, 0.5]
        /// ... once locked, (0, 0.5]; 0 = per modulation: BPSK 0.003, QPSK 0.001. A narrower
        /// loop has less phase jitter (fewer cycle slips at low Es/N0) but lets more of the
        /// carrier's phase noise through; QPSK (a quarter-turn ambiguity) needs the narrower one.
        float carrier_bandwidth_locked = 0.0f;
        float agc_bandwidth = 1e-3f;      ///< AGC bandwidth per sample (native: applied per 256-sample block), (0, 0.5]
        float llr_scale = 4.0f;           ///< int8 LLR = round(llr_scale * natural LLR), (0, 127]
        /// Lock detector: the averaged cos 2phi (BPSK) / cos 4phi (QPSK) metric above which the loop
        /// is declared locked, (0, 1); 0 = per modulation: BPSK 0.35, QPSK 0.12. QPSK's metric is
        /// far lower at the same Es/N0 (0.22 at 4 dB locked, against BPSK's 0.64).
        float lock_on = 0.0f;
        float lock_off = 0.0f;            ///< ... and below which lock is lost, (0, lock_on); 0 = BPSK 0.2, QPSK 0.06
        /// Symbols the lock metric and the estimates are averaged over, [16, 65536];
        /// 0 = per modulation: BPSK 256, QPSK 1024 (QPSK's lower metric needs a steadier average).
        unsigned lock_window = 0;
    };
    /// `c` with every per-modulation default (0) replaced by its value, as the receiver runs it.
    static config resolved(config c);
    struct result {
        std::size_t samples = 0;  ///< input samples consumed
        std::size_t llrs = 0;     ///< LLRs written
        bool output_full = false; ///< stopped early: call again with the rest
        bool ok = true;
        const char* error = nullptr;
    };
    struct counters {
        std::uint64_t samples = 0;
        std::uint64_t symbols = 0;
        std::uint64_t lock_acquired = 0;
        std::uint64_t lock_lost = 0;
        std::uint64_t symbols_unlocked = 0;  ///< symbols delivered while not locked
        std::uint64_t blocks_zeroed = 0;     ///< native: 256-sample blocks with NaN/Inf input, replaced by zeros
    };

    /// Throws std::invalid_argument naming the bad field (configuration edge).
    explicit rf_demodulator(const config& cfg);
    ~rf_demodulator();
    rf_demodulator(const rf_demodulator&) = delete;
    rf_demodulator& operator=(const rf_demodulator&) = delete;

    /// Samples in, LLRs out (bits_per_symbol per symbol, in transmit order).
    /// Allocation-free. The native engine works on whole 256-sample blocks: a
    /// partial block is consumed and held until the next call completes it. Give `llrs` at least max_llrs(samples.size()) to
    /// consume everything; with less it stops early (output_full).
    result demodulate(std::span<const cf32> samples, std::span<modem::llr_t> llrs);
    /// LLRs that demodulate() may write for n input samples, at most.
    std::size_t max_llrs(std::size_t n) const;

    /// Removes offset + rate * t (t from this call) from the input from now on:
    /// the Doppler predicted from the ephemeris. Phase continuous.
    void set_carrier_correction(double offset_hz, double rate_hz_s);
    /// The correction currently applied, Hz.
    double carrier_correction_hz() const;

    bool locked() const;
    /// Averaged lock metric: about A^2/(A^2+noise) when locked, near 0 when not.
    float lock_metric() const;
    /// Frequency the Costas loop tracks on top of the correction, Hz.
    double residual_frequency_hz() const;
    /// Decision-directed Es/N0 estimate, dB (meaningful when locked).
    double es_n0_estimate_db() const;
    /// Current AGC gain (linear; the engines scale differently).
    float agc_gain() const;
    const counters& stats() const;
    const config& cfg() const;
    /// Back to the initial state (loops open, counters kept).
    void reset();

private:
    struct impl;
    std::unique_ptr<impl> p_;
};

}  // namespace qlink::terminal
