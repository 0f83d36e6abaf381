// Fast standard-normal sampler (Marsaglia-Tsang ziggurat, 128 layers) over any 64-bit engine.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace qlink::sim::detail {

/// std::normal_distribution costs ~30 ns a draw (polar method, two uniforms, a log and a
/// sqrt); the ziggurat needs one 64-bit word and a compare ~98.8 % of the time. The tables
/// are immutable constants built once.
class ziggurat_normal {
public:
    template <class Engine>
    double operator()(Engine& rng) const {
        const auto& t = tables();
        for (;;) {
            const std::uint64_t u = rng();
            const unsigned i = u & 127u;
            const double sign = (u & 128u) ? -1.0 : 1.0;
            const double v = static_cast<double>(u >> 11) * 0x1.0p-53;  // [0, 1), independent of i and sign
            const double x = v * t.x[i];
            if (x < t.x[i + 1]) return sign * x;  // inside the rectangle under the curve
            if (i == 0) return sign * tail(rng);
            // Wedge: accept under the density between the layer's bottom and top.
            const double y = t.f[i] + uniform(rng) * (t.f[i + 1] - t.f[i]);
            if (y < std::exp(-0.5 * x * x)) return sign * x;
        }
    }

private:
    static constexpr int layers = 128;
    static constexpr double r = 3.442619855899;          // start of the tail
    static constexpr double area = 9.91256303526217e-3;  // area of each layer

    struct table_set {
        std::array<double, layers + 1> x{};  // x[0] = pseudo-width of the base strip, x[1] = r, x[128] = 0
        std::array<double, layers + 1> f{};  // f = exp(-x^2/2)
    };

    static const table_set& tables() {
        static const table_set t = [] {
            table_set s;
            s.x[0] = area / std::exp(-0.5 * r * r);
            s.x[1] = r;
            for (int i = 1; i < layers; ++i) {
                double fi = std::exp(-0.5 * s.x[i] * s.x[i]) + area / s.x[i];
                s.x[i + 1] = fi >= 1.0 ? 0.0 : std::sqrt(-2.0 * std::log(fi));
            }
            s.x[layers] = 0.0;
            for (int i = 0; i <= layers; ++i) s.f[i] = std::exp(-0.5 * s.x[i] * s.x[i]);
            s.f[0] = std::exp(-0.5 * r * r);
            return s;
        }();
        return t;
    }

    template <class Engine>
    static double uniform(Engine& rng) {
        return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53;  // (0, 1)
    }

    template <class Engine>
    static double tail(Engine& rng) {
        // Marsaglia (1964): x = r - ln(U1)/r accepted when -2 ln U2 > (x - r)^2.
        for (;;) {
            double x = -std::log(uniform(rng)) / r;
            double y = -std::log(uniform(rng));
            if (y + y > x * x) return r + x;
        }
    }
};

}  // namespace qlink::sim::detail
