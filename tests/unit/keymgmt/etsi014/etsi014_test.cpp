// Tests keymgmt/src/etsi014 over real mutual TLS on loopback: our client, curl, SAE isolation, limits, two KMEs.
#include "qlink/keymgmt/etsi014.hpp"
#include "qlink/keymgmt/etsi014_client.hpp"
#include "unit/keymgmt/etsi014/test_pki.hpp"
#include "unit/keymgmt/store/test_keys.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <set>
#include <thread>

using namespace qlink::keymgmt;
using qlink::keymgmt::test::run_cmd;
using qlink::keymgmt::test::test_key_id;
using qlink::keymgmt::test::test_key_material;
using qlink::keymgmt::test::test_pki;
using json = nlohmann::json;

namespace {

constexpr std::uint64_t seed = 4242;

test_pki& pki()
{
    static test_pki p({"KME_A", "KME_B", "SAE_A", "SAE_B", "SAE_C", "SAE_R", "SAE_X"});
    return p;
}

struct kme {
    kme(const std::string& id, int partition, std::uint64_t nkeys, std::vector<sae_entry> saes,
        peer_kme_notifier* notifier = nullptr, std::size_t max_conn = 16, std::size_t handout_pool = 0)
    {
        char tmpl[] = "/tmp/qlink_kme_XXXXXX";
        dir = ::mkdtemp(tmpl);
        key_store::config sc;
        sc.db_path = dir / "keys.db";
        sc.master_key_path = dir / "master.key";
        sc.max_key_count = 5000;
        sc.handout_pool = handout_pool;
        store = open_key_store(sc);
        std::vector<std::array<std::uint8_t, 32>> mats;
        std::vector<new_key> keys;
        for (std::uint64_t i = 0; i < nkeys; ++i) {
            mats.push_back(test_key_material(seed, i));
        }
        for (std::uint64_t i = 0; i < nkeys; ++i) {
            keys.push_back({test_key_id(seed, i), mats[i]});
        }
        if (nkeys > 0 && !store->add(keys, key_state::active).ok()) {
            throw std::runtime_error("add failed");
        }
        etsi014_service::config ec;
        ec.kme_id = id;
        ec.saes = std::move(saes);
        ec.enc_partition = partition;
        ec.max_key_per_request = 16;
        service = std::make_unique<etsi014_service>(ec, *store, notifier);
        https_server::config hc;
        hc.cert_file = pki().cert(id);
        hc.key_file = pki().key(id);
        hc.ca_file = pki().ca();
        hc.request_timeout = std::chrono::milliseconds(400);
        hc.idle_timeout = std::chrono::milliseconds(2000);
        hc.max_connections = max_conn;
        hc.max_body_bytes = 4096;
        // As in qkmd: requests that wait for a commit run on their own threads.
        hc.blocking_threads = 2;
        server = start_https_server(
            hc, [this](const http_request_view& r) { return service->handle(r); },
            [this](const http_request_view& r) { return service->may_block(r); });
    }
    ~kme()
    {
        server.reset();
        service.reset();
        store.reset();
        std::filesystem::remove_all(dir);
    }
    kme(const kme&) = delete;
    kme& operator=(const kme&) = delete;

    std::filesystem::path dir;
    std::unique_ptr<key_store> store;
    std::unique_ptr<etsi014_service> service;
    std::unique_ptr<https_server> server;
};

std::vector<sae_entry> saes()
{
    return {{"SAE_A", "KME_A"}, {"SAE_B", "KME_A"}, {"SAE_C", "KME_A"}, {"SAE_R", "KME_B"}};
}

etsi014_client::config client_cfg(const std::string& who, std::uint16_t port)
{
    etsi014_client::config c;
    c.port = port;
    c.server_name = "localhost";
    c.cert_file = pki().cert(who);
    c.key_file = pki().key(who);
    c.ca_file = pki().ca();
    return c;
}

struct curl_result {
    int exit_code = 0;
    unsigned http = 0;
    std::string body;
};

curl_result curl(const std::string& who, std::uint16_t port, const std::string& path, const std::string& body = {},
                 const std::string& extra = {})
{
    std::string cmd = "curl -sS --max-time 10 --cacert " + pki().ca();
    if (!who.empty()) {
        cmd += " --cert " + pki().cert(who) + " --key " + pki().key(who);
    }
    cmd += " " + extra + " -w '\\n%{http_code}' ";
    if (!body.empty()) {
        cmd += "-H 'Content-Type: application/json' -d '" + body + "' ";
    }
    cmd += "https://localhost:" + std::to_string(port) + path + " 2>/dev/null";
    curl_result r;
    std::string out;
    r.exit_code = run_cmd(cmd, &out);
    const auto nl = out.rfind('\n');
    if (nl != std::string::npos) {
        r.http = static_cast<unsigned>(std::atoi(out.c_str() + nl + 1));
        r.body = out.substr(0, nl);
    }
    return r;
}

bool has_material(const served_key& k, std::size_t bytes)
{
    for (std::uint64_t i = 0; i < 256; ++i) {
        if (k.id == test_key_id(seed, i)) {
            const auto m = test_key_material(seed, i);
            return k.material.size() == bytes && std::equal(k.material.data(), k.material.data() + bytes, m.begin());
        }
    }
    return false;
}

std::string message_of(const std::string& body)
{
    const auto j = json::parse(body, nullptr, false);
    return j.is_object() && j.contains("message") ? j["message"].get<std::string>() : "<no message: " + body + ">";
}

}  // namespace

