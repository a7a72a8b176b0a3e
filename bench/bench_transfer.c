/* `ollamax bench transfer`: one origin and N receivers, each its own daemon
 * on its own address, pull the same random blob through the swarm, then
 * through plain HTTP from the origin only, in one run, side by side.
 *
 * With --link RATE every daemon lives in its own network namespace, joined
 * by a veth pair to one bridge namespace, and both ends of every veth are
 * shaped with `tc tbf` (upload and download capped). The bench itself talks
 * to the daemons through one more, unshaped, veth into the bridge. Without
 * root it says so and runs unshaped on loopback (127.0.0.10+i).
 *
 * Everything it creates (processes, namespaces, veths, temp dirs) is removed
 * at the end, also after Ctrl-C. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/timeutil.h"

#define MAX_PEERS 32

typedef struct topo {
    int shaped;
    int n;                        /* daemons: 0 = origin, 1..n-1 receivers */
    int subnet;                   /* third octet of 10.77.x.0/24 */
    char rate[32];
    char ns[MAX_PEERS + 1][32];
    char ip[MAX_PEERS + 1][32];
    char br[32];
    char ctl[32];                 /* root-side control veth */
    int made;                     /* namespaces created so far */
    int pid;                      /* in every name, so runs do not collide */
} topo_t;

typedef struct run {
    topo_t t;
    bench_daemon_t d[MAX_PEERS + 1];
    char dir[256];
    char digest[72];
    uint64_t size;
    char model[128];
} run_t;

static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[1100];
    snprintf(full, sizeof full, "%s >/dev/null 2>&1", cmd);
    int rc = system(full);
    return rc == 0 ? 0 : OX_EIO;
}

static void topo_destroy(topo_t *t)
{
    if (!t->shaped)
        return;
    sh("ip link del %s", t->ctl);
    /* a veth whose set-up failed before it moved into a namespace is still
     * here (deleting one end removes the pair; one that moved is gone) */
    for (int i = 0; i < t->made; i++)
        sh("ip link del oxv%dh%d", t->pid, i);
    sh("ip link del oxv%dk", t->pid);
    for (int i = 0; i < t->made; i++)
        sh("ip netns del %s", t->ns[i]);
    sh("ip netns del %s", t->br);
}

static int topo_create(topo_t *t)
{
    int pid = (int)getpid();
    if (!t->shaped) {
        for (int i = 0; i < t->n; i++)
            snprintf(t->ip[i], sizeof t->ip[i], "127.0.0.%d", 10 + i);
        return 0;
    }
    t->pid = pid;
    t->subnet = 20 + pid % 200;
    snprintf(t->br, sizeof t->br, "oxb%dbr", pid);
    snprintf(t->ctl, sizeof t->ctl, "oxv%dc", pid);
    if (sh("ip netns add %s", t->br) || sh("ip -n %s link add br0 type bridge", t->br) ||
        sh("ip -n %s link set br0 up", t->br))
        return OX_EIO;
    for (int i = 0; i < t->n; i++) {
        char vh[32], vb[32];
        snprintf(t->ns[i], sizeof t->ns[i], "oxb%dh%d", pid, i);
        snprintf(t->ip[i], sizeof t->ip[i], "10.77.%d.%d", t->subnet, 10 + i);
        snprintf(vh, sizeof vh, "oxv%dh%d", pid, i);
        snprintf(vb, sizeof vb, "oxv%db%d", pid, i);
        if (sh("ip netns add %s", t->ns[i]))
            return OX_EIO;
        t->made = i + 1;
        if (sh("ip link add %s type veth peer name %s", vh, vb) ||
            sh("ip link set %s netns %s", vh, t->ns[i]) || sh("ip link set %s netns %s", vb, t->br) ||
            sh("ip -n %s addr add %s/24 dev %s", t->ns[i], t->ip[i], vh) ||
            sh("ip -n %s link set %s up", t->ns[i], vh) || sh("ip -n %s link set lo up", t->ns[i]) ||
            sh("ip -n %s link set %s master br0", t->br, vb) ||
            sh("ip -n %s link set %s up", t->br, vb) ||
            sh("ip netns exec %s tc qdisc add dev %s root tbf rate %s burst 64kb latency 50ms",
               t->ns[i], vh, t->rate) ||
            sh("ip netns exec %s tc qdisc add dev %s root tbf rate %s burst 64kb latency 50ms",
               t->br, vb, t->rate))
            return OX_EIO;
    }
    char cb[32];
    snprintf(cb, sizeof cb, "oxv%dk", pid);
    if (sh("ip link add %s type veth peer name %s", t->ctl, cb) ||
        sh("ip link set %s netns %s", cb, t->br) || sh("ip -n %s link set %s master br0", t->br, cb) ||
        sh("ip -n %s link set %s up", t->br, cb) ||
        sh("ip addr add 10.77.%d.1/24 dev %s", t->subnet, t->ctl) || sh("ip link set %s up", t->ctl))
        return OX_EIO;
    return 0;
}

