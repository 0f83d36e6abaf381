// Benchmarks the key store (writes/s) and the ETSI 014 server over mTLS keep-alive on loopback (req/s, p50/p99).
#include "qlink/keymgmt/etsi014.hpp"
#include "qlink/keymgmt/etsi014_client.hpp"
#include "unit/keymgmt/etsi014/test_pki.hpp"

#include <benchmark/benchmark.h>
#include <openssl/rand.h>

#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>
#include <tuple>

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

std::unique_ptr<key_store> make_store(const temp_dir& d, bool full_sync, std::size_t pool = 0)
{
    key_store::config c;
    c.db_path = d.path / "keys.db";
    c.master_key_path = d.path / "master.key";
    c.max_key_count = 100000000;
    c.full_sync = full_sync;
    c.handout_pool = pool;
    return open_key_store(c);
}

double thread_cpu_us()
{
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
}

double process_cpu_us()
{
    rusage ru{};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

double load_average()
{
    double l = 0;
    std::ifstream("/proc/loadavg") >> l;
    return l;
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

key_store& shared_store(std::size_t pool)
{
    static temp_dir d0, d1;
    static const auto plain = [] {
        auto st = make_store(d0, true);
        fill(*st, 100000, 1000);
        return st;
    }();
    static const auto pooled = [] {
        auto st = make_store(d1, true, 256);
        fill(*st, 100000, 1000);
        return st;
    }();
    return pool == 0 ? *plain : *pooled;
}

// Durable hand-outs from several threads at once: concurrent take_next calls share one
// transaction and one fsync (group commit), so the rate grows with the number of callers.
// range(0) = hand-out pool (0: every hand-out waits for its own group commit; 256: one
// commit per up to 256 keys, reserved ahead).
void bm_store_take_concurrent(benchmark::State& state)
{
    auto& s = shared_store(static_cast<std::size_t>(state.range(0)));
    const auto st0 = s.stats();
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
    if (state.thread_index() == 0) {
        const auto st = s.stats();
        const double n = std::max<double>(1, static_cast<double>(state.iterations() * state.threads()));
        state.counters["commits_per_take"] = static_cast<double>(st.commits - st0.commits) / n;
    }
}
BENCHMARK(bm_store_take_concurrent)
    ->Arg(0)
    ->Arg(256)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

struct kme_fixture {
    kme_fixture(std::size_t pool, int threads, int blocking_threads)
        : pki({"KME_A", "SAE_A", "SAE_B"})
    {
        store = make_store(dir, true, pool);
        fill(*store, 150000, 1000);
        etsi014_service::config ec;
        ec.kme_id = "KME_A";
        ec.saes = {{"SAE_A", "KME_A"}, {"SAE_B", "KME_A"}};
        service = std::make_unique<etsi014_service>(ec, *store, nullptr);
        https_server::config hc;
        hc.cert_file = pki.cert("KME_A");
        hc.key_file = pki.key("KME_A");
        hc.ca_file = pki.ca();
        // Without a hand-out pool, handlers block while their hand-out is committed; with more
        // threads than cores the concurrent hand-outs share one fsync (group commit in the
        // store). With the pool enc_keys rarely blocks and threads = cores is enough.
        hc.threads = threads;
        // > 0: as qkmd does, requests that wait for a commit (dec_keys; enc_keys without a pool)
        // run on these threads instead of the network threads.
        hc.blocking_threads = blocking_threads;
        hc.max_connections = 256;
        server = start_https_server(
            hc, [this](const http_request_view& r) { return service->handle(r); },
            [this](const http_request_view& r) { return service->may_block(r); });
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

// One server per (pool, threads, blocking threads), built on first use and kept for the whole run.
kme_fixture& fixture(std::size_t pool, int threads, int blocking_threads)
{
    static std::mutex mu;
    static std::map<std::tuple<std::size_t, int, int>, std::unique_ptr<kme_fixture>> all;
    std::lock_guard lock(mu);
    auto& f = all[{pool, threads, blocking_threads}];
    if (!f) {
        f = std::make_unique<kme_fixture>(pool, threads, blocking_threads);
    }
    return *f;
}

// CPU accounting across the benchmark threads of one run: the client threads' own CPU time
// and the whole process's (client + server + store threads; the server runs in-process).
struct cpu_meter {
    std::atomic<std::int64_t> requests{0};
    std::atomic<double> client_cpu_us{0};
    double process_start = 0;
    key_store::stats_t store_start;
};
cpu_meter meter;

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
// range(1): hand-out pool size of the store (0 = every hand-out commits). range(2): server
// network threads. range(3): blocking threads for requests that wait for a commit (0: none,
// every handler runs on the network threads).
void bm_etsi014(benchmark::State& state)
{
    auto& f = fixture(static_cast<std::size_t>(state.range(1)), static_cast<int>(state.range(2)),
                      static_cast<int>(state.range(3)));
    auto master = create_etsi014_client(f.client("SAE_A"));
    auto slave = create_etsi014_client(f.client("SAE_B"));
    // Connect (TLS handshake) outside the timed loop: the figures are for keep-alive requests.
    master->status("SAE_B");
    slave->status("SAE_A");
    std::vector<double> us;
    us.reserve(100000);
    std::size_t failures = 0;
    if (state.thread_index() == 0) {
        meter.requests = 0;
        meter.client_cpu_us = 0;
        meter.process_start = process_cpu_us();
        meter.store_start = f.store->stats();
    }
    const double cpu0 = thread_cpu_us();
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
    const double mine = thread_cpu_us() - cpu0;
    meter.client_cpu_us.fetch_add(mine);
    meter.requests += static_cast<std::int64_t>(us.size());
    report_latency(state, us);
    state.counters["failures"] = static_cast<double>(failures);
    if (state.thread_index() == 0) {
        // Thread 0 leaves the loop with the others (Google Benchmark's end barrier), so the
        // process CPU below covers the whole run; the other threads' client CPU may still be
        // adding up, hence a short wait for their counts.
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        while (meter.requests.load() < static_cast<std::int64_t>(state.iterations()) * state.threads() &&
               std::chrono::steady_clock::now() < deadline) {
            std::this_thread::yield();
        }
        const double n = std::max<double>(1, static_cast<double>(meter.requests.load()));
        const double proc = process_cpu_us() - meter.process_start;
        const auto st = f.store->stats();
        const double commits = static_cast<double>(st.commits - meter.store_start.commits);
        const double ops = static_cast<double>(st.batched_ops - meter.store_start.batched_ops);
        state.counters["cpu_us_per_req"] = proc / n;
        state.counters["client_cpu_us_per_req"] = meter.client_cpu_us.load() / n;
        state.counters["commits_per_req"] = commits / n;
        state.counters["ops_per_commit"] = commits > 0 ? ops / commits : 0;
        state.counters["load1"] = load_average();
    }
}
// op, pool, network threads, blocking threads. The no-pool rows with 16 threads and no blocking
// threads are the original design; pool 256 with 8 + 16 threads is qkmd's default configuration.
// Blocking threads bound the group-commit batch: with fewer than the concurrent requests that
// wait for a commit, the rest wait for the next fsync.
BENCHMARK(bm_etsi014)
    ->ArgsProduct({{0, 1, 2}, {0}, {16}, {0}})
    ->ArgsProduct({{1, 2}, {0}, {2}, {8, 16}})
    ->ArgsProduct({{0, 1, 2}, {256}, {2, 16}, {0}})
    ->ArgsProduct({{0, 1, 2}, {256}, {2, 8}, {16}})
    ->ArgsProduct({{2}, {256}, {2}, {8}})
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
