/* cs_time.c - clocks, ISO-8601 UTC, durations, sleep (see cs_time.h). */
#include "cs_time.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

uint64_t cs_time_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int64_t cs_time_mono_ms(void)
{
    return (int64_t)(cs_time_mono_ns() / 1000000u);
}

int64_t cs_time_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era;
    unsigned yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = (unsigned)(y - era * 400);
    doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    int64_t era;
    unsigned doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = (unsigned)(z - era * 146097);
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

/* Floor division and modulo for negative times. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && ((a < 0) != (b < 0)));
}

cs_rc cs_time_format_iso(int64_t wall_ms, char out[CS_TIME_ISO_LEN], cs_err *err)
{
    int64_t secs, days, y, ms, sod;
    unsigned m, d;
    char tmp[96];
    out[0] = '\0';
    /* +-2^52 ms is about 142,000 years: guards the arithmetic; the year check does the rest. */
    if (wall_ms > ((int64_t)1 << 52) || wall_ms < -((int64_t)1 << 52)) {
        return cs_err_set(err, CS_ERANGE, 0, "time %" PRId64 " ms is out of range", wall_ms);
    }
    secs = floor_div(wall_ms, 1000);
    days = floor_div(secs, 86400);
    ms = wall_ms - secs * 1000;
    sod = secs - days * 86400;
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        return cs_err_set(err, CS_ERANGE, 0, "time %" PRId64 " ms: year %" PRId64 " out of 0..9999",
                          wall_ms, y);
    }
    /* A roomy buffer first: the compiler cannot see that every field is in range. */
    snprintf(tmp, sizeof(tmp), "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", (int)y, m, d,
             (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), (int)ms);
    memcpy(out, tmp, CS_TIME_ISO_LEN - 1);
    out[CS_TIME_ISO_LEN - 1] = '\0';
    return CS_OK;
}

/* Reads exactly n decimal digits at s into *v. */
static int digits(const char *s, int n, int *v)
{
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return 0;
        }
        *v = *v * 10 + (s[i] - '0');
    }
    return 1;
}

cs_rc cs_time_parse_iso(const char *s, int64_t *out_ms, cs_err *err)
{
    static const unsigned mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int y, mo, d, h, mi, se, ms = 0;
    const char *p;
    *out_ms = 0;
    if (!s || strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se)) {
        goto bad;
    }
    p = s + 19;
    if (*p == '.') {
        int nd = 0;
        p++;
        while (*p >= '0' && *p <= '9') {
            if (nd < 3) {
                ms = ms * 10 + (*p - '0');
            }
            nd++;
            p++;
        }
        if (nd == 0 || nd > 9) {
            goto bad;
        }
        for (int i = nd; i < 3; i++) {
            ms *= 10;
        }
    }
    if (p[0] != 'Z' || p[1] != '\0') {
        goto bad;
    }
    if (mo < 1 || mo > 12 || d < 1 || (unsigned)d > mdays[mo - 1] || h > 23 || mi > 59 || se > 59) {
        goto bad;
    }
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) {
        goto bad;
    }
    *out_ms = (days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se) *
                      1000 +
              ms;
    return CS_OK;
bad:
    return cs_err_set(err, CS_EINVAL, 0,
                      "bad timestamp \"%.40s\": expected UTC YYYY-MM-DDTHH:MM:SS[.fff]Z",
                      s ? s : "");
}

cs_rc cs_time_parse_duration(const char *s, int64_t *out_ms, cs_err *err)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    const char *p = s;
    int64_t total = 0;
    *out_ms = 0;
    if (!s || !*s) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "empty duration: expected e.g. 30s, 5m, 2h, 1h30m, 250ms");
    }
    while (*p) {
        int64_t v = 0, mult = 0;
        size_t ulen = 0;
        if (*p < '0' || *p > '9') {
            goto bad;
        }
        while (*p >= '0' && *p <= '9') {
            if (v > (INT64_MAX - (*p - '0')) / 10) {
                goto range;
            }
            v = v * 10 + (*p - '0');
            p++;
        }
        if (*p == '\0' && p != s && total == 0 && strspn(s, "0123456789") == strlen(s)) {
            mult = 1000; /* a bare integer: seconds */
        } else {
            /* Longest unit name that matches ("ms" before "m"). */
            for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                size_t n = strlen(units[i].name);
                if (strncmp(p, units[i].name, n) == 0 && n > ulen &&
                    !(p[n] >= 'a' && p[n] <= 'z')) {
                    ulen = n;
                    mult = units[i].ms;
                }
            }
            if (mult == 0) {
                goto bad;
            }
            p += ulen;
        }
        if (v > INT64_MAX / mult || total > INT64_MAX - v * mult) {
            goto range;
        }
        total += v * mult;
    }
    *out_ms = total;
    return CS_OK;
bad:
    return cs_err_set(err, CS_EINVAL, 0,
                      "bad duration \"%.40s\": expected e.g. 30s, 5m, 2h, 1h30m, 250ms", s);
range:
    return cs_err_set(err, CS_ERANGE, 0, "duration \"%.40s\" is too long", s);
}

char *cs_time_format_duration(int64_t ms, char *buf, size_t n)
{
    static const struct {
        const char *name;
        int64_t ms;
    } units[] = {{"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1}};
    size_t used = 0;
    uint64_t left;
    if (n == 0) {
        return buf;
    }
    buf[0] = '\0';
    if (ms < 0) {
        used += (size_t)snprintf(buf, n, "-");
        left = (uint64_t)(-(ms + 1)) + 1; /* INT64_MIN safe */
    } else {
        left = (uint64_t)ms;
    }
    if (left == 0) {
        snprintf(buf + used, n - used, "0s");
        return buf;
    }
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && used < n; i++) {
        uint64_t q = left / (uint64_t)units[i].ms;
        if (q > 0) {
            int w = snprintf(buf + used, n - used, "%" PRIu64 "%s", q, units[i].name);
            if (w < 0) {
                break;
            }
            used += (size_t)w;
            left -= q * (uint64_t)units[i].ms;
        }
    }
    return buf;
}

void cs_time_sleep_ms(int64_t ms)
{
    struct timespec req, rem;
    if (ms <= 0) {
        return;
    }
    req.tv_sec = (time_t)(ms / 1000);
    req.tv_nsec = (long)(ms % 1000) * 1000000L;
    while (nanosleep(&req, &rem) != 0 && errno == EINTR) {
        req = rem;
    }
}
