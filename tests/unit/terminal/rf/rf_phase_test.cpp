// Tests the unique-word phase resolver: every QPSK/BPSK rotation through the real demodulator is undone from the word on, in-place semantics, flywheel, bad input.
#include "qlink/terminal/rf_phase.hpp"
#include "rf_test_util.hpp"

#include <gtest/gtest.h>

#include <complex>
#include <numbers>
#include <stdexcept>

namespace qlink::terminal {
namespace {

// CCSDS 131.0-B: the 64-bit ASM of the LDPC codes, 0x034776C7272895B0.
std::vector<std::uint8_t> asm64() {
    std::vector<std::uint8_t> w(64);
    const std::uint64_t v = 0x034776C7272895B0ull;
    for (unsigned i = 0; i < 64; ++i) w[i] = static_cast<std::uint8_t>((v >> (63 - i)) & 1);
    return w;
}

/// Frames of (word + random payload) bits.
std::vector<std::uint8_t> framed_bits(std::size_t frames, std::size_t frame_bits, std::uint64_t seed) {
    const auto word = asm64();
    auto bits = test::random_bits(frames * frame_bits, seed);
    for (std::size_t f = 0; f < frames; ++f) std::copy(word.begin(), word.end(), bits.begin() + f * frame_bits);
    return bits;
}

// Through the modulator, the sim channel, a carrier phase of r quarter turns
// (the ambiguity the Costas loop cannot see) and the native demodulator: after
// the first word the resolver's output equals the transmitted bits with no
// rotation left to search, whatever r was.
TEST(rf_phase_resolver, undoes_every_rotation_after_the_demodulator) {
    for (rf_modulation m : {rf_modulation::qpsk, rf_modulation::bpsk}) {
        const unsigned bps = bits_per_symbol(m);
        const std::size_t frame_bits = 2048;
        const auto bits = framed_bits(12, frame_bits, 61);
        rf_waveform wf;
        wf.modulation = m;
        wf.sample_rate_hz = 1e6;
        rf_modulator mod({wf, 1.0f});
        std::vector<cf32> clean(bits.size() / bps * 4);
        ASSERT_TRUE(mod.modulate(bits, clean).ok);
        for (unsigned r = 0; r < (bps == 1 ? 2u : 4u); ++r) {
            std::vector<cf32> x(clean);
            sim::rf_channel::config ch;
            ch.sample_rate_hz = 1e6;
            ch.es_n0_db = 15.0;  // error-free: any bit error would be the resolver
            ch.samples_per_symbol = 4;
            ch.signal_power = mod.sample_power();
            ch.seed = 62 + r;
            ASSERT_TRUE(sim::create_rf_channel(ch)->process(x, x).ok);
            const cf32 turn = std::polar(1.0f, float(r * std::numbers::pi / 2 + 0.3));
            for (auto& v : x) v *= turn;
            rf_demodulator::config dc;
            dc.waveform = wf;
            rf_demodulator demod(dc);
            std::vector<modem::llr_t> llr(demod.max_llrs(x.size()));
            const auto d = demod.demodulate(x, llr);
            llr.resize(d.llrs - d.llrs % bps);

            rf_phase_resolver::config pc;
            pc.modulation = m;
            pc.unique_word = asm64();
            pc.frame_bits = frame_bits;
            rf_phase_resolver res(pc);
            // Cut into odd pieces (whole symbols): state carries across calls.
            for (std::size_t done = 0; done < llr.size();) {
                const std::size_t n = std::min<std::size_t>((1 + done % 7) * 97 * bps, llr.size() - done);
                ASSERT_TRUE(res.process(std::span<modem::llr_t>(llr).subspan(done, n)).ok);
                done += n;
            }
            EXPECT_TRUE(res.synchronised()) << to_string(m) << " r " << r;
            EXPECT_GE(res.stats().words_found, 10u);
            // After three frames (acquisition): the right delay at rotation 0, no bit error.
            const auto ber = test::count_errors(bits, llr, bps, 3 * frame_bits / bps, 512, 64);
            EXPECT_EQ(ber.rotation, 0) << to_string(m) << " r " << r;
            EXPECT_EQ(ber.errors, 0u) << to_string(m) << " r " << r;
            EXPECT_GT(ber.bits, 8 * frame_bits);
        }
    }
}

std::vector<modem::llr_t> to_llrs(const std::vector<std::uint8_t>& bits) {
    std::vector<modem::llr_t> l(bits.size());
    for (std::size_t i = 0; i < bits.size(); ++i) l[i] = modem::bit_to_llr(bits[i], 50);
    return l;
}

// Quarter turn forward on LLR pairs: (I, Q) -> (-Q, I).
void turn(std::vector<modem::llr_t>& l, unsigned r) {
    for (std::size_t i = 0; i + 1 < l.size(); i += 2)
        for (unsigned t = 0; t < r; ++t) {
            const modem::llr_t I = l[i];
            l[i] = static_cast<modem::llr_t>(-l[i + 1]);
            l[i + 1] = I;
        }
}

TEST(rf_phase_resolver, applies_from_the_word_start_and_tolerates_bit_errors) {
    const auto bits = framed_bits(3, 512, 71);
    auto l = to_llrs(bits);
    turn(l, 3);
    // Two hard errors in the first word: still recognised (max_bit_errors 3).
    l[5] = static_cast<modem::llr_t>(-l[5]);
    l[40] = static_cast<modem::llr_t>(-l[40]);
    rf_phase_resolver::config pc;
    pc.unique_word = asm64();
    pc.frame_bits = 512;
    rf_phase_resolver res(pc);
    ASSERT_TRUE(res.process(l).ok);
    EXPECT_EQ(res.rotation(), 3u);
    EXPECT_EQ(res.stats().words_found, 3u);
    EXPECT_EQ(res.stats().rotation_changes, 1u);
    for (std::size_t i = 0; i < bits.size(); ++i) {
        if (i / 2 == 2 || i / 2 == 20) continue;  // the two symbols with a flipped bit
        ASSERT_EQ(modem::hard_bit(l[i]), bits[i]) << i;
    }
    EXPECT_EQ(std::abs(l[100]), 50);
}

TEST(rf_phase_resolver, flywheel_drops_sync_after_missed_words) {
    auto bits = framed_bits(6, 256, 72);
    // Destroy words 2..5: three misses in a row end synchronisation.
    for (std::size_t f = 2; f < 6; ++f)
        for (std::size_t i = 0; i < 64; i += 2) bits[f * 256 + i] ^= 1;
    auto l = to_llrs(bits);
    rf_phase_resolver::config pc;
    pc.unique_word = asm64();
    pc.frame_bits = 256;
    rf_phase_resolver res(pc);
    res.process(std::span<modem::llr_t>(l).first(3 * 256));
    EXPECT_TRUE(res.synchronised());
    res.process(std::span<modem::llr_t>(l).subspan(3 * 256));
    EXPECT_FALSE(res.synchronised());
    EXPECT_EQ(res.stats().words_found, 2u);
    EXPECT_EQ(res.stats().words_missed, 3u);
}

TEST(rf_phase_resolver, bad_configuration_and_input) {
    rf_phase_resolver::config pc;
    pc.unique_word.assign(8, 0);
    EXPECT_THROW(rf_phase_resolver{pc}, std::invalid_argument);
    pc.unique_word = asm64();
    pc.frame_bits = 63;
    EXPECT_THROW(rf_phase_resolver{pc}, std::invalid_argument);
    pc.frame_bits = 0;
    pc.max_bit_errors = 9;
    try {
        rf_phase_resolver r(pc);
        FAIL();
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("max_bit_errors"), std::string::npos);
    }
    pc.max_bit_errors = 3;
    rf_phase_resolver res(pc);
    std::vector<modem::llr_t> odd(5, 10);
    const auto r = res.process(odd);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.llrs, 4u);
    EXPECT_TRUE(res.process({}).ok);
    // Noise-like input with extreme values never overflows an LLR.
    std::vector<modem::llr_t> ext(4096);
    for (std::size_t i = 0; i < ext.size(); ++i) ext[i] = (i * 7919) % 3 == 0 ? -127 : 127;
    EXPECT_TRUE(res.process(ext).ok);
    for (auto v : ext) EXPECT_NE(v, -128);
}

}  // namespace
}  // namespace qlink::terminal
