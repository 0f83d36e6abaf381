// RF receive chain throughput (samples/s per core): qlink's native block receiver per ISA, the liquid-dsp receiver, and liquid's building blocks run bare.
#include "qlink/sim/rf_channel.hpp"
#include "qlink/terminal/rf_modem.hpp"

#include <complex>
#include <liquid/liquid.h>

#include <benchmark/benchmark.h>

#include <random>
#include <vector>

namespace {

using qlink::terminal::cf32;
using qlink::terminal::rf_modulation;

constexpr std::size_t block = 1 << 16;  // samples per demodulate() call
constexpr double fs = 20e6;              // 5 Msym/s at 4 samples/symbol

/// A block of modulated random symbols through the sim channel (Es/N0 8 dB, 2 kHz offset).
const std::vector<cf32>& received(rf_modulation m) {
    static std::vector<cf32> cache[2];
    auto& x = cache[m == rf_modulation::qpsk];
    if (!x.empty()) return x;
    qlink::terminal::rf_waveform wf;
    wf.modulation = m;
    wf.sample_rate_hz = fs;
    qlink::terminal::rf_modulator mod({wf, 1.0f});
    const unsigned bps = qlink::terminal::bits_per_symbol(m);
    std::mt19937_64 rng(1);
    std::vector<std::uint8_t> bits(block / 4 * bps);
    for (auto& b : bits) b = rng() & 1;
    x.resize(block);
    mod.modulate(bits, x);
    qlink::sim::rf_channel::config ch;
    ch.sample_rate_hz = fs;
    ch.es_n0_db = 8.0;
    ch.samples_per_symbol = 4;
    ch.signal_power = mod.sample_power();
    ch.frequency_offset_hz = 2000.0;
    qlink::sim::create_rf_channel(ch)->process(x, x);
    return x;
}

/// A whole receive chain: Doppler NCO, AGC, matched filter + timing recovery, Costas, LLRs.
void rf_demodulate(benchmark::State& state, qlink::terminal::rf_demod_engine rx, const char* isa, rf_modulation m,
                   bool doppler, unsigned filter_delay = 7, unsigned timing_filters = 32) {
    const auto& x = received(m);
    qlink::terminal::rf_demodulator::config cfg;
    cfg.engine = rx;
    cfg.isa = isa;
    cfg.waveform.modulation = m;
    cfg.waveform.filter_delay = filter_delay;
    cfg.timing_filters = timing_filters;
    cfg.waveform.sample_rate_hz = fs;
    qlink::terminal::rf_demodulator demod(cfg);
    if (doppler) demod.set_carrier_correction(150e3, -3000.0);
    std::vector<qlink::modem::llr_t> llr(demod.max_llrs(x.size()));
    for (auto _ : state) {
        const auto r = demod.demodulate(x, llr);
        benchmark::DoNotOptimize(llr.data());
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
    state.counters["Msample/s"] =
        benchmark::Counter(double(x.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
using qlink::terminal::rf_demod_engine;
// qlink's own receiver, kernels chosen at run time (auto) and forced per ISA.
BENCHMARK_CAPTURE(rf_demodulate, native_auto_bpsk_sps4_doppler, rf_demod_engine::native, "auto", rf_modulation::bpsk, true);
BENCHMARK_CAPTURE(rf_demodulate, native_avx2_bpsk_sps4_doppler, rf_demod_engine::native, "avx2", rf_modulation::bpsk, true);
BENCHMARK_CAPTURE(rf_demodulate, native_generic_bpsk_sps4_doppler, rf_demod_engine::native, "generic", rf_modulation::bpsk,
                  true);
BENCHMARK_CAPTURE(rf_demodulate, native_auto_bpsk_sps4_no_doppler, rf_demod_engine::native, "auto", rf_modulation::bpsk,
                  false);
BENCHMARK_CAPTURE(rf_demodulate, native_auto_qpsk_sps4_doppler, rf_demod_engine::native, "auto", rf_modulation::qpsk, true);
// The same chain on liquid-dsp objects (the peer), same configuration.
BENCHMARK_CAPTURE(rf_demodulate, liquid_bpsk_sps4_doppler, rf_demod_engine::liquid, "auto", rf_modulation::bpsk, true);
BENCHMARK_CAPTURE(rf_demodulate, liquid_bpsk_sps4_no_doppler, rf_demod_engine::liquid, "auto", rf_modulation::bpsk, false);
BENCHMARK_CAPTURE(rf_demodulate, liquid_qpsk_sps4_doppler, rf_demod_engine::liquid, "auto", rf_modulation::qpsk, true);
// Shorter matched filter (m = 3 symbols, 16-filter bank): the symsync cost dominates.
BENCHMARK_CAPTURE(rf_demodulate, liquid_bpsk_sps4_doppler_m3_bank16, rf_demod_engine::liquid, "auto", rf_modulation::bpsk,
                  true, 3, 16);

/// liquid-dsp's blocks used bare, the way liquid's own examples chain them:
/// agc_crcf_execute_block + symsync_crcf_execute (no carrier loop, no LLRs).
void liquid_agc_symsync(benchmark::State& state) {
    const auto& x0 = received(rf_modulation::bpsk);
    std::vector<cf32> x(x0), y(x0.size()), sym(x0.size());
    agc_crcf agc = agc_crcf_create();
    agc_crcf_set_bandwidth(agc, 1e-3f);
    symsync_crcf sync = symsync_crcf_create_rnyquist(LIQUID_FIRFILT_RRC, 4, 7, 0.35f, 32);
    symsync_crcf_set_lf_bw(sync, 0.02f);
    for (auto _ : state) {
        agc_crcf_execute_block(agc, x.data(), unsigned(x.size()), y.data());
        unsigned ny = 0;
        symsync_crcf_execute(sync, y.data(), unsigned(y.size()), sym.data(), &ny);
        benchmark::DoNotOptimize(sym.data());
    }
    agc_crcf_destroy(agc);
    symsync_crcf_destroy(sync);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
    state.counters["Msample/s"] = benchmark::Counter(double(x.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(liquid_agc_symsync);

void liquid_symsync_only(benchmark::State& state) {
    const auto& x = received(rf_modulation::bpsk);
    std::vector<cf32> in(x), sym(x.size());
    symsync_crcf sync = symsync_crcf_create_rnyquist(LIQUID_FIRFILT_RRC, 4, 7, 0.35f, 32);
    for (auto _ : state) {
        unsigned ny = 0;
        symsync_crcf_execute(sync, in.data(), unsigned(in.size()), sym.data(), &ny);
        benchmark::DoNotOptimize(sym.data());
    }
    symsync_crcf_destroy(sync);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
    state.counters["Msample/s"] = benchmark::Counter(double(x.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(liquid_symsync_only);

void liquid_agc_only(benchmark::State& state) {
    const auto& x = received(rf_modulation::bpsk);
    std::vector<cf32> in(x), y(x.size());
    agc_crcf agc = agc_crcf_create();
    for (auto _ : state) {
        agc_crcf_execute_block(agc, in.data(), unsigned(in.size()), y.data());
        benchmark::DoNotOptimize(y.data());
    }
    agc_crcf_destroy(agc);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
    state.counters["Msample/s"] = benchmark::Counter(double(x.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(liquid_agc_only);

void liquid_nco_mix(benchmark::State& state, liquid_ncotype type) {
    const auto& x = received(rf_modulation::bpsk);
    std::vector<cf32> in(x), y(x.size());
    nco_crcf nco = nco_crcf_create(type);
    nco_crcf_set_frequency(nco, 0.05f);
    for (auto _ : state) {
        nco_crcf_mix_block_down(nco, in.data(), y.data(), unsigned(in.size()));
        benchmark::DoNotOptimize(y.data());
    }
    nco_crcf_destroy(nco);
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * x.size()));
    state.counters["Msample/s"] = benchmark::Counter(double(x.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(liquid_nco_mix, vco, LIQUID_VCO);
BENCHMARK_CAPTURE(liquid_nco_mix, nco_table, LIQUID_NCO);

void rf_modulate(benchmark::State& state) {
    qlink::terminal::rf_waveform wf;
    wf.sample_rate_hz = fs;
    qlink::terminal::rf_modulator mod({wf, 1.0f});
    std::vector<std::uint8_t> bits(block / 4);
    std::mt19937_64 rng(2);
    for (auto& b : bits) b = rng() & 1;
    std::vector<cf32> out(block);
    for (auto _ : state) {
        benchmark::DoNotOptimize(mod.modulate(bits, out));
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
    state.counters["Msample/s"] = benchmark::Counter(double(out.size()) * 1e-6, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(rf_modulate);

}  // namespace

BENCHMARK_MAIN();
