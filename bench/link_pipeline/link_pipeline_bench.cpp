// Link pipeline throughput: the receive chain (sync .. RS .. CRC .. AES-256-GCM .. packets) with and without Viterbi, and TX.
#include "chain/rs_check.hpp"
#include "qlink/modem/coding_chain.hpp"
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/link_pipeline.hpp"
#include "qlink/modem/reed_solomon.hpp"
#include "qlink/modem/space_packet.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

using namespace qlink::modem;

namespace {

std::array<std::uint8_t, 32> key_bytes(std::uint32_t id)
{
    std::array<std::uint8_t, 32> k{};
    std::mt19937_64 g(id);
    for (auto& b : k) {
        b = static_cast<std::uint8_t>(g());
    }
    return k;
}

// A received stream: `frames` frames full of 1500-byte datagrams, protected (one key), encoded,
// as int8 LLRs of magnitude 40 with 1 channel bit in `flip_every` flipped (0: none).
struct rx_input {
    std::vector<llr_t> llr;
    std::size_t frames = 0;
};

// Every frame must come through (the input is noiseless); rates of user data and channel LLRs.
void report_rx(benchmark::State& state, const rx_input& in, std::uint64_t total, std::uint64_t frames_ok)
{
    if (frames_ok != state.iterations() * in.frames) {
        state.SkipWithError("frames lost in a noiseless benchmark");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["user_bits/s"] = benchmark::Counter(static_cast<double>(total * 8), benchmark::Counter::kIsRate);
    state.counters["channel_bits/s"] = benchmark::Counter(
        static_cast<double>(state.iterations() * in.llr.size()), benchmark::Counter::kIsRate);
}

rx_input make_input(const std::string& profile, std::size_t frames, std::uint64_t flip_every)
{
    memory_key_source keys;
    keys.add(1, key_bytes(1));
    tx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    c.sdls.max_frames_per_key = 1ull << 30;
    tx_link_pipeline tx(c, &keys);
    rx_input in;
    std::vector<std::uint8_t> dg(1500, 0x42), bits(tx.max_block_bits());
    std::mt19937_64 rng(1);
    for (std::size_t f = 0; f < frames; ++f) {
        while (tx.channel(1)->queued_bytes() < 2 * tx.packet_zone()) {
            tx.channel(1)->push_datagram(dg);
        }
        const auto r = tx.next_block(bits);
        for (std::size_t i = 0; i < r.bits; ++i) {
            const bool flip = flip_every != 0 && rng() % flip_every == 0;
            in.llr.push_back(bit_to_llr(static_cast<std::uint8_t>(bits[i] ^ (flip ? 1 : 0)), 40));
        }
    }
    bits.resize(tx.max_finish_bits());
    const auto r = tx.finish(bits);
    for (std::size_t i = 0; i < r.bits; ++i) {
        in.llr.push_back(bit_to_llr(bits[i], 40));
    }
    in.frames = frames;
    return in;
}

void run_rx(benchmark::State& state, const std::string& profile, std::size_t frames)
{
    const rx_input in = make_input(profile, frames, static_cast<std::uint64_t>(state.range(0)));
    std::uint64_t delivered = 0, total = 0, frames_ok = 0;
    rx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    auto make = [&](memory_key_source& keys) {
        return std::make_unique<rx_link_pipeline>(c, &keys, [&](std::uint8_t, std::span<const std::uint8_t> p) {
            delivered += p.size() - inspect_packet(p).header_length;
        });
    };
    for (auto _ : state) {
        // A fresh receiver per pass: the same frames again would be replays.
        state.PauseTiming();
        memory_key_source keys;
        keys.add(1, key_bytes(1));
        auto rx = make(keys);
        delivered = 0;
        state.ResumeTiming();
        rx->push(in.llr);
        rx->finish();
        total += delivered;
        frames_ok += rx->stats().frames_ok;
        state.PauseTiming();
        rx.reset();
        state.ResumeTiming();
    }
    report_rx(state, in, total, frames_ok);
}

// The receive chain behind the Viterbi run here with its own decoder config, handing its good frames
// to the pipeline's frame layer (on_frame), which is what rx_link_pipeline::push() does; the input is
// pushed `push_symbols` at a time (0: all at once, as rx_link_pipeline gets it in bm_rx_chain_viterbi).
void run_rx_chain(benchmark::State& state, const chain_decoder::config& dc, std::size_t push_symbols)
{
    const std::string profile = "ccsds-tm-rs223i4-conv12";
    const rx_input in = make_input(profile, 128, static_cast<std::uint64_t>(state.range(0)));
    std::uint64_t delivered = 0, total = 0, frames_ok = 0;
    rx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    for (auto _ : state) {
        state.PauseTiming();
        memory_key_source keys;
        keys.add(1, key_bytes(1));
        auto rx = std::make_unique<rx_link_pipeline>(c, &keys, [&](std::uint8_t, std::span<const std::uint8_t> p) {
            delivered += p.size() - inspect_packet(p).header_length;
        });
        auto dec = std::make_unique<chain_decoder>(dc);
        std::vector<std::uint8_t> data(dec->frames_per_push() * dec->data_bytes());
        std::vector<chain_frame_report> reports(dec->frames_per_push());
        delivered = 0;
        state.ResumeTiming();
        const std::size_t db = dec->data_bytes();
        auto deliver = [&](const chain_decoder::result& r) {
            for (std::size_t f = 0; f < r.frames; ++f) {
                if (!reports[f].ok) {
                    continue;
                }
                ++frames_ok;
                rx->on_frame(std::span<std::uint8_t>(data).subspan(f * db, db));
            }
        };
        for (std::size_t pos = 0; pos < in.llr.size();) {
            const std::size_t end = push_symbols == 0 ? in.llr.size() : std::min(in.llr.size(), pos + push_symbols);
            const auto r = dec->push(std::span<const llr_t>(in.llr).subspan(pos, end - pos), data, reports);
            deliver(r);
            if (!r.ok || (r.consumed == 0 && r.frames == 0)) {
                state.SkipWithError("chain decoder stalled");
                break;
            }
            pos += r.consumed;
        }
        deliver(dec->finish(data, reports));
        total += delivered;
        state.PauseTiming();
        dec.reset();
        rx.reset();
        state.ResumeTiming();
    }
    report_rx(state, in, total, frames_ok);
}

// Wider or narrower Viterbi windows (chain_decoder::config::viterbi_window, 8192 .. 65536; the
// default, which rx_link_pipeline uses, is 32768; a window holds up to window + traceback decoded
// bits, ~1 frame of this profile per 8192), the input in one push.
void bm_rx_chain_viterbi_window(benchmark::State& state)
{
    chain_decoder::config dc;
    dc.profile = *find_profile("ccsds-tm-rs223i4-conv12");
    dc.viterbi_window = static_cast<std::size_t>(state.range(1));
    run_rx_chain(state, dc, 0);
}

// The default chain decoder fed `range(1)` symbols per push, with (range(2) = 1) or without the
// Viterbi decision at the end of each push (viterbi_decide_on_push): what deciding every push costs a
// caller that pushes small slices at full rate.
void bm_rx_chain_viterbi_push(benchmark::State& state)
{
    chain_decoder::config dc;
    dc.profile = *find_profile("ccsds-tm-rs223i4-conv12");
    dc.viterbi_decide_on_push = state.range(2) != 0;
    run_rx_chain(state, dc, static_cast<std::size_t>(state.range(1)));
}

// sync + derandomize + RS(255,223) I=4 + CRC + AES-256-GCM verify/decrypt + frame/packet parsing.
void bm_rx_chain_no_viterbi(benchmark::State& state) { run_rx(state, "ccsds-tm-rs223i4", 512); }
// The same behind the K=7 r=1/2 Viterbi decoder.
void bm_rx_chain_viterbi(benchmark::State& state) { run_rx(state, "ccsds-tm-rs223i4-conv12", 128); }

// Frame layer + SDLS alone (frames already decoded): where the non-Viterbi chain spends its time.
void bm_rx_frames_sdls(benchmark::State& state)
{
    const chain_profile& p = *find_profile("ccsds-tm-rs223i4");
    memory_key_source tkeys;
    tkeys.add(1, key_bytes(1));
    // Build frames through the frame layer and SDLS only, without the coding chain.
    const aos_layout layout = link_frame_layout(p, true);
    sdls_transmitter::config sc;
    sc.layout = layout;
    sc.max_frames_per_key = 1ull << 30;
    sdls_transmitter stx(sc, tkeys);
    aos_transmitter atx({layout, 0xAB, {{1, 0}}, true}, &stx);
    std::vector<std::uint8_t> dg(1500, 0x42);
    std::vector<std::vector<std::uint8_t>> frames;
    std::vector<std::uint8_t> f(layout.frame_length);
    for (int i = 0; i < 4096; ++i) {
        while (atx.channel(1)->queued_bytes() < 2 * layout.data_field_length()) {
            atx.channel(1)->push_datagram(dg);
        }
        atx.next_frame(f);
        frames.push_back(f);
    }
    std::uint64_t delivered = 0, total = 0;
    rx_link_pipeline::config c;
    c.profile = p;
    c.spacecraft_id = 0xAB;
    std::vector<std::uint8_t> work(layout.frame_length);
    for (auto _ : state) {
        state.PauseTiming();
        memory_key_source keys;
        keys.add(1, key_bytes(1));
        auto rx = std::make_unique<rx_link_pipeline>(
            c, &keys, [&](std::uint8_t, std::span<const std::uint8_t> pk) { delivered += pk.size() - inspect_packet(pk).header_length; });
        delivered = 0;
        state.ResumeTiming();
        for (const auto& fr : frames) {
            std::copy(fr.begin(), fr.end(), work.begin());
            rx->on_frame(work);
        }
        total += delivered;
        state.PauseTiming();
        rx.reset();
        state.ResumeTiming();
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(total));
    state.counters["user_bits/s"] = benchmark::Counter(static_cast<double>(total * 8), benchmark::Counter::kIsRate);
}

// Is an RS(255,223) I=4 codeblock clean? rs_codec::decode (per-codeword gather + syndromes) against
// the chain's interleaved syndrome pass, on a clean block (the receive chain's common case).
void bm_rs_clean_block(benchmark::State& state, bool chain_check)
{
    rs_config rc;
    rc.interleave = 4;
    const auto codec = create_rs_codec(rc);
    const detail::rs_block_check check(rc, best_isa());
    std::vector<std::uint8_t> msg(codec->message_size()), block(codec->codeblock_size());
    std::mt19937_64 rng(5);
    for (auto& b : msg) {
        b = static_cast<std::uint8_t>(rng());
    }
    codec->encode(msg, block);
    bool clean = true;
    for (auto _ : state) {
        clean = clean && (chain_check ? check.clean(block) : codec->decode(block).corrected == 0);
        benchmark::DoNotOptimize(clean);
    }
    if (!clean) {
        state.SkipWithError("a clean block was not seen as clean");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * block.size()));
}
BENCHMARK_CAPTURE(bm_rs_clean_block, rs_codec_decode, false);
BENCHMARK_CAPTURE(bm_rs_clean_block, chain_syndrome_check, true);

// Transmit: packing, SDLS protect, CRC, RS, randomizer, ASM (and the convolutional encoder).
void run_tx(benchmark::State& state, const std::string& profile)
{
    memory_key_source keys;
    keys.add(1, key_bytes(1));
    tx_link_pipeline::config c;
    c.profile = *find_profile(profile);
    c.spacecraft_id = 0xAB;
    c.sdls.max_frames_per_key = 1ull << 30;
    tx_link_pipeline tx(c, &keys);
    std::vector<std::uint8_t> dg(1500, 0x42), bits(tx.max_block_bits());
    std::uint64_t user = 0, chan = 0;
    for (auto _ : state) {
        while (tx.channel(1)->queued_bytes() < 2 * tx.packet_zone()) {
            tx.channel(1)->push_datagram(dg);
        }
        const auto r = tx.next_block(bits);
        chan += r.bits;
        user += tx.packet_zone();
        benchmark::DoNotOptimize(bits.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(user));
    state.counters["user_bits/s"] = benchmark::Counter(static_cast<double>(user * 8), benchmark::Counter::kIsRate);
    state.counters["channel_bits/s"] = benchmark::Counter(static_cast<double>(chan), benchmark::Counter::kIsRate);
}
void bm_tx_chain_no_conv(benchmark::State& state) { run_tx(state, "ccsds-tm-rs223i4"); }
void bm_tx_chain_conv(benchmark::State& state) { run_tx(state, "ccsds-tm-rs223i4-conv12"); }

}  // namespace

// Arg: one channel bit in N flipped (0: clean input).
BENCHMARK(bm_rx_chain_no_viterbi)->Arg(0)->Arg(4000)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_rx_chain_viterbi)->Arg(0)->Arg(4000)->Unit(benchmark::kMillisecond);
// Args: flip rate as above, Viterbi window (decoded bits).
BENCHMARK(bm_rx_chain_viterbi_window)
    ->Args({0, 8192})
    ->Args({0, 16384})
    ->Args({0, 32768})
    ->Args({0, 65536})
    ->Args({4000, 32768})
    ->Unit(benchmark::kMillisecond);
// Args: flip rate as above, symbols per push, decide at the end of each push (0/1).
BENCHMARK(bm_rx_chain_viterbi_push)
    ->Args({0, 4096, 0})
    ->Args({0, 4096, 1})
    ->Args({0, 65536, 0})
    ->Args({0, 65536, 1})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(bm_rx_frames_sdls)->Unit(benchmark::kMillisecond);
BENCHMARK(bm_tx_chain_no_conv);
BENCHMARK(bm_tx_chain_conv);
BENCHMARK_MAIN();
