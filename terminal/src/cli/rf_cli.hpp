// `qlink rf-rx` and `qlink rf-tx`: the station's RF chains on a radio, simulated or a USRP.
#pragma once

#include <iosfwd>
#include <span>
#include <string_view>

namespace qlink::terminal::cli {

int cmd_rf_rx(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);
int cmd_rf_tx(std::span<const std::string_view> args, std::ostream& out, std::ostream& err);

}  // namespace qlink::terminal::cli
