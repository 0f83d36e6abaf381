// ETSI GS QKD 014 request handling: routing, parameter validation, SAE authorisation, key containers.
#include "qlink/keymgmt/etsi014.hpp"

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <set>

namespace qlink::keymgmt {

using json = nlohmann::json;

std::string base64_encode(std::span<const std::uint8_t> in)
{
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), in.data(), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<secret_bytes> base64_decode(std::string_view in)
{
    if (in.size() % 4 != 0) {
        return std::nullopt;
    }
    for (char c : in) {
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/' && c != '=') {
            return std::nullopt;
        }
    }
    secret_bytes out(in.size() / 4 * 3 + 1);
    const int n = EVP_DecodeBlock(out.data(), reinterpret_cast<const unsigned char*>(in.data()),
                                  static_cast<int>(in.size()));
    if (n < 0) {
        return std::nullopt;
    }
    std::size_t len = static_cast<std::size_t>(n);
    // EVP_DecodeBlock counts padding as zero bytes.
    if (!in.empty() && in.back() == '=') {
        --len;
        if (in.size() >= 2 && in[in.size() - 2] == '=') {
            --len;
        }
    }
    out.truncate(len);
    return out;
}

namespace {

std::string url_decode(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size()) {
            unsigned v = 0;
            const auto r = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
            if (r.ec == std::errc() && r.ptr == s.data() + i + 3) {
                out.push_back(static_cast<char>(v));
                i += 2;
                continue;
            }
        }
        out.push_back(s[i] == '+' ? ' ' : s[i]);
    }
    return out;
}

std::vector<std::pair<std::string, std::string>> parse_query(std::string_view q)
{
    std::vector<std::pair<std::string, std::string>> out;
    while (!q.empty()) {
        const auto amp = q.find('&');
        const auto part = q.substr(0, amp);
        const auto eq = part.find('=');
        out.emplace_back(url_decode(part.substr(0, eq)), eq == std::string_view::npos ? "" : url_decode(part.substr(eq + 1)));
        if (amp == std::string_view::npos) {
            break;
        }
        q.remove_prefix(amp + 1);
    }
    return out;
}

bool parse_size(std::string_view s, std::int64_t& out)
{
    const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
    return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// Appends {"keys":[{"key_ID":..,"key":..},...]} straight into the body so key material only
// ever lives in buffers we cleanse.
http_reply key_container(std::vector<served_key>& keys)
{
    http_reply r;
    r.secret = true;
    std::size_t cap = 16;
    for (const auto& k : keys) {
        cap += 40 + 36 + 4 * ((k.material.size() + 2) / 3) + 16;
    }
    r.body.reserve(cap);
    r.body += "{\"keys\":[";
    for (std::size_t i = 0; i < keys.size(); ++i) {
        if (i != 0) {
            r.body += ',';
        }
        r.body += "{\"key_ID\":\"";
        r.body += key_id_to_string(keys[i].id);
        r.body += "\",\"key\":\"";
        const std::size_t at = r.body.size();
        r.body.resize(at + 4 * ((keys[i].material.size() + 2) / 3));
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(r.body.data() + at), keys[i].material.data(),
                        static_cast<int>(keys[i].material.size()));
        r.body += "\"}";
    }
    r.body += "]}";
    return r;
}

}  // namespace

etsi014_service::etsi014_service(config cfg, key_store& store, peer_kme_notifier* notifier)
    : cfg_(std::move(cfg)), store_(store), notifier_(notifier)
{
}

const sae_entry* etsi014_service::find_sae(std::string_view id) const
{
    for (const auto& s : cfg_.saes) {
        if (s.sae_id == id) {
            return &s;
        }
    }
    return nullptr;
}

