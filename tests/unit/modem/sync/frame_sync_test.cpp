// Tests the frame synchroniser: states, tolerance, inversion, slips, chunking, and the SIMD search kernels.
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/frame_sync.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace qlink::modem {
namespace {

constexpr std::size_t frame_bits = 1024;

// A stream of `frames` frames, each: marker + random body; bits 0/1 per byte.
struct test_stream {
    std::vector<std::uint8_t> bits;
    std::vector<std::vector<std::uint8_t>> bodies;
};

test_stream make_stream(std::size_t frames, sync_marker m, std::uint64_t seed, std::size_t lead_bits = 0) {
    std::mt19937_64 rng(seed);
    test_stream s;
    for (std::size_t i = 0; i < lead_bits; ++i) s.bits.push_back(rng() & 1);
    for (std::size_t f = 0; f < frames; ++f) {
        for (unsigned k = 0; k < m.bits; ++k) s.bits.push_back((m.pattern >> (m.bits - 1 - k)) & 1);
        std::vector<std::uint8_t> body(frame_bits);
        for (auto& b : body) b = rng() & 1;
        s.bits.insert(s.bits.end(), body.begin(), body.end());
        s.bodies.push_back(std::move(body));
    }
    return s;
}

std::vector<llr_t> to_soft(const std::vector<std::uint8_t>& bits, llr_t mag = 100) {
    std::vector<llr_t> out(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) out[i] = bit_to_llr(bits[i], mag);
    return out;
}

struct run_output {
    std::vector<std::vector<std::uint8_t>> frames;
    std::vector<sync_frame_info> info;
};

run_output run(frame_synchronizer& fs, const std::vector<llr_t>& soft, std::size_t chunk, std::size_t out_frames = 4) {
    run_output o;
    std::vector<llr_t> out(out_frames * frame_bits);
    std::vector<sync_frame_info> info(out_frames);
    std::size_t pos = 0;
    std::mt19937 rng(7);
    while (pos < soft.size() || false) {
        std::size_t n = chunk ? chunk : 1 + rng() % 3000;
        n = std::min(n, soft.size() - pos);
        auto r = fs.push(std::span<const llr_t>(soft).subspan(pos, n), out, info);
        for (std::size_t f = 0; f < r.frames; ++f) {
            std::vector<std::uint8_t> b(frame_bits);
            for (std::size_t k = 0; k < frame_bits; ++k) b[k] = hard_bit(out[f * frame_bits + k]);
            o.frames.push_back(std::move(b));
            o.info.push_back(info[f]);
        }
        pos += r.consumed;
        if (r.consumed == 0 && !r.output_full) ADD_FAILURE() << "no progress";
        if (r.consumed == 0 && r.frames == 0) break;
    }
    // Drain a pending frame, if any.
    for (int k = 0; k < 2; ++k) {
        auto r = fs.push({}, out, info);
        for (std::size_t f = 0; f < r.frames; ++f) {
            std::vector<std::uint8_t> b(frame_bits);
            for (std::size_t q = 0; q < frame_bits; ++q) b[q] = hard_bit(out[f * frame_bits + q]);
            o.frames.push_back(std::move(b));
            o.info.push_back(info[f]);
        }
    }
    return o;
}

frame_synchronizer::config base_cfg(sync_marker m = asm_tm_32) {
    frame_synchronizer::config c;
    c.marker = m;
    c.frame_bits = frame_bits;
    return c;
}

TEST(frame_sync, finds_frames_after_random_lead_in_any_chunking) {
    const auto s = make_stream(20, asm_tm_32, 1, 777);
    const auto soft = to_soft(s.bits);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{31}, std::size_t{1056}, std::size_t{0}, std::size_t{100000}}) {
        frame_synchronizer fs(base_cfg());
        const auto o = run(fs, soft, chunk, chunk == 1 ? 1 : 3);
        // The last frame is emitted only once its body is complete: all 20 come out.
        ASSERT_EQ(o.frames.size(), 20u) << "chunk " << chunk;
        for (std::size_t f = 0; f < 20; ++f) EXPECT_EQ(o.frames[f], s.bodies[f]) << "frame " << f;
        EXPECT_EQ(o.info[0].state, sync_state::check);
        EXPECT_EQ(o.info[1].state, sync_state::lock);
        EXPECT_EQ(o.info[0].stream_bit, 777u + 32u);
        EXPECT_EQ(fs.counters().markers_found, 1u);
        EXPECT_EQ(fs.counters().check_to_lock, 1u);
        EXPECT_EQ(fs.state(), sync_state::lock);
    }
}

