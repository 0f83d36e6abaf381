// Selective-repeat ARQ over the transfer-frame layer: sender, receiver, wire format, pass report.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace qlink::modem {

// Simulated or real time; always passed in, never read from a clock here, so tests run in
// simulated time.
using arq_time = std::chrono::nanoseconds;

// Wire format (big endian), carried in the data field of one transfer frame:
//   data: 0xA1 | tx_count u8 | stream u16 | seq u32 | offset u64 | length u16
//         | base u32 | tx_session u32 | rx_session u32 | payload
//   ack : 0xA2 | echo_tx u8  | cum u32 | echo_seq u32 | sack_base u32 | sack_bytes u16
//         | rx_session u32 | tx_session u32 | bitmap
// `cum` is the receiver's next in-order sequence number (everything below it was delivered);
// bit i of the bitmap (LSB first in each byte) says sequence sack_base + i is held.
// `echo_seq/echo_tx` name the transmission that triggered the ack, which makes RTT samples
// unambiguous (no Karn rule needed) and drives time-based loss detection; echo_tx 0 means the
// ack is a periodic repeat and names no transmission.
// Sessions (restart recovery, docs/link.md "ARQ across a restart"): each sender and receiver
// instance has a nonzero session number. A data segment carries the sender's window `base`
// (oldest unacknowledged sequence number), its own session and the receiver session it is bound
// to (0: none heard yet); an ack carries the receiver's session and the sender session whose
// sequence space it describes. A replacement receiver takes the window base from the sender once
// the sender is bound to it; a sender seeing a new receiver session forgets the old one's
// selective acks (that receiver's held segments died with it) and resends them; acks addressed to
// another sender session are ignored.
inline constexpr std::size_t arq_data_header_bytes = 30;
inline constexpr std::size_t arq_ack_header_bytes = 24;
inline constexpr std::uint8_t arq_type_data = 0xA1;
inline constexpr std::uint8_t arq_type_ack = 0xA2;

// Bytes of one stream that were not delivered: [offset, offset + length).
struct arq_range {
    std::uint16_t stream = 0;
    std::uint64_t offset = 0;
    std::uint64_t length = 0;
    bool operator==(const arq_range&) const = default;
};

// Session number of an instance that was not given one: a mix of the first time it sees (the
// instance's start), never 0. Two instances started at different nanoseconds get different
// numbers except with probability 2^-32.
std::uint32_t arq_session_from_time(arq_time t);

// Window in segments needed to keep a link of `frames_per_second` busy over `rtt`, rounded up
// to a power of two (the sequence space is split into slots by masking).
std::uint32_t arq_window_for(arq_time rtt, double frames_per_second);

class arq_sender {
public:
    struct config {
        std::uint32_t window = 4096;          // segments in flight or queued; power of two, <= 2^20
        std::size_t max_payload = 1024;       // user bytes per segment (frame data field - 30)
        std::uint16_t max_streams = 16;
        arq_time initial_rto = std::chrono::milliseconds(100);
        arq_time min_rto = std::chrono::milliseconds(2);
        arq_time max_rto = std::chrono::seconds(2);
        arq_time max_probe_interval = std::chrono::milliseconds(200); // probe cadence cap in outages
        arq_time reorder_window = std::chrono::microseconds(0); // the optical channel keeps order
        unsigned probe_after_timeouts = 3;    // consecutive RTO events before pausing to probe
        std::uint32_t session = 0;            // 0: arq_session_from_time(first poll_transmit time)
    };

    struct stats {
        std::uint64_t segments_sent = 0;      // first transmissions
        std::uint64_t retransmissions = 0;
        std::uint64_t probes = 0;
        std::uint64_t timeouts = 0;           // RTO events (one per backoff step)
        std::uint64_t lost_detected = 0;      // marked lost by an ack of a later transmission
        std::uint64_t acks_received = 0;
        std::uint64_t acks_rejected = 0;      // malformed or naming sequence numbers never sent
        std::uint64_t rtt_samples = 0;
        std::uint64_t rejected_submits = 0;   // unknown stream
        std::uint64_t acks_other_session = 0; // acks describing another sender session: ignored
        std::uint64_t receiver_restarts = 0;  // a new receiver session took over
        std::uint64_t requeued_for_new_receiver = 0; // unacknowledged segments sent again to a new receiver
    };

    struct transmit_result {
        std::size_t bytes = 0;                // 0: nothing to send now
        bool retransmission = false;
        bool probe = false;
        bool error = false;                   // output span too small
    };

