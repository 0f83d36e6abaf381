// Benchmarks the key store (writes/s) and the ETSI 014 server over mTLS keep-alive on loopback (req/s, p50/p99).
#include "qlink/keymgmt/etsi014.hpp"
#include "qlink/keymgmt/etsi014_client.hpp"
#include "unit/keymgmt/etsi014/test_pki.hpp"

#include <benchmark/benchmark.h>
#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <cstring>

using namespace qlink::keymgmt;

namespace {

struct temp_dir {
    temp_dir()
    {
        char tmpl[] = "/tmp/qlink_bench_XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
    std::filesystem::path path;
};

std::unique_ptr<key_store> make_store(const temp_dir& d, bool full_sync)
{
    key_store::config c;
    c.db_path = d.path / "keys.db";
    c.master_key_path = d.path / "master.key";
    c.max_key_count = 100000000;
    c.full_sync = full_sync;
    return open_key_store(c);
}

std::uint64_t counter = 0;

void fill(key_store& s, std::size_t n, std::size_t batch)
{
    std::vector<std::array<std::uint8_t, 32>> mats(batch);
    std::vector<new_key> keys(batch);
    for (std::size_t done = 0; done < n; done += batch) {
        for (std::size_t i = 0; i < batch; ++i) {
            RAND_bytes(mats[i].data(), 32);
            key_id id{};
            const std::uint64_t v = ++counter;
            std::memcpy(id.data(), &v, sizeof v);
            RAND_bytes(id.data() + 8, 8);
            keys[i] = {id, mats[i]};
        }
        s.add(keys, key_state::active);
    }
}

// Keys stored per second, one transaction per `batch` keys (range(0)), fsync per commit (range(1)).
void bm_store_add(benchmark::State& state)
{
    temp_dir d;
    auto s = make_store(d, state.range(1) != 0);
    const auto batch = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        fill(*s, batch, batch);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(batch) * 32);
}
BENCHMARK(bm_store_add)->Args({1, 1})->Args({64, 1})->Args({1, 0})->Args({64, 0})->Unit(benchmark::kMicrosecond);

// One enc_keys hand-out (1 key, one slave grant) per iteration, durable.
void bm_store_take(benchmark::State& state)
{
    temp_dir d;
    auto s = make_store(d, true);
    const std::vector<std::string> slaves{"B"};
    std::vector<served_key> out;
    for (auto _ : state) {
        state.PauseTiming();
        if (s->available(-1) == 0) {
            fill(*s, 4096, 512);
        }
        out.clear();
        state.ResumeTiming();
        s->take_next("A", slaves, 1, 0, -1, out);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_store_take)->Unit(benchmark::kMicrosecond);

key_store& shared_store()
{
    static temp_dir d;
    static const auto s = [] {
        auto st = make_store(d, true);
        fill(*st, 100000, 1000);
        return st;
    }();
    return *s;
}

// Durable hand-outs from several threads at once: concurrent take_next calls share one
// transaction and one fsync (group commit), so the rate grows with the number of callers.
void bm_store_take_concurrent(benchmark::State& state)
{
    auto& s = shared_store();
    const std::vector<std::string> slaves{"B"};
    std::vector<served_key> out;
    for (auto _ : state) {
        out.clear();
        if (!s.take_next("A", slaves, 1, 0, -1, out).ok()) {
            state.SkipWithError("store empty");
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bm_store_take_concurrent)->Threads(1)->Threads(4)->Threads(16)->UseRealTime()->Unit(benchmark::kMicrosecond);

struct kme_fixture {
    kme_fixture()
        : pki({"KME_A", "SAE_A", "SAE_B"})
    {
        store = make_store(dir, true);
        fill(*store, 150000, 1000);
        etsi014_service::config ec;
        ec.kme_id = "KME_A";
        ec.saes = {{"SAE_A", "KME_A"}, {"SAE_B", "KME_A"}};
        service = std::make_unique<etsi014_service>(ec, *store, nullptr);
        https_server::config hc;
        hc.cert_file = pki.cert("KME_A");
        hc.key_file = pki.key("KME_A");
        hc.ca_file = pki.ca();
        // Handlers block while their hand-out is committed; with more threads than cores the
        // concurrent hand-outs share one fsync (group commit in the store).
        hc.threads = 16;
        hc.max_connections = 256;
        server = start_https_server(hc, [this](const http_request_view& r) { return service->handle(r); });
    }
    etsi014_client::config client(const std::string& who) const
    {
        etsi014_client::config c;
        c.port = server->port();
        c.server_name = "localhost";
        c.cert_file = pki.cert(who);
        c.key_file = pki.key(who);
        c.ca_file = pki.ca();
        return c;
    }
    temp_dir dir;
    test::test_pki pki;
    std::unique_ptr<key_store> store;
    std::unique_ptr<etsi014_service> service;
    std::unique_ptr<https_server> server;
};

kme_fixture& fixture()
{
    static kme_fixture f;
    return f;
}

void report_latency(benchmark::State& state, std::vector<double>& us)
{
    if (us.empty()) {
        return;
    }
    std::sort(us.begin(), us.end());
    // Per-thread percentiles, averaged over the benchmark threads (not summed).
    state.counters["p50_us"] = benchmark::Counter(us[us.size() / 2], benchmark::Counter::kAvgThreads);
    state.counters["p99_us"] =
        benchmark::Counter(us[std::min(us.size() - 1, us.size() * 99 / 100)], benchmark::Counter::kAvgThreads);
    state.SetItemsProcessed(static_cast<std::int64_t>(us.size()));
}

// ETSI 014 over one mTLS keep-alive connection per benchmark thread. range(0): 0 = status,
// 1 = enc_keys (1 key of 256 bits, durable hand-out), 2 = enc_keys + dec_keys pair.
void bm_etsi014(benchmark::State& state)
{
    auto& f = fixture();
    auto master = create_etsi014_client(f.client("SAE_A"));
    auto slave = create_etsi014_client(f.client("SAE_B"));
    std::vector<double> us;
    us.reserve(100000);
    std::size_t failures = 0;
    for (auto _ : state) {
        const auto t0 = std::chrono::steady_clock::now();
        bool ok = false;
        if (state.range(0) == 0) {
            ok = master->status("SAE_B").http_status == 200;
        } else {
            auto r = master->enc_keys("SAE_B", 1, 256);
            ok = r.ok();
            if (ok && state.range(0) == 2) {
                const std::vector<key_id> ids{r.keys[0].id};
                ok = slave->dec_keys("SAE_A", ids).ok();
            }
        }
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        failures += ok ? 0 : 1;
    }
    report_latency(state, us);
    state.counters["failures"] = static_cast<double>(failures);
}
BENCHMARK(bm_etsi014)
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
