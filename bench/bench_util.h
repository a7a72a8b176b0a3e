/* Helpers shared by the benchmarks: daemons started as child processes,
 * sockets, sizes, random files, resident memory. Internal to bench/. */
#ifndef OX_BENCH_UTIL_H
#define OX_BENCH_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct bench_daemon {
    pid_t pid;         /* 0 when not running */
    char ip[64];
    int port;
    char home[512];
    char netns[64];    /* set by the caller before start to run inside `ip netns exec` */
} bench_daemon_t;

/* Starts `<this binary> serve` with OLLAMAX_HOME=home on ip and a free port
 * (or d->port when set), with extra "KEY=VALUE" entries from env (NULL-ended,
 * may be NULL), and waits until GET / answers. The daemon's output goes to
 * home/daemon.log. On failure nothing is left running. */
int bench_daemon_start(bench_daemon_t *d, const char *ip, const char *home,
                       const char *const *env);
/* SIGTERM, wait (SIGKILL after 10 s). No-op when not running. */
void bench_daemon_stop(bench_daemon_t *d);

/* A port free on ip right now (bind to port 0); negative on failure. */
int bench_free_port(const char *ip);
/* Blocking TCP connect to ip:port; fd or negative. */
int bench_connect(const char *ip, int port);
int bench_write_all(int fd, const void *p, size_t n);
/* One HTTP/1.1 request with Connection: close; returns the status and (when
 * body_out is non-NULL) the malloc'd body the caller frees. */
int bench_http(const char *ip, int port, const char *method, const char *path,
               const char *body, int *status, char **body_out);
/* POSTs a file to /api/blobs/<digest> with sendfile (the client costs
 * little CPU); *status gets the HTTP status. */
int bench_post_file(const char *ip, int port, const char *path, const char *digest, uint64_t size,
                    int *status);
/* "128M", "1G", "4096", "1.5G" (binary units). */
int bench_parse_size(const char *s, uint64_t *out);
/* Writes size pseudo-random bytes (seeded, fast) to path. */
int bench_write_random_file(const char *path, uint64_t size, uint64_t seed);
/* VmRSS of pid in bytes (0 if unknown); VmHWM with peak=1. */
uint64_t bench_rss_bytes(pid_t pid);
uint64_t bench_peak_rss_bytes(pid_t pid);
/* CPU seconds (user+sys) used so far by pid. */
double bench_cpu_seconds(pid_t pid);
/* rm -rf path (best effort). */
void bench_rm_rf(const char *path);

#endif
