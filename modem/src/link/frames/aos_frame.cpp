// AOS primary header, layout, FECF, and the multiplexing transmitter / demultiplexing receiver.
#include "qlink/modem/aos_frame.hpp"

#include "qlink/modem/crc.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qlink::modem {

bool write_aos_header(const aos_header& h, std::span<std::uint8_t> out)
{
    if (out.size() < aos_primary_header_length) {
        return false;
    }
    out[0] = static_cast<std::uint8_t>(0x40 | (h.spacecraft_id >> 2));
    out[1] = static_cast<std::uint8_t>(((h.spacecraft_id & 3) << 6) | (h.vcid & 0x3F));
    out[2] = static_cast<std::uint8_t>(h.frame_count >> 16);
    out[3] = static_cast<std::uint8_t>(h.frame_count >> 8);
    out[4] = static_cast<std::uint8_t>(h.frame_count);
    out[5] = static_cast<std::uint8_t>((h.replay ? 0x80 : 0) | (h.count_cycle_used ? 0x40 : 0) | (h.count_cycle & 0x0F));
    return true;
}

std::optional<aos_header> parse_aos_header(std::span<const std::uint8_t> b)
{
    if (b.size() < aos_primary_header_length || (b[0] >> 6) != 1) {
        return std::nullopt;
    }
    aos_header h;
    h.spacecraft_id = static_cast<std::uint8_t>(((b[0] & 0x3F) << 2) | (b[1] >> 6));
    h.vcid = b[1] & 0x3F;
    h.frame_count = (static_cast<std::uint32_t>(b[2]) << 16) | (static_cast<std::uint32_t>(b[3]) << 8) | b[4];
    h.replay = (b[5] & 0x80) != 0;
    h.count_cycle_used = (b[5] & 0x40) != 0;
    h.count_cycle = b[5] & 0x0F;
    return h;
}

std::uint32_t extended_frame_count(const aos_header& h)
{
    return h.count_cycle_used ? (static_cast<std::uint32_t>(h.count_cycle) << 24) | h.frame_count : h.frame_count;
}

std::size_t aos_layout::data_field_length() const
{
    const std::size_t overhead = data_field_offset() + security_trailer_length + (fecf ? aos_fecf_length : 0);
    if (frame_length < overhead + mpdu_header_length + 1) {
        return 0;
    }
    return frame_length - overhead;
}

void write_fecf(std::span<std::uint8_t> frame)
{
    if (frame.size() < 3) {
        return;
    }
    const std::uint16_t crc = crc16_ccsds(frame.first(frame.size() - 2));
    frame[frame.size() - 2] = static_cast<std::uint8_t>(crc >> 8);
    frame[frame.size() - 1] = static_cast<std::uint8_t>(crc);
}

bool check_fecf(std::span<const std::uint8_t> frame)
{
    if (frame.size() < 3) {
        return false;
    }
    const std::uint16_t crc = crc16_ccsds(frame.first(frame.size() - 2));
    return frame[frame.size() - 2] == static_cast<std::uint8_t>(crc >> 8) &&
           frame[frame.size() - 1] == static_cast<std::uint8_t>(crc);
}

// ---- transmitter ----

aos_transmitter::aos_transmitter(const config& cfg, frame_protector* security) : cfg_(cfg), security_(security)
{
    const std::size_t df = cfg.layout.data_field_length();
    if (df == 0) {
        throw std::invalid_argument("aos_transmitter: frame_length " + std::to_string(cfg.layout.frame_length) +
                                    " leaves no room for an M_PDU");
    }
    for (const auto& v : cfg.channels) {
        if (v.vcid >= aos_idle_vcid) {
            throw std::invalid_argument("aos_transmitter: VCID " + std::to_string(v.vcid) + " out of 0..62");
        }
        for (const auto& w : vcs_) {
            if (w.vcid == v.vcid) {
                throw std::invalid_argument("aos_transmitter: VCID " + std::to_string(v.vcid) + " listed twice");
            }
        }
        vcs_.push_back(vc{v.vcid, v.priority, mpdu_packer(df), 0});
    }
    held_.resize(cfg.layout.frame_length);
}

mpdu_packer* aos_transmitter::channel(std::uint8_t vcid)
{
    for (auto& v : vcs_) {
        if (v.vcid == vcid) {
            return &v.packer;
        }
    }
    return nullptr;
}

aos_transmitter::result aos_transmitter::idle_frame(std::span<std::uint8_t> frame)
{
    result r;
    if (frame.size() != cfg_.layout.frame_length) {
        r.status = security_status::bad_frame;
        return r;
    }
    aos_header h;
    h.spacecraft_id = cfg_.spacecraft_id;
    h.vcid = aos_idle_vcid;
    h.frame_count = idle_count_ & 0xFFFFFF;
    h.count_cycle = static_cast<std::uint8_t>(idle_count_ >> 24);
    idle_count_ = (idle_count_ + 1) & 0x0FFFFFFF;
    write_aos_header(h, frame);
    std::fill(frame.begin() + aos_primary_header_length, frame.end(), std::uint8_t{0});
    if (cfg_.layout.fecf) {
        write_fecf(frame);
    }
    r.sent = true;
    r.idle = true;
    r.vcid = aos_idle_vcid;
    return r;
}

