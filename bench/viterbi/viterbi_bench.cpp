// Viterbi decoder throughput (information bits/s) beside libfec's decoder and VOLK's ACS kernel, same binary.
#include "qlink/modem/conv.hpp"
#include "qlink/modem/cpu.hpp"
#include "qlink/modem/soft_bits.hpp"

extern "C" {
#include <fec.h>
}
#include <volk/volk.h>

#include <benchmark/benchmark.h>

#include <algorithm>
#include <bit>
#include <ctime>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace qlink::modem;

constexpr std::size_t frame_bits = 8192;

// One noisy CCSDS rate-1/2 terminated frame at 4 dB, as int8 LLRs and as libfec/VOLK offset-binary symbols.
struct frame_data {
    std::vector<std::uint8_t> data;
    std::vector<llr_t> soft;
    std::vector<unsigned char> syms;
};

frame_data make_frame(std::uint64_t seed) {
    frame_data fd;
    std::mt19937_64 rng(seed);
    fd.data.resize(frame_bits / 8);
    for (auto& b : fd.data) b = static_cast<std::uint8_t>(rng());
    conv_encoder enc({});
    std::vector<std::uint8_t> coded(2 * (frame_bits + 6));
    std::size_t w = enc.encode(fd.data, frame_bits, coded);
    enc.flush_tail(std::span(coded).subspan(w));
    std::normal_distribution<double> noise(0.0, std::sqrt(1.0 / (2.0 * std::pow(10.0, 0.4) * 0.5)));
    fd.soft.resize(coded.size());
    fd.syms.resize(coded.size());
    for (std::size_t i = 0; i < coded.size(); ++i) {
        fd.soft[i] = quantize_llr(static_cast<float>(((coded[i] ? -1.0 : 1.0) + noise(rng)) * 48.0));
        fd.syms[i] = static_cast<unsigned char>(std::clamp(128 - int{fd.soft[i]}, 0, 255));
    }
    return fd;
}

const frame_data& test_frame() {
    static const frame_data f = make_frame(7);
    return f;
}

// Peer rates measured earlier in this run (the peers are registered first), for the ratio counters.
struct peer_rates {
    double libfec = 0;
    double volk = 0;
};
peer_rates& peers() {
    static peer_rates p;
    return p;
}

// Thread CPU time, like the bits/s counters: the ratios stay fair on a busy shared machine.
double cpu_now() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double seconds_since(double t0) { return cpu_now() - t0; }

// Wall clock, for the wall_bits/s counter (on a shared machine it also counts time other jobs ran).
double wall_now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void finish(benchmark::State& state, std::size_t bits, double secs, double wall_secs, bool ratios) {
    state.counters["bits/s"] = benchmark::Counter(static_cast<double>(bits), benchmark::Counter::kIsRate);
    if (wall_secs > 0) state.counters["wall_bits/s"] = static_cast<double>(bits) / wall_secs;
    state.SetBytesProcessed(static_cast<std::int64_t>(bits / 8));
    const double rate = secs > 0 ? static_cast<double>(bits) / secs : 0;
    if (ratios) {
        if (peers().libfec > 0) state.counters["x_libfec"] = rate / peers().libfec;
        if (peers().volk > 0) state.counters["x_volk"] = rate / peers().volk;
    }
}

void bm_libfec(benchmark::State& state) {
    const frame_data& f = test_frame();
    int polys[2] = {V27POLYB, -V27POLYA};  // CCSDS
    set_viterbi27_polynomial(polys);
    void* vp = create_viterbi27(static_cast<int>(frame_bits));
    std::vector<unsigned char> out(frame_bits / 8);
    std::size_t bits = 0;
    const double t0 = cpu_now(), w0 = wall_now();
    for (auto _ : state) {
        init_viterbi27(vp, 0);
        update_viterbi27_blk(vp, const_cast<unsigned char*>(f.syms.data()), static_cast<int>(frame_bits + 6));
        chainback_viterbi27(vp, out.data(), frame_bits, 0);
        benchmark::DoNotOptimize(out.data());
        bits += frame_bits;
    }
    const double secs = seconds_since(t0);
    delete_viterbi27(vp);
    if (out != f.data) state.SkipWithError("libfec decoded the frame wrongly");
    peers().libfec = static_cast<double>(bits) / secs;
    finish(state, bits, secs, wall_now() - w0, false);
}

// VOLK's SSE3 ACS kernel with a traceback written here (it has none of its own).
void bm_volk(benchmark::State& state) {
    const frame_data& f = test_frame();
    const std::size_t steps = frame_bits + 6;
    auto* x = static_cast<unsigned char*>(volk_malloc(64, volk_get_alignment()));
    auto* y = static_cast<unsigned char*>(volk_malloc(64, volk_get_alignment()));
    auto* dec = static_cast<unsigned char*>(volk_malloc(steps * 8 + 8, volk_get_alignment()));
    auto* syms = static_cast<unsigned char*>(volk_malloc(f.syms.size() + 2, volk_get_alignment()));
    std::memcpy(syms, f.syms.data(), f.syms.size());
    unsigned char branchtab[64];
    for (int i = 0; i < 32; ++i) {
        branchtab[i] = parity((2 * i) & V27POLYB) ? 255 : 0;
        branchtab[i + 32] = (1 ^ parity((2 * i) & V27POLYA)) ? 255 : 0;
    }
    std::vector<unsigned char> out(frame_bits / 8);
    std::size_t bits = 0;
    const double t0 = cpu_now(), w0 = wall_now();
    for (auto _ : state) {
        std::memset(x, 63, 64);
        x[0] = 0;
        std::memset(dec, 0, steps * 8);
        volk_8u_x4_conv_k7_r2_8u(y, x, syms, dec, static_cast<unsigned>(frame_bits), 6, branchtab);
        // Decision bit s of step t: new state s came from (s >> 1) | 32.
        unsigned s = 0;
        std::fill(out.begin(), out.end(), 0);
        for (std::size_t t = steps; t-- > 0;) {
            std::uint64_t w;
            std::memcpy(&w, dec + 8 * t, 8);
            if (t < frame_bits) out[t >> 3] |= static_cast<unsigned char>((s & 1u) << (7 - (t & 7)));
            s = (s >> 1) | (static_cast<unsigned>((w >> s) & 1u) << 5);
        }
        benchmark::DoNotOptimize(out.data());
        bits += frame_bits;
    }
    const double secs = seconds_since(t0);
    if (out != f.data) state.SkipWithError("VOLK kernel + traceback decoded the frame wrongly");
    volk_free(x);
    volk_free(y);
    volk_free(dec);
    volk_free(syms);
    peers().volk = static_cast<double>(bits) / secs;
    finish(state, bits, secs, wall_now() - w0, false);
}