    explicit arq_sender(const config& cfg); // throws std::invalid_argument on a bad config
    ~arq_sender();
    arq_sender(const arq_sender&) = delete;
    arq_sender& operator=(const arq_sender&) = delete;

    // Copies as much of `data` as the window has room for; returns the bytes accepted (the caller
    // keeps the rest: backpressure). Accepted bytes are either delivered or reported by
    // pass_report().
    std::size_t submit(std::uint16_t stream, std::span<const std::uint8_t> data);

    // Next frame data field to put on the link now, if any. Allocation-free.
    transmit_result poll_transmit(arq_time now, std::span<std::uint8_t> out);

    // Feed one frame from the return link. Returns false (and counts) when it is not a valid ack.
    bool on_ack(arq_time now, std::span<const std::uint8_t> frame);

    // Accepted bytes not yet confirmed delivered, per stream, merged into ranges and sorted by
    // (stream, offset). After the receiver's last ack has arrived this is exactly what the
    // receiver lacks; before that it is a superset (never an undercount).
    std::vector<arq_range> pass_report() const;

    bool idle() const;                       // everything accepted has been acknowledged
    bool probing() const { return probing_; }
    arq_time rto() const { return rto_; }
    arq_time srtt() const { return srtt_; }
    std::uint32_t free_segments() const;
    std::uint32_t session() const { return session_; }  // 0 until the first poll_transmit
    std::uint32_t receiver_session() const { return rx_session_; }
    const stats& counters() const { return stats_; }

private:
    struct slot;
    enum class list_id : std::uint8_t { none, in_flight, lost };
    struct list {
        std::int32_t head = -1;
        std::int32_t tail = -1;
    };

    std::uint32_t index(std::uint32_t seq) const { return seq & (cfg_.window - 1); }
    void list_remove(std::uint32_t idx);
    void list_push_back(list_id which, std::uint32_t idx);
    list& list_of(list_id which) { return which == list_id::in_flight ? in_flight_ : lost_; }
    std::size_t write_segment(std::uint32_t seq, arq_time now, std::span<std::uint8_t> out);
    std::size_t write_copy(std::uint32_t seq, std::span<std::uint8_t> out) const;
    /// The data segment of `seq` as it stands, with `tx_count` in its echo field (0: a copy).
    std::size_t encode_data(std::uint32_t seq, std::uint8_t tx_count, std::span<std::uint8_t> out) const;
    bool mark_acked(std::uint32_t seq);
    void rtt_sample(arq_time sample);
    void new_receiver(std::uint32_t rx_session);

    config cfg_;
    std::vector<slot> slots_;
    std::vector<std::uint8_t> buffer_;
    std::vector<std::uint64_t> next_offset_;
    list in_flight_{};
    list lost_{};
    std::uint32_t snd_una_ = 0;   // oldest unacknowledged
    std::uint32_t snd_nxt_ = 0;   // next never-sent
    std::uint32_t snd_end_ = 0;   // next free (one past the last accepted segment)
    arq_time srtt_{0};
    arq_time rttvar_{0};
    arq_time rto_;
    bool have_rtt_ = false;
    bool probing_ = false;
    unsigned consecutive_timeouts_ = 0;
    arq_time last_timeout_{};
    bool timeout_armed_ = false;
    arq_time next_probe_{};
    arq_time held_probe_at_{};      // next copy of a selectively acked head (see poll_transmit)
    std::uint32_t session_ = 0;
    std::uint32_t rx_session_ = 0;  // receiver session bound to (0: none heard yet)
    stats stats_{};
};

// Receives data segments, holds out-of-order ones, hands bytes to the sink in sequence order
// (so in order per stream), exactly once.
class arq_receiver {
public:
    struct config {
        std::uint32_t window = 4096;          // must equal the sender's
        std::size_t max_payload = 1024;
        std::uint16_t max_streams = 16;
        std::uint32_t sack_bits = 512;        // multiple of 8, <= 8192
        arq_time ack_repeat = std::chrono::milliseconds(20); // re-send state so the last ack of a pass gets through
        std::uint32_t session = 0;            // 0: arq_session_from_time(first on_frame time)
        // true: the cumulative ack says what the user has consumed (reported through consumed()),
        // not what was handed to the sink; delivered-but-unconsumed segments are acknowledged
        // selectively, which stops retransmission but releases nothing at the sender. Bytes the
        // sink buffered when the process dies are then resent to its replacement.
        bool ack_consumed_only = false;
    };

