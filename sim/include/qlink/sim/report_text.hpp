// Text helpers shared by the pass reports (`qlink-sim report`, `qlink demo`): JSON strings, XML/SVG
// escaping, CSV fields and axis ticks. Names and notes in a report come from files and operators, so
// every string is escaped, control characters included.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

namespace qlink::sim::report_text {

/// A JSON string literal (quotes included); control characters as \uXXXX.
inline std::string json_string(std::string_view s) {
    std::string o = "\"";
    for (char c : s) {
        switch (c) {
        case '"': o += "\\\""; break;
        case '\\': o += "\\\\"; break;
        case '\n': o += "\\n"; break;
        case '\t': o += "\\t"; break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                char b[8];
                std::snprintf(b, sizeof b, "\\u%04x", static_cast<unsigned>(c));
                o += b;
            } else {
                o += c;
            }
        }
    }
    return o + "\"";
}

/// Text for XML content and attribute values; control characters XML 1.0 does not allow become spaces.
inline std::string xml_escape(std::string_view s) {
    std::string o;
    for (char c : s) {
        if (c == '<') o += "&lt;";
        else if (c == '>') o += "&gt;";
        else if (c == '&') o += "&amp;";
        else if (c == '"') o += "&quot;";
        else if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += ' ';
        else o += c;
    }
    return o;
}

/// A CSV field, quoted (RFC 4180) when it holds a comma, a quote or a newline.
inline std::string csv_field(std::string_view s) {
    if (s.find_first_of(",\"\n") == std::string_view::npos) return std::string(s);
    std::string o = "\"";
    for (char c : s) o += c == '"' ? std::string("\"\"") : std::string(1, c);
    return o + "\"";
}

/// A "nice" tick step (1, 2, 5 x 10^k) giving about `target` intervals over span.
inline double nice_step(double span, int target) {
    if (!(span > 0.0)) return 1.0;
    const double raw = span / target;
    const double mag = std::pow(10.0, std::floor(std::log10(raw)));
    const double r = raw / mag;
    return (r < 1.5 ? 1.0 : r < 3.5 ? 2.0 : r < 7.5 ? 5.0 : 10.0) * mag;
}

}  // namespace qlink::sim::report_text
