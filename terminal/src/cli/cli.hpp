// The `qlink` command line (profiles, demo, encode, decode) as library code; main() only forwards.
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

namespace qlink::terminal::cli {

/// Exit codes: 0 success, 1 the work failed (frames lost, file unreadable),
/// 2 bad command line (one line on `err` names the option and the allowed values).
inline constexpr int exit_ok = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;

/// args excludes the program name: {"demo", "--ebn0", "4"}.
int run(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace qlink::terminal::cli
