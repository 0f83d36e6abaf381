// qlinkd: the link daemon's entry point (everything else is in terminal/src/daemon).
#include "qlink/terminal/qlinkd.hpp"

int main(int argc, char** argv) { return qlink::terminal::qlinkd_main(argc, argv); }
