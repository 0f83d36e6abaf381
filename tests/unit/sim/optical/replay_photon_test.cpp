// Tests of the power-series replay (CSV, MAT v5 written by libmatio) and the photon-counting receiver.
#include <gtest/gtest.h>
#include <matio.h>

#include <cmath>
#include <complex>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "qlink/sim/fading.hpp"
#include "qlink/sim/photon_receiver.hpp"
#include "qlink/sim/replay.hpp"

namespace qlink::sim {
namespace {

std::string temp_path(const std::string& name) {
    return ::testing::TempDir() + "qlink_sim_replay_" + std::to_string(::getpid()) + "_" + name;
}

void write_mat_vector(const std::string& path, const char* name, const std::vector<double>& v, bool row = false) {
    mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, MAT_FT_MAT5);
    ASSERT_NE(mat, nullptr);
    size_t dims[2] = {row ? 1 : v.size(), row ? v.size() : 1};
    matvar_t* var = Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, const_cast<double*>(v.data()), 0);
    ASSERT_NE(var, nullptr);
    ASSERT_EQ(Mat_VarWrite(mat, var, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(var);
    Mat_Close(mat);
}

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const std::runtime_error& e) {
        return e.what();
    }
    return "<no exception>";
}

TEST(replay, mat_v5_dlr_style_power_vector) {
    // A DLR-style vector: 100 s at 10 kS/s of correlated fading, stored un-normalised (mean 2.5).
    fading_process::config c;
    c.scintillation_index = 0.2;
    c.seed = 41;
    auto f = create_fading_process(c);
    std::vector<float> fad(1'000'000);
    f->generate(fad);
    std::vector<double> stored(fad.begin(), fad.end());
    double sum = 0;
    for (auto& x : stored) sum += (x *= 2.5);
    const std::string path = temp_path("dlr.mat");
    write_mat_vector(path, "P_rx", stored, true);

    replay_load_options opt;
    opt.sample_rate_hz = 10e3;
    auto s = load_power_mat(path, opt);  // first numeric vector
    ASSERT_EQ(s.samples.size(), stored.size());
    EXPECT_DOUBLE_EQ(s.sample_rate_hz, 10e3);
    double mean = sum / stored.size(), m2 = 0;
    for (std::size_t i = 0; i < stored.size(); i += 997) EXPECT_NEAR(s.samples[i], stored[i] / mean, 1e-5);
    for (float x : s.samples) m2 += x;
    EXPECT_NEAR(m2 / s.samples.size(), 1.0, 1e-6);

    opt.variable = "P_rx";
    opt.normalise = false;
    auto raw = load_power_mat(path, opt);
    EXPECT_NEAR(raw.samples[10], stored[10], 1e-5);

    replay_source src(std::move(s), false);
    std::vector<float> out(300'000);
    std::size_t total = 0;
    for (int i = 0; i < 4; ++i) {
        auto r = src.generate(out);
        total += r.written;
        EXPECT_EQ(r.exhausted, i == 3);
    }
    EXPECT_EQ(total, 1'000'000u);
    std::remove(path.c_str());
}

TEST(replay, mat_files_that_are_not_what_they_claim) {
    replay_load_options opt;
    const std::string p = temp_path("bad.mat");

    opt.variable = "nope";
    write_mat_vector(p, "P", {1, 2, 3});
    EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("'nope': not found"), std::string::npos);

    opt.variable = "P";
    write_mat_vector(p, "P", {1, NAN, 3});
    EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("element 2"), std::string::npos);
    write_mat_vector(p, "P", {1, -2, 3});
    EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("negative"), std::string::npos);
    write_mat_vector(p, "P", {});
    EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("empty"), std::string::npos);

    {  // a character array
        mat_t* mat = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
        char text[] = "hello";
        size_t dims[2] = {1, 5};
        matvar_t* v = Mat_VarCreate("P", MAT_C_CHAR, MAT_T_UINT8, 2, dims, text, 0);
        Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
        Mat_VarFree(v);
        Mat_Close(mat);
        EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("not numeric"), std::string::npos);
        opt.variable.clear();
        EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("no real numeric vector"), std::string::npos);
        opt.variable = "P";
    }
    {  // a complex vector and a matrix
        mat_t* mat = Mat_CreateVer(p.c_str(), nullptr, MAT_FT_MAT5);
        double re[4] = {1, 2, 3, 4}, im[4] = {0, 0, 1, 1};
        mat_complex_split_t z{re, im};
        size_t dims[2] = {4, 1};
        matvar_t* v = Mat_VarCreate("P", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, &z, MAT_F_COMPLEX);
        Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
        Mat_VarFree(v);
        size_t dims2[2] = {2, 2};
        v = Mat_VarCreate("M", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims2, re, 0);
        Mat_VarWrite(mat, v, MAT_COMPRESSION_NONE);
        Mat_VarFree(v);
        Mat_Close(mat);
        EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("complex"), std::string::npos);
        opt.variable = "M";
        EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("not a vector"), std::string::npos);
        opt.variable = "P";
    }
    {  // not a MAT file at all
        std::ofstream(p) << "time,power\n0,1\n";
        EXPECT_NE(error_of([&] { load_power_mat(p, opt); }).find("not a MATLAB MAT file"), std::string::npos);
    }
    EXPECT_NE(error_of([&] { load_power_mat(p + ".missing", opt); }).find("cannot open"), std::string::npos);
    std::remove(p.c_str());
}