TEST(etsi014, status_reports_every_spec_field)
{
    kme a("KME_A", -1, 20, saes());
    auto c = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    const auto r = c->status("SAE_B");
    ASSERT_EQ(r.http_status, 200u) << r.message << r.body;
    const auto j = json::parse(r.body);
    EXPECT_EQ(j["source_KME_ID"], "KME_A");
    EXPECT_EQ(j["target_KME_ID"], "KME_A");
    EXPECT_EQ(j["master_SAE_ID"], "SAE_A");  // from the certificate
    EXPECT_EQ(j["slave_SAE_ID"], "SAE_B");
    EXPECT_EQ(j["key_size"], 256);
    EXPECT_EQ(j["stored_key_count"], 20);
    EXPECT_EQ(j["max_key_count"], 5000);
    EXPECT_EQ(j["max_key_per_request"], 16);
    EXPECT_EQ(j["max_key_size"], 256);
    EXPECT_EQ(j["min_key_size"], 64);
    EXPECT_EQ(j["max_SAE_ID_count"], 8);
    EXPECT_EQ(json::parse(c->status("SAE_R").body)["target_KME_ID"], "KME_B");
    const auto bad = c->status("NOPE");
    EXPECT_EQ(bad.http_status, 400u);
    EXPECT_NE(message_of(bad.body).find("unknown slave_SAE_ID"), std::string::npos);
}

TEST(etsi014, enc_then_dec_once_for_the_named_slave_only)
{
    kme a("KME_A", -1, 20, saes());
    auto master = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    auto slave = create_etsi014_client(client_cfg("SAE_B", a.server->port()));
    auto other = create_etsi014_client(client_cfg("SAE_C", a.server->port()));
    const auto enc = master->enc_keys("SAE_B", 3, 256);
    ASSERT_TRUE(enc.ok()) << enc.http_status << " " << enc.message;
    ASSERT_EQ(enc.keys.size(), 3u);
    std::vector<key_id> ids;
    for (const auto& k : enc.keys) {
        EXPECT_TRUE(has_material(k, 32));
        ids.push_back(k.id);
    }
    // SAE_C was not named: refused, and its attempt does not use the keys up.
    const auto stolen = other->dec_keys("SAE_A", ids);
    EXPECT_EQ(stolen.http_status, 400u);
    EXPECT_TRUE(stolen.keys.empty());
    // Wrong master in the path.
    EXPECT_EQ(slave->dec_keys("SAE_C", ids).http_status, 400u);
    const auto dec = slave->dec_keys("SAE_A", ids);
    ASSERT_TRUE(dec.ok()) << dec.message;
    ASSERT_EQ(dec.keys.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(dec.keys[i].id, enc.keys[i].id);
        EXPECT_TRUE(std::equal(dec.keys[i].material.data(), dec.keys[i].material.data() + 32, enc.keys[i].material.data()));
    }
    const auto again = slave->dec_keys("SAE_A", ids);
    EXPECT_EQ(again.http_status, 400u);
    EXPECT_NE(again.message.find("not available"), std::string::npos) << again.message;
    // The master never gets the same key twice.
    const auto enc2 = master->enc_keys("SAE_B", 3, 128);
    ASSERT_TRUE(enc2.ok());
    for (const auto& k : enc2.keys) {
        EXPECT_TRUE(has_material(k, 16));
        EXPECT_EQ(std::count(ids.begin(), ids.end(), k.id), 0);
    }
}

