// QKD post-processing sessions: Alice and Bob endpoints exchanging authenticated byte messages.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "qlink/keymgmt/auth.hpp"
#include "qlink/keymgmt/estimation.hpp"
#include "qlink/keymgmt/qkd_events.hpp"

namespace qlink::keymgmt {

/// Both ends must use the same config (the session aborts with config_mismatch otherwise).
struct postproc_config {
    decoy_settings decoy;
    finite_key_params eps;
    double qber_max = 0.11;              ///< Abort when the sampled Z QBER or the X QBER exceeds it.
    double qber_sample_fraction = 0.05;  ///< Share of sifted Z bits disclosed to estimate the QBER.
    std::size_t qber_sample_min = 64;    ///< ...but at least this many.
    std::size_t min_sifted_bits = 1000;  ///< Fewer Z key bits: abort (estimation_failed).
    std::size_t max_sifted_bits = std::size_t{1} << 20;  ///< More Z bits: only the first are used.
    unsigned cascade_passes = 12;
    std::size_t key_bits = 256;          ///< Size of one output key block (multiple of 8).
    /// Refuse to start with fewer pads (one pad authenticates one message).
    std::size_t min_auth_pads = 256;
    std::uint64_t seed = 1;              ///< Alice's randomness (sample, seeds, key IDs); Bob uses none.
};

/// Why a session produced no key.
enum class abort_reason : std::uint8_t {
    none = 0,
    qber_too_high,           ///< Sampled Z QBER or X QBER above qber_max.
    insufficient_auth_key,   ///< Pool too small to start, ran dry, or final key too short to refill it.
    estimation_failed,       ///< Too few events, or the finite-key length is not positive.
    authentication_failed,   ///< A message tag did not verify (tampering, replay, wrong key).
    verification_failed,     ///< Corrected keys differ (hash mismatch after Cascade).
    protocol_error,          ///< Malformed or unexpected message, inconsistent input.
    config_mismatch,         ///< The peer announced different parameters.
    peer_aborted,            ///< The peer sent an authenticated abort.
};
inline constexpr std::size_t abort_reason_count = 9;
std::string_view to_string(abort_reason r);

/// One output key: `bits` of key_bits / 8 bytes with a UUID (RFC 9562 version 4 layout) identical
/// at both ends. Wiped on destruction; move-only.
class key_block {
public:
    key_block() = default;
    key_block(const std::array<std::uint8_t, 16>& id, std::span<const std::uint8_t> bytes);
    ~key_block();
    key_block(key_block&& o) noexcept;
    key_block& operator=(key_block&& o) noexcept;
    key_block(const key_block&) = delete;
    key_block& operator=(const key_block&) = delete;
    const std::array<std::uint8_t, 16>& id() const { return id_; }
    std::span<const std::uint8_t> bytes() const { return bytes_; }
    void wipe();

private:
    std::array<std::uint8_t, 16> id_{};
    std::vector<std::uint8_t> bytes_;
};

/// Everything a session measured; the same numbers at both ends except where noted.
struct postproc_report {
    abort_reason reason = abort_reason::none;
    std::string detail;  ///< Human-readable reason (never contains key material).
    std::uint64_t detections = 0;
    std::uint64_t sifted_z = 0, sifted_x = 0;
    std::uint64_t sample_bits = 0, sample_errors = 0;
    double qber_z = 0;  ///< Sampled Z QBER.
    double qber_x = 0;  ///< X QBER (all X bits).
    finite_key_counts counts;
    lmc_bounds decoy;  ///< Asymptotic Lo-Ma-Chen estimate (reported, not used for the length).
    finite_key_result finite_key;
    std::uint64_t key_bits_reconciled = 0;  ///< n, the Z bits that went into Cascade.
    std::uint64_t leaked_ec_bits = 0;
    std::uint64_t corrected_bits = 0;  ///< Bob only.
    double ec_efficiency = 0;          ///< leaked / (n h(qber_z)).
    std::uint32_t cascade_rounds = 0;
    std::uint64_t verification_bits = 0;
    std::uint64_t secret_bits = 0;     ///< Length after privacy amplification.
    std::uint64_t auth_pads_consumed = 0, auth_pads_replenished = 0;
    std::uint64_t output_key_bits = 0;  ///< In key blocks (the rest refilled the pool or was dropped).
    std::uint32_t messages_sent = 0, messages_received = 0;
};

/// One end of one post-processing session (one block of detections). Message driven: feed every
/// message received from the peer to on_message() and send whatever it writes to `out`.
/// Bob speaks first (start()). Nothing throws after construction; malformed input aborts the
/// session with a reason.
class postproc_endpoint {
public:
    virtual ~postproc_endpoint() = default;
    /// Bob: writes the first message and returns true. Alice: returns false.
    virtual bool start(std::vector<std::uint8_t>& out) = 0;
    /// Handles one peer message; true when `out` holds a message to send back.
    virtual bool on_message(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) = 0;
    /// True once the session has succeeded or aborted.
    virtual bool finished() const = 0;
    virtual const postproc_report& report() const = 0;
    /// The keys (empty unless the session succeeded); moves them out.
    virtual std::vector<key_block> take_keys() = 0;
};

/// `session_id` must be equal at both ends and unique per pool; the block, pool must outlive the
/// endpoint. Throws std::invalid_argument on an invalid config.
std::unique_ptr<postproc_endpoint> create_alice_endpoint(const postproc_config& cfg, std::uint64_t session_id,
                                                         alice_block block, auth_key_pool& pool);
std::unique_ptr<postproc_endpoint> create_bob_endpoint(const postproc_config& cfg, std::uint64_t session_id,
                                                       bob_block block, auth_key_pool& pool);

/// Runs two endpoints against each other through an in-memory pipe until both finish or
/// `max_messages` were exchanged; returns the number of messages. For tests and tools.
std::size_t run_in_memory(postproc_endpoint& alice, postproc_endpoint& bob, std::size_t max_messages = 100000);

}  // namespace qlink::keymgmt
