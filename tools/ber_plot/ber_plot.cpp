// ldpc_ber_plot: simulates the CCSDS LDPC decoders over BPSK/AWGN and writes the BER/FER curves as an SVG.
//
// Each curve point runs seeded frames until `--min-errors` frame errors or
// `--max-frames` frames; the SVG shows our FER (solid) and BER (dashed) per
// code next to the reference FER points of tests/data/ldpc (read off the
// CCSDS 130.1-G-2 curves, approximate). A CSV of every point goes to stdout.
#include "qlink/modem/ldpc.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace qlink::modem;

struct curve_spec {
    ldpc_code_id id;
    std::vector<double> ebn0;
    const char* colour;
};

struct point {
    double ebn0 = 0;
    std::size_t frames = 0, frame_errors = 0, bit_errors = 0, bits = 0, false_success = 0;
    double iterations = 0;  // mean
    double fer() const { return frames ? static_cast<double>(frame_errors) / static_cast<double>(frames) : 0.0; }
    double ber() const { return bits ? static_cast<double>(bit_errors) / static_cast<double>(bits) : 0.0; }
};

struct options {
    std::string out = "docs/ldpc-ber.svg";
    std::string reference = "tests/data/ldpc/ccsds_fer_reference.csv";
    std::size_t min_errors = 50;
    std::size_t max_frames = 20000;
    unsigned iterations = 50;
    float amplitude = 16.0f;
    std::uint64_t seed = 1;
    std::string isa = "auto";
    bool quick = false;
};

// BPSK over AWGN, Eb/N0 per information bit: sigma^2 = 1 / (2 R Eb/N0); the
// int8 LLR is the received amplitude times `amplitude` (min-sum is scale free).
point simulate(ldpc_code_id id, double ebn0_db, const options& o, std::uint64_t seed) {
    ldpc_encoder enc(id);
    ldpc_decoder::config dc;
    dc.code = id;
    dc.max_iterations = o.iterations;
    dc.early_termination = true;
    dc.isa = o.isa;
    auto dec = create_ldpc_decoder(dc);
    const ldpc_code& code = enc.code();
    const double sigma = std::sqrt(1.0 / (2.0 * code.rate() * std::pow(10.0, ebn0_db / 10.0)));
    std::mt19937_64 rng(seed);
    std::normal_distribution<float> noise(0.0f, static_cast<float>(sigma));
    std::vector<std::uint8_t> info(code.k() / 8), cw(code.n() / 8), out(code.k() / 8);
    std::vector<llr_t> llr(code.n());
    point p;
    p.ebn0 = ebn0_db;
    std::uint64_t iters = 0;
    while (p.frames < o.max_frames && p.frame_errors < o.min_errors) {
        for (auto& b : info) b = static_cast<std::uint8_t>(rng());
        enc.encode(info, cw);
        for (std::size_t i = 0; i < code.n(); ++i) {
            const float x = ((cw[i >> 3] >> (7 - (i & 7))) & 1) ? -1.0f : 1.0f;
            llr[i] = quantize_llr((x + noise(rng)) * o.amplitude);
        }
        const auto r = dec->decode(llr, out);
        std::size_t errs = 0;
        for (std::size_t i = 0; i < out.size(); ++i) errs += static_cast<std::size_t>(__builtin_popcount(out[i] ^ info[i]));
        ++p.frames;
        p.bits += code.k();
        p.bit_errors += errs;
        iters += r.iterations;
        if (errs) ++p.frame_errors;
        if (errs && r.success) ++p.false_success;
    }
    p.iterations = static_cast<double>(iters) / static_cast<double>(p.frames);
    return p;
}

struct ref_point {
    double ebn0, fer;
};

// code name -> points; lines starting with '#' and the header are skipped.
std::map<std::string, std::vector<ref_point>> read_reference(const std::string& path) {
    std::map<std::string, std::vector<ref_point>> refs;
    std::ifstream in(path);
    if (!in) {
        std::cerr << "ldpc_ber_plot: cannot read reference " << path << " (plot without it)\n";
        return refs;
    }
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#' || line.rfind("code,", 0) == 0) continue;
        std::istringstream ls(line);
        std::string name, e, f;
        if (!std::getline(ls, name, ',') || !std::getline(ls, e, ',') || !std::getline(ls, f)) continue;
        char* end1 = nullptr;
        char* end2 = nullptr;
        const double eb = std::strtod(e.c_str(), &end1), fe = std::strtod(f.c_str(), &end2);
        if (end1 == e.c_str() || end2 == f.c_str() || !(fe > 0)) continue;
        refs[name].push_back({eb, fe});
    }
    return refs;
}

// ------------------------------------------------------------------ SVG

constexpr double width = 900, height = 620, left = 80, right = 250, top = 50, bottom = 70;
constexpr double x_min = 0.5, x_max = 5.0;
constexpr int decade_lo = -6, decade_hi = 0;

