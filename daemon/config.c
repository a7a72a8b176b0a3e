/* node_config_load: settings from the environment and $OLLAMAX_HOME/config.
 *
 * The file holds KEY=VALUE lines with the same names as the environment
 * (blank lines and '#' comments allowed, values may be quoted); a variable
 * set (non-empty) in the environment wins over the file. */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/fs.h"
#include "common/timeutil.h"
#include "daemon/node.h"

#define CFG_MAX_ENTRIES 64

typedef struct cfg_file {
    char *keys[CFG_MAX_ENTRIES];
    char *vals[CFG_MAX_ENTRIES];
    size_t n;
    char *text; /* owned; keys and vals point into it */
} cfg_file_t;

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = 0;
    return s;
}

static void cfg_file_load(cfg_file_t *f, const char *home)
{
    memset(f, 0, sizeof *f);
    char path[1100];
    if (ox_fs_join(path, sizeof path, home, "config") != 0)
        return;
    size_t len;
    if (ox_fs_read_all(path, 1 << 20, &f->text, &len) != 0)
        return;
    char *save = NULL;
    for (char *line = strtok_r(f->text, "\n", &save); line && f->n < CFG_MAX_ENTRIES;
         line = strtok_r(NULL, "\n", &save)) {
        char *l = trim(line);
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *k = trim(l), *v = trim(eq + 1);
        if (strncmp(k, "export ", 7) == 0)
            k = trim(k + 7);
        size_t vn = strlen(v);
        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
            v[vn - 1] = 0;
            v++;
        }
        f->keys[f->n] = k;
        f->vals[f->n] = v;
        f->n++;
    }
}

/* Environment first (when non-empty), then the file; NULL when unset. */
static const char *cfg_get(const cfg_file_t *f, const char *key)
{
    const char *e = getenv(key);
    if (e && *e)
        return e;
    for (size_t i = f->n; i-- > 0;)
        if (strcmp(f->keys[i], key) == 0 && *f->vals[i])
            return f->vals[i];
    return NULL;
}

/* "1000", "10K", "10M", "1G", "1Mi", "100mbit", "10MB/s": bytes per second.
 * K/M/G are powers of 1000, Ki/Mi/Gi of 1024; "bit" units divide by 8. */
static int parse_rate(const char *s, uint64_t *out)
{
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0)
        return OX_EINVAL;
    char unit[16];
    size_t n = 0;
    for (const char *p = end; *p && n < sizeof unit - 1; p++)
        if (!isspace((unsigned char)*p))
            unit[n++] = (char)tolower((unsigned char)*p);
    unit[n] = 0;
    if (n >= 2 && strcmp(unit + n - 2, "/s") == 0)
        unit[n -= 2] = 0;
    double mul = 1;
    const char *u = unit;
    if (*u == 'k' || *u == 'm' || *u == 'g') {
        int pow = *u == 'k' ? 1 : *u == 'm' ? 2 : 3;
        u++;
        double base = 1000;
        if (*u == 'i')
            base = 1024, u++;
        for (int i = 0; i < pow; i++)
            mul *= base;
    }
    if (*u == 0 || strcmp(u, "b") == 0 || strcmp(u, "byte") == 0 || strcmp(u, "bytes") == 0) {
        /* bytes */
    } else if (strcmp(u, "bit") == 0 || strcmp(u, "bps") == 0) {
        mul /= 8;
    } else {
        return OX_EINVAL;
    }
    double r = v * mul;
    if (r > 1.8e19)
        return OX_EINVAL;
    *out = (uint64_t)r;
    return 0;
}

static int parse_int(const char *s, long min, long max, int *out)
{
    errno = 0;
    char *end;
    long v = strtol(s, &end, 10);
    while (isspace((unsigned char)*end))
        end++;
    if (errno || end == s || *end || v < min || v > max)
        return OX_EINVAL;
    *out = (int)v;
    return 0;
}

/* OLLAMA_KEEP_ALIVE: a Go duration or an integer number of seconds;
 * negative means forever (kept as a negative value). */
static int parse_keep_alive(const char *s, int64_t *ns)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!errno && end != s && *end == 0) {
        *ns = v * 1000000000LL;
        return 0;
    }
    return ox_duration_parse(s, ns);
}