/* A GGUF holding one I8 tensor of random bytes: a real model file as far as
 * create and pull are concerned, of exactly `size` bytes. */
static int write_blob_gguf(const char *path, uint64_t size)
{
    static const char key[] = "general.architecture", val[] = "bench", tname[] = "data";
    uint8_t head[256];
    size_t o = 0;
#define PUT(p, n) (memcpy(head + o, (p), (n)), o += (n))
    uint32_t u32;
    uint64_t u64;
    PUT("GGUF", 4);
    u32 = 3, PUT(&u32, 4);
    u64 = 1, PUT(&u64, 8);
    u64 = 1, PUT(&u64, 8);
    u64 = sizeof key - 1, PUT(&u64, 8), PUT(key, sizeof key - 1);
    u32 = 8, PUT(&u32, 4);
    u64 = sizeof val - 1, PUT(&u64, 8), PUT(val, sizeof val - 1);
    u64 = sizeof tname - 1, PUT(&u64, 8), PUT(tname, sizeof tname - 1);
    u32 = 1, PUT(&u32, 4);
    size_t ne_at = o;
    u64 = 0, PUT(&u64, 8);
    u32 = 24, PUT(&u32, 4); /* I8 */
    u64 = 0, PUT(&u64, 8);
#undef PUT
    size_t data_at = (o + 31) & ~(size_t)31;
    if (size <= data_at + 32)
        return OX_EINVAL;
    u64 = size - data_at;
    memcpy(head + ne_at, &u64, 8);
    memset(head + o, 0, data_at - o);
    if (bench_write_random_file(path, size, 7) != 0)
        return OX_EIO;
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return OX_EIO;
    int rc = pwrite(fd, head, data_at, 0) == (ssize_t)data_at ? 0 : OX_EIO;
    close(fd);
    return rc;
}

static int api_json_get(bench_daemon_t *d, const char *path, json_t **out)
{
    int status = 0;
    char *body = NULL;
    int rc = bench_http(d->ip, d->port, "GET", path, NULL, &status, &body);
    if (rc || status != 200) {
        free(body);
        return rc ? rc : OX_ENET;
    }
    *out = json_loads(body, 0, NULL);
    free(body);
    return *out ? 0 : OX_EFORMAT;
}

static double origin_bytes_up(bench_daemon_t *d)
{
    json_t *st = NULL;
    if (api_json_get(d, "/api/swarm/status", &st) != 0)
        return 0;
    /* what the engine sent and blob bytes served over HTTP (rescues) */
    double v = json_number_value(json_object_get(st, "bytes_up")) +
               json_number_value(json_object_get(st, "http_bytes_up"));
    json_decref(st);
    return v;
}

/* The engine's transfer counters trail the wire by up to a status period:
 * read them until two reads a status period apart agree (at most 5 s). */
static double origin_bytes_settled(bench_daemon_t *d)
{
    double v = origin_bytes_up(d);
    for (int i = 0; i < 10; i++) {
        usleep(500000);
        double w = origin_bytes_up(d);
        if (w == v)
            break;
        v = w;
    }
    return v;
}

typedef struct puller {
    run_t *r;
    int idx;
    int64_t t0;
    double secs;
    volatile int done;
    int status;
    char err[256];
} puller_t;

static void *pull_thread(void *arg)
{
    puller_t *p = arg;
    bench_daemon_t *d = &p->r->d[p->idx];
    char body[512];
    snprintf(body, sizeof body, "{\"model\":\"%s\",\"insecure\":true,\"stream\":false}", p->r->model);
    char *resp = NULL;
    int rc = bench_http(d->ip, d->port, "POST", "/api/pull", body, &p->status, &resp);
    p->secs = (double)(ox_time_mono_ns() - p->t0) / 1e9;
    if (rc || p->status != 200)
        snprintf(p->err, sizeof p->err, "%s", resp ? resp : ox_strerror(rc));
    free(resp);
    p->done = 1;
    return NULL;
}

