#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"

extern char **environ;

int bench_connect(const char *ip, int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        close(s);
        return -1;
    }
    return s;
}

int bench_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return OX_EIO;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

int bench_http(const char *ip, int port, const char *method, const char *path, const char *body,
               int *status, char **body_out)
{
    int s = bench_connect(ip, port);
    if (s < 0)
        return OX_ENET;
    char head[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %zu\r\n"
                     "Content-Type: application/json\r\nConnection: close\r\n\r\n",
                     method, path, ip, port, blen);
    int rc = bench_write_all(s, head, (size_t)n);
    if (!rc && blen)
        rc = bench_write_all(s, body, blen);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (!rc && buf) {
        if (len + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(s, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(s);
    if (!buf)
        return OX_ENOMEM;
    buf[len] = 0;
    if (rc || sscanf(buf, "HTTP/1.%*d %d", status) != 1) {
        free(buf);
        return rc ? rc : OX_ENET;
    }
    if (body_out) {
        char *b = strstr(buf, "\r\n\r\n");
        *body_out = strdup(b ? b + 4 : "");
    }
    free(buf);
    return 0;
}

int bench_parse_size(const char *s, uint64_t *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || v < 0)
        return OX_EINVAL;
    double mult = 1;
    switch (*end) {
    case 'k': case 'K': mult = 1024.0; end++; break;
    case 'm': case 'M': mult = 1024.0 * 1024; end++; break;
    case 'g': case 'G': mult = 1024.0 * 1024 * 1024; end++; break;
    case 0: break;
    default: return OX_EINVAL;
    }
    if (*end == 'i' || *end == 'B' || *end == 'b')
        end++;
    if (*end == 'B')
        end++;
    if (*end)
        return OX_EINVAL;
    *out = (uint64_t)(v * mult);
    return *out ? 0 : OX_EINVAL;
}

int bench_write_random_file(const char *path, uint64_t size, uint64_t seed)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return OX_EIO;
    size_t cap = 1 << 20;
    uint64_t *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return OX_ENOMEM;
    }
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    int rc = 0;
    for (uint64_t done = 0; done < size && !rc;) {
        for (size_t i = 0; i < cap / 8; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = x;
        }
        size_t n = size - done < cap ? (size_t)(size - done) : cap;
        rc = bench_write_all(fd, buf, n);
        done += n;
    }
    free(buf);
    if (close(fd) != 0)
        rc = OX_EIO;
    return rc;
}

static uint64_t status_field(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    uint64_t kb = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            kb = strtoull(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb * 1024;
}

uint64_t bench_rss_bytes(pid_t pid) { return status_field(pid, "VmRSS"); }
uint64_t bench_peak_rss_bytes(pid_t pid) { return status_field(pid, "VmHWM"); }

double bench_cpu_seconds(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

int bench_free_port(const char *ip)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    socklen_t l = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(s, (struct sockaddr *)&a, &l) != 0) {
        if (s >= 0)
            close(s);
        return -1;
    }
    close(s);
    return ntohs(a.sin_port);
}

int bench_daemon_start(bench_daemon_t *d, const char *ip, const char *home,
                       const char *const *env)
{
    snprintf(d->ip, sizeof d->ip, "%s", ip);
    snprintf(d->home, sizeof d->home, "%s", home);
    if (ox_fs_mkdir_p(home, 0755) != 0)
        return OX_EIO;
    if (!d->port && !d->netns[0])
        d->port = bench_free_port(ip);
    if (d->port <= 0)
        d->port = 20000 + (int)(getpid() % 20000);
    char exe[4096];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (el <= 0)
        return OX_EIO;
    exe[el] = 0;
    char logp[600];
    snprintf(logp, sizeof logp, "%s/daemon.log", home);
    pid_t pid = fork();
    if (pid < 0)
        return OX_EIO;
    if (pid == 0) {
        char hostv[128], homev[600];
        snprintf(hostv, sizeof hostv, "OLLAMAX_HOST=%s:%d", ip, d->port);
        snprintf(homev, sizeof homev, "OLLAMAX_HOME=%s", home);
        putenv(hostv);
        putenv(homev);
        unsetenv("OLLAMA_HOST");
        unsetenv("OLLAMA_MODELS");
        unsetenv("OLLAMAX_MODELS");
        for (const char *const *e = env; e && *e; e++)
            putenv((char *)*e);
        int lf = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (lf >= 0) {
            dup2(lf, 1);
            dup2(lf, 2);
        }
        if (d->netns[0])
            execlp("ip", "ip", "netns", "exec", d->netns, exe, "serve", (char *)NULL);
        else
            execl(exe, exe, "serve", (char *)NULL);
        _exit(127);
    }
    d->pid = pid;
    for (int i = 0; i < 600; i++) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            d->pid = 0;
            return OX_EIO;
        }
        int status = 0;
        if (bench_http(ip, d->port, "GET", "/", NULL, &status, NULL) == 0 && status == 200)
            return 0;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bench_daemon_stop(d);
    return OX_ETIMEOUT;
}

void bench_daemon_stop(bench_daemon_t *d)
{
    if (d->pid <= 0)
        return;
    kill(d->pid, SIGTERM);
    for (int i = 0; i < 200; i++) {
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(d->pid, SIGKILL);
    waitpid(d->pid, NULL, 0);
    d->pid = 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(p);
    return 0;
}

void bench_rm_rf(const char *path) { nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS); }

int bench_post_file(const char *ip, int port, const char *path, const char *digest, uint64_t size,
                    int *status)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return OX_EIO;
    int s = bench_connect(ip, port);
    if (s < 0) {
        close(fd);
        return OX_ENET;
    }
    char head[512];
    int n = snprintf(head, sizeof head,
                     "POST /api/blobs/%s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %llu\r\n"
                     "Connection: close\r\n\r\n",
                     digest, ip, port, (unsigned long long)size);
    int rc = bench_write_all(s, head, (size_t)n);
    off_t off = 0;
    while (!rc && (uint64_t)off < size) {
        ssize_t w = sendfile(s, fd, &off, size - (uint64_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = OX_ENET;
    }
    char resp[1024] = {0};
    size_t got = 0;
    while (!rc && got < sizeof resp - 1) {
        ssize_t r = read(s, resp + got, sizeof resp - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    *status = 0;
    if (!rc && sscanf(resp, "HTTP/1.%*d %d", status) != 1)
        rc = OX_ENET;
    close(s);
    close(fd);
    return rc;
}
