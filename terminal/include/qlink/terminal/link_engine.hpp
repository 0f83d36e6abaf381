// The link engine: user byte streams and datagrams in, coded air bits out (and back), with ARQ, SDLS and key rotation.
#pragma once

#include "qlink/modem/key_source.hpp"
#include "qlink/modem/sdls.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::terminal {

/// Which end of the link this engine is. It fixes the SDLS IV fixed fields of both directions, so the
/// two directions can never use the same IV even if they draw the same key (both ends take keys from
/// one QKD pool).
enum class link_role : std::uint8_t { ground, space };

/// Where a user is in one received stream: the byte offset of the next byte it has not taken, counted
/// in the numbering of the peer's ARQ sender session `sender_session` (a restarted peer numbers from 0).
struct stream_position {
    std::uint32_t sender_session = 0;  ///< 0: no sender heard yet
    std::uint64_t offset = 0;
    bool operator==(const stream_position&) const = default;
};

/// Streams of one engine (the stream number is a u8 on the user side, 0..7).
inline constexpr std::size_t link_max_streams = 8;

/// What a datagram carries, kept apart end to end (its own tag on the air, its own queues), so IP
/// packets from a TUN interface and the UDP port's payloads never reach each other's receiver and
/// neither can fill the other's queue.
enum class datagram_channel : std::uint8_t { user = 0, ip = 1 };
inline constexpr std::size_t link_datagram_channels = 2;

struct link_engine_config {
    link_role role = link_role::ground;
    /// Modem chain profile names (modem/profile.hpp) per direction: tx_profile is what this engine
    /// sends, rx_profile what the peer sends (the peer's tx_profile). Empty: the default profile.
    std::string tx_profile, rx_profile;
    std::string isa = "auto";  ///< SIMD override for the coding chain: auto|generic|sse41|avx2|avx512

    /// AOS spacecraft ID: 8 bits in an AOS primary header (732.0-B), so 0..255.
    std::uint16_t spacecraft_id = 0xAB;
    std::uint8_t tx_vcid = 1;  ///< VC this engine sends on (0..62)
    std::uint8_t rx_vcid = 1;  ///< VC the peer sends on

    // SDLS (docs/link.md)
    bool security = true;  ///< false: clear frames (tests, or a link without keys)
    std::uint16_t spi = 1;  ///< first SPI this engine's transmitter allocates
    modem::sdls_mode sdls_mode = modem::sdls_mode::auth_enc;
    std::uint64_t rotate_every_frames = 1ull << 20;  ///< clamped to the GCM limit 2^32
    double rotate_every_s = 0.0;                      ///< simulated seconds under one key; 0 = off
    std::uint16_t announce_frames = 16;               ///< next key announced this many frames before the switch
    modem::key_exhaustion_policy key_exhaustion_policy = modem::key_exhaustion_policy::stop;
    modem::link_key_source* fallback_keys = nullptr;  ///< needed for the fallback policy (tx and rx lookups)
    std::uint32_t replay_window = 64;
    /// Called (from the transport thread) when keys run out or a fallback key is used. Never gets key bytes.
    std::function<void(std::string_view)> on_alarm;

    // ARQ (modem/arq.hpp). Segment payload per direction is derived from that direction's frame size
    // (one segment + one ack fit in one frame); 0 = derived. Window and sack_bits must equal the peer's.
    std::uint32_t arq_window = 4096;  ///< segments, power of two, must equal the peer's
    std::size_t arq_max_payload = 0;
    double rto_min_s = 0.002, rto_max_s = 2.0, rto_initial_s = 0.1;
    double ack_interval_s = 0.02;  ///< repeat of the ack state while idle (also the pass-end ack)
    std::uint32_t sack_bits = 256;  ///< SACK bitmap length, multiple of 8, <= 8192
    std::uint8_t streams = 8;       ///< ordered byte streams 0..streams-1 (1..8)
    /// ARQ session numbers of this engine's sender and receiver; 0 = derived from the first simulated
    /// time they see. A daemon draws them per start: simulated time repeats from run to run, and a
    /// resume point recorded for one link must never match the sender of another.
    std::uint32_t arq_tx_session = 0, arq_rx_session = 0;
    /// true: the peer's data is acknowledged only once the user confirms it with consumed() (qlinkd:
    /// after writing it to the user's socket), so what sat in a buffer when this process died is resent
    /// to its replacement. false: what receive() hands out counts as taken.
    bool ack_consumed_only = false;
    /// Restart: per stream, what the user already holds (from a delivery_record). The receiver drops
    /// bytes below it instead of delivering them again; a point of another sender session is ignored.
    std::array<std::optional<stream_position>, link_max_streams> resume{};

