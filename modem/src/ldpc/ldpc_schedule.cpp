// The SIMD single-frame LDPC decoders' layered schedule (groups, mirror copies, pins, chains), for any vector width.
#include "ldpc_decoder_impl.hpp"

#include <algorithm>
#include <iterator>
#include <stdexcept>

namespace qlink::modem::detail {

// Two circulants of one column block must be at least `rows` apart, both ways
// round the circulant.
bool ldpc_rows_apart(const ldpc_code& code, std::size_t b, std::size_t rows) {
    const std::size_t z = code.z();
    if (z < rows) return false;
    const auto& edges = code.edges();
    for (std::size_t e1 = code.row_begin(b); e1 < code.row_begin(b + 1); ++e1)
        for (std::size_t e2 = e1 + 1; e2 < code.row_begin(b + 1); ++e2) {
            if (edges[e1].col_block != edges[e2].col_block) continue;
            const std::size_t d = (edges[e1].shift + z - edges[e2].shift) % z;
            if (std::min(d, z - d) < rows) return false;
        }
    return true;
}

ldpc_schedule ldpc_build_schedule(const ldpc_code& code, std::size_t lanes, ldpc_min_sum rule) {
    for (std::size_t b = 0; b < code.row_blocks(); ++b)
        if (!ldpc_rows_apart(code, b, lanes)) throw std::logic_error("ldpc: rows of one vector group share a column");
    ldpc_schedule s;
    const std::size_t z = code.z();
    s.lanes = lanes;
    s.stride = z + 2 * lanes;
    std::vector<std::uint64_t> pin_bits;
    std::vector<std::size_t> block_of;  // row block of each group
    std::vector<std::size_t> row0_of;   // its first row
    for (std::size_t b = 0; b < code.row_blocks(); ++b) {
        const std::size_t e0 = code.row_begin(b), dc = code.row_begin(b + 1) - e0;
        s.max_degree = std::max(s.max_degree, dc);
        for (std::size_t r0 = 0; r0 < z; r0 += lanes) {
            ldpc_group g{};
            g.valid = static_cast<std::uint32_t>(std::min<std::size_t>(lanes, z - r0));
            g.first = static_cast<std::uint32_t>(s.pos.size());
            g.degree = static_cast<std::uint32_t>(dc);
            g.copies_begin = static_cast<std::uint32_t>(s.copies.size());
            pin_bits.clear();
            for (std::size_t e = 0; e < dc; ++e) {
                const auto& ed = code.edges()[e0 + e];
                const std::size_t q = (r0 + ed.shift) % z;
                const auto pos = static_cast<std::uint32_t>(s.col_offset(ed.col_block) + q);
                std::uint64_t pin = 0;
                for (std::size_t l = 0; l < lanes; ++l)
                    if (l >= g.valid || ed.col_block * z + (q + l) % z < code.fill_bits()) pin |= std::uint64_t{1} << l;
                pin_bits.push_back(pin);
                if (q + lanes > z) s.copies.push_back({pos, static_cast<std::uint32_t>(pos - z)});
                if (q < lanes) s.copies.push_back({pos, static_cast<std::uint32_t>(pos + z)});
                s.pos.push_back(pos);
            }
            g.copies_end = static_cast<std::uint32_t>(s.copies.size());
            g.clean = std::all_of(pin_bits.begin(), pin_bits.end(), [](std::uint64_t p) { return p == 0; });
            if (!g.clean) {
                g.pins = static_cast<std::uint32_t>(s.pins.size());
                s.pins.insert(s.pins.end(), pin_bits.begin(), pin_bits.end());
            }
            s.groups.push_back(g);
            block_of.push_back(b);
            row0_of.push_back(r0);
        }
    }
    // Chains (see run_chain): the specialised kernels (normalized rule; C2:
    // degree 32, AR4JA r=1/2: 3 and 6, clean) in row blocks where no two rows
    // within 2 x lanes of each other share a column; a C2 chain takes pinned
    // and clean groups alike. (Other rules run group by group, in runs split
    // by pinned and clean groups.) For 64 lanes no C2 row block qualifies, and
    // testing consecutive groups one pair at a time instead finds none of
    // C2's 16 pairs disjoint either (two circulants of a column block within
    // 128 of each other somewhere in each pair of groups). Tried and not kept:
    // chaining them anyway, group i's edge e written before group i+1's read,
    // with group i+1's edges ordered so that each reads only columns group i
    // had already written (in the same place): C2 no faster (566-570 Mbit/s
    // either way, 10 iterations), AR4JA k=1024 12 % slower.
    for (std::size_t i = 0; i < s.groups.size(); ++i) {
        ldpc_group& g = s.groups[i];
        g.chained = rule == ldpc_min_sum::normalized && (((g.degree == 3 || g.degree == 6) && g.clean) || g.degree == 32) &&
                    ldpc_rows_apart(code, block_of[i], 2 * lanes);
    }
    // Runs of consecutive groups of one kind. A chain goes on into the next
    // row block when that block's first group shares no column with the last
    // group before it (all lanes, pinned ones too).
    const auto columns = [&](std::size_t i) {
        std::vector<std::size_t> cols;
        const std::size_t b = block_of[i];
        for (std::size_t e = code.row_begin(b); e < code.row_begin(b + 1); ++e)
            for (std::size_t l = 0; l < lanes; ++l)
                cols.push_back(code.edges()[e].col_block * z + (row0_of[i] + code.edges()[e].shift + l) % z);
        std::sort(cols.begin(), cols.end());
        return cols;
    };
    const auto disjoint = [&](std::size_t i, std::size_t j) {
        const auto a = columns(i), b = columns(j);
        std::vector<std::size_t> both;
        std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
        return both.empty();
    };
    for (std::size_t i = 0; i < s.groups.size(); ++i) {
        const ldpc_group& g = s.groups[i];
        ldpc_group_run* const r = s.runs.empty() ? nullptr : &s.runs.back();
        const bool extend = r != nullptr && r->degree == g.degree && r->chained == g.chained &&
                            (g.chained ? block_of[i - 1] == block_of[i] || disjoint(i - 1, i) : r->clean == g.clean);
        if (extend) {
            r->end = static_cast<std::uint32_t>(i + 1);
            r->clean = r->clean && g.clean;
        } else {
            s.runs.push_back(
                {static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1), g.degree, g.clean, g.chained});
        }
    }
    return s;
}

// Both rules are monotonic and step by at most one, so
// min(scale(m), limit) == scale(min(m, cap)) for every m; checked here for
// all 128 magnitudes.
std::uint8_t ldpc_magnitude_cap(ldpc_min_sum rule, std::uint8_t offset, std::uint8_t limit) {
    for (int cap = 127; cap >= 0; --cap) {
        bool same = true;
        for (int m = 0; m < 128 && same; ++m)
            same = ldpc_scale(static_cast<std::uint8_t>(m), rule, offset, limit) ==
                   ldpc_scale(static_cast<std::uint8_t>(std::min(m, cap)), rule, offset, 127);
        if (same) return static_cast<std::uint8_t>(cap);
    }
    throw std::logic_error("ldpc: no magnitude cap matches the message limit");
}

}  // namespace qlink::modem::detail
