// Cascade reconciliation: block schedule, shared permutations, Alice's parity oracle, Bob's batched searches.
#include "qlink/keymgmt/cascade.hpp"

#include <openssl/crypto.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "qlink/keymgmt/estimation.hpp"
#include "wire.hpp"

namespace qlink::keymgmt {
namespace {

constexpr std::uint8_t req_start_pass = 1;
constexpr std::uint8_t req_ranges = 2;

// Deterministic permutation both ends derive from (seed, pass); splitmix64 so the result does not
// depend on the standard library's distributions.
std::vector<std::uint32_t> make_permutation(std::size_t n, std::uint64_t seed, unsigned pass) {
    std::vector<std::uint32_t> p(n);
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint32_t>(i);
    // Hash (seed, pass) first: nearby raw seeds must not give overlapping streams.
    splitmix64 pass_hash(pass + 1);
    splitmix64 seed_hash(seed ^ pass_hash.next());
    splitmix64 rng(seed_hash.next());
    for (std::size_t i = n; i > 1; --i) {
        const std::size_t j = static_cast<std::size_t>(rng.next() % i);
        std::swap(p[i - 1], p[j]);
    }
    return p;
}

}  // namespace

std::vector<std::size_t> cascade_block_sizes(std::size_t n, double qber, unsigned passes) {
    const double q = std::clamp(qber, 1e-4, 0.25);
    std::vector<std::size_t> ks;
    // Pass 1: ceil(0.6/Q) (0.6 expected errors per block, so a block rarely hides an error pair;
    // not rounded to a power of two, whose jumps doubled the errors per block just above a
    // boundary); passes 2 and 3: 3 k1 and 9 k1; later passes: half the key, where a clean pass
    // costs two parities and each still splits a leftover error pair with probability ~1/2.
    // Chosen by measurement (docs/performance.md, "QKD post-processing") as the balance between leak
    // (f = 1.10-1.12 at QBER 1-3 %) and round trips (each costs two authentication pads).
    const auto k1 = static_cast<std::size_t>(std::ceil(0.6 / q));
    const std::size_t k2 = 3 * k1;
    const std::size_t half = std::max<std::size_t>(1, (n + 1) / 2);
    for (unsigned p = 0; p < passes; ++p) {
        const std::size_t k = p == 0 ? k1 : p == 1 ? k2 : p == 2 ? 3 * k2 : half;
        ks.push_back(std::clamp<std::size_t>(k, 1, std::max<std::size_t>(1, half)));
    }
    return ks;
}

double reconciliation_efficiency(std::uint64_t leaked_bits, std::size_t n, double qber) {
    const double d = static_cast<double>(n) * binary_entropy(qber);
    return d > 0.0 ? static_cast<double>(leaked_bits) / d : 0.0;
}

// ---------------------------------------------------------------- Alice

struct cascade_alice::impl {
    std::size_t n = 0;
    unsigned passes = 0;
    std::vector<std::size_t> ks;
    // prefix[p][i] = parity of the first i bits of the key in pass-p order.
    std::vector<std::vector<std::uint8_t>> prefix;
    unsigned started = 0;
    std::uint64_t leaked = 0;
    std::string err;

