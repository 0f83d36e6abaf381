// Two-line element parsing: fixed columns, checksums, and messages naming line, column and field.
#include "qlink/sim/tle.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace qlink::sim {

namespace {

struct field_error {
    std::string message;
};

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

// Columns are 1-based and inclusive, as in the format's definition.
class line_reader {
public:
    line_reader(std::string_view line, int number) : line_(line), number_(number) {}

    std::string where(int c0, int c1, std::string_view field) const {
        // snprintf rather than string concatenation: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
        char buf[64];
        if (c0 == c1) std::snprintf(buf, sizeof buf, "line %d, column %d (", number_, c0);
        else std::snprintf(buf, sizeof buf, "line %d, columns %d-%d (", number_, c0, c1);
        std::string w = buf;
        w.append(field);
        w.push_back(')');
        return w;
    }

    std::string_view raw(int c0, int c1) const {
        const auto b = static_cast<std::size_t>(c0 - 1);
        if (b >= line_.size()) return {};
        return line_.substr(b, static_cast<std::size_t>(c1 - c0 + 1));
    }

    bool integer(int c0, int c1, std::string_view field, int& out, std::string& err, bool blank_ok = false) const {
        const std::string_view s = trim(raw(c0, c1));
        if (s.empty()) {
            if (blank_ok) {
                out = 0;
                return true;
            }
            err = where(c0, c1, field) + ": empty, expected digits";
            return false;
        }
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec != std::errc{} || p != s.data() + s.size()) {
            err = where(c0, c1, field) + ": '" + std::string(s) + "' is not an integer";
            return false;
        }
        return true;
    }

    bool real(int c0, int c1, std::string_view field, double& out, std::string& err) const {
        std::string_view s = trim(raw(c0, c1));
        if (!s.empty() && s.front() == '+') s.remove_prefix(1);
        if (s.empty()) {
            err = where(c0, c1, field) + ": empty, expected a number";
            return false;
        }
        // from_chars follows strtod's grammar, so ".00000023" and "-.00000084" parse as printed.
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        if (ec != std::errc{} || p != s.data() + s.size() || !std::isfinite(out)) {
            err = where(c0, c1, field) + ": '" + std::string(s) + "' is not a number";
            return false;
        }
        return true;
    }

    // The "assumed decimal point" form: [sign]ddddd[sign]d meaning 0.ddddd * 10^(exp).
    bool exp_real(int c0, int c1, std::string_view field, double& out, std::string& err) const {
        std::string_view s = trim(raw(c0, c1));
        if (s.empty()) {
            out = 0.0;
            return true;
        }
        double sign = 1.0;
        if (s.front() == '-' || s.front() == '+') {
            sign = s.front() == '-' ? -1.0 : 1.0;
            s.remove_prefix(1);
        }
        const auto e = s.find_last_of("+-");
        if (e == std::string_view::npos || e == 0 || e + 2 != s.size()) {
            err = where(c0, c1, field) + ": '" + std::string(trim(raw(c0, c1))) +
                  "' is not in the form [-]ddddd-d (mantissa with assumed decimal point, signed exponent)";
            return false;
        }
        int mant = 0, ex = 0;
        const std::string_view m = s.substr(0, e);
        for (char c : m)
            if (c < '0' || c > '9') {
                err = where(c0, c1, field) + ": mantissa '" + std::string(m) + "' must be digits";
                return false;
            }
        std::from_chars(m.data(), m.data() + m.size(), mant);
        const char ed = s[e + 1];
        if (ed < '0' || ed > '9') {
            err = where(c0, c1, field) + ": exponent must be one digit";
            return false;
        }
        ex = (ed - '0') * (s[e] == '-' ? -1 : 1);
        out = sign * static_cast<double>(mant) * std::pow(10.0, -static_cast<double>(m.size())) * std::pow(10.0, ex);
        return true;
    }

private:
    std::string_view line_;
    int number_;
};

bool check_range(double v, double lo, double hi, const std::string& where, std::string& err) {
    if (!(v >= lo && v <= hi)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, ": %g outside the allowed range [%g, %g]", v, lo, hi);
        err = where + buf;
        return false;
    }
    return true;
}