TEST(replay, csv_loader) {
    const std::string p = temp_path("power.csv");
    std::ofstream(p) << "# DLR-style power vector\ntime_s,power\n0.0000,2.0\n0.0001, 4.0\n\n0.0002,6.0\n";
    replay_load_options opt;
    opt.csv_column = 1;
    auto s = load_power_csv(p, opt);
    ASSERT_EQ(s.samples.size(), 3u);
    EXPECT_FLOAT_EQ(s.samples[0], 0.5f);
    EXPECT_FLOAT_EQ(s.samples[2], 1.5f);

    std::ofstream(p) << "time_s,power\n0,1\n0.1,abc\n";
    auto e = error_of([&] { load_power_csv(p, opt); });
    EXPECT_NE(e.find(":3 column 1: 'abc' is not a number"), std::string::npos) << e;
    std::ofstream(p) << "0,1\n0.1,nan\n";
    EXPECT_NE(error_of([&] { load_power_csv(p, opt); }).find("NaN"), std::string::npos);
    std::ofstream(p) << "0,1\n0.1\n";
    EXPECT_NE(error_of([&] { load_power_csv(p, opt); }).find("no column 1"), std::string::npos);
    std::ofstream(p) << "# nothing\n";
    EXPECT_NE(error_of([&] { load_power_csv(p, opt); }).find("no samples"), std::string::npos);
    std::ofstream(p) << "0,0\n1,0\n";
    EXPECT_NE(error_of([&] { load_power_csv(p, opt); }).find("mean power is zero"), std::string::npos);
    opt.sample_rate_hz = -1;
    EXPECT_THROW(load_power_csv(p, opt), std::invalid_argument);
    std::remove(p.c_str());

    replay_source loop({{1.0f, 2.0f, 3.0f}, 10.0}, true);
    std::vector<float> out(7);
    auto r = loop.generate(out);
    EXPECT_EQ(r.written, 7u);
    EXPECT_FALSE(r.exhausted);
    EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 1, 2, 3, 1}));
}

double log_poisson(unsigned k, double lambda) { return k * std::log(lambda) - lambda - std::lgamma(k + 1.0); }

TEST(photon_receiver, ook_counts_have_the_configured_means) {
    photon_receiver::config c;
    c.detector_efficiency = 0.6;
    c.dark_count_rate_hz = 1e6;
    c.slot_duration_s = 1e-8;             // 0.01 dark counts per slot
    c.background_photons_per_slot = 0.5;  // 0.3 detected
    c.seed = 51;
    photon_receiver rx(c);
    EXPECT_NEAR(rx.noise_mean(), 0.31, 1e-12);
    const std::size_t n = 400'000;
    std::vector<std::uint8_t> bits(n);
    for (std::size_t i = 0; i < n; ++i) bits[i] = (i * 2654435761u >> 7) & 1;
    std::vector<std::uint32_t> counts(n);
    std::vector<float> gain(n, 0.5f);
    auto r = rx.receive_ook(bits, 10.0, gain, counts);  // 10 photons * 0.6 * 0.5 = 3 detected
    ASSERT_TRUE(r.ok);
    double on = 0, off = 0, on_sq = 0;
    std::size_t n_on = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (bits[i]) {
            on += counts[i];
            on_sq += double(counts[i]) * counts[i];
            ++n_on;
        } else {
            off += counts[i];
        }
    }
    double m_on = on / n_on, m_off = off / (n - n_on);
    EXPECT_NEAR(m_on, 3.31, 0.02);    // 5 sigma of the mean is ~0.02
    EXPECT_NEAR(m_off, 0.31, 0.005);
    EXPECT_NEAR(on_sq / n_on - m_on * m_on, 3.31, 0.05);  // Poisson: variance = mean

    // LLRs: the formula against full Poisson likelihoods, and the sign convention (on = bit 1).
    const double ns = rx.signal_mean(10.0) * 0.5, nb = rx.noise_mean();
    std::vector<std::int8_t> llr(n);
    ASSERT_TRUE(ook_llr(counts, ns, nb, 4.0, llr).ok);
    for (unsigned k = 0; k < 12; ++k) {
        std::uint32_t kk = k;
        std::int8_t l;
        ook_llr({&kk, 1}, ns, nb, 4.0, {&l, 1});
        double oracle = 4.0 * (log_poisson(k, nb) - log_poisson(k, ns + nb));
        EXPECT_EQ(l, static_cast<std::int8_t>(std::lrint(std::clamp(oracle, -127.0, 127.0)))) << k;
    }
    std::size_t errors = 0;
    for (std::size_t i = 0; i < n; ++i) errors += (llr[i] < 0) != (bits[i] == 1);
    // MAP threshold: decide 1 when k >= ceil(ns / ln(1 + ns/nb)) = 2 (ties round toward 0 here).
    double p_err = 0.5 * (std::exp(-(ns + nb)) * (1 + ns + nb)) + 0.5 * (1 - std::exp(-nb) * (1 + nb));
    EXPECT_NEAR(double(errors) / n, p_err, 0.003);
}

