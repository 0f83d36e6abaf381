// Attached sync markers and the streaming soft-bit frame synchroniser (SEARCH/CHECK/LOCK/FLYWHEEL).
#pragma once

#include "qlink/modem/soft_bits.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace qlink::modem {

/// An attached sync marker: `bits` (1..64) bits of `pattern`, MSB of the
/// marker first on the wire, right-aligned in `pattern`.
struct sync_marker {
    std::uint64_t pattern = 0;
    unsigned bits = 0;
};

/// CCSDS 131.0-B ASM ahead of TM frames / RS codeblocks.
inline constexpr sync_marker asm_tm_32{0x1ACFFC1Dull, 32};
/// CCSDS 131.0-B ASM ahead of LDPC codeblocks (rate 1/2 ... 4/5 family).
inline constexpr sync_marker asm_ldpc_64{0x034776C7272895B0ull, 64};

enum class sync_state : std::uint8_t { search, check, lock, flywheel };
std::string_view to_string(sync_state s);

/// Per-frame report of how the frame was found.
struct sync_frame_info {
    sync_state state = sync_state::search;  ///< state in which its marker was judged
    std::uint8_t marker_errors = 0;         ///< hard bit errors in its leading marker
    bool inverted = false;                  ///< the stream was inverted; the frame was corrected
    bool flywheel = false;                  ///< marker missed; position predicted
    std::uint64_t stream_bit = 0;           ///< index of the frame's first bit in the input stream
};

/// Counters of every state change and of what was seen. Monotonic.
struct sync_counters {
    std::uint64_t bits_in = 0;
    std::uint64_t frames_out = 0;
    std::uint64_t markers_found = 0;       ///< SEARCH hits accepted (SEARCH -> CHECK or LOCK)
    std::uint64_t search_rejected = 0;     ///< hard hits rejected by the soft confirmation
    std::uint64_t check_to_lock = 0;
    std::uint64_t check_to_search = 0;
    std::uint64_t lock_to_flywheel = 0;
    std::uint64_t flywheel_to_lock = 0;
    std::uint64_t flywheel_to_search = 0;  ///< sync lost
    std::uint64_t flywheel_resync = 0;     ///< marker found at a new offset while flywheeling (slip)
    std::uint64_t inversions = 0;          ///< polarity changes detected and corrected
    std::uint64_t marker_bit_errors = 0;   ///< sum over accepted markers
    std::uint64_t frames_dropped = 0;      ///< partial frames abandoned on resync
};

/// Result of one push: how much input was used and how many frames came out.
struct sync_result {
    std::size_t consumed = 0;
    std::size_t frames = 0;
    bool output_full = false;  ///< stopped early: `frames_out` had no room for the next frame
    bool ok = true;
    const char* error = nullptr;  ///< static string when !ok (nothing consumed)
};

/// Hard-decision packing kernel (generic + SIMD variants, bit exact): packs
/// the decisions of `soft` into `packed`, MSB first, ceil(n / 8) bytes with
/// n = min(soft.size(), 8 * packed.size()); a trailing partial byte is zero-
/// filled. bit = (llr < 0), or (llr > 0) when `inverted`: the decision on the
/// negated value, so an erasure gives 0 in both polarities.
class hard_decision_kernel {
public:
    virtual ~hard_decision_kernel() = default;
    virtual void pack(std::span<const llr_t> soft, std::span<std::uint8_t> packed, bool inverted) const = 0;
    virtual std::string_view name() const = 0;
};
/// "auto|generic|sse41|avx2|avx512"; throws std::invalid_argument for an unknown or unsupported name.
std::unique_ptr<hard_decision_kernel> create_hard_decision_kernel(std::string_view isa_name = "auto");

/// Hard-decision marker search kernel (generic + SIMD variants, bit exact).
/// Walks `soft` updating `window` (last 64 hard bits, newest in bit 0) and
/// returns the index of the first bit at which the last `bits` bits are within
/// `tolerance` bit errors of the marker (or of its inverse when `inverted_too`),
/// or soft.size() when none. The window then includes that bit.
class marker_search_kernel {
public:
    virtual ~marker_search_kernel() = default;
    virtual std::size_t find(std::span<const llr_t> soft, std::uint64_t& window, sync_marker marker,
                             unsigned tolerance, bool inverted_too) const = 0;
};
/// "auto|generic|sse41|avx2|avx512"; throws std::invalid_argument for an unknown or unsupported name.
std::unique_ptr<marker_search_kernel> create_marker_search_kernel(std::string_view isa_name = "auto");

