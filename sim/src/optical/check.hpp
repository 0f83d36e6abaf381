// Configuration checks shared by the channel models: std::invalid_argument naming the field and range.
#pragma once

#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace qlink::sim::detail {

/// Throws unless lo <= v <= hi (or lo < v when lo_open, v < hi when hi_open); NaN always fails.
inline void check_range(const char* field, double v, double lo, double hi, bool lo_open = false,
                        bool hi_open = false) {
    bool ok = std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok) {
        auto num = [](double x) {
            char b[32];
            std::snprintf(b, sizeof b, "%g", x);
            return std::string(b);
        };
        throw std::invalid_argument(std::string(field) + " = " + num(v) + " is out of range; allowed " +
                                    (lo_open ? "(" : "[") + num(lo) + ", " + num(hi) + (hi_open ? ")" : "]"));
    }
}

}  // namespace qlink::sim::detail
