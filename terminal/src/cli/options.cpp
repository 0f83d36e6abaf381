// Command-line parsing shared by the qlink subcommands.
#include "cli/options.hpp"

#include <charconv>
#include <iomanip>
#include <ostream>
#include <sstream>

namespace qlink::terminal::cli {

namespace {

std::string allowed_list(std::span<const option_spec> specs) {
    std::string s;
    for (const auto& o : specs) {
        if (!s.empty()) s += ", ";
        s += "--";
        s += o.name;
    }
    return s.empty() ? "--help" : s + ", --help";
}

}  // namespace

parsed_options parse(std::string_view cmd, std::span<const std::string_view> args, std::span<const option_spec> specs) {
    parsed_options p;
    for (std::size_t i = 0; i < args.size(); ++i) {
        std::string_view a = args[i];
        if (a == "--help" || a == "-h") {
            p.help = true;
            continue;
        }
        if (a.size() < 3 || a.substr(0, 2) != "--")
            throw usage_error{"qlink " + std::string(cmd) + ": unexpected argument '" + std::string(a) +
                              "' (allowed options: " + allowed_list(specs) + ")"};
        a.remove_prefix(2);
        std::string value;
        bool has_value = false;
        if (const auto eq = a.find('='); eq != std::string_view::npos) {
            value = std::string(a.substr(eq + 1));
            a = a.substr(0, eq);
            has_value = true;
        }
        const option_spec* spec = nullptr;
        for (const auto& o : specs)
            if (o.name == a) spec = &o;
        if (!spec)
            throw usage_error{"qlink " + std::string(cmd) + ": unknown option '--" + std::string(a) +
                              "' (allowed options: " + allowed_list(specs) + ")"};
        if (!has_value) {
            if (i + 1 >= args.size())
                throw usage_error{"qlink " + std::string(cmd) + ": option --" + std::string(a) + " needs a value (" +
                                  std::string(spec->value_hint) + ")"};
            value = std::string(args[++i]);
        }
        if (p.get(a))
            throw usage_error{"qlink " + std::string(cmd) + ": option --" + std::string(a) + " given twice"};
        p.values.emplace_back(std::string(a), std::move(value));
    }
    return p;
}

double number_option(std::string_view cmd, const parsed_options& p, std::string_view name, double def, double lo,
                     double hi) {
    const std::string* v = p.get(name);
    if (!v) return def;
    double x = 0;
    const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc{} || ptr != v->data() + v->size() || !(x >= lo && x <= hi)) {
        std::ostringstream m;
        m << "qlink " << cmd << ": --" << name << " must be a number in [" << lo << ", " << hi << "], got '" << *v
          << "'";
        throw usage_error{m.str()};
    }
    return x;
}

std::uint64_t integer_option(std::string_view cmd, const parsed_options& p, std::string_view name, std::uint64_t def,
                             std::uint64_t lo, std::uint64_t hi) {
    const std::string* v = p.get(name);
    if (!v) return def;
    std::uint64_t x = 0;
    const auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), x);
    if (ec != std::errc{} || ptr != v->data() + v->size() || x < lo || x > hi)
        throw usage_error{"qlink " + std::string(cmd) + ": --" + std::string(name) + " must be an integer in [" +
                          std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + *v + "'"};
    return x;
}

const modem::chain_profile& profile_option(std::string_view cmd, const parsed_options& p, std::string_view def) {
    const std::string* v = p.get("profile");
    const std::string_view name = v ? std::string_view(*v) : def;
    const modem::chain_profile* prof = modem::find_profile(name);
    if (!prof)
        throw usage_error{"qlink " + std::string(cmd) + ": --profile '" + std::string(name) +
                          "' is not a profile (allowed: " + modem::profile_names() + ")"};
    return *prof;
}

stream_format format_option(std::string_view cmd, const parsed_options& p) {
    const std::string* v = p.get("format");
    if (!v) return stream_format::bits;
    const auto f = parse_stream_format(*v);
    if (!f)
        throw usage_error{"qlink " + std::string(cmd) + ": --format '" + *v + "' is not a format (allowed: bits, f32, i8)"};
    return *f;
}

std::string choice_option(std::string_view cmd, const parsed_options& p, std::string_view name, std::string_view def,
                          std::initializer_list<std::string_view> allowed) {
    const std::string* v = p.get(name);
    if (!v) return std::string(def);
    std::string list;
    for (const auto a : allowed) {
        if (a == *v) return *v;
        list += (list.empty() ? "" : ", ") + std::string(a);
    }
    throw usage_error{"qlink " + std::string(cmd) + ": --" + std::string(name) + " must be one of " + list + ", got '" + *v + "'"};
}

const std::string& required(std::string_view cmd, const parsed_options& p, std::string_view name) {
    const std::string* v = p.get(name);
    if (!v || v->empty())
        throw usage_error{"qlink " + std::string(cmd) + ": option --" + std::string(name) + " is required"};
    return *v;
}

void print_help(std::ostream& out, std::string_view cmd, std::string_view synopsis, std::string_view what,
                std::span<const option_spec> specs) {
    out << "usage: qlink " << cmd << ' ' << synopsis << "\n\n" << what << "\n\noptions:\n";
    for (const auto& o : specs) {
        // Appended, not "literal" + string: GCC 12 -O2 warns falsely (-Wrestrict) on that operator+.
        std::string left = "  --";
        left.append(o.name);
        if (!o.value_hint.empty()) left.append(" ").append(o.value_hint);
        out << std::left << std::setw(26) << left << ' ' << o.help << '\n';
    }
    out << std::left << std::setw(26) << "  --help" << " this text\n";
}


}  // namespace qlink::terminal::cli
