// Fallback link keys: X25519 PEM loading and checks, HKDF-SHA-256 per key ID, the write-ahead transmit counter.
#include "qlink/terminal/fallback_keys.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/pem.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace qlink::terminal {

namespace {

constexpr char info_label[] = "qlink fallback link key v1";
constexpr char state_label[] = "qlink fallback state v1";
constexpr char state_magic[] = "qlink-fallback-state v1";

struct pkey_free {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;

// The file's bytes; a private key's PEM text is wiped by the caller through `cleanse`.
std::string read_file(const std::string& path, const char* what)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) throw fallback_key_error(std::string(what) + " " + path + ": cannot read (" + std::strerror(errno) + ")");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

void cleanse(std::string& s)
{
    if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
    s.clear();
}

std::string type_name(EVP_PKEY* k)
{
    const char* n = EVP_PKEY_get0_type_name(k);
    return n != nullptr ? n : "unknown";
}

pkey_ptr read_private(const std::string& path)
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        throw fallback_key_error("private key " + path + ": " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) throw fallback_key_error("private key " + path + ": not a regular file");
    std::string pem = read_file(path, "private key");
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    pkey_ptr k(bio != nullptr ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr) : nullptr);
    BIO_free(bio);
    const bool looks_public = pem.find("PUBLIC KEY-----") != std::string::npos;
    cleanse(pem);
    ERR_clear_error();  // a failed parse leaves entries that would confuse later OpenSSL callers
    if (!k) {
        throw fallback_key_error("private key " + path + ": " +
                                 (looks_public ? "holds a PUBLIC key; give this end's private key"
                                               : "not a PEM private key (make one with: openssl genpkey -algorithm X25519 -out " + path + ")"));
    }
    if (!EVP_PKEY_is_a(k.get(), "X25519")) {
        throw fallback_key_error("private key " + path + ": is " + type_name(k.get()) + ", not X25519");
    }
    // Checked after parsing so that a public key given here is named as such.
    if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw fallback_key_error("private key " + path + " is accessible by others (mode " + mode +
                                 "); a link key must not be: chmod 600 " + path);
    }
    return k;
}

std::array<std::uint8_t, 32> raw_public(EVP_PKEY* k, const std::string& path)
{
    std::array<std::uint8_t, 32> pub{};
    std::size_t n = pub.size();
    if (EVP_PKEY_get_raw_public_key(k, pub.data(), &n) != 1 || n != pub.size()) {
        throw fallback_key_error("key " + path + ": cannot export the X25519 public key");
    }
    return pub;
}

pkey_ptr read_public(const std::string& path)
{
    std::string pem = read_file(path, "peer public key");
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    pkey_ptr k(bio != nullptr ? PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr) : nullptr);
    BIO_free(bio);
    const bool looks_private = pem.find("PRIVATE KEY-----") != std::string::npos;
    cleanse(pem);  // it may hold a private key by mistake
    ERR_clear_error();
    if (!k) {
        throw fallback_key_error("peer public key " + path + ": " +
                                 (looks_private ? "holds a PRIVATE key; give the peer's public key (openssl pkey -in k.pem -pubout)"
                                                : "not a PEM public key (openssl pkey -in k.pem -pubout)"));
    }
    if (!EVP_PKEY_is_a(k.get(), "X25519")) {
        throw fallback_key_error("peer public key " + path + ": is " + type_name(k.get()) + ", not X25519");
    }
    return k;
}

// HKDF-SHA-256 in one mode (extract or expand) through OpenSSL's KDF API.
bool hkdf(int mode, std::span<const std::uint8_t> key, std::span<const std::uint8_t> salt_or_info,
          std::span<std::uint8_t> out)
{
    EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
    EVP_KDF_CTX* ctx = kdf != nullptr ? EVP_KDF_CTX_new(kdf) : nullptr;
    char digest[] = "SHA256";
    int m = mode;
    auto* kp = const_cast<std::uint8_t*>(key.data());
    auto* sp = const_cast<std::uint8_t*>(salt_or_info.data());
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &m),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, kp, key.size()),
        OSSL_PARAM_construct_octet_string(mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY ? OSSL_KDF_PARAM_SALT : OSSL_KDF_PARAM_INFO,
                                          sp, salt_or_info.size()),
        OSSL_PARAM_construct_end(),
    };
    const bool ok = ctx != nullptr && EVP_KDF_derive(ctx, out.data(), out.size(), params) == 1;
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
    if (!ok) OPENSSL_cleanse(out.data(), out.size());
    return ok;
}

std::string hex(std::span<const std::uint8_t> b)
{
    static constexpr char d[] = "0123456789abcdef";
    std::string s;
    for (auto x : b) {
        s += d[x >> 4];
        s += d[x & 15];
    }
    return s;
}

bool fsync_path(const std::string& path, int flags)
{
    const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::fsync(fd) == 0;
    ::close(fd);
    return ok;
}

