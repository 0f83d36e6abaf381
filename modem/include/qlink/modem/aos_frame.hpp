// CCSDS AOS transfer frames (732.0-B): primary header, insert zone, M_PDU packet zone, FECF,
// virtual-channel multiplexing by priority, and the receiving side with its error counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace qlink::modem {

inline constexpr std::size_t aos_primary_header_length = 6;
inline constexpr std::size_t mpdu_header_length = 2;
inline constexpr std::size_t aos_fecf_length = 2;
inline constexpr std::uint8_t aos_idle_vcid = 63;
inline constexpr std::uint16_t fhp_no_packet_start = 0x7FF;
inline constexpr std::uint16_t fhp_idle_data = 0x7FE;

struct aos_header {
    std::uint8_t spacecraft_id = 0;   ///< 8 bits
    std::uint8_t vcid = 0;            ///< 6 bits
    std::uint32_t frame_count = 0;    ///< 24 bits
    bool replay = false;
    bool count_cycle_used = true;     ///< the 4-bit cycle extends the count to 28 bits
    std::uint8_t count_cycle = 0;     ///< 4 bits
};

/// Writes the 6-byte primary header (version 01). `out` must hold 6 bytes; returns false otherwise.
bool write_aos_header(const aos_header& h, std::span<std::uint8_t> out);
/// nullopt for fewer than 6 bytes or a version other than 01.
std::optional<aos_header> parse_aos_header(std::span<const std::uint8_t> bytes);
/// Frame count as the receiver compares it: 28 bits with the cycle in use, else 24.
std::uint32_t extended_frame_count(const aos_header& h);

/// Where everything sits in a fixed-length frame. The security header/trailer lengths are 0
/// without SDLS; the data field (M_PDU) is what is left.
struct aos_layout {
    std::size_t frame_length = 1115;
    std::size_t insert_zone_length = 0;
    std::size_t security_header_length = 0;
    std::size_t security_trailer_length = 0;
    bool fecf = true;

    std::size_t security_header_offset() const { return aos_primary_header_length + insert_zone_length; }
    std::size_t data_field_offset() const { return security_header_offset() + security_header_length; }
    std::size_t trailer_offset() const { return frame_length - (fecf ? aos_fecf_length : 0) - security_trailer_length; }
    /// 0 when the layout leaves no room for an M_PDU header and one byte.
    std::size_t data_field_length() const;
};

/// Computes and writes the FECF (last 2 bytes). No-op for frames shorter than 3 bytes.
void write_fecf(std::span<std::uint8_t> frame);
bool check_fecf(std::span<const std::uint8_t> frame);

/// Frame security as the frame layer sees it (SDLS implements both; see sdls.hpp).
enum class security_status { ok, keys_exhausted, not_keyed, bad_frame, auth_failed, replay, unknown_spi };
class frame_protector {
public:
    virtual ~frame_protector() = default;
    /// Fills the security header/trailer and encrypts/authenticates the data field in place.
    virtual security_status protect(std::span<std::uint8_t> frame) = 0;
};
class frame_verifier {
public:
    virtual ~frame_verifier() = default;
    /// Checks and decrypts in place; anything but ok means the frame must not be passed up.
    virtual security_status verify(std::span<std::uint8_t> frame) = 0;
};

/// Packs packets into M_PDU data fields of one virtual channel. Packets may span frames; when the
/// queue runs dry inside a frame the rest is padded with an idle space packet (APID 0x7FF) or,
/// for fewer than 7 bytes, 1-byte idle encapsulation packets.
class mpdu_packer {
public:
    explicit mpdu_packer(std::size_t data_field_length);
    /// Queues a complete packet (space or encapsulation); false if it is not a valid packet.
    bool push_packet(std::span<const std::uint8_t> packet);
    /// Queues a datagram of any size (0 .. encap_max_data) as one encapsulation packet.
    bool push_datagram(std::span<const std::uint8_t> datagram);
    bool has_data() const { return head_ < queue_.size(); }
    std::size_t queued_bytes() const { return queue_.size() - head_; }
    /// Writes one M_PDU (header + packet zone) into `data_field` (data_field_length bytes).
    /// With nothing queued writes an idle M_PDU (FHP 0x7FE). Returns false if the span size is wrong.
    bool fill(std::span<std::uint8_t> data_field);

private:
    std::size_t zone_;
    std::vector<std::uint8_t> queue_;
    std::size_t head_ = 0;
    std::vector<std::size_t> starts_;  ///< absolute queue offsets where packets start
    std::size_t next_start_ = 0;       ///< index into starts_
    void compact();
};

