#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int log_level = -1;

void ox_log_set_level(int level) { log_level = level; }

int ox_log_level(void)
{
    if (log_level < 0) {
        const char *d = getenv("OLLAMAX_DEBUG");
        log_level = (d && *d && strcmp(d, "0") != 0) ? OX_LOG_DEBUG : OX_LOG_INFO;
    }
    return log_level;
}

void ox_log(int level, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < ox_log_level() || level >= OX_LOG_OFF)
        return;
    char line[2048];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 3, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + ((size_t)m < sizeof line - (size_t)n - 3 ? (size_t)m : sizeof line - (size_t)n - 4);
    line[len++] = '"';
    line[len++] = '\n';
    ssize_t w = write(2, line, len);
    (void)w;
}
