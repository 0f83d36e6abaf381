// TX/RX link pipelines: composition of AOS framing, SDLS and the coding chain, with per-stage counters.
#include "qlink/modem/link_pipeline.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace qlink::modem {

namespace {

// Adds the elapsed time of a scope to a stage, when a clock was injected.
class stage_timer {
public:
    stage_timer(const link_clock_ns& clock, link_stage_time& t) : clock_(clock), t_(t), start_(clock ? clock() : 0) {}
    ~stage_timer()
    {
        if (clock_) {
            t_.ns += clock_() - start_;
        }
        ++t_.calls;
    }
    stage_timer(const stage_timer&) = delete;
    stage_timer& operator=(const stage_timer&) = delete;

private:
    const link_clock_ns& clock_;
    link_stage_time& t_;
    std::uint64_t start_;
};

void check_profile(const chain_profile& p, const char* who)
{
    if (auto err = validate_profile(p); !err.empty()) {
        throw std::invalid_argument(std::string(who) + ": " + err);
    }
}

// Times the security stage on its own although aos_transmitter/aos_receiver call it from inside.
class timed_protector final : public frame_protector {
public:
    timed_protector(frame_protector& inner, const link_clock_ns& clock, link_stage_time& t)
        : inner_(inner), clock_(clock), t_(t)
    {
    }
    security_status protect(std::span<std::uint8_t> frame) override
    {
        stage_timer st(clock_, t_);
        return inner_.protect(frame);
    }

private:
    frame_protector& inner_;
    const link_clock_ns& clock_;
    link_stage_time& t_;
};

class timed_verifier final : public frame_verifier {
public:
    timed_verifier(frame_verifier& inner, const link_clock_ns& clock, link_stage_time& t)
        : inner_(inner), clock_(clock), t_(t)
    {
    }
    security_status verify(std::span<std::uint8_t> frame) override
    {
        stage_timer st(clock_, t_);
        return inner_.verify(frame);
    }

private:
    frame_verifier& inner_;
    const link_clock_ns& clock_;
    link_stage_time& t_;
};

}  // namespace

aos_layout link_frame_layout(const chain_profile& profile, bool security)
{
    aos_layout l;
    // The chain appends and checks the CRC-16 over the frame: that is the AOS FECF.
    l.frame_length = frame_bytes(profile);
    l.fecf = false;
    if (profile.fecf) {
        l.frame_length -= aos_fecf_length;
    }
    return security ? sdls_layout(l) : l;
}

// ------------------------------------------------------------------------------------------- TX

struct tx_link_pipeline::impl {
    config cfg;
    aos_layout layout;
    counters c{};
    std::unique_ptr<sdls_transmitter> sdls;
    std::unique_ptr<timed_protector> timed;
    std::unique_ptr<aos_transmitter> frames;
    chain_encoder encoder;
    std::vector<std::uint8_t> frame;

    impl(const config& c_in, link_key_source* keys)
        : cfg(c_in), layout(link_frame_layout(c_in.profile, c_in.security)), encoder(checked(c_in.profile), c_in.isa),
          frame(layout.frame_length)
    {
        if (layout.data_field_length() == 0) {
            throw std::invalid_argument("tx_link_pipeline: profile " + cfg.profile.name +
                                        " leaves no room for a data field");
        }
        if (cfg.security) {
            if (keys == nullptr) {
                throw std::invalid_argument("tx_link_pipeline: security enabled but no key source");
            }
            sdls_transmitter::config sc = cfg.sdls;
            sc.layout = layout;
            sdls = std::make_unique<sdls_transmitter>(sc, *keys);
            timed = std::make_unique<timed_protector>(*sdls, cfg.clock_ns, c.protect);
        }
        aos_transmitter::config ac;
        ac.layout = layout;
        ac.spacecraft_id = cfg.spacecraft_id;
        ac.channels = cfg.channels;
        ac.send_idle_frames = true;
        frames = std::make_unique<aos_transmitter>(ac, timed.get());
    }

