// CCSDS 131.0-B LDPC codes (C2 and AR4JA): code description, systematic encoder, layered min-sum decoders.
#pragma once

#include "qlink/modem/cpu.hpp"
#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::modem {

/// The codes of CCSDS 131.0-B section 7.
enum class ldpc_code_id {
    c2,                 ///< (8160,7136): the (8176,7154) expurgated base code, 18 fill bits, 2 trailing zeros
    ar4ja_r12_k1024,
    ar4ja_r12_k4096,
    ar4ja_r12_k16384,
    ar4ja_r23_k1024,
    ar4ja_r23_k4096,
    ar4ja_r23_k16384,
    ar4ja_r45_k1024,
    ar4ja_r45_k4096,
    ar4ja_r45_k16384,
};

/// "c2", "ar4ja-1/2-1024", "ar4ja-2/3-4096", ... ; nullopt for anything else.
std::optional<ldpc_code_id> parse_ldpc_code(std::string_view name);
std::string_view to_string(ldpc_code_id id);
std::vector<ldpc_code_id> all_ldpc_codes();

/// Information and transmitted bits of a code, without building it (profile
/// arithmetic); {0, 0} for a value outside the enum.
struct ldpc_dims {
    std::size_t k = 0;
    std::size_t n = 0;
};
ldpc_dims ldpc_code_dims(ldpc_code_id id);

/// One circulant edge of the quasi-cyclic parity-check matrix: row `r` of row
/// block `row_block` has a one in column `col_block * z + (r + shift) % z`.
struct ldpc_qc_edge {
    std::uint32_t row_block;
    std::uint32_t col_block;
    std::uint32_t shift;
};

/// Immutable description of one code: H as circulant edges (built from the
/// standard's tables at construction, cheap) and the mapping between the
/// transmitted codeword and the mother codeword (columns of H).
///
/// Mother codeword layout: [fill zeros | information | parity]; transmitted:
/// mother[fill .. n_mother - punctured) followed by `tail_zeros` zero bits.
class ldpc_code {
public:
    explicit ldpc_code(ldpc_code_id id);

    ldpc_code_id id() const { return id_; }
    std::size_t k() const { return k_; }                 ///< information bits per codeblock
    std::size_t n() const { return n_; }                 ///< transmitted bits per codeblock
    std::size_t z() const { return z_; }                 ///< circulant size
    std::size_t row_blocks() const { return row_blocks_; }
    std::size_t col_blocks() const { return col_blocks_; }
    std::size_t n_mother() const { return z_ * col_blocks_; }
    std::size_t m_rows() const { return z_ * row_blocks_; }
    std::size_t k_mother() const { return k_mother_; }   ///< systematic positions of the mother code
    std::size_t fill_bits() const { return fill_; }
    std::size_t punctured_bits() const { return punctured_; }
    std::size_t tail_zero_bits() const { return tail_zeros_; }
    double rate() const { return static_cast<double>(k_) / static_cast<double>(n_); }

    /// Edges ordered by row block; row block b owns edges [row_begin(b), row_begin(b+1)).
    const std::vector<ldpc_qc_edge>& edges() const { return edges_; }
    std::size_t row_begin(std::size_t b) const { return row_start_[b]; }

    /// Columns of row `row` of H (in edge order).
    std::vector<std::uint32_t> row_columns(std::size_t row) const;

    /// Number of unsatisfied checks of a mother codeword given one bit per byte.
    /// Returns SIZE_MAX when the length is not n_mother().
    std::size_t syndrome_weight(std::span<const std::uint8_t> mother_bits) const;

    std::size_t info_blocks() const { return k_mother_ / z_; }
    std::size_t parity_blocks() const { return col_blocks_ - k_mother_ / z_; }

private:
    ldpc_code_id id_;
    std::size_t z_ = 0, row_blocks_ = 0, col_blocks_ = 0;
    std::size_t k_ = 0, n_ = 0, k_mother_ = 0, fill_ = 0, punctured_ = 0, tail_zeros_ = 0;
    std::vector<ldpc_qc_edge> edges_;
    std::vector<std::size_t> row_start_;
};

enum class ldpc_status { ok, bad_length };

struct ldpc_encode_result {
    ldpc_status status = ldpc_status::ok;
};

/// Systematic encoder: parity = sum of information blocks times the generator
/// circulants (bit-parallel XOR of rotated circulant rows). The dense
/// circulants W = (P^-1 Q)^T are computed once at construction in the ring of
/// circulants GF(2)[x]/(x^z - 1) (CCSDS 131.0-B 7.4.3; for C2 the expurgated
/// generator of 131.0-B 7.3 / 130.1-G 8.3: first row of every circulant ends
/// in 0).
class ldpc_encoder {
public:
    explicit ldpc_encoder(ldpc_code_id id);

    const ldpc_code& code() const { return code_; }

    /// Generator circulant first row (z bits, LSB-first words) mapping
    /// systematic block i onto parity block j.
    std::span<const std::uint64_t> generator_row(std::size_t i, std::size_t j) const;

    /// `info`: k/8 bytes (MSB first); `codeword`: n/8 bytes.
    ldpc_encode_result encode(std::span<const std::uint8_t> info, std::span<std::uint8_t> codeword);

