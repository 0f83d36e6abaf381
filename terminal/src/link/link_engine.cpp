// link_engine: user streams/datagrams <-> ARQ <-> M_PDU packets <-> TX/RX link pipelines <-> air bits.
#include "qlink/terminal/link_engine.hpp"

#include "qlink/modem/arq.hpp"
#include "qlink/modem/link_pipeline.hpp"
#include "qlink/modem/profile.hpp"
#include "qlink/modem/space_packet.hpp"
#include "qlink/modem/spsc_queue.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace qlink::terminal {

namespace {

using namespace qlink::modem;

// First byte of every encapsulation packet we send: the ARQ types, or a datagram of one channel
// (index: datagram_channel).
constexpr std::array<std::uint8_t, link_datagram_channels> tag_datagram{0xD1, 0xD2};

// LLRs per chunk handed from the transport to the RX worker.
constexpr std::size_t rx_chunk_llrs = 65536;

constexpr std::array<std::uint8_t, sdls_iv_fixed_length> iv_ground{0x51, 0x47, 0x00, 0x01};  // "QG"
constexpr std::array<std::uint8_t, sdls_iv_fixed_length> iv_space{0x51, 0x53, 0x00, 0x02};   // "QS"

[[noreturn]] void bad(const std::string& field, const std::string& why)
{
    throw std::invalid_argument("link_engine_config." + field + ": " + why);
}

const chain_profile& profile_or_throw(const std::string& name, const char* field)
{
    const std::string n = name.empty() ? std::string(default_profile_name) : name;
    const chain_profile* p = find_profile(n);
    if (p == nullptr) {
        bad(field, "unknown profile '" + n + "' (known: " + profile_names() + ")");
    }
    return *p;
}

arq_time to_arq_time(double s) { return std::chrono::nanoseconds(static_cast<std::int64_t>(std::llround(s * 1e9))); }

std::uint64_t wall_ns()
{
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
            .count());
}

// Largest segment payload such that one ARQ data packet and one ack packet fit in one packet zone.
std::size_t derive_payload(std::size_t zone, std::size_t ack_bytes)
{
    const std::size_t ack_packet = encap_header_length(ack_bytes) + ack_bytes;
    std::size_t best = 0;
    for (std::size_t hl : {std::size_t{2}, std::size_t{4}}) {
        if (zone < hl + arq_data_header_bytes + ack_packet + 1) {
            continue;
        }
        const std::size_t p = zone - hl - arq_data_header_bytes - ack_packet;
        if (encap_header_length(arq_data_header_bytes + p) == hl) {
            best = std::max(best, p);
        }
    }
    return std::min<std::size_t>(best, 65535);
}

// Counts the keys the transmitter takes, for telemetry.
class counting_key_source final : public link_key_source {
public:
    explicit counting_key_source(link_key_source& inner) : inner_(inner) {}
    std::optional<std::uint32_t> next_key(std::span<std::uint8_t, link_key_length> key) override
    {
        auto id = inner_.next_key(key);
        if (id) {
            ++taken;
        }
        return id;
    }
    bool key_by_id(std::uint32_t id, std::span<std::uint8_t, link_key_length> key) override
    {
        return inner_.key_by_id(id, key);
    }
    std::uint64_t taken = 0;

private:
    link_key_source& inner_;
};

