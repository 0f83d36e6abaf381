// Channel interleavers against optical fades: block (rows x cols) and convolutional (Forney).
//
// Both work on one-byte symbols (hard bits 0/1 or int8 LLRs), stream with
// out.size() == in.size(), and have a fixed delay: what goes in at stream
// index n comes out of the interleaver/deinterleaver pair at n + pair_delay().
// Memory starts zeroed, so the first pair_delay() symbols out of a
// deinterleaver are 0 (an erasure, in LLR terms).
#pragma once

#include "qlink/modem/soft_bits.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace qlink::modem {

enum class interleaver_kind : std::uint8_t { none, block, convolutional };
std::string_view to_string(interleaver_kind k);

struct interleaver_config {
    interleaver_kind kind = interleaver_kind::none;
    /// block: written row by row, read column by column. A channel burst of up
    /// to `rows` symbols inside one block lands >= cols-1 symbols apart.
    std::size_t rows = 0;
    std::size_t cols = 0;
    /// convolutional: branch j delays by j*unit symbols (of that branch); the
    /// deinterleaver by (branches-1-j)*unit. A burst of up to branches*unit
    /// symbols (the span) lands as errors >= branches-1 symbols apart.
    std::size_t branches = 0;
    std::size_t unit = 0;
};

/// Convolutional interleaver whose span (burst length it disperses) is
/// `span_symbols`; throws std::invalid_argument unless branches >= 2 and the
/// span is a positive multiple of branches.
interleaver_config convolutional_for_span(std::size_t branches, std::size_t span_symbols);
/// The same with the span in milliseconds at `symbol_rate` symbols/s; the span
/// must come to a whole number of symbols (and a multiple of branches).
interleaver_config convolutional_for_span_ms(std::size_t branches, double span_ms, double symbol_rate);

/// Symbols a burst may last and still come out dispersed (block: rows,
/// convolutional: branches*unit, none: 0).
std::size_t interleaver_span(const interleaver_config& cfg);
/// Fixed delay of an interleaver + deinterleaver pair in symbols
/// (block: 2*rows*cols, convolutional: branches*(branches-1)*unit, none: 0).
std::size_t interleaver_pair_delay(const interleaver_config& cfg);
/// Memory of one side in symbols.
std::size_t interleaver_memory(const interleaver_config& cfg);

class channel_interleaver {
public:
    struct result {
        std::size_t processed = 0;
        bool ok = true;
        const char* error = nullptr;  ///< static string when !ok
    };
    virtual ~channel_interleaver() = default;
    /// in.size() must equal out.size() (else nothing is done, ok = false).
    /// `in` and `out` may be the same buffer.
    virtual result process(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) = 0;
    result process(std::span<const llr_t> in, std::span<llr_t> out) {
        return process(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(in.data()), in.size()),
                       std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(out.data()), out.size()));
    }
    /// Zeroes the memory and restarts at stream index 0.
    virtual void reset() = 0;
    virtual const interleaver_config& config() const = 0;
};

/// Throws std::invalid_argument naming the bad field (rows/cols/branches/unit
/// zero, memory above 1 GiB). kind none gives a pass-through.
std::unique_ptr<channel_interleaver> create_interleaver(const interleaver_config& cfg);
std::unique_ptr<channel_interleaver> create_deinterleaver(const interleaver_config& cfg);

}  // namespace qlink::modem
