// CCSDS K=7 convolutional code (rate 1/2 and punctured 2/3..7/8): encoder and soft Viterbi decoder.
//
// Conventions (see docs/parts/conv.md for the full description):
// * G1 = 171 (octal), G2 = 133 (octal), K = 7; the leftmost tap of each
//   generator applies to the newest input bit.
// * conv_convention::ccsds emits G1 then NOT G2 at rate 1/2 (CCSDS 131.0-B
//   3.3). The punctured CCSDS codes (131.0-B 3.4) have no inversion, so at
//   rates 2/3..7/8 `ccsds` is the same as `uninverted`.
//   `uninverted` emits G1 then G2; `swapped` emits G2 then G1, uninverted.
// * Puncturing follows CCSDS 131.0-B table 3-2 for (C1 = G1, C2 = G2); with
//   `swapped` the same symbols are kept and a column sending both emits G2
//   first (puncturing the swapped pair with the table instead would give a
//   catastrophic code at 7/8).
// * Soft inputs are the project's int8 LLRs (soft_bits.hpp): sign = bit,
//   0 = erasure / punctured; -128 is treated as -127.
// * Decoded output is packed MSB first, like the encoder input.
#pragma once

#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace qlink::modem {

enum class conv_convention { ccsds, uninverted, swapped };
enum class conv_rate { r1_2, r2_3, r3_4, r5_6, r7_8 };

struct conv_code {
    conv_convention convention = conv_convention::ccsds;
    conv_rate rate = conv_rate::r1_2;
};

inline constexpr unsigned conv_constraint_length = 7;
inline constexpr unsigned conv_tail_bits = 6;

/// Coded bits produced for `info_bits` input bits (puncturing phase starting at 0).
std::size_t conv_coded_bits(const conv_code& code, std::size_t info_bits);

/// Inverse of conv_coded_bits: the number of info bits that gives exactly
/// `coded_bits`, or -1 (as SIZE_MAX) when no such count exists for this rate.
std::size_t conv_info_bits(const conv_code& code, std::size_t coded_bits);

/// Streaming encoder: keeps the shift register and the puncturing phase between calls.
class conv_encoder {
public:
    explicit conv_encoder(conv_code code);

    /// Clears the shift register and restarts the puncturing pattern.
    void reset();

    /// Loads the shift register as if `last_bits` (the newest bit in bit 0) had
    /// just been encoded; used for tail-biting (load the block's last 6 bits).
    void preload(std::uint8_t last_bits);

    /// in: packed info bits (MSB first), n_bits of them; out: one byte per coded
    /// bit (0/1). Returns the coded bits written, or 0 (writing nothing) when
    /// `in` holds fewer than n_bits or `out` is shorter than needed.
    std::size_t encode(std::span<const std::uint8_t> in_packed, std::size_t n_bits,
                       std::span<std::uint8_t> out_bits);

    /// Encodes 6 zero bits (the terminating tail). Same return rule as encode().
    std::size_t flush_tail(std::span<std::uint8_t> out_bits);

    const conv_code& code() const { return code_; }

private:
    conv_code code_;
    std::uint32_t reg_ = 0;    // last 6 input bits, newest in bit 0
    std::uint32_t phase_ = 0;  // column of the puncturing pattern
};

/// Encodes one tail-biting block (encoder preloaded with the last 6 bits, no
/// tail). Returns conv_coded_bits(code, n_bits), or 0 on bad lengths.
std::size_t conv_encode_tailbiting(const conv_code& code, std::span<const std::uint8_t> in_packed,
                                   std::size_t n_bits, std::span<std::uint8_t> out_bits);

enum class viterbi_mode { block_terminated, block_tailbiting, streaming };

