// Named CCSDS TM coding configurations (profiles) for the coding chain.
#pragma once

#include "qlink/modem/conv.hpp"
#include "qlink/modem/frame_sync.hpp"
#include "qlink/modem/interleaver.hpp"
#include "qlink/modem/ldpc.hpp"
#include "qlink/modem/reed_solomon.hpp"

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace qlink::modem {

/// A complete CCSDS 131.0-B concatenated configuration. The transfer frame is
/// the RS message: I * (255 - 2E - virtual_fill) bytes, whose last two bytes
/// are the CRC-16 FECF when `fecf` is set. With `ldpc` set the codeblock is an
/// LDPC codeword instead (131.0-B section 7): the transfer frame is the k/8-byte
/// information block (7.4.3.1: one frame per codeblock; C2: 892 bytes), the RS
/// fields are ignored, and there is no inner code.
struct chain_profile {
    std::string name;
    std::string description;
    unsigned rs_e = 16;
    unsigned rs_interleave = 4;
    rs_basis basis = rs_basis::dual;
    unsigned virtual_fill = 0;
    bool fecf = true;
    bool randomizer = true;
    bool inner_conv = true;       ///< false: the RS codeblock goes to BPSK without inner code
    conv_code conv{};
    sync_marker marker = asm_tm_32;
    interleaver_config interleaver{};
    std::optional<ldpc_code_id> ldpc;  ///< LDPC codeblocks instead of RS; use marker asm_ldpc_64
};

inline constexpr std::string_view default_profile_name = "ccsds-tm-rs223i4-conv12";

/// The built-in profiles, the default first.
std::span<const chain_profile> builtin_profiles();
/// nullptr when there is no profile of that name.
const chain_profile* find_profile(std::string_view name);
/// "a, b, c": every built-in name, for error messages.
std::string profile_names();

/// Checks a (possibly hand-made) profile; empty when valid, else one line naming the field.
std::string validate_profile(const chain_profile& p);

/// Transfer frame (RS message) bytes: I * (255 - 2E - fill); LDPC: k/8.
std::size_t frame_bytes(const chain_profile& p);
/// User data bytes per frame: frame_bytes minus the FECF.
std::size_t frame_data_bytes(const chain_profile& p);
/// Codeblock bytes after the marker: RS I * (255 - fill); LDPC n/8.
std::size_t codeblock_bytes(const chain_profile& p);
/// Bits from one marker to the next before the inner code: marker + codeblock.
std::size_t sync_period_bits(const chain_profile& p);
/// Mean channel symbols per frame (the inner code rate applied).
double channel_bits_per_frame(const chain_profile& p);
/// User data bits per channel symbol (what Eb/N0 refers to).
double information_rate(const chain_profile& p);
std::string_view to_string(conv_rate r);
std::string_view to_string(conv_convention c);

}  // namespace qlink::modem
