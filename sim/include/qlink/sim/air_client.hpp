// The air port's wire format (QAIR1) and a small blocking client for it, used by qlinkd and the tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qlink::sim {

// ---------------------------------------------------------------------------------------------
// Wire format (all integers little-endian), see docs/simulator.md "Air port":
//   client -> server: "QAIR1 ground\n" | "QAIR1 space\n"
//   server -> client: "OK <downlink_bps> <return_bps>\n" | "ERR <reason>\n" (then close)
//   then messages both ways: 32-byte header + payload
//     u32 magic 0x52494151 ("QAIR") | u16 type | u16 flags | u32 count | u32 reserved 0 |
//     f64 sim_time (s since the pass start) | f64 reserved 0
//   TX_BITS (client -> server): count coded bits packed MSB first, ceil(count / 8) bytes
//   TX_LLR (client -> server): count int8 LLRs the client's own RF chain demodulated (the relay
//     adds no channel: it gates them by the link state and forwards them as RX_LLR)
//   RX_LLR (server -> client): count int8 LLRs (negative = 1, 0 = erasure), then a 16-byte trailer
//     f32 elevation_deg | f32 rx_power_dbm | f32 esn0_db (photons/slot on the optical downlink) |
//     f32 return_esn0_db (the RF return link's Es/N0 at the message's time, both directions)
//     flags bit0: link up (above the mask, not blocked by cloud)
//   END_OF_PASS (server -> client): count 0, no payload
// ---------------------------------------------------------------------------------------------

inline constexpr std::uint32_t air_magic = 0x52494151u;  // "QAIR" little-endian
inline constexpr std::size_t air_header_size = 32;
inline constexpr std::size_t air_trailer_size = 16;
inline constexpr std::uint16_t air_flag_link_up = 1u;
/// Largest count either side accepts in one message (16 Mi bits: 2 MiB packed, 16 MiB of LLRs).
inline constexpr std::uint32_t air_max_count = 1u << 24;

enum class air_role : std::uint8_t { ground, space };
std::string_view to_string(air_role r);

enum class air_msg_type : std::uint16_t { tx_bits = 1, rx_llr = 2, end_of_pass = 3, tx_llr = 4 };

struct air_header {
    air_msg_type type = air_msg_type::tx_bits;
    std::uint16_t flags = 0;
    std::uint32_t count = 0;
    double sim_time = 0.0;
};

/// What the simulator says about the link with each RX_LLR message.
struct air_link_info {
    bool link_up = false;
    double sim_time = 0.0;       ///< seconds since the pass start at the first LLR of the message
    float elevation_deg = 0.0f;
    float rx_power_dbm = 0.0f;
    float esn0_db = 0.0f;        ///< RF return link: Es/N0 in dB; optical downlink: detected photons per on-slot
    /// The RF return link's Es/N0 (dB, -100 while it is down) at sim_time, in messages of both
    /// directions: a ground station that runs the return link's RF chain itself (TX_LLR) takes
    /// its channel's noise level from here.
    float return_esn0_db = -100.0f;
};

void encode_air_header(const air_header& h, std::span<std::uint8_t, air_header_size> out);
/// False (and `error` set to a static message) on a bad magic, unknown type or count > air_max_count.
bool decode_air_header(std::span<const std::uint8_t, air_header_size> in, air_header& h, const char*& error);
void encode_air_trailer(const air_link_info& info, std::span<std::uint8_t, air_trailer_size> out);
void decode_air_trailer(std::span<const std::uint8_t, air_trailer_size> in, air_link_info& info);

/// Bytes needed for `bits` packed bits.
inline constexpr std::size_t air_packed_size(std::size_t bits) { return (bits + 7) / 8; }
/// One bit per byte (non-zero = 1) -> MSB-first packed; out.size() >= air_packed_size(bits.size()).
/// Returns false (nothing written) when `out` is too small.
bool pack_bits_msb(std::span<const std::uint8_t> bits, std::span<std::uint8_t> out);
/// MSB-first packed -> one bit per byte (0/1); `packed` holds at least air_packed_size(bits.size()) bytes.
bool unpack_bits_msb(std::span<const std::uint8_t> packed, std::span<std::uint8_t> bits);

