/* The command line: `ollamax <command> [args]`.
 *
 * Every command except `serve` is a client of a running daemon over HTTP,
 * like the `ollama` CLI: the server address comes from OLLAMAX_HOST, else
 * OLLAMA_HOST, else 127.0.0.1:11434. Commands print their result on stdout
 * and errors as one line `Error: ...` on stderr, and return the process exit
 * status (0 on success).
 *
 * Adding a command: write `int cli_cmd_<name>(int argc, char **argv)` in
 * daemon/cli_<name>.c (argv[0] is the command name) and add one row to the
 * table in cli.c. `run` is wired already: its row calls cli_cmd_run, which
 * lives in daemon/cli_run.c. */
#ifndef OX_DAEMON_CLI_H
#define OX_DAEMON_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

/* Entry point used by main(). */
int cli_main(int argc, char **argv);

/* ---- commands (one file each) --------------------------------------------- */
int cli_cmd_serve(int argc, char **argv);   /* cli.c */
int cli_cmd_version(int argc, char **argv); /* cli.c */
int cli_cmd_pull(int argc, char **argv);    /* cli_pull.c */
int cli_cmd_create(int argc, char **argv);  /* cli_create.c */
int cli_cmd_list(int argc, char **argv);    /* cli_models.c */
int cli_cmd_show(int argc, char **argv);    /* cli_show.c */
int cli_cmd_rm(int argc, char **argv);      /* cli_models.c */
int cli_cmd_cp(int argc, char **argv);      /* cli_models.c */
int cli_cmd_verify(int argc, char **argv);  /* cli_models.c */
int cli_cmd_ps(int argc, char **argv);      /* cli_models.c */
int cli_cmd_run(int argc, char **argv);     /* cli_run.c */
int cli_cmd_bench(int argc, char **argv);   /* cli_bench.c */
int cli_cmd_swarm(int argc, char **argv);   /* cli_bench.c */

/* ---- talking to the daemon (cli_client.c) --------------------------------- */
/* Base URL of the daemon, "http://127.0.0.1:11434" (no trailing slash).
 * Static storage. */
const char *cli_base_url(void);
/* Prints "Error: <msg>" on stderr and returns 1 (the exit status). */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct cli_resp {
    long status;
    ox_buf_t body;   /* owned; release with ox_buf_free */
} cli_resp_t;

/* One blocking request. body may be NULL; json bodies get Content-Type
 * application/json. Returns 0 when a response arrived (any status; out is
 * filled and the caller frees out->body) or 1 after printing the error (the
 * daemon is not reachable, ...). */
int cli_request(const char *method, const char *path, const json_t *body, cli_resp_t *out);
/* The same without printing anything on failure. */
int cli_request_quiet(const char *method, const char *path, const json_t *body, cli_resp_t *out);
/* One request whose 2xx answer is a JSON object: *out gets it (caller
 * decrefs). Otherwise prints the error (the daemon's {"error"}, or that the
 * answer was not an object) and returns 1, the exit status. */
int cli_call_json(const char *method, const char *path, const json_t *body, json_t **out);
/* Error text of a non-2xx response: its {"error"} or the status line.
 * Writes into buf and returns it. */
const char *cli_resp_error(const cli_resp_t *r, char *buf, size_t cap);

/* Streams NDJSON from POST path with body: on_line gets each object
 * (borrowed); returning non-zero stops. A line with "error" ends the stream
 * with that message printed. Returns the exit status (0 ok). */
int cli_stream(const char *path, const json_t *body, int (*on_line)(json_t *obj, void *ud),
               void *ud);

/* ---- output helpers (cli_format.c) ---------------------------------------- */
/* Ollama's human sizes in powers of 1000: "274 MB", "2.0 GB", "512 B". */
void cli_human_bytes(uint64_t b, char *out, size_t cap);
/* "2 minutes ago", "About an hour ago", "Less than a second ago"; for
 * future times "4 minutes from now". */
void cli_human_time(int64_t then_ns, int64_t now_ns, char *out, size_t cap);
/* Parses an RFC 3339 timestamp to ns since the epoch; 0 on failure. */
int64_t cli_parse_time(const char *s);
/* Prints rows as a left-aligned table with 4 spaces between columns. cells
 * is rows*cols strings (row 0 the header). */
void cli_table(const char *const *cells, size_t rows, size_t cols);

/* Progress display for pull/create/blob upload: a bar redrawn in place on a
 * terminal, plain lines otherwise. */
typedef struct cli_progress {
    int tty;
    int line_open;          /* a bar is drawn on the current line */
    char status[256];       /* last status shown */
    uint64_t last_completed;
    int64_t rate_t0;        /* for the speed estimate */
    uint64_t rate_b0;
    double rate;            /* bytes/s, smoothed */
} cli_progress_t;

void cli_progress_init(cli_progress_t *p);
/* One status object from a pull/create stream ({status, digest, total,
 * completed}). */
void cli_progress_update(cli_progress_t *p, const json_t *obj);
/* A bar for label at completed/total. */
void cli_progress_bar(cli_progress_t *p, const char *label, uint64_t completed, uint64_t total);
/* Ends an open bar line. */
void cli_progress_end(cli_progress_t *p);

#endif