/* CPU seconds of the origin (from = 0, to = 1) or of the receivers (1, n) */
static double cpu_of(run_t *r, int from, int to)
{
    double s = 0;
    for (int i = from; i < to; i++)
        s += bench_cpu_seconds(r->d[i].pid);
    return s;
}

/* Starts receivers 1..n-1 with fresh homes; swarm=0 disables the swarm path
 * of their pulls (plain HTTP from the origin). */
static int start_receivers(run_t *r, int swarm, int round)
{
    static char peers_env[8192];
    int off = snprintf(peers_env, sizeof peers_env, "OLLAMAX_PEERS=");
    for (int i = 0; i < r->t.n; i++)
        off += snprintf(peers_env + off, sizeof peers_env - (size_t)off, "%s%s:%d", i ? "," : "",
                        r->t.ip[i], r->d[i].port);
    const char *env_swarm[] = {peers_env, NULL};
    const char *env_http[] = {"OLLAMAX_PULL_SWARM=0", NULL};
    for (int i = 1; i < r->t.n; i++) {
        char home[512];
        snprintf(home, sizeof home, "%s/r%d-%d", r->dir, i, round);
        bench_daemon_t *d = &r->d[i];
        int port = d->port;
        memset(d, 0, sizeof *d);
        d->port = port;
        if (r->t.shaped)
            snprintf(d->netns, sizeof d->netns, "%s", r->t.ns[i]);
        if (bench_daemon_start(d, r->t.ip[i], home, swarm ? env_swarm : env_http) != 0) {
            fprintf(stderr, "Error: receiver %d did not start (see %s/daemon.log)\n", i, home);
            return OX_EIO;
        }
    }
    return 0;
}

static void stop_receivers(run_t *r)
{
    for (int i = 1; i < r->t.n; i++)
        bench_daemon_stop(&r->d[i]);
}

typedef struct phase {
    double times[MAX_PEERS];
    double last, cpu, origin_cpu, sent;
} phase_t;

static int run_phase(run_t *r, phase_t *ph)
{
    int nrecv = r->t.n - 1;
    puller_t p[MAX_PEERS];
    pthread_t th[MAX_PEERS];
    double up0 = origin_bytes_up(&r->d[0]);
    double cpu0 = cpu_of(r, 1, r->t.n), ocpu0 = cpu_of(r, 0, 1);
    int64_t t0 = ox_time_mono_ns();
    for (int i = 0; i < nrecv; i++) {
        p[i] = (puller_t){.r = r, .idx = i + 1, .t0 = t0};
        pthread_create(&th[i], NULL, pull_thread, &p[i]);
    }
    /* Wait, but let Ctrl-C stop the daemons so blocked pulls return. */
    for (;;) {
        int all = 1;
        for (int i = 0; i < nrecv; i++)
            all &= p[i].done;
        if (all)
            break;
        if (interrupted) {
            for (int i = 0; i < r->t.n; i++)
                bench_daemon_stop(&r->d[i]);
            break;
        }
        usleep(20000);
    }
    int failed = interrupted;
    for (int i = 0; i < nrecv; i++) {
        pthread_join(th[i], NULL);
        ph->times[i] = p[i].secs;
        if (ph->times[i] > ph->last)
            ph->last = ph->times[i];
        if (p[i].status != 200) {
            fprintf(stderr, "Error: receiver %d pull failed (HTTP %d): %s\n", i + 1, p[i].status,
                    p[i].err);
            failed = 1;
        }
    }
    ph->origin_cpu = cpu_of(r, 0, 1) - ocpu0;
    ph->cpu = cpu_of(r, 1, r->t.n) - cpu0 + ph->origin_cpu;
    ph->sent = origin_bytes_settled(&r->d[0]) - up0;
    /* every receiver must really hold the blob */
    for (int i = 1; i < r->t.n && !failed; i++) {
        char path[128];
        int st = 0;
        snprintf(path, sizeof path, "/api/blobs/%s", r->digest);
        if (bench_http(r->d[i].ip, r->d[i].port, "HEAD", path, NULL, &st, NULL) != 0 || st != 200) {
            fprintf(stderr, "Error: receiver %d does not hold the blob\n", i);
            failed = 1;
        }
    }
    return failed ? OX_EIO : 0;
}

