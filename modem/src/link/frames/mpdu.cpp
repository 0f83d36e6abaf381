// M_PDU packing (packets across frame boundaries, idle padding) and unpacking with resync on the FHP.
#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/space_packet.hpp"

#include <algorithm>
#include <cstring>

namespace qlink::modem {

mpdu_packer::mpdu_packer(std::size_t data_field_length)
    : zone_(data_field_length > mpdu_header_length ? data_field_length - mpdu_header_length : 0)
{
}

bool mpdu_packer::push_packet(std::span<const std::uint8_t> packet)
{
    const packet_shape s = inspect_packet(packet);
    if (!s.valid || s.total_length != packet.size() || packet.empty()) {
        return false;
    }
    starts_.push_back(queue_.size());
    queue_.insert(queue_.end(), packet.begin(), packet.end());
    return true;
}

bool mpdu_packer::push_datagram(std::span<const std::uint8_t> datagram)
{
    if (datagram.size() > encap_max_data) {
        return false;
    }
    std::uint8_t hdr[8];
    const std::size_t hl = write_encap_header(encap_protocol_mission, datagram.size(), hdr);
    starts_.push_back(queue_.size());
    queue_.insert(queue_.end(), hdr, hdr + hl);
    queue_.insert(queue_.end(), datagram.begin(), datagram.end());
    return true;
}

void mpdu_packer::compact()
{
    if (head_ == queue_.size()) {
        queue_.clear();
        starts_.clear();
        head_ = 0;
        next_start_ = 0;
        return;
    }
    // Moving the tail is worth it only once the consumed part dominates.
    if (head_ < 65536 || head_ < queue_.size() / 2) {
        return;
    }
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(head_));
    starts_.erase(starts_.begin(), starts_.begin() + static_cast<std::ptrdiff_t>(next_start_));
    for (auto& s : starts_) {
        s -= head_;
    }
    head_ = 0;
    next_start_ = 0;
}

bool mpdu_packer::fill(std::span<std::uint8_t> df)
{
    if (zone_ == 0 || df.size() != zone_ + mpdu_header_length) {
        return false;
    }
    std::uint8_t* zone = df.data() + mpdu_header_length;
    if (!has_data()) {
        df[0] = static_cast<std::uint8_t>(fhp_idle_data >> 8);
        df[1] = static_cast<std::uint8_t>(fhp_idle_data & 0xFF);
        std::memset(zone, encap_idle_octet, zone_);
        return true;
    }
    std::uint16_t fhp = fhp_no_packet_start;
    if (next_start_ < starts_.size() && starts_[next_start_] < head_ + zone_) {
        fhp = static_cast<std::uint16_t>(starts_[next_start_] - head_);
    }
    const std::size_t n = std::min(queued_bytes(), zone_);
    std::memcpy(zone, queue_.data() + head_, n);
    head_ += n;
    while (next_start_ < starts_.size() && starts_[next_start_] < head_) {
        ++next_start_;
    }
    std::size_t pos = n;
    if (pos < zone_ && fhp == fhp_no_packet_start) {
        fhp = static_cast<std::uint16_t>(pos);  // the padding is the first packet starting here
    }
    while (zone_ - pos >= space_packet_header_length + 1) {
        const std::size_t data = std::min(zone_ - pos - space_packet_header_length, space_packet_max_data);
        space_packet_header h;
        h.apid = space_packet_idle_apid;
        h.data_length = static_cast<std::uint32_t>(data);
        // The idle packet's data is zeros; write the header and clear the rest in place.
        std::memset(zone + pos, 0, space_packet_header_length + data);
        const std::uint16_t len = static_cast<std::uint16_t>(data - 1);
        zone[pos] = static_cast<std::uint8_t>(h.apid >> 8);
        zone[pos + 1] = static_cast<std::uint8_t>(h.apid);
        zone[pos + 2] = 0xC0;  // unsegmented
        zone[pos + 4] = static_cast<std::uint8_t>(len >> 8);
        zone[pos + 5] = static_cast<std::uint8_t>(len);
        pos += space_packet_header_length + data;
    }
    std::memset(zone + pos, encap_idle_octet, zone_ - pos);
    df[0] = static_cast<std::uint8_t>(fhp >> 8);
    df[1] = static_cast<std::uint8_t>(fhp & 0xFF);
    compact();
    return true;
}

// ---- unpacker ----

mpdu_unpacker::mpdu_unpacker(std::size_t data_field_length, std::size_t max_packet_length, sink on_packet)
    : zone_(data_field_length > mpdu_header_length ? data_field_length - mpdu_header_length : 0),
      max_packet_(max_packet_length),
      sink_(std::move(on_packet))
{
}