double px(double ebn0) { return left + (ebn0 - x_min) / (x_max - x_min) * (width - left - right); }
double py(double v) {
    const double lv = std::log10(std::max(v, std::pow(10.0, decade_lo)));
    return top + (decade_hi - lv) / (decade_hi - decade_lo) * (height - top - bottom);
}

std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.1f", v);
    return b;
}

void polyline(std::ostream& s, const std::vector<std::pair<double, double>>& pts, const char* colour, bool dashed) {
    if (pts.empty()) return;
    s << "<polyline fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\""
      << (dashed ? " stroke-dasharray=\"6,4\"" : "") << " points=\"";
    for (const auto& [x, y] : pts) s << fmt(px(x)) << ',' << fmt(py(y)) << ' ';
    s << "\"/>\n";
}

void write_svg(const std::string& path, const std::vector<curve_spec>& specs, const std::vector<std::vector<point>>& res,
               const std::map<std::string, std::vector<ref_point>>& refs, const options& o) {
    std::ostringstream s;
    s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"13\">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << left << "\" y=\"22\" font-size=\"16\">CCSDS LDPC over BPSK/AWGN: qlink int8 layered "
      << "min-sum vs CCSDS 130.1-G-2</text>\n"
      << "<text x=\"" << left << "\" y=\"40\">" << o.iterations << " iterations max with early termination, "
      << o.isa << " ISA; generated by ldpc_ber_plot (tools/ber_plot)</text>\n";
    // Grid and axes.
    for (int d = decade_lo; d <= decade_hi; ++d) {
        const double y = py(std::pow(10.0, d));
        s << "<line x1=\"" << left << "\" y1=\"" << fmt(y) << "\" x2=\"" << width - right << "\" y2=\"" << fmt(y)
          << "\" stroke=\"#ccc\"/>\n<text x=\"" << left - 8 << "\" y=\"" << fmt(y + 4)
          << "\" text-anchor=\"end\">1e" << d << "</text>\n";
    }
    for (double x = x_min; x <= x_max + 1e-9; x += 0.5) {
        s << "<line x1=\"" << fmt(px(x)) << "\" y1=\"" << top << "\" x2=\"" << fmt(px(x)) << "\" y2=\""
          << height - bottom << "\" stroke=\"#ccc\"/>\n<text x=\"" << fmt(px(x)) << "\" y=\"" << height - bottom + 18
          << "\" text-anchor=\"middle\">" << fmt(x) << "</text>\n";
    }
    s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << width - left - right << "\" height=\""
      << height - top - bottom << "\" fill=\"none\" stroke=\"black\"/>\n"
      << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 25
      << "\" text-anchor=\"middle\">Eb/N0 (dB, per information bit)</text>\n"
      << "<text transform=\"translate(22," << (top + height - bottom) / 2
      << ") rotate(-90)\" text-anchor=\"middle\">error rate</text>\n";
    double ly = top + 10;
    for (std::size_t c = 0; c < specs.size(); ++c) {
        const char* col = specs[c].colour;
        std::vector<std::pair<double, double>> fer, ber;
        for (const auto& p : res[c]) {
            if (p.frame_errors > 0) fer.emplace_back(p.ebn0, p.fer());
            if (p.bit_errors > 0) ber.emplace_back(p.ebn0, p.ber());
        }
        polyline(s, fer, col, false);
        polyline(s, ber, col, true);
        for (const auto& p : res[c]) {
            if (p.frame_errors == 0) continue;
            // Filled: >= min_errors frame errors; hollow: fewer (less certain).
            const bool solid = p.frame_errors >= o.min_errors;
            s << "<circle cx=\"" << fmt(px(p.ebn0)) << "\" cy=\"" << fmt(py(p.fer())) << "\" r=\"4\" stroke=\"" << col
              << "\" fill=\"" << (solid ? col : "white") << "\"/>\n";
        }
        const std::string name(to_string(specs[c].id));
        if (auto it = refs.find(name); it != refs.end())
            for (const auto& r : it->second) {
                const double x = px(r.ebn0), y = py(r.fer);
                s << "<path d=\"M" << fmt(x - 6) << ',' << fmt(y - 6) << " L" << fmt(x + 6) << ',' << fmt(y + 6) << " M"
                  << fmt(x - 6) << ',' << fmt(y + 6) << " L" << fmt(x + 6) << ',' << fmt(y - 6) << "\" stroke=\"" << col
                  << "\" stroke-width=\"2.5\"/>\n";
            }
        const double lx = width - right + 15;
        s << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 30 << "\" y2=\"" << ly << "\" stroke=\"" << col
          << "\" stroke-width=\"2\"/>\n<text x=\"" << lx + 36 << "\" y=\"" << ly + 4 << "\">" << name
          << " FER</text>\n";
        ly += 20;
    }
    const double lx = width - right + 15;
    s << "<line x1=\"" << lx << "\" y1=\"" << ly << "\" x2=\"" << lx + 30 << "\" y2=\"" << ly
      << "\" stroke=\"black\" stroke-width=\"2\" stroke-dasharray=\"6,4\"/>\n<text x=\"" << lx + 36 << "\" y=\""
      << ly + 4 << "\">dashed: BER</text>\n";
    ly += 20;
    s << "<text x=\"" << lx << "\" y=\"" << ly + 4 << "\">x: CCSDS 130.1-G-2 FER,</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 20 << "\">read off published curves</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 36 << "\">(approximate, +-0.1 dB)</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 60 << "\">hollow: fewer than " << o.min_errors << "</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 76 << "\">frame errors at that point</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 100 << "\">max " << o.max_frames << " frames/point,</text>\n"
      << "<text x=\"" << lx << "\" y=\"" << ly + 116 << "\">seed " << o.seed << ", int8 amplitude x"
      << fmt(o.amplitude) << "</text>\n"
      << "</svg>\n";
    std::ofstream f(path);
    f << s.str();
    if (!f) {
        std::cerr << "ldpc_ber_plot: cannot write " << path << "\n";
        std::exit(1);
    }
}