TEST(etsi014, additional_slaves_each_get_the_key_once)
{
    kme a("KME_A", -1, 10, saes());
    auto master = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    const std::vector<std::string> more{"SAE_C"};
    const auto enc = master->enc_keys("SAE_B", 1, 256, more);
    ASSERT_TRUE(enc.ok()) << enc.message;
    const std::vector<key_id> ids{enc.keys[0].id};
    for (const char* who : {"SAE_B", "SAE_C"}) {
        auto c = create_etsi014_client(client_cfg(who, a.server->port()));
        const auto d = c->dec_keys("SAE_A", ids);
        ASSERT_TRUE(d.ok()) << who << " " << d.message;
        EXPECT_TRUE(has_material(d.keys[0], 32));
        EXPECT_EQ(c->dec_keys("SAE_A", ids).http_status, 400u);
    }
    EXPECT_EQ(a.store->state_of(ids[0]), key_state::destroyed);
}

TEST(etsi014, bad_requests_get_400_with_a_reason)
{
    kme a("KME_A", -1, 4, saes());
    auto c = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    struct tc {
        const char* method;
        std::string target;
        std::string body;
        unsigned code;
        const char* says;
    };
    const std::string enc = "/api/v1/keys/SAE_B/enc_keys";
    const std::string dec = "/api/v1/keys/SAE_B/dec_keys";
    const std::vector<tc> cases{
        {"POST", enc, R"({"number":1,"size":100})", 400, "multiple of 8"},
        {"POST", enc, R"({"number":1,"size":512})", 400, "exceeds max_key_size"},
        {"POST", enc, R"({"number":1,"size":32})", 400, "below min_key_size"},
        {"POST", enc, R"({"number":5})", 400, "only 4 are available"},
        {"POST", enc, R"({"number":0})", 400, "between 1 and"},
        {"POST", enc, R"({"number":"two"})", 400, "integer"},
        {"POST", enc, R"({"number":1,)", 400, "not a JSON object"},
        {"POST", enc, R"([1,2])", 400, "not a JSON object"},
        {"POST", enc, R"({"numbr":1})", 400, "unknown request field 'numbr'"},
        {"POST", enc, R"({"number":1,"extension_mandatory":[{"abc_route":"x"}]})", 400, "not supported"},
        {"POST", enc, R"({"number":1,"additional_slave_SAE_IDs":["SAE_Q"]})", 400, "unknown additional slave"},
        {"GET", enc + "?number=1&size=7", "", 400, "multiple of 8"},
        {"GET", enc + "?count=1", "", 400, "unknown query parameter"},
        {"GET", "/api/v1/keys/SAE_Q/enc_keys", "", 400, "unknown slave_SAE_ID"},
        {"GET", dec, "", 400, "no key_ID"},
        {"GET", dec + "?key_ID=not-a-uuid", "", 400, "malformed key_ID"},
        {"POST", dec, R"({"key_IDs":"x"})", 400, "array"},
        {"POST", dec, R"({"key_IDs":[{"key_ID":"00000000-0000-0000-0000-000000000000"}]})", 400, "not available"},
        {"DELETE", enc, "", 405, "GET and POST only"},
        {"POST", "/api/v1/keys/SAE_B/status", "{}", 405, "GET only"},
        {"GET", "/api/v2/whatever", "", 404, "unknown path"},
    };
    for (const auto& t : cases) {
        const auto r = c->request(t.method, t.target, t.body);
        EXPECT_EQ(r.http_status, t.code) << t.method << " " << t.target << " " << t.body << " -> " << r.body;
        EXPECT_NE(message_of(r.body).find(t.says), std::string::npos) << t.target << " " << t.body << " -> " << r.body;
    }
    // None of that consumed a key.
    EXPECT_EQ(a.store->available(-1), 4u);
    // Optional extensions are ignored; GET with query works.
    const auto ok = c->request("POST", enc, R"({"number":1,"extension_optional":[{"x":1}]})");
    EXPECT_EQ(ok.http_status, 200u) << ok.body;
    const auto g = c->request("GET", enc + "?number=2&size=64", "");
    ASSERT_EQ(g.http_status, 200u) << g.body;
    EXPECT_EQ(json::parse(g.body)["keys"].size(), 2u);
    EXPECT_EQ(a.store->available(-1), 1u);
}