    // Queues
    std::size_t rx_stream_buffer_bytes = 4u << 20;  ///< per stream; above it incoming data waits (ARQ resends)
    std::size_t datagram_queue_bytes = 1u << 20;    ///< user channel, per direction; full: send_datagram refuses, rx drops
    /// IP channel, per direction. Small on purpose: a queue is delay, and IP's congestion control
    /// wants loss early rather than seconds of queued packets (64 KiB: 5 s at 100 kbit/s).
    std::size_t ip_queue_bytes = 64u << 10;
    std::size_t max_datagram_bytes = 65535;
    std::size_t queue_depth_frames = 8;  ///< LLR chunks queued between the transport and the RX worker (power of two)
    /// Frames the TX worker keeps encoded ahead of the transport, the one being sent included (power of
    /// two). Each is latency: a frame waits behind them, and so do the ARQ acknowledgements in it
    /// (8 frames of a 10 kbit/s RS I=1 link are 3.3 s). Raise it where a frame lasts less than the
    /// worker's wake-up (~0.1 ms: above ~80 Mbit/s with 1 KiB frames).
    std::size_t tx_queue_frames = 2;
    /// true: encode and decode run on two worker threads fed through bounded SPSC queues (pull_tx_bits
    /// hands out blocks the TX worker encoded ahead; push_rx_llrs queues and returns, waiting only
    /// when the queue is full). false: everything runs in the calling thread (deterministic; tests).
    bool worker_threads = true;
};

/// Cumulative counters, a consistent snapshot.
struct link_stats {
    // frames
    std::uint64_t frames_tx = 0;         ///< all frames encoded, idle included
    std::uint64_t idle_frames_tx = 0;
    std::uint64_t frames_rx_ok = 0;      ///< frames the chain decoded with a good CRC
    std::uint64_t frames_crc_fail = 0;   ///< synchronised frames that RS or the CRC refused
    std::uint64_t rs_corrected = 0;      ///< RS symbols corrected
    std::uint64_t ldpc_iterations = 0;   ///< LDPC decoder iterations (LDPC profiles)
    std::uint64_t decode_fail = 0;       ///< RS decoder failures (frames)
    std::uint64_t sync_losses = 0;
    std::uint64_t decoder_restarts = 0;  ///< chain decoder restarted after an outage (rx_link_pipeline)
    std::uint64_t frames_lost = 0;       ///< AOS frame-count gaps (frames)
    std::uint64_t security_rejected = 0;
    std::uint64_t rx_channel_errors_est = 0;  ///< RS symbol corrections: a lower bound on bit errors after Viterbi
    // ARQ
    std::uint64_t arq_segments_tx = 0;
    std::uint64_t arq_retransmissions = 0;
    std::uint64_t arq_in_flight = 0;     ///< segments accepted and not yet acknowledged
    std::uint64_t bytes_acked = 0;       ///< user stream bytes the peer confirmed
    std::uint64_t bytes_delivered = 0;   ///< user stream bytes delivered to this end's receive()
    std::uint64_t arq_duplicates = 0;
    std::uint64_t rx_flow_drops = 0;     ///< segments refused because receive() is not keeping up
    std::uint64_t bytes_consumed = 0;    ///< stream bytes the user confirmed (consumed(); = user_bytes_out without ack_consumed_only)
    std::uint64_t resume_trimmed_bytes = 0;  ///< resent bytes below a resume point, dropped (the user had them)
    std::uint64_t resume_gaps = 0;       ///< a stream continued beyond its resume point (bytes lost elsewhere)
    std::uint64_t resume_discarded = 0;  ///< resume points of another sender session, ignored
    double arq_srtt_s = 0.0;
    // keys
    std::uint32_t active_key_id = 0;     ///< transmit key in use (0: none yet)
    std::uint64_t rotations = 0;         ///< transmit-side key switches
    std::uint64_t rx_rotations = 0;
    std::uint64_t keys_consumed = 0;     ///< keys taken from the key sources (tx)
    std::uint64_t keys_exhausted = 0;    ///< frames held back for lack of a key
    std::uint64_t auth_failures = 0;
    std::uint64_t replays = 0;
    bool traffic_stopped = false;        ///< keys ran out under the stop policy and data is waiting
    // user
    std::uint64_t user_bytes_in = 0;     ///< stream bytes accepted by send()
    std::uint64_t user_bytes_out = 0;    ///< stream bytes handed out by receive()
    std::uint64_t datagrams_in = 0, datagrams_out = 0, datagrams_dropped = 0;  ///< datagram_channel::user
    std::uint64_t ip_packets_in = 0, ip_packets_out = 0, ip_packets_dropped = 0;  ///< datagram_channel::ip
    // time per stage (ns, wall clock of this process)
    std::uint64_t ns_frame_build = 0, ns_protect = 0, ns_encode = 0;
    std::uint64_t ns_decode = 0, ns_verify_parse = 0;
    double sim_time = 0.0;               ///< latest simulated time seen on the air side
};

