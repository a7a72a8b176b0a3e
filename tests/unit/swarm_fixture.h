/* Fixtures shared by the swarm tests: nodes (a store and a swarm in a
 * temporary directory, bound to one loopback address) on one loop, their
 * orderly close, a loop runner with a deadline, and what a fetch reported.
 * Header-only: each test file owns its loop and its leak check. */
#ifndef OX_TEST_SWARM_FIXTURE_H
#define OX_TEST_SWARM_FIXTURE_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "cas/cas.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "swarm/swarm.h"

typedef struct node {
    char dir[128];
    char ip[32];
    cas_t *cas;
    swarm_t *sw;
    int closed;
} node_t;

/* Called in every swarm callback of the fixtures (a test checks the thread
 * there); may stay NULL. */
static void (*swx_hook)(void);

/* Opens n at ip: fast timers (updates every 100 ms, resume data every
 * 300 ms); tune (may be NULL) adjusts the config before the swarm starts. */
__attribute__((unused)) static void swx_node_open(uv_loop_t *loop, node_t *n, const char *ip,
                                                  void (*tune)(swarm_config_t *cfg, void *ud),
                                                  void *ud)
{
    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "/tmp/test_swarm_XXXXXX");
    assert_non_null(mkdtemp(n->dir));
    snprintf(n->ip, sizeof n->ip, "%s", ip);
    char models[256], state[256], err[256] = "";
    snprintf(models, sizeof models, "%s/models", n->dir);
    snprintf(state, sizeof state, "%s/state", n->dir);
    assert_int_equal(ox_fs_mkdir_p(models, 0755), 0);
    assert_int_equal(ox_fs_mkdir_p(state, 0755), 0);
    if (cas_open(models, state, &n->cas, err, sizeof err))
        fail_msg("cas_open: %s", err);
    swarm_config_t cfg;
    swarm_config_init(&cfg);
    snprintf(cfg.bind_ip, sizeof cfg.bind_ip, "%s", ip);
    cfg.update_ms = 100;
    cfg.resume_ms = 300;
    if (tune)
        tune(&cfg, ud);
    if (swarm_new(loop, n->cas, &cfg, &n->sw, err, sizeof err))
        fail_msg("swarm_new: %s", err);
}

static int swx_rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void swx_on_closed(swarm_t *s, void *ud)
{
    (void)s;
    if (swx_hook)
        swx_hook();
    ((node_t *)ud)->closed = 1;
}

/* Closes every node's swarm, runs the loop dry, closes the stores and
 * removes the directories. */
__attribute__((unused)) static void nodes_close(uv_loop_t *loop, node_t *nodes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (nodes[i].sw)
            swarm_close(nodes[i].sw, swx_on_closed, &nodes[i]);
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    for (size_t i = 0; i < n; i++) {
        if (nodes[i].sw)
            assert_true(nodes[i].closed);
        nodes[i].sw = NULL;
        cas_close(nodes[i].cas);
        nftw(nodes[i].dir, swx_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    }
}

/* Runs the loop until pred(ud) or the timeout; returns pred's last value. */
__attribute__((unused)) static int run_until(uv_loop_t *loop, int (*pred)(void *), void *ud,
                                             int timeout_s)
{
    int64_t end = ox_time_mono_ns() + (int64_t)timeout_s * 1000000000;
    while (!pred(ud) && ox_time_mono_ns() < end)
        uv_run(loop, UV_RUN_ONCE); /* the swarm's timer ticks every 100 ms */
    return pred(ud);
}

/* n bytes of a xorshift stream (malloc'd; the caller frees). */
__attribute__((unused)) static uint8_t *random_bytes(size_t n, unsigned seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        p[i] = (uint8_t)(x >> 24);
    }
    return p;
}

/* What a fetch reported: progress (first, last, going backwards) and its end. */
typedef struct fetch_ctx {
    int done;
    int status;
    char msg[256];
    uint64_t first_done, last_done, total;
    int progress_calls;
    int progress_backwards;
} fetch_ctx_t;

__attribute__((unused)) static void on_progress(swarm_fetch_t *f, uint64_t done, uint64_t total, void *ud)
{
    (void)f;
    if (swx_hook)
        swx_hook();
    fetch_ctx_t *c = ud;
    if (!c->progress_calls)
        c->first_done = done;
    if (done < c->last_done)
        c->progress_backwards++;
    c->progress_calls++;
    c->last_done = done;
    c->total = total;
}

__attribute__((unused)) static void on_done(swarm_fetch_t *f, int status, const char *msg, void *ud)
{
    (void)f;
    if (swx_hook)
        swx_hook();
    fetch_ctx_t *c = ud;
    c->done++;
    c->status = status;
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "");
}

__attribute__((unused)) static int fetch_done(void *ud)
{
    return ((fetch_ctx_t *)ud)->done > 0;
}

#endif
