// qkmd's QKD key source: QKD event port client, classical channel to the peer qkmd, post-processing sessions.
#pragma once

#include "qlink/keymgmt/key_source.hpp"
#include "qlink/keymgmt/postproc.hpp"

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

namespace qlink::keymgmt {

/// Wire constants of the simulator's QKD event port (docs/keymgmt.md, "QKD source").
namespace qkd_port_wire {
inline constexpr std::uint32_t block_magic = 0x42444B51;  // "QKDB"
inline constexpr std::size_t header_bytes = 56;
inline constexpr std::size_t record_bytes = 16;
inline constexpr std::uint32_t flag_end_of_pass = 1;
inline constexpr std::uint32_t flag_link_down = 2;
/// Refuse blocks with more records than this (a garbage count must not allocate gigabytes).
inline constexpr std::uint32_t max_records = 1u << 24;
}  // namespace qkd_port_wire

/// Runs BB84 post-processing with the peer qkmd over an authenticated TCP channel, from the
/// detection records of a QKD event port, and stores the keys (same IDs at both ends).
///   alice: listens for bob on peer_listen:peer_port;  bob: connects to peer_host:peer_port and
///   drives the sessions (he decides which event blocks form a post-processing block).
/// Keys are stored PREACTIVE and become ACTIVE only once both ends have stored them (a two-step
/// commit that survives a crash of either end; see docs/keymgmt.md).
class qkd_key_source : public key_source {
public:
    enum class role { alice, bob };
    struct config {
        role who = role::bob;
        std::string qkd_host = "127.0.0.1";
        std::uint16_t qkd_port = 0;
        std::string peer_listen = "127.0.0.1";  ///< alice
        std::string peer_host = "127.0.0.1";    ///< bob
        std::uint16_t peer_port = 0;            ///< alice: 0 = any free port (see peer_port())
        /// Pre-shared authentication key: 16-byte hash key then 16-byte pads (same file at both ends).
        std::filesystem::path auth_key_file;
        /// Saved authentication pool, pad watermark and pending commit (0600, fsync'd).
        std::filesystem::path state_file;
        /// Detections (Bob's count, equal at Alice) per post-processing block.
        std::size_t block_detections = 200000;
        postproc_config postproc;
        /// Give up waiting for the peer's part (blocks, replies) after this long.
        std::chrono::milliseconds peer_timeout{30000};
        std::chrono::milliseconds max_backoff{2000};
    };
    /// The classical-channel port alice listens on (0 for bob).
    virtual std::uint16_t peer_port() const = 0;
    virtual void stop() = 0;
};

/// Loads the pre-shared key or the saved state, binds (alice) and starts the worker threads.
/// Throws std::runtime_error with a clear message on unusable files or ports.
std::unique_ptr<qkd_key_source> create_qkd_key_source(const qkd_key_source::config& cfg, key_store& store);

}  // namespace qlink::keymgmt
