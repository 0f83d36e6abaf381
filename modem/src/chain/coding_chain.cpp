// The TM coding chain: frame -> CRC -> RS or LDPC -> randomizer -> ASM -> conv -> interleaver, and back on soft bits.
#include "qlink/modem/coding_chain.hpp"

#include "chain/rs_check.hpp"
#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/crc.hpp"
#include "qlink/modem/ldpc.hpp"
#include "qlink/modem/randomizer.hpp"
#include "qlink/modem/reed_solomon.hpp"

#include <algorithm>
#include <array>
#include <bit>
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

// Channel symbols per period of the puncturing pattern: a fresh decoder fed
// from any of these offsets is a different alignment hypothesis.
unsigned symbol_phases(conv_rate r) {
    switch (r) {
    case conv_rate::r1_2: return 2;
    case conv_rate::r2_3: return 3;
    case conv_rate::r3_4: return 4;
    case conv_rate::r5_6: return 6;
    case conv_rate::r7_8: return 8;
    }
    return 2;
}

// `n` bits of `packed` (MSB first) ending just before bit `end`, right-aligned.
std::uint64_t bits_before(std::span<const std::uint8_t> packed, std::size_t end, unsigned n) {
    std::uint64_t w = 0;
    for (std::size_t i = end - n; i < end; ++i) w = (w << 1) | ((packed[i >> 3] >> (7 - (i & 7))) & 1u);
    return w;
}

// True when the first `nbits` decoded bits hold a marker within `tol_first`
// errors and, one sync period later, another within `tol_second` in the same
// polarity. By chance in random bits (3 and 6 of 32): about 1e-9 per bit.
// `single`: one marker is enough (the end of the stream, too short for two).
bool marker_pair(std::span<const std::uint8_t> packed, std::size_t nbits, sync_marker m, std::size_t period,
                 unsigned tol_first, unsigned tol_second, bool single) {
    const unsigned mb = m.bits;
    const std::uint64_t mask = mb >= 64 ? ~0ull : ((1ull << mb) - 1);
    const std::uint64_t pat = m.pattern & mask;
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < nbits; ++i) {
        w = (w << 1) | ((packed[i >> 3] >> (7 - (i & 7))) & 1u);
        if (i + 1 < mb) continue;
        const auto d = static_cast<unsigned>(std::popcount((w ^ pat) & mask));
        const bool inv = mb - d <= tol_first;
        if (d > tol_first && !inv) continue;
        const std::size_t next_end = i + 1 + period;
        if (next_end > nbits) return single;
        const auto d2 = static_cast<unsigned>(std::popcount((bits_before(packed, next_end, mb) ^ pat) & mask));
        if ((inv ? mb - d2 : d2) <= tol_second) return true;
    }
    return false;
}

// The eight full-magnitude LLRs of each packed byte, first bit first.
constexpr auto unpack_table = [] {
    std::array<std::array<llr_t, 8>, 256> t{};
    for (unsigned b = 0; b < 256; ++b)
        for (unsigned i = 0; i < 8; ++i) t[b][i] = bit_to_llr(static_cast<std::uint8_t>((b >> (7 - i)) & 1u));
    return t;
}();

// unpack_to_llr without its branch per bit: on decoded (random) bits that
// branch was mispredicted every other bit and took over half the chain's time.
void unpack_decided(std::span<const std::uint8_t> packed, std::span<llr_t> out) {
    const std::size_t whole = out.size() / 8;
    for (std::size_t i = 0; i < whole; ++i) std::memcpy(out.data() + 8 * i, unpack_table[packed[i]].data(), 8);
    for (std::size_t i = 8 * whole; i < out.size(); ++i) out[i] = unpack_table[packed[whole]][i & 7];
}

