// Test helper: a path in the source tree (QLINK_SOURCE_DIR, which ctest sets; "." when run by hand from the root).
#pragma once

#include <cstdlib>
#include <string>

namespace qlink::test {

inline std::string source_path(const std::string& rel)
{
    const char* dir = std::getenv("QLINK_SOURCE_DIR");
    return std::string(dir ? dir : ".") + "/" + rel;
}

/// The bundled sample TLE (sim/data/qlinksat-1.tle), whose first pass over Delft the demo flies.
inline std::string sample_tle_path() { return source_path("sim/data/qlinksat-1.tle"); }

}  // namespace qlink::test