TEST(frame_sync, both_markers_work) {
    for (sync_marker m : {asm_tm_32, asm_ldpc_64}) {
        const auto s = make_stream(5, m, 2, 100);
        frame_synchronizer fs(base_cfg(m));
        const auto o = run(fs, to_soft(s.bits), 500);
        ASSERT_EQ(o.frames.size(), 5u);
        EXPECT_EQ(o.frames[4], s.bodies[4]);
    }
}

TEST(frame_sync, marker_error_tolerance_search_vs_lock) {
    auto s = make_stream(6, asm_tm_32, 3, 50);
    // 3 errors in the first marker: above search tolerance 2 -> skipped.
    for (std::size_t k : {0u, 5u, 9u}) s.bits[50 + k] ^= 1;
    // 4 errors in the fourth marker: within lock tolerance 5 -> still good.
    const std::size_t m4 = 50 + 3 * (32 + frame_bits);
    for (std::size_t k : {1u, 2u, 20u, 30u}) s.bits[m4 + k] ^= 1;
    frame_synchronizer fs(base_cfg());
    const auto o = run(fs, to_soft(s.bits), 300);
    ASSERT_EQ(o.frames.size(), 5u);
    EXPECT_EQ(o.frames[0], s.bodies[1]);
    EXPECT_EQ(o.info[2].marker_errors, 4);
    EXPECT_EQ(o.info[2].state, sync_state::lock);
    EXPECT_EQ(fs.counters().lock_to_flywheel, 0u);
    EXPECT_EQ(fs.counters().marker_bit_errors, 4u);
}

TEST(frame_sync, inverted_stream_is_corrected) {
    auto s = make_stream(8, asm_tm_32, 4, 10);
    auto soft = to_soft(s.bits);
    for (auto& v : soft) v = static_cast<llr_t>(-v);
    frame_synchronizer fs(base_cfg());
    const auto o = run(fs, soft, 0);
    ASSERT_EQ(o.frames.size(), 8u);
    for (std::size_t f = 0; f < 8; ++f) EXPECT_EQ(o.frames[f], s.bodies[f]);
    EXPECT_TRUE(o.info[3].inverted);
    EXPECT_TRUE(fs.inverted());
    EXPECT_EQ(fs.counters().inversions, 1u);
}

TEST(frame_sync, polarity_flip_mid_stream_is_followed) {
    auto s = make_stream(10, asm_tm_32, 5, 0);
    auto soft = to_soft(s.bits);
    const std::size_t flip_at = 5 * (32 + frame_bits);  // just before the sixth marker
    for (std::size_t i = flip_at; i < soft.size(); ++i) soft[i] = static_cast<llr_t>(-soft[i]);
    frame_synchronizer fs(base_cfg());
    const auto o = run(fs, soft, 0);
    ASSERT_EQ(o.frames.size(), 10u);
    for (std::size_t f = 0; f < 10; ++f) EXPECT_EQ(o.frames[f], s.bodies[f]) << f;
    EXPECT_EQ(fs.counters().inversions, 1u);
    EXPECT_EQ(fs.counters().lock_to_flywheel, 0u);
}

TEST(frame_sync, recovers_after_deleted_and_inserted_bits) {
    for (int delta : {-1, +1, -7, +13}) {
        auto s = make_stream(12, asm_tm_32, 6, 0);
        const std::size_t at = 4 * (32 + frame_bits) + 500;  // inside the body of frame 4
        if (delta < 0)
            s.bits.erase(s.bits.begin() + static_cast<std::ptrdiff_t>(at),
                         s.bits.begin() + static_cast<std::ptrdiff_t>(at) - delta);
        else
            s.bits.insert(s.bits.begin() + static_cast<std::ptrdiff_t>(at), static_cast<std::size_t>(delta), 1);
        frame_synchronizer fs(base_cfg());
        const auto o = run(fs, to_soft(s.bits), 0);
        // Frames 0-3 intact, frame 4 damaged, frames 6.. recovered by the flywheel search.
        std::size_t matched = 0;
        for (const auto& f : o.frames)
            for (std::size_t b = 0; b < 12; ++b) matched += (b != 4 && f == s.bodies[b]);
        EXPECT_GE(matched, 10u) << "delta " << delta;
        EXPECT_EQ(o.frames.back(), s.bodies.back());
        EXPECT_EQ(fs.counters().lock_to_flywheel, 1u);
        EXPECT_EQ(fs.counters().flywheel_resync, 1u);
        EXPECT_EQ(fs.counters().flywheel_to_search, 0u);
        EXPECT_EQ(fs.state(), sync_state::lock);
    }
}

