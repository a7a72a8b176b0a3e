/* `ollamax serve`: one node in the foreground until SIGINT/SIGTERM. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "common/err.h"
#include "common/log.h"
#include "daemon/serve.h"

typedef struct serve {
    node_t node;
    uv_signal_t sigint, sigterm;
    int stopping;
} serve_t;

static void on_stopped(void *ud)
{
    serve_t *s = ud;
    OX_INFO("ollamax stopped");
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    serve_t *s = h->data;
    if (s->stopping)
        return;
    s->stopping = 1;
    OX_INFO("received %s, shutting down", signum == SIGINT ? "SIGINT" : "SIGTERM");
    node_stop(&s->node, on_stopped, s);
}

int node_serve(void)
{
    serve_t s;
    memset(&s, 0, sizeof s);
    char err[1024] = "";
    if (node_config_load(&s.node.cfg, err, sizeof err) != 0) {
        OX_ERROR("config: %s", err);
        return 1;
    }
    /* The work pool runs store work, uploads and sendfile transfers of
     * served blobs; libuv's default of 4 threads lets a few slow downloads
     * stall every other request. Read once, at the first queued work. */
    setenv("UV_THREADPOOL_SIZE", "32", 0);
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0) {
        OX_ERROR("cannot create the event loop");
        return 1;
    }
    s.node.loop = &loop;
    if (node_start(&s.node, err, sizeof err) != 0) {
        OX_ERROR("%s", err);
        uv_run(&loop, UV_RUN_DEFAULT); /* let closed handles finish */
        uv_loop_close(&loop);
        return 1;
    }
    uv_signal_init(&loop, &s.sigint);
    uv_signal_init(&loop, &s.sigterm);
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    signal(SIGPIPE, SIG_IGN);

    const char *h = s.node.cfg.host;
    OX_INFO(strchr(h, ':') ? "Listening on [%s]:%d (version %s)" : "Listening on %s:%d (version %s)",
            h, api_port(&s.node), OX_VERSION);
    uv_run(&loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&loop);
    if (rc != 0) {
        OX_ERROR("event loop closed with handles left open: %s", uv_strerror(rc));
        return 1;
    }
    return 0;
}