bool check_line(std::string_view line, int number, const tle_parse_options& opt, std::string& err) {
    const std::string ln = "line " + std::to_string(number);
    if (line.size() < 68) {
        err = ln + ": " + std::to_string(line.size()) + " characters, a TLE line has 69 (columns 1-69)";
        return false;
    }
    if (line.size() > 69 && !opt.allow_trailing && !trim(line.substr(69)).empty()) {
        err = ln + ", column 70: unexpected characters after column 69";
        return false;
    }
    if (line[0] != static_cast<char>('0' + number)) {
        err = ln + ", column 1 (line number): expected '" + std::to_string(number) + "', found '" + line[0] + "'";
        return false;
    }
    for (std::size_t i = 0; i < std::min<std::size_t>(line.size(), 69); ++i) {
        const auto c = static_cast<unsigned char>(line[i]);
        if (c < 0x20 || c > 0x7e) {
            err = ln + ", column " + std::to_string(i + 1) + ": non-printable character";
            return false;
        }
    }
    if (opt.verify_checksum) {
        if (line.size() < 69 || line[68] < '0' || line[68] > '9') {
            err = ln + ", column 69 (checksum): missing, expected a digit";
            return false;
        }
        const int want = tle_checksum(line);
        if (line[68] - '0' != want) {
            err = ln + ", column 69 (checksum): found " + std::string(1, line[68]) + ", the line sums to " +
                  std::to_string(want);
            return false;
        }
    }
    return true;
}

}  // namespace

int tle_checksum(std::string_view line) {
    int sum = 0;
    for (std::size_t i = 0; i < std::min<std::size_t>(line.size(), 68); ++i) {
        const char c = line[i];
        if (c >= '0' && c <= '9') sum += c - '0';
        else if (c == '-') sum += 1;
    }
    return sum % 10;
}

time_point tle::epoch() const {
    const auto jan1 = std::chrono::sys_days{std::chrono::year{epoch_year} / std::chrono::January / 1};
    const double whole = std::floor(epoch_day);
    const auto day = jan1 + std::chrono::days{static_cast<int>(whole) - 1};
    const auto frac = std::chrono::nanoseconds{std::llround((epoch_day - whole) * 86400.0e9)};
    return time_point{day} + frac;
}

