// The built-in coding profiles and the arithmetic of frame sizes and rates.
#include "qlink/modem/profile.hpp"

#include <array>
#include <vector>

namespace qlink::modem {

namespace {

double conv_rate_value(conv_rate r) {
    switch (r) {
    case conv_rate::r1_2: return 1.0 / 2.0;
    case conv_rate::r2_3: return 2.0 / 3.0;
    case conv_rate::r3_4: return 3.0 / 4.0;
    case conv_rate::r5_6: return 5.0 / 6.0;
    case conv_rate::r7_8: return 7.0 / 8.0;
    }
    return 1.0;
}

chain_profile make(std::string name, std::string description, unsigned e, unsigned i, bool conv, conv_rate rate,
                   interleaver_config il = {}) {
    chain_profile p;
    p.name = std::move(name);
    p.description = std::move(description);
    p.rs_e = e;
    p.rs_interleave = i;
    p.inner_conv = conv;
    p.conv.rate = rate;
    p.interleaver = il;
    return p;
}

chain_profile make_ldpc(std::string name, std::string description, ldpc_code_id id) {
    chain_profile p;
    p.name = std::move(name);
    p.description = std::move(description);
    p.ldpc = id;
    p.inner_conv = false;
    p.marker = asm_ldpc_64;
    return p;
}

const std::vector<chain_profile>& table() {
    static const std::vector<chain_profile> profiles = [] {
        interleaver_config cil;
        cil.kind = interleaver_kind::convolutional;
        cil.branches = 32;
        cil.unit = 64;  // span 2048 channel symbols
        std::vector<chain_profile> v;
        v.push_back(make(std::string(default_profile_name),
                         "CCSDS TM: CRC-16, RS(255,223) I=4, randomizer, ASM, conv K=7 r=1/2", 16, 4, true,
                         conv_rate::r1_2));
        v.push_back(make("ccsds-tm-rs223i1-conv12", "CCSDS TM: CRC-16, RS(255,223) I=1, randomizer, ASM, conv r=1/2",
                         16, 1, true, conv_rate::r1_2));
        v.push_back(make("ccsds-tm-rs223i5-conv12", "CCSDS TM: CRC-16, RS(255,223) I=5, randomizer, ASM, conv r=1/2",
                         16, 5, true, conv_rate::r1_2));
        v.push_back(make("ccsds-tm-rs239i5-conv34",
                         "CCSDS TM: CRC-16, RS(255,239) E=8 I=5, randomizer, ASM, conv punctured r=3/4", 8, 5, true,
                         conv_rate::r3_4));
        v.push_back(make("ccsds-tm-rs223i4-conv78",
                         "CCSDS TM: CRC-16, RS(255,223) I=4, randomizer, ASM, conv punctured r=7/8", 16, 4, true,
                         conv_rate::r7_8));
        v.push_back(make("ccsds-tm-rs223i4", "CCSDS TM: CRC-16, RS(255,223) I=4, randomizer, ASM, no inner code", 16,
                         4, false, conv_rate::r1_2));
        v.push_back(make("optical-rs223i4-conv12-cil",
                         "default chain + convolutional channel interleaver (32 branches x 64, span 2048 symbols) "
                         "against fades; the stream must start at the interleaver's first symbol",
                         16, 4, true, conv_rate::r1_2, cil));
        // LDPC (CCSDS 131.0-B section 7): the optical downlink codes. The
        // channel bits go to OOK/PPM or BPSK as they are; the receiver wants
        // soft values (photon-count or sample LLRs), not hard decisions.
        v.push_back(make_ldpc("ldpc-c2",
                              "CCSDS LDPC C2 (8160,7136): 892-byte frame (CRC-16 FECF) per codeblock, randomizer, "
                              "64-bit ASM, no inner code; the optical (OOK) downlink default",
                              ldpc_code_id::c2));
        v.push_back(make_ldpc("ar4ja-1024-r12",
                              "CCSDS LDPC AR4JA r=1/2 k=1024: 128-byte frame (CRC-16 FECF) per codeblock, randomizer, "
                              "64-bit ASM, no inner code",
                              ldpc_code_id::ar4ja_r12_k1024));
        v.push_back(make_ldpc("ar4ja-4096-r12",
                              "CCSDS LDPC AR4JA r=1/2 k=4096: 512-byte frame (CRC-16 FECF) per codeblock, randomizer, "
                              "64-bit ASM, no inner code; deep fades / low photon counts",
                              ldpc_code_id::ar4ja_r12_k4096));
        v.push_back(make_ldpc("ar4ja-4096-r23",
                              "CCSDS LDPC AR4JA r=2/3 k=4096: 512-byte frame (CRC-16 FECF) per codeblock, randomizer, "
                              "64-bit ASM, no inner code",
                              ldpc_code_id::ar4ja_r23_k4096));
        v.push_back(make_ldpc("ar4ja-16384-r45",
                              "CCSDS LDPC AR4JA r=4/5 k=16384: 2048-byte frame (CRC-16 FECF) per codeblock, randomizer, "
                              "64-bit ASM, no inner code",
                              ldpc_code_id::ar4ja_r45_k16384));
        return v;
    }();
    return profiles;
}

}  // namespace

std::span<const chain_profile> builtin_profiles() { return table(); }

const chain_profile* find_profile(std::string_view name) {
    for (const auto& p : table())
        if (p.name == name) return &p;
    return nullptr;
}

std::string profile_names() {
    std::string s;
    for (const auto& p : table()) {
        if (!s.empty()) s += ", ";
        s += p.name;
    }
    return s;
}

std::string validate_profile(const chain_profile& p) {
    if (p.ldpc) {
        const ldpc_dims d = ldpc_code_dims(*p.ldpc);
        if (d.k == 0) return "profile " + p.name + ": ldpc is not a CCSDS LDPC code";
        if (p.inner_conv) return "profile " + p.name + ": an LDPC profile has no inner convolutional code";
        if (p.marker.bits < 16 || p.marker.bits > 64 || p.marker.bits % 8 != 0)
            return "profile " + p.name + ": marker must have 16..64 bits, a whole number of bytes";
        return {};
    }
    if (p.rs_e != 16 && p.rs_e != 8) return "profile " + p.name + ": rs_e must be 16 or 8";
    constexpr std::array<unsigned, 6> depths{1, 2, 3, 4, 5, 8};
    bool depth_ok = false;
    for (unsigned d : depths) depth_ok |= d == p.rs_interleave;
    if (!depth_ok) return "profile " + p.name + ": rs_interleave must be one of 1, 2, 3, 4, 5, 8";
    if (p.virtual_fill > 254 - 2 * p.rs_e) return "profile " + p.name + ": virtual_fill too large";
    if (frame_bytes(p) < 3) return "profile " + p.name + ": frame too short";
    if (p.marker.bits < 16 || p.marker.bits > 64 || p.marker.bits % 8 != 0)
        return "profile " + p.name + ": marker must have 16..64 bits, a whole number of bytes";
    return {};
}

std::size_t frame_bytes(const chain_profile& p) {
    if (p.ldpc) return ldpc_code_dims(*p.ldpc).k / 8;
    return static_cast<std::size_t>(p.rs_interleave) * (255 - 2 * p.rs_e - p.virtual_fill);
}
std::size_t frame_data_bytes(const chain_profile& p) { return frame_bytes(p) - (p.fecf ? 2 : 0); }
std::size_t codeblock_bytes(const chain_profile& p) {
    if (p.ldpc) return ldpc_code_dims(*p.ldpc).n / 8;
    return static_cast<std::size_t>(p.rs_interleave) * (255 - p.virtual_fill);
}
std::size_t sync_period_bits(const chain_profile& p) { return p.marker.bits + 8 * codeblock_bytes(p); }

double channel_bits_per_frame(const chain_profile& p) {
    const double bits = static_cast<double>(sync_period_bits(p));
    return p.inner_conv ? bits / conv_rate_value(p.conv.rate) : bits;
}

double information_rate(const chain_profile& p) {
    return 8.0 * static_cast<double>(frame_data_bytes(p)) / channel_bits_per_frame(p);
}

std::string_view to_string(conv_rate r) {
    switch (r) {
    case conv_rate::r1_2: return "1/2";
    case conv_rate::r2_3: return "2/3";
    case conv_rate::r3_4: return "3/4";
    case conv_rate::r5_6: return "5/6";
    case conv_rate::r7_8: return "7/8";
    }
    return "?";
}

std::string_view to_string(conv_convention c) {
    switch (c) {
    case conv_convention::ccsds: return "ccsds";
    case conv_convention::uninverted: return "uninverted";
    case conv_convention::swapped: return "swapped";
    }
    return "?";
}

}  // namespace qlink::modem
