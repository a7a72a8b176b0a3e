/* Clocks and the time formats of the Ollama API. */
#ifndef OX_TIMEUTIL_H
#define OX_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, ns since the epoch. */
int64_t ox_time_now_ns(void);
/* Monotonic clock, ns. */
int64_t ox_time_mono_ns(void);
/* RFC 3339 in UTC with up to nine fraction digits, trailing zeros trimmed as
 * Go's RFC3339Nano does ("2024-07-22T20:47:51.147561Z"). out needs 40 bytes. */
void ox_time_rfc3339(int64_t ns, char *out, size_t cap);
/* Same, with the local offset ("2024-07-22T13:47:51.147561-07:00"), as Go
 * prints a local time.Time (modified_at). */
void ox_time_rfc3339_local(int64_t ns, char *out, size_t cap);
/* Parses a Go duration ("5m", "1h30m", "-1s", "300ms", "0") into ns.
 * Returns OX_EINVAL on bad syntax. */
int ox_duration_parse(const char *s, int64_t *ns);

#endif