aos_transmitter::result aos_transmitter::finish_frame(vc& v, std::span<std::uint8_t> frame)
{
    result r;
    if (security_ != nullptr) {
        // Keep the unprotected frame until protect() takes it: with the stop policy keys may come
        // back later, and the data in this frame has already left the VC queue.
        std::copy(frame.begin(), frame.end(), held_.begin());
        r.status = security_->protect(frame);
        if (r.status != security_status::ok) {
            if (r.status == security_status::keys_exhausted) {
                held_vc_ = static_cast<int>(&v - vcs_.data());
            } else {
                held_vc_ = -1;
            }
            r.vcid = v.vcid;
            return r;
        }
        held_vc_ = -1;
    }
    v.count = (v.count + 1) & 0x0FFFFFFF;
    if (cfg_.layout.fecf) {
        write_fecf(frame);
    }
    r.sent = true;
    r.vcid = v.vcid;
    return r;
}

aos_transmitter::result aos_transmitter::next_frame(std::span<std::uint8_t> frame)
{
    result r;
    const aos_layout& L = cfg_.layout;
    if (frame.size() != L.frame_length) {
        r.status = security_status::bad_frame;
        return r;
    }
    if (held_vc_ >= 0) {
        std::copy(held_.begin(), held_.end(), frame.begin());
        return finish_frame(vcs_[static_cast<std::size_t>(held_vc_)], frame);
    }
    const std::size_t n = vcs_.size();
    bool any = false;
    int best = 0;
    for (const auto& v : vcs_) {
        if (v.packer.has_data() && (!any || v.priority > best)) {
            best = v.priority;
            any = true;
        }
    }
    if (!any) {
        if (!cfg_.send_idle_frames) {
            return r;
        }
        return idle_frame(frame);
    }
    vc* pick = nullptr;
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t idx = (rr_ + i) % n;
        if (vcs_[idx].priority == best && vcs_[idx].packer.has_data()) {
            pick = &vcs_[idx];
            rr_ = idx + 1;
            break;
        }
    }
    aos_header h;
    h.spacecraft_id = cfg_.spacecraft_id;
    h.vcid = pick->vcid;
    h.frame_count = pick->count & 0xFFFFFF;
    h.count_cycle = static_cast<std::uint8_t>(pick->count >> 24);
    write_aos_header(h, frame);
    // The insert zone and security header are owned by their writers; keep them deterministic.
    std::fill(frame.begin() + aos_primary_header_length, frame.begin() + L.data_field_offset(), std::uint8_t{0});
    pick->packer.fill(frame.subspan(L.data_field_offset(), L.data_field_length()));
    return finish_frame(*pick, frame);
}

// ---- receiver ----

aos_receiver::aos_receiver(const config& cfg, sink on_packet, frame_verifier* security)
    : cfg_(cfg), security_(security)
{
    const std::size_t df = cfg.layout.data_field_length();
    if (df == 0) {
        throw std::invalid_argument("aos_receiver: frame_length leaves no room for an M_PDU");
    }
    for (std::uint8_t id : cfg.vcids) {
        if (id >= aos_idle_vcid) {
            throw std::invalid_argument("aos_receiver: VCID " + std::to_string(id) + " out of 0..62");
        }
        vcs_.push_back(vc{id, mpdu_unpacker(df, cfg.max_packet_length,
                                            [on_packet, id](std::span<const std::uint8_t> p) { on_packet(id, p); }),
                          false, 0});
    }
}

void aos_receiver::on_frame(std::span<std::uint8_t> frame)
{
    ++c_.frames;
    const aos_layout& L = cfg_.layout;
    if (frame.size() != L.frame_length) {
        ++c_.bad_header;
        return;
    }
    if (L.fecf && !check_fecf(frame)) {
        ++c_.crc_errors;
        return;
    }
    const auto h = parse_aos_header(frame);
    if (!h || h->spacecraft_id != cfg_.spacecraft_id) {
        ++c_.bad_header;
        return;
    }
    if (h->vcid == aos_idle_vcid) {
        ++c_.idle_frames;
        return;
    }
    vc* v = nullptr;
    for (auto& w : vcs_) {
        if (w.vcid == h->vcid) {
            v = &w;
        }
    }
    if (v == nullptr) {
        ++c_.bad_header;
        return;
    }
    if (security_ != nullptr && security_->verify(frame) != security_status::ok) {
        ++c_.security_rejected;
        return;
    }
    const std::uint32_t count = extended_frame_count(*h);
    const std::uint32_t mask = h->count_cycle_used ? 0x0FFFFFFF : 0x00FFFFFF;
    bool continuous = true;
    if (v->seen) {
        const std::uint32_t diff = (count - v->last - 1) & mask;
        if (diff != 0) {
            if (diff <= mask / 2) {
                c_.lost_frames += diff;
                ++c_.gaps;
                continuous = false;
            } else {
                if (count == v->last) {
                    ++c_.duplicates;
                } else {
                    ++c_.reordered;
                }
                return;
            }
        }
    }
    v->seen = true;
    v->last = count;
    v->unpacker.on_data_field(frame.subspan(L.data_field_offset(), L.data_field_length()), continuous, c_);
}

}  // namespace qlink::modem
