// Correlated intensity fading: AR(1) Gaussians through the log-normal or gamma quantile map, calibrated correlation.
#include "qlink/sim/fading.hpp"

#include <boost/math/special_functions/gamma.hpp>
#include <cmath>
#include <numbers>
#include <vector>

#include "check.hpp"
#include "gauss.hpp"
#include "qlink/sim/channel_rng.hpp"

namespace qlink::sim {

gauss_markov::gauss_markov(double correlation_time_s, double sample_rate_hz) {
    a_ = std::exp(-1.0 / (correlation_time_s * sample_rate_hz));
    b_ = std::sqrt(1.0 - a_ * a_);
}

namespace {

const double inv_e = std::exp(-1.0);

/// Gaussian correlation rho_g that gives the target normalised autocovariance of the
/// mapped process; corr_of(rho) must be increasing with corr_of(0) = 0, corr_of(1) = 1.
template <class F>
double solve_gauss_correlation(F corr_of, double target) {
    double lo = 0.0, hi = 1.0;
    for (int i = 0; i < 60; ++i) {
        double mid = 0.5 * (lo + hi);
        (corr_of(mid) < target ? lo : hi) = mid;
    }
    return 0.5 * (lo + hi);
}

/// x -> Gamma(shape, 1/shape) quantile of Phi(x), tabulated on [-x_max, x_max] and
/// interpolated linearly: an inverse incomplete gamma per sample would cost ~1 us.
class gamma_map {
public:
    static constexpr double x_max = 7.0;
    static constexpr int nodes = 8193;

    explicit gamma_map(double shape) : table_(nodes) {
        dx_ = 2.0 * x_max / (nodes - 1);
        inv_dx_ = 1.0 / dx_;
        for (int i = 0; i < nodes; ++i) {
            double x = -x_max + i * dx_;
            double v;
            if (x <= 0.0) {
                double p = 0.5 * std::erfc(-x / std::numbers::sqrt2);
                v = boost::math::gamma_p_inv(shape, p);
            } else {
                double q = 0.5 * std::erfc(x / std::numbers::sqrt2);
                v = boost::math::gamma_q_inv(shape, q);
            }
            table_[i] = v / shape;
        }
        // Correct the tiny mean error of the truncated, interpolated table so E[T(X)] = 1,
        // then take the Hermite coefficients a_n = E[T(X) h_n(X)] (h_n orthonormal): by
        // Mehler's formula E[T(X1) T(X2)] = sum a_n^2 rho^n for Gaussians with correlation rho.
        double m = moment(false);
        for (auto& t : table_) t /= m;
        std::vector<double> h_prev(nodes, 1.0), h(nodes), h_next(nodes);
        for (int i = 0; i < nodes; ++i) h[i] = -x_max + i * dx_;
        coef_.push_back(1.0);
        auto proj = [&](const std::vector<double>& hv) {
            double s = 0.0;
            for (int i = 0; i < nodes; ++i) s += simpson_weight(i) * table_[i] * hv[i] * phi(-x_max + i * dx_);
            return s * dx_ / 3.0;
        };
        coef_.push_back(proj(h));
        for (int n = 1; n < 80; ++n) {
            for (int i = 0; i < nodes; ++i) {
                double x = -x_max + i * dx_;
                h_next[i] = (x * h[i] - std::sqrt(double(n)) * h_prev[i]) / std::sqrt(double(n + 1));
            }
            std::swap(h_prev, h);
            std::swap(h, h_next);
            coef_.push_back(proj(h));
        }
        second_ = moment(true);
    }

    double operator()(double x) const {
        double u = (x + x_max) * inv_dx_;
        if (u <= 0.0) return table_.front();
        if (u >= nodes - 1) return table_.back();
        int i = static_cast<int>(u);
        double f = u - i;
        return table_[i] + f * (table_[i + 1] - table_[i]);
    }

    double second_moment() const { return second_; }

    /// E[T(X1) T(X2)] for standard Gaussians with correlation rho.
    double cross_moment(double rho) const {
        double s = 0.0, r = 1.0;
        for (double a : coef_) {
            s += a * a * r;
            r *= rho;
        }
        return s;
    }

private:
    static double phi(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }
    static double simpson_weight(int i) { return (i == 0 || i == nodes - 1) ? 1.0 : ((i & 1) ? 4.0 : 2.0); }
    double moment(bool squared) const {
        double s = 0.0;
        for (int i = 0; i < nodes; ++i) {
            double t = squared ? table_[i] * table_[i] : table_[i];
            s += simpson_weight(i) * t * phi(-x_max + i * dx_);
        }
        return s * dx_ / 3.0;
    }

