// SDLS transmitter/receiver: security header, GCM per SA, anti-replay, announced key rotation.
#include "qlink/modem/sdls.hpp"
#include "common/byte_order.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace qlink::modem {

namespace {

using detail::put16;
using detail::put32;
using detail::get16;
using detail::get32;

void check_layout(const aos_layout& l, const char* who)
{
    if (l.security_header_length != sdls_header_length || l.security_trailer_length != sdls_trailer_length) {
        throw std::invalid_argument(std::string(who) + ": layout lacks the SDLS header/trailer (use sdls_layout())");
    }
    if (l.data_field_length() == 0) {
        throw std::invalid_argument(std::string(who) + ": frame_length " + std::to_string(l.frame_length) +
                                    " leaves no room for a data field");
    }
}

struct frame_parts {
    std::span<const std::uint8_t> aad;
    std::span<std::uint8_t> data;
    std::span<std::uint8_t, sdls_mac_length> tag;
};

frame_parts split(const aos_layout& l, std::span<std::uint8_t> frame)
{
    return frame_parts{frame.first(l.data_field_offset()), frame.subspan(l.data_field_offset(), l.data_field_length()),
                       frame.subspan(l.trailer_offset()).first<sdls_mac_length>()};
}

}  // namespace

aos_layout sdls_layout(aos_layout layout)
{
    layout.security_header_length = sdls_header_length;
    layout.security_trailer_length = sdls_trailer_length;
    return layout;
}

std::uint64_t sdls_header::counter() const
{
    std::uint64_t v = 0;
    for (std::size_t i = sdls_iv_fixed_length; i < sdls_iv_length; ++i) {
        v = (v << 8) | iv[i];
    }
    return v;
}

bool write_sdls_header(const sdls_header& h, std::span<std::uint8_t> out)
{
    if (out.size() < sdls_header_length) {
        return false;
    }
    std::uint8_t* p = out.data();
    put16(p, h.spi);
    put32(p + 2, h.key_id);
    std::memcpy(p + 6, h.iv.data(), sdls_iv_length);
    put16(p + 18, h.next_spi);
    put32(p + 20, h.next_key_id);
    put16(p + 24, h.frames_to_switch);
    return true;
}

std::optional<sdls_header> parse_sdls_header(std::span<const std::uint8_t> in)
{
    if (in.size() < sdls_header_length) {
        return std::nullopt;
    }
    const std::uint8_t* p = in.data();
    sdls_header h;
    h.spi = get16(p);
    h.key_id = get32(p + 2);
    std::memcpy(h.iv.data(), p + 6, sdls_iv_length);
    h.next_spi = get16(p + 18);
    h.next_key_id = get32(p + 20);
    h.frames_to_switch = get16(p + 24);
    return h;
}

// ---- transmitter ----

sdls_transmitter::sdls_transmitter(const config& cfg, link_key_source& keys) : cfg_(cfg), keys_(keys)
{
    check_layout(cfg.layout, "sdls_transmitter");
    cfg_.max_frames_per_key = std::clamp<std::uint64_t>(cfg.max_frames_per_key, 1, gcm_max_invocations);
    if (cfg_.policy == key_exhaustion_policy::fallback && cfg_.fallback == nullptr) {
        throw std::invalid_argument("sdls_transmitter: fallback policy without a fallback key source");
    }
    spi_ = cfg.first_spi == 0 || cfg.first_spi == 0xFFFF ? 1 : cfg.first_spi;
}

std::uint16_t sdls_transmitter::current_spi() const { return cur_ ? cur_->spi : 0; }
std::uint32_t sdls_transmitter::current_key_id() const { return cur_ ? cur_->key_id : 0; }

std::unique_ptr<security_association> sdls_transmitter::make_sa(bool allow_fallback)
{
    std::array<std::uint8_t, link_key_length> key{};
    auto take = [&](link_key_source& src) -> std::optional<std::uint32_t> {
        auto id = src.next_key(key);
        if (id && used_keys_.count(*id) != 0) {
            ++c_.key_reuse_refused;
            if (cfg_.alarm) {
                cfg_.alarm("SDLS: key source offered key ID " + std::to_string(*id) + " again; refused");
            }
            OPENSSL_cleanse(key.data(), key.size());
            id.reset();
        }
        return id;
    };
    auto id = take(keys_);
    if (!id && allow_fallback && cfg_.policy == key_exhaustion_policy::fallback) {
        id = take(*cfg_.fallback);
        if (id) {
            ++c_.fallback_keys;
            if (cfg_.alarm) {
                cfg_.alarm("SDLS: QKD keys exhausted; using a classical fallback key, ID " + std::to_string(*id));
            }
        }
    }
    if (!id) {
        return nullptr;
    }
    auto sa = std::make_unique<security_association>();
    sa->spi = spi_;
    spi_ = spi_ >= 0xFFFE ? 1 : static_cast<std::uint16_t>(spi_ + 1);
    sa->key_id = *id;
    sa->mode = cfg_.mode;
    sa->iv_fixed = cfg_.iv_fixed;
    sa->state = sa_state::preactive;
    try {
        sa->gcm.set_key(key);
    } catch (...) {
        OPENSSL_cleanse(key.data(), key.size());
        throw;
    }
    OPENSSL_cleanse(key.data(), key.size());
    used_keys_.insert(*id);
    return sa;
}