TEST(etsi014, oversized_body_is_refused_and_server_keeps_serving)
{
    kme a("KME_A", -1, 4, saes());
    auto c = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    const std::string huge = R"({"number":1,"pad":")" + std::string(10000, 'x') + "\"}";
    // The server drains the rest of the body after its answer, so the client always reads the
    // 400 (never a connection reset).
    for (int i = 0; i < 5; ++i) {
        const auto r = c->request("POST", "/api/v1/keys/SAE_B/enc_keys", huge);
        ASSERT_EQ(r.http_status, 400u) << "attempt " << i << ": " << r.message;
        EXPECT_NE(message_of(r.body).find("exceeds 4096 bytes"), std::string::npos) << r.body;
    }
    EXPECT_EQ(a.store->available(-1), 4u);
    EXPECT_EQ(c->status("SAE_B").http_status, 200u);  // reconnects
    EXPECT_GE(a.server->stats().bad_requests, 5u);
}

// The same with curl as the client and bodies well past the socket buffers (256 KiB, 2 MiB):
// curl must exit 0 with the 400 and its JSON reason, not "connection reset" (exit 55/56).
TEST(etsi014, oversized_body_curl_reads_the_400)
{
    kme a("KME_A", -1, 4, saes());
    const auto dir = std::filesystem::temp_directory_path() / ("qkmd_big_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    for (const std::size_t size : {std::size_t{256} << 10, std::size_t{2} << 20}) {
        const auto file = dir / ("body" + std::to_string(size));
        std::ofstream(file) << R"({"number":1,"pad":")" << std::string(size, 'y') << "\"}";
        const std::string cmd = "curl -sS --max-time 20 --cacert " + pki().ca() + " --cert " + pki().cert("SAE_A") +
                                " --key " + pki().key("SAE_A") +
                                " -H 'Content-Type: application/json' -H 'Expect:' --data-binary @" + file.string() +
                                " -w '\\n%{http_code}' https://localhost:" + std::to_string(a.server->port()) +
                                "/api/v1/keys/SAE_B/enc_keys 2>&1";
        std::string out;
        EXPECT_EQ(run_cmd(cmd, &out), 0) << size << ": " << out;
        const auto nl = out.rfind('\n');
        ASSERT_NE(nl, std::string::npos) << out;
        EXPECT_EQ(out.substr(nl + 1), "400") << out;
        EXPECT_NE(message_of(out.substr(0, nl)).find("exceeds 4096 bytes"), std::string::npos) << out;
    }
    std::filesystem::remove_all(dir);
    EXPECT_EQ(a.store->available(-1), 4u);
    EXPECT_EQ(curl("SAE_A", a.server->port(), "/api/v1/keys/SAE_B/status").http, 200u);
}

TEST(etsi014, unregistered_and_impersonating_clients_are_refused)
{
    kme a("KME_A", -1, 4, saes());
    // Valid certificate from our CA, but SAE_X is not configured: 401.
    auto x = create_etsi014_client(client_cfg("SAE_X", a.server->port()));
    const auto r = x->request("GET", "/api/v1/keys/SAE_B/status", {});
    EXPECT_EQ(r.http_status, 401u);
    EXPECT_NE(message_of(r.body).find("SAE_X"), std::string::npos);
    // SAE_R is registered at KME_B, not here: 401.
    auto rr = create_etsi014_client(client_cfg("SAE_R", a.server->port()));
    EXPECT_EQ(rr->status("SAE_A").http_status, 401u);
    // Same CN as SAE_A, signed by another CA: the handshake fails.
    pki().make_rogue("SAE_A");
    auto cfg = client_cfg("SAE_A", a.server->port());
    cfg.cert_file = (pki().dir() / "rogue_SAE_A.crt").string();
    cfg.key_file = (pki().dir() / "rogue_SAE_A.key").string();
    auto rogue = create_etsi014_client(cfg);
    EXPECT_EQ(rogue->status("SAE_B").http_status, 0u);
    // Identity comes from the certificate only: a body claiming to be SAE_A changes nothing.
    const auto body_claim =
        x->request("POST", "/api/v1/keys/SAE_B/enc_keys", R"({"number":1,"master_SAE_ID":"SAE_A"})");
    EXPECT_EQ(body_claim.http_status, 401u);
    EXPECT_EQ(a.store->available(-1), 4u);
}