void mpdu_unpacker::reset(aos_rx_counters& c)
{
    if (!partial_.empty()) {
        ++c.packets_dropped;
    }
    partial_.clear();
    expected_ = 0;
    synced_ = false;
}

void mpdu_unpacker::deliver(std::span<const std::uint8_t> packet, aos_rx_counters& c)
{
    if (inspect_packet(packet).idle) {
        ++c.idle_packets;
        return;
    }
    ++c.packets;
    if (sink_) {
        sink_(packet);
    }
}

std::size_t mpdu_unpacker::continue_partial(std::span<const std::uint8_t> bytes, bool& done, bool& bad)
{
    done = false;
    bad = false;
    std::size_t used = 0;
    for (;;) {
        if (expected_ == 0 && !partial_.empty()) {
            const packet_shape s = inspect_packet(partial_);
            if (!s.valid || s.total_length > max_packet_) {
                bad = true;
                return used;
            }
            expected_ = s.total_length;
        }
        if (expected_ != 0 && partial_.size() == expected_) {
            done = true;
            return used;
        }
        if (used == bytes.size()) {
            return used;
        }
        const std::size_t want = expected_ != 0 ? expected_ - partial_.size()
                                 : partial_.empty() ? 1
                                                    : inspect_packet(partial_).header_length - partial_.size();
        const std::size_t take = std::min(want, bytes.size() - used);
        partial_.insert(partial_.end(), bytes.begin() + static_cast<std::ptrdiff_t>(used),
                        bytes.begin() + static_cast<std::ptrdiff_t>(used + take));
        used += take;
    }
}

void mpdu_unpacker::parse_from(std::span<const std::uint8_t> bytes, aos_rx_counters& c)
{
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        const auto rest = bytes.subspan(pos);
        const packet_shape s = inspect_packet(rest);
        if (!s.valid || s.total_length > max_packet_) {
            ++c.bad_packets;
            reset(c);
            return;
        }
        if (s.total_length != 0 && s.total_length <= rest.size()) {
            deliver(rest.first(s.total_length), c);
            pos += s.total_length;
            continue;
        }
        partial_.assign(rest.begin(), rest.end());
        expected_ = s.total_length;
        return;
    }
}

void mpdu_unpacker::on_data_field(std::span<const std::uint8_t> df, bool continuous, aos_rx_counters& c)
{
    if (df.size() != zone_ + mpdu_header_length || zone_ == 0) {
        ++c.fhp_errors;
        reset(c);
        return;
    }
    if (!continuous) {
        reset(c);
    }
    const std::uint16_t fhp = static_cast<std::uint16_t>(((df[0] & 0x07) << 8) | df[1]);
    const auto zone = df.subspan(mpdu_header_length);
    if (fhp == fhp_idle_data) {
        if (!partial_.empty()) {
            ++c.fhp_errors;
            reset(c);
        }
        return;
    }
    if (fhp == fhp_no_packet_start) {
        if (!synced_ || partial_.empty()) {
            if (synced_) {
                ++c.fhp_errors;  // continuation of nothing
            }
            reset(c);
            return;
        }
        bool done = false;
        bool bad = false;
        const std::size_t used = continue_partial(zone, done, bad);
        if (bad) {
            ++c.bad_packets;
            reset(c);
        } else if (done) {
            if (used != zone.size()) {
                ++c.fhp_errors;  // a packet ended here but the FHP says none starts
                reset(c);
                return;
            }
            deliver(partial_, c);
            partial_.clear();
            expected_ = 0;
        }
        return;
    }
    if (fhp >= zone.size()) {
        ++c.fhp_errors;
        reset(c);
        return;
    }
    const auto pre = zone.first(fhp);
    if (synced_) {
        if (partial_.empty()) {
            if (fhp != 0) {
                ++c.fhp_errors;
            }
        } else {
            bool done = false;
            bool bad = false;
            const std::size_t used = continue_partial(pre, done, bad);
            if (bad) {
                ++c.bad_packets;
                ++c.packets_dropped;
            } else if (done && used == fhp) {
                deliver(partial_, c);
            } else {
                ++c.fhp_errors;
                ++c.packets_dropped;
            }
            partial_.clear();
            expected_ = 0;
        }
    } else {
        partial_.clear();
        expected_ = 0;
    }
    synced_ = true;
    parse_from(zone.subspan(fhp), c);
}

}  // namespace qlink::modem