/// Stream bytes accepted by send() that the peer has not confirmed: [first_byte, first_byte + length).
struct undelivered {
    std::uint8_t stream;
    std::uint64_t first_byte, length;
};

class link_engine {
public:
    /// Throws std::invalid_argument (naming the field) on a bad configuration.
    static std::unique_ptr<link_engine> create(const link_engine_config& cfg, modem::link_key_source& tx_keys,
                                               modem::link_key_source& rx_keys);
    virtual ~link_engine() = default;

    // user side: non-blocking; returns bytes accepted (0 = full, backpressure). Ordered byte streams.
    virtual std::size_t send(std::uint8_t stream, std::span<const std::uint8_t> data) = 0;
    /// UDP-style, whole or nothing, not retransmitted. False when too big or the channel's queue is full.
    virtual bool send_datagram(std::span<const std::uint8_t> datagram, datagram_channel channel) = 0;
    bool send_datagram(std::span<const std::uint8_t> datagram) { return send_datagram(datagram, datagram_channel::user); }
    /// Delivered bytes, in order, each once.
    virtual std::size_t receive(std::uint8_t stream, std::span<std::uint8_t> out) = 0;
    /// One datagram of `channel` into `out` (0 if none; a datagram larger than `out` is dropped and counted).
    virtual std::size_t receive_datagram(std::span<std::uint8_t> out, datagram_channel channel) = 0;
    std::size_t receive_datagram(std::span<std::uint8_t> out) { return receive_datagram(out, datagram_channel::user); }
    /// With ack_consumed_only: the user has taken `bytes` more of what receive() handed out on `stream`
    /// (qlinkd: written to the user's socket). Only then may the peer release them. More than was
    /// handed out is clamped (and counted as a misuse). Without ack_consumed_only: ignored.
    virtual void consumed(std::uint8_t stream, std::size_t bytes) = 0;
    /// Where the user will be on `stream` once it has confirmed `bytes` more (0: where it is now);
    /// `bytes` beyond what receive() handed out counts up to that. What a daemon records before it
    /// writes to its user (docs/qlinkd.md, "Restart of the far end").
    virtual stream_position position_after(std::uint8_t stream, std::size_t bytes) const = 0;

    // air side, called by the transport thread(s) with the relay's simulated time (pass_spec.md):
    /// Fills `packed` with the next coded bits, MSB first (idle frames when nothing to send); returns
    /// the bits written (8 * packed.size()).
    virtual std::size_t pull_tx_bits(std::span<std::uint8_t> packed, double sim_time) = 0;
    /// Soft bits of the peer's transmission (erasures 0 while the link is down).
    virtual void push_rx_llrs(std::span<const std::int8_t> llrs, double sim_time) = 0;

    virtual link_stats stats() const = 0;  ///< thread-safe snapshot
    /// Stops accepting, reports the stream bytes not confirmed by the peer. Call after the last
    /// pull/push (the end of pass); the engine accepts no more data afterwards.
    virtual std::vector<undelivered> finish() = 0;
};

/// Durable record of where a daemon's users are in each received stream (docs/qlinkd.md, "Restart of
/// the far end"), read back as link_engine_config::resume after a restart. A 4 KiB file mapped shared:
/// a store into it is in the kernel's page cache once the instruction has run, so it survives kill -9
/// without a system call per write; sync() puts it on disk (for a power cut). Each stream has two
/// copies and a selector: a write fills the idle copy, then flips the selector with one aligned store,
/// so a kill at any instant leaves one whole copy. One writer thread; host byte order (local state).
class delivery_record {
public:
    struct entry {
        stream_position written;   ///< what the user is known to hold
        stream_position intended;  ///< == written, or where the user is if the write then in progress completed
    };
    /// Opens (creating it, mode 0600, when absent) the record at `path`. Throws std::runtime_error
    /// naming the file and the reason (cannot create, not a delivery record).
    explicit delivery_record(const std::string& path);
    ~delivery_record();
    delivery_record(const delivery_record&) = delete;
    delivery_record& operator=(const delivery_record&) = delete;

    /// The stream's entry as the file held it when opened (nullopt: never written).
    std::optional<entry> loaded(std::uint8_t stream) const;
    /// Before a write to the user: where it will be once the write completes.
    void intend(std::uint8_t stream, stream_position after);
    /// After it: where the user is (settles the intent).
    void commit(std::uint8_t stream, stream_position now);
    /// msync to disk; false (errno set) on failure. A kill -9 needs no sync, a machine crash does.
    bool sync();
    const std::string& path() const { return path_; }

private:
    void store(std::uint8_t stream, const entry& e);
    std::string path_;
    int fd_ = -1;
    std::uint8_t* map_ = nullptr;
    std::array<std::optional<entry>, link_max_streams> loaded_{};
    std::array<entry, link_max_streams> current_{};
};

}  // namespace qlink::terminal
