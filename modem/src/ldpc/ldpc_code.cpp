// Quasi-cyclic parity-check matrices of the CCSDS C2 and AR4JA codes, built from the standard's tables.
#include "qlink/modem/ldpc.hpp"

#include "ccsds_ldpc_tables.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <stdexcept>

namespace qlink::modem {
namespace {

struct code_name {
    ldpc_code_id id;
    std::string_view name;
};

constexpr std::array<code_name, 10> code_names{{
    {ldpc_code_id::c2, "c2"},
    {ldpc_code_id::ar4ja_r12_k1024, "ar4ja-1/2-1024"},
    {ldpc_code_id::ar4ja_r12_k4096, "ar4ja-1/2-4096"},
    {ldpc_code_id::ar4ja_r12_k16384, "ar4ja-1/2-16384"},
    {ldpc_code_id::ar4ja_r23_k1024, "ar4ja-2/3-1024"},
    {ldpc_code_id::ar4ja_r23_k4096, "ar4ja-2/3-4096"},
    {ldpc_code_id::ar4ja_r23_k16384, "ar4ja-2/3-16384"},
    {ldpc_code_id::ar4ja_r45_k1024, "ar4ja-4/5-1024"},
    {ldpc_code_id::ar4ja_r45_k4096, "ar4ja-4/5-4096"},
    {ldpc_code_id::ar4ja_r45_k16384, "ar4ja-4/5-16384"},
}};

// One M x M block of the AR4JA matrix: a sum of identity (perm 0) and pi_k.
struct m_block {
    unsigned row, col;
    std::array<unsigned, 3> perms;  // 0 = I_M, k = pi_k, 99 = unused
};

constexpr unsigned none = 99;

// H_1/2 (last 5 M-columns), CCSDS 131.0-B 7.4.2.2.
constexpr std::array<m_block, 10> h12{{
    {0, 2, {0, none, none}},  {0, 4, {0, 1, none}},  {1, 0, {0, none, none}},
    {1, 1, {0, none, none}},  {1, 3, {0, none, none}}, {1, 4, {2, 3, 4}},
    {2, 0, {0, none, none}},  {2, 1, {5, 6, none}},  {2, 3, {7, 8, none}},
    {2, 4, {0, none, none}},
}};
// The two extra M-columns of rate 2/3 (placed before H_1/2).
constexpr std::array<m_block, 4> h23{{
    {1, 0, {9, 10, 11}}, {1, 1, {0, none, none}}, {2, 0, {0, none, none}}, {2, 1, {12, 13, 14}},
}};
// The four extra M-columns of rate 4/5 (placed before the rate-2/3 columns).
constexpr std::array<m_block, 8> h45{{
    {1, 0, {21, 22, 23}}, {1, 1, {0, none, none}}, {1, 2, {15, 16, 17}}, {1, 3, {0, none, none}},
    {2, 0, {0, none, none}}, {2, 1, {24, 25, 26}}, {2, 2, {0, none, none}}, {2, 3, {18, 19, 20}},
}};

struct ar4ja_params {
    unsigned kk;      // K: 2, 4, 8
    unsigned m_log2;  // log2(M)
};

ar4ja_params ar4ja_of(ldpc_code_id id) {
    switch (id) {
    case ldpc_code_id::ar4ja_r12_k1024: return {2, 9};
    case ldpc_code_id::ar4ja_r12_k4096: return {2, 11};
    case ldpc_code_id::ar4ja_r12_k16384: return {2, 13};
    case ldpc_code_id::ar4ja_r23_k1024: return {4, 8};
    case ldpc_code_id::ar4ja_r23_k4096: return {4, 10};
    case ldpc_code_id::ar4ja_r23_k16384: return {4, 12};
    case ldpc_code_id::ar4ja_r45_k1024: return {8, 7};
    case ldpc_code_id::ar4ja_r45_k4096: return {8, 9};
    case ldpc_code_id::ar4ja_r45_k16384: return {8, 11};
    case ldpc_code_id::c2: break;
    }
    return {0, 0};
}

// XOR semantics: a circulant listed twice cancels, as the standard's sums do.
void toggle_edge(std::vector<ldpc_qc_edge>& edges, ldpc_qc_edge e) {
    auto it = std::find_if(edges.begin(), edges.end(), [&](const ldpc_qc_edge& x) {
        return x.row_block == e.row_block && x.col_block == e.col_block && x.shift == e.shift;
    });
    if (it != edges.end())
        edges.erase(it);
    else
        edges.push_back(e);
}

}  // namespace

std::optional<ldpc_code_id> parse_ldpc_code(std::string_view name) {
    for (const auto& c : code_names)
        if (c.name == name) return c.id;
    return std::nullopt;
}

std::string_view to_string(ldpc_code_id id) {
    for (const auto& c : code_names)
        if (c.id == id) return c.name;
    return "?";
}

std::vector<ldpc_code_id> all_ldpc_codes() {
    std::vector<ldpc_code_id> out;
    for (const auto& c : code_names) out.push_back(c.id);
    return out;
}

ldpc_dims ldpc_code_dims(ldpc_code_id id) {
    if (id == ldpc_code_id::c2) return {7136, 8160};
    const auto p = ar4ja_of(id);
    if (p.kk == 0) return {};
    const std::size_t m = std::size_t{1} << p.m_log2;
    // Mother code (K + 3) M columns, the last M punctured.
    return {p.kk * m, (p.kk + 2) * m};
}

ldpc_code::ldpc_code(ldpc_code_id id) : id_(id) {
    std::vector<ldpc_qc_edge> edges;
    if (id == ldpc_code_id::c2) {
        z_ = 511;
        row_blocks_ = 2;
        col_blocks_ = 16;
        k_mother_ = 14 * 511;  // 7154: the expurgated code's systematic part
        fill_ = 18;
        punctured_ = 0;
        tail_zeros_ = 2;
        for (unsigned r = 0; r < 2; ++r)
            for (unsigned c = 0; c < 16; ++c)
                for (auto s : detail::c2_circulants[r][c]) toggle_edge(edges, {r, c, s});
    } else {
        const auto p = ar4ja_of(id);
        const std::size_t m = std::size_t{1} << p.m_log2;
        z_ = m / 4;
        row_blocks_ = 12;
        col_blocks_ = 4 * (p.kk + 3);
        k_mother_ = p.kk * m;
        fill_ = 0;
        punctured_ = m;
        tail_zeros_ = 0;
        const unsigned phi_col = p.m_log2 - 7;
        auto add_block = [&](const m_block& b, unsigned col_offset) {
            for (unsigned perm : b.perms) {
                if (perm == none) continue;
                // Split the M x M block into 4 x 4 circulants of size M/4:
                // row quarter j of pi_k lands in column quarter (theta + j) mod 4
                // with cyclic shift phi_k(j).
                for (unsigned j = 0; j < 4; ++j) {
                    unsigned col_q = j, shift = 0;
                    if (perm != 0) {
                        col_q = (detail::ar4ja_theta[perm - 1] + j) % 4;
                        shift = static_cast<unsigned>(detail::ar4ja_phi[j][perm - 1][phi_col] % z_);
                    }
                    toggle_edge(edges, {b.row * 4 + j, (col_offset + b.col) * 4 + col_q, shift});
                }
            }
        };
        const unsigned c12 = p.kk - 2;  // H_1/2 occupies the last 5 M-columns
        for (const auto& b : h12) add_block(b, c12);
        if (p.kk >= 4)
            for (const auto& b : h23) add_block(b, p.kk - 4);
        if (p.kk == 8)
            for (const auto& b : h45) add_block(b, 0);
    }
    std::stable_sort(edges.begin(), edges.end(), [](const ldpc_qc_edge& a, const ldpc_qc_edge& b) {
        return a.row_block != b.row_block ? a.row_block < b.row_block : a.col_block < b.col_block;
    });
    edges_ = std::move(edges);
    row_start_.assign(row_blocks_ + 1, 0);
    for (const auto& e : edges_) ++row_start_[e.row_block + 1];
    for (std::size_t b = 0; b < row_blocks_; ++b) row_start_[b + 1] += row_start_[b];
    k_ = k_mother_ - fill_;
    n_ = n_mother() - fill_ - punctured_ + tail_zeros_;
}

std::vector<std::uint32_t> ldpc_code::row_columns(std::size_t row) const {
    std::vector<std::uint32_t> cols;
    if (row >= m_rows()) return cols;
    const std::size_t b = row / z_, r = row % z_;
    for (std::size_t e = row_start_[b]; e < row_start_[b + 1]; ++e)
        cols.push_back(static_cast<std::uint32_t>(edges_[e].col_block * z_ + (r + edges_[e].shift) % z_));
    return cols;
}

std::size_t ldpc_code::syndrome_weight(std::span<const std::uint8_t> mother_bits) const {
    if (mother_bits.size() != n_mother()) return std::numeric_limits<std::size_t>::max();
    std::size_t weight = 0;
    for (std::size_t b = 0; b < row_blocks_; ++b) {
        for (std::size_t r = 0; r < z_; ++r) {
            unsigned parity = 0;
            for (std::size_t e = row_start_[b]; e < row_start_[b + 1]; ++e)
                parity ^= mother_bits[edges_[e].col_block * z_ + (r + edges_[e].shift) % z_] & 1u;
            weight += parity;
        }
    }
    return weight;
}

}  // namespace qlink::modem