    /// Whole mother codeword (fill, information, all parity incl. punctured),
    /// one bit per byte: for checks against H.
    ldpc_encode_result encode_mother(std::span<const std::uint8_t> info, std::span<std::uint8_t> mother_bits);

private:
    void encode_internal(std::span<const std::uint8_t> info);

    ldpc_code code_;
    std::size_t words_ = 0;              // 64-bit words per circulant row
    std::size_t dwords_ = 0;             // words of a doubled row (2z bits + 1 word)
    std::vector<std::uint64_t> gen_;     // [info block][parity block][words_]
    std::vector<std::uint64_t> gen2_;    // same rows doubled, for rotation by extraction
    std::vector<std::uint8_t> sys_;      // systematic bits of the mother codeword
    std::vector<std::uint64_t> parity_;  // parity blocks, words_ per block
};

struct ldpc_decode_result {
    ldpc_status status = ldpc_status::ok;
    unsigned iterations = 0;  ///< iterations run
    bool success = false;     ///< every parity check satisfied by the output
};

/// Check-node rule of the min-sum decoders. Both are exact integer rules so
/// every ISA gives the same bits.
enum class ldpc_min_sum { normalized, offset };

/// Layered min-sum decoder over int8 LLRs (soft_bits.hpp convention).
/// Layers are groups of up to 32 consecutive rows of a row block that share
/// no column, so the scalar (row by row) and SIMD (32 rows at once) schedules
/// are the same algorithm and give the same bits. Fill bits stay pinned at
/// +127; an a-posteriori value saturated at +-127 is passed to the check
/// unchanged (subtracting the old message from a clipped value can flip it,
/// which otherwise makes converged frames drift away under a fixed
/// iteration count).
class ldpc_decoder {
public:
    struct config {
        ldpc_code_id code = ldpc_code_id::c2;
        unsigned max_iterations = 10;
        bool early_termination = true;  ///< stop as soon as the syndrome is zero
        ldpc_min_sum rule = ldpc_min_sum::normalized;  ///< normalized: x 3/4 (rounded)
        std::uint8_t offset = 1;                        ///< for ldpc_min_sum::offset
        /// Largest check-to-variable magnitude (1..127). With larger messages
        /// the int8 a-posteriori values saturate and frames that had
        /// converged drift away again under a fixed iteration count (seen with
        /// AR4JA at 63 and above); 48 costs nothing measurable in FER and
        /// about 1 % more iterations with early termination.
        std::uint8_t message_limit = 48;
        std::string isa = "auto";                       ///< auto|generic|sse41|avx2|avx512 (widest kernel at or below; sse41 = generic)
    };

    virtual ~ldpc_decoder() = default;

    /// `llr`: n() channel LLRs of the transmitted codeword; `info`: k/8 bytes
    /// of hard decisions (written even when success is false, which means the
    /// output is not a codeword and must not be trusted).
    virtual ldpc_decode_result decode(std::span<const llr_t> llr, std::span<std::uint8_t> info) = 0;

    /// A-posteriori LLRs of the mother codeword after the last decode.
    virtual std::span<const llr_t> app() const = 0;

    virtual isa level() const = 0;
    virtual const ldpc_code& code() const = 0;
};

/// Throws std::invalid_argument for an unknown/unsupported isa string or a
/// zero iteration limit.
std::unique_ptr<ldpc_decoder> create_ldpc_decoder(const ldpc_decoder::config& cfg);

/// Inter-frame decoder: up to batch() codewords at once, one per SIMD lane
/// (AVX2: 32 int8 lanes), for throughput when frames queue up. Every frame
/// gets exactly the bits, iteration count and success flag of the
/// single-frame decoder with the same config: a frame whose syndrome is
/// satisfied stops being updated while the others go on.
class ldpc_batch_decoder {
public:
    virtual ~ldpc_batch_decoder() = default;

    virtual std::size_t batch() const = 0;

    /// `llr`: frames * n() LLRs, frame after frame; `info`: frames * k/8
    /// bytes; `results`: one entry per frame; 1 <= frames <= batch(), where
    /// frames = results.size(). Wrong sizes give bad_length (and no result).
    virtual ldpc_status decode(std::span<const llr_t> llr, std::span<std::uint8_t> info,
                               std::span<ldpc_decode_result> results) = 0;

    /// A-posteriori LLRs (mother codeword) of frame `f` of the last call.
    virtual void app(std::size_t f, std::span<llr_t> out) const = 0;

    virtual isa level() const = 0;
    virtual const ldpc_code& code() const = 0;
};

/// Same configuration rules as create_ldpc_decoder; the generic variant
/// decodes the frames one after the other.
std::unique_ptr<ldpc_batch_decoder> create_ldpc_batch_decoder(const ldpc_decoder::config& cfg);

/// Floating-point layered normalised min-sum (factor 0.75, no saturation): the
/// reference the int8 decoders are compared with for error-rate performance.
class ldpc_float_decoder {
public:
    struct config {
        ldpc_code_id code = ldpc_code_id::c2;
        unsigned max_iterations = 10;
        bool early_termination = true;
        float factor = 0.75f;
    };
    explicit ldpc_float_decoder(const config& cfg);

    /// `llr`: n() real LLRs (positive = bit 0).
    ldpc_decode_result decode(std::span<const float> llr, std::span<std::uint8_t> info);
    const ldpc_code& code() const { return code_; }

private:
    config cfg_;
    ldpc_code code_;
    std::vector<float> app_, msg_, q_;
};

}  // namespace qlink::modem
