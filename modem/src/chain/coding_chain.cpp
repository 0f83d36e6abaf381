// The TM coding chain: frame -> CRC -> RS or LDPC -> randomizer -> ASM -> conv -> interleaver, and back on soft bits.
#include "qlink/modem/coding_chain.hpp"

#include "qlink/modem/conv.hpp"
#include "qlink/modem/crc.hpp"
#include "qlink/modem/ldpc.hpp"
#include "qlink/modem/randomizer.hpp"
#include "qlink/modem/reed_solomon.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace qlink::modem {

namespace {

void check_profile(const chain_profile& p) {
    if (auto err = validate_profile(p); !err.empty()) throw std::invalid_argument(err);
}

std::unique_ptr<rs_codec> make_rs(const chain_profile& p, const std::string& isa) {
    rs_config c;
    c.e = p.rs_e;
    c.interleave = p.rs_interleave;
    c.basis = p.basis;
    c.virtual_fill = p.virtual_fill;
    c.isa = isa;
    return create_rs_codec(c);
}

// Codeblock LLRs scaled so the mean magnitude is about `target` (Q8 factor,
// rounded half away from zero, saturated at +-127). Zero mean (all
// erasures) is left alone.
void normalise_llr(std::span<llr_t> v, unsigned target) {
    if (target == 0 || v.empty()) return;
    std::uint64_t sum = 0;
    for (llr_t x : v) sum += static_cast<unsigned>(x < 0 ? -static_cast<int>(x) : x);
    if (sum == 0) return;
    const std::uint64_t q64 = (std::uint64_t{target} * 256 * v.size() + sum / 2) / sum;
    const int q = static_cast<int>(std::min<std::uint64_t>(q64, 256 * 127));
    if (q == 256) return;
    for (llr_t& x : v) {
        const int a = std::max(static_cast<int>(x), -127) * q;
        const int r = a >= 0 ? (a + 128) >> 8 : -((-a + 128) >> 8);
        x = static_cast<llr_t>(std::clamp(r, -127, 127));
    }
}

// Soft symbols are consumed in slices of this many, so every scratch buffer
// has a fixed size and push() allocates nothing.
constexpr std::size_t chunk_symbols = 4096;

}  // namespace

// ---------------------------------------------------------------- encoder

struct chain_encoder::impl {
    chain_profile prof;
    std::unique_ptr<rs_codec> rs;
    std::unique_ptr<ldpc_encoder> ldpc;
    conv_encoder conv;
    std::unique_ptr<channel_interleaver> il;
    std::vector<std::uint8_t> frame;
    std::vector<std::uint8_t> period;  // marker bytes + codeblock, packed

    impl(const chain_profile& p, const std::string& isa)
        : prof(p), rs(p.ldpc ? nullptr : make_rs(p, isa)),
          ldpc(p.ldpc ? std::make_unique<ldpc_encoder>(*p.ldpc) : nullptr), conv(p.conv),
          il(create_interleaver(p.interleaver)),
          frame(frame_bytes(p)), period(p.marker.bits / 8 + codeblock_bytes(p)) {
        for (unsigned k = 0; k < p.marker.bits / 8; ++k)
            period[k] = static_cast<std::uint8_t>(p.marker.pattern >> (p.marker.bits - 8 * (k + 1)));
    }
};

chain_encoder::chain_encoder(const chain_profile& profile, std::string isa) {
    check_profile(profile);
    p_ = std::make_unique<impl>(profile, isa);
}
chain_encoder::~chain_encoder() = default;

std::size_t chain_encoder::data_bytes() const { return frame_data_bytes(p_->prof); }
std::size_t chain_encoder::max_frame_bits() const {
    const std::size_t bits = sync_period_bits(p_->prof);
    return p_->prof.inner_conv ? 2 * bits : bits;
}
std::size_t chain_encoder::max_finish_bits() const {
    return 2 * conv_tail_bits + interleaver_pair_delay(p_->prof.interleaver);
}
const chain_profile& chain_encoder::profile() const { return p_->prof; }

