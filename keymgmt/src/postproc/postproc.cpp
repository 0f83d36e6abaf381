// BB84 decoy-state post-processing sessions: the Alice and Bob state machines and their wire messages.
#include "qlink/keymgmt/postproc.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "qlink/keymgmt/cascade.hpp"
#include "qlink/keymgmt/toeplitz.hpp"
#include "wire.hpp"

namespace qlink::keymgmt {

std::string_view to_string(abort_reason r) {
    switch (r) {
        case abort_reason::none: return "none";
        case abort_reason::qber_too_high: return "qber_too_high";
        case abort_reason::insufficient_auth_key: return "insufficient_auth_key";
        case abort_reason::estimation_failed: return "estimation_failed";
        case abort_reason::authentication_failed: return "authentication_failed";
        case abort_reason::verification_failed: return "verification_failed";
        case abort_reason::protocol_error: return "protocol_error";
        case abort_reason::config_mismatch: return "config_mismatch";
        case abort_reason::peer_aborted: return "peer_aborted";
    }
    return "unknown";
}

key_block::key_block(const std::array<std::uint8_t, 16>& id, std::span<const std::uint8_t> bytes)
    : id_(id), bytes_(bytes.begin(), bytes.end()) {}
key_block::~key_block() { wipe(); }
key_block::key_block(key_block&& o) noexcept : id_(o.id_), bytes_(std::move(o.bytes_)) { o.bytes_.clear(); }
key_block& key_block::operator=(key_block&& o) noexcept {
    if (this != &o) {
        wipe();
        id_ = o.id_;
        bytes_ = std::move(o.bytes_);
        o.bytes_.clear();
    }
    return *this;
}
void key_block::wipe() {
    if (!bytes_.empty()) OPENSSL_cleanse(bytes_.data(), bytes_.size());
    bytes_.clear();
}

namespace {

constexpr std::uint32_t wire_magic = 0x50504B51u;  // "QKPP"
constexpr std::uint8_t wire_version = 1;
constexpr std::size_t header_size = 4 + 1 + 1 + 8 + 4 + 8 + 4;
constexpr std::size_t tag_size = 16;
constexpr std::uint8_t no_record = 0xFF;  // SIFT_REPLY code: Alice has no such pulse

enum class msg : std::uint8_t {
    sift = 1,         // B->A  config digest, detections (pulse deltas, bases)
    sift_reply = 2,   // A->B  pulses sent per class, intensity+basis per detection, sample seed
    bits = 3,         // B->A  Bob's X bits and Z sample bits
    estimate = 4,     // A->B  X errors per class, sample errors, verdict, Cascade seed and QBER
    cascade_req = 5,  // B->A  one Cascade request
    cascade_rep = 6,  // A->B  its reply
    reconciled = 7,   // B->A  Cascade finished
    verify_pa = 8,    // A->B  verification seed + hash, secret length, PA seed, key-ID nonce
    confirm = 9,      // B->A  verification verdict
    abort = 10,       // either: reason
};

// Wipes a bit/byte vector on scope exit and on explicit request.
struct secret_vec {
    std::vector<std::uint8_t> v;
    ~secret_vec() { wipe(); }
    void wipe() {
        if (!v.empty()) OPENSSL_cleanse(v.data(), v.size());
        v.clear();
    }
};

std::uint64_t fnv1a(std::span<const std::uint8_t> b) {
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (auto c : b) h = (h ^ c) * 0x100000001b3ull;
    return h;
}

std::uint64_t config_digest(const postproc_config& c) {
    std::vector<std::uint8_t> b;
    wire_writer w(b);
    for (std::size_t k = 0; k < intensity_count; ++k) {
        w.f64(c.decoy.mu[k]);
        w.f64(c.decoy.prob[k]);
    }
    w.f64(c.eps.eps_sec);
    w.f64(c.eps.eps_cor);
    w.f64(c.qber_max);
    w.f64(c.qber_sample_fraction);
    w.u64(c.qber_sample_min);
    w.u64(c.min_sifted_bits);
    w.u64(c.max_sifted_bits);
    w.u32(c.cascade_passes);
    w.u64(c.key_bits);
    return fnv1a(b);
}

void write_bits(wire_writer& w, std::span<const std::uint8_t> bits) {
    bit_packer p(w, bits.size());
    for (auto b : bits) p.push(b);
    p.finish();
}

unsigned verification_bits(double eps_cor) {
    return static_cast<unsigned>(std::clamp(std::ceil(std::log2(1.0 / eps_cor)), 1.0, 64.0));
}

// Everything both ends derive identically once the sift reply is known.
struct sifted_sets {
    std::vector<std::uint8_t> intensity;  // per detection
    std::vector<std::uint32_t> z, x;      // detection indices, basis agreed
    std::vector<std::uint32_t> sample;    // subset of z (detection indices), disclosed
    std::vector<std::uint32_t> key;       // z minus sample, truncated to max_sifted_bits
    std::uint64_t valid_detections = 0;
};

void derive_sets(const postproc_config& cfg, std::span<const std::uint8_t> bob_basis,
                 std::span<const std::uint8_t> codes, std::uint64_t sample_seed, sifted_sets& s) {
    const std::size_t n = codes.size();
    s.intensity.assign(n, 0);
    for (std::uint32_t i = 0; i < n; ++i) {
        if (codes[i] == no_record) continue;
        ++s.valid_detections;
        s.intensity[i] = codes[i] >> 1;
        const std::uint8_t ab = codes[i] & 1u;
        if (ab != bob_basis[i]) continue;
        (ab == 0 ? s.z : s.x).push_back(i);
    }
    // Partial Fisher-Yates over the Z list picks the sample; splitmix64 keeps both ends equal.
    std::size_t want = static_cast<std::size_t>(std::ceil(cfg.qber_sample_fraction * static_cast<double>(s.z.size())));
    want = std::min(std::max(want, cfg.qber_sample_min), s.z.size() / 2);
    std::vector<std::uint32_t> order(s.z.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    splitmix64 rng(sample_seed);
    for (std::size_t i = 0; i < want; ++i) {
        const std::size_t j = i + static_cast<std::size_t>(rng.next() % (order.size() - i));
        std::swap(order[i], order[j]);
    }
    std::vector<std::uint8_t> in_sample(s.z.size(), 0);
    for (std::size_t i = 0; i < want; ++i) in_sample[order[i]] = 1;
    for (std::size_t i = 0; i < s.z.size(); ++i) {
        if (in_sample[i]) {
            s.sample.push_back(s.z[i]);
        } else if (s.key.size() < cfg.max_sifted_bits) {
            s.key.push_back(s.z[i]);
        }
    }
}

void fill_counts(const sifted_sets& s, finite_key_counts& c) {
    c.n_z = {};
    c.n_x = {};
    for (auto i : s.key) ++c.n_z[s.intensity[i]];
    for (auto i : s.x) ++c.n_x[s.intensity[i]];
}

std::array<std::uint8_t, 16> key_id_for(std::span<const std::uint8_t> nonce, std::uint64_t session, std::uint64_t index) {
    std::vector<std::uint8_t> in(nonce.begin(), nonce.end());
    wire_writer w(in);
    w.u64(session);
    w.u64(index);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(in.data(), in.size(), md, &len, EVP_sha256(), nullptr);
    std::array<std::uint8_t, 16> id{};
    std::copy_n(md, 16, id.begin());
    id[6] = static_cast<std::uint8_t>((id[6] & 0x0F) | 0x40);  // version 4 layout
    id[8] = static_cast<std::uint8_t>((id[8] & 0x3F) | 0x80);  // RFC 9562 variant
    return id;
}

// Packs bits MSB first (the project's byte order for bit strings).
void pack_msb(std::span<const std::uint8_t> bits, std::vector<std::uint8_t>& out) {
    out.assign((bits.size() + 7) / 8, 0);
    for (std::size_t i = 0; i < bits.size(); ++i) out[i / 8] |= static_cast<std::uint8_t>((bits[i] & 1u) << (7 - i % 8));
}

class endpoint_base : public postproc_endpoint {
public:
    endpoint_base(const postproc_config& cfg, std::uint64_t session, auth_key_pool& pool)
        : cfg_(cfg), session_(session), pool_(pool), pads_at_start_(pool.pads_consumed()) {
        if (!decoy_settings_valid(cfg.decoy)) throw std::invalid_argument("postproc: decoy settings violate mu1 > mu2 + mu3, mu2 > mu3 >= 0");
        if (!(cfg.eps.eps_sec > 0 && cfg.eps.eps_sec < 1) || !(cfg.eps.eps_cor > 0 && cfg.eps.eps_cor < 1)) {
            throw std::invalid_argument("postproc: eps_sec and eps_cor must be in (0, 1)");
        }
        if (cfg.key_bits == 0 || cfg.key_bits % 8 != 0) throw std::invalid_argument("postproc: key_bits must be a positive multiple of 8");
        if (!(cfg.qber_max > 0 && cfg.qber_max < 0.5)) throw std::invalid_argument("postproc: qber_max must be in (0, 0.5)");
        if (!(cfg.qber_sample_fraction >= 0 && cfg.qber_sample_fraction < 0.5)) {
            throw std::invalid_argument("postproc: qber_sample_fraction must be in [0, 0.5)");
        }
        if (cfg.max_sifted_bits == 0 || cfg.max_sifted_bits > (std::size_t{1} << 22)) {
            throw std::invalid_argument("postproc: max_sifted_bits must be in [1, 2^22]");
        }
        if (cfg.cascade_passes < 2 || cfg.cascade_passes > 16) throw std::invalid_argument("postproc: cascade_passes must be in [2, 16]");
    }

    bool finished() const override { return done_; }
    const postproc_report& report() const override { return rep_; }
    std::vector<key_block> take_keys() override { return std::move(keys_); }

protected:
    // Builds, signs and counts one message; false (session aborted) when no pad is left.
    bool send(msg type, std::span<const std::uint8_t> payload, std::vector<std::uint8_t>& out) {
        out.clear();
        wire_writer w(out);
        w.u32(wire_magic);
        w.u8(wire_version);
        w.u8(static_cast<std::uint8_t>(type));
        w.u64(session_);
        w.u32(seq_);
        const std::size_t pad_pos = out.size();
        w.u64(0);
        w.u32(static_cast<std::uint32_t>(payload.size()));
        w.bytes(payload);
        gf128_block tag{};
        std::uint64_t pad = 0;
        // The pad index is part of the authenticated header, so it is written before signing:
        // it is always the pool's next index.
        const std::uint64_t next = pool_.next_pad_index();
        for (int i = 0; i < 8; ++i) out[pad_pos + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(next >> (8 * i));
        if (!pool_.sign(out, tag, pad)) {
            out.clear();
            finish_abort(abort_reason::insufficient_auth_key, "authentication key pool is empty");
            return false;
        }
        w.bytes(tag);
        ++seq_;
        ++rep_.messages_sent;
        return true;
    }

    // Checks envelope and tag; on failure aborts (and may write an abort message to out).
    bool receive(std::span<const std::uint8_t> in, msg& type, std::span<const std::uint8_t>& payload,
                 std::vector<std::uint8_t>& out) {
        wire_reader r(in);
        std::uint32_t magic = 0, seq = 0, len = 0;
        std::uint8_t ver = 0, t = 0;
        std::uint64_t session = 0, pad = 0;
        if (in.size() < header_size + tag_size || !r.u32(magic) || !r.u8(ver) || !r.u8(t) || !r.u64(session) ||
            !r.u32(seq) || !r.u64(pad) || !r.u32(len) || magic != wire_magic || ver != wire_version ||
            in.size() != header_size + len + tag_size) {
            fail(abort_reason::protocol_error, "malformed message envelope", out);
            return false;
        }
        gf128_block tag{};
        std::copy_n(in.end() - tag_size, tag_size, tag.begin());
        if (!pool_.verify(in.first(in.size() - tag_size), tag, pad)) {
            fail(abort_reason::authentication_failed, "message tag does not verify", out);
            return false;
        }
        // An abort may cross a message the peer never accepted, so only its session is checked.
        if (session != session_ || (seq != seq_ && t != static_cast<std::uint8_t>(msg::abort))) {
            fail(abort_reason::protocol_error, "wrong session or sequence number", out);
            return false;
        }
        ++seq_;
        ++rep_.messages_received;
        type = static_cast<msg>(t);
        payload = in.subspan(header_size, len);
        if (type == msg::abort) {
            std::uint8_t reason = 0;
            if (!payload.empty()) reason = payload[0];
            finish_abort(abort_reason::peer_aborted,
                         std::string("peer aborted: ") +
                             std::string(to_string(reason < abort_reason_count ? static_cast<abort_reason>(reason)
                                                                                : abort_reason::protocol_error)));
            return false;
        }
        return true;
    }

    // Local abort: records the reason and tells the peer (authenticated) when a pad is left.
    bool fail(abort_reason reason, std::string detail, std::vector<std::uint8_t>& out) {
        if (done_) return false;
        const std::uint8_t code = static_cast<std::uint8_t>(reason);
        finish_abort(reason, std::move(detail));
        const bool sent = pool_.pads_available() > 0 && send_raw_abort(code, out);
        return sent;
    }

    void finish_abort(abort_reason reason, std::string detail) {
        if (done_) return;
        done_ = true;
        rep_.reason = reason;
        rep_.detail = std::move(detail);
        keys_.clear();
        wipe_secrets();
        rep_.auth_pads_consumed = pool_.pads_consumed() - pads_at_start_;
    }

    // Final key: refill the pool with one pad per message of the session, then cut key blocks.
    void finish_success(std::span<const std::uint8_t> final_bits, std::span<const std::uint8_t> nonce) {
        done_ = true;
        const std::size_t refill_bits = std::size_t{seq_} * 128;
        secret_vec packed;
        pack_msb(final_bits.first(std::min(refill_bits, final_bits.size())), packed.v);
        rep_.auth_pads_replenished = pool_.replenish(packed.v);
        packed.wipe();
        const std::size_t blocks = (final_bits.size() - refill_bits) / cfg_.key_bits;
        for (std::size_t b = 0; b < blocks; ++b) {
            pack_msb(final_bits.subspan(refill_bits + b * cfg_.key_bits, cfg_.key_bits), packed.v);
            keys_.emplace_back(key_id_for(nonce, session_, b), packed.v);
            packed.wipe();
        }
        rep_.output_key_bits = blocks * cfg_.key_bits;
        rep_.auth_pads_consumed = pool_.pads_consumed() - pads_at_start_;
        wipe_secrets();
    }

    virtual void wipe_secrets() = 0;

    void fill_estimates(const std::array<std::uint64_t, intensity_count>& sent) {
        std::array<double, intensity_count> gain{}, err{};
        std::array<std::uint64_t, intensity_count> det{};
        for (std::size_t i = 0; i < sets_.intensity.size(); ++i) {
            if (codes_[i] != no_record) ++det[sets_.intensity[i]];
        }
        for (std::size_t k = 0; k < intensity_count; ++k) {
            gain[k] = sent[k] ? static_cast<double>(det[k]) / static_cast<double>(sent[k]) : 0.0;
            err[k] = rep_.counts.n_x[k] ? static_cast<double>(rep_.counts.m_x[k]) / static_cast<double>(rep_.counts.n_x[k]) : 0.0;
        }
        rep_.decoy = lmc_decoy_bounds(cfg_.decoy, gain, err);
        std::uint64_t nx = 0, mx = 0;
        for (std::size_t k = 0; k < intensity_count; ++k) {
            nx += rep_.counts.n_x[k];
            mx += rep_.counts.m_x[k];
        }
        rep_.qber_x = nx ? static_cast<double>(mx) / static_cast<double>(nx) : 0.0;
        rep_.qber_z = rep_.sample_bits ? static_cast<double>(rep_.sample_errors) / static_cast<double>(rep_.sample_bits) : 0.0;
    }

    postproc_config cfg_;
    std::uint64_t session_;
    auth_key_pool& pool_;
    std::uint64_t pads_at_start_;
    postproc_report rep_;
    std::vector<key_block> keys_;
    bool done_ = false;
    std::uint32_t seq_ = 0;
    sifted_sets sets_;
    std::vector<std::uint8_t> codes_;
    std::vector<std::uint8_t> payload_;

private:
    bool send_raw_abort(std::uint8_t code, std::vector<std::uint8_t>& out) {
        const std::uint8_t p[1] = {code};
        out.clear();
        wire_writer w(out);
        w.u32(wire_magic);
        w.u8(wire_version);
        w.u8(static_cast<std::uint8_t>(msg::abort));
        w.u64(session_);
        w.u32(seq_);
        w.u64(pool_.next_pad_index());
        w.u32(1);
        w.bytes(p);
        gf128_block tag{};
        std::uint64_t pad = 0;
        if (!pool_.sign(out, tag, pad)) {
            out.clear();
            return false;
        }
        w.bytes(tag);
        ++seq_;
        ++rep_.messages_sent;
        rep_.auth_pads_consumed = pool_.pads_consumed() - pads_at_start_;
        return true;
    }
};

// ------------------------------------------------------------------------------------ Alice

class alice_endpoint final : public endpoint_base {
public:
    alice_endpoint(const postproc_config& cfg, std::uint64_t session, alice_block block, auth_key_pool& pool)
        : endpoint_base(cfg, session, pool), block_(block), rng_(cfg.seed ^ (session * 0x9E3779B97F4A7C15ull)) {}

    bool start(std::vector<std::uint8_t>& out) override {
        out.clear();
        return false;
    }

    bool on_message(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) override {
        out.clear();
        if (done_) return false;
        msg type{};
        std::span<const std::uint8_t> p;
        if (!receive(in, type, p, out)) return !out.empty();
        // During Cascade, Bob either asks again or says he is done.
        const bool ok = type == expect_ || (expect_ == msg::cascade_req && type == msg::reconciled);
        if (!ok) return fail(abort_reason::protocol_error, "unexpected message type", out);
        switch (type) {
            case msg::sift: return on_sift(p, out);
            case msg::bits: return on_bits(p, out);
            case msg::cascade_req: return on_cascade(p, out);
            case msg::reconciled: return on_reconciled(p, out);
            case msg::confirm: return on_confirm(p, out);
            default: return fail(abort_reason::protocol_error, "unexpected message type", out);
        }
    }

private:
    void wipe_secrets() override {
        cascade_.reset();
        bits_.wipe();
        key_.wipe();
        final_.wipe();
    }

    bool on_sift(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        wire_reader r(p);
        std::uint64_t digest = 0;
        std::uint32_t count = 0;
        if (!r.u64(digest) || !r.u32(count)) return fail(abort_reason::protocol_error, "malformed sift message", out);
        if (digest != config_digest(cfg_)) return fail(abort_reason::config_mismatch, "peer uses different post-processing parameters", out);
        if (pool_.pads_available() < cfg_.min_auth_pads) {
            return fail(abort_reason::insufficient_auth_key, "authentication pool below min_auth_pads", out);
        }
        if (count > r.remaining()) return fail(abort_reason::protocol_error, "truncated sift message", out);
        std::vector<std::uint64_t> pulses(count);
        std::uint64_t prev = 0;
        for (std::uint32_t i = 0; i < count; ++i) {
            std::uint64_t d = 0;
            if (!r.varint(d)) return fail(abort_reason::protocol_error, "truncated sift message", out);
            pulses[i] = prev + d;
            if (i > 0 && d == 0) return fail(abort_reason::protocol_error, "detections not strictly increasing", out);
            prev = pulses[i];
        }
        std::vector<std::uint8_t> bob_basis;
        if (!read_packed_bits(r, count, bob_basis) || !r.done()) return fail(abort_reason::protocol_error, "truncated sift message", out);
        // Merge Bob's detections with Alice's records (both sorted by pulse).
        codes_.assign(count, no_record);
        bits_.v.assign(count, 0);
        std::size_t a = 0;
        const auto& rec = block_.pulses;
        for (std::uint32_t i = 0; i < count; ++i) {
            while (a < rec.size() && rec[a].pulse < pulses[i]) ++a;
            if (a < rec.size() && rec[a].pulse == pulses[i]) {
                const auto ic = static_cast<std::uint8_t>(rec[a].intensity);
                const auto bs = static_cast<std::uint8_t>(rec[a].basis);
                if (ic < intensity_count && bs < 2) {
                    codes_[i] = static_cast<std::uint8_t>(ic << 1 | bs);
                    bits_.v[i] = rec[a].bit & 1u;
                }
            }
        }
        rep_.detections = count;
        const std::uint64_t sample_seed = rng_();
        derive_sets(cfg_, bob_basis, codes_, sample_seed, sets_);
        rep_.sifted_z = sets_.z.size();
        rep_.sifted_x = sets_.x.size();
        rep_.sample_bits = sets_.sample.size();
        payload_.clear();
        wire_writer w(payload_);
        for (auto s : block_.pulses_sent) w.u64(s);
        w.bytes(codes_);
        w.u64(sample_seed);
        expect_ = msg::bits;
        return send(msg::sift_reply, payload_, out);
    }

    bool on_bits(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        wire_reader r(p);
        std::vector<std::uint8_t> bx, bs;
        if (!read_packed_bits(r, sets_.x.size(), bx) || !read_packed_bits(r, sets_.sample.size(), bs) || !r.done()) {
            return fail(abort_reason::protocol_error, "malformed bits message", out);
        }
        fill_counts(sets_, rep_.counts);
        rep_.counts.m_x = {};
        for (std::size_t i = 0; i < sets_.x.size(); ++i) {
            if (bx[i] != bits_.v[sets_.x[i]]) ++rep_.counts.m_x[sets_.intensity[sets_.x[i]]];
        }
        rep_.sample_errors = 0;
        for (std::size_t i = 0; i < sets_.sample.size(); ++i) rep_.sample_errors += bs[i] != bits_.v[sets_.sample[i]];
        std::array<std::uint64_t, intensity_count> sent = block_.pulses_sent;
        fill_estimates(sent);
        rep_.key_bits_reconciled = sets_.key.size();

        abort_reason verdict = abort_reason::none;
        if (sets_.key.size() < cfg_.min_sifted_bits || sets_.x.empty() || sets_.sample.empty()) {
            verdict = abort_reason::estimation_failed;
            rep_.detail = "too few sifted bits";
        } else if (rep_.qber_z > cfg_.qber_max || rep_.qber_x > cfg_.qber_max) {
            verdict = abort_reason::qber_too_high;
            rep_.detail = "QBER above qber_max";
        } else {
            // Early look at the finite-key length with Cascade's typical leak; a block that cannot
            // give key is not worth reconciling.
            const double lambda = 1.1 * static_cast<double>(sets_.key.size()) * binary_entropy(rep_.qber_z);
            const auto fk = lim2014_key_length(cfg_.decoy, rep_.counts, lambda, cfg_.eps);
            if (!fk.valid || fk.length <= 0) {
                verdict = abort_reason::estimation_failed;
                rep_.detail = "finite-key length not positive";
            }
        }
        cascade_cfg_.seed = rng_();
        cascade_cfg_.passes = cfg_.cascade_passes;
        cascade_cfg_.qber = std::max(rep_.qber_z, 1.0 / static_cast<double>(2 * rep_.sample_bits + 2));
        payload_.clear();
        wire_writer w(payload_);
        for (auto m : rep_.counts.m_x) w.u64(m);
        w.u64(rep_.sample_errors);
        w.u8(static_cast<std::uint8_t>(verdict));
        w.u64(cascade_cfg_.seed);
        w.f64(cascade_cfg_.qber);
        if (!send(msg::estimate, payload_, out)) return false;
        if (verdict != abort_reason::none) {
            std::string d = rep_.detail;
            finish_abort(verdict, d);
            return true;
        }
        key_.v.resize(sets_.key.size());
        for (std::size_t i = 0; i < sets_.key.size(); ++i) key_.v[i] = bits_.v[sets_.key[i]];
        bits_.wipe();
        cascade_ = std::make_unique<cascade_alice>(key_.v, cascade_cfg_);
        expect_ = msg::cascade_req;
        return true;
    }

    bool on_cascade(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        if (!cascade_->answer(p, payload_)) return fail(abort_reason::protocol_error, std::string(cascade_->error()), out);
        expect_ = msg::cascade_req;
        return send(msg::cascade_rep, payload_, out);
    }

    bool on_reconciled(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        if (!p.empty()) return fail(abort_reason::protocol_error, "malformed reconciled message", out);
        const std::size_t n = key_.v.size();
        rep_.leaked_ec_bits = cascade_->leaked_bits();
        rep_.ec_efficiency = reconciliation_efficiency(rep_.leaked_ec_bits, n, rep_.qber_z);
        rep_.finite_key = lim2014_key_length(cfg_.decoy, rep_.counts, static_cast<double>(rep_.leaked_ec_bits), cfg_.eps);
        const std::int64_t ell = rep_.finite_key.valid ? rep_.finite_key.length : 0;
        if (ell <= 0) return fail(abort_reason::estimation_failed, "finite-key length not positive after reconciliation", out);
        const auto m = static_cast<std::size_t>(std::min<std::int64_t>(ell, static_cast<std::int64_t>(n)));
        const std::uint64_t refill = std::uint64_t{seq_ + 2} * 128;  // this message and the confirm
        if (m < refill) {
            return fail(abort_reason::insufficient_auth_key, "secret key shorter than the authentication key it must replace", out);
        }
        const unsigned t = verification_bits(cfg_.eps.eps_cor);
        if (n <= t) return fail(abort_reason::estimation_failed, "key shorter than the verification hash", out);
        auto hasher = create_toeplitz_hasher({.max_input_bits = n});
        std::vector<std::uint8_t> vseed(n + t - 1), vhash(t);
        for (auto& b : vseed) b = static_cast<std::uint8_t>(rng_() & 1u);
        hasher->hash(vseed, key_.v, vhash);
        std::vector<std::uint8_t> pseed(n + m - 1);
        for (auto& b : pseed) b = static_cast<std::uint8_t>(rng_() & 1u);
        final_.v.resize(m);
        hasher->hash(pseed, key_.v, final_.v);
        for (auto& b : nonce_) b = static_cast<std::uint8_t>(rng_());
        rep_.verification_bits = t;
        rep_.secret_bits = m;
        payload_.clear();
        wire_writer w(payload_);
        w.u8(static_cast<std::uint8_t>(t));
        write_bits(w, vseed);
        write_bits(w, vhash);
        w.u64(m);
        write_bits(w, pseed);
        w.bytes(nonce_);
        key_.wipe();
        cascade_.reset();
        expect_ = msg::confirm;
        return send(msg::verify_pa, payload_, out);
    }

    bool on_confirm(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        if (p.size() != 1 || p[0] != 0) return fail(abort_reason::protocol_error, "malformed confirm message", out);
        secret_vec f;
        f.v.swap(final_.v);
        finish_success(f.v, nonce_);
        return false;
    }

    alice_block block_;
    std::mt19937_64 rng_;
    msg expect_ = msg::sift;
    secret_vec bits_, key_, final_;
    cascade_config cascade_cfg_;
    std::unique_ptr<cascade_alice> cascade_;
    std::array<std::uint8_t, 16> nonce_{};
};

// -------------------------------------------------------------------------------------- Bob

class bob_endpoint final : public endpoint_base {
public:
    bob_endpoint(const postproc_config& cfg, std::uint64_t session, bob_block block, auth_key_pool& pool)
        : endpoint_base(cfg, session, pool), block_(block) {}

    bool start(std::vector<std::uint8_t>& out) override {
        out.clear();
        if (done_ || started_) return false;
        started_ = true;
        if (pool_.pads_available() < cfg_.min_auth_pads) {
            return fail(abort_reason::insufficient_auth_key, "authentication pool below min_auth_pads", out);
        }
        const auto& det = block_.detections;
        if (det.size() > 0xFFFFFFFFu) return fail(abort_reason::protocol_error, "too many detections in one block", out);
        payload_.clear();
        wire_writer w(payload_);
        w.u64(config_digest(cfg_));
        w.u32(static_cast<std::uint32_t>(det.size()));
        std::uint64_t prev = 0;
        for (std::size_t i = 0; i < det.size(); ++i) {
            if (i > 0 && det[i].pulse <= prev) return fail(abort_reason::protocol_error, "detections not sorted by pulse", out);
            w.varint(det[i].pulse - prev);
            prev = det[i].pulse;
        }
        basis_.resize(det.size());
        for (std::size_t i = 0; i < det.size(); ++i) basis_[i] = det[i].basis == qkd_basis::x ? 1 : 0;
        write_bits(w, basis_);
        rep_.detections = det.size();
        expect_ = msg::sift_reply;
        return send(msg::sift, payload_, out);
    }

    bool on_message(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& out) override {
        out.clear();
        if (done_ || !started_) return false;
        msg type{};
        std::span<const std::uint8_t> p;
        if (!receive(in, type, p, out)) return !out.empty();
        if (type != expect_) return fail(abort_reason::protocol_error, "unexpected message type", out);
        switch (type) {
            case msg::sift_reply: return on_sift_reply(p, out);
            case msg::estimate: return on_estimate(p, out);
            case msg::cascade_rep: return on_cascade(p, out);
            case msg::verify_pa: return on_verify(p, out);
            default: return fail(abort_reason::protocol_error, "unexpected message type", out);
        }
    }

private:
    void wipe_secrets() override {
        cascade_.reset();
        key_.wipe();
    }

    bool on_sift_reply(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        wire_reader r(p);
        const std::size_t n = block_.detections.size();
        std::span<const std::uint8_t> codes;
        std::uint64_t seed = 0;
        for (auto& s : sent_) {
            if (!r.u64(s)) return fail(abort_reason::protocol_error, "malformed sift reply", out);
        }
        if (!r.bytes(n, codes) || !r.u64(seed) || !r.done()) return fail(abort_reason::protocol_error, "malformed sift reply", out);
        for (auto c : codes) {
            if (c != no_record && (c >> 1) >= intensity_count) return fail(abort_reason::protocol_error, "bad intensity code", out);
        }
        codes_.assign(codes.begin(), codes.end());
        derive_sets(cfg_, basis_, codes_, seed, sets_);
        rep_.sifted_z = sets_.z.size();
        rep_.sifted_x = sets_.x.size();
        rep_.sample_bits = sets_.sample.size();
        payload_.clear();
        wire_writer w(payload_);
        std::vector<std::uint8_t> tmp;
        tmp.reserve(sets_.x.size());
        for (auto i : sets_.x) tmp.push_back(block_.detections[i].bit & 1u);
        write_bits(w, tmp);
        tmp.clear();
        for (auto i : sets_.sample) tmp.push_back(block_.detections[i].bit & 1u);
        write_bits(w, tmp);
        expect_ = msg::estimate;
        return send(msg::bits, payload_, out);
    }

    bool on_estimate(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        wire_reader r(p);
        fill_counts(sets_, rep_.counts);
        std::uint8_t verdict = 0;
        cascade_config cc;
        for (auto& m : rep_.counts.m_x) {
            if (!r.u64(m)) return fail(abort_reason::protocol_error, "malformed estimate", out);
        }
        if (!r.u64(rep_.sample_errors) || !r.u8(verdict) || !r.u64(cc.seed) || !r.f64(cc.qber) || !r.done() ||
            verdict >= abort_reason_count || rep_.sample_errors > rep_.sample_bits || !(cc.qber >= 0 && cc.qber <= 0.5)) {
            return fail(abort_reason::protocol_error, "malformed estimate", out);
        }
        for (std::size_t k = 0; k < intensity_count; ++k) {
            if (rep_.counts.m_x[k] > rep_.counts.n_x[k]) return fail(abort_reason::protocol_error, "inconsistent X error counts", out);
        }
        fill_estimates(sent_);
        rep_.key_bits_reconciled = sets_.key.size();
        if (verdict != 0) {
            finish_abort(static_cast<abort_reason>(verdict), verdict == static_cast<std::uint8_t>(abort_reason::qber_too_high)
                                                                 ? "QBER above qber_max"
                                                                 : "estimation rejected the block");
            return false;
        }
        cc.passes = cfg_.cascade_passes;
        qber_cascade_ = cc.qber;
        key_.v.resize(sets_.key.size());
        for (std::size_t i = 0; i < sets_.key.size(); ++i) key_.v[i] = block_.detections[sets_.key[i]].bit & 1u;
        cascade_ = std::make_unique<cascade_bob>(key_.v, cc);
        return next_cascade(out);
    }

    bool next_cascade(std::vector<std::uint8_t>& out) {
        if (cascade_->next_request(payload_)) {
            expect_ = msg::cascade_rep;
            return send(msg::cascade_req, payload_, out);
        }
        const auto& st = cascade_->stats();
        rep_.leaked_ec_bits = st.leaked_bits;
        rep_.corrected_bits = st.corrected;
        rep_.cascade_rounds = st.rounds;
        rep_.ec_efficiency = reconciliation_efficiency(st.leaked_bits, key_.v.size(), rep_.qber_z);
        cascade_.reset();
        expect_ = msg::verify_pa;
        return send(msg::reconciled, {}, out);
    }

    bool on_cascade(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        if (!cascade_->handle_reply(p)) return fail(abort_reason::protocol_error, std::string(cascade_->error()), out);
        return next_cascade(out);
    }

    bool on_verify(std::span<const std::uint8_t> p, std::vector<std::uint8_t>& out) {
        const std::size_t n = key_.v.size();
        wire_reader r(p);
        std::uint8_t t = 0;
        std::uint64_t m = 0;
        std::vector<std::uint8_t> vseed, vhash, pseed;
        if (!r.u8(t) || t == 0 || t > 64 || n <= t || !read_packed_bits(r, n + t - 1, vseed) || !read_packed_bits(r, t, vhash) ||
            !r.u64(m) || m == 0 || m > n || !read_packed_bits(r, n + m - 1, pseed) || r.remaining() != nonce_.size()) {
            return fail(abort_reason::protocol_error, "malformed verify/PA message", out);
        }
        std::span<const std::uint8_t> nonce;
        r.bytes(nonce_.size(), nonce);
        std::copy(nonce.begin(), nonce.end(), nonce_.begin());
        // Bob recomputes the finite-key length from his own counts: Alice must not ask for more.
        rep_.finite_key = lim2014_key_length(cfg_.decoy, rep_.counts, static_cast<double>(rep_.leaked_ec_bits), cfg_.eps);
        if (!rep_.finite_key.valid || rep_.finite_key.length <= 0 ||
            m > static_cast<std::uint64_t>(rep_.finite_key.length)) {
            return fail(abort_reason::protocol_error, "announced key length exceeds the finite-key bound", out);
        }
        if (m < std::uint64_t{seq_ + 1} * 128) {
            return fail(abort_reason::insufficient_auth_key, "secret key shorter than the authentication key it must replace", out);
        }
        auto hasher = create_toeplitz_hasher({.max_input_bits = n});
        std::vector<std::uint8_t> mine(t);
        hasher->hash(vseed, key_.v, mine);
        rep_.verification_bits = t;
        if (mine != vhash) return fail(abort_reason::verification_failed, "verification hash mismatch after reconciliation", out);
        secret_vec final_bits;
        final_bits.v.resize(m);
        hasher->hash(pseed, key_.v, final_bits.v);
        rep_.secret_bits = m;
        key_.wipe();
        const std::uint8_t ok[1] = {0};
        if (!send(msg::confirm, ok, out)) return false;
        finish_success(final_bits.v, nonce_);
        return true;
    }

    bob_block block_;
    bool started_ = false;
    msg expect_ = msg::sift_reply;
    std::vector<std::uint8_t> basis_;
    std::array<std::uint64_t, intensity_count> sent_{};
    secret_vec key_;
    double qber_cascade_ = 0;
    std::unique_ptr<cascade_bob> cascade_;
    std::array<std::uint8_t, 16> nonce_{};
};

}  // namespace

std::unique_ptr<postproc_endpoint> create_alice_endpoint(const postproc_config& cfg, std::uint64_t session_id,
                                                         alice_block block, auth_key_pool& pool) {
    return std::make_unique<alice_endpoint>(cfg, session_id, block, pool);
}

std::unique_ptr<postproc_endpoint> create_bob_endpoint(const postproc_config& cfg, std::uint64_t session_id,
                                                       bob_block block, auth_key_pool& pool) {
    return std::make_unique<bob_endpoint>(cfg, session_id, block, pool);
}

std::size_t run_in_memory(postproc_endpoint& alice, postproc_endpoint& bob, std::size_t max_messages) {
    std::vector<std::uint8_t> a_to_b, b_to_a;
    std::size_t count = 0;
    bool pending = bob.start(b_to_a);
    while (pending && count < max_messages) {
        ++count;
        pending = alice.on_message(b_to_a, a_to_b);
        if (!pending || count >= max_messages) break;
        ++count;
        pending = bob.on_message(a_to_b, b_to_a);
    }
    return count;
}

}  // namespace qlink::keymgmt
