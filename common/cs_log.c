/* cs_log.c - text and JSON-lines logging. One fprintf per line, so lines from threads don't mix. */
#include "cs_log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "cs_alloc.h"

/* Process-wide log settings: the only global mutable state allowed (docs/style.md R15). */
static cs_log_level g_level = CS_LOG_INFO;
static bool g_json = false;
static FILE *g_sink = NULL;

static const char *const level_names[] = {"error", "warn", "info", "debug", "trace"};

void cs_log_setup(cs_log_level level, bool json, FILE *sink)
{
    g_level = level;
    g_json = json;
    g_sink = sink;
}

cs_rc cs_log_level_parse(const char *s, cs_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (cs_log_level)i;
            return CS_OK;
        }
    }
    return CS_EINVAL;
}

const char *cs_log_level_name(cs_log_level level)
{
    if ((int)level < 0 || (size_t)level >= sizeof(level_names) / sizeof(level_names[0])) {
        return "?";
    }
    return level_names[level];
}

bool cs_log_enabled(cs_log_level level)
{
    return level <= g_level;
}

static const char *base_name(const char *file)
{
    const char *s = strrchr(file, '/');
    return s ? s + 1 : file;
}

static void json_escape(cs_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            cs_buf_putc(b, '\\');
            cs_buf_putc(b, (char)c);
        } else if (c == '\n') {
            cs_buf_puts(b, "\\n");
        } else if (c == '\t') {
            cs_buf_puts(b, "\\t");
        } else if (c < 0x20) {
            cs_buf_printf(b, "\\u%04x", c);
        } else {
            cs_buf_putc(b, (char)c);
        }
    }
}

static void vwrite(cs_log_level level, const char *file, int line, const char *suffix,
                   const char *fmt, va_list ap) CS_PRINTF(5, 0);
static void vwrite(cs_log_level level, const char *file, int line, const char *suffix,
                   const char *fmt, va_list ap)
{
    FILE *out = g_sink ? g_sink : stderr;
    char msg[2048];
    char ts[64];
    struct timespec now;
    struct tm tm;
    cs_buf b = {0};

    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    if (g_json) {
        cs_buf_printf(&b, "{\"ts\":\"%s\",\"level\":\"%s\",\"src\":\"%s:%d\",\"msg\":\"", ts,
                      cs_log_level_name(level), base_name(file), line);
        json_escape(&b, msg);
        if (suffix) {
            json_escape(&b, suffix);
        }
        cs_buf_puts(&b, "\"}\n");
    } else {
        cs_buf_printf(&b, "%s %-5s [%s:%d] %s%s\n", ts, cs_log_level_name(level), base_name(file),
                      line, msg, suffix ? suffix : "");
    }
    if (b.data) {
        fputs(b.data, out);
        fflush(out);
    }
    cs_buf_fini(&b);
}

void cs_log_write(cs_log_level level, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    if (!cs_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    vwrite(level, file, line, NULL, fmt, ap);
    va_end(ap);
}

void cs_log_errno_write(cs_log_level level, const char *file, int line, const char *fmt, ...)
{
    int e = errno;
    char suffix[160];
    va_list ap;
    if (!cs_log_enabled(level)) {
        return;
    }
    snprintf(suffix, sizeof(suffix), ": %s", strerror(e));
    va_start(ap, fmt);
    vwrite(level, file, line, suffix, fmt, ap);
    va_end(ap);
}
