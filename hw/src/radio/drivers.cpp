// The radio driver table, and the UHD entry point of a build without UHD.
#include "qlink/hw/radio.hpp"

namespace qlink::hw {

#ifdef QLINK_HAVE_UHD
static constexpr bool have_uhd = true;
#else
static constexpr bool have_uhd = false;

std::unique_ptr<radio> create_uhd_radio(const uhd_radio_config&, radio_result& error) {
    error = {radio_errc::no_device, "this qlink was built without UHD (install libuhd-dev and rebuild "
                                    "with -DQLINK_ENABLE_UHD=ON)"};
    return nullptr;
}
#endif

std::span<const radio_driver> radio_drivers() {
    static const radio_driver table[] = {
        {"sim", true, "simulated radio: the sim/ RF channel (Doppler, phase noise, AWGN) in simulated time"},
        {"uhd", have_uhd, "Ettus USRP through UHD (device args as for uhd_usrp_probe)"},
    };
    return table;
}

}  // namespace qlink::hw