    class sink {
    public:
        virtual ~sink() = default;
        virtual void deliver(std::uint16_t stream, std::uint64_t offset, std::span<const std::uint8_t> data) = 0;
    };

    struct stats {
        std::uint64_t segments_delivered = 0;
        std::uint64_t bytes_delivered = 0;
        std::uint64_t duplicates = 0;
        std::uint64_t out_of_window = 0;
        std::uint64_t malformed = 0;          // bad type, length, stream, or stream offset
        std::uint64_t acks_built = 0;
        std::uint64_t waiting_for_sender = 0; // segments dropped while the sender was bound to another receiver
        std::uint64_t resyncs = 0;            // window base taken from the sender (start, restart, skip)
        std::uint64_t sender_restarts = 0;    // a new sender session: its streams start again at 0
        std::uint64_t resume_trimmed_bytes = 0; // bytes below a resume() point dropped (the user had them)
        std::uint64_t resume_gaps = 0;        // a stream continued beyond its resume() point: bytes lost elsewhere
        std::uint64_t resume_discarded = 0;   // resume() points of another sender session, dropped at the first frame
    };

    struct receive_result {
        bool valid = false;
        bool ack_now = false;                 // caller should build_ack and send it
    };

    arq_receiver(const config& cfg, sink& out); // throws std::invalid_argument on a bad config
    ~arq_receiver();
    arq_receiver(const arq_receiver&) = delete;
    arq_receiver& operator=(const arq_receiver&) = delete;

    // A replacement receiver whose user already holds `delivered` bytes of `stream` (e.g. a
    // restarted daemon that recorded what it wrote to its users): bytes below that point are
    // dropped instead of delivered again. Call before the first frame; false for a bad stream.
    // `sender_session` (0: any) is the sender session whose byte numbering `delivered` counts in:
    // when the first frame comes from another sender session (the far end restarted too, or the
    // record belongs to an earlier link), the point is dropped: that sender numbers from 0.
    bool resume(std::uint16_t stream, std::uint64_t delivered, std::uint32_t sender_session = 0);

    receive_result on_frame(arq_time now, std::span<const std::uint8_t> frame);
    // With ack_consumed_only: the user took `bytes` more of `stream` from what the sink received.
    void consumed(std::uint16_t stream, std::uint64_t bytes);
    bool ack_due(arq_time now) const;        // periodic repeat of the current state
    std::size_t ack_bytes() const { return arq_ack_header_bytes + cfg_.sack_bits / 8; }
    // Writes an ack; returns its size, 0 if `out` is too small.
    std::size_t build_ack(arq_time now, std::span<std::uint8_t> out);

    std::uint64_t delivered_offset(std::uint16_t stream) const; // bytes delivered in order
    std::uint32_t next_expected() const { return rcv_nxt_; }
    std::uint32_t ack_point() const { return ack_pt_; }  // cumulative ack: = next_expected() unless ack_consumed_only
    std::uint32_t session() const { return session_; }  // 0 until the first frame
    std::uint32_t sender_session() const { return tx_session_; }  // sender whose numbering delivered_offset() counts in (0: none yet)
    bool synced() const { return synced_; }              // in step with the sender's window
    const stats& counters() const { return stats_; }

private:
    struct slot;
    std::uint32_t index(std::uint32_t seq) const { return seq & (cfg_.window - 1); }
    void drop_held();
    void deliver_in_order();
    void advance_ack_point();
    void skip_to(std::uint32_t base);

    config cfg_;
    sink& sink_;
    std::vector<slot> slots_;
    std::vector<std::uint8_t> buffer_;
    std::vector<std::uint64_t> delivered_;
    std::vector<std::uint8_t> adopt_;    // per stream: take the next segment's offset (after a resync)
    std::vector<std::uint8_t> resumed_;  // per stream: delivered_ came from resume()
    std::vector<std::uint32_t> resume_session_; // per stream: sender session of the resume() point (0: any)
    std::vector<std::int64_t> consumed_; // per stream: user's position (may start negative after a sender restart)
    std::uint32_t rcv_nxt_ = 0;
    std::uint32_t ack_pt_ = 0;           // everything below was consumed (or delivered, without ack_consumed_only)
    std::uint32_t session_ = 0;
    std::uint32_t tx_session_ = 0;       // sender session bound to (0: none yet)
    bool synced_ = false;
    std::uint32_t echo_seq_ = 0;
    std::uint8_t echo_tx_ = 0;
    bool heard_ = false;
    bool echo_fresh_ = false;
    arq_time last_ack_{};
    stats stats_{};
};

} // namespace qlink::modem