TEST(etsi014, curl_client_end_to_end_and_no_certificate_refused)
{
    kme a("KME_A", -1, 8, saes());
    const auto port = a.server->port();
    const auto st = curl("SAE_A", port, "/api/v1/keys/SAE_B/status");
    ASSERT_EQ(st.exit_code, 0);
    ASSERT_EQ(st.http, 200u) << st.body;
    EXPECT_EQ(json::parse(st.body)["stored_key_count"], 8);
    const auto enc = curl("SAE_A", port, "/api/v1/keys/SAE_B/enc_keys", R"({"number":2,"size":256})");
    ASSERT_EQ(enc.http, 200u) << enc.body;
    const auto keys = json::parse(enc.body)["keys"];
    ASSERT_EQ(keys.size(), 2u);
    const std::string id0 = keys[0]["key_ID"];
    const std::string id1 = keys[1]["key_ID"];
    // GET dec_keys with ?key_ID= and POST with key_IDs, both via curl as SAE_B.
    const auto d0 = curl("SAE_B", port, "/api/v1/keys/SAE_A/dec_keys?key_ID=" + id0);
    ASSERT_EQ(d0.http, 200u) << d0.body;
    EXPECT_EQ(json::parse(d0.body)["keys"][0]["key"], keys[0]["key"]);
    const auto d1 = curl("SAE_B", port, "/api/v1/keys/SAE_A/dec_keys", R"({"key_IDs":[{"key_ID":")" + id1 + "\"}]}");
    ASSERT_EQ(d1.http, 200u) << d1.body;
    EXPECT_EQ(json::parse(d1.body)["keys"][0]["key"], keys[1]["key"]);
    const auto again = curl("SAE_B", port, "/api/v1/keys/SAE_A/dec_keys?key_ID=" + id0);
    EXPECT_EQ(again.http, 400u);
    // The base64 key decodes to the stored material.
    auto mat = base64_decode(keys[0]["key"].get<std::string>());
    ASSERT_TRUE(mat);
    EXPECT_TRUE(has_material(served_key{*parse_key_id(id0), std::move(*mat)}, 32));
    // No client certificate: TLS handshake refused, curl fails without an HTTP status.
    const auto anon = curl("", port, "/api/v1/keys/SAE_B/status");
    EXPECT_NE(anon.exit_code, 0);
    EXPECT_EQ(anon.http, 0u);
    // TLS 1.1 is refused.
    const auto old = curl("SAE_A", port, "/api/v1/keys/SAE_B/status", {}, "--tls-max 1.1");
    EXPECT_NE(old.exit_code, 0);
    EXPECT_GE(a.server->stats().handshake_failures, 2u);
    // Server still fine.
    EXPECT_EQ(curl("SAE_A", port, "/api/v1/keys/SAE_B/status").http, 200u);
}

TEST(etsi014, slowloris_is_cut_off_and_connection_cap_holds)
{
    kme a("KME_A", -1, 8, saes(), nullptr, 3);
    const auto port = a.server->port();
    auto raw_connect = [&] {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        sa.sin_port = htons(port);
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
        return fd;
    };
    auto closed_within = [](int fd, int ms) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, ms) <= 0) {
            return false;
        }
        char b[256];
        return ::recv(fd, b, sizeof b, 0) <= 0;
    };
    // Three silent clients fill the cap; a fourth connection is closed at once.
    std::vector<int> idle{raw_connect(), raw_connect(), raw_connect()};
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const int extra = raw_connect();
    EXPECT_TRUE(closed_within(extra, 5000));
    ::close(extra);
    EXPECT_GE(a.server->stats().refused_connections, 1u);
    // The silent ones are dropped after request_timeout (400 ms), well within 10 s.
    for (int fd : idle) {
        EXPECT_TRUE(closed_within(fd, 10000));
        ::close(fd);
    }
    // Everyone else is served again.
    auto good = create_etsi014_client(client_cfg("SAE_B", port));
    bool served_normally = false;
    for (int i = 0; i < 100 && !served_normally; ++i) {
        served_normally = good->status("SAE_A").http_status == 200;
        if (!served_normally) {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    }
    EXPECT_TRUE(served_normally);
}

