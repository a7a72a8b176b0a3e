/* Parsing of the swarm's settings (rates, endpoints). Pure functions. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"
#include "swarm/swarm.h"

void swarm_config_init(swarm_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->dht = 1;
    cfg->update_ms = 500;
    cfg->resume_ms = 3000;
    cfg->idle_timeout_ms = SWARM_IDLE_TIMEOUT_MS;
}

struct unit {
    const char *name; /* lower case */
    double mult;      /* bytes per unit */
};

/* Same meaning as the daemon's OLLAMAX_MAX_UPLOAD: SI prefixes are powers of
 * 1000, "i" prefixes powers of 1024, "bit"/"bps" are bits. */
static const struct unit units[] = {
    {"", 1},           {"b", 1},           {"byte", 1},         {"bytes", 1},
    {"k", 1e3},        {"kb", 1e3},        {"ki", 1024.0},      {"kib", 1024.0},
    {"m", 1e6},        {"mb", 1e6},        {"mi", 1048576.0},   {"mib", 1048576.0},
    {"g", 1e9},        {"gb", 1e9},        {"gi", 1073741824.0}, {"gib", 1073741824.0},
    {"t", 1e12},       {"tb", 1e12},       {"ti", 1099511627776.0}, {"tib", 1099511627776.0},
    {"bit", 1 / 8.0},  {"bps", 1 / 8.0},   {"kbit", 1e3 / 8},   {"kbps", 1e3 / 8},
    {"mbit", 1e6 / 8}, {"mbps", 1e6 / 8},  {"gbit", 1e9 / 8},   {"gbps", 1e9 / 8},
};

int swarm_rate_parse(const char *s, uint64_t *out)
{
    if (!s || !out)
        return OX_EINVAL;
    while (isspace((unsigned char)*s))
        s++;
    if (!*s || !strcasecmp(s, "unlimited") || !strcasecmp(s, "off") || !strcasecmp(s, "none")) {
        *out = 0;
        return 0;
    }
    if (!isdigit((unsigned char)*s) && *s != '.')
        return OX_EINVAL; /* also refuses signs, "nan" and "inf" */
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    /* decimal only: strtod would also take hex ("0x10", "0x1p4") */
    if (errno || end == s || strspn(s, "0123456789.eE+-") < (size_t)(end - s) || !isfinite(v) ||
        v < 0)
        return OX_EINVAL;
    while (isspace((unsigned char)*end))
        end++; /* "12 M" as well as "12M" */
    char unit[16];
    size_t n = 0;
    while (*end && !isspace((unsigned char)*end)) {
        if (n + 1 >= sizeof unit)
            return OX_EINVAL;
        unit[n++] = (char)tolower((unsigned char)*end++);
    }
    unit[n] = 0;
    while (isspace((unsigned char)*end))
        end++;
    if (*end)
        return OX_EINVAL;
    if (n >= 2 && strcmp(unit + n - 2, "/s") == 0)
        unit[n - 2] = 0;
    for (size_t i = 0; i < sizeof units / sizeof *units; i++) {
        if (strcmp(unit, units[i].name) == 0) {
            double bytes = round(v * units[i].mult);
            if (!(bytes < 18446744073709551616.0)) /* 2^64: does not fit */
                return OX_EINVAL;
            if (bytes == 0 && v != 0)
                return OX_EINVAL; /* "0.4", "1bit": under 1 byte/s, not "unlimited" */
            *out = (uint64_t)bytes;
            return 0;
        }
    }
    return OX_EINVAL;
}

int swarm_endpoint_parse(const char *s, char *ip, size_t ipcap, int *port)
{
    if (!s || !*s)
        return OX_EINVAL;
    const char *colon, *host = s;
    size_t hlen;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return OX_EINVAL;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon || strchr(s, ':') != colon)
            return OX_EINVAL;
        hlen = (size_t)(colon - s);
    }
    if (hlen == 0 || hlen >= ipcap)
        return OX_EINVAL;
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || p <= 0 || p > 65535)
        return OX_EINVAL;
    memcpy(ip, host, hlen);
    ip[hlen] = 0;
    struct in6_addr a6;
    struct in_addr a4;
    if (uv_inet_pton(AF_INET, ip, &a4) != 0 && uv_inet_pton(AF_INET6, ip, &a6) != 0)
        return OX_EINVAL; /* addresses only: no name resolution on the loop */
    *port = (int)p;
    return 0;
}