chain_encoder::result chain_encoder::encode(std::span<const std::uint8_t> data, std::span<std::uint8_t> out) {
    impl& s = *p_;
    if (data.size() != data_bytes()) return {0, false, "chain encoder: data must be exactly one frame's data bytes"};
    if (out.size() < max_frame_bits()) return {0, false, "chain encoder: output shorter than max_frame_bits()"};
    std::copy(data.begin(), data.end(), s.frame.begin());
    if (s.prof.fecf) {
        const std::uint16_t crc = crc16_ccsds(data);
        s.frame[data.size()] = static_cast<std::uint8_t>(crc >> 8);
        s.frame[data.size() + 1] = static_cast<std::uint8_t>(crc);
    }
    const std::size_t mbytes = s.prof.marker.bits / 8;
    const auto cb = std::span(s.period).subspan(mbytes);
    if (s.ldpc) {
        if (s.ldpc->encode(s.frame, cb).status != ldpc_status::ok) return {0, false, "chain encoder: LDPC encode failed"};
    } else if (!s.rs->encode(s.frame, cb)) {
        return {0, false, "chain encoder: RS encode failed"};
    }
    if (s.prof.randomizer) ccsds_randomize(cb);
    const std::size_t period_bits = 8 * s.period.size();
    std::size_t n = 0;
    if (s.prof.inner_conv) {
        n = s.conv.encode(s.period, period_bits, out);
        if (n == 0) return {0, false, "chain encoder: convolutional encode failed"};
    } else {
        unpack_bits(s.period, out.first(period_bits));
        n = period_bits;
    }
    s.il->process(std::span<const std::uint8_t>(out.first(n)), out.first(n));
    return {n, true, nullptr};
}

chain_encoder::result chain_encoder::finish(std::span<std::uint8_t> out) {
    impl& s = *p_;
    if (out.size() < max_finish_bits()) return {0, false, "chain encoder: output shorter than max_finish_bits()"};
    std::size_t n = 0;
    if (s.prof.inner_conv) n = s.conv.flush_tail(out);
    const std::size_t delay = interleaver_pair_delay(s.prof.interleaver);
    std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(n), delay, std::uint8_t{0});
    n += delay;
    s.il->process(std::span<const std::uint8_t>(out.first(n)), out.first(n));
    return {n, true, nullptr};
}

// ---------------------------------------------------------------- decoder

struct chain_decoder::impl {
    config cfg;
    const chain_profile& prof;
    std::unique_ptr<channel_interleaver> deil;
    std::size_t deil_skip;
    std::unique_ptr<viterbi_decoder> vit;
    std::unique_ptr<frame_synchronizer> sync;
    std::unique_ptr<rs_codec> rs;
    std::unique_ptr<ldpc_decoder> ldpc;
    std::vector<llr_t> ldpc_llr;
    std::size_t sync_capacity;
    std::size_t branch_sync_bits;
    std::vector<llr_t> soft_buf;
    std::vector<std::uint8_t> vit_bytes;
    std::vector<llr_t> bit_llr;
    std::vector<llr_t> frames_llr;
    std::vector<sync_frame_info> infos;
    std::vector<std::uint8_t> cb;
    std::size_t bits_since_lock = 0;
    std::size_t pending_drop = 0;
    chain_decoder_counters counters{};

    explicit impl(const config& c) : cfg(c), prof(cfg.profile) {
        check_profile(prof);
        deil = create_deinterleaver(prof.interleaver);
        deil_skip = interleaver_pair_delay(prof.interleaver);
        std::size_t max_bits = chunk_symbols;
        if (prof.inner_conv) {
            viterbi_decoder::config vc;
            vc.code = prof.conv;
            vc.mode = viterbi_mode::streaming;
            vc.traceback = cfg.viterbi_traceback;
            vc.isa = cfg.isa;
            vit = create_viterbi_decoder(vc);
            const std::size_t bytes = std::max(vit->max_stream_output_bytes(chunk_symbols), vit->max_flush_bytes());
            vit_bytes.resize(bytes);
            max_bits = 8 * bytes;
            bit_llr.resize(max_bits);
        }
        frame_synchronizer::config sc;
        sc.marker = prof.marker;
        sc.frame_bits = 8 * codeblock_bytes(prof);
        sc.search_tolerance = prof.ldpc ? cfg.ldpc_search_tolerance : cfg.search_tolerance;
        sc.lock_tolerance = prof.ldpc ? cfg.ldpc_lock_tolerance : cfg.lock_tolerance;
        sc.flywheel_count = cfg.flywheel_count;
        sc.isa = cfg.isa;
        sync = std::make_unique<frame_synchronizer>(sc);
        if (prof.ldpc) {
            ldpc_decoder::config lc;
            lc.code = *prof.ldpc;
            lc.max_iterations = cfg.ldpc_max_iterations;
            lc.early_termination = true;
            lc.isa = cfg.isa;
            ldpc = create_ldpc_decoder(lc);
            ldpc_llr.resize(ldpc->code().n());
        } else {
            rs = make_rs(prof, cfg.isa);
        }
        // One slice of decoded bits completes at most this many frames.
        sync_capacity = max_bits / sync_period_bits(prof) + 2;
        branch_sync_bits = cfg.branch_sync_bits ? cfg.branch_sync_bits
                                                : sync_period_bits(prof) + sync_period_bits(prof) / 4;
        soft_buf.resize(chunk_symbols);
        frames_llr.resize(sync_capacity * sc.frame_bits);
        infos.resize(sync_capacity);
        cb.resize(codeblock_bytes(prof));
    }

