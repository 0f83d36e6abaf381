// Throughput of the simulator channel models: fading, pointing, RF channel (beside liquid-dsp's channel), QKD pulses.
#include <benchmark/benchmark.h>

#include <complex>
#include <liquid/liquid.h>

#include <random>
#include <vector>

#include "qlink/sim/clouds.hpp"
#include "qlink/sim/fading.hpp"
#include "qlink/sim/photon_receiver.hpp"
#include "qlink/sim/pointing.hpp"
#include "qlink/sim/qkd_channel.hpp"
#include "qlink/sim/rf_channel.hpp"

namespace {

using namespace qlink::sim;

void fading_bench(benchmark::State& state, fading_marginal m) {
    fading_process::config c;
    c.marginal = m;
    c.scintillation_index = 0.3;
    auto f = create_fading_process(c);
    std::vector<float> buf(10'000);
    for (auto _ : state) {
        f->generate(buf);
        benchmark::DoNotOptimize(buf.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
void BM_fading_lognormal(benchmark::State& s) { fading_bench(s, fading_marginal::lognormal); }
void BM_fading_gamma_gamma(benchmark::State& s) { fading_bench(s, fading_marginal::gamma_gamma); }
BENCHMARK(BM_fading_lognormal);
BENCHMARK(BM_fading_gamma_gamma);

// Peer: i.i.d. gamma-gamma draws from the standard library (no temporal correlation at all).
void BM_peer_std_gamma_gamma_iid(benchmark::State& state) {
    std::mt19937_64 rng(1);
    const double a = 1.0 / (std::sqrt(1.3) - 1.0);
    std::gamma_distribution<double> g(a, 1.0 / a);
    std::vector<float> buf(10'000);
    for (auto _ : state) {
        for (auto& x : buf) x = static_cast<float>(g(rng) * g(rng));
        benchmark::DoNotOptimize(buf.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(buf.size()));
}
BENCHMARK(BM_peer_std_gamma_gamma_iid);

// The figure of merit: a 10-minute pass at 10 kS/s (6e6 samples) of gamma-gamma
// scintillation x pointing jitter x clouds, per iteration.
void BM_pass_10min_10kSps(benchmark::State& state) {
    fading_process::config fc;
    fc.marginal = fading_marginal::gamma_gamma;
    fc.scintillation_index = 0.3;
    auto f = create_fading_process(fc);
    pointing_jitter p({});
    cloud_process::config cc;
    cc.sample_rate_hz = 10e3;
    cloud_process cl(cc);
    std::vector<float> a(10'000), b(10'000), d(10'000);
    for (auto _ : state) {
        for (int blk = 0; blk < 600; ++blk) {
            f->generate(a);
            p.generate(b);
            cl.generate(d);
            for (std::size_t i = 0; i < a.size(); ++i) a[i] *= b[i] * d[i];
            benchmark::DoNotOptimize(a.data());
        }
    }
    state.SetItemsProcessed(state.iterations() * 6'000'000);
}
BENCHMARK(BM_pass_10min_10kSps)->Unit(benchmark::kMillisecond);

void BM_rf_channel(benchmark::State& state) {
    rf_channel::config c;
    c.es_n0_db = 10;
    c.frequency_offset_hz = 20e3;
    c.frequency_rate_hz_s = -500;
    c.phase_noise_linewidth_hz = state.range(0) ? 50.0 : 0.0;
    auto ch = create_rf_channel(c);
    std::vector<std::complex<float>> x(4096, {0.7f, 0.7f}), y(4096);
    for (auto _ : state) {
        ch->process(x, y);
        benchmark::DoNotOptimize(y.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_rf_channel)->Arg(0)->Arg(1);

// Peer: liquid-dsp's own channel_cccf with AWGN and a fixed carrier offset (no Doppler rate, no
// phase noise, global rand() noise, so not reproducible from a seed: why we do not use it as is).
void BM_peer_liquid_channel_cccf(benchmark::State& state) {
    channel_cccf q = channel_cccf_create();
    channel_cccf_add_awgn(q, -60.0f, 10.0f);
    channel_cccf_add_carrier_offset(q, 0.02f, 0.0f);
    std::vector<std::complex<float>> x(4096, {0.7f, 0.7f}), y(4096);
    for (auto _ : state) {
        channel_cccf_execute_block(q, x.data(), static_cast<unsigned>(x.size()), y.data());
        benchmark::DoNotOptimize(y.data());
    }
    channel_cccf_destroy(q);
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(x.size()));
}
BENCHMARK(BM_peer_liquid_channel_cccf);

// Pulses per second through the decoy-state channel at a given loss (items = pulses).
void BM_qkd_channel(benchmark::State& state) {
    qkd_channel::config c;
    qkd_channel ch(c);
    const double eta = std::pow(10.0, -static_cast<double>(state.range(0)) / 10.0);
    std::vector<qkd_detection> buf(1 << 14);
    std::uint64_t pulses = 0, det = 0;
    for (auto _ : state) {
        auto r = ch.simulate(eta, 100'000'000, buf);
        pulses += r.pulses;
        det += r.detections;
        benchmark::DoNotOptimize(buf.data());
    }
    state.SetItemsProcessed(static_cast<int64_t>(pulses));
    state.counters["detections/s"] = benchmark::Counter(static_cast<double>(det), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_qkd_channel)->Arg(10)->Arg(20)->Arg(30);

void BM_photon_ook(benchmark::State& state) {
    photon_receiver rx({});
    std::vector<std::uint8_t> bits(8192);
    for (std::size_t i = 0; i < bits.size(); ++i) bits[i] = (i * 7) >> 2 & 1;
    std::vector<std::uint32_t> counts(bits.size());
    std::vector<std::int8_t> llr(bits.size());
    for (auto _ : state) {
        rx.receive_ook(bits, 5.0, {}, counts);
        ook_llr(counts, rx.signal_mean(5.0), rx.noise_mean(), 4.0, llr);
        benchmark::DoNotOptimize(llr.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(bits.size()));
    state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bits.size()) / 8);
}
BENCHMARK(BM_photon_ook);

}  // namespace

BENCHMARK_MAIN();
