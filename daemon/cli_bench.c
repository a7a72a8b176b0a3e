/* `ollamax bench ...` and `ollamax swarm status`: the benchmarks run in this
 * process (they start their own daemons); swarm status asks the daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "daemon/cli.h"

int cli_cmd_bench(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*main)(int argc, char **argv);
    } benches[] = {
        {"ingest", bench_ingest_main},
        {"transfer", bench_transfer_main},
        {"infer", bench_infer_main},
    };
    if (argc >= 2) {
        for (size_t i = 0; i < sizeof benches / sizeof benches[0]; i++)
            if (strcmp(argv[1], benches[i].name) == 0)
                return benches[i].main(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: ollamax bench ingest|transfer|infer [options]\n"
                    "  ingest   [--size 1G] [--rounds 2]\n"
                    "  transfer [--peers N] [--size 128M] [--link 100mbit]\n"
                    "  infer    MODEL|--synthetic q8_0|q4_0|q4_k_m [--threads N] [--prompt N] "
                    "[--gen N]\n");
    return 2;
}

int cli_cmd_swarm(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "status") != 0)
        return cli_error("usage: ollamax swarm status");
    json_t *st;
    if (cli_call_json("GET", "/api/swarm/status", NULL, &st) != 0)
        return 1;
    char *text = json_dumps(st, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", text ? text : "{}");
    free(text);
    json_decref(st);
    return 0;
}
