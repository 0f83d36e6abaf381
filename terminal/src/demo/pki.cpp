// In-process test PKI for the demo's ETSI 014 servers and clients (OpenSSL 3 EVP/X509 API).
#include "demo/pki.hpp"

#include <cstdio>
#include <memory>
#include <stdexcept>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace qlink::terminal::demo_detail {

namespace {

struct pkey_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;

void check(bool ok, const char* what) {
    if (!ok) throw std::runtime_error(std::string("demo PKI: ") + what + " failed");
}

pkey_ptr new_key() {
    pkey_ptr k(EVP_EC_gen("P-256"));
    check(k != nullptr, "P-256 key generation");
    return k;
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    check(ext != nullptr, "certificate extension");
    const int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    check(ok == 1, "adding a certificate extension");
}

x509_ptr make_cert(const std::string& cn, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key, int days, bool ca) {
    x509_ptr c(X509_new());
    check(c != nullptr, "X509_new");
    check(X509_set_version(c.get(), 2) == 1, "certificate version");
    unsigned char serial[16];
    check(RAND_bytes(serial, sizeof serial) == 1, "serial number");
    serial[0] &= 0x7F;  // positive
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    check(bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c.get())) != nullptr, "serial number");
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(c.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c.get()), 86400L * days);
    X509_NAME* name = X509_get_subject_name(c.get());
    check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1,
                                     -1, 0) == 1,
          "subject name");
    check(X509_set_issuer_name(c.get(), issuer ? X509_get_subject_name(issuer) : name) == 1, "issuer name");
    check(X509_set_pubkey(c.get(), key) == 1, "public key");
    X509* iss = issuer ? issuer : c.get();
    if (ca) {
        add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(c.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
        add_ext(c.get(), iss, NID_subject_key_identifier, "hash");
    } else {
        add_ext(c.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(c.get(), iss, NID_key_usage, "critical,digitalSignature,keyAgreement");
        add_ext(c.get(), iss, NID_ext_key_usage, "serverAuth,clientAuth");
        add_ext(c.get(), iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        add_ext(c.get(), iss, NID_authority_key_identifier, "keyid:always");
    }
    check(X509_sign(c.get(), issuer_key, EVP_sha256()) > 0, "signing");
    return c;
}

void write_cert(const std::filesystem::path& p, X509* c) {
    FILE* f = std::fopen(p.c_str(), "w");
    check(f != nullptr, ("writing " + p.string()).c_str());
    const int ok = PEM_write_X509(f, c);
    check(std::fclose(f) == 0 && ok == 1, ("writing " + p.string()).c_str());
}

void write_key(const std::filesystem::path& p, EVP_PKEY* k) {
    std::filesystem::remove(p);
    // Created 0600: never readable by others, not even briefly.
    const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    FILE* f = fd >= 0 ? ::fdopen(fd, "w") : nullptr;
    if (f == nullptr && fd >= 0) ::close(fd);
    check(f != nullptr, ("writing " + p.string()).c_str());
    const int ok = PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
    check(std::fclose(f) == 0 && ok == 1, ("writing " + p.string()).c_str());
}

}  // namespace

void make_demo_pki(const std::filesystem::path& dir, const std::vector<std::string>& names, int days) {
    std::filesystem::create_directories(dir);
    const pkey_ptr ca_key = new_key();  // EVP_PKEY_free wipes the private scalar
    const x509_ptr ca = make_cert("qlink-demo-ca", ca_key.get(), nullptr, ca_key.get(), days, true);
    write_cert(dir / "ca.crt", ca.get());
    for (const auto& n : names) {
        const pkey_ptr k = new_key();
        const x509_ptr c = make_cert(n, k.get(), ca.get(), ca_key.get(), days, false);
        write_cert(dir / (n + ".crt"), c.get());
        write_key(dir / (n + ".key"), k.get());
    }
}

}  // namespace qlink::terminal::demo_detail
