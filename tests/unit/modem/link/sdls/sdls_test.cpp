// SDLS: NIST GCM vectors (engine and frame path), tampering, anti-replay, modes, key rotation and exhaustion.
#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/sdls.hpp"
#include "qlink/modem/space_packet.hpp"

#include <openssl/evp.h>

#include <gtest/gtest.h>

#include <random>
#include <string>

#ifndef QLINK_SDLS_STRESS_FRAMES
#define QLINK_SDLS_STRESS_FRAMES 1000000
#endif

using namespace qlink::modem;

namespace {

std::vector<std::uint8_t> hex(const std::string& s)
{
    std::vector<std::uint8_t> v;
    for (std::size_t i = 0; i + 1 < s.size(); i += 2) {
        v.push_back(static_cast<std::uint8_t>(std::stoul(s.substr(i, 2), nullptr, 16)));
    }
    return v;
}

std::array<std::uint8_t, 32> key_of(std::uint32_t id)
{
    std::array<std::uint8_t, 32> k{};
    std::mt19937_64 rng(0x5EC0000 + id);
    for (auto& b : k) {
        b = static_cast<std::uint8_t>(rng());
    }
    return k;
}

void fill_keys(memory_key_source& s, std::uint32_t first, std::uint32_t n)
{
    for (std::uint32_t i = 0; i < n; ++i) {
        const auto k = key_of(first + i);
        s.add(first + i, k);
    }
}

/// Independent AES-256-GCM (OpenSSL one-shot, fresh context): the peer our engine is checked against.
std::vector<std::uint8_t> openssl_gcm_tag(std::span<const std::uint8_t> key, std::span<const std::uint8_t> iv,
                                          std::span<const std::uint8_t> aad, std::span<const std::uint8_t> pt,
                                          std::vector<std::uint8_t>& ct)
{
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    int len = 0;
    ct.assign(pt.size(), 0);
    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key.data(), iv.data());
    if (!aad.empty()) {
        EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size()));
    }
    if (!pt.empty()) {
        EVP_EncryptUpdate(c, ct.data(), &len, pt.data(), static_cast<int>(pt.size()));
    }
    std::uint8_t fin[16];
    EVP_EncryptFinal_ex(c, fin, &len);
    std::vector<std::uint8_t> tag(16);
    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, tag.data());
    EVP_CIPHER_CTX_free(c);
    return tag;
}

struct nist_case {
    const char* name;
    std::string key, iv, pt, aad, ct, tag;
};

// The AES-256 cases (13-16) of McGrew & Viega, "The Galois/Counter Mode of Operation", appendix B.
const std::string k0(64, '0');
const std::string kf = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
const std::string p15 = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
                        "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
const std::string c15 = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
                        "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