void bm_ours_block(benchmark::State& state, const std::string& isa_name) {
    const frame_data& f = test_frame();
    viterbi_decoder::config cfg;
    cfg.mode = viterbi_mode::block_terminated;
    cfg.isa = isa_name;
    auto dec = create_viterbi_decoder(cfg);
    std::vector<std::uint8_t> out(frame_bits / 8);
    std::size_t bits = 0;
    const double t0 = cpu_now(), w0 = wall_now();
    for (auto _ : state) {
        const auto r = dec->decode(f.soft, out);
        benchmark::DoNotOptimize(out.data());
        bits += r.bits_out;
    }
    const double secs = seconds_since(t0);
    if (out != f.data) state.SkipWithError("decoded the frame wrongly");
    finish(state, bits, secs, wall_now() - w0, true);
}

// window: decoded bits decided at a time (8192: the decoder's default; 32768: the receive chain's).
void bm_ours_stream(benchmark::State& state, const std::string& isa_name, std::size_t window) {
    const frame_data& f = test_frame();
    viterbi_decoder::config cfg;
    cfg.mode = viterbi_mode::streaming;
    cfg.isa = isa_name;
    cfg.stream_window = window;
    auto dec = create_viterbi_decoder(cfg);
    // The frame (without its tail) repeated as an endless stream.
    const std::span<const llr_t> chunk(f.soft.data(), 2 * frame_bits);
    std::vector<std::uint8_t> out(dec->max_stream_output_bytes(chunk.size()));
    std::size_t bits = 0;
    const double t0 = cpu_now(), w0 = wall_now();
    for (auto _ : state) {
        const auto r = dec->decode(chunk, out);
        benchmark::DoNotOptimize(out.data());
        bits += frame_bits;
        if (!r.ok) state.SkipWithError(r.error);
    }
    finish(state, bits, seconds_since(t0), wall_now() - w0, true);
}

// 32 different noisy frames decoded at once (one per byte lane of the across-lanes kernel).
void bm_ours_batch(benchmark::State& state, const std::string& isa_name) {
    constexpr std::size_t count = 32;
    static const auto frames = [] {
        std::vector<frame_data> v;
        for (std::size_t i = 0; i < count; ++i) v.push_back(make_frame(100 + i));
        return v;
    }();
    viterbi_decoder::config cfg;
    cfg.mode = viterbi_mode::block_terminated;
    cfg.isa = isa_name;
    auto dec = create_viterbi_decoder(cfg);
    std::vector<std::vector<std::uint8_t>> outs(count, std::vector<std::uint8_t>(frame_bits / 8));
    std::vector<std::span<const llr_t>> in;
    std::vector<std::span<std::uint8_t>> out;
    for (std::size_t i = 0; i < count; ++i) {
        in.emplace_back(frames[i].soft);
        out.emplace_back(outs[i]);
    }
    std::size_t bits = 0;
    const double t0 = cpu_now(), w0 = wall_now();
    for (auto _ : state) {
        const auto r = dec->decode_batch(in, out);
        benchmark::DoNotOptimize(outs[0].data());
        bits += count * r.bits_out;
    }
    const double secs = seconds_since(t0);
    // Noisy frames at 4 dB: a few may hold a residual error event (BER ~1.6e-5).
    std::size_t errors = 0;
    for (std::size_t i = 0; i < count; ++i)
        for (std::size_t k = 0; k < frame_bits / 8; ++k)
            errors += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(outs[i][k] ^ frames[i].data[k])));
    state.counters["bit_errors"] = static_cast<double>(errors);
    if (errors > count * frame_bits / 1000) state.SkipWithError("batch decoding far too many errors");
    finish(state, bits, secs, wall_now() - w0, true);
}

int register_all() {
    benchmark::RegisterBenchmark("viterbi/libfec_port", bm_libfec);
    benchmark::RegisterBenchmark("viterbi/volk_sse3_acs+traceback", bm_volk);
    for (isa level : supported_isas()) {
        const std::string name(to_string(level));
        benchmark::RegisterBenchmark(("viterbi/qlink_block/" + name).c_str(),
                                     [name](benchmark::State& s) { bm_ours_block(s, name); });
        benchmark::RegisterBenchmark(("viterbi/qlink_stream/" + name).c_str(),
                                     [name](benchmark::State& s) { bm_ours_stream(s, name, 8192); });
        benchmark::RegisterBenchmark(("viterbi/qlink_stream32k/" + name).c_str(),
                                     [name](benchmark::State& s) { bm_ours_stream(s, name, 32768); });
        benchmark::RegisterBenchmark(("viterbi/qlink_batch32/" + name).c_str(),
                                     [name](benchmark::State& s) { bm_ours_batch(s, name); });
    }
    return 0;
}

const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
