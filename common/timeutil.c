#include "common/timeutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

int64_t ox_time_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int64_t ox_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static size_t frac_digits(long nsec, char *out)
{
    if (nsec == 0) {
        out[0] = 0;
        return 0;
    }
    char digits[10];
    snprintf(digits, sizeof digits, "%09ld", nsec);
    int n = 9;
    while (n > 0 && digits[n - 1] == '0')
        n--;
    out[0] = '.';
    memcpy(out + 1, digits, (size_t)n);
    out[n + 1] = 0;
    return (size_t)n + 1;
}

void ox_time_rfc3339(int64_t ns, char *out, size_t cap)
{
    time_t sec = (time_t)(ns / 1000000000LL);
    long nsec = (long)(ns % 1000000000LL);
    if (nsec < 0) {
        nsec += 1000000000L;
        sec -= 1;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    char frac[12];
    frac_digits(nsec, frac);
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

void ox_time_rfc3339_local(int64_t ns, char *out, size_t cap)
{
    time_t sec = (time_t)(ns / 1000000000LL);
    long nsec = (long)(ns % 1000000000LL);
    if (nsec < 0) {
        nsec += 1000000000L;
        sec -= 1;
    }
    struct tm tm;
    localtime_r(&sec, &tm);
    char frac[12];
    frac_digits(nsec, frac);
    long off = tm.tm_gmtoff;
    if (off == 0) {
        snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
        return;
    }
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02ld:%02ld", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac, sign, off / 3600,
             (off % 3600) / 60);
}

int ox_duration_parse(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        double mult;
    } units[] = {{"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
                 {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    int neg = 0;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*s)
        return OX_EINVAL;
    double total = 0;
    while (*s) {
        if (!((*s >= '0' && *s <= '9') || *s == '.'))
            return OX_EINVAL;
        char *end;
        double v = strtod(s, &end);
        if (end == s)
            return OX_EINVAL;
        s = end;
        size_t best = 0;
        double mult = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t ul = strlen(units[i].unit);
            if (strncmp(s, units[i].unit, ul) == 0 && ul > best) {
                best = ul;
                mult = units[i].mult;
            }
        }
        if (!best)
            return OX_EINVAL;
        s += best;
        total += v * mult;
    }
    if (total > 9.2e18)
        return OX_EINVAL;
    *ns = (int64_t)(neg ? -total : total);
    return 0;
}