// Byte FIFO that keeps its high-water capacity: no allocation once it has grown.
class byte_fifo {
public:
    std::size_t size() const { return buf_.size() - head_; }
    void append(std::span<const std::uint8_t> d) { buf_.insert(buf_.end(), d.begin(), d.end()); }
    std::span<const std::uint8_t> front(std::size_t n) const { return std::span(buf_).subspan(head_, n); }
    void consume(std::size_t n)
    {
        head_ += n;
        if (head_ == buf_.size()) {
            buf_.clear();
            head_ = 0;
        } else if (head_ >= 65536 && head_ >= buf_.size() / 2) {
            buf_.erase(buf_.begin(), buf_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }
    void wipe()
    {
        if (!buf_.empty()) {
            OPENSSL_cleanse(buf_.data(), buf_.size());
        }
        buf_.clear();
        head_ = 0;
    }

private:
    std::vector<std::uint8_t> buf_;
    std::size_t head_ = 0;
};

// Datagrams as [u32 length][bytes] records in a byte FIFO.
class datagram_fifo {
public:
    explicit datagram_fifo(std::size_t limit) : limit_(limit) {}
    bool push(std::span<const std::uint8_t> d)
    {
        if (bytes_ + d.size() > limit_) {
            return false;
        }
        const auto n = static_cast<std::uint32_t>(d.size());
        std::uint8_t len[4];
        std::memcpy(len, &n, 4);
        fifo_.append(len);
        fifo_.append(d);
        bytes_ += d.size();
        ++count_;
        return true;
    }
    bool empty() const { return count_ == 0; }
    std::size_t front_size() const
    {
        std::uint32_t n = 0;
        std::memcpy(&n, fifo_.front(4).data(), 4);
        return n;
    }
    std::span<const std::uint8_t> front() const { return fifo_.front(4 + front_size()).subspan(4); }
    void pop()
    {
        const std::size_t n = front_size();
        fifo_.consume(4 + n);
        bytes_ -= n;
        --count_;
    }
    void wipe()
    {
        fifo_.wipe();
        bytes_ = 0;
        count_ = 0;
    }

private:
    std::size_t limit_;
    byte_fifo fifo_;
    std::size_t bytes_ = 0;
    std::size_t count_ = 0;
};

// Wakes a waiting thread when the other end of an SPSC queue moved: take mark(), try the queue,
// wait(mark) if it was empty. A post() between mark() and wait() makes wait() return at once.
class signal {
public:
    std::uint64_t mark() const { return seq_.load(); }
    void wait(std::uint64_t mark) const { seq_.wait(mark); }
    void post()
    {
        seq_.fetch_add(1);
        seq_.notify_all();
    }

private:
    std::atomic<std::uint64_t> seq_{0};
};

class link_engine_impl final : public link_engine, private arq_receiver::sink {
public:
    link_engine_impl(const link_engine_config& cfg, link_key_source& tx_keys, link_key_source& rx_keys)
        : cfg_(cfg), tx_keys_(tx_keys), dg_tx_{datagram_fifo(cfg.datagram_queue_bytes), datagram_fifo(cfg.ip_queue_bytes)},
          dg_rx_{datagram_fifo(cfg.datagram_queue_bytes), datagram_fifo(cfg.ip_queue_bytes)}
    {
        validate();
        const chain_profile& txp = profile_or_throw(cfg.tx_profile, "tx_profile");
        const chain_profile& rxp = profile_or_throw(cfg.rx_profile, "rx_profile");
        const bool ground = cfg.role == link_role::ground;
        modem::link_clock_ns clock = wall_ns;

        tx_link_pipeline::config tc;
        tc.profile = txp;
        tc.isa = cfg.isa;
        tc.spacecraft_id = static_cast<std::uint8_t>(cfg.spacecraft_id);
        tc.channels = {{cfg.tx_vcid, 0}};
        tc.security = cfg.security;
        tc.sdls.mode = cfg.sdls_mode;
        tc.sdls.iv_fixed = ground ? iv_ground : iv_space;
        tc.sdls.first_spi = cfg.spi;
        tc.sdls.max_frames_per_key = cfg.rotate_every_frames;
        tc.sdls.rotation_period_ms = static_cast<std::int64_t>(std::llround(cfg.rotate_every_s * 1000.0));
        tc.sdls.clock_ms = [this] { return static_cast<std::int64_t>(std::floor(now_s_.load() * 1000.0)); };
        tc.sdls.announce_frames = cfg.announce_frames;
        tc.sdls.policy = cfg.key_exhaustion_policy;
        tc.sdls.fallback = cfg.fallback_keys;
        tc.sdls.alarm = [this](std::string_view m) {
            if (cfg_.on_alarm) {
                cfg_.on_alarm(m);
            }
        };
        tc.clock_ns = clock;
        try {
            tx_ = std::make_unique<tx_link_pipeline>(tc, &tx_keys_);
        } catch (const std::invalid_argument& e) {
            bad("tx_profile", e.what());
        }

        rx_link_pipeline::config rc;
        rc.profile = rxp;
        rc.isa = cfg.isa;
        rc.spacecraft_id = static_cast<std::uint8_t>(cfg.spacecraft_id);
        rc.vcids = {cfg.rx_vcid};
        rc.max_packet_length = cfg.max_datagram_bytes + 16;
        rc.security = cfg.security;
        rc.sdls.mode = cfg.sdls_mode;
        rc.sdls.iv_fixed = ground ? iv_space : iv_ground;
        rc.sdls.replay_window = cfg.replay_window;
        rc.sdls.fallback = cfg.fallback_keys;
        rc.clock_ns = clock;
        rx_ = std::make_unique<rx_link_pipeline>(rc, &rx_keys, [this](std::uint8_t, std::span<const std::uint8_t> p) {
            on_packet(p);
        });

        // Segment size per direction from that direction's frame: the peer derives the same numbers
        // from the same two profiles, so both ends agree without negotiating.
        const std::size_t zone_tx = tx_->packet_zone();
        const std::size_t zone_rx = rx_->layout().data_field_length() - mpdu_header_length;
        const std::size_t ack_bytes = arq_ack_header_bytes + cfg.sack_bits / 8;
        const std::size_t fit_tx = derive_payload(zone_tx, ack_bytes);
        const std::size_t fit_rx = derive_payload(zone_rx, ack_bytes);
        if (fit_tx == 0 || fit_rx == 0) {
            bad(fit_tx == 0 ? "tx_profile" : "rx_profile", "frames too short to carry an ARQ segment and an ack");
        }
        if (cfg.arq_max_payload > std::min(fit_tx, fit_rx)) {
            bad("arq_max_payload", "must be <= " + std::to_string(std::min(fit_tx, fit_rx)) +
                                       " (a segment and an ack in one frame of either direction)");
        }
        const std::size_t payload = cfg.arq_max_payload != 0 ? cfg.arq_max_payload : fit_tx;
        const std::size_t rx_payload = cfg.arq_max_payload != 0 ? cfg.arq_max_payload : fit_rx;

        arq_sender::config sc;
        sc.window = cfg.arq_window;
        sc.max_payload = payload;
        sc.max_streams = cfg.streams;
        sc.initial_rto = to_arq_time(cfg.rto_initial_s);
        sc.min_rto = to_arq_time(cfg.rto_min_s);
        sc.max_rto = to_arq_time(cfg.rto_max_s);
        sc.session = cfg.arq_tx_session;
        arq_receiver::config qc;
        qc.window = cfg.arq_window;
        qc.max_payload = rx_payload;
        qc.max_streams = cfg.streams;
        qc.sack_bits = cfg.sack_bits;
        qc.ack_repeat = to_arq_time(cfg.ack_interval_s);
        qc.session = cfg.arq_rx_session;
        qc.ack_consumed_only = cfg.ack_consumed_only;
        try {
            snd_ = std::make_unique<arq_sender>(sc);
            rcv_ = std::make_unique<arq_receiver>(qc, static_cast<arq_receiver::sink&>(*this));
        } catch (const std::invalid_argument& e) {
            bad("arq", e.what());
        }
        pos_.resize(cfg.streams);
        handed_.assign(cfg.streams, 0);
        runs_.resize(cfg.streams);
        for (std::uint8_t k = 0; k < cfg.streams; ++k) {
            if (const auto& r = cfg.resume[k]) {
                rcv_->resume(k, r->offset, r->sender_session);
                pos_[k] = *r;
            }
        }
        bits_.resize(tx_->max_block_bits());
        seg_.resize(arq_data_header_bytes + payload);
        ack_.resize(rcv_->ack_bytes());
        dg_scratch_.resize(cfg.max_datagram_bytes + 1);
        rx_streams_.resize(cfg.streams);
        threads_ = cfg.worker_threads;
        if (threads_) {
            tx_blocks_.resize(cfg.tx_queue_frames);
            for (auto& b : tx_blocks_) {
                b.bits.resize(tx_->max_block_bits());
            }
            rx_chunks_.resize(cfg.queue_depth_frames);
            for (auto& c : rx_chunks_) {
                c.llr.resize(rx_chunk_llrs);
            }
            tx_full_ = std::make_unique<spsc_queue<std::uint32_t>>(cfg.tx_queue_frames);
            tx_free_ = std::make_unique<spsc_queue<std::uint32_t>>(cfg.tx_queue_frames);
            rx_full_ = std::make_unique<spsc_queue<std::uint32_t>>(cfg.queue_depth_frames);
            rx_free_ = std::make_unique<spsc_queue<std::uint32_t>>(cfg.queue_depth_frames);
            start_workers();
        }
    }

    ~link_engine_impl() override
    {
        stop_workers();
        for (auto& s : rx_streams_) {
            s.wipe();
        }
        for (std::size_t c = 0; c < link_datagram_channels; ++c) {
            dg_tx_[c].wipe();
            dg_rx_[c].wipe();
        }
        OPENSSL_cleanse(dg_scratch_.data(), dg_scratch_.size());
        OPENSSL_cleanse(seg_.data(), seg_.size());
    }

    std::size_t send(std::uint8_t stream, std::span<const std::uint8_t> data) override
    {
        std::lock_guard lk(mu_);
        if (finished_ || stream >= cfg_.streams) {
            return 0;
        }
        const std::size_t n = snd_->submit(stream, data);
        user_in_ += n;
        return n;
    }

    bool send_datagram(std::span<const std::uint8_t> d, datagram_channel channel) override
    {
        const auto c = static_cast<std::size_t>(channel);
        std::lock_guard lk(mu_);
        if (finished_ || d.size() > cfg_.max_datagram_bytes || c >= link_datagram_channels) {
            return false;
        }
        if (!dg_tx_[c].push(d)) {
            return false;
        }
        ++dg_in_[c];
        return true;
    }

    std::size_t receive(std::uint8_t stream, std::span<std::uint8_t> out) override
    {
        std::lock_guard lk(mu_);
        if (stream >= cfg_.streams) {
            return 0;
        }
        auto& f = rx_streams_[stream];
        const std::size_t n = std::min(out.size(), f.size());
        if (n > 0) {
            const auto src = f.front(n);
            std::copy(src.begin(), src.end(), out.begin());
            f.consume(n);
            user_out_ += n;
            if (cfg_.ack_consumed_only) {
                handed_[stream] += n;
            } else {
                take(stream, n);
            }
        }
        return n;
    }

    void consumed(std::uint8_t stream, std::size_t bytes) override
    {
        std::lock_guard lk(mu_);
        if (!cfg_.ack_consumed_only || stream >= cfg_.streams) {
            return;
        }
        if (bytes > handed_[stream]) {
            ++consume_misuse_;
            bytes = handed_[stream];
        }
        handed_[stream] -= bytes;
        take(stream, bytes);
        rcv_->consumed(stream, bytes);
    }

    stream_position position_after(std::uint8_t stream, std::size_t bytes) const override
    {
        std::lock_guard lk(mu_);
        if (stream >= cfg_.streams) {
            return {};
        }
        stream_position p = pos_[stream];
        for (const run& r : runs_[stream]) {
            if (bytes == 0) {
                break;
            }
            const std::uint64_t k = std::min<std::uint64_t>(bytes, r.bytes);
            p = {r.session, r.offset + k};
            bytes -= static_cast<std::size_t>(k);
        }
        return p;
    }

    std::size_t receive_datagram(std::span<std::uint8_t> out, datagram_channel channel) override
    {
        const auto c = static_cast<std::size_t>(channel);
        if (c >= link_datagram_channels) {
            return 0;
        }
        std::lock_guard lk(mu_);
        auto& q = dg_rx_[c];
        while (!q.empty()) {
            const auto d = q.front();
            if (d.size() > out.size()) {
                ++dg_dropped_[c];
                q.pop();
                continue;
            }
            std::copy(d.begin(), d.end(), out.begin());
            const std::size_t n = d.size();
            q.pop();
            ++dg_out_[c];
            return n;
        }
        return 0;
    }

    std::size_t pull_tx_bits(std::span<std::uint8_t> packed, double sim_time) override
    {
        advance(sim_time);
        std::fill(packed.begin(), packed.end(), std::uint8_t{0});
        const std::size_t want = 8 * packed.size();
        std::size_t done = 0;
        while (done < want) {
            if (out_pos_ == out_len_ && !next_out_block()) {
                break;
            }
            const std::size_t n = std::min(out_len_ - out_pos_, want - done);
            const std::uint8_t* b = out_bits_ + out_pos_;
            std::size_t i = 0;
            if ((done & 7) == 0) {
                // Whole output bytes at a time while aligned (the common case).
                for (; i + 8 <= n; i += 8) {
                    unsigned v = 0;
                    for (std::size_t k = 0; k < 8; ++k) {
                        v = (v << 1) | (b[i + k] & 1u);
                    }
                    packed[(done + i) >> 3] = static_cast<std::uint8_t>(v);
                }
            }
            for (; i < n; ++i) {
                const std::size_t k = done + i;
                packed[k >> 3] |= static_cast<std::uint8_t>((b[i] & 1) << (7 - (k & 7)));
            }
            out_pos_ += n;
            done += n;
        }
        return done;
    }

    void push_rx_llrs(std::span<const std::int8_t> llrs, double sim_time) override
    {
        advance(sim_time);
        if (!threads_) {
            std::lock_guard lk(rx_mu_);
            decode(llrs);
            return;
        }
        // Copy into free chunks for the RX worker; wait for one when all are queued (backpressure
        // reaches the transport, and through it TCP).
        while (!llrs.empty()) {
            std::uint32_t idx = 0;
            for (;;) {
                const auto mark = rx_free_sig_.mark();
                if (rx_free_->try_pop(idx)) {
                    break;
                }
                if (stop_.load()) {
                    return;
                }
                rx_free_sig_.wait(mark);
            }
            rx_chunk& c = rx_chunks_[idx];
            c.n = std::min(llrs.size(), c.llr.size());
            std::copy_n(llrs.begin(), c.n, c.llr.begin());
            llrs = llrs.subspan(c.n);
            rx_full_->try_push(idx);  // cannot fail: as many slots as chunks
            rx_full_sig_.post();
        }
    }

    link_stats stats() const override
    {
        std::scoped_lock lk(tx_mu_, rx_mu_, mu_);
        link_stats s;
        const auto& tc = tx_->stats();
        s.frames_tx = tc.frames;
        s.idle_frames_tx = tc.idle_frames;
        const auto& rc = rx_->stats();
        const auto& cc = rx_->chain();
        const auto& fc = rx_->frames();
        s.frames_rx_ok = rc.frames_ok;
        s.frames_crc_fail = rc.frames_bad;
        s.rs_corrected = cc.rs_corrected;
        s.ldpc_iterations = cc.ldpc_iterations;
        s.decode_fail = cc.rs_failed_frames + cc.ldpc_failed_frames;
        s.sync_losses = cc.sync.flywheel_to_search;
        s.decoder_restarts = rc.decoder_restarts;
        s.frames_lost = fc.lost_frames;
        s.security_rejected = fc.security_rejected;
        s.rx_channel_errors_est = cc.rs_corrected + cc.ldpc_corrected_bits;  // RS symbols or LDPC bits: one profile has one
        const auto& sc = snd_->counters();
        s.arq_segments_tx = sc.segments_sent;
        s.arq_retransmissions = sc.retransmissions;
        s.arq_in_flight = cfg_.arq_window - snd_->free_segments();
        s.bytes_acked = bytes_acked();
        s.bytes_delivered = rcv_->counters().bytes_delivered;
        s.arq_duplicates = rcv_->counters().duplicates;
        s.arq_srtt_s = std::chrono::duration<double>(snd_->srtt()).count();
        if (const auto* sec = tx_->security()) {
            s.active_key_id = sec->current_key_id();
            s.rotations = sec->counters().rotations;
            s.keys_exhausted = sec->counters().keys_exhausted;
        }
        if (const auto* sec = rx_->security()) {
            s.rx_rotations = sec->counters().rotations;
            s.auth_failures = sec->counters().auth_failures;
            s.replays = sec->counters().replays;
        }
        s.keys_consumed = tx_keys_.taken;
        s.traffic_stopped = tx_held_;
        s.user_bytes_in = user_in_;
        s.user_bytes_out = user_out_;
        s.datagrams_in = dg_in_[0];
        s.datagrams_out = dg_out_[0];
        s.datagrams_dropped = dg_dropped_[0];
        s.ip_packets_in = dg_in_[1];
        s.ip_packets_out = dg_out_[1];
        s.ip_packets_dropped = dg_dropped_[1];
        s.rx_flow_drops = flow_drops_;
        s.bytes_consumed = user_taken_;
        s.resume_trimmed_bytes = rcv_->counters().resume_trimmed_bytes;
        s.resume_gaps = rcv_->counters().resume_gaps;
        s.resume_discarded = rcv_->counters().resume_discarded;
        s.ns_frame_build = tc.frame_build.ns;
        s.ns_protect = tc.protect.ns;
        s.ns_encode = tc.encode.ns;
        s.ns_decode = rc.decode.ns;
        s.ns_verify_parse = rc.frames.ns;
        s.sim_time = now_s_.load();
        return s;
    }

    std::vector<undelivered> finish() override
    {
        stop_workers();
        std::lock_guard lk(mu_);
        finished_ = true;
        std::vector<undelivered> out;
        for (const auto& r : snd_->pass_report()) {
            out.push_back(undelivered{static_cast<std::uint8_t>(r.stream), r.offset, r.length});
        }
        return out;
    }

private:
    void validate() const
    {
        if (cfg_.spacecraft_id > 0xFF) {
            bad("spacecraft_id", "AOS spacecraft IDs have 8 bits (0..255), got " + std::to_string(cfg_.spacecraft_id));
        }
        if (cfg_.tx_vcid >= aos_idle_vcid || cfg_.rx_vcid >= aos_idle_vcid) {
            bad("tx_vcid/rx_vcid", "must be 0..62 (63 is the idle VC)");
        }
        if (cfg_.streams == 0 || cfg_.streams > 8) {
            bad("streams", "must be 1..8");
        }
        if (cfg_.security && (cfg_.spi == 0 || cfg_.spi == 0xFFFF)) {
            bad("spi", "0 and 0xFFFF are reserved");
        }
        if (cfg_.security && cfg_.rotate_every_frames <= cfg_.announce_frames) {
            bad("rotate_every_frames", "must exceed announce_frames (" + std::to_string(cfg_.announce_frames) + ")");
        }
        if (!(cfg_.rotate_every_s >= 0.0)) {
            bad("rotate_every_s", "must be >= 0");
        }
        if (cfg_.key_exhaustion_policy == key_exhaustion_policy::fallback && cfg_.fallback_keys == nullptr) {
            bad("key_exhaustion_policy", "fallback needs fallback_keys");
        }
        if (cfg_.replay_window == 0 || cfg_.replay_window > 64) {
            bad("replay_window", "must be 1..64");
        }
        if (!(cfg_.rto_min_s > 0.0) || !(cfg_.rto_max_s >= cfg_.rto_min_s) || !(cfg_.rto_initial_s > 0.0)) {
            bad("rto_min_s/rto_max_s/rto_initial_s", "need 0 < rto_min_s <= rto_max_s and rto_initial_s > 0");
        }
        if (!(cfg_.ack_interval_s > 0.0)) {
            bad("ack_interval_s", "must be > 0");
        }
        if (cfg_.sack_bits == 0 || cfg_.sack_bits % 8 != 0 || cfg_.sack_bits > 8192) {
            bad("sack_bits", "must be a multiple of 8 in 8..8192");
        }
        if (cfg_.max_datagram_bytes == 0 || cfg_.max_datagram_bytes > cfg_.datagram_queue_bytes) {
            bad("max_datagram_bytes", "must be 1..datagram_queue_bytes");
        }
        if (cfg_.ip_queue_bytes == 0) {
            bad("ip_queue_bytes", "must be at least 1 (packets larger than it are refused)");
        }
        if (cfg_.queue_depth_frames < 2 || cfg_.queue_depth_frames > 4096 ||
            (cfg_.queue_depth_frames & (cfg_.queue_depth_frames - 1)) != 0) {
            bad("queue_depth_frames", "must be a power of two in 2..4096");
        }
        if (cfg_.tx_queue_frames < 2 || cfg_.tx_queue_frames > 4096 || (cfg_.tx_queue_frames & (cfg_.tx_queue_frames - 1)) != 0) {
            bad("tx_queue_frames", "must be a power of two in 2..4096");
        }
        if (cfg_.rx_stream_buffer_bytes == 0) {
            bad("rx_stream_buffer_bytes", "must be > 0");
        }
        for (std::size_t k = cfg_.streams; k < cfg_.resume.size(); ++k) {
            if (cfg_.resume[k]) {
                bad("resume", "stream " + std::to_string(k) + " is beyond streams (" + std::to_string(cfg_.streams) + ")");
            }
        }
    }

    // Simulated time only moves forward, whichever transport thread reports it.
    void advance(double sim_time)
    {
        double cur = now_s_.load();
        while (sim_time > cur && !now_s_.compare_exchange_weak(cur, sim_time)) {
        }
    }
    arq_time now() const { return to_arq_time(now_s_.load()); }

    std::uint64_t bytes_acked() const
    {
        // Accepted minus what the sender still holds unconfirmed.
        std::uint64_t pending = 0;
        for (const auto& r : snd_->pass_report()) {
            pending += r.length;
        }
        return user_in_ - pending;
    }

    // Queues the packets of the next frame on our VC: an ack when one is due, datagrams, then ARQ
    // segments that fit whole in what is left of the zone.
    void fill_frame()
    {
        mpdu_packer* pk = tx_->channel(cfg_.tx_vcid);
        const std::size_t zone = tx_->packet_zone();
        auto room = [&] { return pk->queued_bytes() < zone ? zone - pk->queued_bytes() : 0; };
        const arq_time t = now();
        const std::size_t ack_packet = encap_header_length(ack_.size()) + ack_.size();
        if ((ack_pending_ || rcv_->ack_due(t)) && room() >= ack_packet) {
            const std::size_t n = rcv_->build_ack(t, ack_);
            if (n > 0) {
                pk->push_datagram(std::span(ack_).first(n));
                ack_pending_ = false;
            }
        }
        // The channels take turns, one datagram each, so a flood on one cannot starve the other.
        while (room() > 0 && !(dg_tx_[0].empty() && dg_tx_[1].empty())) {
            auto& q = dg_tx_[dg_turn_];
            if (!q.empty()) {
                const auto d = q.front();
                dg_scratch_[0] = tag_datagram[dg_turn_];
                std::copy(d.begin(), d.end(), dg_scratch_.begin() + 1);
                pk->push_datagram(std::span(dg_scratch_).first(d.size() + 1));
                q.pop();
            }
            dg_turn_ = (dg_turn_ + 1) % link_datagram_channels;
        }
        const std::size_t full_segment = encap_header_length(seg_.size()) + seg_.size();
        while (room() >= full_segment) {
            const auto r = snd_->poll_transmit(t, seg_);
            if (r.bytes == 0) {
                break;
            }
            pk->push_datagram(std::span(seg_).first(r.bytes));
        }
    }

    // Encodes the next frame into `bits`; returns the channel bits (0 on an encoder error).
    std::size_t encode_block(std::span<std::uint8_t> bits)
    {
        std::lock_guard lk(tx_mu_);
        if (!tx_held_) {
            std::lock_guard lk2(mu_);
            fill_frame();
        }
        const auto r = tx_->next_block(bits);
        if (!r.ok) {
            ++tx_errors_;
            return 0;
        }
        tx_held_ = r.status == security_status::keys_exhausted;
        return r.bits;
    }

    // The transport's next block of channel bits: encoded here, or taken from the TX worker.
    bool next_out_block()
    {
        out_pos_ = out_len_ = 0;
        if (!threads_) {
            out_bits_ = bits_.data();
            out_len_ = encode_block(bits_);
            return out_len_ > 0;
        }
        if (out_idx_ >= 0) {
            tx_free_->try_push(static_cast<std::uint32_t>(out_idx_));
            tx_free_sig_.post();
            out_idx_ = -1;
        }
        std::uint32_t idx = 0;
        for (;;) {
            const auto mark = tx_full_sig_.mark();
            if (tx_full_->try_pop(idx)) {
                break;
            }
            if (stop_.load()) {
                return false;
            }
            tx_full_sig_.wait(mark);
        }
        out_idx_ = static_cast<int>(idx);
        out_bits_ = tx_blocks_[idx].bits.data();
        out_len_ = tx_blocks_[idx].n;
        return out_len_ > 0;
    }

    void tx_worker()
    {
        for (;;) {
            std::uint32_t idx = 0;
            for (;;) {
                const auto mark = tx_free_sig_.mark();
                if (stop_.load()) {
                    return;
                }
                if (tx_free_->try_pop(idx)) {
                    break;
                }
                tx_free_sig_.wait(mark);
            }
            tx_block& b = tx_blocks_[idx];
            b.n = encode_block(b.bits);
            tx_full_->try_push(idx);
            tx_full_sig_.post();
        }
    }

    void decode(std::span<const std::int8_t> llrs)
    {
        const auto r = rx_->push(llrs);
        if (!r.ok) {
            ++rx_errors_;
        }
    }

    void rx_worker()
    {
        for (;;) {
            std::uint32_t idx = 0;
            for (;;) {
                const auto mark = rx_full_sig_.mark();
                // Drain what the transport queued before stopping.
                if (rx_full_->try_pop(idx)) {
                    break;
                }
                if (stop_.load()) {
                    return;
                }
                rx_full_sig_.wait(mark);
            }
            {
                std::lock_guard lk(rx_mu_);
                decode(std::span<const std::int8_t>(rx_chunks_[idx].llr).first(rx_chunks_[idx].n));
            }
            rx_free_->try_push(idx);
            rx_free_sig_.post();
        }
    }

    void start_workers()
    {
        for (std::uint32_t i = 0; i < tx_blocks_.size(); ++i) {
            tx_free_->try_push(i);
        }
        for (std::uint32_t i = 0; i < rx_chunks_.size(); ++i) {
            rx_free_->try_push(i);
        }
        tx_thread_ = std::thread([this] { tx_worker(); });
        rx_thread_ = std::thread([this] { rx_worker(); });
    }

    void stop_workers()
    {
        if (!threads_ || stop_.exchange(true)) {
            return;
        }
        for (signal* sig : {&tx_free_sig_, &tx_full_sig_, &rx_free_sig_, &rx_full_sig_}) {
            sig->post();
        }
        tx_thread_.join();
        rx_thread_.join();
    }

    void on_packet(std::span<const std::uint8_t> packet)
    {
        const packet_shape s = inspect_packet(packet);
        if (!s.valid || !s.encapsulation || s.idle || s.header_length >= packet.size()) {
            std::lock_guard lk(mu_);
            ++unknown_packets_;
            return;
        }
        const auto body = packet.subspan(s.header_length);
        const arq_time t = now();
        std::lock_guard lk(mu_);
        switch (body[0]) {
        case arq_type_data: {
            if (rx_blocked()) {
                ++flow_drops_;  // the user is not reading: let ARQ resend it later
                return;
            }
            if (rcv_->on_frame(t, body).ack_now) {
                ack_pending_ = true;
            }
            break;
        }
        case arq_type_ack:
            snd_->on_ack(t, body);
            break;
        case tag_datagram[0]:
        case tag_datagram[1]: {
            const std::size_t c = body[0] == tag_datagram[0] ? 0 : 1;
            if (!dg_rx_[c].push(body.subspan(1))) {
                ++dg_dropped_[c];
            }
            break;
        }
        default:
            ++unknown_packets_;
        }
    }

    bool rx_blocked() const
    {
        for (const auto& f : rx_streams_) {
            if (f.size() >= cfg_.rx_stream_buffer_bytes) {
                return true;
            }
        }
        return false;
    }

    void deliver(std::uint16_t stream, std::uint64_t offset, std::span<const std::uint8_t> data) override
    {
        rx_streams_[stream].append(data);
        // Where these bytes sit in the sender's numbering, for position_after(): one run per
        // stretch of contiguous offsets of one sender session (a new run only after a sender
        // restart or a resync past a gap).
        auto& rs = runs_[stream];
        const std::uint32_t session = rcv_->sender_session();
        if (!rs.empty() && rs.back().session == session && rs.back().offset + rs.back().bytes == offset) {
            rs.back().bytes += data.size();
        } else {
            rs.push_back(run{session, offset, data.size()});
        }
    }

    // The user took `n` more bytes of `stream`: its position moves over them.
    void take(std::uint8_t stream, std::uint64_t n)
    {
        auto& rs = runs_[stream];
        user_taken_ += n;
        while (n > 0 && !rs.empty()) {
            run& r = rs.front();
            const std::uint64_t k = std::min(n, r.bytes);
            pos_[stream] = {r.session, r.offset + k};
            r.offset += k;
            r.bytes -= k;
            n -= k;
            if (r.bytes == 0 && rs.size() > 1) {
                rs.pop_front();  // the last run stays (empty) for the next delivery to extend
            }
        }
    }

    // Contiguous delivered bytes of one sender session not yet taken by the user.
    struct run {
        std::uint32_t session = 0;
        std::uint64_t offset = 0;
        std::uint64_t bytes = 0;
    };
    struct tx_block {
        std::vector<std::uint8_t> bits;
        std::size_t n = 0;
    };
    struct rx_chunk {
        std::vector<std::int8_t> llr;
        std::size_t n = 0;
    };

    link_engine_config cfg_;
    // Lock order: tx_mu_ or rx_mu_ before mu_. tx_mu_ guards the TX pipeline, rx_mu_ the RX
    // pipeline (each held by its worker while it works on a block), mu_ the ARQ state and the
    // user-side queues (held briefly per frame/packet and per user call).
    mutable std::mutex tx_mu_, rx_mu_, mu_;
    counting_key_source tx_keys_;
    std::unique_ptr<tx_link_pipeline> tx_;
    std::unique_ptr<rx_link_pipeline> rx_;
    std::unique_ptr<arq_sender> snd_;
    std::unique_ptr<arq_receiver> rcv_;
    std::vector<std::uint8_t> bits_;  // inline mode's block
    // transport side of pull_tx_bits: the block being handed out
    const std::uint8_t* out_bits_ = nullptr;
    std::size_t out_pos_ = 0, out_len_ = 0;
    int out_idx_ = -1;
    // worker mode
    bool threads_ = false;
    std::vector<tx_block> tx_blocks_;
    std::vector<rx_chunk> rx_chunks_;
    std::unique_ptr<spsc_queue<std::uint32_t>> tx_full_, tx_free_, rx_full_, rx_free_;
    signal tx_full_sig_, tx_free_sig_, rx_full_sig_, rx_free_sig_;
    std::atomic<bool> stop_{false};
    std::thread tx_thread_, rx_thread_;
    std::vector<std::uint8_t> seg_, ack_, dg_scratch_;
    std::array<datagram_fifo, link_datagram_channels> dg_tx_, dg_rx_;
    std::size_t dg_turn_ = 0;  // channel whose datagram fill_frame takes next
    std::vector<byte_fifo> rx_streams_;
    std::vector<std::deque<run>> runs_;     // per stream, from the user's position on
    std::vector<stream_position> pos_;      // per stream: the user's position (resume point at start)
    std::vector<std::uint64_t> handed_;     // per stream: handed out by receive(), not yet consumed()
    std::uint64_t user_taken_ = 0, consume_misuse_ = 0;
    std::atomic<double> now_s_{0.0};
    bool ack_pending_ = false;
    bool tx_held_ = false;
    bool finished_ = false;
    std::uint64_t user_in_ = 0, user_out_ = 0, dg_in_[link_datagram_channels] = {}, dg_out_[link_datagram_channels] = {},
                  dg_dropped_[link_datagram_channels] = {};
    std::uint64_t flow_drops_ = 0, unknown_packets_ = 0, rx_errors_ = 0, tx_errors_ = 0;
};

}  // namespace

std::unique_ptr<link_engine> link_engine::create(const link_engine_config& cfg, modem::link_key_source& tx_keys,
                                                 modem::link_key_source& rx_keys)
{
    return std::make_unique<link_engine_impl>(cfg, tx_keys, rx_keys);
}

}  // namespace qlink::terminal
