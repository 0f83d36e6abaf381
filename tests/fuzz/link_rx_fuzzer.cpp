// libFuzzer driver for the receive path (clang only: -fsanitize=fuzzer,address).
#include "link_rx_target.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    return qlink::fuzz::link_rx_one_input(data, size);
}
