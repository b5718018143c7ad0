/* cs_log.h - leveled logging with file:line, as text or JSON lines (docs/style.md R14).
 *
 * The sink, level and format are process settings, set once in main() before any thread starts
 * (cs_log_setup); the write path only reads them, so logging is safe from any thread. The default
 * is text at CS_LOG_INFO on stderr.
 */
#ifndef CS_COMMON_CS_LOG_H
#define CS_COMMON_CS_LOG_H

#include <stdbool.h>
#include <stdio.h>

#include "cs_err.h"

typedef enum cs_log_level {
    CS_LOG_ERROR = 0,
    CS_LOG_WARN = 1,
    CS_LOG_INFO = 2,
    CS_LOG_DEBUG = 3,
    CS_LOG_TRACE = 4,
} cs_log_level;

/* Borrows sink (NULL = stderr) until the next call or process exit. Main thread, before threads. */
void cs_log_setup(cs_log_level level, bool json, FILE *sink);
/* Parses "error", "warn", "info", "debug", "trace"; CS_EINVAL otherwise. */
cs_rc cs_log_level_parse(const char *s, cs_log_level *out);
const char *cs_log_level_name(cs_log_level level);
bool cs_log_enabled(cs_log_level level);

void cs_log_write(cs_log_level level, const char *file, int line, const char *fmt, ...)
        CS_PRINTF(4, 5);

#define cs_log(level, ...) cs_log_write((level), __FILE__, __LINE__, __VA_ARGS__)
/* Appends ": strerror(errno)" as read at the call. */
#define cs_log_errno(level, fmt, ...) \
    cs_log_errno_write((level), __FILE__, __LINE__, fmt, ##__VA_ARGS__)
void cs_log_errno_write(cs_log_level level, const char *file, int line, const char *fmt, ...)
        CS_PRINTF(4, 5);

#endif
