/* cs_time.h - clocks, ISO-8601 timestamps, durations for CLI flags, and sleeping.
 *
 * Monotonic time measures intervals (leases, timeouts, stage timings); wall-clock time is only for
 * display and records. Durations are int64 milliseconds everywhere. Thread-safe, no globals.
 */
#ifndef CS_COMMON_CS_TIME_H
#define CS_COMMON_CS_TIME_H

#include <stddef.h>
#include <stdint.h>

#include "cs_err.h"

/* Bytes of "2024-05-01T12:34:56.789Z" plus NUL. */
#define CS_TIME_ISO_LEN 25

/* CLOCK_MONOTONIC in nanoseconds since an unspecified start; never goes backwards. */
uint64_t cs_time_mono_ns(void);
/* CLOCK_MONOTONIC in milliseconds. */
int64_t cs_time_mono_ms(void);
/* CLOCK_REALTIME in milliseconds since the Unix epoch. */
int64_t cs_time_wall_ms(void);

/* Formats wall_ms (ms since the epoch, may be negative) as UTC "YYYY-MM-DDTHH:MM:SS.mmmZ" into
 * out. CS_ERANGE when the year is outside 0000..9999. */
cs_rc cs_time_format_iso(int64_t wall_ms, char out[CS_TIME_ISO_LEN], cs_err *err);

/* Parses "YYYY-MM-DDTHH:MM:SS[.fff]Z" (UTC only, 'T' required, 1-9 fraction digits, extra digits
 * beyond ms truncated) into ms since the epoch. CS_EINVAL naming the text otherwise. */
cs_rc cs_time_parse_iso(const char *s, int64_t *out_ms, cs_err *err);

/* Parses a duration for CLI flags into milliseconds: one or more <integer><unit> parts with units
 * ms, s, m, h, d ("30s", "5m", "2h", "1h30m", "250ms", "0s"), or a bare integer meaning seconds.
 * No sign, spaces or fractions. CS_EINVAL with the text and the expected form, CS_ERANGE on
 * overflow of int64 ms. */
cs_rc cs_time_parse_duration(const char *s, int64_t *out_ms, cs_err *err);

/* Writes ms compactly ("1h30m", "5m", "42s", "250ms", "1d2h", "0s"; "-" first when negative)
 * into buf (n >= 32 suffices; truncated otherwise). Returns buf. */
char *cs_time_format_duration(int64_t ms, char *buf, size_t n);

/* Sleeps at least ms milliseconds (<= 0 returns at once), resuming after signals. */
void cs_time_sleep_ms(int64_t ms);

#endif
