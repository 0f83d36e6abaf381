// Command-line parsing shared by the qlink subcommands: --name value options, ranges, one-line usage errors.
#pragma once

#include "cli/stream_file.hpp"
#include "qlink/modem/profile.hpp"

#include <cstdint>
#include <iosfwd>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace qlink::terminal::cli {

struct option_spec {
    std::string_view name;  // without the leading --
    std::string_view value_hint;
    std::string_view help;
};

// A parsed command line: --name value or --name=value (every option takes a value), and --help.
struct parsed_options {
    std::vector<std::pair<std::string, std::string>> values;
    bool help = false;
    const std::string* get(std::string_view name) const {
        for (const auto& [k, v] : values)
            if (k == name) return &v;
        return nullptr;
    }
};

struct usage_error {
    std::string message;
};

/// Parses --name value / --name=value against `specs`; --help sets help. Throws usage_error.
parsed_options parse(std::string_view cmd, std::span<const std::string_view> args, std::span<const option_spec> specs);
/// The option's value in [lo, hi], or def when absent. Throws usage_error naming the range.
double number_option(std::string_view cmd, const parsed_options& p, std::string_view name, double def, double lo,
                     double hi);
std::uint64_t integer_option(std::string_view cmd, const parsed_options& p, std::string_view name, std::uint64_t def,
                             std::uint64_t lo, std::uint64_t hi);
/// --profile NAME (or def), one of the built-in profiles.
const modem::chain_profile& profile_option(std::string_view cmd, const parsed_options& p, std::string_view def);
stream_format format_option(std::string_view cmd, const parsed_options& p);
/// The value of `name` when it is one of `allowed` (def when absent).
std::string choice_option(std::string_view cmd, const parsed_options& p, std::string_view name, std::string_view def,
                          std::initializer_list<std::string_view> allowed);
const std::string& required(std::string_view cmd, const parsed_options& p, std::string_view name);
void print_help(std::ostream& out, std::string_view cmd, std::string_view synopsis, std::string_view what,
                std::span<const option_spec> specs);

}  // namespace qlink::terminal::cli