    static const chain_profile& checked(const chain_profile& p)
    {
        check_profile(p, "tx_link_pipeline");
        return p;
    }
};

tx_link_pipeline::tx_link_pipeline(const config& cfg, link_key_source* keys) : p_(std::make_unique<impl>(cfg, keys)) {}
tx_link_pipeline::~tx_link_pipeline() = default;

const aos_layout& tx_link_pipeline::layout() const { return p_->layout; }
std::size_t tx_link_pipeline::packet_zone() const { return p_->layout.data_field_length() - mpdu_header_length; }
std::size_t tx_link_pipeline::max_block_bits() const { return p_->encoder.max_frame_bits(); }
std::size_t tx_link_pipeline::max_finish_bits() const { return p_->encoder.max_finish_bits(); }
mpdu_packer* tx_link_pipeline::channel(std::uint8_t vcid) { return p_->frames->channel(vcid); }
const tx_link_pipeline::counters& tx_link_pipeline::stats() const { return p_->c; }
const sdls_transmitter* tx_link_pipeline::security() const { return p_->sdls.get(); }

tx_link_pipeline::result tx_link_pipeline::next_block(std::span<std::uint8_t> channel_bits)
{
    impl& s = *p_;
    result r;
    if (channel_bits.size() < s.encoder.max_frame_bits()) {
        r.ok = false;
        r.error = "tx_link_pipeline: output shorter than max_block_bits()";
        return r;
    }
    aos_transmitter::result fr;
    const std::uint64_t protect_before = s.c.protect.ns;
    {
        stage_timer st(s.cfg.clock_ns, s.c.frame_build);
        fr = s.frames->next_frame(s.frame);
        if (!fr.sent) {
            // A frame waits for a key (stop policy) or was refused: the channel still needs a frame.
            if (fr.status == security_status::keys_exhausted) {
                ++s.c.held_frames;
            }
            r.status = fr.status;
            fr = s.frames->idle_frame(s.frame);
        }
    }
    // frame_build includes the protect call made from inside next_frame; count it once.
    const std::uint64_t protect_ns = s.c.protect.ns - protect_before;
    s.c.frame_build.ns -= std::min(s.c.frame_build.ns, protect_ns);
    r.idle = fr.idle;
    chain_encoder::result er;
    {
        stage_timer st(s.cfg.clock_ns, s.c.encode);
        er = s.encoder.encode(std::span<const std::uint8_t>(s.frame), channel_bits);
    }
    if (!er.ok) {
        r.ok = false;
        r.error = er.error;
        return r;
    }
    r.bits = er.bits;
    ++s.c.frames;
    s.c.idle_frames += fr.idle ? 1 : 0;
    s.c.bits += er.bits;
    return r;
}

tx_link_pipeline::result tx_link_pipeline::finish(std::span<std::uint8_t> channel_bits)
{
    impl& s = *p_;
    result r;
    const auto er = s.encoder.finish(channel_bits);
    r.ok = er.ok;
    r.error = er.error;
    r.bits = er.bits;
    s.c.bits += er.bits;
    return r;
}

// ------------------------------------------------------------------------------------------- RX

struct rx_link_pipeline::impl {
    config cfg;
    aos_layout layout;
    counters c{};
    std::unique_ptr<sdls_receiver> sdls;
    std::unique_ptr<timed_verifier> timed;
    std::unique_ptr<aos_receiver> frames;
    std::unique_ptr<chain_decoder> decoder;
    std::vector<std::uint8_t> data;
    std::vector<chain_frame_report> reports;

