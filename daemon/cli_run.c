/* `ollamax run`: placeholder until its author lands the real command here
 * (this file belongs to them; replace it whole). */
#include "daemon/cli.h"

int cli_cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return cli_error("run is not available in this build yet");
}
