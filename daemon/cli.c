/* The command table and the commands that need no daemon. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/curlfn.h"
#include "daemon/cli.h"
#include "daemon/serve.h"

typedef struct cli_cmd {
    const char *name;
    const char *alias;   /* may be NULL */
    const char *usage;
    const char *help;
    int (*run)(int argc, char **argv);
} cli_cmd_t;

static int cmd_help(int argc, char **argv);

/* The dispatch point: one row per command. */
static const cli_cmd_t commands[] = {
    {"serve", "start", "serve", "Start ollamax", cli_cmd_serve},
    {"create", NULL, "create MODEL [-f Modelfile]", "Create a model from a Modelfile",
     cli_cmd_create},
    {"show", NULL, "show MODEL [--modelfile|--template|--system|--parameters|--license|-v]",
     "Show information for a model", cli_cmd_show},
    {"run", NULL, "run MODEL [PROMPT]", "Run a model", cli_cmd_run},
    {"pull", NULL, "pull MODEL [--insecure]", "Pull a model from a registry", cli_cmd_pull},
    {"list", "ls", "list", "List models", cli_cmd_list},
    {"ps", NULL, "ps", "List running models", cli_cmd_ps},
    {"cp", NULL, "cp SOURCE DESTINATION", "Copy a model", cli_cmd_cp},
    {"rm", NULL, "rm MODEL [MODEL...]", "Remove a model", cli_cmd_rm},
    {"verify", NULL, "verify [MODEL]", "Re-hash a model's blobs (or every blob); remove bad ones",
     cli_cmd_verify},
    {"swarm", NULL, "swarm status", "Show the swarm's torrents, peers and rates", cli_cmd_swarm},
    {"bench", NULL, "bench ingest|transfer|infer [options]", "Run a benchmark", cli_cmd_bench},
    {"help", NULL, "help [COMMAND]", "Help about any command", cmd_help},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const cli_cmd_t *find_cmd(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0 ||
            (commands[i].alias && strcmp(commands[i].alias, name) == 0))
            return &commands[i];
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "Large language model runner, many machines as one\n\n"
               "Usage:\n  ollamax [flags]\n  ollamax [command]\n\nAvailable Commands:\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\nFlags:\n  -h, --help      help for ollamax\n"
               "  -v, --version   Show version information\n\n"
               "Use \"ollamax [command] --help\" for more information about a command.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 1) {
        const cli_cmd_t *c = find_cmd(argv[1]);
        if (!c)
            return cli_error("unknown command \"%s\" for \"ollamax\"", argv[1]);
        printf("%s\n\nUsage:\n  ollamax %s\n", c->help, c->usage);
        return 0;
    }
    usage(stdout);
    return 0;
}

int cli_cmd_serve(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_error("serve takes no arguments (configure it with OLLAMAX_HOST, "
                         "OLLAMAX_MODELS, ...)");
    /* libtorrent's session loads OpenSSL's default CA file (~140
     * certificates: ~1 MB of heap and libcrypto pages, kept for the daemon's
     * life) into a TLS context used only for HTTPS trackers and web seeds,
     * which the swarm never uses. Pointing SSL_CERT_FILE at an empty file
     * keeps that store empty. Nothing else in the daemon reads OpenSSL's
     * default paths: libcurl (registry pulls) verifies with its own
     * compiled-in CA bundle and directory and ignores SSL_CERT_FILE, so a
     * value set in the environment had no use here either and is replaced.
     * Done before any thread exists, so setenv is safe. */
    setenv("SSL_CERT_FILE", "/dev/null", 1);
    return node_serve();
}

int cli_cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("ollamax version is %s\n", OX_VERSION);
    cli_resp_t r;
    /* an unreachable server is not an error for --version */
    if (cli_request_quiet("GET", "/api/version", NULL, &r) == 0) {
        json_t *o = r.status == 200 ? json_loads(r.body.data ? r.body.data : "", 0, NULL) : NULL;
        const char *v = json_string_value(json_object_get(o, "version"));
        if (v)
            printf("server version is %s\n", v);
        json_decref(o);
        ox_buf_free(&r.body);
    } else {
        fprintf(stderr, "Warning: could not connect to an ollamax server at %s\n",
                cli_base_url());
    }
    return 0;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stdout);
        return 0;
    }
    const char *a = argv[1];
    if (strcmp(a, "--version") == 0 || strcmp(a, "-v") == 0 || strcmp(a, "version") == 0)
        return cli_cmd_version(argc - 1, argv + 1);
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
        return cmd_help(1, argv + 1);
    const cli_cmd_t *c = find_cmd(a);
    if (!c) {
        fprintf(stderr, "Error: unknown command \"%s\" for \"ollamax\"\n", a);
        usage(stderr);
        return 1;
    }
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("%s\n\nUsage:\n  ollamax %s\n", c->help, c->usage);
            return 0;
        }
    /* libcurl is loaded by the first HTTP call, not here: `serve` must not
     * map it until a pull needs it */
    int rc = c->run(argc - 1, argv + 1);
    ox_curl_cleanup();
    return rc;
}
