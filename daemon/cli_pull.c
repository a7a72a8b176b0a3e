/* `ollamax pull NAME [--insecure]`. */
#include <stdio.h>
#include <string.h>

#include "daemon/cli.h"

static int on_pull_line(json_t *obj, void *ud)
{
    cli_progress_update(ud, obj);
    return 0;
}

int cli_cmd_pull(int argc, char **argv)
{
    const char *name = NULL;
    int insecure = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--insecure") == 0)
            insecure = 1;
        else if (argv[i][0] == '-')
            return cli_error("unknown flag: %s", argv[i]);
        else if (!name)
            name = argv[i];
        else
            return cli_error("accepts 1 arg, received %d", argc - 1 - insecure);
    }
    if (!name)
        return cli_error("accepts 1 arg, received 0");
    json_t *body = json_pack("{s:s,s:b,s:b}", "model", name, "insecure", insecure, "stream", 1);
    cli_progress_t p;
    cli_progress_init(&p);
    int rc = cli_stream("/api/pull", body, on_pull_line, &p);
    cli_progress_end(&p);
    json_decref(body);
    return rc;
}