TEST(photon_receiver, ppm_llr_matches_brute_force_posterior) {
    photon_receiver::config c;
    c.seed = 52;
    c.background_photons_per_slot = 0.2;
    photon_receiver rx(c);
    const unsigned m = 16;
    const std::size_t n = 2000;
    std::vector<std::uint16_t> sym(n);
    for (std::size_t i = 0; i < n; ++i) sym[i] = static_cast<std::uint16_t>((i * 7 + 3) % m);
    std::vector<std::uint32_t> counts(n * m);
    ASSERT_TRUE(rx.receive_ppm(sym, m, 10.0, {}, counts).ok);
    const double ns = rx.signal_mean(10.0), nb = rx.noise_mean();
    std::vector<std::int8_t> llr(n * 4);
    ASSERT_TRUE(ppm_llr(counts, m, ns, nb, 8.0, llr).ok);
    std::size_t bit_errors = 0;
    for (std::size_t s = 0; s < n; ++s) {
        // Oracle: full symbol likelihoods prod_j P(k_j | j is / is not the pulse slot).
        std::vector<double> ll(m);
        for (unsigned j = 0; j < m; ++j) {
            for (unsigned t = 0; t < m; ++t) ll[j] += log_poisson(counts[s * m + t], t == j ? ns + nb : nb);
        }
        for (unsigned b = 0; b < 4; ++b) {
            double s0 = 0, s1 = 0;
            for (unsigned j = 0; j < m; ++j) ((j >> (3 - b)) & 1 ? s1 : s0) += std::exp(ll[j] - ll[0]);
            double oracle = 8.0 * std::log(s0 / s1);
            EXPECT_NEAR(llr[s * 4 + b], std::clamp(oracle, -127.0, 127.0), 0.51);
            bit_errors += (llr[s * 4 + b] < 0) != (((sym[s] >> (3 - b)) & 1) == 1);
        }
    }
    // 5 detected signal photons: an empty pulse slot (e^-5) or a noise tie decides most errors.
    EXPECT_LT(double(bit_errors) / (n * 4), 0.02);
}

TEST(photon_receiver, bad_input_is_reported_not_crashed) {
    photon_receiver rx({});
    std::vector<std::uint8_t> bits(10);
    std::vector<std::uint32_t> counts(9);
    EXPECT_FALSE(rx.receive_ook(bits, 1.0, {}, counts).ok);
    counts.resize(10);
    EXPECT_FALSE(rx.receive_ook(bits, -1.0, {}, counts).ok);
    std::vector<float> g(10, NAN);
    EXPECT_FALSE(rx.receive_ook(bits, 1.0, g, counts).ok);
    std::vector<std::uint16_t> sym{0, 5};
    std::vector<std::uint32_t> pc(8);
    EXPECT_FALSE(rx.receive_ppm(sym, 4, 1.0, {}, pc).ok);   // symbol 5 >= order 4
    EXPECT_FALSE(rx.receive_ppm(sym, 3, 1.0, {}, pc).ok);   // not a power of two
    std::vector<std::int8_t> l(3);
    EXPECT_FALSE(ppm_llr(pc, 4, 1.0, 0.1, 1.0, l).ok);
    EXPECT_FALSE(ook_llr(counts, 1.0, 0.0, 1.0, std::span<std::int8_t>(l.data(), 3)).ok);
    photon_receiver::config c;
    c.detector_efficiency = 0.0;
    EXPECT_THROW(photon_receiver{c}, std::invalid_argument);
    c = {};
    c.dark_count_rate_hz = -5;
    EXPECT_THROW(photon_receiver{c}, std::invalid_argument);
}

}  // namespace
}  // namespace qlink::sim