static int home_default(char *out, size_t cap)
{
    const char *h = getenv("HOME");
    if (!h || !*h) {
        struct passwd *pw = getpwuid(getuid());
        h = pw ? pw->pw_dir : NULL;
    }
    if (!h)
        return OX_ENOTFOUND;
    return ox_fs_join(out, cap, h, ".ollamax");
}

int node_config_load(node_config_t *cfg, char *err, size_t errlen)
{
    memset(cfg, 0, sizeof *cfg);
    const char *home = getenv("OLLAMAX_HOME");
    if (home && *home) {
        if (strlen(home) >= sizeof cfg->home) {
            snprintf(err, errlen, "OLLAMAX_HOME is too long");
            return OX_EINVAL;
        }
        snprintf(cfg->home, sizeof cfg->home, "%s", home);
    } else if (home_default(cfg->home, sizeof cfg->home) != 0) {
        snprintf(err, errlen, "cannot find the home directory: set OLLAMAX_HOME");
        return OX_EINVAL;
    }

    cfg_file_t f;
    cfg_file_load(&f, cfg->home);
    int rc = 0;
    const char *v;

    if ((v = cfg_get(&f, "OLLAMAX_MODELS")) || (v = cfg_get(&f, "OLLAMA_MODELS")))
        snprintf(cfg->models, sizeof cfg->models, "%s", v);
    else
        ox_fs_join(cfg->models, sizeof cfg->models, cfg->home, "models");

    snprintf(cfg->host, sizeof cfg->host, "127.0.0.1");
    cfg->port = 11434;
    const char *hk = cfg_get(&f, "OLLAMAX_HOST") ? "OLLAMAX_HOST" : "OLLAMA_HOST";
    if ((v = cfg_get(&f, hk)) &&
        node_host_parse(v, cfg->host, sizeof cfg->host, &cfg->port, NULL, 0) != 0) {
        snprintf(err, errlen, "%s: invalid address %s", hk, v);
        rc = OX_EINVAL;
        goto out;
    }
    if ((v = cfg_get(&f, "OLLAMA_ORIGINS")))
        snprintf(cfg->origins, sizeof cfg->origins, "%s", v);
    if ((v = cfg_get(&f, "OLLAMAX_PEERS")))
        snprintf(cfg->peers, sizeof cfg->peers, "%s", v);

    static const char *rates[] = {"OLLAMAX_MAX_UPLOAD", "OLLAMAX_MAX_DOWNLOAD"};
    uint64_t *rate_out[] = {&cfg->max_upload, &cfg->max_download};
    for (int i = 0; i < 2; i++) {
        if ((v = cfg_get(&f, rates[i])) && parse_rate(v, rate_out[i]) != 0) {
            snprintf(err, errlen, "%s: invalid rate %s (bytes/s, e.g. 10M, 512Ki, 100mbit)",
                     rates[i], v);
            rc = OX_EINVAL;
            goto out;
        }
    }

    cfg->keep_alive_ns = 5LL * 60 * 1000000000LL;
    if ((v = cfg_get(&f, "OLLAMA_KEEP_ALIVE")) && parse_keep_alive(v, &cfg->keep_alive_ns) != 0) {
        snprintf(err, errlen, "OLLAMA_KEEP_ALIVE: invalid duration %s (e.g. 5m, 1h30m, 300)",
                 v);
        rc = OX_EINVAL;
        goto out;
    }

    cfg->num_parallel = 1;
    cfg->max_queue = 512;
    cfg->swarm_port = 0;
    static const struct {
        const char *key;
        long min, max;
    } ints[] = {{"OLLAMA_NUM_PARALLEL", 1, 1024},
                {"OLLAMA_MAX_QUEUE", 1, 1 << 20},
                {"OLLAMAX_SWARM_PORT", 0, 65535}};
    int *int_out[] = {&cfg->num_parallel, &cfg->max_queue, &cfg->swarm_port};
    for (int i = 0; i < 3; i++) {
        if ((v = cfg_get(&f, ints[i].key)) &&
            parse_int(v, ints[i].min, ints[i].max, int_out[i]) != 0) {
            snprintf(err, errlen, "%s: invalid value %s (an integer from %ld to %ld)", ints[i].key,
                     v, ints[i].min, ints[i].max);
            rc = OX_EINVAL;
            goto out;
        }
    }
out:
    free(f.text);
    return rc;
}