enum class air_status {
    ok,
    end_of_pass,     ///< receive(): the server's END_OF_PASS arrived
    timeout,         ///< the configured I/O timeout passed with nothing (the connection is still usable
                     ///< only if nothing of a message had been read; the client then reports `broken()`)
    closed,          ///< the server closed the connection
    bad_argument,    ///< caller error (sizes); nothing was sent
    protocol_error,  ///< the server sent something that is not QAIR1; the connection is unusable
    io_error,
};
std::string_view to_string(air_status s);

struct air_io_result {
    air_status status = air_status::ok;
    std::size_t count = 0;        ///< bits sent / LLRs received
    const char* error = "";       ///< static message when status is not ok / end_of_pass
    bool ok() const { return status == air_status::ok; }
};

/// One message from the server. `llrs` points into the client's buffer and stays valid until
/// the next receive() on the same client.
struct air_message {
    air_msg_type type = air_msg_type::rx_llr;
    air_link_info info;
    std::span<const std::int8_t> llrs;
};

/// Blocking QAIR1 client. One thread may send while another receives (full duplex, separate
/// buffers); two threads must not send (or receive) at once. The server paces what it reads to
/// the line rate, so send_bits() blocks when the client is ahead of simulated time: a client
/// that sends and receives on ONE thread must keep its sends small (say <= 0.1 s of bits) and
/// drain receive() in between, or the relay's bounded queues stall both directions.
/// Nothing is allocated per call (buffers are sized once from config).
class air_client {
public:
    struct config {
        std::string host = "127.0.0.1";   ///< IPv4 address literal
        std::uint16_t port = 0;           ///< required, 1..65535
        air_role role = air_role::ground;
        int connect_timeout_ms = 5000;    ///< connect + hello, > 0
        int io_timeout_ms = 0;            ///< per send/receive call; 0 = block until done
        std::uint32_t max_message_bits = 1u << 20;  ///< largest send and receive count, [1, air_max_count]
    };

    /// Connects and exchanges the hello. Returns nullptr and sets `error` (one line saying what
    /// failed: connect refused, timeout, "ERR <reason>" from the server, malformed reply).
    static std::unique_ptr<air_client> connect(const config& cfg, std::string& error);

    ~air_client();
    air_client(const air_client&) = delete;
    air_client& operator=(const air_client&) = delete;

    /// Line rates the simulator announced (coded bits per simulated second).
    double downlink_bps() const { return downlink_bps_; }
    double return_bps() const { return return_bps_; }
    air_role role() const { return cfg_.role; }

    /// Sends `nbits` bits packed MSB first (packed.size() >= air_packed_size(nbits)),
    /// 1 <= nbits <= max_message_bits. `sim_time` is informational (the server stamps its own).
    air_io_result send_packed(std::span<const std::uint8_t> packed, std::size_t nbits, double sim_time = 0.0);
    /// Sends one bit per byte (non-zero = 1).
    air_io_result send_bits(std::span<const std::uint8_t> bits, double sim_time = 0.0);
    /// Sends LLRs the client demodulated itself (TX_LLR: the relay only gates them by the link
    /// state), 1 <= llrs.size() <= max_message_bits.
    air_io_result send_llrs(std::span<const std::int8_t> llrs, double sim_time = 0.0);

    /// Blocks for the next message. RX_LLR: status ok, msg.llrs holds `count` LLRs.
    /// END_OF_PASS: status end_of_pass. After protocol_error / closed / io_error the
    /// connection is unusable (broken() is true).
    air_io_result receive(air_message& msg);

    /// The socket, for poll()ing readability; do not read or write it directly.
    int fd() const { return fd_; }
    bool broken() const { return broken_; }
    /// Shuts the connection down (also done by the destructor).
    void close();

private:
    air_client(const config& cfg, int fd);
    air_io_result write_all(const std::uint8_t* a, std::size_t na, const std::uint8_t* b, std::size_t nb);
    air_io_result read_all(std::uint8_t* p, std::size_t n);

    config cfg_;
    int fd_ = -1;
    bool broken_ = false;
    double downlink_bps_ = 0.0;
    double return_bps_ = 0.0;
    std::vector<std::uint8_t> tx_buf_;  // packing buffer for send_bits
    std::vector<std::int8_t> rx_buf_;   // LLRs of the last received message
};

}  // namespace qlink::sim
