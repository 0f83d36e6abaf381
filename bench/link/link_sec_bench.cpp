// SDLS protect/verify vs raw OpenSSL AES-256-GCM on the same bytes; AOS frame build and parse throughput.
#include "qlink/modem/aos_frame.hpp"
#include "qlink/modem/sdls.hpp"

#include <openssl/evp.h>

#include <benchmark/benchmark.h>

#include <random>

using namespace qlink::modem;

namespace {

void fill_keys(memory_key_source& s, std::uint32_t n)
{
    std::mt19937_64 rng(1);
    for (std::uint32_t i = 1; i <= n; ++i) {
        std::array<std::uint8_t, 32> k{};
        for (auto& b : k) {
            b = static_cast<std::uint8_t>(rng());
        }
        s.add(i, k);
    }
}

aos_layout layout_for(std::size_t frame_length) { return sdls_layout(aos_layout{frame_length, 0, 0, 0, true}); }

void bm_sdls_protect(benchmark::State& state)
{
    const auto layout = layout_for(static_cast<std::size_t>(state.range(0)));
    memory_key_source keys;
    fill_keys(keys, 4096);
    sdls_transmitter::config c;
    c.layout = layout;
    sdls_transmitter tx(c, keys);
    std::vector<std::uint8_t> frame(layout.frame_length, 0x5A);
    write_aos_header(aos_header{}, frame);
    for (auto _ : state) {
        if (tx.protect(frame) != security_status::ok) {
            state.SkipWithError("protect failed");
            break;
        }
        benchmark::DoNotOptimize(frame.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layout.data_field_length()));
    state.counters["data_bits/s"] = benchmark::Counter(static_cast<double>(state.iterations() * layout.data_field_length() * 8),
                                                       benchmark::Counter::kIsRate);
}

/// The same work done with OpenSSL directly: one context keyed once, per frame a new IV, the
/// 32-byte AAD (primary + security header), the data field, the tag.
void bm_openssl_gcm(benchmark::State& state)
{
    const auto layout = layout_for(static_cast<std::size_t>(state.range(0)));
    std::vector<std::uint8_t> frame(layout.frame_length, 0x5A);
    std::array<std::uint8_t, 32> key{};
    key.fill(3);
    std::array<std::uint8_t, 12> iv{};
    EVP_CIPHER_CTX* c = EVP_CIPHER_CTX_new();
    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), nullptr, key.data(), nullptr);
    std::uint64_t counter = 0;
    std::uint8_t* data = frame.data() + layout.data_field_offset();
    const int n = static_cast<int>(layout.data_field_length());
    for (auto _ : state) {
        ++counter;
        for (int i = 0; i < 8; ++i) {
            iv[4 + i] = static_cast<std::uint8_t>(counter >> (56 - 8 * i));
        }
        int len = 0;
        EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv.data());
        EVP_EncryptUpdate(c, nullptr, &len, frame.data(), static_cast<int>(layout.data_field_offset()));
        EVP_EncryptUpdate(c, data, &len, data, n);
        std::uint8_t fin[16];
        EVP_EncryptFinal_ex(c, fin, &len);
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, frame.data() + layout.trailer_offset());
        benchmark::DoNotOptimize(frame.data());
    }
    EVP_CIPHER_CTX_free(c);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layout.data_field_length()));
    state.counters["data_bits/s"] = benchmark::Counter(static_cast<double>(state.iterations() * layout.data_field_length() * 8),
                                                       benchmark::Counter::kIsRate);
}

void bm_sdls_verify(benchmark::State& state)
{
    const auto layout = layout_for(static_cast<std::size_t>(state.range(0)));
    memory_key_source tk, rk;
    fill_keys(tk, 1);
    fill_keys(rk, 1);
    sdls_transmitter::config tc;
    tc.layout = layout;
    tc.max_frames_per_key = 1ull << 32;
    sdls_transmitter tx(tc, tk);
    sdls_receiver::config rc;
    rc.layout = layout;
    sdls_receiver rx(rc, rk);
    // A pool of sealed frames, verified in order; refreshed (outside the timing) when used up.
    std::vector<std::vector<std::uint8_t>> pool(4096, std::vector<std::uint8_t>(layout.frame_length, 0x5A));
    std::vector<std::uint8_t> work(layout.frame_length);
    std::size_t next = pool.size();
    for (auto _ : state) {
        if (next == pool.size()) {
            state.PauseTiming();
            for (auto& f : pool) {
                write_aos_header(aos_header{}, f);
                tx.protect(f);
            }
            next = 0;
            state.ResumeTiming();
        }
        std::copy(pool[next].begin(), pool[next].end(), work.begin());
        ++next;
        if (rx.verify(work) != security_status::ok) {
            state.SkipWithError("verify failed");
            break;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layout.data_field_length()));
}

void bm_aos_build(benchmark::State& state)
{
    const aos_layout layout{static_cast<std::size_t>(state.range(0)), 0, 0, 0, true};
    aos_transmitter tx({layout, 1, {{0, 0}}, true});
    std::vector<std::uint8_t> frame(layout.frame_length);
    std::vector<std::uint8_t> datagram(1500, 0x42);
    std::size_t frames = 0;
    for (auto _ : state) {
        if (tx.channel(0)->queued_bytes() < layout.frame_length) {
            for (int i = 0; i < 64; ++i) {
                tx.channel(0)->push_datagram(datagram);
            }
        }
        tx.next_frame(frame);
        ++frames;
        benchmark::DoNotOptimize(frame.data());
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(frames * layout.frame_length));
}

void bm_aos_parse(benchmark::State& state)
{
    const aos_layout layout{static_cast<std::size_t>(state.range(0)), 0, 0, 0, true};
    aos_transmitter tx({layout, 1, {{0, 0}}, true});
    std::vector<std::vector<std::uint8_t>> frames;
    std::vector<std::uint8_t> datagram(1500, 0x42);
    for (int i = 0; i < 2000; ++i) {
        tx.channel(0)->push_datagram(datagram);
    }
    std::vector<std::uint8_t> frame(layout.frame_length);
    while (!tx.next_frame(frame).idle) {
        frames.push_back(frame);
    }
    std::size_t delivered = 0;
    auto rx = std::make_unique<aos_receiver>(aos_receiver::config{layout, 1, {0}, 1u << 20},
                                             [&](std::uint8_t, std::span<const std::uint8_t> p) { delivered += p.size(); });
    std::size_t i = 0;
    std::vector<std::uint8_t> work(layout.frame_length);
    for (auto _ : state) {
        if (i == frames.size()) {
            state.PauseTiming();
            rx = std::make_unique<aos_receiver>(aos_receiver::config{layout, 1, {0}, 1u << 20},
                                                [&](std::uint8_t, std::span<const std::uint8_t> p) { delivered += p.size(); });
            i = 0;
            state.ResumeTiming();
        }
        std::copy(frames[i].begin(), frames[i].end(), work.begin());
        rx->on_frame(work);
        ++i;
    }
    benchmark::DoNotOptimize(delivered);
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * layout.frame_length));
}

}  // namespace

BENCHMARK(bm_sdls_protect)->Arg(256)->Arg(1115)->Arg(2048);
BENCHMARK(bm_openssl_gcm)->Arg(256)->Arg(1115)->Arg(2048);
BENCHMARK(bm_sdls_verify)->Arg(256)->Arg(1115)->Arg(2048);
BENCHMARK(bm_aos_build)->Arg(1115)->Arg(2048);
BENCHMARK(bm_aos_parse)->Arg(1115)->Arg(2048);
BENCHMARK_MAIN();
