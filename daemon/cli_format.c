/* The CLI's output: human sizes and times, tables, progress bars. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "daemon/cli.h"

void cli_human_bytes(uint64_t b, char *out, size_t cap)
{
    static const char *units[] = {"KB", "MB", "GB", "TB"};
    if (b < 1000) {
        snprintf(out, cap, "%llu B", (unsigned long long)b);
        return;
    }
    double v = (double)b;
    int u = -1;
    while (v >= 1000 && u < 3) {
        v /= 1000;
        u++;
    }
    if (v >= 10 || v == (double)(uint64_t)v)
        snprintf(out, cap, "%llu %s", (unsigned long long)v, units[u]);
    else
        snprintf(out, cap, "%.1f %s", v, units[u]);
}

static void plural(char *out, size_t cap, long long n, const char *unit, const char *suffix)
{
    snprintf(out, cap, "%lld %s%s %s", n, unit, n == 1 ? "" : "s", suffix);
}

void cli_human_time(int64_t then_ns, int64_t now_ns, char *out, size_t cap)
{
    int future = then_ns > now_ns;
    double s = (double)(future ? then_ns - now_ns : now_ns - then_ns) / 1e9;
    const char *sfx = future ? "from now" : "ago";
    if (s < 1) {
        snprintf(out, cap, future ? "Less than a second from now" : "Less than a second ago");
    } else if (s < 60) {
        plural(out, cap, (long long)s, "second", sfx);
    } else if (s < 120) {
        snprintf(out, cap, "About a minute %s", sfx);
    } else if (s < 3600) {
        plural(out, cap, (long long)(s / 60), "minute", sfx);
    } else if (s < 7200) {
        snprintf(out, cap, "About an hour %s", sfx);
    } else if (s < 86400 * 2) {
        plural(out, cap, (long long)(s / 3600), "hour", sfx);
    } else if (s < 86400 * 14) {
        plural(out, cap, (long long)(s / 86400), "day", sfx);
    } else if (s < 86400 * 60) {
        plural(out, cap, (long long)(s / (86400 * 7)), "week", sfx);
    } else if (s < 86400 * 365 * 2) {
        plural(out, cap, (long long)(s / (86400 * 30)), "month", sfx);
    } else {
        plural(out, cap, (long long)(s / (86400 * 365)), "year", sfx);
    }
}

int64_t cli_parse_time(const char *s)
{
    if (!s)
        return 0;
    struct tm tm = {0};
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return 0;
    int64_t ns = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 9) {
                ns = ns * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        while (digits++ < 9)
            ns *= 10;
    }
    int64_t off = 0;
    if (*p == '+' || *p == '-') {
        int hh = 0, mm = 0;
        if (sscanf(p + 1, "%d:%d", &hh, &mm) >= 1)
            off = (hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    }
    int64_t secs = (int64_t)timegm(&tm) - off;
    return secs * 1000000000LL + ns;
}

void cli_table(const char *const *cells, size_t rows, size_t cols)
{
    size_t w[16] = {0};
    if (cols > 16)
        cols = 16;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t l = strlen(cells[r * cols + c]);
            if (l > w[c])
                w[c] = l;
        }
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c];
            if (c + 1 == cols)
                printf("%s", s);
            else
                printf("%-*s    ", (int)w[c], s);
        }
        printf("\n");
    }
}

/* ---- progress ------------------------------------------------------------- */

void cli_progress_init(cli_progress_t *p)
{
    memset(p, 0, sizeof(*p));
    p->tty = isatty(1);
}

void cli_progress_end(cli_progress_t *p)
{
    if (p->line_open) {
        printf("\n");
        fflush(stdout);
    }
    p->line_open = 0;
}

static int term_width(void)
{
    struct winsize ws;
    if (ioctl(1, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

void cli_progress_bar(cli_progress_t *p, const char *label, uint64_t completed, uint64_t total)
{
    int new_label = strcmp(p->status, label) != 0;
    if (new_label) {
        cli_progress_end(p);
        snprintf(p->status, sizeof(p->status), "%s", label);
        p->rate = 0;
        p->rate_t0 = ox_time_mono_ns();
        p->rate_b0 = completed;
    }
    char done_s[32], total_s[32];
    cli_human_bytes(completed, done_s, sizeof(done_s));
    cli_human_bytes(total, total_s, sizeof(total_s));
    int pct = total ? (int)(completed * 100 / total) : 100;
    if (!p->tty) {
        /* plain output: one line when a layer starts, one when it is done */
        if (new_label)
            printf("%s %s\n", label, total_s);
        if (completed >= total && p->last_completed < total && !new_label)
            printf("%s 100%%\n", label);
        p->last_completed = completed;
        fflush(stdout);
        return;
    }
    int64_t now = ox_time_mono_ns();
    if (now - p->rate_t0 >= 500000000LL) {
        double r = (double)(completed - p->rate_b0) / ((double)(now - p->rate_t0) / 1e9);
        p->rate = p->rate > 0 ? 0.5 * p->rate + 0.5 * r : r;
        p->rate_t0 = now;
        p->rate_b0 = completed;
    }
    char tail[96] = "";
    if (completed < total && p->rate > 0) {
        char rate_s[32];
        cli_human_bytes((uint64_t)p->rate, rate_s, sizeof(rate_s));
        long eta = (long)((double)(total - completed) / p->rate);
        snprintf(tail, sizeof(tail), " %s/s %ldm%02lds", rate_s, eta / 60, eta % 60);
    }
    char head[300], right[160];
    snprintf(head, sizeof(head), "%s %3d%% ", label, pct);
    snprintf(right, sizeof(right), " %s/%s%s", done_s, total_s, tail);
    int bar = term_width() - (int)strlen(head) - (int)strlen(right) - 3;
    if (bar > 50)
        bar = 50;
    printf("\r\033[K%s", head);
    if (bar >= 10) {
        int fill = total ? (int)((double)bar * (double)completed / (double)total) : bar;
        printf("\xe2\x96\x95");  /* ▕ */
        for (int i = 0; i < bar; i++)
            printf(i < fill ? "\xe2\x96\x88" : " ");  /* █ */
        printf("\xe2\x96\x8f");  /* ▏ */
    }
    printf("%s", right);
    fflush(stdout);
    p->line_open = 1;
    p->last_completed = completed;
}

void cli_progress_update(cli_progress_t *p, const json_t *obj)
{
    const char *status = json_string_value(json_object_get(obj, "status"));
    if (!status)
        return;
    json_t *total = json_object_get(obj, "total");
    if (json_is_integer(total) && json_object_get(obj, "digest")) {
        uint64_t t = (uint64_t)json_integer_value(total);
        uint64_t c = (uint64_t)json_integer_value(json_object_get(obj, "completed"));
        cli_progress_bar(p, status, c, t);
        return;
    }
    if (strcmp(p->status, status) == 0)
        return;
    cli_progress_end(p);
    snprintf(p->status, sizeof(p->status), "%s", status);
    printf("%s\n", status);
    fflush(stdout);
}