tle_parse_result parse_tle(std::string_view line1, std::string_view line2, std::string_view name,
                           const tle_parse_options& opt) {
    tle_parse_result res;
    std::string& err = res.error;
    line1 = trim(line1);
    line2 = trim(line2);
    if (!check_line(line1, 1, opt, err) || !check_line(line2, 2, opt, err)) return res;

    tle t;
    t.name = std::string(trim(name));
    if (!t.name.empty() && t.name.front() == '0' && t.name.size() > 1 && t.name[1] == ' ') t.name = t.name.substr(2);
    const line_reader a(line1, 1), b(line2, 2);

    if (!a.integer(3, 7, "catalog number", t.catalog_number, err)) return res;
    t.classification = line1[7] == ' ' ? 'U' : line1[7];
    if (t.classification != 'U' && t.classification != 'C' && t.classification != 'S') {
        err = a.where(8, 8, "classification") + ": '" + std::string(1, line1[7]) + "', expected U, C or S";
        return res;
    }
    t.intl_designator = std::string(trim(a.raw(10, 17)));
    int yy = 0;
    if (!a.integer(19, 20, "epoch year", yy, err)) return res;
    t.epoch_year = yy < 57 ? 2000 + yy : 1900 + yy;
    if (!a.real(21, 32, "epoch day of year", t.epoch_day, err)) return res;
    const int days_in_year = std::chrono::year{t.epoch_year}.is_leap() ? 366 : 365;
    if (!check_range(t.epoch_day, 1.0, days_in_year + 1.0 - 1e-12, a.where(21, 32, "epoch day of year"), err))
        return res;
    if (!a.real(34, 43, "first derivative of mean motion", t.mean_motion_dot, err)) return res;
    if (!a.exp_real(45, 52, "second derivative of mean motion", t.mean_motion_ddot, err)) return res;
    if (!a.exp_real(54, 61, "BSTAR drag term", t.bstar, err)) return res;
    if (!a.integer(65, 68, "element set number", t.element_set, err, true)) return res;

    int catalog2 = 0;
    if (!b.integer(3, 7, "catalog number", catalog2, err)) return res;
    if (catalog2 != t.catalog_number) {
        err = b.where(3, 7, "catalog number") + ": " + std::to_string(catalog2) + " differs from line 1's " +
              std::to_string(t.catalog_number);
        return res;
    }
    if (!b.real(9, 16, "inclination", t.inclination_deg, err) ||
        !check_range(t.inclination_deg, 0.0, 180.0, b.where(9, 16, "inclination, degrees"), err))
        return res;
    if (!b.real(18, 25, "right ascension of the ascending node", t.raan_deg, err) ||
        !check_range(t.raan_deg, 0.0, 360.0, b.where(18, 25, "right ascension, degrees"), err))
        return res;
    const std::string_view ecc = b.raw(27, 33);
    for (char c : ecc)
        if (c != ' ' && (c < '0' || c > '9')) {
            err = b.where(27, 33, "eccentricity") + ": '" + std::string(ecc) +
                  "' must be 7 digits with an assumed leading decimal point";
            return res;
        }
    if (!b.real(27, 33, "eccentricity", t.eccentricity, err)) return res;
    t.eccentricity *= 1e-7;
    if (!b.real(35, 42, "argument of perigee", t.arg_perigee_deg, err) ||
        !check_range(t.arg_perigee_deg, 0.0, 360.0, b.where(35, 42, "argument of perigee, degrees"), err))
        return res;
    if (!b.real(44, 51, "mean anomaly", t.mean_anomaly_deg, err) ||
        !check_range(t.mean_anomaly_deg, 0.0, 360.0, b.where(44, 51, "mean anomaly, degrees"), err))
        return res;
    if (!b.real(53, 63, "mean motion", t.mean_motion_rev_day, err) ||
        !check_range(t.mean_motion_rev_day, 1e-9, 20.0, b.where(53, 63, "mean motion, revolutions per day"), err))
        return res;
    if (!b.integer(64, 68, "revolution number", t.rev_number, err, true)) return res;

    const auto jan1 = std::chrono::sys_days{std::chrono::year{t.epoch_year} / std::chrono::January / 1};
    t.epoch_jd = 2440587.5 + static_cast<double>(jan1.time_since_epoch().count()) + std::floor(t.epoch_day) - 1.0;
    t.epoch_jd_fraction = t.epoch_day - std::floor(t.epoch_day);
    res.value = std::move(t);
    return res;
}

tle_file_result parse_tle_text(std::string_view text, const tle_parse_options& opt) {
    tle_file_result out;
    std::vector<std::pair<int, std::string_view>> lines;
    int n = 0;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        auto nl = text.find('\n', pos);
        if (nl == std::string_view::npos) nl = text.size();
        ++n;
        const std::string_view l = trim(text.substr(pos, nl - pos));
        if (!l.empty() && l.front() != '#') lines.emplace_back(n, l);
        pos = nl + 1;
    }
    for (std::size_t i = 0; i < lines.size();) {
        std::string_view name;
        if (lines[i].second.front() != '1' || lines[i].second.size() < 2 || lines[i].second[1] != ' ') {
            name = lines[i].second;
            ++i;
        }
        if (i + 1 >= lines.size() || lines[i].second.front() != '1') {
            const int at = i < lines.size() ? lines[i].first : n;
            out.error = "file line " + std::to_string(at) + ": expected TLE line 1 (starting '1 ')";
            return out;
        }
        auto r = parse_tle(lines[i].second, lines[i + 1].second, name, opt);
        if (!r.ok()) {
            out.error = "file lines " + std::to_string(lines[i].first) + "-" + std::to_string(lines[i + 1].first) +
                        ": " + r.error;
            return out;
        }
        out.sets.push_back(std::move(*r.value));
        i += 2;
    }
    if (out.sets.empty()) out.error = "no element set found (expected optional name line, then lines '1 ...' and '2 ...')";
    return out;
}

}  // namespace qlink::sim