TEST(frame_sync, flywheel_then_loss_then_reacquire) {
    auto s = make_stream(14, asm_tm_32, 7, 0);
    // Wipe out markers 3..7 (5 markers): flywheel_count 3 -> sync lost, then found again.
    for (std::size_t f = 3; f <= 7; ++f)
        for (unsigned k = 0; k < 32; ++k) s.bits[f * (32 + frame_bits) + k] = (k % 3) == 0;
    auto cfg = base_cfg();
    cfg.flywheel_count = 3;
    frame_synchronizer fs(cfg);
    const auto o = run(fs, to_soft(s.bits), 0);
    const auto& c = fs.counters();
    EXPECT_EQ(c.lock_to_flywheel, 1u);
    EXPECT_EQ(c.flywheel_to_search, 1u);
    EXPECT_EQ(c.markers_found, 2u);
    // 0..2 locked, 3..5 flywheel (correct position, still emitted), 8.. after reacquisition.
    ASSERT_GE(o.frames.size(), 6u + 6u);
    EXPECT_TRUE(o.info[3].flywheel);
    EXPECT_EQ(o.frames[4], s.bodies[4]);
    EXPECT_EQ(o.frames.back(), s.bodies.back());
}

TEST(frame_sync, hard_hits_with_confident_errors_are_rejected_softly) {
    // Decoys: the marker with 2 hard errors (within search tolerance) that are
    // very confident, while the agreeing bits are weak. Then the real thing.
    auto s = make_stream(3, asm_tm_32, 8, 0);
    std::vector<llr_t> soft;
    for (int decoy = 0; decoy < 5; ++decoy) {
        for (int k = 0; k < 200; ++k) soft.push_back(static_cast<llr_t>(k % 2 ? 1 : -1));
        for (unsigned k = 0; k < 32; ++k) {
            std::uint8_t b = (asm_tm_32.pattern >> (31 - k)) & 1;
            const bool wrong = k == 3 || k == 17;
            soft.push_back(bit_to_llr(static_cast<std::uint8_t>(b ^ (wrong ? 1 : 0)), wrong ? 127 : 3));
        }
    }
    for (int k = 0; k < 200; ++k) soft.push_back(static_cast<llr_t>(k % 2 ? 1 : -1));
    const auto real = to_soft(s.bits);
    soft.insert(soft.end(), real.begin(), real.end());
    frame_synchronizer fs(base_cfg());
    const auto o = run(fs, soft, 0);
    EXPECT_EQ(fs.counters().search_rejected, 5u);
    EXPECT_EQ(fs.counters().markers_found, 1u);
    ASSERT_EQ(o.frames.size(), 3u);
    EXPECT_EQ(o.frames[0], s.bodies[0]);
}

TEST(frame_sync, bad_configuration_is_rejected) {
    auto c = base_cfg();
    c.frame_bits = 0;
    EXPECT_THROW(frame_synchronizer{c}, std::invalid_argument);
    c = base_cfg();
    c.marker.bits = 65;
    EXPECT_THROW(frame_synchronizer{c}, std::invalid_argument);
    c = base_cfg();
    c.lock_tolerance = 16;
    EXPECT_THROW(frame_synchronizer{c}, std::invalid_argument);
    c = base_cfg();
    c.isa = "neon";
    EXPECT_THROW(frame_synchronizer{c}, std::invalid_argument);
}

