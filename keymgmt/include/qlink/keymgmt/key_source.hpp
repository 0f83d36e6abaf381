// Where qkmd's keys come from: a pluggable key_source (QKD post-processing, upstream ETSI 014 KME, test simulation).
#pragma once

#include "qlink/keymgmt/etsi014_client.hpp"
#include "qlink/keymgmt/key_store.hpp"

#include <cmath>
#include <cstdint>
#include <memory>
#include <mutex>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::keymgmt {

struct produced_key {
    key_id id;
    secret_bytes material;
};

/// Link quality as the source measured it; NaN where the source cannot know (metrics show NaN).
struct source_stats {
    double qber = std::nan("");
    double secret_key_rate_bps = std::nan("");
    double reconciliation_efficiency = std::nan("");
    std::uint64_t aborts = 0;
    std::uint64_t keys_produced = 0;
    // QKD post-processing only (zero / empty for other sources):
    std::uint64_t sessions_ok = 0;
    std::uint64_t detections_received = 0;  ///< records from the QKD event port
    std::uint64_t event_blocks = 0;
    std::uint64_t blocks_discarded = 0;     ///< event blocks the peer did not have (never used)
    std::uint64_t bad_records = 0;          ///< malformed event records dropped
    double sim_time = std::nan("");         ///< start of the last event block received
    double ec_leak_bits = std::nan("");     ///< of the last session
    std::string state;                      ///< e.g. "connecting", "accumulating", "session", "pass_ended"
    std::string last_abort;                 ///< reason of the last abort, in words
    std::map<std::string, std::uint64_t> aborts_by_reason;
};

class key_source {
public:
    virtual ~key_source() = default;
    virtual std::string_view name() const = 0;
    /// Appends up to `max` new keys (non-blocking; 0 when none are ready).
    virtual std::size_t poll(std::vector<produced_key>& out, std::size_t max) = 0;
    virtual source_stats stats() const = 0;
};

/// TEST/SIMULATION ONLY: keys derived from a seed with HMAC-SHA-256, so two qkmd instances with
/// the same seed hold the same keys and IDs without any QKD link. Key i has
/// ID = UUIDv4 layout of HMAC(seed, "qkmd-sim-id" || i)[0..16), material = HMAC(seed, "qkmd-sim-key" || i).
struct sim_key_source_config {
    std::uint64_t seed = 1;
    std::size_t key_bytes = 32;  ///< 1..32
    std::uint64_t first_index = 0;
    std::size_t keys_per_poll = 64;
};
std::unique_ptr<key_source> create_sim_key_source(const sim_key_source_config& cfg);

/// Upstream KME over ETSI 014: this qkmd acts as an SAE of a device's KME and pulls keys with
/// enc_keys for `slave_sae_id` (the SAE identity of the qkmd at the other end).
struct upstream_key_source_config {
    etsi014_client::config client;
    std::string slave_sae_id;
    std::size_t key_bits = 256;
    std::size_t keys_per_request = 16;
};
std::unique_ptr<key_source> create_upstream_key_source(const upstream_key_source_config& cfg);

/// Adapter for QKD post-processing (postproc.hpp): sessions run elsewhere push their key blocks
/// and report numbers here; poll() drains them into the store.
class postproc_key_source final : public key_source {
public:
    std::string_view name() const override { return "postproc"; }
    /// Called once per finished session (keys empty when it aborted).
    void on_session(std::vector<produced_key> keys, bool aborted, double qber, double efficiency, double seconds,
                    std::uint64_t secret_bits);
    std::size_t poll(std::vector<produced_key>& out, std::size_t max) override;
    source_stats stats() const override;

private:
    mutable std::mutex mu_;
    std::vector<produced_key> pending_;
    source_stats stats_;
};

}  // namespace qlink::keymgmt