    void check_fecf(chain_frame_report& rep) const {
        const std::size_t fb = frame_bytes(prof);
        if (prof.fecf) {
            const std::uint16_t crc = crc16_ccsds(std::span<const std::uint8_t>(cb).first(fb - 2));
            rep.crc_ok = cb[fb - 2] == (crc >> 8) && cb[fb - 1] == (crc & 0xff);
        } else {
            rep.crc_ok = true;
        }
    }

    void process_ldpc_frame(std::span<const llr_t> frame_soft, const sync_frame_info& info,
                            std::span<std::uint8_t> out, chain_frame_report& rep) {
        const ldpc_code& code = ldpc->code();
        std::copy(frame_soft.begin(), frame_soft.end(), ldpc_llr.begin());
        if (prof.randomizer) ccsds_randomize_llr(ldpc_llr);
        // The tail zeros (C2) carry nothing the decoder reads; keep them out of the scale.
        normalise_llr(std::span(ldpc_llr).first(code.n() - code.tail_zero_bits()), cfg.ldpc_llr_target);
        const auto info_bytes = std::span(cb).first(code.k() / 8);
        const ldpc_decode_result lr = ldpc->decode(ldpc_llr, info_bytes);
        rep = {};
        rep.sync = info;
        rep.ldpc_ok = lr.status == ldpc_status::ok && lr.success;
        rep.ldpc_iterations = lr.iterations;
        if (rep.ldpc_ok) {
            // Transmitted bit i is mother bit fill + i (fill first, punctured last).
            const auto app = ldpc->app();
            const std::size_t fill = code.fill_bits();
            unsigned flips = 0;
            for (std::size_t i = 0; i + code.tail_zero_bits() < code.n(); ++i)
                flips += (app[fill + i] < 0) != (ldpc_llr[i] < 0);
            rep.ldpc_corrected_bits = flips;
        }
        check_fecf(rep);
        rep.ok = rep.ldpc_ok && rep.crc_ok;
        std::memcpy(out.data(), cb.data(), out.size());
        ++counters.frames;
        counters.ldpc_iterations += lr.iterations;
        counters.ldpc_corrected_bits += rep.ldpc_corrected_bits;
        if (!rep.ldpc_ok) ++counters.ldpc_failed_frames;
        if (rep.ldpc_ok && !rep.crc_ok) ++counters.crc_failed;
        if (rep.ok) ++counters.frames_ok;
    }

    void process_frame(std::span<const llr_t> frame_soft, const sync_frame_info& info, std::span<std::uint8_t> out,
                       chain_frame_report& rep) {
        if (ldpc) {
            process_ldpc_frame(frame_soft, info, out, rep);
            return;
        }
        pack_hard_decisions(frame_soft, cb);
        if (prof.randomizer) ccsds_randomize(cb);
        const rs_decode_result rr = rs->decode(cb);
        rep = {};
        rep.sync = info;
        rep.rs_ok = rr.ok;
        rep.rs_corrected = rr.corrected;
        rep.rs_failed_codewords = rr.failed_codewords;
        check_fecf(rep);
        rep.ok = rep.rs_ok && rep.crc_ok;
        std::memcpy(out.data(), cb.data(), out.size());
        ++counters.frames;
        counters.rs_corrected += rr.corrected;
        counters.rs_failed_codewords += rr.failed_codewords;
        if (!rr.ok) ++counters.rs_failed_frames;
        if (rr.ok && !rep.crc_ok) ++counters.crc_failed;
        if (rep.ok) ++counters.frames_ok;
    }

