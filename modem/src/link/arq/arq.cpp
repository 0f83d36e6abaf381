// Selective-repeat ARQ: sender window/timers/loss detection/probing, receiver reordering and acks.
#include "qlink/modem/arq.hpp"
#include "common/byte_order.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace qlink::modem {

namespace {

using detail::put16;
using detail::put32;
using detail::put64;
using detail::get16;
using detail::get32;
using detail::get64;

bool power_of_two(std::uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

void check_common(std::uint32_t window, std::size_t max_payload, std::uint16_t max_streams, const char* who)
{
    if (!power_of_two(window) || window > (1u << 20)) {
        throw std::invalid_argument(std::string(who) + ".window must be a power of two in [1, 2^20], got " +
                                    std::to_string(window));
    }
    if (max_payload == 0 || max_payload > 65535) {
        throw std::invalid_argument(std::string(who) + ".max_payload must be in [1, 65535], got " +
                                    std::to_string(max_payload));
    }
    if (max_streams == 0) {
        throw std::invalid_argument(std::string(who) + ".max_streams must be >= 1");
    }
}

} // namespace

std::uint32_t arq_session_from_time(arq_time t)
{
    // splitmix64 finaliser: neighbouring start times give unrelated session numbers.
    std::uint64_t x = static_cast<std::uint64_t>(t.count()) + 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    x ^= x >> 31;
    const auto s = static_cast<std::uint32_t>(x ^ (x >> 32));
    return s != 0 ? s : 1;
}

std::uint32_t arq_window_for(arq_time rtt, double frames_per_second)
{
    const double frames = std::ceil(std::chrono::duration<double>(rtt).count() * frames_per_second);
    std::uint32_t w = 1;
    while (w < frames && w < (1u << 20)) {
        w <<= 1;
    }
    return w;
}

// ---------------------------------------------------------------------------------------------
// Sender

struct arq_sender::slot {
    arq_time last_sent{};
    std::uint64_t offset = 0;
    std::uint16_t stream = 0;
    std::uint16_t length = 0;
    std::uint8_t tx_count = 0;
    bool acked = false;
    list_id in = list_id::none;
    std::int32_t prev = -1;
    std::int32_t next = -1;
};

arq_sender::arq_sender(const config& cfg) : cfg_(cfg), rto_(cfg.initial_rto)
{
    check_common(cfg.window, cfg.max_payload, cfg.max_streams, "arq_sender");
    if (cfg.min_rto <= arq_time{0} || cfg.min_rto > cfg.max_rto || cfg.initial_rto <= arq_time{0}) {
        throw std::invalid_argument("arq_sender: need 0 < min_rto <= max_rto and initial_rto > 0");
    }
    if (cfg.max_probe_interval <= arq_time{0} || cfg.probe_after_timeouts == 0) {
        throw std::invalid_argument("arq_sender: max_probe_interval and probe_after_timeouts must be > 0");
    }
    slots_.resize(cfg.window);
    buffer_.resize(std::size_t{cfg.window} * cfg.max_payload);
    next_offset_.assign(cfg.max_streams, 0);
}

arq_sender::~arq_sender() = default;

std::uint32_t arq_sender::free_segments() const { return cfg_.window - (snd_end_ - snd_una_); }

bool arq_sender::idle() const { return snd_una_ == snd_end_; }

void arq_sender::list_remove(std::uint32_t idx)
{
    slot& s = slots_[idx];
    if (s.in == list_id::none) {
        return;
    }
    list& l = list_of(s.in);
    if (s.prev >= 0) {
        slots_[static_cast<std::size_t>(s.prev)].next = s.next;
    } else {
        l.head = s.next;
    }
    if (s.next >= 0) {
        slots_[static_cast<std::size_t>(s.next)].prev = s.prev;
    } else {
        l.tail = s.prev;
    }
    s.prev = s.next = -1;
    s.in = list_id::none;
}

void arq_sender::list_push_back(list_id which, std::uint32_t idx)
{
    list_remove(idx);
    list& l = list_of(which);
    slot& s = slots_[idx];
    s.in = which;
    s.prev = l.tail;
    s.next = -1;
    if (l.tail >= 0) {
        slots_[static_cast<std::size_t>(l.tail)].next = static_cast<std::int32_t>(idx);
    } else {
        l.head = static_cast<std::int32_t>(idx);
    }
    l.tail = static_cast<std::int32_t>(idx);
}

std::size_t arq_sender::submit(std::uint16_t stream, std::span<const std::uint8_t> data)
{
    if (stream >= cfg_.max_streams) {
        ++stats_.rejected_submits;
        return 0;
    }
    std::size_t taken = 0;
    while (taken < data.size() && snd_end_ - snd_una_ < cfg_.window) {
        const std::size_t n = std::min(cfg_.max_payload, data.size() - taken);
        const std::uint32_t idx = index(snd_end_);
        slot& s = slots_[idx];
        s = slot{};
        s.stream = stream;
        s.offset = next_offset_[stream];
        s.length = static_cast<std::uint16_t>(n);
        std::memcpy(&buffer_[std::size_t{idx} * cfg_.max_payload], data.data() + taken, n);
        next_offset_[stream] += n;
        taken += n;
        ++snd_end_;
    }
    return taken;
}

std::size_t arq_sender::write_segment(std::uint32_t seq, arq_time now, std::span<std::uint8_t> out)
{
    const std::uint32_t idx = index(seq);
    slot& s = slots_[idx];
    // 0 is reserved for "no echo" in acks.
    s.tx_count = static_cast<std::uint8_t>(s.tx_count == 255 ? 1 : s.tx_count + 1);
    s.last_sent = now;
    list_push_back(list_id::in_flight, idx);
    return encode_data(seq, s.tx_count, out);
}

arq_sender::transmit_result arq_sender::poll_transmit(arq_time now, std::span<std::uint8_t> out)
{
    transmit_result r;
    if (out.size() < arq_data_header_bytes + cfg_.max_payload) {
        r.error = true;
        return r;
    }
    if (session_ == 0) {
        session_ = cfg_.session != 0 ? cfg_.session : arq_session_from_time(now);
    }
    if (probing_) {
        // Outage: one segment per probe interval, the oldest unacknowledged one, until an ack
        // shows the link is back. Never give up: the pass end decides, not the sender.
        if (now < next_probe_ || snd_una_ == snd_end_) {
            return r;
        }
        if (snd_una_ == snd_nxt_) {
            // Nothing outstanding (everything was acknowledged while we paused): probe with new data.
            r.bytes = write_segment(snd_nxt_, now, out);
            ++snd_nxt_;
            ++stats_.segments_sent;
        } else if (slots_[index(snd_una_)].acked) {
            // Held or delivered-not-consumed at the receiver: a copy finds out whether it is alive.
            r.bytes = write_copy(snd_una_, out);
            r.retransmission = true;
        } else {
            r.bytes = write_segment(snd_una_, now, out);
            r.retransmission = true;
            ++stats_.retransmissions;
        }
        r.probe = true;
        ++stats_.probes;
        rto_ = std::min(rto_ * 2, cfg_.max_rto);
        next_probe_ = now + std::min(rto_, cfg_.max_probe_interval);
        return r;
    }

    // Retransmission timer on the oldest transmission still outstanding.
    while (in_flight_.head >= 0) {
        const auto head = static_cast<std::uint32_t>(in_flight_.head);
        if (slots_[head].last_sent + rto_ > now) {
            break;
        }
        // Several segments expiring together are one timeout event (one backoff step).
        if (!timeout_armed_ || now >= last_timeout_ + rto_) {
            ++stats_.timeouts;
            ++consecutive_timeouts_;
            last_timeout_ = now;
            timeout_armed_ = true;
            rto_ = std::min(rto_ * 2, cfg_.max_rto);
            if (consecutive_timeouts_ >= cfg_.probe_after_timeouts) {
                probing_ = true;
                next_probe_ = now;
                return poll_transmit(now, out);
            }
        }
        list_push_back(list_id::lost, head);
    }

    if (lost_.head >= 0) {
        const auto idx = static_cast<std::uint32_t>(lost_.head);
        // Recover the sequence number from the slot index relative to snd_una.
        const std::uint32_t seq = snd_una_ + ((idx - index(snd_una_)) & (cfg_.window - 1));
        r.bytes = write_segment(seq, now, out);
        r.retransmission = true;
        ++stats_.retransmissions;
        return r;
    }
    if (snd_nxt_ != snd_end_) {
        r.bytes = write_segment(snd_nxt_, now, out);
        ++snd_nxt_;
        ++stats_.segments_sent;
        return r;
    }
    if (snd_una_ != snd_nxt_ && in_flight_.head < 0 && now >= held_probe_at_) {
        // Everything outstanding is acknowledged selectively only (held, or delivered and not yet
        // consumed): nothing would ever go out again. Once per RTO send a copy of the oldest so
        // that a receiver that died meanwhile is found out (its replacement answers with a new
        // session) and a live one repeats its state.
        r.bytes = write_copy(snd_una_, out);
        r.retransmission = true;
        r.probe = true;
        ++stats_.probes;
        held_probe_at_ = now + rto_;
    }
    return r;
}

std::size_t arq_sender::write_copy(std::uint32_t seq, std::span<std::uint8_t> out) const
{
    return encode_data(seq, 0, out);  // names no transmission: no RTT sample, no loss inference from its ack
}

std::size_t arq_sender::encode_data(std::uint32_t seq, std::uint8_t tx_count, std::span<std::uint8_t> out) const
{
    const std::uint32_t idx = index(seq);
    const slot& s = slots_[idx];
    std::uint8_t* p = out.data();
    p[0] = arq_type_data;
    p[1] = tx_count;
    put16(p + 2, s.stream);
    put32(p + 4, seq);
    put64(p + 8, s.offset);
    put16(p + 16, s.length);
    put32(p + 18, snd_una_);
    put32(p + 22, session_);
    put32(p + 26, rx_session_);
    std::memcpy(p + arq_data_header_bytes, &buffer_[std::size_t{idx} * cfg_.max_payload], s.length);
    return arq_data_header_bytes + s.length;
}

bool arq_sender::mark_acked(std::uint32_t seq)
{
    const std::uint32_t idx = index(seq);
    slot& s = slots_[idx];
    list_remove(idx);  // a released slot must not stay linked: submit() reuses it
    if (s.acked) {
        return false;
    }
    s.acked = true;
    return true;
}

void arq_sender::rtt_sample(arq_time sample)
{
    ++stats_.rtt_samples;
    if (!have_rtt_) {
        srtt_ = sample;
        rttvar_ = sample / 2;
        have_rtt_ = true;
    } else {
        const arq_time err = srtt_ > sample ? srtt_ - sample : sample - srtt_;
        rttvar_ = (3 * rttvar_ + err) / 4;
        srtt_ = (7 * srtt_ + sample) / 8;
    }
    rto_ = std::clamp(srtt_ + std::max(4 * rttvar_, arq_time{std::chrono::microseconds(1)}), cfg_.min_rto,
                      cfg_.max_rto);
}

bool arq_sender::on_ack(arq_time now, std::span<const std::uint8_t> frame)
{
    if (frame.size() < arq_ack_header_bytes || frame[0] != arq_type_ack) {
        ++stats_.acks_rejected;
        return false;
    }
    const std::uint8_t* p = frame.data();
    const std::uint8_t echo_tx = p[1];
    const std::uint32_t cum = get32(p + 2);
    const std::uint32_t echo_seq = get32(p + 6);
    const std::uint32_t base = get32(p + 10);
    const std::size_t nbytes = get16(p + 14);
    const std::uint32_t rx_session = get32(p + 16);
    const std::uint32_t tx_session = get32(p + 20);
    if (rx_session == 0 || frame.size() < arq_ack_header_bytes + nbytes) {
        ++stats_.acks_rejected;
        return false;
    }
    if (session_ == 0 || tx_session != session_) {
        // Describes the sequence space of an earlier instance of this sender (or is not for us):
        // its numbers would acknowledge the wrong data.
        ++stats_.acks_other_session;
        return true;
    }
    if (rx_session != rx_session_) {
        new_receiver(rx_session);
    }
    const std::uint32_t sent = snd_nxt_ - snd_una_;
    if (cum - snd_una_ > sent) {
        // A stale ack (cum behind snd_una) also lands here through the unsigned wrap; it carries
        // nothing new, so dropping it is safe.
        if (snd_una_ - cum < (1u << 31)) {
            ++stats_.acks_received;
            return true;
        }
        ++stats_.acks_rejected;
        return false;
    }
    ++stats_.acks_received;

    // Echo first, while the echoed slot still holds its send time.
    bool have_echo = false;
    arq_time echo_sent{};
    if (echo_seq - snd_una_ < sent) {
        const slot& s = slots_[index(echo_seq)];
        if (echo_tx != 0 && !s.acked && s.tx_count == echo_tx) {
            have_echo = true;
            echo_sent = s.last_sent;
        }
    }

    // Moving the cumulative point is news even when the segments were acknowledged selectively
    // before (ack_consumed_only receivers do that until their user has read them).
    std::uint32_t acked_now = cum - snd_una_;
    for (std::uint32_t seq = snd_una_; seq != cum; ++seq) {
        acked_now += mark_acked(seq) ? 1 : 0;
    }
    const std::span<const std::uint8_t> bitmap = frame.subspan(arq_ack_header_bytes, nbytes);
    for (std::size_t byte = 0; byte < bitmap.size(); ++byte) {
        if (bitmap[byte] == 0) {
            continue;
        }
        for (unsigned bit = 0; bit < 8; ++bit) {
            if ((bitmap[byte] >> bit) & 1u) {
                const std::uint32_t seq = base + static_cast<std::uint32_t>(byte * 8 + bit);
                if (seq - snd_una_ < sent) {
                    acked_now += mark_acked(seq) ? 1 : 0;
                }
            }
        }
    }
    // Only the cumulative point releases data. Selective acks say "held", and what a receiver
    // holds dies with it if it restarts; within one session a held segment is delivered as soon
    // as the gap before it fills, and the cumulative point then covers it.
    if (cum != snd_una_) {
        held_probe_at_ = now + rto_;
    }
    snd_una_ = cum;

    // Only an ack with news proves the downlink works again; a periodic repeat over a live return
    // link must not end the pause (the sender would flood a dead downlink).
    if (!have_echo && acked_now == 0) {
        return true;
    }
    probing_ = false;
    consecutive_timeouts_ = 0;
    timeout_armed_ = false;
    if (have_echo) {
        rtt_sample(now - echo_sent);
        // Anything sent before the echoed transmission (minus the reordering allowance) and still
        // unacknowledged was lost: the channel delivers in order.
        while (in_flight_.head >= 0) {
            const auto head = static_cast<std::uint32_t>(in_flight_.head);
            if (slots_[head].last_sent + cfg_.reorder_window >= echo_sent) {
                break;
            }
            list_push_back(list_id::lost, head);
            ++stats_.lost_detected;
        }
    } else if (have_rtt_) {
        rto_ = std::clamp(srtt_ + 4 * rttvar_, cfg_.min_rto, cfg_.max_rto);
    }
    return true;
}

void arq_sender::new_receiver(std::uint32_t rx_session)
{
    if (rx_session_ != 0) {
        // The receiver we were talking to is gone (restarted). Cumulative acks are facts about
        // what it delivered, but the segments it only held (selective acks) died with it, and
        // the new one drops everything sent before this point (it waits for a frame naming it):
        // queue all of it again. Everything below snd_una stays released.
        ++stats_.receiver_restarts;
        for (std::uint32_t seq = snd_una_; seq != snd_nxt_; ++seq) {
            slot& s = slots_[index(seq)];
            s.acked = false;
            list_push_back(list_id::lost, index(seq));
            ++stats_.requeued_for_new_receiver;
        }
        // The new receiver heard us and its ack came back: the link works, stop probing.
        probing_ = false;
        consecutive_timeouts_ = 0;
        timeout_armed_ = false;
    }
    rx_session_ = rx_session;
}

std::vector<arq_range> arq_sender::pass_report() const
{
    std::vector<arq_range> out;
    std::vector<std::int64_t> last(cfg_.max_streams, -1); // index in out of each stream's open range
    for (std::uint32_t seq = snd_una_; seq != snd_end_; ++seq) {
        // Segments acknowledged selectively beyond a gap are held, not delivered (the receiver
        // releases in order), so they are reported too.
        const slot& s = slots_[index(seq)];
        auto& li = last[s.stream];
        if (li >= 0) {
            arq_range& r = out[static_cast<std::size_t>(li)];
            if (r.offset + r.length == s.offset) {
                r.length += s.length;
                continue;
            }
        }
        li = static_cast<std::int64_t>(out.size());
        out.push_back({s.stream, s.offset, s.length});
    }
    std::sort(out.begin(), out.end(), [](const arq_range& a, const arq_range& b) {
        return a.stream != b.stream ? a.stream < b.stream : a.offset < b.offset;
    });
    return out;
}

// ---------------------------------------------------------------------------------------------
// Receiver

struct arq_receiver::slot {
    std::uint64_t offset = 0;
    std::uint64_t end = 0;        // stream position after its delivery (ack_consumed_only; 0: nothing delivered)
    std::uint16_t stream = 0;
    std::uint16_t length = 0;
    bool present = false;         // held, not yet delivered
    bool delivered = false;       // delivered, the user has not consumed it yet (ack_consumed_only)
};

arq_receiver::arq_receiver(const config& cfg, sink& out) : cfg_(cfg), sink_(out)
{
    check_common(cfg.window, cfg.max_payload, cfg.max_streams, "arq_receiver");
    if (cfg.sack_bits == 0 || cfg.sack_bits % 8 != 0 || cfg.sack_bits > 8192) {
        throw std::invalid_argument("arq_receiver.sack_bits must be a multiple of 8 in [8, 8192]");
    }
    slots_.resize(cfg.window);
    buffer_.resize(std::size_t{cfg.window} * cfg.max_payload);
    delivered_.assign(cfg.max_streams, 0);
    adopt_.assign(cfg.max_streams, 0);
    resumed_.assign(cfg.max_streams, 0);
    resume_session_.assign(cfg.max_streams, 0);
    consumed_.assign(cfg.max_streams, 0);
}

arq_receiver::~arq_receiver() = default;

bool arq_receiver::resume(std::uint16_t stream, std::uint64_t delivered, std::uint32_t sender_session)
{
    if (stream >= cfg_.max_streams) {
        return false;
    }
    resume_session_[stream] = sender_session;
    delivered_[stream] = delivered;
    consumed_[stream] = static_cast<std::int64_t>(delivered);
    resumed_[stream] = 1;
    adopt_[stream] = 1;
    return true;
}

void arq_receiver::drop_held()
{
    for (slot& s : slots_) {
        s.present = false;
        s.delivered = false;
    }
}

void arq_receiver::skip_to(std::uint32_t base)
{
    // Everything from the ack point up to `base` is released at the sender: forget it (bytes the
    // sink already has stay with the user; consumed_ keeps counting them).
    const std::uint32_t n = base - ack_pt_;
    if (n >= cfg_.window) {
        drop_held();
    } else {
        for (std::uint32_t k = 0; k < n; ++k) {
            slot& s = slots_[index(ack_pt_ + k)];
            s.present = false;
            s.delivered = false;
        }
    }
    rcv_nxt_ = base;
    ack_pt_ = base;
}

void arq_receiver::consumed(std::uint16_t stream, std::uint64_t bytes)
{
    if (stream >= cfg_.max_streams) {
        return;
    }
    consumed_[stream] += static_cast<std::int64_t>(bytes);
    advance_ack_point();
}

void arq_receiver::advance_ack_point()
{
    if (!cfg_.ack_consumed_only) {
        ack_pt_ = rcv_nxt_;
        return;
    }
    while (ack_pt_ != rcv_nxt_) {
        slot& h = slots_[index(ack_pt_)];
        if (!h.delivered || (h.end != 0 && consumed_[h.stream] < static_cast<std::int64_t>(h.end))) {
            break;
        }
        h.delivered = false;
        ++ack_pt_;
    }
}

std::uint64_t arq_receiver::delivered_offset(std::uint16_t stream) const
{
    return stream < delivered_.size() ? delivered_[stream] : 0;
}

arq_receiver::receive_result arq_receiver::on_frame(arq_time now, std::span<const std::uint8_t> frame)
{
    receive_result r;
    if (frame.size() < arq_data_header_bytes || frame[0] != arq_type_data) {
        ++stats_.malformed;
        return r;
    }
    const std::uint8_t* p = frame.data();
    const std::uint16_t stream = get16(p + 2);
    const std::uint32_t seq = get32(p + 4);
    const std::uint64_t offset = get64(p + 8);
    const std::uint16_t length = get16(p + 16);
    const std::uint32_t base = get32(p + 18);
    const std::uint32_t tx_session = get32(p + 22);
    const std::uint32_t bound = get32(p + 26);
    // Trailing bytes are allowed: the frame data field may be padded to its fixed size.
    if (length > cfg_.max_payload || frame.size() < arq_data_header_bytes + length || stream >= cfg_.max_streams ||
        tx_session == 0 || seq - base >= cfg_.window) {
        ++stats_.malformed;
        return r;
    }
    if (session_ == 0) {
        session_ = cfg_.session != 0 ? cfg_.session : arq_session_from_time(now);
    }
    if (tx_session != tx_session_) {
        if (tx_session_ != 0) {
            // A new sender instance numbers its segments and stream bytes from scratch; what the
            // old one had not delivered is its user's to resend (it was told: pass report / exit).
            ++stats_.sender_restarts;
            for (std::size_t k = 0; k < delivered_.size(); ++k) {
                // Bytes of the old session the user has not consumed yet still count against it.
                consumed_[k] -= static_cast<std::int64_t>(delivered_[k]);
                delivered_[k] = 0;
            }
            std::fill(resumed_.begin(), resumed_.end(), 0);
        } else {
            // First sender heard: a resume point counted in another sender's numbering says
            // nothing about this one's bytes (it starts its streams at 0).
            for (std::size_t k = 0; k < resumed_.size(); ++k) {
                if (resumed_[k] != 0 && resume_session_[k] != 0 && resume_session_[k] != tx_session) {
                    resumed_[k] = 0;
                    delivered_[k] = 0;
                    consumed_[k] = 0;
                    ++stats_.resume_discarded;
                }
            }
        }
        tx_session_ = tx_session;
        synced_ = false;
        drop_held();
    }
    r.valid = true;
    r.ack_now = true;
    heard_ = true;
    echo_fresh_ = true;
    echo_seq_ = seq;
    echo_tx_ = p[1];

    if (!synced_) {
        if (bound != 0 && bound != session_) {
            // The sender still works for an earlier receiver (we replace one that died) and its
            // window base may lag what that receiver delivered: acks of it may still be on their
            // way. Take nothing yet; our ack (with our session) makes the sender switch to us, and
            // its base in frames sent after that point is final (the return link keeps order).
            rcv_nxt_ = base;
            ack_pt_ = base;
            ++stats_.waiting_for_sender;
            return r;
        }
        synced_ = true;
        rcv_nxt_ = base;
        ack_pt_ = base;
        std::fill(adopt_.begin(), adopt_.end(), 1);
        ++stats_.resyncs;
    } else if (const std::uint32_t ahead = base - rcv_nxt_; ahead != 0 && ahead < (1u << 31)) {
        // The sender released segments we never delivered: another receiver instance delivered
        // and acknowledged them (its acks arrived late). Skip to its base.
        skip_to(base);
        std::fill(adopt_.begin(), adopt_.end(), 1);
        ++stats_.resyncs;
        deliver_in_order();
    }

    const std::uint32_t d = seq - rcv_nxt_;
    if (d >= (1u << 31)) {
        ++stats_.duplicates; // already delivered; the ack tells the sender again
        return r;
    }
    if (seq - ack_pt_ >= cfg_.window) {
        ++stats_.out_of_window;
        return r;
    }
    const std::uint32_t idx = index(seq);
    slot& s = slots_[idx];
    if (s.present) {
        ++stats_.duplicates;
        return r;
    }
    s.present = true;
    s.stream = stream;
    s.offset = offset;
    s.length = length;
    std::memcpy(&buffer_[std::size_t{idx} * cfg_.max_payload], p + arq_data_header_bytes, length);
    deliver_in_order();
    return r;
}

void arq_receiver::deliver_in_order()
{
    while (slots_[index(rcv_nxt_)].present) {
        const std::uint32_t i = index(rcv_nxt_);
        slot& h = slots_[i];
        h.present = false;
        // With ack_consumed_only the slot stays until the user consumed it (end 0: nothing to wait for).
        h.delivered = cfg_.ack_consumed_only;
        h.end = 0;
        ++rcv_nxt_;
        std::uint64_t offset = h.offset;
        std::span<const std::uint8_t> data(&buffer_[std::size_t{i} * cfg_.max_payload], h.length);
        std::uint64_t& at = delivered_[h.stream];
        if (offset != at) {
            if (adopt_[h.stream] == 0) {
                // Only a broken or hostile peer gets here (frames are authenticated below us).
                ++stats_.malformed;
                continue;
            }
            if (offset < at) {
                // The user already has these bytes (resume point, or this receiver's own delivery
                // before a skip): pass on only the part beyond.
                const std::uint64_t have = std::min<std::uint64_t>(at - offset, data.size());
                stats_.resume_trimmed_bytes += have;
                data = data.subspan(static_cast<std::size_t>(have));
                offset += have;
                if (data.empty()) {
                    continue;
                }
            } else {
                // Continue where the sender's stream continues. After resume() that leaves a gap
                // the user never got: bytes acknowledged by an earlier receiver but not passed on.
                if (resumed_[h.stream] != 0) {
                    ++stats_.resume_gaps;
                }
                consumed_[h.stream] += static_cast<std::int64_t>(offset - at);  // the user will never see the gap
                at = offset;
            }
        }
        adopt_[h.stream] = 0;
        sink_.deliver(h.stream, offset, data);
        at += data.size();
        h.end = at;
        ++stats_.segments_delivered;
        stats_.bytes_delivered += data.size();
    }
    advance_ack_point();
}

bool arq_receiver::ack_due(arq_time now) const { return heard_ && now >= last_ack_ + cfg_.ack_repeat; }

std::size_t arq_receiver::build_ack(arq_time now, std::span<std::uint8_t> out)
{
    const std::size_t n = ack_bytes();
    if (out.size() < n) {
        return 0;
    }
    const std::uint32_t bits = cfg_.sack_bits;
    // The bitmap covers the head of the window when the echoed segment is near it, otherwise the
    // region ending at the echoed segment (where recent arrivals, and so recent news, are).
    // With ack_consumed_only, segments between the ack point and rcv_nxt are delivered but not
    // consumed: acknowledged selectively (no retransmission, no release), so the bitmap starts at
    // the ack point itself.
    std::uint32_t base = ack_pt_ != rcv_nxt_ ? ack_pt_ : rcv_nxt_ + 1;
    const std::uint32_t d = echo_seq_ - ack_pt_;
    if (d < cfg_.window && d >= bits) {
        base = echo_seq_ - bits + 1;
    }
    std::uint8_t* p = out.data();
    p[0] = arq_type_ack;
    // A repeated ack names no transmission: its age would corrupt the RTT estimate.
    p[1] = echo_fresh_ ? echo_tx_ : 0;
    echo_fresh_ = false;
    put32(p + 2, ack_pt_);
    put32(p + 6, echo_seq_);
    put32(p + 10, base);
    put16(p + 14, static_cast<std::uint16_t>(bits / 8));
    put32(p + 16, session_);
    put32(p + 20, tx_session_);
    std::memset(p + arq_ack_header_bytes, 0, bits / 8);
    for (std::uint32_t i = 0; i < bits; ++i) {
        const std::uint32_t seq = base + i;
        const slot& sl = slots_[index(seq)];
        if (seq - ack_pt_ < cfg_.window && (sl.present || sl.delivered)) {
            p[arq_ack_header_bytes + i / 8] |= static_cast<std::uint8_t>(1u << (i % 8));
        }
    }
    last_ack_ = now;
    ++stats_.acks_built;
    return n;
}

} // namespace qlink::modem
