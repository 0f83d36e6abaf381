// RF baseband channel: liquid-dsp NCO for Doppler + phase noise, seeded AWGN and log-normal shadowing.
#include "qlink/sim/rf_channel.hpp"

#include <complex>
// liquid.h maps its complex type onto std::complex when <complex> comes first.
#include <liquid/liquid.h>

#include <cmath>
#include <numbers>

#include "../optical/check.hpp"
#include "../optical/gauss.hpp"
#include "qlink/sim/channel_rng.hpp"
#include "qlink/sim/fading.hpp"

namespace qlink::sim {

namespace {

class rf_channel_impl final : public rf_channel {
public:
    explicit rf_channel_impl(const config& cfg) : cfg_(cfg), rng_(cfg.seed), nco_(nco_crcf_create(LIQUID_VCO)) {
        if (!nco_) throw std::runtime_error("rf_channel: liquid-dsp nco_crcf_create failed");
        set_es_n0_db(cfg.es_n0_db);
        f0_ = cfg.frequency_offset_hz;
        fdot_ = cfg.frequency_rate_hz_s;
        pn_sigma_ = std::sqrt(2.0 * std::numbers::pi * cfg.phase_noise_linewidth_hz / cfg.sample_rate_hz);
        if (cfg.shadowing_sigma_db > 0.0) {
            shadow_ar_ = gauss_markov(cfg.shadowing_correlation_s, cfg.sample_rate_hz);
            shadow_x_ = normal_(rng_);
        }
        mean_gain_ = std::pow(10.0, -cfg.rain_attenuation_db / 20.0);
    }
    ~rf_channel_impl() override { nco_crcf_destroy(nco_); }
    rf_channel_impl(const rf_channel_impl&) = delete;
    rf_channel_impl& operator=(const rf_channel_impl&) = delete;

    rf_result process(std::span<const std::complex<float>> in, std::span<std::complex<float>> out) override {
        if (in.size() != out.size()) return {0, false, "rf_channel::process: in and out differ in size"};
        const double dt = 1.0 / cfg_.sample_rate_hz;
        const double w_per_hz = 2.0 * std::numbers::pi * dt;
        const bool shadow = cfg_.shadowing_sigma_db > 0.0;
        const double shadow_k = cfg_.shadowing_sigma_db * std::numbers::ln10 / 20.0;
        const float noise_sd = static_cast<float>(std::sqrt(noise_var_ / 2.0));
        for (std::size_t i = 0; i < in.size(); ++i) {
            // Frequency at the middle of the sample step so a linear chirp accumulates exactly.
            const double f = f0_ + fdot_ * (t_ + 0.5 * dt);
            nco_crcf_set_frequency(nco_, static_cast<float>(w_per_hz * f));
            std::complex<float> y;
            nco_crcf_mix_up(nco_, in[i], &y);
            double g = mean_gain_;
            if (shadow) {
                shadow_x_ = shadow_ar_.step(shadow_x_, normal_(rng_));
                g *= std::exp(shadow_k * shadow_x_);
            }
            y *= static_cast<float>(g);
            if (cfg_.add_noise) y += std::complex<float>(noise_sd * static_cast<float>(normal_(rng_)), noise_sd * static_cast<float>(normal_(rng_)));
            out[i] = y;
            nco_crcf_step(nco_);
            if (pn_sigma_ > 0.0) nco_crcf_adjust_phase(nco_, static_cast<float>(pn_sigma_ * normal_(rng_)));
            t_ += dt;
        }
        return {in.size(), true, ""};
    }

    void set_doppler(double offset_hz, double rate_hz_s) override {
        // Re-anchor the profile at the current time; the NCO keeps its phase, so no jump.
        f0_ = offset_hz - rate_hz_s * t_;
        fdot_ = rate_hz_s;
    }
    void set_es_n0_db(double es_n0_db) override {
        detail::check_range("es_n0_db", es_n0_db, -30.0, 100.0);
        noise_var_ = cfg_.signal_power * cfg_.samples_per_symbol / std::pow(10.0, es_n0_db / 10.0);
    }
    double frequency_offset_hz() const override { return f0_ + fdot_ * t_; }
    double elapsed_s() const override { return t_; }
    double noise_variance() const override { return cfg_.add_noise ? noise_var_ : 0.0; }

private:
    config cfg_;
    channel_rng rng_;
    detail::ziggurat_normal normal_;
    nco_crcf nco_;
    double f0_ = 0.0, fdot_ = 0.0, t_ = 0.0;
    double noise_var_ = 0.0, pn_sigma_ = 0.0, mean_gain_ = 1.0;
    gauss_markov shadow_ar_;
    double shadow_x_ = 0.0;
};

}  // namespace

std::unique_ptr<rf_channel> create_rf_channel(const rf_channel::config& cfg) {
    using detail::check_range;
    check_range("sample_rate_hz", cfg.sample_rate_hz, 0.0, 1e12, true, false);
    check_range("es_n0_db", cfg.es_n0_db, -30.0, 100.0);
    check_range("samples_per_symbol", cfg.samples_per_symbol, 1.0, 1e6);
    check_range("signal_power", cfg.signal_power, 0.0, 1e12, true, false);
    check_range("frequency_offset_hz", cfg.frequency_offset_hz, -cfg.sample_rate_hz / 2, cfg.sample_rate_hz / 2, true, true);
    check_range("frequency_rate_hz_s", cfg.frequency_rate_hz_s, -1e12, 1e12);
    check_range("phase_noise_linewidth_hz", cfg.phase_noise_linewidth_hz, 0.0, cfg.sample_rate_hz);
    check_range("rain_attenuation_db", cfg.rain_attenuation_db, 0.0, 200.0);
    check_range("shadowing_sigma_db", cfg.shadowing_sigma_db, 0.0, 50.0);
    check_range("shadowing_correlation_s", cfg.shadowing_correlation_s, 0.0, 1e9, true, false);
    return std::make_unique<rf_channel_impl>(cfg);
}

}  // namespace qlink::sim