// Soft symbols are consumed in slices of this many, so every scratch buffer
// has a fixed size and push() allocates nothing.
constexpr std::size_t chunk_symbols = 4096;
// Without an inner code the slices are whole sync periods, so a locked frame's
// body is whole in the slice and is packed straight from the caller's LLRs.
constexpr std::size_t periods_per_slice = 16;

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
    std::size_t decide_capacity = 0;   // frames one viterbi decide() can complete
    std::uint64_t next_frame_end = 0;  // locked: synchroniser input bit after the next frame
    bool frame_seen = false;           // next_frame_end follows a frame of the current lock
    std::size_t branch_sync_bits;
    std::vector<llr_t> soft_buf;
    std::vector<std::uint8_t> vit_bytes;
    std::vector<llr_t> bit_llr;
    std::vector<llr_t> frames_llr;
    std::vector<sync_frame_info> infos;
    std::vector<std::uint8_t> cb;
    std::unique_ptr<detail::rs_block_check> rs_check;  // clean codeblocks skip rs_codec::decode
    std::vector<std::uint8_t> frames_packed;           // RS profiles: the synchroniser's packed frames
    std::size_t slice_symbols = chunk_symbols;
    bool passthrough = false;                          // no channel interleaver: no copy either
    isa level = isa::generic;
    std::size_t bits_since_lock = 0;
    chain_decoder_counters counters{};

    // Alignment search (inner code only). Stepping one symbol phase at a time
    // behind the streaming Viterbi cost each wrong phase its output delay (up
    // to a window of 8192 bits) plus the wait for a marker: about 2.3 sync
    // periods per phase, so up to 18 periods at r=7/8 (8 phases) after an
    // outage. Instead every phase is decoded over the same window of recent
    // symbols and the one that shows two markers a sync period apart wins;
    // the window is then replayed, so the frames inside it are not lost.
    unsigned phases = 1;               // symbol phases of the (punctured) code
    std::size_t acq_len = 0;           // channel symbols in one search window
    std::size_t acq_step = 0;          // window advance when no phase shows a marker pair
    std::vector<llr_t> hist;           // recent deinterleaved channel symbols, from hist_off on
    std::size_t hist_keep = 0;         // symbols kept: one search window and a slice
    std::size_t hist_off = 0;
    std::size_t hist_fill = 0;
    std::uint64_t hist_end = 0;        // absolute index of the symbol after the newest in hist
    std::uint64_t valid_from = 0;      // symbols before this are not replayed (their frames were delivered)
    std::uint64_t vit_origin = 0;      // symbol at which the Viterbi decoder last started (puncturing phase 0)
    std::uint64_t sync_origin = 0;     // the synchroniser's bits_in at that moment
    std::uint64_t acq_from = 0;        // start of the next search window
    std::uint64_t next_from = 0;       // a new search starts past the last window that hit (progress)
    bool acquiring = false;
    unsigned bad_run = 0;              // consecutive frames failing RS/CRC while locked
    std::vector<std::uint8_t> acq_bytes;

    explicit impl(const config& c) : cfg(c), prof(cfg.profile) {
        check_profile(prof);
        deil = create_deinterleaver(prof.interleaver);
        deil_skip = interleaver_pair_delay(prof.interleaver);
        passthrough = prof.interleaver.kind == interleaver_kind::none;
        const auto parsed = parse_isa(cfg.isa);
        if (!parsed || !isa_supported(*parsed))
            throw std::invalid_argument("chain_decoder: isa '" + cfg.isa +
                                        "' is unknown or not supported by this CPU (allowed: auto, generic, sse41, "
                                        "avx2, avx512)");
        level = *parsed;
        if (!prof.inner_conv && !prof.ldpc) slice_symbols = periods_per_slice * sync_period_bits(prof);
        std::size_t max_bits = slice_symbols;
        if (prof.inner_conv) {
            viterbi_decoder::config vc;
            vc.code = prof.conv;
            vc.mode = viterbi_mode::streaming;
            vc.traceback = cfg.viterbi_traceback;
            vc.stream_window = cfg.viterbi_window;
            vc.isa = cfg.isa;
            vit = create_viterbi_decoder(vc);
            const std::size_t bytes = std::max(vit->max_stream_output_bytes(chunk_symbols), vit->max_flush_bytes());
            vit_bytes.resize(bytes);
            max_bits = 8 * bytes;
            bit_llr.resize(max_bits);
            phases = symbol_phases(prof.conv.rate);
            const std::size_t period = sync_period_bits(prof);
            // Two whole markers a period apart fit in 2 periods + one marker; a few
            // bits more for the decoder's cold start at the window's edge.
            acq_len = conv_coded_bits(prof.conv, 2 * period + prof.marker.bits + 64) + phases;
            acq_step = conv_coded_bits(prof.conv, period);
            // Four times what is kept, so the kept symbols move down once per 3 x hist_keep
            // symbols instead of once per slice (that memmove was ~10 bytes per symbol; at
            // twice, 1 byte per symbol, with the copy in ~5 % of bm_rx_chain_viterbi). The
            // decoder holds up to a window + traceback of symbols back: a search reaches
            // as far back as if it had none.
            hist_keep = acq_len + chunk_symbols + conv_coded_bits(prof.conv, cfg.viterbi_window + cfg.viterbi_traceback) +
                        phases;
            hist.resize(4 * hist_keep);
            acq_bytes.resize(vit->max_stream_output_bytes(acq_len) + vit->max_flush_bytes());
            // A replay decodes up to the whole history in one slice.
            max_bits += hist_keep;
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
            // Only with a SIMD kernel: below AVX2 rs_codec's own (SSE4.1) syndromes are faster
            // than the generic check.
            if (level >= isa::avx2) {
                rs_config rc;
                rc.e = prof.rs_e;
                rc.interleave = prof.rs_interleave;
                rc.basis = prof.basis;
                rc.virtual_fill = prof.virtual_fill;
                rs_check = std::make_unique<detail::rs_block_check>(rc, level);
            }
        }
        // One slice of decoded bits completes at most this many frames.
        sync_capacity = max_bits / sync_period_bits(prof) + 3;
        if (prof.inner_conv) decide_capacity = 8 * vit->max_flush_bytes() / sync_period_bits(prof) + 3;
        branch_sync_bits = cfg.branch_sync_bits ? cfg.branch_sync_bits
                                                : sync_period_bits(prof) + sync_period_bits(prof) / 4;
        if (!passthrough) soft_buf.resize(slice_symbols);
        if (ldpc)
            frames_llr.resize(sync_capacity * sc.frame_bits);
        else
            frames_packed.resize(sync_capacity * codeblock_bytes(prof));
        infos.resize(sync_capacity);
        cb.resize(codeblock_bytes(prof));
    }

    void check_fecf(chain_frame_report& rep) const { check_fecf(cb, rep); }
    void check_fecf(std::span<const std::uint8_t> block, chain_frame_report& rep) const {
        const std::size_t fb = frame_bytes(prof);
        if (prof.fecf) {
            const std::uint16_t crc = crc16_ccsds(block.first(fb - 2));
            rep.crc_ok = block[fb - 2] == (crc >> 8) && block[fb - 1] == (crc & 0xff);
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

    // An RS codeblock as packed hard decisions, worked on in place.
    void process_rs_frame(std::span<std::uint8_t> block, const sync_frame_info& info, std::span<std::uint8_t> out,
                          chain_frame_report& rep) {
        if (prof.randomizer) ccsds_randomize(block, level);
        rs_decode_result rr;
        if (!rs_check || !rs_check->clean(block)) rr = rs->decode(block);
        rep = {};
        rep.sync = info;
        rep.rs_ok = rr.ok;
        rep.rs_corrected = rr.corrected;
        rep.rs_failed_codewords = rr.failed_codewords;
        check_fecf(block, rep);
        rep.ok = rep.rs_ok && rep.crc_ok;
        std::memcpy(out.data(), block.data(), out.size());
        ++counters.frames;
        counters.rs_corrected += rr.corrected;
        counters.rs_failed_codewords += rr.failed_codewords;
        if (!rr.ok) ++counters.rs_failed_frames;
        if (rr.ok && !rep.crc_ok) ++counters.crc_failed;
        if (rep.ok) ++counters.frames_ok;
        watch_lock(rep);
    }

    // A good frame ends the replayable history: its symbols must never be
    // decoded a second time. Markers that keep matching while no frame
    // decodes mean the synchroniser locked onto a false marker (in wrong-
    // alignment Viterbi output the marker region can decode the same wrong
    // way every period): search the alignment again.
    void watch_lock(const chain_frame_report& rep) {
        if (!prof.inner_conv) return;
        if (rep.ok) {
            bad_run = 0;
            // The frame's last symbols, not hist_end: the decoder's output lags its input by up
            // to a window, and the frames behind this one in that lag must stay replayable. A
            // replay may start inside this frame's body (it has no marker: it is not delivered
            // again), 64 bits early so the next marker is not right at a cold decoder start.
            const std::uint64_t end_bit = rep.sync.stream_bit + 8 * codeblock_bytes(prof);
            if (end_bit >= sync_origin + 64) {
                const std::uint64_t sym = vit_origin + conv_coded_bits(prof.conv, static_cast<std::size_t>(end_bit - sync_origin - 64));
                valid_from = std::max(valid_from, std::min(sym, hist_end));
            }
            return;
        }
        if (cfg.false_lock_frames != 0 && rep.sync.state != sync_state::search && ++bad_run >= cfg.false_lock_frames) {
            ++counters.false_locks;
            start_acquisition();
        }
    }

    void start_acquisition() {
        if (acquiring) return;
        acquiring = true;
        bad_run = 0;
        bits_since_lock = 0;
        acq_from = std::max({valid_from, hist_end - hist_fill, next_from});
    }

    // Frame sync over decoded soft bits; frames go straight to the caller.
    void feed_sync(std::span<const llr_t> bits, std::span<std::uint8_t> out, std::span<chain_frame_report> reports,
                   result& r) {
        const std::size_t db = frame_data_bytes(prof);
        const std::size_t fbits = 8 * codeblock_bytes(prof);
        const std::size_t fbytes = codeblock_bytes(prof);
        std::size_t pos = 0;
        for (int guard = 0; guard < 64; ++guard) {
            const auto sr = ldpc ? sync->push(bits.subspan(pos), frames_llr, infos)
                                 : sync->push_packed(bits.subspan(pos), frames_packed, infos);
            for (std::size_t f = 0; f < sr.frames; ++f) {
                next_frame_end = infos[f].stream_bit + sync_period_bits(prof) + fbits;
                frame_seen = true;
                // push() only runs while the caller has room for sync_capacity frames; never write past it.
                if (r.frames >= reports.size() || (r.frames + 1) * db > out.size()) {
                    ++counters.frames_no_room;
                    continue;
                }
                if (ldpc)
                    process_ldpc_frame(std::span<const llr_t>(frames_llr).subspan(f * fbits, fbits), infos[f],
                                       out.subspan(r.frames * db, db), reports[r.frames]);
                else
                    process_rs_frame(std::span(frames_packed).subspan(f * fbytes, fbytes), infos[f],
                                     out.subspan(r.frames * db, db), reports[r.frames]);
                ++r.frames;
            }
            pos += sr.consumed;
            if (pos >= bits.size() || (sr.consumed == 0 && sr.frames == 0)) break;
        }
        counters.decoded_bits += bits.size();
        if (!prof.inner_conv) return;
        // A stretch longer than a sync period without a marker where one was
        // due (SEARCH, or FLYWHEEL after a slip) means the symbol pairs (or the
        // puncturing phase) may be misaligned: search the alignment.
        if (sync->state() == sync_state::check || sync->state() == sync_state::lock) {
            bits_since_lock = 0;
        } else if ((bits_since_lock += bits.size()) > branch_sync_bits) {
            start_acquisition();
        }
    }

    // Keeps the newest hist_keep deinterleaved symbols (at hist_off).
    void remember(std::span<const llr_t> soft) {
        if (soft.empty()) return;
        if (soft.size() >= hist_keep) {
            std::memcpy(hist.data(), soft.data() + (soft.size() - hist_keep), hist_keep);
            hist_off = 0;
            hist_fill = hist_keep;
        } else {
            if (hist_off + hist_fill + soft.size() > hist.size()) {
                const std::size_t keep = std::min(hist_fill, hist_keep - soft.size());
                std::memmove(hist.data(), hist.data() + hist_off + (hist_fill - keep), keep);
                hist_off = 0;
                hist_fill = keep;
            }
            std::memcpy(hist.data() + hist_off + hist_fill, soft.data(), soft.size());
            hist_fill += soft.size();
            if (hist_fill > hist_keep) {
                hist_off += hist_fill - hist_keep;
                hist_fill = hist_keep;
            }
        }
        hist_end += soft.size();
    }

    std::span<const llr_t> history() const { return std::span<const llr_t>(hist).subspan(hist_off, hist_fill); }

    // Streams symbols through the Viterbi decoder into the synchroniser, a
    // chunk at a time; stops early when that starts an alignment search.
    void run_viterbi(std::span<const llr_t> soft, std::span<std::uint8_t> out, std::span<chain_frame_report> reports,
                     result& r) {
        for (std::size_t pos = 0; pos < soft.size() && !acquiring && r.ok;) {
            const std::size_t n = std::min(chunk_symbols, soft.size() - pos);
            const auto vr = vit->decode(soft.subspan(pos, n), vit_bytes);
            pos += n;
            if (!vr.ok) {
                r.ok = false;
                r.error = vr.error;
                return;
            }
            unpack_decided(vit_bytes, std::span(bit_llr).first(vr.bits_out));
            feed_sync(std::span<const llr_t>(bit_llr).first(vr.bits_out), out, reports, r);
        }
    }

    // End of a push: the bits the Viterbi can decide now go to the synchroniser,
    // so the frames they complete leave with this push instead of a window later.
    void decide_pending(std::span<std::uint8_t> out, std::span<chain_frame_report> reports, std::size_t capacity,
                        result& r) {
        if (!cfg.viterbi_decide_on_push || !prof.inner_conv || acquiring || !r.ok) return;
        if (capacity - r.frames < decide_capacity) return;
        const std::uint64_t bits_in = sync->counters().bits_in;
        if (sync->state() == sync_state::lock && frame_seen && next_frame_end > bits_in &&
            next_frame_end <= bits_in + sync_period_bits(prof)) {
            // Locked, the next frame's end is known (and not stale: a slip moved it): a
            // decision that cannot reach it would only cost (a short stretch through the
            // lanes); leave those bits to a later push, which then decides a longer stretch.
            // Upper bound of the trellis steps the decoder has (every symbol since it
            // started was fed to it), less the traceback.
            const unsigned q = phases;                    // symbols per puncturing period
            const std::uint64_t p = q == 2 ? 1 : q - 1;  // trellis steps per period
            const std::uint64_t steps = (hist_end - vit_origin + q - 1) / q * p;
            if (sync_origin + steps < next_frame_end + cfg.viterbi_traceback) return;
        }
        const auto vr = vit->decide(vit_bytes);
        if (!vr.ok) {
            r.ok = false;
            r.error = vr.error;
            return;
        }
        if (vr.bits_out == 0) return;
        unpack_decided(vit_bytes, std::span(bit_llr).first(vr.bits_out));
        feed_sync(std::span<const llr_t>(bit_llr).first(vr.bits_out), out, reports, r);
    }

    // The phase (symbols to skip) at which `window` decodes to a marker pair, or -1.
    int find_phase(std::span<const llr_t> window, bool single) {
        const std::size_t period = sync_period_bits(prof);
        for (unsigned k = 0; k < phases && k < window.size(); ++k) {
            vit->reset();
            const auto vr = vit->decode(window.subspan(k), acq_bytes);
            if (!vr.ok) continue;
            const std::size_t first = vr.bits_out / 8;
            const auto fr = vit->flush(std::span(acq_bytes).subspan(first));
            if (!fr.ok) continue;
            if (marker_pair(acq_bytes, vr.bits_out + fr.bits_out, prof.marker, period, cfg.search_tolerance,
                            cfg.lock_tolerance, single))
                return static_cast<int>(k);
        }
        return -1;
    }

    // Runs search windows over the history while one is available; on a hit
    // the decoder restarts at the found phase and the history is replayed.
    // `final`: end of stream, a shorter window and a single marker will do.
    void acquire(std::span<std::uint8_t> out, std::span<chain_frame_report> reports, result& r, bool final) {
        while (acquiring && r.ok) {
            const std::uint64_t hist_begin = hist_end - hist_fill;
            acq_from = std::max({acq_from, hist_begin, valid_from});
            const std::size_t avail = static_cast<std::size_t>(hist_end - acq_from);
            const std::size_t min_final = conv_coded_bits(prof.conv, sync_period_bits(prof) + 64);
            if (avail < acq_len && !(final && avail >= min_final)) return;
            const auto from = static_cast<std::size_t>(acq_from - hist_begin);
            const auto window = history().subspan(from, std::min(acq_len, avail));
            ++counters.realignments;
            const int k = find_phase(window, final && avail < acq_len);
            vit->reset();
            if (k < 0) {
                if (avail < acq_len) return;  // final: nothing more to search
                acq_from += acq_step;
                continue;
            }
            acquiring = false;
            bits_since_lock = 0;
            bad_run = 0;
            next_from = acq_from + acq_step;
            sync->reset();
            frame_seen = false;
            vit_origin = acq_from + static_cast<std::uint64_t>(k);
            sync_origin = sync->counters().bits_in;
            run_viterbi(history().subspan(from + static_cast<std::size_t>(k)),
                        out, reports, r);
        }
    }

    void decode_slice(std::span<const llr_t> soft, std::span<std::uint8_t> out, std::span<chain_frame_report> reports,
                      result& r) {
        if (!prof.inner_conv) {
            feed_sync(soft, out, reports, r);
            return;
        }
        remember(soft);
        if (!acquiring) run_viterbi(soft, out, reports, r);
        if (acquiring) acquire(out, reports, r, false);
    }
};

chain_decoder::chain_decoder(const config& cfg) : p_(std::make_unique<impl>(cfg)) {}
chain_decoder::~chain_decoder() = default;

std::size_t chain_decoder::data_bytes() const { return frame_data_bytes(p_->prof); }
std::size_t chain_decoder::frames_per_push() const { return p_->sync_capacity; }
std::size_t chain_decoder::decide_frames() const { return p_->decide_capacity; }
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
        // Small slices while unlocked, so the alignment search reacts at a fine grain.
        const std::size_t slice_max =
            s.sync->state() == sync_state::lock || !s.prof.inner_conv ? s.slice_symbols : chunk_symbols / 4;
        const std::size_t n = std::min(slice_max, soft.size() - r.consumed);
        std::span<const llr_t> slice = soft.subspan(r.consumed, n);
        if (!s.passthrough) {
            s.deil->process(slice, std::span(s.soft_buf).first(n));
            slice = std::span<const llr_t>(s.soft_buf).first(n);
        }
        const std::size_t skip = std::min(s.deil_skip, n);
        s.deil_skip -= skip;
        r.consumed += n;
        s.counters.channel_symbols += n;
        s.decode_slice(slice.subspan(skip), data_out, reports, r);
        if (!r.ok) break;
    }
    if (r.consumed == soft.size()) s.decide_pending(data_out, reports, capacity, r);
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
    if (s.acquiring) {
        s.acquire(data_out, reports, r, true);
        if (s.acquiring || !r.ok) return r;
    }
    const auto vr = s.vit->flush(s.vit_bytes);
    if (!vr.ok) {
        r.ok = false;
        r.error = vr.error;
        return r;
    }
    unpack_decided(s.vit_bytes, std::span(s.bit_llr).first(vr.bits_out));
    s.feed_sync(std::span<const llr_t>(s.bit_llr).first(vr.bits_out), data_out, reports, r);
    return r;
}

}  // namespace qlink::modem
