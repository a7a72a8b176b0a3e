/* Pull: the pure parts (part planning, URLs, WWW-Authenticate, sidecar). */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/pull.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/fs.h"
#include "common/sha256.h"

int pull_plan(uint64_t total, uint64_t min_part, uint64_t max_part, pull_part_t **parts,
              size_t *n)
{
    if (min_part == 0 || min_part > max_part)
        return OX_EINVAL;
    uint64_t size = total / 16;
    if (size < min_part)
        size = min_part;
    if (size > max_part)
        size = max_part;
    uint64_t count = total == 0 ? 1 : (total + size - 1) / size;
    pull_part_t *p = calloc((size_t)count, sizeof(*p));
    if (!p)
        return OX_ENOMEM;
    for (uint64_t i = 0; i < count; i++) {
        p[i].start = i * size;
        p[i].len = (i + 1 == count) ? total - i * size : size;
    }
    *parts = p;
    *n = (size_t)count;
    return 0;
}

int pull_base_url(const cas_name_t *n, int insecure, char *out, size_t cap)
{
    const char *scheme = (insecure || strcmp(n->scheme, "http") == 0) ? "http" : "https";
    int w = snprintf(out, cap, "%s://%s/v2/%s/%s/", scheme, n->host, n->ns, n->model);
    return (w < 0 || (size_t)w >= cap) ? OX_ETOOBIG : 0;
}

/* Only http(s) may be fetched: a hostile registry must not point the
 * daemon at file://, gopher:// or other schemes curl would happily use. */
static int url_is_http(const char *u)
{
    return strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
}

int pull_url_resolve(const char *base, const char *loc, char *out, size_t cap)
{
    int w;
    const char *sep = strstr(base, "://");
    if (strstr(loc, "://")) {
        if (!url_is_http(loc))
            return OX_EINVAL;
        w = snprintf(out, cap, "%s", loc);
    } else if (!sep) {
        return OX_EINVAL;
    } else if (loc[0] == '/' && loc[1] == '/') {
        w = snprintf(out, cap, "%.*s:%s", (int)(sep - base), base, loc);
    } else if (loc[0] == '/') {
        const char *path = strchr(sep + 3, '/');
        int hostlen = path ? (int)(path - base) : (int)strlen(base);
        w = snprintf(out, cap, "%.*s%s", hostlen, base, loc);
    } else {
        return OX_EINVAL;
    }
    return (w < 0 || (size_t)w >= cap) ? OX_ETOOBIG : 0;
}

int pull_www_auth_parse(const char *hdr, pull_auth_t *out)
{
    memset(out, 0, sizeof(*out));
    while (*hdr == ' ')
        hdr++;
    if (strncasecmp(hdr, "Bearer", 6) != 0 || (hdr[6] != ' ' && hdr[6] != '\0'))
        return OX_EINVAL;
    const char *p = hdr + 6;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *k = p;
        while (*p && *p != '=' && *p != ',')
            p++;
        size_t klen = (size_t)(p - k);
        while (klen && k[klen - 1] == ' ')
            klen--;
        if (*p != '=')
            continue;
        p++;
        char val[512];
        size_t vl = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                if (*p == '\\' && p[1])
                    p++;
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
                p++;
            }
            if (*p != '"')
                return OX_EINVAL;  /* unterminated quote */
            p++;
        } else {
            while (*p && *p != ',') {
                if (vl + 1 < sizeof(val))
                    val[vl++] = *p;
                p++;
            }
            while (vl && val[vl - 1] == ' ')
                vl--;
        }
        val[vl] = '\0';
        char *dst = NULL;
        size_t dcap = 0;
        if (klen == 5 && strncasecmp(k, "realm", 5) == 0) {
            dst = out->realm;
            dcap = sizeof(out->realm);
        } else if (klen == 7 && strncasecmp(k, "service", 7) == 0) {
            dst = out->service;
            dcap = sizeof(out->service);
        } else if (klen == 5 && strncasecmp(k, "scope", 5) == 0) {
            dst = out->scope;
            dcap = sizeof(out->scope);
        }
        if (dst)
            snprintf(dst, dcap, "%s", val);
    }
    return out->realm[0] ? 0 : OX_EINVAL;
}

static int url_encode(ox_buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc = (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
                     ? ox_buf_append(b, s, 1)
                     : ox_buf_printf(b, "%%%02X", c);
        if (rc)
            return rc;
    }
    return 0;
}

int pull_token_url(const pull_auth_t *a, char *out, size_t cap)
{
    if (!url_is_http(a->realm))
        return OX_EINVAL;
    ox_buf_t b = OX_BUF_INIT;
    int rc = ox_buf_puts(&b, a->realm);
    char sep = strchr(a->realm, '?') ? '&' : '?';
    if (!rc && a->service[0]) {
        rc = ox_buf_printf(&b, "%cservice=", sep);
        rc = rc ? rc : url_encode(&b, a->service);
        sep = '&';
    }
    if (!rc && a->scope[0]) {
        rc = ox_buf_printf(&b, "%cscope=", sep);
        rc = rc ? rc : url_encode(&b, a->scope);
    }
    if (!rc && b.len >= cap)
        rc = OX_ETOOBIG;
    if (!rc)
        memcpy(out, b.data, b.len + 1);
    ox_buf_free(&b);
    return rc;
}

