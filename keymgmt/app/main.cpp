// qkmd executable: thin main over qlink::keymgmt::qkmd_main.
#include "qlink/keymgmt/daemon.hpp"

int main(int argc, char** argv) { return qlink::keymgmt::qkmd_main(argc, argv); }
