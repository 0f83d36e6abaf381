// Replay of recorded received-power time series (CSV or MATLAB MAT v5) as a gain source.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "qlink/sim/fading.hpp"

namespace qlink::sim {

/// A loaded power vector (linear power, normalised to mean 1 unless asked otherwise).
struct power_series {
    std::vector<float> samples;
    double sample_rate_hz = 0.0;
};

struct replay_load_options {
    double sample_rate_hz = 10e3;   ///< rate of the recording, > 0
    bool normalise = true;          ///< scale to mean 1 (DLR power vectors are already so)
    std::string variable;           ///< MAT: variable name; empty = the first numeric vector
    std::size_t csv_column = 0;     ///< CSV: zero-based column holding the power
};

/// Loads a CSV: one sample per line, comma-separated columns, '#' comments and one
/// non-numeric header line allowed. Throws std::runtime_error naming the file, line and
/// column for anything that is not a finite non-negative number, or an empty series.
power_series load_power_csv(const std::string& path, const replay_load_options& opt = {});

/// Loads a MATLAB v5 (or v7.3 if matio has HDF5) numeric real vector via libmatio.
/// Throws std::runtime_error naming the file and variable when it is missing, not numeric,
/// complex, not a vector, empty, or holds NaN/Inf/negative values.
power_series load_power_mat(const std::string& path, const replay_load_options& opt = {});

/// Plays a series back; loops at the end when `loop`, else reports `exhausted`.
class replay_source : public gain_source {
public:
    replay_source(power_series series, bool loop);
    gain_result generate(std::span<float> out) override;
    double sample_rate_hz() const override { return series_.sample_rate_hz; }
    std::size_t position() const { return pos_; }
    std::size_t size() const { return series_.samples.size(); }

private:
    power_series series_;
    bool loop_;
    std::size_t pos_ = 0;
};

}  // namespace qlink::sim