class viterbi_decoder {
public:
    struct config {
        conv_code code;
        viterbi_mode mode = viterbi_mode::streaming;
        /// Traceback depth in trellis steps (>= 35 = 5K, <= 4096).
        unsigned traceback = 96;
        /// auto | generic | sse41 | avx2 (avx512 is refused: no kernel written yet).
        std::string isa = "auto";
        /// streaming: decoded bits decided at a time, cut into up to 32 segments
        /// run side by side (each with a run-in and a traceback tail). Larger
        /// windows spend less on run-ins, tails and per-window setup (32768:
        /// ~1.2-1.4x the throughput of 8192) and take ~8 x window bytes of
        /// decision memory. decode() alone holds up to a window (+ traceback)
        /// of output back; a caller that needs its bits sooner calls decide(),
        /// so the window sets throughput and memory, not latency. A multiple
        /// of 256 in [min_stream_window, max_stream_window].
        std::size_t stream_window = 8192;
    };
    static constexpr std::size_t min_stream_window = 8192;
    static constexpr std::size_t max_stream_window = 262144;

    struct result {
        std::size_t bits_out = 0;   ///< decoded bits written to `out` (packed, MSB first)
        bool ok = true;
        const char* error = nullptr;  ///< static string when !ok
    };

    virtual ~viterbi_decoder() = default;

    /// streaming: consumes any number of coded LLRs (the puncturing phase and
    ///   a split pair are carried over), emits decided bits in windows of
    ///   config::stream_window (delay at most window + traceback steps), in
    ///   whole bytes only; without decide() calls the output does not depend
    ///   on how the input is cut into calls;
    ///   `out` needs room for max_stream_output_bytes(soft.size()) bytes.
    /// block_terminated: `soft` is one whole block including the 6 tail bits;
    ///   writes the info bits (tail dropped), ceil(n/8) bytes.
    /// block_tailbiting: `soft` is one whole tail-biting block (>= 1 info bit).
    /// On bad input nothing is written and the decoder state is unchanged.
    virtual result decode(std::span<const llr_t> soft, std::span<std::uint8_t> out) = 0;

    /// block_terminated only: decodes 1..32 blocks of the same length at once,
    /// one per byte lane of the across-lanes kernel (the fastest path for
    /// many frames). outs[i] receives block i's info bits like decode() writes
    /// them; bits_out is the info bits per block. Each block is one unsplit
    /// trellis traced back from state 0, so blocks that decode() does not
    /// split (< 4 x traceback + 512 info bits) come out exactly as decode() gives.
    /// Other modes, counts, unequal lengths or short outputs give an error result.
    virtual result decode_batch(std::span<const std::span<const llr_t>> blocks,
                                std::span<const std::span<std::uint8_t>> outs) {
        (void)blocks;
        (void)outs;
        return {0, false, "viterbi: decode_batch not supported by this decoder"};
    }

    /// streaming only: decides now every buffered step that has at least
    /// `traceback` steps of input after it (rounded down to whole bytes),
    /// traced back from the best state at the newest step, like the end of a
    /// window; the stream then goes on as after a window, and later decode(),
    /// decide() and flush() calls continue it with no bit lost or repeated.
    /// Bounds the output delay to traceback + 7 steps whenever it is called,
    /// at some throughput per call (a short stretch has relatively more run-in
    /// and tail). The decisions depend on where decide() cut the stream, so
    /// the output is no longer independent of the call sizes (it stays a
    /// function of the call sequence, the same on every ISA). `out` needs
    /// max_flush_bytes(); nothing buffered gives 0 bits, ok. Other modes (or a
    /// short `out`): an error result, state unchanged.
    virtual result decide(std::span<std::uint8_t> out) = 0;

    /// streaming: traces back from the best state and emits every remaining
    /// bit (the last byte zero-padded; bits_out says how many are real), then
    /// resets. Block modes: returns 0 bits.
    virtual result flush(std::span<std::uint8_t> out) = 0;

    /// Restarts from the all-zero encoder state with an empty history.
    virtual void reset() = 0;

    virtual std::string_view isa_name() const = 0;

    /// Upper bound of bytes one streaming decode() of `soft_count` LLRs writes.
    virtual std::size_t max_stream_output_bytes(std::size_t soft_count) const = 0;
    /// Bytes flush() or decide() may write at most.
    virtual std::size_t max_flush_bytes() const = 0;
};

/// Throws std::invalid_argument on a bad config (unknown/unsupported isa,
/// traceback out of range).
std::unique_ptr<viterbi_decoder> create_viterbi_decoder(const viterbi_decoder::config& cfg);

}  // namespace qlink::modem
