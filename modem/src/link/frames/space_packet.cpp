// Space packet and encapsulation packet headers: writing, parsing, and sizing packets from their first bytes.
#include "qlink/modem/space_packet.hpp"

#include <cstring>

namespace qlink::modem {

std::size_t write_space_packet(const space_packet_header& h, std::span<const std::uint8_t> data,
                               std::span<std::uint8_t> out)
{
    if (data.empty() || data.size() > space_packet_max_data || out.size() < space_packet_header_length + data.size()) {
        return 0;
    }
    const std::uint16_t apid = h.apid & 0x7FF;
    const std::uint16_t seq = h.sequence_count & 0x3FFF;
    const std::size_t len = data.size() - 1;
    out[0] = static_cast<std::uint8_t>((h.telecommand ? 0x10 : 0) | (h.secondary_header ? 0x08 : 0) | (apid >> 8));
    out[1] = static_cast<std::uint8_t>(apid);
    out[2] = static_cast<std::uint8_t>((static_cast<unsigned>(h.flags) << 6) | (seq >> 8));
    out[3] = static_cast<std::uint8_t>(seq);
    out[4] = static_cast<std::uint8_t>(len >> 8);
    out[5] = static_cast<std::uint8_t>(len);
    std::memcpy(out.data() + space_packet_header_length, data.data(), data.size());
    return space_packet_header_length + data.size();
}

std::optional<space_packet_header> parse_space_packet_header(std::span<const std::uint8_t> b)
{
    if (b.size() < space_packet_header_length || (b[0] >> 5) != 0) {
        return std::nullopt;
    }
    space_packet_header h;
    h.telecommand = (b[0] & 0x10) != 0;
    h.secondary_header = (b[0] & 0x08) != 0;
    h.apid = static_cast<std::uint16_t>(((b[0] & 0x07) << 8) | b[1]);
    h.flags = static_cast<sequence_flags>(b[2] >> 6);
    h.sequence_count = static_cast<std::uint16_t>(((b[2] & 0x3F) << 8) | b[3]);
    h.data_length = ((static_cast<std::uint32_t>(b[4]) << 8) | b[5]) + 1;
    return h;
}

std::size_t encap_header_length(std::size_t data_length)
{
    if (data_length + 2 <= 0xFF) {
        return 2;
    }
    if (data_length + 4 <= 0xFFFF) {
        return 4;
    }
    return 8;
}

std::size_t write_encap_header(std::uint8_t protocol_id, std::size_t data_length, std::span<std::uint8_t> out)
{
    if (data_length > encap_max_data) {
        return 0;
    }
    const std::size_t hl = encap_header_length(data_length);
    if (out.size() < hl) {
        return 0;
    }
    const std::size_t total = hl + data_length;
    const std::uint8_t lol = hl == 2 ? 1 : (hl == 4 ? 2 : 3);
    out[0] = static_cast<std::uint8_t>(0xE0 | ((protocol_id & 7) << 2) | lol);
    if (hl == 2) {
        out[1] = static_cast<std::uint8_t>(total);
    } else if (hl == 4) {
        out[1] = 0;
        out[2] = static_cast<std::uint8_t>(total >> 8);
        out[3] = static_cast<std::uint8_t>(total);
    } else {
        out[1] = out[2] = out[3] = 0;
        for (int i = 0; i < 4; ++i) {
            out[4 + i] = static_cast<std::uint8_t>(total >> (24 - 8 * i));
        }
    }
    return hl;
}

packet_shape inspect_packet(std::span<const std::uint8_t> b)
{
    packet_shape s;
    if (b.empty()) {
        s.header_length = 1;
        s.valid = true;
        return s;
    }
    const unsigned version = b[0] >> 5;
    if (version == 0) {
        s.header_length = space_packet_header_length;
        s.valid = true;
        if (b.size() >= space_packet_header_length) {
            s.total_length = space_packet_header_length + 1 + ((static_cast<std::size_t>(b[4]) << 8) | b[5]);
            s.idle = (((b[0] & 0x07) << 8) | b[1]) == space_packet_idle_apid;
        }
        return s;
    }
    if (version != 7) {
        return s;  // not a packet we know: invalid
    }
    s.encapsulation = true;
    const unsigned lol = b[0] & 3;
    static constexpr std::size_t header_lengths[4] = {1, 2, 4, 8};
    s.header_length = header_lengths[lol];
    s.idle = ((b[0] >> 2) & 7) == encap_protocol_idle;
    if (lol == 0) {
        s.total_length = 1;
        s.idle = true;
        s.valid = true;
        return s;
    }
    if (b.size() < s.header_length) {
        s.valid = true;
        return s;
    }
    std::size_t total = 0;
    if (lol == 1) {
        total = b[1];
    } else if (lol == 2) {
        total = (static_cast<std::size_t>(b[2]) << 8) | b[3];
    } else {
        for (int i = 0; i < 4; ++i) {
            total = (total << 8) | b[4 + i];
        }
    }
    if (total < s.header_length) {
        return s;  // impossible length: invalid
    }
    s.total_length = total;
    s.valid = true;
    return s;
}

}  // namespace qlink::modem