TEST(frame_sync, tiny_output_buffers_never_overflow) {
    const auto s = make_stream(3, asm_tm_32, 9, 5);
    frame_synchronizer fs(base_cfg());
    std::vector<llr_t> out(frame_bits - 1);  // not even one frame
    std::vector<sync_frame_info> info(1);
    auto soft = to_soft(s.bits);
    auto r = fs.push(soft, out, info);
    EXPECT_TRUE(r.output_full);
    EXPECT_EQ(r.frames, 0u);
    EXPECT_LT(r.consumed, soft.size());
    r = fs.push({}, {}, {});
    EXPECT_EQ(r.frames, 0u);
}

class marker_kernel : public ::testing::TestWithParam<isa> {};

TEST_P(marker_kernel, matches_generic_bit_for_bit) {
    const auto kernel = create_marker_search_kernel(to_string(GetParam()));
    const auto ref = create_marker_search_kernel("generic");
    std::mt19937_64 rng(10);
    for (int trial = 0; trial < 300; ++trial) {
        const sync_marker m = trial % 2 ? asm_ldpc_64 : asm_tm_32;
        std::vector<llr_t> soft(rng() % 3000);
        for (auto& v : soft) v = static_cast<llr_t>(static_cast<int>(rng() % 256) - 128);
        // Plant markers with a few errors, some inverted.
        for (int p = 0; p < 4 && soft.size() > 100; ++p) {
            const std::size_t at = rng() % (soft.size() - m.bits);
            const bool inv = rng() & 1;
            for (unsigned k = 0; k < m.bits; ++k) {
                std::uint8_t b = ((m.pattern >> (m.bits - 1 - k)) & 1) ^ (inv ? 1 : 0);
                if (rng() % 16 == 0) b ^= 1;
                soft[at + k] = bit_to_llr(b, static_cast<llr_t>(1 + rng() % 127));
            }
        }
        const unsigned tol = static_cast<unsigned>(rng() % 5);
        const bool inv = rng() & 1;
        std::uint64_t wa = rng(), wb = wa;
        std::size_t pos = 0;
        while (pos <= soft.size()) {
            const auto span = std::span<const llr_t>(soft).subspan(pos);
            const std::size_t a = kernel->find(span, wa, m, tol, inv);
            const std::size_t b = ref->find(span, wb, m, tol, inv);
            ASSERT_EQ(a, b) << "trial " << trial;
            ASSERT_EQ(wa, wb);
            pos += a + 1;
        }
    }
}

INSTANTIATE_TEST_SUITE_P(isas, marker_kernel, ::testing::ValuesIn(supported_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });


class hard_kernel : public ::testing::TestWithParam<isa> {};

