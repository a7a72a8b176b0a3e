/* `ollamax bench ingest`: blob ingest throughput of a real daemon against
 * `openssl dgst -sha256` of the same file in the same run, plus the idle
 * daemon's resident memory.
 *
 * The daemon is this same binary (`/proc/self/exe serve`) in a temporary home
 * on a free loopback port. The upload is sent with sendfile(2) from a plain
 * socket so the client costs as little CPU as possible: on a 2-core machine
 * the client and the daemon share the cores, as they would in real use. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/bench_util.h"
#include "common/err.h"
#include "common/sha256.h"
#include "common/timeutil.h"

static double time_openssl(const char *path)
{
    int64_t t0 = ox_time_mono_ns();
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execlp("openssl", "openssl", "dgst", "-sha256", path, (char *)NULL);
        _exit(127);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return (double)(ox_time_mono_ns() - t0) / 1e9;
}

int bench_ingest_main(int argc, char **argv)
{
    uint64_t size = 1ull << 30;
    int rounds = 2;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--size") == 0 && i + 1 < argc) {
            if (bench_parse_size(argv[++i], &size) != 0) {
                fprintf(stderr, "Error: bad --size %s\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
            if (rounds < 1)
                rounds = 1;
        } else {
            fprintf(stderr, "usage: ollamax bench ingest [--size 1G] [--rounds 2]\n");
            return 2;
        }
    }
    char dir[] = "/tmp/oxbench-ingest-XXXXXX";
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    char path[256], home[256];
    snprintf(path, sizeof path, "%s/blob.bin", dir);
    snprintf(home, sizeof home, "%s/home", dir);
    int ret = 1;
    bench_daemon_t dmn = {0};
    uint8_t raw[32];
    char digest[72] = "sha256:";
    if (bench_write_random_file(path, size, 42) != 0) {
        fprintf(stderr, "Error: cannot write %s\n", path);
        goto out;
    }
    /* warm the page cache and learn the digest (not timed) */
    if (ox_sha256_file(path, raw, NULL) != 0)
        goto out;
    ox_hex_encode(raw, 32, digest + 7);

    if (bench_daemon_start(&dmn, "127.0.0.1", home, NULL) != 0) {
        fprintf(stderr, "Error: cannot start a daemon\n");
        goto out;
    }
    sleep(1);
    uint64_t idle_rss = bench_rss_bytes(dmn.pid);

    double best_ssl = 1e30, best_ing = 1e30;
    for (int r = 0; r < rounds; r++) {
        double t = time_openssl(path);
        if (t < 0) {
            fprintf(stderr, "Error: openssl dgst failed (is openssl installed?)\n");
            goto out;
        }
        if (t < best_ssl)
            best_ssl = t;
        int64_t t0 = ox_time_mono_ns();
        int status = 0;
        if (bench_post_file(dmn.ip, dmn.port, path, digest, size, &status) != 0 || status != 201) {
            fprintf(stderr, "Error: upload failed (HTTP %d)\n", status);
            goto out;
        }
        double ti = (double)(ox_time_mono_ns() - t0) / 1e9;
        if (ti < best_ing)
            best_ing = ti;
        /* delete the blob so the next round ingests again */
        char blob[512];
        snprintf(blob, sizeof blob, "%s/models/blobs/sha256-%s", home, digest + 7);
        unlink(blob);
        bench_daemon_stop(&dmn);
        if (r + 1 < rounds && bench_daemon_start(&dmn, "127.0.0.1", home, NULL) != 0)
            goto out;
    }
    double mb = (double)size / 1e6;
    double ssl_mbs = mb / best_ssl, ing_mbs = mb / best_ing;
    printf("%-28s %12s\n", "measure", "value");
    printf("%-28s %10.1f MB\n", "blob size", mb);
    printf("%-28s %10.1f MB/s\n", "openssl dgst -sha256", ssl_mbs);
    printf("%-28s %10.1f MB/s\n", "POST /api/blobs ingest", ing_mbs);
    printf("%-28s %10.2fx  (target >= 0.85x)\n", "ingest / openssl", ing_mbs / ssl_mbs);
    printf("%-28s %10.1f MB   (target <= 20 MB)\n", "idle daemon RSS", (double)idle_rss / 1e6);
    printf("{\"bench\":\"ingest\",\"size\":%llu,\"openssl_mbps\":%.1f,\"ingest_mbps\":%.1f,"
           "\"ratio\":%.3f,\"idle_rss_bytes\":%llu}\n",
           (unsigned long long)size, ssl_mbs, ing_mbs, ing_mbs / ssl_mbs,
           (unsigned long long)idle_rss);
    ret = 0;
out:
    bench_daemon_stop(&dmn);
    bench_rm_rf(dir);
    return ret;
}