[[noreturn]] void usage(int code) {
    std::cerr << "usage: ldpc_ber_plot [--out FILE.svg] [--reference FILE.csv] [--min-errors N] [--max-frames N]\n"
                 "                     [--iterations N] [--amplitude A] [--seed S] [--isa auto|generic|avx2] [--quick]\n"
                 "Simulates CCSDS LDPC C2 and AR4JA r=1/2 k=1024/4096 over BPSK/AWGN, prints a CSV of every point\n"
                 "and writes the FER/BER curves with the reference points as an SVG.\n"
                 "--quick: 3 points per code, at most 200 frames each (a smoke run, not for the docs).\n";
    std::exit(code);
}

options parse(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) usage(2);
            return argv[++i];
        };
        auto number = [&](double lo, double hi) {
            const std::string v = value();
            char* end = nullptr;
            const double d = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end != '\0' || !(d >= lo && d <= hi)) {
                std::cerr << "ldpc_ber_plot: " << a << " wants a number in [" << lo << ", " << hi << "], got '" << v
                          << "'\n";
                std::exit(2);
            }
            return d;
        };
        if (a == "--out") o.out = value();
        else if (a == "--reference") o.reference = value();
        else if (a == "--min-errors") o.min_errors = static_cast<std::size_t>(number(1, 1e6));
        else if (a == "--max-frames") o.max_frames = static_cast<std::size_t>(number(1, 1e9));
        else if (a == "--iterations") o.iterations = static_cast<unsigned>(number(1, 1000));
        else if (a == "--amplitude") o.amplitude = static_cast<float>(number(0.5, 127));
        else if (a == "--seed") o.seed = static_cast<std::uint64_t>(number(0, 1e15));
        else if (a == "--isa") o.isa = value();
        else if (a == "--quick") o.quick = true;
        else if (a == "--help" || a == "-h") usage(0);
        else {
            std::cerr << "ldpc_ber_plot: unknown option " << a << "\n";
            usage(2);
        }
    }
    if (o.quick) o.max_frames = std::min<std::size_t>(o.max_frames, 200);
    return o;
}

}  // namespace

int main(int argc, char** argv) {
    const options o = parse(argc, argv);
    std::vector<curve_spec> specs = {
        {ldpc_code_id::ar4ja_r12_k1024, {1.0, 1.25, 1.5, 1.75, 2.0, 2.25}, "#1f77b4"},
        {ldpc_code_id::ar4ja_r12_k4096, {0.75, 1.0, 1.25, 1.5, 1.75}, "#2ca02c"},
        {ldpc_code_id::c2, {3.4, 3.6, 3.8, 4.0, 4.2}, "#d62728"},
    };
    if (o.quick)
        for (auto& c : specs) c.ebn0.resize(3);
    const auto refs = read_reference(o.reference);
    std::vector<std::vector<point>> res(specs.size());
    std::cout << "code,ebn0_db,frames,frame_errors,fer,bit_errors,ber,mean_iterations,false_success\n";
    try {
        for (std::size_t c = 0; c < specs.size(); ++c)
            for (std::size_t k = 0; k < specs[c].ebn0.size(); ++k) {
                const point p = simulate(specs[c].id, specs[c].ebn0[k], o, o.seed * 1000003 + c * 101 + k);
                res[c].push_back(p);
                std::cout << to_string(specs[c].id) << ',' << p.ebn0 << ',' << p.frames << ',' << p.frame_errors << ','
                          << p.fer() << ',' << p.bit_errors << ',' << p.ber() << ',' << p.iterations << ','
                          << p.false_success << std::endl;
            }
    } catch (const std::exception& e) {
        std::cerr << "ldpc_ber_plot: " << e.what() << "\n";
        return 2;
    }
    write_svg(o.out, specs, res, refs, o);
    std::cerr << "ldpc_ber_plot: wrote " << o.out << "\n";
    return 0;
}