// Every ISA against the definition (bit = llr < 0, or llr > 0 inverted), over the whole int8 range
// (-128 and 0 included), odd lengths and offsets; bytes past ceil(n / 8) are untouched.
TEST_P(hard_kernel, matches_the_definition_bit_for_bit) {
    const auto kernel = create_hard_decision_kernel(to_string(GetParam()));
    const auto generic = create_hard_decision_kernel("generic");
    std::mt19937_64 rng(11);
    for (int trial = 0; trial < 400; ++trial) {
        std::vector<llr_t> soft(rng() % 700);
        for (auto& v : soft) v = static_cast<llr_t>(static_cast<int>(rng() % 256) - 128);
        if (trial % 3 == 0)
            for (auto& v : soft) v = static_cast<llr_t>(static_cast<int>(rng() % 5) - 2);  // many erasures
        const std::size_t off = soft.empty() ? 0 : rng() % std::min<std::size_t>(soft.size(), 40);
        const auto in = std::span<const llr_t>(soft).subspan(off);
        const bool inv = trial & 1;
        const std::size_t bytes = (in.size() + 7) / 8;
        std::vector<std::uint8_t> want(bytes + 3, 0xA5), got(bytes + 3, 0xA5), gen(bytes + 3, 0xA5);
        for (std::size_t i = 0; i < bytes; ++i) want[i] = 0;
        for (std::size_t i = 0; i < in.size(); ++i)
            if (inv ? in[i] > 0 : in[i] < 0) want[i / 8] |= static_cast<std::uint8_t>(0x80 >> (i % 8));
        kernel->pack(in, std::span(got).first(bytes), inv);
        generic->pack(in, std::span(gen).first(bytes), inv);
        ASSERT_EQ(got, want) << "trial " << trial << " n " << in.size() << " inverted " << inv;
        ASSERT_EQ(gen, want) << "trial " << trial;
        if (!inv && in.size() % 8 == 0) {
            std::vector<std::uint8_t> legacy(bytes);
            pack_hard_decisions(in, legacy);
            ASSERT_TRUE(std::equal(legacy.begin(), legacy.end(), got.begin()));
        }
    }
    // A short output bounds what is written.
    std::vector<llr_t> soft(100, -5);
    std::vector<std::uint8_t> out(4, 0);
    kernel->pack(soft, std::span(out).first(3), false);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0xFF, 0xFF, 0xFF, 0x00}));
    EXPECT_THROW(create_hard_decision_kernel("neon"), std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(isas, hard_kernel, ::testing::ValuesIn(supported_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });

class packed_output : public ::testing::TestWithParam<isa> {};

// push_packed gives the packed hard decisions of what push gives, frame for frame, through
// slips, a polarity flip, noise and any chunking (direct packing and the buffered path both run).
TEST_P(packed_output, equals_packing_the_soft_output) {
    auto s = make_stream(40, asm_tm_32, 21, 77);
    auto soft = to_soft(s.bits);
    std::mt19937_64 rng(22);
    for (auto& v : soft)
        if (rng() % 50 == 0) v = static_cast<llr_t>(static_cast<int>(rng() % 255) - 127);
    soft.erase(soft.begin() + 9000, soft.begin() + 9003);
    soft.insert(soft.begin() + 20000, 5, llr_t{0});
    for (std::size_t i = 30000; i < soft.size(); ++i) soft[i] = static_cast<llr_t>(-soft[i]);
    for (const std::size_t chunk : {std::size_t{0}, std::size_t{100}, std::size_t{5000}, std::size_t{1 << 20}}) {
        auto c = base_cfg();
        c.isa = to_string(GetParam());
        frame_synchronizer a(c), b(c);
        const auto ref = run(a, soft, chunk, 8);
        std::vector<std::vector<std::uint8_t>> frames;
        std::vector<sync_frame_info> infos;
        std::vector<std::uint8_t> out(3 * frame_bits / 8);
        std::vector<sync_frame_info> info(3);
        std::mt19937 crng(7);
        auto collect = [&](const sync_result& r) {
            ASSERT_TRUE(r.ok);
            for (std::size_t f = 0; f < r.frames; ++f) {
                std::vector<std::uint8_t> bits(frame_bits);
                for (std::size_t k = 0; k < frame_bits; ++k) bits[k] = (out[f * frame_bits / 8 + k / 8] >> (7 - k % 8)) & 1;
                frames.push_back(std::move(bits));
                infos.push_back(info[f]);
            }
        };
        for (std::size_t pos = 0; pos < soft.size();) {
            std::size_t n = chunk ? chunk : 1 + crng() % 3000;
            n = std::min(n, soft.size() - pos);
            const auto r = b.push_packed(std::span<const llr_t>(soft).subspan(pos, n), out, info);
            collect(r);
            pos += r.consumed;
            if (r.consumed == 0 && r.frames == 0) break;
        }
        for (int k = 0; k < 2; ++k) collect(b.push_packed({}, out, info));
        ASSERT_EQ(frames.size(), ref.frames.size()) << "chunk " << chunk;
        EXPECT_GE(frames.size(), 30u);
        for (std::size_t f = 0; f < frames.size(); ++f) {
            ASSERT_EQ(frames[f], ref.frames[f]) << "chunk " << chunk << " frame " << f;
            EXPECT_EQ(infos[f].stream_bit, ref.info[f].stream_bit);
            EXPECT_EQ(infos[f].inverted, ref.info[f].inverted);
            EXPECT_EQ(infos[f].state, ref.info[f].state);
        }
        EXPECT_EQ(a.counters().inversions, b.counters().inversions);
        EXPECT_GE(b.counters().inversions, 1u);
    }
    auto c = base_cfg();
    c.frame_bits = 1001;
    frame_synchronizer odd(c);
    std::vector<std::uint8_t> out(1000);
    std::vector<sync_frame_info> info(4);
    const auto r = odd.push_packed(soft, out, info);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.consumed, 0u);
}

INSTANTIATE_TEST_SUITE_P(isas, packed_output, ::testing::ValuesIn(supported_isas()),
                         [](const auto& p) { return std::string(to_string(p.param)); });

}  // namespace
}  // namespace qlink::modem
