/* Model names and digests: pure parsing, validation and display. Every path
 * the store builds from a name goes through these checks first, so a part
 * can never be empty, "." or "..", or hold a '/'. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cas/cas.h"
#include "cas/cas_int.h"
#include "common/err.h"

static int is_alnum_(int ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
           ch == '_';
}

int cas__valid_part(const char *s, size_t len, int kind)
{
    static const size_t maxlen[] = {350, 80, 80, 80};
    if (len < 1 || len > maxlen[kind] || !is_alnum_((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < len; i++) {
        int ch = (unsigned char)s[i];
        if (is_alnum_(ch) || ch == '-')
            continue;
        if (ch == '.' && kind != CAS_PART_NS)
            continue;
        if (ch == ':' && kind == CAS_PART_HOST)
            continue;
        return 0;
    }
    return 1;
}

static void copy_part(char *dst, const char *s, size_t len)
{
    memcpy(dst, s, len);
    dst[len] = 0;
}

int cas_name_parse(const char *s, cas_name_t *out)
{
    if (!s || !out)
        return OX_EINVAL;
    cas_name_t n;
    memset(&n, 0, sizeof n);
    strcpy(n.scheme, "https");
    strcpy(n.host, CAS_DEFAULT_HOST);
    strcpy(n.ns, CAS_DEFAULT_NS);
    strcpy(n.tag, CAS_DEFAULT_TAG);

    const char *sep = strstr(s, "://");
    if (sep) {
        size_t sl = (size_t)(sep - s);
        if (sl == 5 && strncasecmp(s, "https", 5) == 0)
            strcpy(n.scheme, "https");
        else if (sl == 4 && strncasecmp(s, "http", 4) == 0)
            strcpy(n.scheme, "http");
        else
            return OX_EINVAL;
        s = sep + 3;
    }
    size_t len = strlen(s);
    if (len == 0 || len > 350 + 80 + 80 + 80 + 3)
        return OX_EINVAL;

    /* The tag splits only at a ':' after the last '/', so host:port works. */
    const char *last_slash = strrchr(s, '/');
    const char *last_colon = strrchr(s, ':');
    size_t body = len;
    if (last_colon && (!last_slash || last_colon > last_slash)) {
        const char *tag = last_colon + 1;
        size_t tl = strlen(tag);
        if (!cas__valid_part(tag, tl, CAS_PART_TAG))
            return OX_EINVAL;
        copy_part(n.tag, tag, tl);
        body = (size_t)(last_colon - s);
    }

    /* Split body at '/' from the right: model, then ns, then host. */
    const char *parts[4];
    size_t plen[4];
    int np = 0;
    size_t end = body;
    for (;;) {
        size_t start = end;
        while (start > 0 && s[start - 1] != '/')
            start--;
        if (np == 3)
            return OX_EINVAL; /* more than host/ns/model */
        parts[np] = s + start;
        plen[np] = end - start;
        np++;
        if (start == 0)
            break;
        end = start - 1;
    }
    static const int kinds[] = {CAS_PART_MODEL, CAS_PART_NS, CAS_PART_HOST};
    for (int i = 0; i < np; i++)
        if (!cas__valid_part(parts[i], plen[i], kinds[i]))
            return OX_EINVAL;
    copy_part(n.model, parts[0], plen[0]);
    if (np > 1)
        copy_part(n.ns, parts[1], plen[1]);
    if (np > 2)
        copy_part(n.host, parts[2], plen[2]);
    *out = n;
    return 0;
}

void cas_name_display(const cas_name_t *n, char *out, size_t cap)
{
    int dhost = strcasecmp(n->host, CAS_DEFAULT_HOST) == 0;
    int dns = strcasecmp(n->ns, CAS_DEFAULT_NS) == 0;
    if (dhost && dns)
        snprintf(out, cap, "%s:%s", n->model, n->tag);
    else if (dhost)
        snprintf(out, cap, "%s/%s:%s", n->ns, n->model, n->tag);
    else
        snprintf(out, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

void cas_name_full(const cas_name_t *n, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s:%s", n->host, n->ns, n->model, n->tag);
}

int cas_name_equal(const cas_name_t *a, const cas_name_t *b)
{
    return strcasecmp(a->host, b->host) == 0 && strcasecmp(a->ns, b->ns) == 0 &&
           strcasecmp(a->model, b->model) == 0 && strcasecmp(a->tag, b->tag) == 0;
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

int cas__is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (hexval((unsigned char)s[i]) < 0)
            return 0;
    return s[64] == 0;
}

int cas_digest_parse(const char *in, char out[72])
{
    if (!in || strncmp(in, "sha256", 6) != 0 || (in[6] != ':' && in[6] != '-') ||
        strlen(in) != 71 || !cas__is_hex64(in + 7))
        return OX_EINVAL;
    memcpy(out, "sha256:", 7);
    for (int i = 0; i < 64; i++) {
        char ch = in[7 + i];
        out[7 + i] = (ch >= 'A' && ch <= 'F') ? (char)(ch - 'A' + 'a') : ch;
    }
    out[71] = 0;
    return 0;
}

int cas__digest_hex(const char *digest, char hex[65])
{
    char canon[72];
    int rc = cas_digest_parse(digest, canon);
    if (rc)
        return rc;
    memcpy(hex, canon + 7, 65);
    return 0;
}