/// Counters of the receiving side. Every frame or packet that is not delivered is counted once.
struct aos_rx_counters {
    std::uint64_t frames = 0;
    std::uint64_t crc_errors = 0;
    std::uint64_t bad_header = 0;       ///< wrong version, spacecraft ID or unknown VC
    std::uint64_t security_rejected = 0;
    std::uint64_t idle_frames = 0;
    std::uint64_t lost_frames = 0;      ///< frames missing in the count sequence
    std::uint64_t gaps = 0;             ///< gap events
    std::uint64_t duplicates = 0;
    std::uint64_t reordered = 0;        ///< frames behind the count, dropped
    std::uint64_t fhp_errors = 0;       ///< FHP outside the zone or inconsistent with the packet in progress
    std::uint64_t bad_packets = 0;      ///< unknown version, impossible or oversize length
    std::uint64_t packets_dropped = 0;  ///< partial packets discarded on a gap or resync
    std::uint64_t packets = 0;          ///< delivered (idle packets are not delivered or counted)
    std::uint64_t idle_packets = 0;
};

/// Extracts packets from consecutive M_PDUs of one virtual channel.
class mpdu_unpacker {
public:
    using sink = std::function<void(std::span<const std::uint8_t> packet)>;
    mpdu_unpacker(std::size_t data_field_length, std::size_t max_packet_length, sink on_packet);
    /// `continuous` false: frames were lost before this one; the packet in progress is dropped.
    void on_data_field(std::span<const std::uint8_t> data_field, bool continuous, aos_rx_counters& c);
    void reset(aos_rx_counters& c);

private:
    std::size_t zone_;
    std::size_t max_packet_;
    sink sink_;
    std::vector<std::uint8_t> partial_;
    std::size_t expected_ = 0;  ///< total length of the packet in partial_, 0 while unknown
    bool synced_ = false;
    /// Appends to the packet in progress up to its end; returns bytes used, sets done when complete.
    std::size_t continue_partial(std::span<const std::uint8_t> bytes, bool& done, bool& bad);
    void deliver(std::span<const std::uint8_t> packet, aos_rx_counters& c);
    void parse_from(std::span<const std::uint8_t> bytes, aos_rx_counters& c);
};

/// Transmit side of one physical channel: several virtual channels, each with a priority.
/// The next frame comes from the highest-priority VC with data, round robin among equals; an
/// idle frame (VCID 63) when none has data.
class aos_transmitter {
public:
    struct vc_config {
        std::uint8_t vcid = 0;
        int priority = 0;  ///< higher first
    };
    struct config {
        aos_layout layout;
        std::uint8_t spacecraft_id = 0;
        std::vector<vc_config> channels;
        bool send_idle_frames = true;
    };
    struct result {
        security_status status = security_status::ok;
        bool sent = false;     ///< a frame was written to the span
        bool idle = false;
        std::uint8_t vcid = 0;
    };
    /// Throws std::invalid_argument for a layout without room, a VCID > 62 or duplicates.
    aos_transmitter(const config& cfg, frame_protector* security = nullptr);
    /// The packer of one VC; nullptr for an unknown VCID.
    mpdu_packer* channel(std::uint8_t vcid);
    /// Builds the next frame into `frame` (layout.frame_length bytes). When frame security refuses
    /// the frame for lack of a key (keys_exhausted) the frame's data is kept, not lost: every later
    /// call retries that same frame first (sent = false while it is refused) and takes nothing new
    /// from the queues until it has gone out.
    result next_frame(std::span<std::uint8_t> frame);
    /// An idle frame (VCID 63, not protected), e.g. to keep the channel busy while a frame waits
    /// for a key. Does not touch the queues or the held frame.
    result idle_frame(std::span<std::uint8_t> frame);
    /// A frame is waiting for a key (see next_frame).
    bool holding() const { return held_vc_ >= 0; }

private:
    struct vc {
        std::uint8_t vcid;
        int priority;
        mpdu_packer packer;
        std::uint32_t count = 0;  ///< 28-bit count
    };
    config cfg_;
    frame_protector* security_;
    std::vector<vc> vcs_;
    std::size_t rr_ = 0;
    std::uint32_t idle_count_ = 0;
    std::vector<std::uint8_t> held_;  ///< unprotected copy of the frame security refused
    int held_vc_ = -1;                ///< index into vcs_ of the held frame, -1: none
    result finish_frame(vc& v, std::span<std::uint8_t> frame);
};

/// Receive side: FECF, header, frame security, frame-count continuity, packet extraction.
class aos_receiver {
public:
    struct config {
        aos_layout layout;
        std::uint8_t spacecraft_id = 0;
        std::vector<std::uint8_t> vcids;
        std::size_t max_packet_length = 1u << 20;
    };
    using sink = std::function<void(std::uint8_t vcid, std::span<const std::uint8_t> packet)>;
    aos_receiver(const config& cfg, sink on_packet, frame_verifier* security = nullptr);
    /// One received frame (modified in place by decryption). Frames of the wrong length are counted
    /// as bad_header.
    void on_frame(std::span<std::uint8_t> frame);
    const aos_rx_counters& counters() const { return c_; }

private:
    struct vc {
        std::uint8_t vcid;
        mpdu_unpacker unpacker;
        bool seen = false;
        std::uint32_t last = 0;
    };
    config cfg_;
    frame_verifier* security_;
    std::vector<vc> vcs_;
    aos_rx_counters c_;
};

}  // namespace qlink::modem