bool sdls_transmitter::rotation_due() const
{
    if (cur_->invocations + cfg_.announce_frames >= cfg_.max_frames_per_key) {
        return true;
    }
    return cfg_.rotation_period_ms > 0 && cfg_.clock_ms && cfg_.clock_ms() - key_started_ms_ >= cfg_.rotation_period_ms;
}

void sdls_transmitter::switch_to_next()
{
    cur_->gcm.clear();
    cur_->state = sa_state::destroyed;
    cur_ = std::move(next_);
    cur_->state = sa_state::active;
    key_started_ms_ = cfg_.clock_ms ? cfg_.clock_ms() : 0;
    frames_to_switch_ = 0;
    ++c_.rotations;
}

security_status sdls_transmitter::protect(std::span<std::uint8_t> frame)
{
    if (frame.size() != cfg_.layout.frame_length) {
        ++c_.bad_frames;
        return security_status::bad_frame;
    }
    auto exhausted = [&] {
        if (c_.keys_exhausted++ == 0 && cfg_.alarm) {
            cfg_.alarm("SDLS: no key available: protected traffic STOPPED (never reusing a key)");
        }
        return security_status::keys_exhausted;
    };
    if (!cur_) {
        cur_ = make_sa(true);
        if (!cur_) {
            return exhausted();
        }
        cur_->state = sa_state::active;
        cur_->next_counter = cfg_.first_counter;
        key_started_ms_ = cfg_.clock_ms ? cfg_.clock_ms() : 0;
    }
    if (!next_ && c_.frames >= next_key_try_ && rotation_due()) {
        next_ = make_sa(false);
        frames_to_switch_ = cfg_.announce_frames;
        if (!next_) {
            next_key_try_ = c_.frames + std::max<std::uint32_t>(cfg_.key_retry_frames, 1);
        }
    }
    if (next_ && (frames_to_switch_ == 0 || cur_->invocations >= cfg_.max_frames_per_key)) {
        switch_to_next();
    }
    if (cur_->invocations >= cfg_.max_frames_per_key) {
        next_ = make_sa(true);
        if (!next_) {
            return exhausted();
        }
        switch_to_next();
    }
    security_association& sa = *cur_;
    sdls_header h;
    h.spi = sa.spi;
    h.key_id = sa.key_id;
    std::copy(sa.iv_fixed.begin(), sa.iv_fixed.end(), h.iv.begin());
    for (std::size_t i = 0; i < 8; ++i) {
        h.iv[sdls_iv_fixed_length + i] = static_cast<std::uint8_t>(sa.next_counter >> (56 - 8 * i));
    }
    if (next_) {
        h.next_spi = next_->spi;
        h.next_key_id = next_->key_id;
        h.frames_to_switch = frames_to_switch_;
    }
    write_sdls_header(h, frame.subspan(cfg_.layout.security_header_offset()));
    auto parts = split(cfg_.layout, frame);
    if (!sa.gcm.seal(h.iv, parts.aad, parts.data, sa.mode != sdls_mode::auth_only, parts.tag)) {
        ++c_.bad_frames;
        return security_status::bad_frame;
    }
    if (sa.mode == sdls_mode::enc_only) {
        std::fill(parts.tag.begin(), parts.tag.end(), std::uint8_t{0});
    }
    ++sa.next_counter;
    ++sa.invocations;
    ++c_.frames;
    if (next_ && frames_to_switch_ > 0) {
        --frames_to_switch_;
    }
    return security_status::ok;
}

// ---- receiver ----

sdls_receiver::sdls_receiver(const config& cfg, link_key_source& keys) : cfg_(cfg), keys_(keys)
{
    check_layout(cfg.layout, "sdls_receiver");
    cfg_.replay_window = std::clamp<std::uint32_t>(cfg.replay_window, 1, 64);
}

sa_state sdls_receiver::state_of(std::uint16_t spi) const
{
    for (const auto& sa : sas_) {
        if (sa->spi == spi) {
            return sa->state;
        }
    }
    return sa_state::destroyed;
}

security_association* sdls_receiver::find(std::uint16_t spi)
{
    for (auto& sa : sas_) {
        if (sa->spi == spi) {
            return sa.get();
        }
    }
    return nullptr;
}

