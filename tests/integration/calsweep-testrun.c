/* calsweep-testrun - the TEST job runner (tests only; never a default of the product).
 *
 * Follows the runner contract (docs/architecture.md): run in the attempt folder as
 * `calsweep-testrun job.json`; progress lines on fd 3; logs on stderr; result.json and exit 0 on
 * success, error.json {kind, message} and exit 1 otherwise. The job config's extra axes drive it:
 *   extra.test_sleep_ms      sleep this long in 10 steps, one progress line per step (default 0)
 *   extra.test_fail          "none" (default), "exit" (error.json, exit 1), "signal" (SIGKILL
 *                            itself)
 *   extra.test_fail_attempts fail only while CALSWEEP_ATTEMPT <= N (default: every attempt)
 * result.json: {"version":1,"metrics":{"test":{"value":<job id>,"attempt":<attempt>}},...}.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_json.h"
#include "cs_path.h"
#include "cs_time.h"

static int64_t env_int(const char *name)
{
    const char *s = getenv(name);
    char *end = NULL;
    if (s == NULL || s[0] == '\0') {
        return 0;
    }
    long long v = strtoll(s, &end, 10);
    return (end != NULL && *end == '\0') ? (int64_t)v : 0;
}

static int write_text(const char *path, const char *text)
{
    cs_err err = {0};
    if (cs_path_write_atomic(path, text, strlen(text), 0644, &err) != CS_OK) {
        fprintf(stderr, "calsweep-testrun: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cJSON *job = NULL;
    cs_err err = {0};
    char buf[1024], host[256] = "localhost";
    int64_t sleep_ms = 0, fail_attempts = -1;
    const char *fail = "none";
    bool progress = fcntl(3, F_GETFD) != -1;

    if (argc != 2) {
        fprintf(stderr, "usage: calsweep-testrun job.json\n");
        return 2;
    }
    if (cs_json_parse_file(argv[1], 0, &job, &err) != CS_OK || !cJSON_IsObject(job)) {
        fprintf(stderr, "calsweep-testrun: %s\n", err.msg[0] ? err.msg : "job is not an object");
        snprintf(buf, sizeof buf, "{\"kind\":\"bad_input\",\"message\":\"job.json unusable\"}");
        write_text("error.json", buf);
        return 1;
    }
    const cJSON *extra = cJSON_GetObjectItemCaseSensitive(job, "extra");
    if (cJSON_IsObject(extra)) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(extra, "test_sleep_ms");
        if (cJSON_IsNumber(v) && v->valuedouble > 0) {
            sleep_ms = (int64_t)v->valuedouble;
        }
        v = cJSON_GetObjectItemCaseSensitive(extra, "test_fail");
        if (cJSON_IsString(v)) {
            fail = v->valuestring;
        }
        v = cJSON_GetObjectItemCaseSensitive(extra, "test_fail_attempts");
        if (cJSON_IsNumber(v)) {
            fail_attempts = (int64_t)v->valuedouble;
        }
    }
    int64_t job_id = env_int("CALSWEEP_JOB_ID"), attempt = env_int("CALSWEEP_ATTEMPT");
    fprintf(stderr, "testrun: job %lld attempt %lld sleep %lld ms fail %s\n", (long long)job_id,
            (long long)attempt, (long long)sleep_ms, fail);
    for (int i = 1; i <= 10; i++) {
        cs_time_sleep_ms(sleep_ms / 10);
        if (progress) {
            int n = snprintf(buf, sizeof buf, "{\"stage\":\"test\",\"done\":%d,\"total\":10}\n", i);
            if (write(3, buf, (size_t)n) < 0) {
                progress = false;
            }
        }
    }
    bool failing = strcmp(fail, "none") != 0 && (fail_attempts < 0 || attempt <= fail_attempts);
    if (failing && strcmp(fail, "signal") == 0) {
        fprintf(stderr, "testrun: killing myself\n");
        fflush(stderr);
        raise(SIGKILL);
    }
    if (failing) {
        fprintf(stderr, "testrun: failing on demand\n");
        snprintf(buf, sizeof buf,
                 "{\"kind\":\"internal\",\"message\":\"test failure on attempt %lld\"}",
                 (long long)attempt);
        write_text("error.json", buf);
        cJSON_Delete(job);
        return 1;
    }
    gethostname(host, sizeof host);
    host[sizeof host - 1] = '\0';
    snprintf(buf, sizeof buf,
             "{\"version\":1,\"metrics\":{\"test\":{\"value\":%lld,\"attempt\":%lld}},"
             "\"calibration\":null,\"timings\":{\"total\":%.3f},\"peak_rss_mb\":1,"
             "\"engine_version\":\"testrun\",\"host\":\"%s\"}",
             (long long)job_id, (long long)attempt, (double)sleep_ms / 1000.0, host);
    cJSON_Delete(job);
    if (write_text("result.json", buf) != 0) {
        return 1;
    }
    fprintf(stderr, "testrun: done\n");
    return 0;
}