class frame_synchronizer {
public:
    struct config {
        sync_marker marker = asm_tm_32;
        std::size_t frame_bits = 0;       ///< bits between the end of one marker and the next
        unsigned search_tolerance = 2;    ///< marker bit errors accepted in SEARCH
        unsigned lock_tolerance = 5;      ///< marker bit errors accepted in CHECK/LOCK/FLYWHEEL
        unsigned check_count = 1;         ///< good markers needed in CHECK before LOCK (0: straight to LOCK)
        unsigned flywheel_count = 3;      ///< missed markers tolerated before SEARCH
        bool detect_inverted = true;      ///< accept the inverted marker and invert what follows
        /// Soft confirmation of a SEARCH hit: the marker correlation sum(llr * s)
        /// must exceed this fraction of sum(|llr|) over the marker bits.
        float min_soft_correlation = 0.5f;
        bool emit_check_frames = true;    ///< emit frames found in CHECK (unconfirmed)
        bool emit_flywheel_frames = true; ///< emit frames whose marker was missed
        std::string isa = "auto";
    };

    /// Throws std::invalid_argument on a bad configuration (message names the field).
    explicit frame_synchronizer(const config& cfg);
    ~frame_synchronizer();
    frame_synchronizer(const frame_synchronizer&) = delete;
    frame_synchronizer& operator=(const frame_synchronizer&) = delete;

    /// Feeds soft bits; writes whole frames (frame_bits LLRs each, marker
    /// removed, polarity corrected) back to back into `frames_out`, one
    /// `info` entry per frame. Stops early when either output is full.
    sync_result push(std::span<const llr_t> soft, std::span<llr_t> frames_out, std::span<sync_frame_info> info);

    /// The same, but frames come out as packed hard decisions (frame_bits / 8
    /// bytes each, MSB first, polarity corrected): what a hard-decision decoder
    /// (RS) wants. A frame whose body is whole in `soft` is packed straight from
    /// it, without an intermediate copy. frame_bits must be a multiple of 8
    /// (else an error result, nothing consumed).
    sync_result push_packed(std::span<const llr_t> soft, std::span<std::uint8_t> frames_out,
                            std::span<sync_frame_info> info);

    /// Forgets alignment (back to SEARCH); counters are kept.
    void reset();

    sync_state state() const { return state_; }
    bool inverted() const { return inverted_; }
    const sync_counters& counters() const { return counters_; }
    const config& cfg() const { return cfg_; }

private:
    enum class phase : std::uint8_t { searching, body, marker };
    template <bool packed, typename out_t>
    sync_result push_impl(std::span<const llr_t> soft, std::span<out_t> frames_out, std::span<sync_frame_info> info);
    bool judge_marker(std::span<const llr_t> marker_soft, unsigned& errors, bool& flip) const;
    void on_marker_complete();
    void enter_search();
    void start_body(unsigned marker_errors, std::uint64_t body_start);

    config cfg_;
    std::unique_ptr<marker_search_kernel> kernel_;
    std::unique_ptr<hard_decision_kernel> packer_;
    std::uint64_t mask_ = 0;
    std::uint64_t window_ = 0;
    std::unique_ptr<llr_t[]> body_;
    std::array<llr_t, 64> recent_{};  ///< last 64 soft bits, ring, for soft confirmation
    std::array<llr_t, 64> marker_buf_{};
    std::size_t recent_pos_ = 0;
    std::size_t fill_ = 0;            ///< bits collected in the current body or marker
    phase phase_ = phase::searching;
    sync_state state_ = sync_state::search;
    bool inverted_ = false;
    bool pending_ = false;            ///< a complete body waits for room in the output
    unsigned good_ = 0;
    unsigned misses_ = 0;
    sync_frame_info cur_{};
    sync_counters counters_{};
    std::uint64_t stream_pos_ = 0;
};

}  // namespace qlink::modem
