// Resolves the Costas loop's phase ambiguity (180 deg BPSK, 90 deg QPSK) on the LLR stream with a known unique word, for coded use.
//
// The demodulator's symbols come out rotated by an unknown multiple of the
// constellation's symmetry angle. The transmitter sends a unique word (for
// example the frame's attached sync marker, which CCSDS puts in the channel
// bits uncoded) every frame; the resolver finds it in the hard decisions under
// every rotation, and from the first symbol of that word on undoes the rotation
// it shows: for QPSK a quarter turn back maps the LLR pair (I, Q) to (Q, -I),
// for BPSK the LLR sign flips. It works in place, so LLRs are exact (no loss).
//
// With the coding chain the word is what the profile puts on the channel
// (phase_resolver_config): the marker itself without inner code, or, behind the
// rate-1/2 convolutional code, the coded marker from its 7th bit on (the
// encoder state is then set by the marker alone, so those 2 * (bits - 6)
// channel bits are the same in every frame).
#pragma once

#include "qlink/modem/profile.hpp"
#include "qlink/modem/soft_bits.hpp"
#include "qlink/terminal/rf_modem.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qlink::terminal {

class rf_phase_resolver {
public:
    struct config {
        rf_modulation modulation = rf_modulation::qpsk;
        /// The word, one bit per byte in transmit order; 16..64 bits, a multiple of bits per symbol.
        std::vector<std::uint8_t> unique_word;
        /// Word period in bits (word included), a multiple of bits per symbol and
        /// longer than the word; 0 = no frame structure, search every symbol.
        std::size_t frame_bits = 0;
        /// Hard-decision bit errors a word may have and still be recognised, [0, bits / 8].
        unsigned max_bit_errors = 3;
        /// Expected words missed in a row before searching every symbol again, >= 1.
        unsigned flywheel = 3;
    };
    /// The resolver for a coding-chain profile's channel stream: its unique word,
    /// frame period (channel bits per sync period) and max_bit_errors = bits / 8.
    /// Throws std::invalid_argument naming why a profile has no fixed word on the
    /// channel (punctured inner code, channel interleaver).
    static config for_profile(const modem::chain_profile& profile, rf_modulation modulation);
    struct result {
        std::size_t llrs = 0;  ///< LLRs processed (all, unless the count is not a multiple of bits per symbol)
        bool ok = true;
        const char* error = nullptr;
    };
    struct counters {
        std::uint64_t words_found = 0;
        std::uint64_t words_missed = 0;     ///< expected (flywheel) positions without the word
        std::uint64_t rotation_changes = 0;
    };

    /// Throws std::invalid_argument naming the bad field (configuration edge).
    explicit rf_phase_resolver(const config& cfg);

    /// Derotates `llrs` in place (bits_per_symbol per symbol, as rf_demodulator
    /// writes them). A rotation found on a word applies from the word's first
    /// symbol when that symbol is in this call, else from the call's first symbol.
    result process(std::span<modem::llr_t> llrs);

    /// Rotation currently undone: quarter turns (QPSK, 0..3) or inversion (BPSK, 0..1).
    unsigned rotation() const { return rot_; }
    /// True after a word, until the flywheel runs out (always false without frame_bits).
    bool synchronised() const { return sync_; }
    const counters& stats() const { return stats_; }
    void reset();

private:
    void derotate(modem::llr_t* sym, unsigned by) const;

    config cfg_;
    unsigned bps_;
    std::size_t word_symbols_;
    std::uint64_t mask_;
    std::uint64_t patterns_[4] = {};  // hard-decision register contents of the word received under each rotation
    unsigned rotations_;
    std::uint64_t reg_ = 0;
    std::uint64_t seen_ = 0;  // symbols shifted into reg_
    std::uint64_t next_ = 0;  // symbol count at which the next word ends (when synchronised)
    unsigned rot_ = 0;
    bool sync_ = false;
    unsigned missed_ = 0;
    counters stats_;
};

}  // namespace qlink::terminal
