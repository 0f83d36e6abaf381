// Key sources: seeded simulation (tests), upstream ETSI 014 KME, and the post-processing adapter.
#include "qlink/keymgmt/key_source.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>
#include <stdexcept>

namespace qlink::keymgmt {

namespace {

class sim_source final : public key_source {
public:
    explicit sim_source(const sim_key_source_config& c) : cfg_(c), next_(c.first_index)
    {
        if (cfg_.key_bytes == 0 || cfg_.key_bytes > 32) {
            throw std::runtime_error("sim key source: key size must be 8..256 bits");
        }
        for (int i = 0; i < 8; ++i) {
            seed_[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(cfg_.seed >> (8 * i));
        }
    }
    std::string_view name() const override { return "sim"; }

    std::size_t poll(std::vector<produced_key>& out, std::size_t max) override
    {
        const std::size_t n = std::min(max, cfg_.keys_per_poll);
        for (std::size_t i = 0; i < n; ++i) {
            produced_key k;
            std::array<std::uint8_t, 32> mac{};
            derive("qkmd-sim-id", next_, mac);
            std::memcpy(k.id.data(), mac.data(), 16);
            k.id[6] = static_cast<std::uint8_t>((k.id[6] & 0x0f) | 0x40);  // version 4 layout
            k.id[8] = static_cast<std::uint8_t>((k.id[8] & 0x3f) | 0x80);
            derive("qkmd-sim-key", next_, mac);
            k.material = secret_bytes(std::span(mac.data(), cfg_.key_bytes));
            OPENSSL_cleanse(mac.data(), mac.size());
            out.push_back(std::move(k));
            ++next_;
            ++produced_;
        }
        return n;
    }

    source_stats stats() const override
    {
        source_stats s;
        s.keys_produced = produced_;
        return s;
    }

private:
    void derive(const char* label, std::uint64_t index, std::array<std::uint8_t, 32>& mac) const
    {
        std::array<std::uint8_t, 32> msg{};
        const std::size_t l = std::strlen(label);
        std::memcpy(msg.data(), label, l);
        for (int i = 0; i < 8; ++i) {
            msg[l + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(index >> (8 * (7 - i)));
        }
        unsigned len = 32;
        HMAC(EVP_sha256(), seed_.data(), static_cast<int>(seed_.size()), msg.data(), l + 8, mac.data(), &len);
    }

    sim_key_source_config cfg_;
    std::array<std::uint8_t, 8> seed_{};
    std::uint64_t next_;
    std::uint64_t produced_ = 0;
};

class upstream_source final : public key_source {
public:
    explicit upstream_source(const upstream_key_source_config& c) : cfg_(c), client_(create_etsi014_client(c.client)) {}
    std::string_view name() const override { return "etsi014"; }

    std::size_t poll(std::vector<produced_key>& out, std::size_t max) override
    {
        const std::size_t n = std::min(max, cfg_.keys_per_request);
        if (n == 0) {
            return 0;
        }
        auto r = client_->enc_keys(cfg_.slave_sae_id, n, cfg_.key_bits);
        if (!r.ok()) {
            ++stats_.aborts;
            last_error_ = r.message;
            return 0;
        }
        for (auto& k : r.keys) {
            out.push_back({k.id, std::move(k.material)});
        }
        stats_.keys_produced += r.keys.size();
        return r.keys.size();
    }

    source_stats stats() const override { return stats_; }

private:
    upstream_key_source_config cfg_;
    std::unique_ptr<etsi014_client> client_;
    source_stats stats_;
    std::string last_error_;
};

}  // namespace

std::unique_ptr<key_source> create_sim_key_source(const sim_key_source_config& cfg)
{
    return std::make_unique<sim_source>(cfg);
}

std::unique_ptr<key_source> create_upstream_key_source(const upstream_key_source_config& cfg)
{
    return std::make_unique<upstream_source>(cfg);
}

void postproc_key_source::on_session(std::vector<produced_key> keys, bool aborted, double qber, double efficiency,
                                     double seconds, std::uint64_t secret_bits)
{
    std::lock_guard lock(mu_);
    if (aborted) {
        ++stats_.aborts;
        return;
    }
    stats_.qber = qber;
    stats_.reconciliation_efficiency = efficiency;
    if (seconds > 0) {
        stats_.secret_key_rate_bps = static_cast<double>(secret_bits) / seconds;
    }
    stats_.keys_produced += keys.size();
    for (auto& k : keys) {
        pending_.push_back(std::move(k));
    }
}

std::size_t postproc_key_source::poll(std::vector<produced_key>& out, std::size_t max)
{
    std::lock_guard lock(mu_);
    const std::size_t n = std::min(max, pending_.size());
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(std::move(pending_[i]));
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
}

source_stats postproc_key_source::stats() const
{
    std::lock_guard lock(mu_);
    return stats_;
}

}  // namespace qlink::keymgmt