    impl(const config& c_in, link_key_source* keys, aos_receiver::sink on_packet)
        : cfg(c_in), layout(link_frame_layout(c_in.profile, c_in.security))
    {
        check_profile(cfg.profile, "rx_link_pipeline");
        if (layout.data_field_length() == 0) {
            throw std::invalid_argument("rx_link_pipeline: profile " + cfg.profile.name +
                                        " leaves no room for a data field");
        }
        if (cfg.security) {
            if (keys == nullptr) {
                throw std::invalid_argument("rx_link_pipeline: security enabled but no key source");
            }
            sdls_receiver::config sc = cfg.sdls;
            sc.layout = layout;
            sdls = std::make_unique<sdls_receiver>(sc, *keys);
            timed = std::make_unique<timed_verifier>(*sdls, cfg.clock_ns, c.verify);
        }
        aos_receiver::config ac;
        ac.layout = layout;
        ac.spacecraft_id = cfg.spacecraft_id;
        ac.vcids = cfg.vcids;
        ac.max_packet_length = cfg.max_packet_length;
        frames = std::make_unique<aos_receiver>(ac, std::move(on_packet), timed.get());
        chain_decoder::config dc;
        dc.profile = cfg.profile;
        dc.isa = cfg.isa;
        dc.viterbi_traceback = cfg.viterbi_traceback;
        dc.search_tolerance = cfg.search_tolerance;
        dc.lock_tolerance = cfg.lock_tolerance;
        dc.flywheel_count = cfg.flywheel_count;
        decoder = std::make_unique<chain_decoder>(dc);
        data.resize(decoder->frames_per_push() * decoder->data_bytes());
        reports.resize(decoder->frames_per_push());
    }

    void deliver(const chain_decoder::result& dr, result& r)
    {
        const std::size_t db = decoder->data_bytes();
        for (std::size_t f = 0; f < dr.frames; ++f) {
            if (!reports[f].ok) {
                ++c.frames_bad;
                continue;
            }
            ++c.frames_ok;
            ++r.frames_ok;
            stage_timer st(cfg.clock_ns, c.frames);
            frames->on_frame(std::span<std::uint8_t>(data).subspan(f * db, db));
        }
        r.frames += dr.frames;
    }
};

rx_link_pipeline::rx_link_pipeline(const config& cfg, link_key_source* keys, aos_receiver::sink on_packet)
    : p_(std::make_unique<impl>(cfg, keys, std::move(on_packet)))
{
}
rx_link_pipeline::~rx_link_pipeline() = default;

const aos_layout& rx_link_pipeline::layout() const { return p_->layout; }
const rx_link_pipeline::counters& rx_link_pipeline::stats() const { return p_->c; }
const chain_decoder_counters& rx_link_pipeline::chain() const { return p_->decoder->counters(); }
const aos_rx_counters& rx_link_pipeline::frames() const { return p_->frames->counters(); }
const sdls_receiver* rx_link_pipeline::security() const { return p_->sdls.get(); }

rx_link_pipeline::result rx_link_pipeline::push(std::span<const llr_t> soft)
{
    impl& s = *p_;
    result r;
    while (r.consumed < soft.size()) {
        chain_decoder::result dr;
        {
            stage_timer st(s.cfg.clock_ns, s.c.decode);
            dr = s.decoder->push(soft.subspan(r.consumed), s.data, s.reports);
        }
        r.consumed += dr.consumed;
        s.deliver(dr, r);
        s.c.decoder_restarts = s.decoder->counters().realignments;
        if (!dr.ok) {
            r.ok = false;
            r.error = dr.error;
            break;
        }
        if (dr.consumed == 0 && dr.frames == 0) {
            // Cannot happen with the buffers sized by frames_per_push(); never spin.
            r.ok = false;
            r.error = "rx_link_pipeline: chain decoder made no progress";
            break;
        }
    }
    return r;
}

rx_link_pipeline::result rx_link_pipeline::finish()
{
    impl& s = *p_;
    result r;
    chain_decoder::result dr;
    {
        stage_timer st(s.cfg.clock_ns, s.c.decode);
        dr = s.decoder->finish(s.data, s.reports);
    }
    s.deliver(dr, r);
    s.c.decoder_restarts = s.decoder->counters().realignments;
    r.ok = dr.ok;
    r.error = dr.error;
    return r;
}

void rx_link_pipeline::on_frame(std::span<std::uint8_t> frame)
{
    impl& s = *p_;
    stage_timer st(s.cfg.clock_ns, s.c.frames);
    s.frames->on_frame(frame);
}

}  // namespace qlink::modem
