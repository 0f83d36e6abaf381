// Recorded received-power series: CSV and MATLAB (libmatio) loaders with strict checks, and playback.
#include "qlink/sim/replay.hpp"

#include <matio.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "check.hpp"

namespace qlink::sim {

namespace {

void finish(power_series& s, const replay_load_options& opt, const std::string& what) {
    if (s.samples.empty()) throw std::runtime_error(what + ": no samples");
    s.sample_rate_hz = opt.sample_rate_hz;
    if (!opt.normalise) return;
    double sum = 0.0;
    for (float v : s.samples) sum += v;
    double mean = sum / static_cast<double>(s.samples.size());
    if (!(mean > 0.0)) throw std::runtime_error(what + ": mean power is zero, cannot normalise to mean 1");
    for (auto& v : s.samples) v = static_cast<float>(v / mean);
}

void check_value(double v, const std::string& where) {
    if (!std::isfinite(v)) throw std::runtime_error(where + ": value is NaN or infinite");
    if (v < 0.0) throw std::runtime_error(where + ": negative power");
}

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    if (b == std::string::npos) return {};
    auto e = s.find_last_not_of(" \t\r");
    return s.substr(b, e - b + 1);
}

}  // namespace

power_series load_power_csv(const std::string& path, const replay_load_options& opt) {
    detail::check_range("sample_rate_hz", opt.sample_rate_hz, 0.0, 1e12, true, false);
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot open");
    power_series s;
    std::string line;
    std::size_t line_no = 0;
    bool header_allowed = true;
    while (std::getline(in, line)) {
        ++line_no;
        std::string t = trim(line);
        if (t.empty() || t[0] == '#') continue;
        // Pick the requested column.
        std::size_t start = 0;
        for (std::size_t c = 0; c < opt.csv_column; ++c) {
            start = t.find(',', start);
            if (start == std::string::npos)
                throw std::runtime_error(path + ":" + std::to_string(line_no) + ": no column " +
                                         std::to_string(opt.csv_column));
            ++start;
        }
        std::size_t end = t.find(',', start);
        std::string field = trim(t.substr(start, end == std::string::npos ? std::string::npos : end - start));
        const std::string where = path + ":" + std::to_string(line_no) + " column " + std::to_string(opt.csv_column);
        errno = 0;
        char* stop = nullptr;
        double v = std::strtod(field.c_str(), &stop);
        if (field.empty() || stop != field.c_str() + field.size() || errno == ERANGE) {
            if (header_allowed && s.samples.empty()) {  // one header line naming the columns
                header_allowed = false;
                continue;
            }
            throw std::runtime_error(where + ": '" + field + "' is not a number");
        }
        header_allowed = false;
        check_value(v, where);
        s.samples.push_back(static_cast<float>(v));
    }
    finish(s, opt, path);
    return s;
}

power_series load_power_mat(const std::string& path, const replay_load_options& opt) {
    detail::check_range("sample_rate_hz", opt.sample_rate_hz, 0.0, 1e12, true, false);
    std::unique_ptr<mat_t, decltype(&Mat_Close)> mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY), &Mat_Close);
    if (!mat) throw std::runtime_error(path + ": not a MATLAB MAT file (or cannot open)");

    std::string name = opt.variable;
    if (name.empty()) {
        // The first real numeric variable that is a vector.
        while (matvar_t* info = Mat_VarReadNextInfo(mat.get())) {
            bool numeric = info->class_type >= MAT_C_DOUBLE && info->class_type <= MAT_C_UINT64;
            bool vec = info->rank == 2 && (info->dims[0] == 1 || info->dims[1] == 1);
            if (numeric && vec && !info->isComplex && info->name) name = info->name;
            Mat_VarFree(info);
            if (!name.empty()) break;
        }
        if (name.empty()) throw std::runtime_error(path + ": holds no real numeric vector");
    }
    const std::string what = path + " variable '" + name + "'";
    std::unique_ptr<matvar_t, decltype(&Mat_VarFree)> var(Mat_VarRead(mat.get(), name.c_str()), &Mat_VarFree);
    if (!var) throw std::runtime_error(what + ": not found");
    if (var->class_type < MAT_C_DOUBLE || var->class_type > MAT_C_UINT64)
        throw std::runtime_error(what + ": not numeric (class " + std::to_string(int(var->class_type)) + ")");
    if (var->isComplex) throw std::runtime_error(what + ": complex, expected real power");
    if (var->rank != 2 || (var->dims[0] != 1 && var->dims[1] != 1))
        throw std::runtime_error(what + ": not a vector (rank " + std::to_string(var->rank) + ")");
    const std::size_t n = var->dims[0] * var->dims[1];
    if (n == 0 || var->data == nullptr) throw std::runtime_error(what + ": empty");

    power_series s;
    s.samples.resize(n);
    auto convert = [&](const auto* p) {
        for (std::size_t i = 0; i < n; ++i) {
            double v = static_cast<double>(p[i]);
            check_value(v, what + " element " + std::to_string(i + 1));
            s.samples[i] = static_cast<float>(v);
        }
    };
    switch (var->class_type) {
        case MAT_C_DOUBLE: convert(static_cast<const double*>(var->data)); break;
        case MAT_C_SINGLE: convert(static_cast<const float*>(var->data)); break;
        case MAT_C_INT8: convert(static_cast<const std::int8_t*>(var->data)); break;
        case MAT_C_UINT8: convert(static_cast<const std::uint8_t*>(var->data)); break;
        case MAT_C_INT16: convert(static_cast<const std::int16_t*>(var->data)); break;
        case MAT_C_UINT16: convert(static_cast<const std::uint16_t*>(var->data)); break;
        case MAT_C_INT32: convert(static_cast<const std::int32_t*>(var->data)); break;
        case MAT_C_UINT32: convert(static_cast<const std::uint32_t*>(var->data)); break;
        case MAT_C_INT64: convert(static_cast<const std::int64_t*>(var->data)); break;
        case MAT_C_UINT64: convert(static_cast<const std::uint64_t*>(var->data)); break;
        default: throw std::runtime_error(what + ": not numeric");
    }
    finish(s, opt, what);
    return s;
}

replay_source::replay_source(power_series series, bool loop) : series_(std::move(series)), loop_(loop) {
    if (series_.samples.empty()) throw std::invalid_argument("replay_source: series is empty");
    detail::check_range("sample_rate_hz", series_.sample_rate_hz, 0.0, 1e12, true, false);
}

gain_result replay_source::generate(std::span<float> out) {
    std::size_t written = 0;
    const std::size_t n = series_.samples.size();
    while (written < out.size()) {
        if (pos_ == n) {
            if (!loop_) return {written, true};
            pos_ = 0;
        }
        std::size_t k = std::min(out.size() - written, n - pos_);
        std::copy_n(series_.samples.begin() + static_cast<std::ptrdiff_t>(pos_), k, out.begin() + static_cast<std::ptrdiff_t>(written));
        pos_ += k;
        written += k;
    }
    return {written, false};
}

}  // namespace qlink::sim
