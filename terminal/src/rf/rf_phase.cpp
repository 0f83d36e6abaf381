// Unique-word phase-ambiguity resolver on the demodulator's LLR stream: hard-decision correlation under every rotation, in-place derotation.
#include "qlink/terminal/rf_phase.hpp"

#include "qlink/modem/conv.hpp"

#include <bit>
#include <stdexcept>
#include <string>

namespace qlink::terminal {

namespace {

// Hard-decision code of one symbol: bit 1 = first bit (I < 0), bit 0 = second (Q < 0).
unsigned hard_code(const modem::llr_t* sym, unsigned bps) {
    if (bps == 1) return sym[0] < 0;
    return (unsigned(sym[0] < 0) << 1) | unsigned(sym[1] < 0);
}

// The code of symbol `code` after `r` quarter turns forward: (I, Q) -> (-Q, I) per turn.
unsigned rotate_code(unsigned code, unsigned r, unsigned bps) {
    if (bps == 1) return code ^ (r & 1);
    int i = (code & 2) ? -1 : 1, q = (code & 1) ? -1 : 1;
    for (unsigned t = 0; t < r; ++t) {
        const int ni = -q;
        q = i;
        i = ni;
    }
    return (unsigned(i < 0) << 1) | unsigned(q < 0);
}

modem::llr_t neg(modem::llr_t v) { return modem::saturate_llr(-int(v)); }

}  // namespace

rf_phase_resolver::config rf_phase_resolver::for_profile(const modem::chain_profile& profile, rf_modulation modulation) {
    const std::string who = "rf_phase_resolver: profile " + profile.name + ": ";
    if (profile.interleaver.kind != modem::interleaver_kind::none)
        throw std::invalid_argument(who + "a channel interleaver scatters the marker; no fixed word on the channel");
    const modem::sync_marker mk = profile.marker;
    if (mk.bits < 16 || mk.bits > 64) throw std::invalid_argument(who + "marker must have 16..64 bits");
    config c;
    c.modulation = modulation;
    auto marker_bit = [&](unsigned i) { return std::uint8_t((mk.pattern >> (mk.bits - 1 - i)) & 1u); };
    if (!profile.inner_conv) {
        for (unsigned i = 0; i < mk.bits; ++i) c.unique_word.push_back(marker_bit(i));
        c.frame_bits = modem::sync_period_bits(profile);
    } else {
        if (profile.conv.rate != modem::conv_rate::r1_2)
            throw std::invalid_argument(who + "punctured inner code: the coded marker changes from frame to frame");
        constexpr unsigned mem = modem::conv_constraint_length - 1;
        if (mk.bits < mem + 8) throw std::invalid_argument(who + "marker too short for a coded word");
        modem::conv_encoder enc(profile.conv);
        std::uint8_t head = 0;
        for (unsigned i = 0; i < mem; ++i) head = std::uint8_t((head << 1) | marker_bit(i));
        enc.preload(head);
        const unsigned n = mk.bits - mem;
        std::uint8_t packed[8] = {};
        for (unsigned i = 0; i < n; ++i) packed[i / 8] |= std::uint8_t(marker_bit(mem + i) << (7 - i % 8));
        std::vector<std::uint8_t> coded(2 * n);
        if (enc.encode(std::span<const std::uint8_t>(packed, (n + 7) / 8), n, coded) != coded.size())
            throw std::invalid_argument(who + "cannot encode the marker");
        // 2 * 32 - 12 = 52 channel bits for the 32-bit ASM; at most 64 keeps it in one register.
        if (coded.size() > 64) coded.resize(64);
        c.unique_word = std::move(coded);
        c.frame_bits = 2 * modem::sync_period_bits(profile);
    }
    const unsigned bps = bits_per_symbol(modulation);
    // The word must start on a symbol: a coded word starts 2 * 6 channel bits into the period.
    if (c.unique_word.size() % bps != 0 || c.frame_bits % bps != 0)
        throw std::invalid_argument(who + "word or period is not a whole number of symbols");
    c.max_bit_errors = unsigned(c.unique_word.size() / 8);
    return c;
}

rf_phase_resolver::rf_phase_resolver(const config& cfg) : cfg_(cfg), bps_(bits_per_symbol(cfg.modulation)) {
    const std::size_t n = cfg.unique_word.size();
    if (n < 16 || n > 64 || n % bps_ != 0)
        throw std::invalid_argument("rf_phase_resolver: unique_word has " + std::to_string(n) +
                                    " bits; need 16..64, a multiple of bits per symbol");
    if (cfg.frame_bits != 0 && (cfg.frame_bits <= n || cfg.frame_bits % bps_ != 0))
        throw std::invalid_argument("rf_phase_resolver: frame_bits = " + std::to_string(cfg.frame_bits) +
                                    " must be 0 or longer than the word and a multiple of bits per symbol");
    if (cfg.max_bit_errors > n / 8)
        throw std::invalid_argument("rf_phase_resolver: max_bit_errors = " + std::to_string(cfg.max_bit_errors) +
                                    " not in [0, " + std::to_string(n / 8) + "]");
    if (cfg.flywheel < 1) throw std::invalid_argument("rf_phase_resolver: flywheel must be >= 1");
    word_symbols_ = n / bps_;
    mask_ = n == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << n) - 1;
    rotations_ = bps_ == 1 ? 2 : 4;
    for (unsigned r = 0; r < rotations_; ++r) {
        std::uint64_t p = 0;
        for (std::size_t s = 0; s < word_symbols_; ++s) {
            unsigned code = bps_ == 1 ? unsigned(cfg.unique_word[s] != 0)
                                      : (unsigned(cfg.unique_word[2 * s] != 0) << 1) | unsigned(cfg.unique_word[2 * s + 1] != 0);
            p = (p << bps_) | rotate_code(code, r, bps_);
        }
        patterns_[r] = p;
    }
}

