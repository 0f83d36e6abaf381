// Information reconciliation: Cascade (Brassard-Salvail) as two message-driven halves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace qlink::keymgmt {

/// Both halves must be built with the same config and key length: block sizes and the per-pass
/// permutations are derived from it deterministically. Keys are unpacked bits (one per byte).
struct cascade_config {
    double qber = 0.02;         ///< Estimate the block sizes are chosen from (clamped to [1e-4, 0.25]).
    /// 2..16. Passes after the second use blocks of n/2 and cost ~2 parities when clean; each
    /// catches a leftover error pair with probability ~1/2, so many are cheap insurance.
    /// Bob keeps 8 bytes per key bit per pass (permutation and inverse).
    unsigned passes = 12;
    std::uint64_t seed = 0;     ///< Permutation seed (chosen by Alice, sent authenticated).
};

/// Top-level block size of every pass for n bits (rule in docs/keymgmt-postproc.md: a power of
/// two near 0.73/Q, then 2^ceil((log2 k1 + 12) / 2), then n/2); both ends call this.
std::vector<std::size_t> cascade_block_sizes(std::size_t n, double qber, unsigned passes);

struct cascade_stats {
    std::uint64_t leaked_bits = 0;  ///< Parities Alice disclosed.
    std::uint64_t corrected = 0;    ///< Bits Bob flipped.
    std::uint32_t rounds = 0;       ///< Request/reply round trips.
    std::uint64_t request_bytes = 0, reply_bytes = 0;
};

/// f = leaked / (n h(qber)); 0 when n h(qber) is 0.
double reconciliation_efficiency(std::uint64_t leaked_bits, std::size_t n, double qber);

/// Alice's half: holds the reference key and answers parity requests.
class cascade_alice {
public:
    cascade_alice(std::span<const std::uint8_t> key, const cascade_config& cfg);
    ~cascade_alice();
    cascade_alice(const cascade_alice&) = delete;
    cascade_alice& operator=(const cascade_alice&) = delete;
    /// Writes the reply to one request; false (error() says why) on a malformed request.
    bool answer(std::span<const std::uint8_t> request, std::vector<std::uint8_t>& reply);
    std::uint64_t leaked_bits() const;
    std::string_view error() const;

private:
    struct impl;
    std::unique_ptr<impl> d_;
};

/// Bob's half: corrects his key in place (the span must outlive the object).
class cascade_bob {
public:
    cascade_bob(std::span<std::uint8_t> key, const cascade_config& cfg);
    ~cascade_bob();
    cascade_bob(const cascade_bob&) = delete;
    cascade_bob& operator=(const cascade_bob&) = delete;
    /// Next request to send; false when reconciliation is finished (nothing written).
    bool next_request(std::vector<std::uint8_t>& request);
    /// Consumes the reply to the last request; false (error() says why) when malformed.
    bool handle_reply(std::span<const std::uint8_t> reply);
    const cascade_stats& stats() const;
    std::string_view error() const;

private:
    struct impl;
    std::unique_ptr<impl> d_;
};

/// Runs both halves against each other in memory (tests, benchmarks). Returns Bob's stats.
cascade_stats cascade_reconcile_local(std::span<const std::uint8_t> alice_key, std::span<std::uint8_t> bob_key,
                                      const cascade_config& cfg);

}  // namespace qlink::keymgmt
