// The streaming frame synchroniser: SEARCH -> CHECK -> LOCK -> FLYWHEEL on int8 soft bits.
#include "qlink/modem/frame_sync.hpp"

#include "sync/marker_search.hpp"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

namespace qlink::modem {

std::string_view to_string(sync_state s) {
    switch (s) {
    case sync_state::search: return "search";
    case sync_state::check: return "check";
    case sync_state::lock: return "lock";
    case sync_state::flywheel: return "flywheel";
    }
    return "?";
}

namespace {

// Negating -128 would overflow int8; the convention never produces it, but
// input off the air is not trusted.
inline llr_t negate(llr_t v) { return saturate_llr(-static_cast<int>(v)); }

}  // namespace

frame_synchronizer::frame_synchronizer(const config& cfg) : cfg_(cfg) {
    if (cfg_.marker.bits == 0 || cfg_.marker.bits > 64)
        throw std::invalid_argument("frame_synchronizer: marker.bits must be 1..64");
    if (cfg_.frame_bits == 0) throw std::invalid_argument("frame_synchronizer: frame_bits must be > 0");
    if (cfg_.search_tolerance * 2 >= cfg_.marker.bits || cfg_.lock_tolerance * 2 >= cfg_.marker.bits)
        throw std::invalid_argument(
            "frame_synchronizer: search_tolerance and lock_tolerance must be below half the marker length");
    if (!(cfg_.min_soft_correlation >= -1.0f && cfg_.min_soft_correlation <= 1.0f))
        throw std::invalid_argument("frame_synchronizer: min_soft_correlation must be in [-1, 1]");
    kernel_ = create_marker_search_kernel(cfg_.isa);
    packer_ = create_hard_decision_kernel(cfg_.isa);
    mask_ = cfg_.marker.bits == 64 ? ~0ull : ((1ull << cfg_.marker.bits) - 1);
    cfg_.marker.pattern &= mask_;
    body_ = std::make_unique<llr_t[]>(cfg_.frame_bits);
}

frame_synchronizer::~frame_synchronizer() = default;

void frame_synchronizer::reset() {
    enter_search();
    window_ = 0;
    recent_.fill(0);
    pending_ = false;
    inverted_ = false;
}

void frame_synchronizer::enter_search() {
    state_ = sync_state::search;
    phase_ = phase::searching;
    fill_ = 0;
    good_ = 0;
    misses_ = 0;
}

void frame_synchronizer::start_body(unsigned marker_errors, std::uint64_t body_start) {
    cur_ = {};
    cur_.state = state_;
    cur_.marker_errors = static_cast<std::uint8_t>(std::min(marker_errors, 255u));
    cur_.inverted = inverted_;
    cur_.flywheel = state_ == sync_state::flywheel;
    cur_.stream_bit = body_start;
    phase_ = phase::body;
    fill_ = 0;
}

// Marker judged in CHECK/LOCK/FLYWHEEL against both polarities: a phase
// slip of 180 degrees between two markers shows up here as an inverted one.
bool frame_synchronizer::judge_marker(std::span<const llr_t> marker_soft, unsigned& errors, bool& flip) const {
    std::uint64_t w = 0;
    for (llr_t v : marker_soft) w = (w << 1) | hard_bit(v);
    const unsigned bits = cfg_.marker.bits;
    const unsigned d = static_cast<unsigned>(std::popcount((w ^ cfg_.marker.pattern) & mask_));
    // In the frame's own polarity, a correct marker has distance d (not inverted) or bits-d.
    const unsigned own = inverted_ ? bits - d : d;
    flip = false;
    errors = own;
    if (own <= cfg_.lock_tolerance) return true;
    if (cfg_.detect_inverted && bits - own <= cfg_.lock_tolerance) {
        flip = true;
        errors = bits - own;
        return true;
    }
    return false;
}

void frame_synchronizer::on_marker_complete() {
    unsigned errors = 0;
    bool flip = false;
    const bool good = judge_marker(std::span<const llr_t>(marker_buf_.data(), cfg_.marker.bits), errors, flip);
    if (good) {
        if (flip) {
            inverted_ = !inverted_;
            ++counters_.inversions;
        }
        counters_.marker_bit_errors += errors;
        misses_ = 0;
        switch (state_) {
        case sync_state::check:
            if (++good_ >= cfg_.check_count) {
                state_ = sync_state::lock;
                ++counters_.check_to_lock;
            }
            break;
        case sync_state::flywheel:
            state_ = sync_state::lock;
            ++counters_.flywheel_to_lock;
            break;
        default: break;
        }
        start_body(errors, stream_pos_);
        return;
    }
    switch (state_) {
    case sync_state::check:
        ++counters_.check_to_search;
        enter_search();
        return;
    case sync_state::lock:
        state_ = sync_state::flywheel;
        ++counters_.lock_to_flywheel;
        misses_ = 1;
        break;
    case sync_state::flywheel:
        if (++misses_ > cfg_.flywheel_count) {
            ++counters_.flywheel_to_search;
            enter_search();
            return;
        }
        break;
    case sync_state::search: break;
    }
    start_body(errors, stream_pos_);
}

sync_result frame_synchronizer::push(std::span<const llr_t> soft, std::span<llr_t> frames_out,
                                     std::span<sync_frame_info> info) {
    return push_impl<false>(soft, frames_out, info);
}

sync_result frame_synchronizer::push_packed(std::span<const llr_t> soft, std::span<std::uint8_t> frames_out,
                                            std::span<sync_frame_info> info) {
    if (cfg_.frame_bits % 8 != 0) {
        sync_result r;
        r.ok = false;
        r.error = "frame_synchronizer: push_packed needs frame_bits to be a multiple of 8";
        return r;
    }
    return push_impl<true>(soft, frames_out, info);
}

template <bool packed, typename out_t>
sync_result frame_synchronizer::push_impl(std::span<const llr_t> soft, std::span<out_t> frames_out,
                                          std::span<sync_frame_info> info) {
    sync_result r;
    const std::size_t fb = cfg_.frame_bits;
    const std::size_t out_size = packed ? fb / 8 : fb;  // output elements per frame
    const std::size_t capacity = std::min(frames_out.size() / out_size, info.size());
    const unsigned mbits = cfg_.marker.bits;

    auto emit_pending = [&]() -> bool {
        if (r.frames >= capacity) {
            r.output_full = true;
            return false;
        }
        if constexpr (packed)
            packer_->pack(std::span<const llr_t>(body_.get(), fb), frames_out.subspan(r.frames * out_size, out_size),
                          false);
        else
            std::memcpy(frames_out.data() + r.frames * fb, body_.get(), fb);
        info[r.frames] = cur_;
        ++r.frames;
        ++counters_.frames_out;
        pending_ = false;
        return true;
    };
    // Keeps the last 64 soft bits, so a marker straddling two pushes can be
    // confirmed softly.
    std::size_t mem = 0;  // soft[0, mem) is in the ring
    auto remember = [&](std::size_t end) {
        for (std::size_t k = std::max(mem, end >= recent_.size() ? end - recent_.size() : 0); k < end; ++k) {
            recent_[recent_pos_] = soft[k];
            recent_pos_ = (recent_pos_ + 1) % recent_.size();
        }
        mem = std::max(mem, end);
    };
    // Copies the `mbits` soft bits ending at soft[end-1]; those before soft[mem]
    // come from the ring (end >= mem always holds here).
    std::array<llr_t, 64> cand{};
    auto gather_marker = [&](std::size_t end) {
        const auto ring = static_cast<std::ptrdiff_t>(recent_.size());
        for (unsigned k = 0; k < mbits; ++k) {
            const auto p = static_cast<std::ptrdiff_t>(end) - static_cast<std::ptrdiff_t>(mbits - k);
            if (p >= static_cast<std::ptrdiff_t>(mem)) {
                cand[k] = soft[static_cast<std::size_t>(p)];
            } else {
                const std::ptrdiff_t age = static_cast<std::ptrdiff_t>(mem) - p;  // 1 = newest in ring
                cand[k] = recent_[static_cast<std::size_t>((static_cast<std::ptrdiff_t>(recent_pos_) + ring - age) % ring)];
            }
        }
    };
    // A search hit must also correlate softly: hard hits on weak, noisy bits
    // inside random data are the false alarms that cost a frame.
    // Judged in the polarity the hard decisions chose: a few confident wrong
    // bits among weak right ones make the correlation small or negative.
    auto soft_confirm = [&](bool inverted) {
        long corr = 0, mag = 0;
        for (unsigned k = 0; k < mbits; ++k) {
            const int s = ((cfg_.marker.pattern >> (mbits - 1 - k)) & 1) ? -1 : 1;
            corr += s * cand[k];
            mag += cand[k] < 0 ? -cand[k] : cand[k];
        }
        if (inverted) corr = -corr;
        if (mag == 0) return false;
        return static_cast<float>(corr) >= cfg_.min_soft_correlation * static_cast<float>(mag);
    };

    if (pending_ && !emit_pending()) return r;

    std::size_t i = 0;
    while (i < soft.size()) {
        if (phase_ == phase::searching || state_ == sync_state::flywheel) {
            // Search, also while flywheeling: after a bit slip the next marker
            // arrives off the predicted position and is picked up here.
            std::size_t limit = soft.size() - i;
            if (phase_ == phase::body) limit = std::min(limit, fb - fill_);
            if (phase_ == phase::marker) limit = std::min<std::size_t>(limit, mbits - fill_);
            const auto seg = soft.subspan(i, limit);
            const std::size_t hit = kernel_->find(seg, window_, cfg_.marker, cfg_.search_tolerance, cfg_.detect_inverted);
            const std::size_t used = hit < seg.size() ? hit + 1 : seg.size();
            if (phase_ == phase::body) {
                if (inverted_)
                    for (std::size_t k = 0; k < used; ++k) body_[fill_ + k] = negate(seg[k]);
                else
                    std::memcpy(body_.get() + fill_, seg.data(), used);
                fill_ += used;
            } else if (phase_ == phase::marker) {
                std::memcpy(marker_buf_.data() + fill_, seg.data(), used);
                fill_ += used;
            }
            bool accepted = false;
            if (hit < seg.size()) {
                const unsigned d = static_cast<unsigned>(std::popcount((window_ ^ cfg_.marker.pattern) & mask_));
                const bool inv = d > cfg_.search_tolerance;
                gather_marker(i + hit + 1);
                if (soft_confirm(inv)) {
                    accepted = true;
                    if (phase_ != phase::searching) {
                        ++counters_.flywheel_resync;
                        if (phase_ == phase::body) ++counters_.frames_dropped;
                    } else {
                        ++counters_.markers_found;
                    }
                    if (inv != inverted_) {
                        inverted_ = inv;
                        ++counters_.inversions;
                    }
                    const unsigned errors = inv ? mbits - d : d;
                    counters_.marker_bit_errors += errors;
                    good_ = 0;
                    misses_ = 0;
                    if (cfg_.check_count == 0) {
                        state_ = sync_state::lock;
                        ++counters_.check_to_lock;
                    } else {
                        state_ = sync_state::check;
                    }
                    start_body(errors, counters_.bits_in + i + used);
                } else {
                    ++counters_.search_rejected;
                }
            }
            remember(i + used);
            i += used;
            if (!accepted && phase_ == phase::body && fill_ == fb) {
                // Flywheel frame complete without a resync.
                phase_ = phase::marker;
                fill_ = 0;
                if (cfg_.emit_flywheel_frames) {
                    pending_ = true;
                    if (!emit_pending()) break;
                }
            } else if (!accepted && phase_ == phase::marker && fill_ == mbits) {
                stream_pos_ = counters_.bits_in + i;
                on_marker_complete();
            }
            continue;
        }
        if (phase_ == phase::body) {
            const llr_t* src = soft.data() + i;
            if constexpr (packed) {
                // The locked fast path: the whole body is here and there is room for it.
                if (fill_ == 0 && soft.size() - i >= fb && r.frames < capacity) {
                    const bool emit = cur_.state == sync_state::check ? cfg_.emit_check_frames
                                      : cur_.flywheel                  ? cfg_.emit_flywheel_frames
                                                                       : true;
                    if (emit) {
                        packer_->pack(std::span<const llr_t>(src, fb), frames_out.subspan(r.frames * out_size, out_size),
                                      inverted_);
                        info[r.frames] = cur_;
                        ++r.frames;
                        ++counters_.frames_out;
                    }
                    const std::size_t from = fb >= 64 ? fb - 64 : 0;
                    for (std::size_t k = from; k < fb; ++k) window_ = (window_ << 1) | hard_bit(src[k]);
                    i += fb;
                    remember(i);
                    phase_ = phase::marker;
                    fill_ = 0;
                    continue;
                }
            }
            const std::size_t take = std::min(fb - fill_, soft.size() - i);
            if (inverted_)
                for (std::size_t k = 0; k < take; ++k) body_[fill_ + k] = negate(src[k]);
            else
                std::memcpy(body_.get() + fill_, src, take);
            fill_ += take;
            i += take;
            if (fill_ == fb) {
                // The window must be current before the marker phase or a later search.
                const std::size_t from = take >= 64 ? take - 64 : 0;
                for (std::size_t k = from; k < take; ++k) window_ = (window_ << 1) | hard_bit(src[k]);
                remember(i);
                phase_ = phase::marker;
                fill_ = 0;
                const bool emit = cur_.state == sync_state::check ? cfg_.emit_check_frames
                                  : cur_.flywheel                  ? cfg_.emit_flywheel_frames
                                                                   : true;
                if (emit) {
                    pending_ = true;
                    if (!emit_pending()) break;
                }
            } else {
                const std::size_t from = take >= 64 ? take - 64 : 0;
                for (std::size_t k = from; k < take; ++k) window_ = (window_ << 1) | hard_bit(src[k]);
                remember(i);
            }
            continue;
        }
        // phase::marker
        const std::size_t take = std::min<std::size_t>(mbits - fill_, soft.size() - i);
        for (std::size_t k = 0; k < take; ++k) {
            marker_buf_[fill_ + k] = soft[i + k];
            window_ = (window_ << 1) | hard_bit(soft[i + k]);
        }
        fill_ += take;
        i += take;
        remember(i);
        if (fill_ == mbits) {
            stream_pos_ = counters_.bits_in + i;
            on_marker_complete();
        }
    }
    counters_.bits_in += i;
    r.consumed = i;
    return r;
}

}  // namespace qlink::modem