security_association* sdls_receiver::create(std::uint16_t spi, std::uint32_t key_id)
{
    if (used_keys_.count(key_id) != 0) {
        ++c_.key_reuse_refused;
        return nullptr;
    }
    std::array<std::uint8_t, link_key_length> key{};
    bool have = keys_.key_by_id(key_id, key);
    if (!have && cfg_.fallback != nullptr) {
        have = cfg_.fallback->key_by_id(key_id, key);
    }
    if (!have) {
        return nullptr;
    }
    // A recycled SPI replaces its destroyed predecessor; keep the table small.
    std::erase_if(sas_, [&](const auto& sa) { return sa->spi == spi || (sa->state == sa_state::destroyed && sas_.size() > 8); });
    auto sa = std::make_unique<security_association>();
    sa->spi = spi;
    sa->key_id = key_id;
    sa->mode = cfg_.mode;
    sa->iv_fixed = cfg_.iv_fixed;
    sa->window = cfg_.replay_window;
    try {
        sa->gcm.set_key(key);
    } catch (...) {
        OPENSSL_cleanse(key.data(), key.size());
        throw;
    }
    OPENSSL_cleanse(key.data(), key.size());
    used_keys_.insert(key_id);
    sas_.push_back(std::move(sa));
    return sas_.back().get();
}

security_status sdls_receiver::verify(std::span<std::uint8_t> frame)
{
    const aos_layout& L = cfg_.layout;
    if (frame.size() != L.frame_length) {
        ++c_.bad_frames;
        return security_status::bad_frame;
    }
    const auto h = parse_sdls_header(frame.subspan(L.security_header_offset()));
    if (!h || h->spi == 0 || h->spi == 0xFFFF ||
        !std::equal(cfg_.iv_fixed.begin(), cfg_.iv_fixed.end(), h->iv.begin())) {
        ++c_.bad_frames;
        return security_status::bad_frame;
    }
    security_association* sa = find(h->spi);
    if (sa != nullptr && sa->state == sa_state::destroyed && sa->key_id != h->key_id &&
        used_keys_.count(h->key_id) == 0) {
        sa = nullptr;  // SPI recycled with a fresh key
    }
    bool fresh = false;
    if (sa == nullptr) {
        sa = create(h->spi, h->key_id);
        if (sa == nullptr) {
            ++c_.unknown_spi;
            return security_status::unknown_spi;
        }
        fresh = true;
    }
    if (sa->state == sa_state::destroyed) {
        ++c_.stale_spi;
        return security_status::replay;
    }
    if (sa->key_id != h->key_id) {
        ++c_.auth_failures;
        return security_status::auth_failed;
    }
    const std::uint64_t counter = h->counter();
    if (!sa->replay_ok(counter)) {
        ++c_.replays;
        return security_status::replay;
    }
    auto parts = split(L, frame);
    if (!sa->gcm.open(h->iv, parts.aad, parts.data, sa->mode != sdls_mode::auth_only, parts.tag,
                      sa->mode != sdls_mode::enc_only)) {
        ++c_.auth_failures;
        if (fresh || (!sa->any_received && sa->state == sa_state::preactive)) {
            // A forged header must not burn a key ID that the real transmitter will use later.
            used_keys_.erase(sa->key_id);
            std::erase_if(sas_, [&](const auto& s) { return s.get() == sa; });
        }
        return security_status::auth_failed;
    }
    sa->replay_mark(counter);
    ++c_.frames;
    if (sa->state == sa_state::preactive) {
        bool had_active = false;
        for (auto& other : sas_) {
            if (other.get() != sa && other->state == sa_state::active) {
                other->state = sa_state::deactivated;
                had_active = true;
            }
        }
        sa->state = sa_state::active;
        accepted_under_active_ = 0;
        if (had_active) {
            ++c_.rotations;
        }
    }
    if (sa->state == sa_state::active && ++accepted_under_active_ >= cfg_.grace_frames) {
        for (auto& other : sas_) {
            if (other->state == sa_state::deactivated) {
                other->gcm.clear();
                other->state = sa_state::destroyed;
            }
        }
    }
    if (h->next_spi != 0 && h->next_spi != 0xFFFF && h->next_spi != sa->spi) {
        security_association* n = find(h->next_spi);
        if (n == nullptr || (n->state == sa_state::destroyed && n->key_id != h->next_key_id)) {
            // Fetch the announced key now so the switch frame finds it ready; retried on the next
            // announcing frame if the key source does not have it yet.
            if (used_keys_.count(h->next_key_id) == 0) {
                create(h->next_spi, h->next_key_id);
            }
        }
    }
    return security_status::ok;
}

}  // namespace qlink::modem