std::string parent_dir(const std::string& path)
{
    auto p = std::filesystem::path(path).parent_path().string();
    return p.empty() ? "." : p;
}

}  // namespace

std::array<std::uint8_t, 32> x25519_public_from_private_pem(const std::string& path)
{
    const auto k = read_private(path);
    return raw_public(k.get(), path);
}

std::array<std::uint8_t, 32> x25519_public_from_pem(const std::string& path)
{
    const auto k = read_public(path);
    return raw_public(k.get(), path);
}

keymgmt::secret_bytes x25519_shared_from_pem(const std::string& private_pem, const std::string& peer_public_pem)
{
    const auto me = read_private(private_pem);
    const auto peer = read_public(peer_public_pem);
    if (raw_public(me.get(), private_pem) == raw_public(peer.get(), peer_public_pem)) {
        throw fallback_key_error("peer public key " + peer_public_pem + " is this end's own public key (of " + private_pem +
                                 "); give the far end's");
    }
    EVP_PKEY_CTX* ctx = EVP_PKEY_CTX_new(me.get(), nullptr);
    keymgmt::secret_bytes shared(32);
    std::size_t len = shared.size();
    // OpenSSL refuses an all-zero result (a low-order peer point) in EVP_PKEY_derive.
    const bool ok = ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_derive_set_peer(ctx, peer.get()) == 1 &&
                    EVP_PKEY_derive(ctx, shared.data(), &len) == 1 && len == 32;
    EVP_PKEY_CTX_free(ctx);
    if (!ok) {
        throw fallback_key_error("X25519 with peer public key " + peer_public_pem + " failed (invalid or low-order point)");
    }
    return shared;
}

std::vector<std::uint8_t> fallback_info(std::uint16_t spacecraft_id, std::uint8_t vcid, link_role sender, std::uint32_t key_id,
                                        const std::array<std::uint8_t, 32>& ground_public,
                                        const std::array<std::uint8_t, 32>& space_public)
{
    std::vector<std::uint8_t> info(info_label, info_label + sizeof info_label - 1);
    info.push_back(0);
    info.push_back(static_cast<std::uint8_t>(spacecraft_id >> 8));
    info.push_back(static_cast<std::uint8_t>(spacecraft_id));
    info.push_back(vcid);
    info.push_back(sender == link_role::ground ? 'G' : 'S');
    for (int i = 3; i >= 0; --i) info.push_back(static_cast<std::uint8_t>(key_id >> (8 * i)));
    info.insert(info.end(), ground_public.begin(), ground_public.end());
    info.insert(info.end(), space_public.begin(), space_public.end());
    return info;
}

fallback_key_source::fallback_key_source(config cfg) : cfg_(std::move(cfg))
{
    if (cfg_.state_file.empty()) throw fallback_key_error("fallback state file: no path given");
    cfg_.reserve = std::max<std::uint32_t>(cfg_.reserve, 1);
    const auto own = x25519_public_from_private_pem(cfg_.private_key_pem);
    const auto peer = x25519_public_from_pem(cfg_.peer_public_key_pem);
    (cfg_.role == link_role::ground ? ground_pub_ : space_pub_) = own;
    (cfg_.role == link_role::ground ? space_pub_ : ground_pub_) = peer;
    {
        auto shared = x25519_shared_from_pem(cfg_.private_key_pem, cfg_.peer_public_key_pem);
        prk_ = keymgmt::secret_bytes(32);
        const auto* salt = reinterpret_cast<const std::uint8_t*>(fallback_hkdf_salt);
        if (!hkdf(EVP_KDF_HKDF_MODE_EXTRACT_ONLY, shared.span(), {salt, sizeof fallback_hkdf_salt - 1}, prk_.span())) {
            throw fallback_key_error("HKDF-SHA-256 extract failed (OpenSSL)");
        }
    }  // the shared secret is wiped here; only the PRK stays

    // The state belongs to one key pair and one link: another pair's counter must not be trusted.
    std::vector<std::uint8_t> tag_in(state_label, state_label + sizeof state_label - 1);
    tag_in.push_back(static_cast<std::uint8_t>(cfg_.spacecraft_id >> 8));
    tag_in.push_back(static_cast<std::uint8_t>(cfg_.spacecraft_id));
    tag_in.push_back(cfg_.vcid);
    tag_in.push_back(cfg_.role == link_role::ground ? 'G' : 'S');
    tag_in.insert(tag_in.end(), ground_pub_.begin(), ground_pub_.end());
    tag_in.insert(tag_in.end(), space_pub_.begin(), space_pub_.end());
    unsigned tag_len = 0;
    if (EVP_Digest(tag_in.data(), tag_in.size(), state_tag_.data(), &tag_len, EVP_sha256(), nullptr) != 1) {
        throw fallback_key_error("SHA-256 failed (OpenSSL)");
    }

    const std::string& sf = cfg_.state_file;
    const auto dir = parent_dir(sf);
    if (!std::filesystem::is_directory(dir)) {
        throw fallback_key_error("fallback state " + sf + ": directory " + dir + " does not exist");
    }
    if (::access(dir.c_str(), W_OK) != 0) {
        throw fallback_key_error("fallback state " + sf + ": directory " + dir + " is not writable");
    }
    if (std::filesystem::exists(sf)) {
        if (::access(sf.c_str(), R_OK | W_OK) != 0) {
            throw fallback_key_error("fallback state " + sf + ": not readable and writable by this user");
        }
        std::istringstream in(read_file(sf, "fallback state"));
        std::string magic, v, tag_key, tag, idx_key;
        unsigned long long idx = 0;
        if (!(in >> magic >> v) || magic + " " + v != state_magic || !(in >> tag_key >> tag >> idx_key >> idx) ||
            tag_key != "tag" || idx_key != "next_index" || idx > fallback_keys_per_direction) {
            throw fallback_key_error("fallback state " + sf + ": not a qlinkd fallback state file (corrupt?); refusing "
                                     "to guess the key counter");
        }
        if (tag != hex(state_tag_)) {
            throw fallback_key_error("fallback state " + sf + " belongs to another key pair or link (spacecraft ID, VC, "
                                     "role); delete it only if THIS key pair has never sent on this link");
        }
        next_ = persisted_ = static_cast<std::uint32_t>(idx);
    }
}