static double rate_bytes(const char *rate)
{
    char *end;
    double v = strtod(rate, &end);
    if (strncasecmp(end, "gbit", 4) == 0)
        return v * 1e9 / 8;
    if (strncasecmp(end, "mbit", 4) == 0)
        return v * 1e6 / 8;
    if (strncasecmp(end, "kbit", 4) == 0)
        return v * 1e3 / 8;
    return 0;
}

static void print_phase(const char *name, const phase_t *ph, int nrecv, uint64_t size)
{
    printf("%-6s", name);
    for (int i = 0; i < nrecv; i++)
        printf(" %6.2f", ph->times[i]);
    printf("\n");
    double gb = (double)size * nrecv / 1e9;
    printf("       last %.2f s, aggregate %.1f MB/s, origin sent %.1f MB (%.2f copies), %.2f CPU s/GB"
           " (origin %.2f s, receivers %.2f s)\n",
           ph->last, (double)size * nrecv / 1e6 / ph->last, ph->sent / 1e6, ph->sent / (double)size,
           ph->cpu / gb, ph->origin_cpu, ph->cpu - ph->origin_cpu);
}

static void json_phase(json_t *o, const char *key, const phase_t *ph, int nrecv, uint64_t size)
{
    json_t *times = json_array();
    for (int i = 0; i < nrecv; i++)
        json_array_append_new(times, json_real(ph->times[i]));
    json_object_set_new(o, key,
                        json_pack("{s:o,s:f,s:f,s:f,s:f,s:f,s:f}", "times_s", times, "last_s",
                                  ph->last, "aggregate_mbps", (double)size * nrecv / 1e6 / ph->last,
                                  "origin_sent_bytes", ph->sent, "origin_copies",
                                  ph->sent / (double)size, "cpu_s_per_gb",
                                  ph->cpu / ((double)size * nrecv / 1e9), "origin_cpu_s",
                                  ph->origin_cpu));
}