TEST(etsi014, concurrent_masters_never_get_the_same_key)
{
    kme a("KME_A", -1, 120, saes());
    std::vector<std::vector<served_key>> got(4);
    std::vector<std::thread> th;
    for (std::size_t t = 0; t < got.size(); ++t) {
        th.emplace_back([&, t] {
            auto c = create_etsi014_client(client_cfg(t % 2 ? "SAE_A" : "SAE_C", a.server->port()));
            for (int i = 0; i < 10; ++i) {
                auto r = c->enc_keys("SAE_B", 3, 256);
                for (auto& k : r.keys) {
                    got[t].push_back(std::move(k));
                }
            }
        });
    }
    for (auto& x : th) {
        x.join();
    }
    std::set<key_id> seen;
    for (const auto& v : got) {
        for (const auto& k : v) {
            EXPECT_TRUE(seen.insert(k.id).second);
            EXPECT_TRUE(has_material(k, 32));
        }
    }
    EXPECT_EQ(seen.size(), 120u);
    EXPECT_EQ(a.store->available(-1), 0u);
}

// With the store's hand-out pool: keys still go to one master each, in order; the slave gets
// exactly the keys its master received, and cannot fetch a pooled key no master has yet.
TEST(etsi014, hand_out_pool_serves_masters_once_and_slaves_only_issued_keys)
{
    kme a("KME_A", -1, 200, saes(), nullptr, 16, 16);
    std::vector<std::vector<served_key>> got(4);
    std::vector<std::thread> th;
    for (std::size_t t = 0; t < got.size(); ++t) {
        th.emplace_back([&, t] {
            auto c = create_etsi014_client(client_cfg(t % 2 ? "SAE_A" : "SAE_C", a.server->port()));
            for (int i = 0; i < 10; ++i) {
                auto r = c->enc_keys("SAE_B", 1 + t % 3, 256);
                EXPECT_TRUE(r.ok()) << r.message;
                for (auto& k : r.keys) {
                    got[t].push_back(std::move(k));
                }
            }
        });
    }
    for (auto& x : th) {
        x.join();
    }
    EXPECT_GT(a.store->stats().pool_served, 0u);
    std::set<key_id> seen;
    for (const auto& v : got) {
        for (const auto& k : v) {
            EXPECT_TRUE(seen.insert(k.id).second) << "key served twice";
            EXPECT_TRUE(has_material(k, 32));
        }
    }
    EXPECT_EQ(seen.size(), 10u * (1 + 2 + 3 + 1));
    // A key in the store that no master received (pooled or ACTIVE): refused to the slave.
    key_id unissued{};
    for (std::uint64_t i = 0; i < 200; ++i) {
        if (!seen.count(test_key_id(seed, i))) {
            unissued = test_key_id(seed, i);
            break;
        }
    }
    auto slave = create_etsi014_client(client_cfg("SAE_B", a.server->port()));
    for (const auto& master : {"SAE_A", "SAE_C"}) {
        EXPECT_EQ(slave->dec_keys(master, std::vector<key_id>{unissued}).http_status, 400u);
    }
    for (std::size_t t = 0; t < got.size(); ++t) {
        for (const auto& k : got[t]) {
            const auto dec = slave->dec_keys(t % 2 ? "SAE_A" : "SAE_C", std::vector<key_id>{k.id});
            ASSERT_TRUE(dec.ok()) << dec.message;
            EXPECT_TRUE(std::equal(dec.keys[0].material.data(), dec.keys[0].material.data() + 32, k.material.data()));
        }
    }
}