    std::vector<double> table_;
    std::vector<double> coef_;
    double dx_ = 0.0;
    double inv_dx_ = 0.0;
    double second_ = 1.0;
};

class lognormal_fading final : public fading_process {
public:
    explicit lognormal_fading(const config& cfg) : cfg_(cfg), rng_(cfg.seed) {
        s2_ = std::log1p(cfg.scintillation_index);
        s_ = std::sqrt(s2_);
        // Normalised autocovariance of exp(s X) is (e^{s^2 rho} - 1) / (e^{s^2} - 1); set it to 1/e.
        double rho = std::log1p(std::expm1(s2_) * inv_e) / s2_;
        ar_ = gauss_markov(-cfg.coherence_time_s / std::log(rho), cfg.sample_rate_hz);
        x_ = normal_(rng_);
    }

    gain_result generate(std::span<float> out) override {
        const double a = ar_.coefficient(), b = ar_.innovation_scale(), off = -0.5 * s2_;
        double x = x_;
        for (auto& o : out) {
            x = a * x + b * normal_(rng_);
            o = static_cast<float>(std::exp(s_ * x + off));
        }
        x_ = x;
        return {out.size(), false};
    }
    double sample_rate_hz() const override { return cfg_.sample_rate_hz; }
    double scintillation_index() const override { return cfg_.scintillation_index; }

private:
    config cfg_;
    channel_rng rng_;
    detail::ziggurat_normal normal_;
    gauss_markov ar_;
    double s2_ = 0.0, s_ = 0.0, x_ = 0.0;
};

class gamma_gamma_fading final : public fading_process {
public:
    gamma_gamma_fading(const config& cfg, double alpha, double beta)
        : cfg_(cfg), rng_(cfg.seed), map_a_(alpha), map_b_(beta) {
        const double ea = map_a_.second_moment(), eb = map_b_.second_moment();
        si_ = ea * eb - 1.0;
        auto corr = [&](double rho) { return (map_a_.cross_moment(rho) * map_b_.cross_moment(rho) - 1.0) / si_; };
        double rho = solve_gauss_correlation(corr, inv_e);
        ar_ = gauss_markov(-cfg.coherence_time_s / std::log(rho), cfg.sample_rate_hz);
        x_ = normal_(rng_);
        y_ = normal_(rng_);
    }

    gain_result generate(std::span<float> out) override {
        const double a = ar_.coefficient(), b = ar_.innovation_scale();
        double x = x_, y = y_;
        for (auto& o : out) {
            x = a * x + b * normal_(rng_);
            y = a * y + b * normal_(rng_);
            o = static_cast<float>(map_a_(x) * map_b_(y));
        }
        x_ = x;
        y_ = y;
        return {out.size(), false};
    }
    double sample_rate_hz() const override { return cfg_.sample_rate_hz; }
    double scintillation_index() const override { return si_; }

private:
    config cfg_;
    channel_rng rng_;
    detail::ziggurat_normal normal_;
    gamma_map map_a_, map_b_;
    gauss_markov ar_;
    double si_ = 0.0, x_ = 0.0, y_ = 0.0;
};

}  // namespace

std::unique_ptr<fading_process> create_fading_process(const fading_process::config& cfg) {
    using detail::check_range;
    check_range("sample_rate_hz", cfg.sample_rate_hz, 0.0, 1e12, true, false);
    check_range("coherence_time_s", cfg.coherence_time_s, 1.0 / cfg.sample_rate_hz, 1e6);
    if (cfg.marginal == fading_marginal::lognormal) {
        check_range("scintillation_index", cfg.scintillation_index, 0.0, 20.0, true, false);
        return std::make_unique<lognormal_fading>(cfg);
    }
    double alpha = cfg.gg_alpha, beta = cfg.gg_beta;
    if (alpha == 0.0 && beta == 0.0) {
        // alpha = beta: sigma_I^2 = 2/alpha + 1/alpha^2.
        check_range("scintillation_index", cfg.scintillation_index, 1e-4, 20.0);
        alpha = beta = 1.0 / (std::sqrt(1.0 + cfg.scintillation_index) - 1.0);
    }
    check_range("gg_alpha", alpha, 0.2, 1e4);
    check_range("gg_beta", beta, 0.2, 1e4);
    return std::make_unique<gamma_gamma_fading>(cfg, alpha, beta);
}

}  // namespace qlink::sim