http_reply etsi014_service::error(unsigned code, std::string message, std::vector<std::string> details)
{
    if (code == 400) {
        ++counters_.errors_400;
    } else if (code == 401) {
        ++counters_.errors_401;
    } else if (code == 503) {
        ++counters_.errors_503;
    }
    json j;
    j["message"] = std::move(message);
    if (!details.empty()) {
        json d = json::array();
        for (auto& s : details) {
            d.push_back(json{{"reason", std::move(s)}});
        }
        j["details"] = std::move(d);
    }
    return {code, j.dump(), "application/json", false};
}

http_reply etsi014_service::handle(const http_request_view& req)
{
    try {
        std::string_view target = req.target;
        std::string_view query;
        if (const auto q = target.find('?'); q != std::string_view::npos) {
            query = target.substr(q + 1);
            target = target.substr(0, q);
        }
        if (target == peer_reserve_path) {
            if (req.method != "POST") {
                return error(405, "method " + std::string(req.method) + " not allowed on " + std::string(target));
            }
            return peer_reserve(req.caller, req.body);
        }
        constexpr std::string_view prefix = "/api/v1/keys/";
        if (target.substr(0, prefix.size()) != prefix) {
            return error(404, "unknown path " + std::string(target));
        }
        auto rest = target.substr(prefix.size());
        const auto slash = rest.find('/');
        if (slash == std::string_view::npos || slash == 0) {
            return error(404, "unknown path " + std::string(target));
        }
        const std::string sae = url_decode(rest.substr(0, slash));
        const auto op = rest.substr(slash + 1);
        const sae_entry* me = find_sae(req.caller);
        if (me == nullptr || me->kme_id != cfg_.kme_id) {
            return error(401, "SAE '" + std::string(req.caller) + "' (from its certificate) is not registered at KME '" +
                                  cfg_.kme_id + "'");
        }
        const bool get = req.method == "GET";
        const bool post = req.method == "POST";
        if (op == "status") {
            if (!get) {
                return error(405, "status supports GET only");
            }
            return status(req.caller, sae);
        }
        if (op == "enc_keys") {
            if (!get && !post) {
                return error(405, "enc_keys supports GET and POST only");
            }
            return enc_keys(req.caller, sae, req.method, query, req.body);
        }
        if (op == "dec_keys") {
            if (!get && !post) {
                return error(405, "dec_keys supports GET and POST only");
            }
            return dec_keys(req.caller, sae, req.method, query, req.body);
        }
        return error(404, "unknown path " + std::string(target));
    } catch (const std::exception& e) {
        return error(503, std::string("internal error: ") + e.what());
    }
}

bool etsi014_service::may_block(const http_request_view& req) const
{
    std::string_view target = req.target.substr(0, req.target.find('?'));
    if (target == peer_reserve_path) {
        return true;
    }
    constexpr std::string_view prefix = "/api/v1/keys/";
    if (target.substr(0, prefix.size()) != prefix) {
        return false;
    }
    target.remove_prefix(prefix.size());
    const auto slash = target.find('/');
    if (slash == std::string_view::npos) {
        return false;
    }
    const auto op = target.substr(slash + 1);
    if (op == "dec_keys") {
        return true;
    }
    if (op != "enc_keys") {
        return false;
    }
    if (store_.cfg().handout_pool == 0) {
        return true;
    }
    // With a pool the hand-out is a pop from memory, unless a slave is at another KME (no pool,
    // and a reservation call to that KME); a POST may name such slaves in its body.
    const sae_entry* s = find_sae(url_decode(target.substr(0, slash)));
    if (s != nullptr && s->kme_id != cfg_.kme_id) {
        return true;
    }
    return req.method == "POST" && notifier_ != nullptr;
}