#define SIDECAR_MAGIC "ollamax-pull-parts 1"

char *pull_sidecar_format(const char *digest, uint64_t total, const pull_part_t *parts,
                          size_t n, size_t *len)
{
    ox_buf_t b = OX_BUF_INIT;
    int rc = ox_buf_printf(&b, "%s\ndigest %s\ntotal %" PRIu64 "\nparts %zu\n", SIDECAR_MAGIC,
                           digest, total, n);
    for (size_t i = 0; !rc && i < n; i++)
        rc = ox_buf_printf(&b, "part %zu %" PRIu64 " %" PRIu64 " %" PRIu64 "\n", i,
                           parts[i].start, parts[i].len, parts[i].done);
    char hex[65];
    if (!rc) {
        ox_sha256_hex(b.data, b.len, hex);
        rc = ox_buf_printf(&b, "sum %s\n", hex);
    }
    if (rc) {
        ox_buf_free(&b);
        return NULL;
    }
    *len = b.len;
    return ox_buf_steal(&b);
}

/* Reads one '\n'-terminated line at *p into line; 0 or OX_EFORMAT. */
static int next_line(const char **p, const char *end, char *line, size_t cap)
{
    const char *eol = memchr(*p, '\n', (size_t)(end - *p));
    if (!eol || (size_t)(eol - *p) >= cap)
        return OX_EFORMAT;
    memcpy(line, *p, (size_t)(eol - *p));
    line[eol - *p] = '\0';
    *p = eol + 1;
    return 0;
}

int pull_sidecar_parse(const char *text, size_t len, const char *digest, uint64_t total,
                       uint64_t partial_size, pull_part_t *parts, size_t n)
{
    const char *p = text, *end = text + len;
    char line[256], want[256];
    if (!text || next_line(&p, end, line, sizeof(line)) || strcmp(line, SIDECAR_MAGIC) != 0)
        return OX_EFORMAT;
    snprintf(want, sizeof(want), "digest %s", digest);
    if (next_line(&p, end, line, sizeof(line)) || strcmp(line, want) != 0)
        return OX_EFORMAT;
    snprintf(want, sizeof(want), "total %" PRIu64, total);
    if (next_line(&p, end, line, sizeof(line)) || strcmp(line, want) != 0)
        return OX_EFORMAT;
    snprintf(want, sizeof(want), "parts %zu", n);
    if (next_line(&p, end, line, sizeof(line)) || strcmp(line, want) != 0)
        return OX_EFORMAT;
    uint64_t *done = calloc(n ? n : 1, sizeof(*done));
    if (!done)
        return OX_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        size_t idx;
        uint64_t s, l, d;
        char extra;
        if (next_line(&p, end, line, sizeof(line)) ||
            sscanf(line, "part %zu %" SCNu64 " %" SCNu64 " %" SCNu64 "%c", &idx, &s, &l, &d,
                   &extra) != 4 ||
            idx != i || s != parts[i].start || l != parts[i].len || d > l ||
            (d > 0 && s + d > partial_size))
            rc = OX_EFORMAT;
        else
            done[i] = d;
    }
    if (!rc) {
        char hex[65];
        ox_sha256_hex(text, (size_t)(p - text), hex);
        snprintf(want, sizeof(want), "sum %s", hex);
        if (next_line(&p, end, line, sizeof(line)) || strcmp(line, want) != 0 || p != end)
            rc = OX_EFORMAT;
    }
    if (!rc)
        for (size_t i = 0; i < n; i++)
            parts[i].done = done[i];
    free(done);
    return rc;
}

int pull_resume_prepare(int fd, const char *sidecar_path, const char *digest, uint64_t total,
                        uint64_t min_part, pull_part_t **parts, size_t *n, int *restarted)
{
    *restarted = 0;
    int rc = pull_plan(total, min_part, PULL_PART_MAX, parts, n);
    if (rc)
        return rc;
    struct stat st;
    char *text = NULL;
    size_t len = 0;
    if (fstat(fd, &st) != 0) {
        rc = OX_EIO;
        goto fail;
    }
    int have = ox_fs_read_all(sidecar_path, 1u << 20, &text, &len) == 0;
    if (have && pull_sidecar_parse(text, len, digest, total, (uint64_t)st.st_size, *parts,
                                   *n) == 0) {
        free(text);
        return 0;
    }
    free(text);
    /* Bytes without a trustworthy record are worthless: start over. */
    *restarted = have || st.st_size > 0;
    if (st.st_size > 0 && ftruncate(fd, 0) != 0) {
        rc = OX_EIO;
        goto fail;
    }
    if (have && unlink(sidecar_path) != 0) {
        rc = OX_EIO;
        goto fail;
    }
    return 0;
fail:
    free(*parts);
    *parts = NULL;
    *n = 0;
    return rc;
}