    std::uint8_t parity(unsigned p, std::size_t b, std::size_t e) const { return prefix[p][e] ^ prefix[p][b]; }
    ~impl() {
        for (auto& v : prefix) OPENSSL_cleanse(v.data(), v.size());
    }
};

cascade_alice::cascade_alice(std::span<const std::uint8_t> key, const cascade_config& cfg) : d_(new impl) {
    d_->n = key.size();
    d_->passes = std::clamp(cfg.passes, 2u, 16u);
    d_->ks = cascade_block_sizes(d_->n, cfg.qber, d_->passes);
    d_->prefix.resize(d_->passes);
    for (unsigned p = 0; p < d_->passes; ++p) {
        const auto perm = make_permutation(d_->n, cfg.seed, p);
        auto& pre = d_->prefix[p];
        pre.assign(d_->n + 1, 0);
        for (std::size_t i = 0; i < d_->n; ++i) pre[i + 1] = pre[i] ^ (key[perm[i]] & 1u);
    }
}
cascade_alice::~cascade_alice() = default;

std::uint64_t cascade_alice::leaked_bits() const { return d_->leaked; }
std::string_view cascade_alice::error() const { return d_->err; }

bool cascade_alice::answer(std::span<const std::uint8_t> request, std::vector<std::uint8_t>& reply) {
    impl& d = *d_;
    wire_reader r(request);
    reply.clear();
    wire_writer w(reply);
    std::uint8_t type = 0;
    if (!r.u8(type)) return d.err = "cascade: empty request", false;
    if (type == req_start_pass) {
        std::uint8_t first = 0, count = 0;
        if (!r.u8(first) || !r.u8(count) || !r.done()) return d.err = "cascade: malformed start request", false;
        if (first != d.started || count == 0 || first + count > d.passes) return d.err = "cascade: pass out of order", false;
        std::size_t total = 0;
        for (unsigned p = first; p < first + count; ++p) total += (d.n + d.ks[p] - 1) / d.ks[p];
        bit_packer bits(w, total);
        for (unsigned p = first; p < first + count; ++p) {
            const std::size_t k = d.ks[p];
            for (std::size_t b = 0; b * k < d.n; ++b) bits.push(d.parity(p, b * k, std::min(d.n, (b + 1) * k)));
        }
        bits.finish();
        d.started = first + count;
        d.leaked += total;
        return true;
    }
    if (type == req_ranges) {
        std::uint32_t count = 0;
        if (!r.u32(count) || count == 0 || r.remaining() != std::size_t{count} * 9) {
            return d.err = "cascade: malformed range request", false;
        }
        bit_packer bits(w, count);
        for (std::uint32_t i = 0; i < count; ++i) {
            std::uint8_t p = 0;
            std::uint32_t b = 0, e = 0;
            r.u8(p);
            r.u32(b);
            r.u32(e);
            if (p >= d.started || b >= e || e > d.n) return d.err = "cascade: range out of bounds", false;
            bits.push(d.parity(p, b, e));
        }
        bits.finish();
        d.leaked += count;
        return true;
    }
    return d.err = "cascade: unknown request type", false;
}

// ---------------------------------------------------------------- Bob

struct cascade_bob::impl {
    std::span<std::uint8_t> key;
    std::size_t n = 0;
    unsigned passes = 0;
    std::vector<std::size_t> ks;
    std::vector<std::vector<std::uint32_t>> perm, pos;
    std::vector<std::vector<std::uint8_t>> alice_top, bob_top;
    // Index of the active search in each block (or none), so a flip can cancel a stale one.
    std::vector<std::vector<std::int32_t>> search_of;
    struct search {
        unsigned pass;
        std::uint32_t block, begin, end;
        std::uint8_t alice_parity;  // of [begin, end)
        bool alive;
    };
    std::vector<search> searches;
    unsigned started = 0;
    unsigned starting = 0;  // passes asked for in the pending start request
    enum class waiting { nothing, start, ranges } wait = waiting::nothing;
    std::vector<std::uint32_t> asked;  // searches asked in the last range request
    cascade_stats st;
    std::string err;

    std::uint8_t bob_parity(unsigned p, std::size_t b, std::size_t e) const {
        std::uint8_t x = 0;
        for (std::size_t i = b; i < e; ++i) x ^= key[perm[p][i]];
        return x & 1u;
    }

    void add_search(unsigned p, std::uint32_t blk) {
        const std::size_t k = ks[p];
        const auto b = static_cast<std::uint32_t>(blk * k);
        const auto e = static_cast<std::uint32_t>(std::min(n, (blk + 1) * k));
        search_of[p][blk] = static_cast<std::int32_t>(searches.size());
        searches.push_back({p, blk, b, e, alice_top[p][blk], true});
    }

    // Flips every bit a search has pinned down, re-checks the blocks each flip touches in every
    // started pass, and repeats until all live searches need Alice's help again.
    void settle() {
        for (;;) {
            std::vector<std::uint32_t> done;
            for (std::uint32_t i = 0; i < searches.size(); ++i) {
                if (searches[i].alive && searches[i].end - searches[i].begin == 1) done.push_back(i);
            }
            if (done.empty()) break;
            std::vector<std::pair<unsigned, std::uint32_t>> touched;
            for (auto i : done) {
                search& s = searches[i];
                if (!s.alive) continue;  // cancelled by an earlier flip this round
                const std::uint32_t j = perm[s.pass][s.begin];
                key[j] ^= 1u;
                ++st.corrected;
                for (unsigned q = 0; q < started; ++q) {
                    const std::uint32_t at = pos[q][j];
                    const auto blk = static_cast<std::uint32_t>(at / ks[q]);
                    bob_top[q][blk] ^= 1u;
                    // A search whose current range holds the flipped bit has lost its odd error
                    // count: drop it (the block is re-checked below). A search elsewhere in the
                    // block is still valid and carries on.
                    const std::int32_t a = search_of[q][blk];
                    if (a >= 0) {
                        search& o = searches[static_cast<std::size_t>(a)];
                        if (at >= o.begin && at < o.end) {
                            o.alive = false;
                            search_of[q][blk] = -1;
                        }
                    }
                    touched.emplace_back(q, blk);
                }
            }
            for (auto [q, blk] : touched) {
                if (search_of[q][blk] < 0 && bob_top[q][blk] != alice_top[q][blk]) add_search(q, blk);
            }
            compact();
        }
    }

