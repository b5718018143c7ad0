/* time_test.c - cs_time: clocks, ISO-8601 UTC formatting and parsing, durations, sleep. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "cs_test.h"
#include "cs_time.h"

static void test_clocks(void **state)
{
    uint64_t a, b;
    int64_t w;
    (void)state;
    a = cs_time_mono_ns();
    b = cs_time_mono_ns();
    assert_true(b >= a);
    w = cs_time_wall_ms();
    /* within a second of time(NULL), and after 2020-01-01 */
    assert_true(w / 1000 - (int64_t)time(NULL) <= 1 && (int64_t)time(NULL) - w / 1000 <= 1);
    assert_true(w > INT64_C(1577836800000));
    assert_true(cs_time_mono_ms() >= 0);
}

static void test_sleep(void **state)
{
    uint64_t t0, dt;
    (void)state;
    t0 = cs_time_mono_ns();
    cs_time_sleep_ms(30);
    dt = cs_time_mono_ns() - t0;
    assert_true(dt >= 30u * 1000000u);
    assert_true(dt < 2000u * 1000000u);
    t0 = cs_time_mono_ns();
    cs_time_sleep_ms(0);
    cs_time_sleep_ms(-5);
    assert_true(cs_time_mono_ns() - t0 < 50u * 1000000u);
}

static void test_iso_format(void **state)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
            {0, "1970-01-01T00:00:00.000Z"},
            {1, "1970-01-01T00:00:00.001Z"},
            {-1, "1969-12-31T23:59:59.999Z"},
            {INT64_C(951782400000), "2000-02-29T00:00:00.000Z"},
            {INT64_C(1714566896789), "2024-05-01T12:34:56.789Z"},
            {INT64_C(253402300799999), "9999-12-31T23:59:59.999Z"},
            {INT64_C(-62167219200000), "0000-01-01T00:00:00.000Z"},
    };
    char buf[CS_TIME_ISO_LEN];
    cs_err err = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t back = 0;
        assert_int_equal(cs_time_format_iso(cases[i].ms, buf, &err), CS_OK);
        assert_string_equal(buf, cases[i].want);
        assert_int_equal(cs_time_parse_iso(buf, &back, &err), CS_OK);
        assert_int_equal(back, cases[i].ms);
    }
    assert_int_equal(cs_time_format_iso(INT64_C(253402300800000), buf, &err), CS_ERANGE);
    assert_string_equal(buf, "");
    assert_int_equal(cs_time_format_iso(INT64_MIN, buf, &err), CS_ERANGE);
    /* agrees with gmtime_r over a sweep of days */
    for (int64_t s = -86400 * 400; s < INT64_C(86400) * 365 * 60; s += 86400 * 7 + 3671) {
        struct tm tm;
        time_t tt = (time_t)s;
        char want[CS_TIME_ISO_LEN + 8];
        assert_non_null(gmtime_r(&tt, &tm));
        strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
        assert_int_equal(cs_time_format_iso(s * 1000, buf, &err), CS_OK);
        assert_string_equal(buf, want);
    }
}

static void test_iso_parse(void **state)
{
    int64_t ms = 0;
    cs_err err = {0};
    (void)state;
    assert_int_equal(cs_time_parse_iso("2024-05-01T12:34:56Z", &ms, &err), CS_OK);
    assert_int_equal(ms, INT64_C(1714566896000));
    assert_int_equal(cs_time_parse_iso("2024-05-01T12:34:56.7Z", &ms, &err), CS_OK);
    assert_int_equal(ms, INT64_C(1714566896700));
    assert_int_equal(cs_time_parse_iso("2024-05-01T12:34:56.123456789Z", &ms, &err), CS_OK);
    assert_int_equal(ms, INT64_C(1714566896123));
    static const char *const bad[] = {"2024-05-01 12:34:56Z",
                                      "2024-05-01T12:34:56",
                                      "2024-05-01T12:34:56+02:00",
                                      "2023-02-29T00:00:00Z",
                                      "2024-13-01T00:00:00Z",
                                      "2024-04-31T00:00:00Z",
                                      "2024-05-01T24:00:00Z",
                                      "2024-05-01T12:34:56.Z",
                                      "",
                                      "x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(cs_time_parse_iso(bad[i], &ms, &err), CS_EINVAL);
        assert_non_null(strstr(err.msg, "bad timestamp"));
    }
    assert_int_equal(cs_time_parse_iso("2024-02-29T00:00:00Z", &ms, &err), CS_OK);
}

static void test_duration_parse(void **state)
{
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
            {"30s", 30000}, {"5m", 300000},     {"2h", 7200000},         {"1d", 86400000},
            {"250ms", 250}, {"1h30m", 5400000}, {"1m30s", 90000},        {"0s", 0},
            {"45", 45000},  {"0", 0},           {"1h0m5s10ms", 3605010},
    };
    static const char *const bad[] = {"",    "s",  "-5s",  "5",   "5x", "5 s", "1.5h",
                                      "5mm", "h5", "5sm2", "+3s", "3S", "1h30"};
    int64_t ms;
    cs_err err = {0};
    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        ms = -1;
        if (cs_time_parse_duration(ok[i].in, &ms, &err) != CS_OK) {
            print_error("%s: %s\n", ok[i].in, err.msg);
        }
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (strcmp(bad[i], "5") == 0) {
            continue; /* a bare integer is seconds (listed to document it) */
        }
        if (cs_time_parse_duration(bad[i], &ms, &err) != CS_EINVAL) {
            print_error("accepted \"%s\"\n", bad[i]);
            fail();
        }
        assert_non_null(strstr(err.msg, "expected e.g. 30s"));
    }
    assert_int_equal(cs_time_parse_duration("99999999999999999999s", &ms, &err), CS_ERANGE);
    assert_int_equal(cs_time_parse_duration("9223372036854775807d", &ms, &err), CS_ERANGE);
    assert_int_equal(cs_time_parse_duration("9223372036854775s9223372036854775s", &ms, &err),
                     CS_ERANGE);
}

static void test_duration_format(void **state)
{
    char buf[32];
    int64_t back;
    (void)state;
    assert_string_equal(cs_time_format_duration(0, buf, sizeof(buf)), "0s");
    assert_string_equal(cs_time_format_duration(5400000, buf, sizeof(buf)), "1h30m");
    assert_string_equal(cs_time_format_duration(93784005, buf, sizeof(buf)), "1d2h3m4s5ms");
    assert_string_equal(cs_time_format_duration(250, buf, sizeof(buf)), "250ms");
    assert_string_equal(cs_time_format_duration(-42000, buf, sizeof(buf)), "-42s");
    assert_non_null(cs_time_format_duration(INT64_MIN, buf, sizeof(buf)));
    assert_string_equal(cs_time_format_duration(5400000, buf, 3), "1h");
    /* format then parse is the identity */
    for (int64_t v = 0; v < INT64_C(100000000000); v = v * 3 + 7) {
        cs_time_format_duration(v, buf, sizeof(buf));
        assert_int_equal(cs_time_parse_duration(buf, &back, NULL), CS_OK);
        assert_int_equal(back, v);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_clocks),         cmocka_unit_test(test_sleep),
            cmocka_unit_test(test_iso_format),     cmocka_unit_test(test_iso_parse),
            cmocka_unit_test(test_duration_parse), cmocka_unit_test(test_duration_format),
    };
    return CS_RUN_TESTS(tests);
}
