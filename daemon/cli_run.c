/* `ollamax run MODEL [PROMPT...]`: a one-shot answer, or an interactive chat.
 *
 * With a prompt (from the arguments and/or a piped stdin, joined as Ollama
 * joins them) it streams one /api/chat answer to stdout and exits. Without a
 * prompt on a terminal it loads the model, then runs a REPL like `ollama
 * run`: ">>> " prompts, multi-line input between triple quotes, /bye,
 * /clear, /? help; the conversation is kept and sent with each turn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "daemon/cli.h"

typedef struct run_opts {
    const char *model;
    int verbose;
    const char *format;
    const char *keep_alive;
} run_opts_t;

typedef struct turn {
    ox_buf_t reply;
    json_t *final;
} turn_t;

static int on_chunk(json_t *o, void *ud)
{
    turn_t *t = ud;
    const char *s = json_string_value(json_object_get(json_object_get(o, "message"), "content"));
    if (s && *s) {
        fputs(s, stdout);
        fflush(stdout);
        ox_buf_puts(&t->reply, s);
    }
    if (json_is_true(json_object_get(o, "done"))) {
        json_decref(t->final);
        t->final = json_incref(o);
    }
    return 0;
}

static void print_stats(const json_t *f)
{
    if (!f)
        return;
    double total = (double)json_integer_value(json_object_get(f, "total_duration")) / 1e9;
    double load = (double)json_integer_value(json_object_get(f, "load_duration")) / 1e9;
    json_int_t pc = json_integer_value(json_object_get(f, "prompt_eval_count"));
    double pd = (double)json_integer_value(json_object_get(f, "prompt_eval_duration")) / 1e9;
    json_int_t ec = json_integer_value(json_object_get(f, "eval_count"));
    double ed = (double)json_integer_value(json_object_get(f, "eval_duration")) / 1e9;
    fprintf(stderr, "total duration:       %.6fs\n", total);
    fprintf(stderr, "load duration:        %.6fs\n", load);
    fprintf(stderr, "prompt eval count:    %lld token(s)\n", (long long)pc);
    fprintf(stderr, "prompt eval duration: %.6fs\n", pd);
    fprintf(stderr, "prompt eval rate:     %.2f tokens/s\n", pd > 0 ? (double)pc / pd : 0);
    fprintf(stderr, "eval count:           %lld token(s)\n", (long long)ec);
    fprintf(stderr, "eval duration:        %.6fs\n", ed);
    fprintf(stderr, "eval rate:            %.2f tokens/s\n", ed > 0 ? (double)ec / ed : 0);
}

static json_t *chat_body(const run_opts_t *o, json_t *messages)
{
    json_t *b = json_object();
    json_object_set_new(b, "model", json_string(o->model));
    json_object_set(b, "messages", messages);
    json_object_set_new(b, "stream", json_true());
    if (o->format)
        json_object_set_new(b, "format", json_string(o->format));
    if (o->keep_alive)
        json_object_set_new(b, "keep_alive", json_string(o->keep_alive));
    return b;
}

/* Sends messages; on success appends the reply as an assistant message. */
static int chat_turn(const run_opts_t *o, json_t *messages)
{
    turn_t t = {.reply = OX_BUF_INIT};
    json_t *b = chat_body(o, messages);
    int rc = cli_stream("/api/chat", b, on_chunk, &t);
    json_decref(b);
    if (rc == 0) {
        fputs("\n", stdout);
        fflush(stdout);
        json_array_append_new(messages, json_pack("{s:s,s:s%}", "role", "assistant", "content",
                                                  t.reply.data ? t.reply.data : "",
                                                  t.reply.len));
        if (o->verbose)
            print_stats(t.final);
    }
    json_decref(t.final);
    ox_buf_free(&t.reply);
    return rc;
}

static int one_shot(const run_opts_t *o, const char *prompt)
{
    json_t *msgs = json_array();
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
    int rc = chat_turn(o, msgs);
    json_decref(msgs);
    return rc;
}

static void help(void)
{
    printf("Available Commands:\n"
           "  /clear          Clear session context\n"
           "  /bye            Exit\n"
           "  /?, /help       Help for a command\n\n"
           "Use \"\"\" to begin a multi-line message.\n\n");
}