    void compact() {
        std::vector<search> keep;
        for (auto& s : searches) {
            if (s.alive) {
                search_of[s.pass][s.block] = static_cast<std::int32_t>(keep.size());
                keep.push_back(s);
            }
        }
        searches.swap(keep);
    }
};

cascade_bob::cascade_bob(std::span<std::uint8_t> key, const cascade_config& cfg) : d_(new impl) {
    impl& d = *d_;
    d.key = key;
    d.n = key.size();
    d.passes = std::clamp(cfg.passes, 2u, 16u);
    d.ks = cascade_block_sizes(d.n, cfg.qber, d.passes);
    d.perm.resize(d.passes);
    d.pos.resize(d.passes);
    d.alice_top.resize(d.passes);
    d.bob_top.resize(d.passes);
    d.search_of.resize(d.passes);
    for (unsigned p = 0; p < d.passes; ++p) {
        d.perm[p] = make_permutation(d.n, cfg.seed, p);
        d.pos[p].resize(d.n);
        for (std::size_t i = 0; i < d.n; ++i) d.pos[p][d.perm[p][i]] = static_cast<std::uint32_t>(i);
    }
}
cascade_bob::~cascade_bob() = default;

const cascade_stats& cascade_bob::stats() const { return d_->st; }
std::string_view cascade_bob::error() const { return d_->err; }

bool cascade_bob::next_request(std::vector<std::uint8_t>& request) {
    impl& d = *d_;
    request.clear();
    if (d.n == 0 || d.wait != impl::waiting::nothing) return false;
    wire_writer w(request);
    if (!d.searches.empty()) {
        w.u8(req_ranges);
        w.u32(static_cast<std::uint32_t>(d.searches.size()));
        d.asked.clear();
        for (std::uint32_t i = 0; i < d.searches.size(); ++i) {
            const auto& s = d.searches[i];
            const std::uint32_t mid = s.begin + (s.end - s.begin) / 2;
            w.u8(static_cast<std::uint8_t>(s.pass));
            w.u32(s.begin);
            w.u32(mid);
            d.asked.push_back(i);
        }
        d.wait = impl::waiting::ranges;
    } else if (d.started < d.passes) {
        // Passes 1 and 2 run on their own (each relies on the previous one having removed most
        // errors); the half-key passes after them start together, which costs the same parities
        // but one search depth of round trips instead of one per pass.
        d.starting = d.started < 3 ? 1u : d.passes - d.started;
        w.u8(req_start_pass);
        w.u8(static_cast<std::uint8_t>(d.started));
        w.u8(static_cast<std::uint8_t>(d.starting));
        d.wait = impl::waiting::start;
    } else {
        return false;
    }
    d.st.request_bytes += request.size();
    return true;
}

bool cascade_bob::handle_reply(std::span<const std::uint8_t> reply) {
    impl& d = *d_;
    wire_reader r(reply);
    d.st.reply_bytes += reply.size();
    if (d.wait == impl::waiting::start) {
        const unsigned first = d.started, last = d.started + d.starting;
        std::size_t total = 0;
        for (unsigned p = first; p < last; ++p) total += (d.n + d.ks[p] - 1) / d.ks[p];
        std::vector<std::uint8_t> par;
        if (!read_packed_bits(r, total, par) || !r.done()) return d.err = "cascade: malformed pass reply", false;
        d.wait = impl::waiting::nothing;
        ++d.st.rounds;
        d.st.leaked_bits += total;
        std::size_t at = 0;
        for (unsigned p = first; p < last; ++p) {
            const std::size_t k = d.ks[p];
            const std::size_t blocks = (d.n + k - 1) / k;
            d.alice_top[p].assign(par.begin() + static_cast<std::ptrdiff_t>(at), par.begin() + static_cast<std::ptrdiff_t>(at + blocks));
            at += blocks;
            d.bob_top[p].assign(blocks, 0);
            d.search_of[p].assign(blocks, -1);
            for (std::size_t b = 0; b < blocks; ++b) d.bob_top[p][b] = d.bob_parity(p, b * k, std::min(d.n, (b + 1) * k));
        }
        d.started = last;
        for (unsigned p = first; p < last; ++p) {
            for (std::size_t b = 0; b < d.alice_top[p].size(); ++b) {
                if (d.bob_top[p][b] != d.alice_top[p][b]) d.add_search(p, static_cast<std::uint32_t>(b));
            }
        }
        d.settle();
        return true;
    }
    if (d.wait == impl::waiting::ranges) {
        std::vector<std::uint8_t> par;
        if (!read_packed_bits(r, d.asked.size(), par) || !r.done()) return d.err = "cascade: malformed range reply", false;
        d.wait = impl::waiting::nothing;
        ++d.st.rounds;
        d.st.leaked_bits += d.asked.size();
        for (std::size_t i = 0; i < d.asked.size(); ++i) {
            auto& s = d.searches[d.asked[i]];
            const std::uint32_t mid = s.begin + (s.end - s.begin) / 2;
            if (d.bob_parity(s.pass, s.begin, mid) != par[i]) {
                s.end = mid;
                s.alice_parity = par[i];
            } else {
                s.begin = mid;
                s.alice_parity ^= par[i];
            }
        }
        d.settle();
        return true;
    }
    return d.err = "cascade: unexpected reply", false;
}

cascade_stats cascade_reconcile_local(std::span<const std::uint8_t> alice_key, std::span<std::uint8_t> bob_key,
                                      const cascade_config& cfg) {
    cascade_alice a(alice_key, cfg);
    cascade_bob b(bob_key, cfg);
    std::vector<std::uint8_t> req, rep;
    while (b.next_request(req)) {
        if (!a.answer(req, rep) || !b.handle_reply(rep)) break;
    }
    return b.stats();
}

}  // namespace qlink::keymgmt
