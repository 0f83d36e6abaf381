// CCSDS Space Packets (133.0-B) and Encapsulation Packets (133.1-B): the packets an AOS M_PDU carries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace qlink::modem {

inline constexpr std::size_t space_packet_header_length = 6;
inline constexpr std::uint16_t space_packet_idle_apid = 0x7FF;
/// Data field of a space packet: 1 .. 65536 bytes (the length field holds length - 1).
inline constexpr std::size_t space_packet_max_data = 65536;

enum class sequence_flags : std::uint8_t { continuation = 0, first = 1, last = 2, unsegmented = 3 };

struct space_packet_header {
    bool telecommand = false;       ///< packet type bit (0 = telemetry)
    bool secondary_header = false;
    std::uint16_t apid = 0;         ///< 11 bits
    sequence_flags flags = sequence_flags::unsegmented;
    std::uint16_t sequence_count = 0;  ///< 14 bits
    std::uint32_t data_length = 1;  ///< bytes in the data field, 1 .. 65536
};

/// Writes header + data into `out`; returns bytes written, 0 when `data` is empty or too long,
/// or `out` is too small.
std::size_t write_space_packet(const space_packet_header& h, std::span<const std::uint8_t> data,
                               std::span<std::uint8_t> out);
/// Parses the 6-byte primary header; nullopt for fewer bytes or a version other than 000.
std::optional<space_packet_header> parse_space_packet_header(std::span<const std::uint8_t> bytes);

/// Encapsulation packets (133.1-B): version 111, protocol ID, "length of length" 0..3.
/// We send datagrams with protocol ID 7 (mission specific) and the shortest length field that fits,
/// so a datagram of any size from 0 to 2^32 - 9 bytes crosses as one packet. A 1-byte packet
/// (LoL 0, protocol ID 0) is an idle packet: it pads the last few bytes of a frame.
inline constexpr std::uint8_t encap_protocol_idle = 0;
inline constexpr std::uint8_t encap_protocol_mission = 7;
inline constexpr std::uint8_t encap_idle_octet = 0xE0;
inline constexpr std::size_t encap_max_data = 0xFFFFFFFFu - 8;

/// Header length the datagram of `data_length` bytes needs (2, 4 or 8).
std::size_t encap_header_length(std::size_t data_length);
/// Writes the encapsulation header for `data_length` bytes of payload; returns its length, 0 if
/// `out` is too small or data_length > encap_max_data.
std::size_t write_encap_header(std::uint8_t protocol_id, std::size_t data_length, std::span<std::uint8_t> out);

/// What the first bytes of a packet say about it.
struct packet_shape {
    std::size_t header_length = 0;   ///< bytes needed before `total_length` is known
    std::size_t total_length = 0;    ///< whole packet, header included (0 until known)
    bool idle = false;               ///< idle space packet (APID 0x7FF) or idle encapsulation packet
    bool encapsulation = false;
    bool valid = false;              ///< false: unknown version or impossible length
};
/// Looks at the first `bytes.size()` bytes of a packet. With too few bytes, header_length says
/// how many are needed and total_length is 0.
packet_shape inspect_packet(std::span<const std::uint8_t> bytes);

}  // namespace qlink::modem