// Two KMEs hold the same keys. SAE_A at KME_A asks for keys for SAE_R at KME_B; KME_A tells
// KME_B over mTLS (KME certificate) before answering, and SAE_R then gets them from KME_B.
TEST(etsi014, two_kmes_share_keys_via_reservation)
{
    std::optional<kme> b_holder;
    b_holder.emplace("KME_B", 1, 64, saes());
    kme& b = *b_holder;
    etsi014_client::config to_b = client_cfg("KME_A", b.server->port());
    etsi014_peer_notifier notifier({{"KME_B", to_b}});
    kme a("KME_A", 0, 64, saes(), &notifier);
    auto master = create_etsi014_client(client_cfg("SAE_A", a.server->port()));
    const auto enc = master->enc_keys("SAE_R", 4, 256);
    ASSERT_TRUE(enc.ok()) << enc.message;
    std::vector<key_id> ids;
    for (const auto& k : enc.keys) {
        EXPECT_EQ(partition_of(k.id), 0);
        ids.push_back(k.id);
    }
    // SAE_R is not registered at KME_A, and SAE_C (at KME_A) was not named.
    auto r_at_a = create_etsi014_client(client_cfg("SAE_R", a.server->port()));
    EXPECT_EQ(r_at_a->dec_keys("SAE_A", ids).http_status, 401u);
    auto slave = create_etsi014_client(client_cfg("SAE_R", b.server->port()));
    const auto dec = slave->dec_keys("SAE_A", ids);
    ASSERT_TRUE(dec.ok()) << dec.message;
    for (std::size_t i = 0; i < ids.size(); ++i) {
        EXPECT_EQ(dec.keys[i].id, ids[i]);
        EXPECT_TRUE(std::equal(dec.keys[i].material.data(), dec.keys[i].material.data() + 32, enc.keys[i].material.data()));
    }
    EXPECT_EQ(slave->dec_keys("SAE_A", ids).http_status, 400u);
    // KME_B's own enc_keys (partition 1) never hands out those keys.
    EXPECT_EQ(b.store->available(0), a.store->available(0));
    // An SAE cannot pose as a KME to reserve keys.
    auto fake = create_etsi014_client(client_cfg("SAE_C", b.server->port()));
    const auto fr = fake->request("POST", std::string(peer_reserve_path),
                                  R"({"master_SAE_ID":"SAE_A","slave_SAE_IDs":["SAE_R"],"key_IDs":[],"size":256})");
    EXPECT_EQ(fr.http_status, 401u);
    // Peer down: the master gets 503 and the keys are destroyed, not handed out.
    fake.reset();
    slave.reset();
    b_holder.reset();
    const auto down = master->enc_keys("SAE_R", 1, 256);
    EXPECT_EQ(down.http_status, 503u);
    EXPECT_TRUE(down.keys.empty());
    EXPECT_NE(down.message.find("KME_B"), std::string::npos) << down.message;
}

// A peer that accepts TCP but never completes TLS must not block the client (or a KME thread
// calling a peer KME) forever: the request fails after the configured timeout.
TEST(etsi014_client, silent_server_times_out)
{
    const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    ASSERT_EQ(::listen(lfd, 4), 0);
    socklen_t len = sizeof sa;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
    auto cfg = client_cfg("SAE_A", ntohs(sa.sin_port));
    cfg.timeout = std::chrono::milliseconds(300);
    auto c = create_etsi014_client(cfg);
    const auto r = c->status("SAE_B");  // kernel completes the TCP handshake, nobody answers
    EXPECT_EQ(r.http_status, 0u);
    EXPECT_FALSE(r.message.empty());
    ::close(lfd);
}

