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
#include "swarm/swarm.h"

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
    if ((v = cfg_get(&f, "OLLAMAX_REGISTRY"))) {
        size_t n = strlen(v), host = strncmp(v, "http://", 7) == 0    ? 7
                                     : strncmp(v, "https://", 8) == 0 ? 8
                                                                      : 0;
        while (n > host && v[n - 1] == '/')
            n--;
        int path = 0;
        for (size_t i = host; i < n; i++)
            path |= v[i] == '/';
        if (!host || n == host || path || n >= sizeof cfg->registry) {
            snprintf(err, errlen, "OLLAMAX_REGISTRY: %s is not an http(s)://host[:port] URL", v);
            rc = OX_EINVAL;
            goto out;
        }
        snprintf(cfg->registry, sizeof cfg->registry, "%.*s", (int)n, v);
    }

    static const char *rates[] = {"OLLAMAX_MAX_UPLOAD", "OLLAMAX_MAX_DOWNLOAD"};
    uint64_t *rate_out[] = {&cfg->max_upload, &cfg->max_download};
    for (int i = 0; i < 2; i++) {
        if ((v = cfg_get(&f, rates[i])) && swarm_rate_parse(v, rate_out[i]) != 0) {
            snprintf(err, errlen,
                     "%s: invalid rate %s (bytes/s, e.g. 10M, 512Ki, 1Ti, 100mbit, unlimited)",
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
