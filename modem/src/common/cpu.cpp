// CPUID/XGETBV probing for run-time kernel dispatch.
#include "qlink/modem/cpu.hpp"

#include <cstdlib>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace qlink::modem {
namespace {

#if defined(__x86_64__) || defined(__i386__)
unsigned long long read_xcr0() {
    unsigned eax = 0, edx = 0;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

cpu_features detect() {
    cpu_features f;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
    const bool osxsave = (c >> 27) & 1;
    f.sse41 = (c >> 19) & 1;
    f.pclmul = (c >> 1) & 1;
    const bool fma = (c >> 12) & 1;
    const bool avx = (c >> 28) & 1;
    const unsigned long long xcr0 = osxsave ? read_xcr0() : 0;
    const bool ymm_os = (xcr0 & 0x6) == 0x6;
    const bool zmm_os = (xcr0 & 0xe6) == 0xe6;
    unsigned max_leaf = __get_cpuid_max(0, nullptr);
    if (max_leaf >= 7) {
        __cpuid_count(7, 0, a, b, c, d);
        const bool avx2 = (b >> 5) & 1;
        const bool bmi2 = (b >> 8) & 1;
        const bool avx512f = (b >> 16) & 1;
        const bool avx512dq = (b >> 17) & 1;
        const bool avx512bw = (b >> 30) & 1;
        const bool avx512vl = (b >> 31) & 1;
        f.avx2 = avx && avx2 && fma && bmi2 && ymm_os;
        f.avx512 = f.avx2 && avx512f && avx512dq && avx512bw && avx512vl && zmm_os;
        f.gfni = ((c >> 8) & 1) && f.sse41;
        f.vpclmul = ((c >> 10) & 1) && f.avx2 && f.pclmul;
    }
    return f;
}
#else
cpu_features detect() { return {}; }
#endif

isa detect_best(const cpu_features& f) {
    isa best = isa::generic;
    if (f.sse41) best = isa::sse41;
    if (f.avx2) best = isa::avx2;
    if (f.avx512) best = isa::avx512;
    if (const char* cap = std::getenv("QLINK_ISA")) {
        if (auto level = parse_isa(cap); level && *level < best) best = *level;
    }
    return best;
}

}  // namespace

const cpu_features& host_cpu() {
    static const cpu_features features = detect();
    return features;
}

bool isa_supported(isa level) {
    const cpu_features& f = host_cpu();
    switch (level) {
    case isa::generic: return true;
    case isa::sse41: return f.sse41;
    case isa::avx2: return f.avx2;
    case isa::avx512: return f.avx512;
    }
    return false;
}

isa best_isa() {
    static const isa best = detect_best(host_cpu());
    return best;
}

std::vector<isa> supported_isas() {
    std::vector<isa> out;
    for (isa level : {isa::generic, isa::sse41, isa::avx2, isa::avx512})
        if (isa_supported(level)) out.push_back(level);
    return out;
}

std::string_view to_string(isa level) {
    switch (level) {
    case isa::generic: return "generic";
    case isa::sse41: return "sse41";
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    }
    return "?";
}

std::optional<isa> parse_isa(std::string_view name) {
    if (name == "auto") return best_isa();
    for (isa level : {isa::generic, isa::sse41, isa::avx2, isa::avx512})
        if (name == to_string(level)) return level;
    return std::nullopt;
}

}  // namespace qlink::modem