bool fallback_key_source::persist(std::uint32_t mark)
{
    const std::string tmp = cfg_.state_file + ".tmp";
    std::ostringstream os;
    os << state_magic << "\ntag " << hex(state_tag_) << "\nnext_index " << mark << "\n";
    const std::string text = os.str();
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        last_error_ = "fallback state " + tmp + ": " + std::strerror(errno);
        return false;
    }
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ok = (::close(fd) == 0) && ok;
    if (!ok || std::rename(tmp.c_str(), cfg_.state_file.c_str()) != 0) {
        last_error_ = "fallback state " + cfg_.state_file + ": write failed (" + std::strerror(errno) + ")";
        ::unlink(tmp.c_str());
        return false;
    }
    // The rename itself must survive a power cut before any key with these indices goes on air.
    if (!fsync_path(parent_dir(cfg_.state_file), O_RDONLY | O_DIRECTORY)) {
        last_error_ = "fallback state " + cfg_.state_file + ": fsync of its directory failed";
        return false;
    }
    return true;
}

std::optional<std::uint32_t> fallback_key_source::next_key(std::span<std::uint8_t, modem::link_key_length> key)
{
    std::uint32_t id = 0;
    std::uint64_t sent = 0;
    {
        std::lock_guard lk(mu_);
        if (next_ >= fallback_keys_per_direction) {
            last_error_ = "fallback key range used up (" + std::to_string(fallback_keys_per_direction) +
                          " keys per direction): make a new X25519 key pair";
            ++c_.refused;
            return std::nullopt;
        }
        if (next_ >= persisted_) {
            const auto mark = static_cast<std::uint32_t>(
                std::min<std::uint64_t>(std::uint64_t{next_} + cfg_.reserve, fallback_keys_per_direction));
            if (!persist(mark)) {
                ++c_.state_errors;
                return std::nullopt;  // without the write-ahead record a restart could reuse this key
            }
            persisted_ = mark;
        }
        id = fallback_key_id(cfg_.role, next_);
        if (!derive(cfg_.role, id, key)) {
            last_error_ = "HKDF-SHA-256 expand failed (OpenSSL)";
            return std::nullopt;
        }
        ++next_;  // used or not, never handed out again
        sent = ++c_.keys_sent;
    }
    if (cfg_.on_tx_key) cfg_.on_tx_key(id, sent);
    return id;
}

bool fallback_key_source::key_by_id(std::uint32_t key_id, std::span<std::uint8_t, modem::link_key_length> key)
{
    const link_role peer = cfg_.role == link_role::ground ? link_role::space : link_role::ground;
    if (!is_fallback_key_id(key_id) || fallback_key_sender(key_id) != peer) {
        // Our own direction's keys never protect frames we receive (a reflected frame, or a forgery).
        ++c_.refused;
        return false;
    }
    std::lock_guard lk(mu_);
    if (!derive(peer, key_id, key)) return false;
    ++c_.keys_received;
    return true;
}

bool fallback_key_source::derive(link_role sender, std::uint32_t key_id,
                                 std::span<std::uint8_t, modem::link_key_length> key) const
{
    const auto info = fallback_info(cfg_.spacecraft_id, cfg_.vcid, sender, key_id, ground_pub_, space_pub_);
    return hkdf(EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk_.span(), info, key);
}

std::uint32_t fallback_key_source::next_index() const
{
    std::lock_guard lk(mu_);
    return next_;
}

std::string fallback_key_source::last_error() const
{
    std::lock_guard lk(mu_);
    return last_error_;
}

}  // namespace qlink::terminal
