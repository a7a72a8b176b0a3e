/* Logging to stderr with a level threshold.
 *
 * The threshold comes from OLLAMAX_DEBUG (set: debug) once at first use;
 * ox_log_set_level overrides it. Safe to call from any thread: each line is
 * formatted into one buffer and written with one write(2). */
#ifndef OX_LOG_H
#define OX_LOG_H

enum { OX_LOG_DEBUG = 0, OX_LOG_INFO = 1, OX_LOG_WARN = 2, OX_LOG_ERROR = 3, OX_LOG_OFF = 4 };

void ox_log_set_level(int level);
int ox_log_level(void);
void ox_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define OX_DEBUG(...) ox_log(OX_LOG_DEBUG, __VA_ARGS__)
#define OX_INFO(...) ox_log(OX_LOG_INFO, __VA_ARGS__)
#define OX_WARN(...) ox_log(OX_LOG_WARN, __VA_ARGS__)
#define OX_ERROR(...) ox_log(OX_LOG_ERROR, __VA_ARGS__)

#endif