void rf_phase_resolver::reset() {
    reg_ = seen_ = next_ = 0;
    rot_ = 0;
    sync_ = false;
    missed_ = 0;
}

void rf_phase_resolver::derotate(modem::llr_t* sym, unsigned by) const {
    if (bps_ == 1) {
        if (by & 1) sym[0] = neg(sym[0]);
        return;
    }
    for (unsigned t = 0; t < (by & 3); ++t) {
        const modem::llr_t i = sym[0];
        sym[0] = sym[1];
        sym[1] = neg(i);
    }
}

rf_phase_resolver::result rf_phase_resolver::process(std::span<modem::llr_t> llrs) {
    const std::size_t symbols = llrs.size() / bps_;
    const std::size_t frame_symbols = cfg_.frame_bits / bps_;
    for (std::size_t s = 0; s < symbols; ++s) {
        modem::llr_t* sym = llrs.data() + s * bps_;
        reg_ = ((reg_ << bps_) | hard_code(sym, bps_)) & mask_;
        ++seen_;
        derotate(sym, rot_);
        if (seen_ < word_symbols_) continue;
        const bool expected = sync_ && seen_ == next_;
        if (sync_ && !expected) continue;
        unsigned found = rotations_;
        for (unsigned r = 0; r < rotations_; ++r)
            if (unsigned(std::popcount(reg_ ^ patterns_[r])) <= cfg_.max_bit_errors) {
                found = r;
                break;
            }
        if (found == rotations_) {
            if (expected) {
                ++stats_.words_missed;
                next_ += frame_symbols;
                if (++missed_ >= cfg_.flywheel) sync_ = false;
            }
            continue;
        }
        ++stats_.words_found;
        missed_ = 0;
        if (frame_symbols) {
            sync_ = true;
            next_ = seen_ + frame_symbols;
        }
        if (found != rot_) {
            ++stats_.rotation_changes;
            // Symbols of the word already written with the old rotation get the difference.
            const unsigned diff = (found + rotations_ - rot_) % rotations_;
            const std::size_t first = s + 1 >= word_symbols_ ? s + 1 - word_symbols_ : 0;
            for (std::size_t t = first; t <= s; ++t) derotate(llrs.data() + t * bps_, diff);
            rot_ = found;
        }
    }
    result r;
    r.llrs = symbols * bps_;
    if (llrs.size() % bps_ != 0) {
        r.ok = false;
        r.error = "rf_phase_resolver::process: LLR count is not a multiple of bits per symbol (the odd one is left)";
    }
    return r;
}

}  // namespace qlink::terminal