const nist_case nist[] = {
    {"tc13", k0, std::string(24, '0'), "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
    {"tc14", k0, std::string(24, '0'), std::string(32, '0'), "", "cea7403d4d606b6e074ec5d3baf39d18",
     "d0d1c8a799996bf0265b98b5d48ab919"},
    {"tc15", kf, "cafebabefacedbaddecaf888", p15, "", c15, "b094dac5d93471bdec1a502270e3cc6c"},
    {"tc16", kf, "cafebabefacedbaddecaf888", p15.substr(0, 120), "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     c15.substr(0, 120), "76fc6ece0f4e1768cddf8853bb2d551b"},
};

struct sec_pair {
    aos_layout layout;
    memory_key_source tx_keys, rx_keys;
    sdls_transmitter::config tcfg;
    sdls_receiver::config rcfg;
};

}  // namespace

TEST(sdls_gcm, nist_vectors_through_engine)
{
    for (const auto& t : nist) {
        SCOPED_TRACE(t.name);
        const auto key = hex(t.key), iv = hex(t.iv), pt = hex(t.pt), aad = hex(t.aad), ct = hex(t.ct), tag = hex(t.tag);
        gcm_engine g;
        g.set_key(std::span<const std::uint8_t, 32>(key.data(), 32));
        auto data = pt;
        std::array<std::uint8_t, 16> out_tag{};
        ASSERT_TRUE(g.seal(std::span<const std::uint8_t, 12>(iv.data(), 12), aad, data, true, out_tag));
        EXPECT_EQ(data, ct);
        EXPECT_EQ(std::vector<std::uint8_t>(out_tag.begin(), out_tag.end()), tag);
        ASSERT_TRUE(g.open(std::span<const std::uint8_t, 12>(iv.data(), 12), aad, data, true, out_tag, true));
        EXPECT_EQ(data, pt);
        out_tag[0] ^= 1;
        EXPECT_FALSE(g.open(std::span<const std::uint8_t, 12>(iv.data(), 12), aad, data, true, out_tag, true));
    }
}

TEST(sdls_frame, nist_tc15_through_frame_path)
{
    // A data field of exactly 64 bytes: 6 + 26 + 64 + 16 + 2.
    const aos_layout layout = sdls_layout(aos_layout{114, 0, 0, 0, true});
    ASSERT_EQ(layout.data_field_length(), 64u);
    const auto key = hex(kf), pt = hex(p15), ct = hex(c15);
    memory_key_source tx_keys, rx_keys;
    tx_keys.add(9, std::span<const std::uint8_t, 32>(key.data(), 32));
    rx_keys.add(9, std::span<const std::uint8_t, 32>(key.data(), 32));
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.iv_fixed = {0xca, 0xfe, 0xba, 0xbe};
    tc.first_counter = 0xfacedbaddecaf888ull;
    sdls_transmitter tx(tc, tx_keys);
    std::vector<std::uint8_t> frame(114, 0);
    aos_header h;
    h.spacecraft_id = 0x11;
    h.vcid = 2;
    write_aos_header(h, frame);
    std::copy(pt.begin(), pt.end(), frame.begin() + 32);
    ASSERT_EQ(tx.protect(frame), security_status::ok);
    EXPECT_EQ(std::vector<std::uint8_t>(frame.begin() + 32, frame.begin() + 96), ct);
    // The tag is GCM over AAD = primary header ‖ security header, checked against OpenSSL one-shot.
    std::vector<std::uint8_t> ct2;
    const auto tag = openssl_gcm_tag(key, hex("cafebabefacedbaddecaf888"), std::span(frame).first(32), pt, ct2);
    EXPECT_EQ(ct2, ct);
    EXPECT_EQ(std::vector<std::uint8_t>(frame.begin() + 96, frame.begin() + 112), tag);
    const auto sh = parse_sdls_header(std::span(frame).subspan(6));
    ASSERT_TRUE(sh);
    EXPECT_EQ(sh->key_id, 9u);
    EXPECT_EQ(sh->spi, 1u);
    EXPECT_EQ(sh->counter(), 0xfacedbaddecaf888ull);

    sdls_receiver::config rc;
    rc.layout = layout;
    rc.iv_fixed = {0xca, 0xfe, 0xba, 0xbe};
    sdls_receiver rx(rc, rx_keys);
    ASSERT_EQ(rx.verify(frame), security_status::ok);
    EXPECT_EQ(std::vector<std::uint8_t>(frame.begin() + 32, frame.begin() + 96), pt);
    EXPECT_EQ(rx.state_of(1), sa_state::active);
}

TEST(sdls_frame, any_tampered_byte_is_rejected)
{
    const aos_layout layout = sdls_layout(aos_layout{100, 4, 0, 0, true});  // with an insert zone
    memory_key_source tk, rk;
    fill_keys(tk, 1, 3);
    fill_keys(rk, 1, 3);
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.announce_frames = 4;
    tc.max_frames_per_key = 4;  // the frame below carries an announcement
    sdls_transmitter tx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver rx(rc, rk);
    std::mt19937_64 rng(3);
    std::vector<std::uint8_t> frame(100);
    for (auto& b : frame) {
        b = static_cast<std::uint8_t>(rng());
    }
    write_aos_header(aos_header{}, frame);
    const std::vector<std::uint8_t> plain = frame;
    ASSERT_EQ(tx.protect(frame), security_status::ok);
    ASSERT_NE(parse_sdls_header(std::span(frame).subspan(10))->next_spi, 0);
    const std::vector<std::uint8_t> sealed = frame;
    for (std::size_t i = 0; i + aos_fecf_length < frame.size(); ++i) {
        for (std::uint8_t flip : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
            auto bad = sealed;
            bad[i] ^= flip;
            EXPECT_NE(rx.verify(bad), security_status::ok) << "byte " << i;
        }
    }
    // Truncated and extended frames.
    auto shorter = sealed;
    shorter.pop_back();
    EXPECT_EQ(rx.verify(shorter), security_status::bad_frame);
    EXPECT_EQ(rx.counters().frames, 0u);
    // The untouched frame still passes: the rejections above were the tampering, not state.
    frame = sealed;
    ASSERT_EQ(rx.verify(frame), security_status::ok);
    EXPECT_TRUE(std::equal(plain.begin() + 36, plain.begin() + 82, frame.begin() + 36));
    EXPECT_GT(rx.counters().auth_failures, 100u);
}

TEST(sdls_frame, replay_and_window)
{
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    memory_key_source tk, rk;
    fill_keys(tk, 1, 1);
    fill_keys(rk, 1, 1);
    sdls_transmitter tx({layout}, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    rc.replay_window = 64;
    sdls_receiver rx(rc, rk);
    std::vector<std::vector<std::uint8_t>> frames(200, std::vector<std::uint8_t>(64, 0));
    for (auto& f : frames) {
        write_aos_header(aos_header{}, f);
        ASSERT_EQ(tx.protect(f), security_status::ok);
    }
    auto v = [&](std::size_t i) {
        auto f = frames[i];
        return rx.verify(f);
    };
    for (std::size_t i = 0; i < 100; ++i) {
        ASSERT_EQ(v(i), security_status::ok);
    }
    EXPECT_EQ(v(50), security_status::replay);
    EXPECT_EQ(v(99), security_status::replay);
    EXPECT_EQ(v(150), security_status::ok);
    EXPECT_EQ(v(120), security_status::ok);      // 30 behind: inside the window, not seen yet
    EXPECT_EQ(v(120), security_status::replay);  // now seen
    EXPECT_EQ(v(199), security_status::ok);
    EXPECT_EQ(v(135), security_status::replay);  // 64 behind: outside the window, never seen
    EXPECT_EQ(v(136), security_status::ok);      // 63 behind: inside
    EXPECT_EQ(rx.counters().replays, 4u);
}

TEST(sdls_frame, auth_only_and_enc_only_modes)
{
    const aos_layout layout = sdls_layout(aos_layout{80, 0, 0, 0, true});
    for (sdls_mode mode : {sdls_mode::auth_only, sdls_mode::enc_only}) {
        memory_key_source tk, rk;
        fill_keys(tk, 1, 1);
        fill_keys(rk, 1, 1);
        sdls_transmitter::config tc;
        tc.layout = layout;
        tc.mode = mode;
        sdls_transmitter tx(tc, tk);
        sdls_receiver::config rc;
        rc.layout = layout;
        rc.mode = mode;
        sdls_receiver rx(rc, rk);
        std::vector<std::uint8_t> f(80, 0x33);
        write_aos_header(aos_header{}, f);
        const auto plain = f;
        ASSERT_EQ(tx.protect(f), security_status::ok);
        const bool data_clear = std::equal(f.begin() + 32, f.begin() + 62, plain.begin() + 32);
        const bool tag_zero = std::all_of(f.begin() + 62, f.begin() + 78, [](auto b) { return b == 0; });
        if (mode == sdls_mode::auth_only) {
            EXPECT_TRUE(data_clear);
            EXPECT_FALSE(tag_zero);
            auto bad = f;
            bad[40] ^= 4;
            EXPECT_EQ(rx.verify(bad), security_status::auth_failed);
        } else {
            EXPECT_FALSE(data_clear);
            EXPECT_TRUE(tag_zero);
        }
        ASSERT_EQ(rx.verify(f), security_status::ok);
        EXPECT_TRUE(std::equal(f.begin() + 32, f.begin() + 62, plain.begin() + 32));
    }
}

/// 10^6 frames across 100 key rotations with random loss, local
/// reordering and bursts long enough to lose every announcement of a rotation: every frame that
/// arrives is accepted and decrypts to what was sent.
TEST(sdls_rotation, hitless_under_loss_and_reordering)
{
    const std::size_t n = QLINK_SDLS_STRESS_FRAMES;
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    const std::size_t df = layout.data_field_length();
    memory_key_source tk, rk;
    fill_keys(tk, 100, 110);
    fill_keys(rk, 100, 110);
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.max_frames_per_key = n / 100;
    tc.announce_frames = 16;
    tc.iv_fixed = {1, 2, 3, 4};
    sdls_transmitter tx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    rc.iv_fixed = tc.iv_fixed;
    sdls_receiver rx(rc, rk);
    std::mt19937_64 rng(2024);
    auto payload = [&](std::size_t i, std::span<std::uint8_t> out) {
        std::uint64_t x = i * 0x9E3779B97F4A7C15ull;
        for (auto& b : out) {
            x ^= x >> 29;
            x *= 0xBF58476D1CE4E5B9ull;
            b = static_cast<std::uint8_t>(x >> 56);
        }
    };
    std::vector<std::uint8_t> frame(64), held(64), expect(df);
    bool holding = false;
    std::size_t held_index = 0, arrived = 0, ok = 0, wrong = 0, burst = 0;
    auto deliver = [&](std::vector<std::uint8_t>& f, std::size_t index) {
        ++arrived;
        if (rx.verify(f) == security_status::ok) {
            ++ok;
            payload(index, expect);
            wrong += !std::equal(expect.begin(), expect.end(), f.begin() + static_cast<std::ptrdiff_t>(layout.data_field_offset()));
        }
    };
    for (std::size_t i = 0; i < n; ++i) {
        write_aos_header(aos_header{}, frame);
        payload(i, std::span(frame).subspan(layout.data_field_offset(), df));
        ASSERT_EQ(tx.protect(frame), security_status::ok) << i;
        if (burst > 0) {
            --burst;
            continue;
        }
        const auto roll = rng() % 1000;
        if (roll < 50) {
            continue;  // 5 % random loss
        }
        if (roll < 52) {
            burst = 20;  // longer than the announcement: every announcing frame may be lost
            continue;
        }
        if (roll < 70 && !holding) {
            held = frame;  // deliver one frame late, after the next one
            held_index = i;
            holding = true;
            continue;
        }
        deliver(frame, i);
        if (holding) {
            deliver(held, held_index);
            holding = false;
        }
    }
    EXPECT_EQ(wrong, 0u);
    EXPECT_EQ(ok, arrived) << "auth " << rx.counters().auth_failures << " replay " << rx.counters().replays
                           << " unknown " << rx.counters().unknown_spi << " stale " << rx.counters().stale_spi;
    EXPECT_GE(tx.counters().rotations, 99u);
    EXPECT_GE(rx.counters().rotations, 99u);
    EXPECT_EQ(tx.counters().keys_exhausted, 0u);
}

TEST(sdls_rotation, keys_exhausted_stop_and_fallback_never_reuse)
{
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    std::vector<std::uint8_t> f(64, 0);
    for (auto policy : {key_exhaustion_policy::stop, key_exhaustion_policy::fallback}) {
        memory_key_source tk, fb, rk, rfb;
        fill_keys(tk, 1, 2);
        fill_keys(rk, 1, 2);
        fill_keys(fb, 1000, 1);
        fill_keys(rfb, 1000, 1);
        std::vector<std::string> alarms;
        sdls_transmitter::config tc;
        tc.layout = layout;
        tc.max_frames_per_key = 10;
        tc.announce_frames = 2;
        tc.policy = policy;
        tc.fallback = &fb;
        tc.alarm = [&](std::string_view m) { alarms.emplace_back(m); };
        sdls_transmitter tx(tc, tk);
        sdls_receiver::config rc;
        rc.layout = layout;
        rc.fallback = &rfb;
        sdls_receiver rx(rc, rk);
        std::size_t sent = 0;
        for (int i = 0; i < 40; ++i) {
            write_aos_header(aos_header{}, f);
            const auto st = tx.protect(f);
            if (st == security_status::ok) {
                ++sent;
                ASSERT_EQ(rx.verify(f), security_status::ok);
            } else {
                EXPECT_EQ(st, security_status::keys_exhausted);
            }
        }
        if (policy == key_exhaustion_policy::stop) {
            EXPECT_EQ(sent, 20u);
            EXPECT_EQ(tx.counters().keys_exhausted, 20u);
            ASSERT_EQ(alarms.size(), 1u);
            EXPECT_NE(alarms[0].find("STOPPED"), std::string::npos);
        } else {
            EXPECT_EQ(sent, 30u);
            EXPECT_EQ(tx.counters().fallback_keys, 1u);
            EXPECT_EQ(tx.current_key_id(), 1000u);
            EXPECT_EQ(alarms.size(), 2u);  // fallback used, then stopped
        }
    }
    // A source that offers the same key ID twice is refused, not trusted.
    struct repeating_source final : link_key_source {
        std::optional<std::uint32_t> next_key(std::span<std::uint8_t, 32> k) override
        {
            std::fill(k.begin(), k.end(), std::uint8_t{7});
            return 5;
        }
        bool key_by_id(std::uint32_t, std::span<std::uint8_t, 32>) override { return false; }
    } rep;
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.max_frames_per_key = 3;
    tc.announce_frames = 1;
    sdls_transmitter tx(tc, rep);
    std::size_t sent = 0;
    for (int i = 0; i < 10; ++i) {
        sent += tx.protect(f) == security_status::ok;
    }
    EXPECT_EQ(sent, 3u);
    EXPECT_GT(tx.counters().key_reuse_refused, 0u);
}

TEST(sdls_rotation, time_based_with_injected_clock)
{
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    memory_key_source tk, rk;
    fill_keys(tk, 1, 3);
    fill_keys(rk, 1, 3);
    std::int64_t now = 0;
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.rotation_period_ms = 1000;
    tc.clock_ms = [&] { return now; };
    tc.announce_frames = 4;
    sdls_transmitter tx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver rx(rc, rk);
    std::vector<std::uint8_t> f(64, 0);
    std::vector<std::uint16_t> spis;
    for (int i = 0; i < 20; ++i) {
        now = i * 100;
        write_aos_header(aos_header{}, f);
        ASSERT_EQ(tx.protect(f), security_status::ok);
        ASSERT_EQ(rx.verify(f), security_status::ok);
        spis.push_back(tx.current_spi());
    }
    // Due at t = 1000 (frame 10), announced in frames 10..13, switch at frame 14.
    EXPECT_EQ(spis[13], 1);
    EXPECT_EQ(spis[14], 2);
    EXPECT_EQ(rx.state_of(2), sa_state::active);
    EXPECT_EQ(rx.state_of(1), sa_state::deactivated);
}

TEST(sdls_rotation, a_due_rotation_without_keys_asks_the_source_every_key_retry_frames)
{
    // A key source that counts its calls (qkmd: one socket round trip each) and has one key.
    struct counting_source final : link_key_source {
        memory_key_source inner;
        std::size_t calls = 0;
        std::optional<std::uint32_t> next_key(std::span<std::uint8_t, 32> k) override
        {
            ++calls;
            return inner.next_key(k);
        }
        bool key_by_id(std::uint32_t id, std::span<std::uint8_t, 32> k) override { return inner.key_by_id(id, k); }
    } src;
    fill_keys(src.inner, 1, 1);
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    std::int64_t now = 0;
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.rotation_period_ms = 10;  // due from frame 10 on, and no second key
    tc.clock_ms = [&] { return now; };
    tc.key_retry_frames = 64;
    sdls_transmitter tx(tc, src);
    std::vector<std::uint8_t> f(64, 0);
    for (int i = 0; i < 1000; ++i) {
        now = i;
        write_aos_header(aos_header{}, f);
        ASSERT_EQ(tx.protect(f), security_status::ok);  // the first key carries on (below the GCM limit)
    }
    // 1 first key + a try at frame 10 and every 64 frames after: 1 + ceil(990 / 64) = 17, not ~990.
    EXPECT_EQ(src.calls, 17u);
    // A key that arrives is taken at the next try and the rotation goes through.
    fill_keys(src.inner, 2, 1);
    for (int i = 1000; i < 1100; ++i) {
        now = i;
        write_aos_header(aos_header{}, f);
        ASSERT_EQ(tx.protect(f), security_status::ok);
    }
    EXPECT_EQ(tx.current_key_id(), 2u);
    EXPECT_EQ(tx.counters().rotations, 1u);
}

TEST(sdls_link, full_pipeline_with_rotation_loss_and_crc_errors)
{
    const aos_layout layout = sdls_layout(aos_layout{256, 0, 0, 0, true});
    memory_key_source tk, rk;
    fill_keys(tk, 1, 200);
    fill_keys(rk, 1, 200);
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.max_frames_per_key = 50;
    sdls_transmitter stx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver srx(rc, rk);
    aos_transmitter tx({layout, 9, {{1, 0}}, true}, &stx);
    std::vector<std::vector<std::uint8_t>> got;
    aos_receiver rx({layout, 9, {1}, 1u << 20},
                    [&](std::uint8_t, std::span<const std::uint8_t> p) {
                        const auto s = inspect_packet(p);
                        got.emplace_back(p.begin() + static_cast<std::ptrdiff_t>(s.header_length), p.end());
                    },
                    &srx);
    std::mt19937_64 rng(5);
    std::vector<std::vector<std::uint8_t>> sent;
    for (int i = 0; i < 2000; ++i) {
        std::vector<std::uint8_t> d(rng() % 700);
        for (auto& b : d) {
            b = static_cast<std::uint8_t>(rng());
        }
        tx.channel(1)->push_datagram(d);
        sent.push_back(std::move(d));
    }
    std::vector<std::uint8_t> frame(256);
    std::uint64_t crc_hits = 0;
    for (;;) {
        const auto r = tx.next_frame(frame);
        ASSERT_EQ(r.status, security_status::ok);
        if (r.idle) {
            break;
        }
        const auto roll = rng() % 100;
        if (roll < 3) {
            continue;
        }
        if (roll < 5) {
            frame[rng() % frame.size()] ^= 0x10;
            ++crc_hits;
        }
        rx.on_frame(frame);
    }
    const auto& c = rx.counters();
    EXPECT_EQ(c.crc_errors, crc_hits);
    EXPECT_EQ(c.security_rejected, 0u);
    EXPECT_GE(srx.counters().rotations, 10u);
    std::size_t k = 0;
    for (const auto& g : got) {
        while (k < sent.size() && sent[k] != g) {
            ++k;
        }
        ASSERT_LT(k, sent.size()) << "a datagram arrived that was never sent";
        ++k;
    }
    EXPECT_GT(got.size(), sent.size() * 3 / 4);
}

TEST(sdls_rotation, every_announcement_lost_receiver_fetches_by_key_id)
{
    const aos_layout layout = sdls_layout(aos_layout{64, 0, 0, 0, true});
    memory_key_source tk, rk;
    fill_keys(tk, 40, 3);
    fill_keys(rk, 40, 3);
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.max_frames_per_key = 10;
    tc.announce_frames = 3;
    sdls_transmitter tx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver rx(rc, rk);
    std::vector<std::uint8_t> f(64, 0);
    for (int i = 0; i < 25; ++i) {
        write_aos_header(aos_header{}, f);
        std::fill(f.begin() + 32, f.begin() + 46, static_cast<std::uint8_t>(i));
        ASSERT_EQ(tx.protect(f), security_status::ok);
        const auto h = parse_sdls_header(std::span(f).subspan(6));
        if (h->next_spi != 0) {
            continue;  // every announcing frame is lost
        }
        ASSERT_EQ(rx.verify(f), security_status::ok) << i;
        EXPECT_TRUE(std::all_of(f.begin() + 32, f.begin() + 46, [&](auto b) { return b == i; }));
    }
    EXPECT_EQ(tx.counters().rotations, 2u);
    EXPECT_EQ(rx.counters().rotations, 2u);
    EXPECT_EQ(rx.state_of(3), sa_state::active);

    // A receiver whose key source lacks the key rejects the frame and says why.
    memory_key_source empty;
    sdls_receiver rx2(rc, empty);
    EXPECT_EQ(rx2.verify(f), security_status::unknown_spi);
    EXPECT_EQ(rx2.counters().unknown_spi, 1u);

    // The GCM invocation limit caps any configured rotation interval.
    tc.max_frames_per_key = 1ull << 40;
    sdls_transmitter big(tc, tk);
    EXPECT_EQ(big.max_frames_per_key(), gcm_max_invocations);
    EXPECT_THROW(sdls_transmitter(sdls_transmitter::config{aos_layout{64, 0, 0, 0, true}}, tk), std::invalid_argument);
}