http_reply etsi014_service::status(std::string_view caller, std::string_view slave)
{
    const sae_entry* s = find_sae(slave);
    if (s == nullptr) {
        return error(400, "unknown slave_SAE_ID '" + std::string(slave) + "'");
    }
    json j;
    j["source_KME_ID"] = cfg_.kme_id;
    j["target_KME_ID"] = s->kme_id;
    j["master_SAE_ID"] = std::string(caller);
    j["slave_SAE_ID"] = s->sae_id;
    j["key_size"] = cfg_.key_size_bits;
    j["stored_key_count"] = store_.available(cfg_.enc_partition);
    j["max_key_count"] = store_.cfg().max_key_count;
    j["max_key_per_request"] = cfg_.max_key_per_request;
    j["max_key_size"] = cfg_.max_key_size_bits;
    j["min_key_size"] = cfg_.min_key_size_bits;
    j["max_SAE_ID_count"] = cfg_.max_sae_id_count;
    return {200, j.dump(), "application/json", false};
}

http_reply etsi014_service::enc_keys(std::string_view caller, std::string_view slave, std::string_view method,
                                     std::string_view query, std::string_view body)
{
    ++counters_.enc_requests;
    const sae_entry* s = find_sae(slave);
    if (s == nullptr) {
        return error(400, "unknown slave_SAE_ID '" + std::string(slave) + "'");
    }
    std::int64_t number = 1;
    std::int64_t size = static_cast<std::int64_t>(cfg_.key_size_bits);
    std::vector<std::string> slaves{s->sae_id};
    if (method == "GET") {
        for (const auto& [k, v] : parse_query(query)) {
            if (k == "number") {
                if (!parse_size(v, number)) {
                    return error(400, "number must be an integer", {"number=" + v});
                }
            } else if (k == "size") {
                if (!parse_size(v, size)) {
                    return error(400, "size must be an integer", {"size=" + v});
                }
            } else {
                return error(400, "unknown query parameter '" + k + "'", {"allowed: number, size"});
            }
        }
    } else {
        const json j = json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            return error(400, "request body is not a JSON object");
        }
        for (const auto& [k, v] : j.items()) {
            if (k == "number") {
                if (!v.is_number_integer()) {
                    return error(400, "number must be an integer");
                }
                number = v.get<std::int64_t>();
            } else if (k == "size") {
                if (!v.is_number_integer()) {
                    return error(400, "size must be an integer");
                }
                size = v.get<std::int64_t>();
            } else if (k == "additional_slave_SAE_IDs") {
                if (!v.is_array()) {
                    return error(400, "additional_slave_SAE_IDs must be an array of strings");
                }
                for (const auto& e : v) {
                    if (!e.is_string()) {
                        return error(400, "additional_slave_SAE_IDs must be an array of strings");
                    }
                    const auto id = e.get<std::string>();
                    if (find_sae(id) == nullptr) {
                        return error(400, "unknown additional slave SAE ID '" + id + "'");
                    }
                    if (std::find(slaves.begin(), slaves.end(), id) == slaves.end()) {
                        slaves.push_back(id);
                    }
                }
            } else if (k == "extension_mandatory") {
                if (!v.is_array()) {
                    return error(400, "extension_mandatory must be an array");
                }
                if (!v.empty()) {
                    std::vector<std::string> names;
                    for (const auto& e : v) {
                        if (e.is_object()) {
                            for (const auto& [ek, ev] : e.items()) {
                                names.push_back(ek);
                            }
                        }
                    }
                    return error(400, "mandatory extension(s) not supported by this KME", names);
                }
            } else if (k == "extension_optional") {
                if (!v.is_array()) {
                    return error(400, "extension_optional must be an array");
                }
            } else {
                return error(400, "unknown request field '" + k + "'",
                             {"allowed: number, size, additional_slave_SAE_IDs, extension_mandatory, extension_optional"});
            }
        }
    }
    if (number < 1 || static_cast<std::uint64_t>(number) > cfg_.max_key_per_request) {
        return error(400, "number must be between 1 and max_key_per_request (" +
                              std::to_string(cfg_.max_key_per_request) + "), got " + std::to_string(number));
    }
    if (size % 8 != 0) {
        return error(400, "size must be a multiple of 8, got " + std::to_string(size));
    }
    if (size > static_cast<std::int64_t>(cfg_.max_key_size_bits)) {
        return error(400, "size " + std::to_string(size) + " exceeds max_key_size " +
                              std::to_string(cfg_.max_key_size_bits));
    }
    if (size < static_cast<std::int64_t>(cfg_.min_key_size_bits)) {
        return error(400, "size " + std::to_string(size) + " is below min_key_size " +
                              std::to_string(cfg_.min_key_size_bits));
    }
    if (slaves.size() - 1 > cfg_.max_sae_id_count) {
        return error(400, "more than max_SAE_ID_count (" + std::to_string(cfg_.max_sae_id_count) +
                              ") additional slave SAE IDs");
    }
    // Slaves attached here get local grants; slaves at other KMEs are announced to those KMEs.
    std::vector<std::string> local;
    std::vector<std::pair<std::string, std::vector<std::string>>> remote;
    for (const auto& id : slaves) {
        const sae_entry* e = find_sae(id);
        if (e->kme_id == cfg_.kme_id) {
            local.push_back(id);
            continue;
        }
        auto it = std::find_if(remote.begin(), remote.end(), [&](const auto& p) { return p.first == e->kme_id; });
        if (it == remote.end()) {
            remote.push_back({e->kme_id, {}});
            it = remote.end() - 1;
        }
        it->second.push_back(id);
    }
    if (!remote.empty() && notifier_ == nullptr) {
        return error(503, "slave SAE is attached to another KME but no peer KME link is configured");
    }
    const auto available = store_.available(cfg_.enc_partition);
    if (static_cast<std::uint64_t>(number) > available) {
        return error(400, "requested " + std::to_string(number) + " keys but only " + std::to_string(available) +
                              " are available");
    }
    std::vector<served_key> keys;
    const auto r = store_.take_next(caller, local, static_cast<std::size_t>(number), static_cast<std::size_t>(size / 8),
                                    cfg_.enc_partition, keys);
    if (r.status == store_status::not_enough || r.status == store_status::bad_request) {
        return error(400, r.message);
    }
    if (!r.ok()) {
        return error(503, r.message);
    }
    if (!remote.empty()) {
        std::vector<key_id> ids;
        for (const auto& k : keys) {
            ids.push_back(k.id);
        }
        for (const auto& [kme, sl] : remote) {
            std::string why;
            if (!notifier_->reserve(kme, caller, sl, ids, static_cast<std::size_t>(size), why)) {
                // The keys were never delivered; destroy them so no one can get them later.
                store_.destroy(ids);
                return error(503, "peer KME '" + kme + "' did not confirm the reservation", {why});
            }
            ++counters_.peer_reservations;
        }
    }
    counters_.keys_served_enc += keys.size();
    return key_container(keys);
}