static int load_only(const run_opts_t *o)
{
    json_t *b = json_object();
    json_object_set_new(b, "model", json_string(o->model));
    json_object_set_new(b, "messages", json_array());
    if (o->keep_alive)
        json_object_set_new(b, "keep_alive", json_string(o->keep_alive));
    cli_resp_t r = {0};
    int rc = cli_request("POST", "/api/chat", b, &r);
    json_decref(b);
    if (rc != 0)
        return rc;
    if (r.status / 100 != 2) {
        char msg[1024];
        rc = cli_error("%s", cli_resp_error(&r, msg, sizeof msg));
    }
    ox_buf_free(&r.body);
    return rc;
}

/* Reads one user message (several lines between """), NULL at EOF. */
static char *read_message(void)
{
    char line[8192];
    ox_buf_t msg = OX_BUF_INIT;
    int multi = 0;
    printf(">>> ");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        if (!multi && strncmp(line, "\"\"\"", 3) == 0) {
            multi = 1;
            const char *rest = line + 3;
            size_t rl = strlen(rest);
            if (rl >= 3 && strcmp(rest + rl - 3, "\"\"\"") == 0) {
                ox_buf_append(&msg, rest, rl - 3);
                return ox_buf_steal(&msg);
            }
            ox_buf_puts(&msg, rest);
            printf("... ");
            fflush(stdout);
            continue;
        }
        if (multi) {
            if (n >= 3 && strcmp(line + n - 3, "\"\"\"") == 0) {
                if (msg.len)
                    ox_buf_puts(&msg, "\n");
                ox_buf_append(&msg, line, n - 3);
                return ox_buf_steal(&msg);
            }
            if (msg.len)
                ox_buf_puts(&msg, "\n");
            ox_buf_puts(&msg, line);
            printf("... ");
            fflush(stdout);
            continue;
        }
        ox_buf_puts(&msg, line);
        return ox_buf_steal(&msg);
    }
    ox_buf_free(&msg);
    return NULL;
}

static int repl(const run_opts_t *o)
{
    int rc = load_only(o);
    if (rc != 0)
        return rc;
    json_t *msgs = json_array();
    for (;;) {
        char *in = read_message();
        if (!in) {
            printf("\n");
            break;
        }
        char *p = in;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) {
            free(in);
            continue;
        }
        if (strcmp(p, "/bye") == 0) {
            free(in);
            break;
        }
        if (strcmp(p, "/clear") == 0) {
            json_array_clear(msgs);
            printf("Cleared session context\n");
        } else if (strcmp(p, "/?") == 0 || strcmp(p, "/help") == 0) {
            help();
        } else if (p[0] == '/' && strncmp(p, "/ ", 2) != 0 && !strchr(p, '\n')) {
            printf("Unknown command '%s'. Type /? for help\n", p);
        } else {
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", in));
            if (chat_turn(o, msgs) != 0)
                json_array_remove(msgs, json_array_size(msgs) - 1); /* drop the unanswered turn */
            else
                printf("\n");
        }
        free(in);
    }
    json_decref(msgs);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "Usage: ollamax run MODEL [PROMPT] [--verbose] [--format json] "
                    "[--keepalive DURATION]\n");
    return 2;
}

int cli_cmd_run(int argc, char **argv)
{
    run_opts_t o = {0};
    ox_buf_t prompt = OX_BUF_INIT;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--verbose") == 0) {
            o.verbose = 1;
        } else if (strcmp(a, "--format") == 0 && i + 1 < argc) {
            o.format = argv[++i];
        } else if (strcmp(a, "--keepalive") == 0 && i + 1 < argc) {
            o.keep_alive = argv[++i];
        } else if (strcmp(a, "--nowordwrap") == 0 || strcmp(a, "--insecure") == 0) {
            /* accepted for compatibility; output is never wrapped here */
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            ox_buf_free(&prompt);
            usage();
            return 0;
        } else if (!o.model) {
            o.model = a;
        } else {
            if (prompt.len)
                ox_buf_puts(&prompt, " ");
            ox_buf_puts(&prompt, a);
        }
    }
    if (!o.model) {
        ox_buf_free(&prompt);
        return usage();
    }
    int piped = !isatty(STDIN_FILENO);
    if (piped) {
        /* piped input comes first, then the prompt words (as Ollama does) */
        ox_buf_t in = OX_BUF_INIT;
        char buf[65536];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
            ox_buf_append(&in, buf, n);
        if (in.len && prompt.len)
            ox_buf_puts(&in, " ");
        ox_buf_append(&in, prompt.data ? prompt.data : "", prompt.len);
        ox_buf_free(&prompt);
        prompt = in;
    }
    int rc;
    if (prompt.len || piped)
        rc = one_shot(&o, prompt.data ? prompt.data : "");
    else
        rc = repl(&o);
    ox_buf_free(&prompt);
    return rc;
}