    // Frame sync over decoded soft bits; frames go straight to the caller.
    void feed_sync(std::span<const llr_t> bits, std::span<std::uint8_t> out, std::span<chain_frame_report> reports,
                   result& r) {
        const std::size_t db = frame_data_bytes(prof);
        const std::size_t fbits = 8 * codeblock_bytes(prof);
        std::size_t pos = 0;
        for (int guard = 0; guard < 64; ++guard) {
            const auto sr = sync->push(bits.subspan(pos), frames_llr, infos);
            for (std::size_t f = 0; f < sr.frames; ++f) {
                const auto soft = std::span<const llr_t>(frames_llr).subspan(f * fbits, fbits);
                // push() only runs while the caller has room for sync_capacity frames.
                process_frame(soft, infos[f], out.subspan(r.frames * db, db), reports[r.frames]);
                ++r.frames;
            }
            pos += sr.consumed;
            if (pos >= bits.size() || (sr.consumed == 0 && sr.frames == 0)) break;
        }
        counters.decoded_bits += bits.size();
        if (!prof.inner_conv) return;
        // Branch sync: a stretch longer than a sync period without a marker
        // where one was due (SEARCH, or FLYWHEEL after a slip) means the symbol
        // pairs (or the puncturing phase) are misaligned; drop one symbol and
        // retry. One alignment is tried at a time, so each wrong one costs
        // about 1.25 sync periods.
        if (sync->state() == sync_state::check || sync->state() == sync_state::lock) {
            bits_since_lock = 0;
        } else if ((bits_since_lock += bits.size()) > branch_sync_bits) {
            bits_since_lock = 0;
            pending_drop = 1;
            vit->reset();
            ++counters.realignments;
        }
    }

    void decode_slice(std::span<const llr_t> soft, std::span<std::uint8_t> out, std::span<chain_frame_report> reports,
                      result& r) {
        if (!prof.inner_conv) {
            feed_sync(soft, out, reports, r);
            return;
        }
        const std::size_t drop = std::min(pending_drop, soft.size());
        pending_drop -= drop;
        soft = soft.subspan(drop);
        if (soft.empty()) return;
        const auto vr = vit->decode(soft, vit_bytes);
        if (!vr.ok) {
            r.ok = false;
            r.error = vr.error;
            return;
        }
        unpack_to_llr(vit_bytes, std::span(bit_llr).first(vr.bits_out));
        feed_sync(std::span<const llr_t>(bit_llr).first(vr.bits_out), out, reports, r);
    }
};

chain_decoder::chain_decoder(const config& cfg) : p_(std::make_unique<impl>(cfg)) {}
chain_decoder::~chain_decoder() = default;

std::size_t chain_decoder::data_bytes() const { return frame_data_bytes(p_->prof); }
std::size_t chain_decoder::frames_per_push() const { return p_->sync_capacity; }
const chain_decoder_counters& chain_decoder::counters() const {
    p_->counters.sync = p_->sync->counters();
    return p_->counters;
}
const chain_decoder::config& chain_decoder::cfg() const { return p_->cfg; }

chain_decoder::result chain_decoder::push(std::span<const llr_t> soft, std::span<std::uint8_t> data_out,
                                          std::span<chain_frame_report> reports) {
    impl& s = *p_;
    result r;
    const std::size_t capacity = std::min(data_out.size() / data_bytes(), reports.size());
    while (r.consumed < soft.size()) {
        if (capacity - r.frames < s.sync_capacity) {
            r.output_full = true;
            break;
        }
        // Small slices while unlocked, so branch sync reacts at a fine grain.
        const std::size_t slice_max =
            s.sync->state() == sync_state::lock || !s.prof.inner_conv ? chunk_symbols : chunk_symbols / 4;
        const std::size_t n = std::min(slice_max, soft.size() - r.consumed);
        const auto slice = std::span(s.soft_buf).first(n);
        s.deil->process(soft.subspan(r.consumed, n), slice);
        const std::size_t skip = std::min(s.deil_skip, n);
        s.deil_skip -= skip;
        r.consumed += n;
        s.counters.channel_symbols += n;
        s.decode_slice(slice.subspan(skip), data_out, reports, r);
        if (!r.ok) break;
    }
    return r;
}

chain_decoder::result chain_decoder::finish(std::span<std::uint8_t> data_out, std::span<chain_frame_report> reports) {
    impl& s = *p_;
    result r;
    const std::size_t capacity = std::min(data_out.size() / data_bytes(), reports.size());
    if (capacity < s.sync_capacity) {
        r.output_full = true;
        return r;
    }
    if (!s.prof.inner_conv) return r;
    const auto vr = s.vit->flush(s.vit_bytes);
    if (!vr.ok) {
        r.ok = false;
        r.error = vr.error;
        return r;
    }
    unpack_to_llr(s.vit_bytes, std::span(s.bit_llr).first(vr.bits_out));
    s.feed_sync(std::span<const llr_t>(s.bit_llr).first(vr.bits_out), data_out, reports, r);
    return r;
}

}  // namespace qlink::modem