http_reply etsi014_service::dec_keys(std::string_view caller, std::string_view master, std::string_view method,
                                     std::string_view query, std::string_view body)
{
    ++counters_.dec_requests;
    if (find_sae(master) == nullptr) {
        return error(400, "unknown master_SAE_ID '" + std::string(master) + "'");
    }
    std::vector<std::string> texts;
    if (method == "GET") {
        for (const auto& [k, v] : parse_query(query)) {
            if (k != "key_ID") {
                return error(400, "unknown query parameter '" + k + "'", {"allowed: key_ID"});
            }
            texts.push_back(v);
        }
    } else {
        const json j = json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) {
            return error(400, "request body is not a JSON object");
        }
        for (const auto& [k, v] : j.items()) {
            if (k == "key_IDs") {
                if (!v.is_array()) {
                    return error(400, "key_IDs must be an array of {\"key_ID\": ...} objects");
                }
                for (const auto& e : v) {
                    if (!e.is_object() || !e.contains("key_ID") || !e["key_ID"].is_string()) {
                        return error(400, "key_IDs must be an array of {\"key_ID\": ...} objects");
                    }
                    texts.push_back(e["key_ID"].get<std::string>());
                }
            } else if (k != "key_IDs_extension") {
                return error(400, "unknown request field '" + k + "'", {"allowed: key_IDs, key_IDs_extension"});
            }
        }
    }
    if (texts.empty()) {
        return error(400, "no key_ID given");
    }
    if (texts.size() > cfg_.max_key_per_request) {
        return error(400, "more than max_key_per_request (" + std::to_string(cfg_.max_key_per_request) + ") key IDs");
    }
    std::vector<key_id> ids;
    std::set<key_id> seen;
    for (const auto& t : texts) {
        const auto id = parse_key_id(t);
        if (!id) {
            return error(400, "malformed key_ID '" + t.substr(0, 64) + "'");
        }
        if (!seen.insert(*id).second) {
            return error(400, "key_ID " + t + " requested twice");
        }
        ids.push_back(*id);
    }
    std::vector<served_key> keys;
    const auto r = store_.take_granted(caller, ids, keys, master);
    if (r.status == store_status::io_error) {
        return error(503, r.message);
    }
    if (!r.ok()) {
        return error(400, "key not available", {r.message});
    }
    counters_.keys_served_dec += keys.size();
    return key_container(keys);
}

