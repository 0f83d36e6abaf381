// SDLS frame security for AOS frames: security header/trailer, AES-256-GCM per SA, anti-replay,
// and hitless key rotation announced in-band.
#pragma once

#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/key_source.hpp"
#include "qlink/modem/security_association.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace qlink::modem {

/// Security header, 26 bytes, all of it authenticated (part of the AAD with the primary header
/// and insert zone):
///   SPI (2) ‖ key ID (4) ‖ IV (12) = fixed (4) ‖ counter (8, also the ARSN) ‖
///   next SPI (2) ‖ next key ID (4) ‖ frames until the switch (2)
/// The key ID and the announcement are our mission-specific extension of the 355.0-B header: they
/// let the receiver fetch the key of a new SA by ID, ahead of time (announcement, repeated in N
/// frames) or on the first frame that uses it.
inline constexpr std::size_t sdls_header_length = 26;
inline constexpr std::size_t sdls_trailer_length = sdls_mac_length;

/// `layout` with the SDLS header/trailer lengths filled in.
aos_layout sdls_layout(aos_layout layout);

struct sdls_header {
    std::uint16_t spi = 0;
    std::uint32_t key_id = 0;
    std::array<std::uint8_t, sdls_iv_length> iv{};
    std::uint16_t next_spi = 0;  ///< 0: nothing announced
    std::uint32_t next_key_id = 0;
    std::uint16_t frames_to_switch = 0;
    std::uint64_t counter() const;
};
bool write_sdls_header(const sdls_header& h, std::span<std::uint8_t> out);
std::optional<sdls_header> parse_sdls_header(std::span<const std::uint8_t> in);

enum class key_exhaustion_policy {
    stop,      ///< stop protected traffic; protect() returns keys_exhausted and the alarm fires
    fallback,  ///< take keys from the fallback source (qlinkd: classical X25519 keys); stop when it runs out too
};

struct sdls_counters {
    std::uint64_t frames = 0;           ///< protected or accepted
    std::uint64_t bad_frames = 0;       ///< wrong length, unparsable header, SPI 0, IV fixed part wrong
    std::uint64_t auth_failures = 0;
    std::uint64_t replays = 0;          ///< duplicate or older than the window
    std::uint64_t unknown_spi = 0;      ///< new SPI whose key the key source does not have
    std::uint64_t stale_spi = 0;        ///< frames for a destroyed SA
    std::uint64_t key_reuse_refused = 0;
    std::uint64_t rotations = 0;
    std::uint64_t keys_exhausted = 0;   ///< frames refused for lack of a key
    std::uint64_t fallback_keys = 0;
};

class sdls_transmitter final : public frame_protector {
public:
    struct config {
        aos_layout layout;  ///< as returned by sdls_layout()
        sdls_mode mode = sdls_mode::auth_enc;
        std::array<std::uint8_t, sdls_iv_fixed_length> iv_fixed{};  ///< distinct per direction
        std::uint16_t first_spi = 1;
        /// Rotate after this many frames per key; clamped to 2^32 (GCM limit).
        std::uint64_t max_frames_per_key = 1ull << 20;
        /// Rotate after this long under one key (0: off); needs `clock_ms`.
        std::int64_t rotation_period_ms = 0;
        std::function<std::int64_t()> clock_ms;
        /// The next SA is announced in this many frames before the switch.
        std::uint16_t announce_frames = 16;
        /// A rotation that found no key asks the key source again only after this many frames (>= 1):
        /// a key source may be a round trip to qkmd, and a rotation can stay due for up to
        /// max_frames_per_key frames while QKD keys are out.
        std::uint32_t key_retry_frames = 64;
        key_exhaustion_policy policy = key_exhaustion_policy::stop;
        link_key_source* fallback = nullptr;
        /// Called with a human-readable message when keys run out or a fallback key is used.
        std::function<void(std::string_view)> alarm;
        /// Test hook: counter of the first frame under the first key (e.g. to reproduce a NIST IV).
        std::uint64_t first_counter = 1;
    };
    /// Throws std::invalid_argument for a layout without the SDLS lengths or no room.
    sdls_transmitter(const config& cfg, link_key_source& keys);
    security_status protect(std::span<std::uint8_t> frame) override;
    const sdls_counters& counters() const { return c_; }
    std::uint16_t current_spi() const;
    std::uint32_t current_key_id() const;
    /// The rotation limit in force (the configured one, clamped to the GCM limit).
    std::uint64_t max_frames_per_key() const { return cfg_.max_frames_per_key; }

private:
    config cfg_;
    link_key_source& keys_;
    std::unique_ptr<security_association> cur_;
    std::unique_ptr<security_association> next_;
    std::uint16_t frames_to_switch_ = 0;
    std::int64_t key_started_ms_ = 0;
    std::uint64_t next_key_try_ = 0;  ///< frame count (c_.frames) before which a due rotation does not ask again
    std::uint16_t spi_;
    std::unordered_set<std::uint32_t> used_keys_;
    sdls_counters c_;
    std::unique_ptr<security_association> make_sa(bool allow_fallback);
    bool rotation_due() const;
    void switch_to_next();
};

class sdls_receiver final : public frame_verifier {
public:
    struct config {
        aos_layout layout;  ///< as returned by sdls_layout()
        sdls_mode mode = sdls_mode::auth_enc;
        std::array<std::uint8_t, sdls_iv_fixed_length> iv_fixed{};  ///< the peer transmitter's
        std::uint32_t replay_window = 64;  ///< 1..64
        /// Frames accepted under a newer SA before the previous one is destroyed (late frames drain).
        std::uint32_t grace_frames = 64;
        link_key_source* fallback = nullptr;  ///< also asked for keys by ID
    };
    sdls_receiver(const config& cfg, link_key_source& keys);
    security_status verify(std::span<std::uint8_t> frame) override;
    const sdls_counters& counters() const { return c_; }
    /// State of the SA with this SPI (destroyed also for unknown SPIs).
    sa_state state_of(std::uint16_t spi) const;

private:
    config cfg_;
    link_key_source& keys_;
    std::vector<std::unique_ptr<security_association>> sas_;
    std::unordered_set<std::uint32_t> used_keys_;
    std::uint64_t accepted_under_active_ = 0;
    sdls_counters c_;
    security_association* find(std::uint16_t spi);
    security_association* create(std::uint16_t spi, std::uint32_t key_id);
};

}  // namespace qlink::modem