// A handler that may block runs on the server's blocking threads: with ONE network thread, a
// connection whose handler is stuck does not stop another connection's requests. (Were it run
// on the network thread, the status below could not be answered until the stuck handler is
// released, which happens only after it: the client's 5 s timeout would fail the test.)
TEST(https_server, blocking_handler_does_not_hold_the_network_thread)
{
    std::promise<void> release;
    const std::shared_future<void> released = release.get_future().share();
    std::atomic<int> blocked{0};
    https_server::config hc;
    hc.cert_file = pki().cert("KME_A");
    hc.key_file = pki().key("KME_A");
    hc.ca_file = pki().ca();
    hc.threads = 1;
    hc.blocking_threads = 1;
    auto is_slow = [](const http_request_view& r) { return r.target.find("dec_keys") != std::string_view::npos; };
    auto server = start_https_server(
        hc,
        [&](const http_request_view& r) -> http_reply {
            if (is_slow(r)) {
                ++blocked;
                released.wait();
                return {200, "{\"slow\":\"" + std::string(r.caller) + "\"}", "application/json", false};
            }
            return {200, "{\"fast\":true}", "application/json", false};
        },
        is_slow);
    auto slow = create_etsi014_client(client_cfg("SAE_B", server->port()));
    auto fast = create_etsi014_client(client_cfg("SAE_A", server->port()));
    etsi014_raw_result slow_reply;
    std::atomic<bool> slow_done{false};
    std::thread t([&] {
        slow_reply = slow->request("GET", "/api/v1/keys/SAE_A/dec_keys?key_ID=x", "");
        slow_done = true;
    });
    for (int i = 0; i < 1000 && blocked.load() == 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_EQ(blocked.load(), 1) << "the slow request never reached its handler";
    const auto r = fast->request("GET", "/api/v1/keys/SAE_B/status", "");
    EXPECT_EQ(r.http_status, 200u) << r.message;
    EXPECT_EQ(r.body, "{\"fast\":true}");
    EXPECT_FALSE(slow_done.load()) << "answered while its handler was still blocked";
    release.set_value();
    t.join();
    EXPECT_EQ(slow_reply.http_status, 200u) << slow_reply.message;
    EXPECT_EQ(slow_reply.body, "{\"slow\":\"SAE_B\"}");  // the view (caller, target) survived the hop
    server->stop();
}

// Which requests the service sends to the blocking threads.
TEST(etsi014, may_block_marks_the_requests_that_wait_for_a_commit)
{
    kme pooled("KME_A", -1, 8, saes(), nullptr, 16, 16);
    kme plain("KME_A", -1, 8, saes());
    auto req = [](std::string_view method, std::string_view target) {
        return http_request_view{method, target, {}, "SAE_A"};
    };
    for (kme* k : {&pooled, &plain}) {
        EXPECT_TRUE(k->service->may_block(req("GET", "/api/v1/keys/SAE_A/dec_keys?key_ID=x")));
        EXPECT_TRUE(k->service->may_block(req("POST", "/api/v1/keys/SAE_A/dec_keys")));
        EXPECT_TRUE(k->service->may_block(req("POST", peer_reserve_path)));
        EXPECT_FALSE(k->service->may_block(req("GET", "/api/v1/keys/SAE_B/status")));
        EXPECT_FALSE(k->service->may_block(req("GET", "/nothing/here")));
        // A slave at another KME: no pool, and a reservation call to that KME.
        EXPECT_TRUE(k->service->may_block(req("GET", "/api/v1/keys/SAE_R/enc_keys")));
    }
    // enc_keys for a local slave: a pop from the pool, or a commit without one.
    EXPECT_FALSE(pooled.service->may_block(req("GET", "/api/v1/keys/SAE_B/enc_keys?number=1")));
    EXPECT_FALSE(pooled.service->may_block(req("POST", "/api/v1/keys/SAE_B/enc_keys")));
    EXPECT_TRUE(plain.service->may_block(req("GET", "/api/v1/keys/SAE_B/enc_keys?number=1")));
}

// TLS session resumption (TLS 1.3 tickets, TLS 1.2 tickets) with openssl s_client as the peer:
// the second connection resumes the first one's session ("Reused") without a new certificate
// exchange, and the caller is still the SAE of the certificate the session was made with.
TEST(etsi014, tls_session_resumption_with_openssl_s_client)
{
    kme a("KME_A", -1, 8, saes());
    const std::string port = std::to_string(a.server->port());
    const std::string sess = (a.dir / "session.pem").string();
    auto s_client = [&](const std::string& version, const std::string& session_arg) {
        const std::string req = "GET /api/v1/keys/SAE_B/status HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n";
        std::string out;
        run_cmd("printf '" + req + "' | timeout 20 openssl s_client -connect 127.0.0.1:" + port +
                    " -servername localhost " + version + " -CAfile " + pki().ca() + " -cert " + pki().cert("SAE_A") +
                    " -key " + pki().key("SAE_A") + " -ign_eof " + session_arg + " 2>&1",
                &out);
        return out;
    };
    for (const std::string version : {"-tls1_3", "-tls1_2"}) {
        std::filesystem::remove(sess);
        const auto first = s_client(version, "-sess_out " + sess);
        EXPECT_NE(first.find("New, TLSv1."), std::string::npos) << version << ":\n" << first;
        EXPECT_NE(first.find("\"master_SAE_ID\":\"SAE_A\""), std::string::npos) << first;
        ASSERT_TRUE(std::filesystem::exists(sess)) << version << ": no session saved\n" << first;
        const auto again = s_client(version, "-sess_in " + sess);
        EXPECT_NE(again.find("Reused, TLSv1."), std::string::npos) << version << ":\n" << again;
        EXPECT_NE(again.find("HTTP/1.1 200"), std::string::npos) << again;
        EXPECT_NE(again.find("\"master_SAE_ID\":\"SAE_A\""), std::string::npos) << again;
    }
}