http_reply etsi014_service::peer_reserve(std::string_view caller, std::string_view body)
{
    // Only another KME of this deployment may reserve keys here.
    const bool known_peer = !caller.empty() && caller != cfg_.kme_id &&
                            std::any_of(cfg_.saes.begin(), cfg_.saes.end(),
                                        [&](const sae_entry& e) { return e.kme_id == caller; });
    if (!known_peer) {
        return error(401, "'" + std::string(caller) + "' is not a peer KME of '" + cfg_.kme_id + "'");
    }
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("master_SAE_ID") || !j["master_SAE_ID"].is_string() ||
        !j.contains("slave_SAE_IDs") || !j["slave_SAE_IDs"].is_array() || !j.contains("key_IDs") ||
        !j["key_IDs"].is_array() || !j.contains("size") || !j["size"].is_number_integer()) {
        return error(400, "reservation needs master_SAE_ID, slave_SAE_IDs, key_IDs and size");
    }
    const auto master = j["master_SAE_ID"].get<std::string>();
    const sae_entry* m = find_sae(master);
    if (m == nullptr || m->kme_id != caller) {
        return error(400, "master SAE '" + master + "' is not attached to KME '" + std::string(caller) + "'");
    }
    std::vector<std::string> slaves;
    for (const auto& e : j["slave_SAE_IDs"]) {
        const sae_entry* s = e.is_string() ? find_sae(e.get<std::string>()) : nullptr;
        if (s == nullptr || s->kme_id != cfg_.kme_id) {
            return error(400, "slave SAE " + e.dump() + " is not attached to KME '" + cfg_.kme_id + "'");
        }
        slaves.push_back(s->sae_id);
    }
    std::vector<key_id> ids;
    for (const auto& e : j["key_IDs"]) {
        const auto id = e.is_string() ? parse_key_id(e.get<std::string>()) : std::nullopt;
        if (!id) {
            return error(400, "malformed key ID in reservation");
        }
        ids.push_back(*id);
    }
    const auto size = j["size"].get<std::int64_t>();
    if (slaves.empty() || ids.empty() || size <= 0 || size % 8 != 0) {
        return error(400, "reservation needs at least one slave, one key ID and a size that is a multiple of 8");
    }
    const auto r = store_.reserve(master, ids, static_cast<std::size_t>(size / 8), slaves, nullptr);
    if (r.status == store_status::io_error) {
        return error(503, r.message);
    }
    if (!r.ok()) {
        return error(400, "reservation refused", {r.message});
    }
    ++counters_.peer_reservations;
    return {200, R"({"reserved":)" + std::to_string(ids.size()) + "}", "application/json", false};
}

}  // namespace qlink::keymgmt
