/* ollamax: one binary, daemon (`ollamax serve`) and command line. */
#include "daemon/cli.h"

int main(int argc, char **argv) { return cli_main(argc, argv); }