int bench_transfer_main(int argc, char **argv)
{
    run_t *r = calloc(1, sizeof *r);
    if (!r)
        return 1;
    int peers = 2;
    r->size = 128ull << 20;
    const char *link = NULL;
    int skip_http = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--peers") == 0 && i + 1 < argc) {
            peers = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (bench_parse_size(argv[++i], &r->size) != 0)
                peers = -1;
        } else if (strcmp(argv[i], "--link") == 0 && i + 1 < argc) {
            link = argv[++i];
        } else if (strcmp(argv[i], "--no-http") == 0) {
            skip_http = 1; /* swarm phase only: quicker tuning runs */
        } else {
            peers = -1;
        }
    }
    if (peers < 1 || peers > MAX_PEERS || (link && rate_bytes(link) <= 0)) {
        fprintf(stderr, "usage: ollamax bench transfer [--peers N (1-%d)] [--size 128M] "
                        "[--link RATE (e.g. 100mbit)] [--no-http]\n", MAX_PEERS);
        free(r);
        return 2;
    }
    r->t.n = peers + 1;
    if (link) {
        if (geteuid() != 0) {
            fprintf(stderr, "bench: --link needs root (network namespaces and tc); "
                            "running unshaped on loopback instead\n");
            link = NULL;
        } else {
            r->t.shaped = 1;
            snprintf(r->t.rate, sizeof r->t.rate, "%s", link);
        }
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int ret = 1;
    phase_t sw = {0}, ht = {0};
    snprintf(r->dir, sizeof r->dir, "/tmp/oxbench-transfer-XXXXXX");
    if (!mkdtemp(r->dir)) {
        perror("mkdtemp");
        free(r);
        return 1;
    }
    if (topo_create(&r->t) != 0) {
        fprintf(stderr, "Error: cannot build the network namespaces\n");
        goto out;
    }
    char path[300], home[300];
    snprintf(path, sizeof path, "%s/blob.gguf", r->dir);
    snprintf(home, sizeof home, "%s/origin", r->dir);
    if (write_blob_gguf(path, r->size) != 0) {
        fprintf(stderr, "Error: cannot write %s\n", path);
        goto out;
    }
    uint8_t raw[32];
    snprintf(r->digest, sizeof r->digest, "sha256:");
    ox_sha256_file(path, raw, NULL);
    ox_hex_encode(raw, 32, r->digest + 7);
    /* Ports are fixed before any daemon starts so each receiver can be told
     * every peer's address (OLLAMAX_PEERS). */
    for (int i = 0; i < r->t.n; i++)
        r->d[i].port = r->t.shaped ? 11434 : bench_free_port(r->t.ip[i]);
    if (r->t.shaped)
        snprintf(r->d[0].netns, sizeof r->d[0].netns, "%s", r->t.ns[0]);
    if (bench_daemon_start(&r->d[0], r->t.ip[0], home, NULL) != 0) {
        fprintf(stderr, "Error: the origin did not start (see %s/daemon.log)\n", home);
        goto out;
    }
    int st = 0;
    if (bench_post_file(r->d[0].ip, r->d[0].port, path, r->digest, r->size, &st) != 0 ||
        (st != 201 && st != 200)) {
        fprintf(stderr, "Error: upload to the origin failed (HTTP %d)\n", st);
        goto out;
    }
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"bench\",\"files\":{\"blob.gguf\":\"%s\"},\"stream\":false}", r->digest);
    if (bench_http(r->d[0].ip, r->d[0].port, "POST", "/api/create", body, &st, NULL) != 0 ||
        st != 200) {
        fprintf(stderr, "Error: create on the origin failed (HTTP %d)\n", st);
        goto out;
    }
    snprintf(r->model, sizeof r->model, "%s:%d/library/bench:latest", r->d[0].ip, r->d[0].port);
    unlink(path);
    /* Phase 1: swarm. */
    if (interrupted || start_receivers(r, 1, 1) != 0 || interrupted)
        goto out;
    if (run_phase(r, &sw) != 0)
        goto out;
    stop_receivers(r);
    /* Phase 2: plain HTTP from the origin only. */
    if (!skip_http && (interrupted || start_receivers(r, 0, 2) != 0 || interrupted))
        goto out;
    if (!skip_http && run_phase(r, &ht) != 0)
        goto out;

    double lb = link ? (double)r->size / rate_bytes(link) : 0;
    printf("transfer: %d receiver(s), %.1f MB blob, %s\n", peers, (double)r->size / 1e6,
           link ? link : "loopback (unshaped)");
    printf("%-6s", "peer");
    for (int i = 0; i < peers; i++)
        printf(" %5d ", i + 1);
    printf("  (completion, s)\n");
    print_phase("swarm", &sw, peers, r->size);
    if (!skip_http)
        print_phase("http", &ht, peers, r->size);
    if (link)
        printf("lower bound %.2f s; swarm/lower bound %.2fx (target <= 1.3x); "
               "http/swarm %.2fx (target >= 6x)\n", lb, sw.last / lb, ht.last / sw.last);
    else
        printf("http/swarm %.2fx; swarm aggregate %.1f MB/s\n", ht.last / sw.last,
               (double)r->size * peers / 1e6 / sw.last);
    json_t *j = json_pack("{s:s,s:i,s:I,s:s?}", "bench", "transfer", "peers", peers, "size",
                          (json_int_t)r->size, "link", link);
    json_phase(j, "swarm", &sw, peers, r->size);
    if (!skip_http)
        json_phase(j, "http", &ht, peers, r->size);
    json_object_set_new(j, "lower_bound_s", link ? json_real(lb) : json_null());
    json_object_set_new(j, "swarm_over_lower_bound", link ? json_real(sw.last / lb) : json_null());
    json_object_set_new(j, "http_over_swarm", skip_http ? json_null() : json_real(ht.last / sw.last));
    char *text = json_dumps(j, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(j);
    ret = 0;
out:
    if (interrupted)
        fprintf(stderr, "bench: interrupted, cleaning up\n");
    for (int i = 0; i < r->t.n; i++)
        bench_daemon_stop(&r->d[i]);
    topo_destroy(&r->t);
    if (getenv("OX_BENCH_KEEP")) /* daemon logs for a post-mortem */
        fprintf(stderr, "bench: kept %s\n", r->dir);
    else
        bench_rm_rf(r->dir);
    free(r);
    return ret;
}
