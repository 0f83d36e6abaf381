// Console reporter that also prints, per benchmark family, our throughput over the peer's ("/libfec", "/boost").
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

namespace qlink::bench {

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& r : runs) {
            if (r.run_type != Run::RT_Iteration || r.error_occurred) continue;
            const auto it = r.counters.find("bits/s");
            if (it != r.counters.end()) rates_[r.benchmark_name()] = it->second.value;
        }
    }
    void Finalize() override {
        ConsoleReporter::Finalize();
        // Names look like "family/impl/args"; compare every impl with the peer of the same family/args.
        for (const auto& [name, rate] : rates_) {
            for (const char* peer : {"/libfec", "/boost"}) {
                const auto p = name.find(peer);
                if (p == std::string::npos) continue;
                const std::string family = name.substr(0, p), rest = name.substr(p + std::string(peer).size());
                for (const auto& [other, orate] : rates_) {
                    if (other == name || other.rfind(family + "/", 0) != 0) continue;
                    if (other.size() < rest.size() || other.compare(other.size() - rest.size(), rest.size(), rest) != 0) continue;
                    std::printf("ratio %-45s %8.2f Gbit/s = %6.1fx %s (%.3f Gbit/s)\n", other.c_str(), orate / 1e9,
                                orate / rate, peer + 1, rate / 1e9);
                }
            }
        }
    }

private:
    std::map<std::string, double> rates_;
};

inline int run_with_ratios(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    ratio_reporter rep;
    benchmark::RunSpecifiedBenchmarks(&rep);
    benchmark::Shutdown();
    return 0;
}

}  // namespace qlink::bench
