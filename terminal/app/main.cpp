// The `qlink` executable: forwards its arguments to qlink::terminal::cli::run.
#include "cli/cli.hpp"

#include <iostream>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
    std::vector<std::string_view> args(argv + 1, argv + argc);
    return qlink::terminal::cli::run(args, std::cout, std::cerr);
}
