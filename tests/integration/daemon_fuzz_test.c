/* daemon_fuzz_test.c - 1,000 malformed or random messages on both endpoints of the real calsweepd
 * (random bytes, truncated JSON, wrong field types, unknown types and keys, requests of the other
 * endpoint, unknown jobs, attempts and sweeps, out-of-range WATCH limits, oversized messages):
 * every one that nng delivers gets an ERROR reply, the log stays short (rate-limited), and
 * afterwards a small sweep still completes. */
#include "cs_test.h"
#include "integration/daemon_util.h"

typedef struct fixture {
    dt_env e;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    dt_env_init(&f->e);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    dt_kill(&f->e);
    dt_env_fini(&f->e);
    free(f);
    return 0;
}

static const char *const samples[] = {
        "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"instance\":\"" DT_INSTANCE "\","
        "\"capabilities\":{\"backends\":[\"native\"],\"models\":[],\"threads\":1,\"mem_mb\":0,"
        "\"gpus\":[]}}",
        "{\"v\":4,\"type\":\"RESULT\",\"worker\":\"w\",\"lease_token\":\"" DT_NO_LEASE "\","
        "\"job_id\":1,\"attempt\":1,\"result\":{\"metrics\":{}}}",
        "{\"v\":4,\"type\":\"HEARTBEAT\",\"worker\":\"w\",\"lease_token\":\"" DT_NO_LEASE "\","
        "\"job_id\":1,\"attempt\":1,\"stage\":\"x\",\"done\":0,\"total\":1,\"log_tail\":\"\"}",
        "{\"v\":4,\"type\":\"STATUS\"}",
        "{\"v\":4,\"type\":\"SUBMIT\",\"sweep\":{},\"force\":false}",
        "{\"v\":4,\"type\":\"WATCH\",\"sweep\":\"s\",\"top\":3,\"problems\":10}",
        "{\"v\":4,\"type\":\"JOB_INFO\",\"job_id\":1}",
};

/* Well-formed requests that must be refused: wrong types, unknown keys and types, requests of
 * the other endpoint, unknown jobs, huge attempts, bad metrics. */
static const char *const refused[] = {
        "{\"v\":4,\"type\":\"CLAIM\",\"worker\":7,\"capabilities\":{}}",
        "{\"v\":4,\"type\":\"RESULT\",\"job_id\":\"1\",\"attempt\":1,"
        "\"result\":{\"metrics\":{}}}",
        "{\"v\":4,\"type\":\"CLAIM\"}",
        "{\"v\":4,\"type\":\"TEAPOT\"}",
        "{\"v\":4,\"type\":\"JOB\",\"job_id\":1,\"attempt\":1,\"lease_s\":1,\"config\":{}}",
        "{\"v\":4,\"type\":\"CLAIM\",\"worker\":\"w\",\"extra\":1}",
        "{\"v\":4,\"type\":\"RESULT\",\"job_id\":999999,\"attempt\":1,"
        "\"result\":{\"metrics\":{}}}",
        "{\"v\":4,\"type\":\"RESULT\",\"job_id\":1,\"attempt\":9007199254740992,"
        "\"result\":{\"metrics\":{}}}",
        "{\"v\":4,\"type\":\"RESULT\",\"job_id\":1,\"attempt\":1,"
        "\"result\":{\"metrics\":{\"t\":[1]}}}",
        "{\"v\":4,\"type\":\"HEARTBEAT\",\"job_id\":12345,\"attempt\":3,\"stage\":\"x\","
        "\"done\":0,\"total\":1,\"log_tail\":\"\"}",
        "{\"v\":4,\"type\":\"FAIL\",\"job_id\":12345,\"attempt\":3,\"kind\":\"oom\","
        "\"reason\":\"\",\"exit_status\":-1,\"signal\":9,\"log_tail\":\"\"}",
        "[1,2,3]",
        "null",
        "",
        "{\"v\":4,\"type\":\"SUBMIT\",\"sweep\":{},\"force\":false}",
        "{\"v\":4,\"type\":\"STATUS\",\"sweep\":[]}",
        "{\"v\":4,\"type\":\"WATCH\",\"sweep\":\"nosuch\"}",
        "{\"v\":4,\"type\":\"WATCH\",\"top\":0}",
        "{\"v\":4,\"type\":\"WATCH\",\"problems\":1000000}",
        "{\"v\":4,\"type\":\"WATCH\",\"sweep\":7}",
        "{\"v\":4,\"type\":\"JOB_INFO\",\"job_id\":999999}",
        "{\"v\":4,\"type\":\"JOB_INFO\",\"job_id\":-1}",
        "{\"v\":4,\"type\":\"JOB_INFO\"}",
};

/* One message: CS_OK when an ERROR came back, CS_ETIMEDOUT when none did. */
static cs_rc send_raw(nng_socket s, const void *data, size_t len, int timeout_ms, bool *error)
{
    void *in = NULL;
    size_t n = 0;
    cs_msg rep;
    *error = false;
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout_ms);
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout_ms);
    if (nng_send(s, dt_mut(data), len, 0) != 0) {
        return CS_ENET;
    }
    if (nng_recv(s, &in, &n, NNG_FLAG_ALLOC) != 0) {
        return CS_ETIMEDOUT;
    }
    if (cs_msg_decode(in, n, &rep, NULL) == CS_OK) {
        *error = rep.type == CS_MSG_ERROR;
        cs_msg_fini(&rep);
    }
    nng_free(in, n);
    return CS_OK;
}

static void test_garbage(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 20, 3);
    const char *extra[] = {"--claim-hold-ms", "200", "--reap-ms", "100", "--lease-s", "2", NULL};
    dt_start(&f->e, extra);
    nng_socket sock[2] = {dt_dial(f->e.work, NULL), dt_dial(f->e.control, NULL)};
    assert_true(dt_ready(sock[0], NULL, 10000));

    cs_rng rng;
    cs_rng_seed(&rng, 42);
    char *buf = malloc(CS_PROTO_MAX_BYTES + 16);
    assert_non_null(buf);
    size_t errors = 0, dropped = 0;
    for (int i = 0; i < 1000; i++) {
        nng_socket s = sock[i % 2];
        size_t len = 0;
        int kind = (int)cs_rng_below(&rng, 5);
        if (i == 500) {
            /* Over the protocol limit but under nng's: decoded and refused (CS_ETOOBIG). */
            len = CS_PROTO_MAX_BYTES + 8;
            memset(buf, ' ', len);
            kind = -1;
        } else if (kind == 0) { /* random bytes */
            len = (size_t)cs_rng_below(&rng, 300);
            for (size_t k = 0; k < len; k++) {
                buf[k] = (char)cs_rng_below(&rng, 256);
            }
        } else if (kind == 1) { /* a truncated request */
            const char *t = samples[cs_rng_below(&rng, sizeof samples / sizeof samples[0])];
            len = (size_t)cs_rng_below(&rng, strlen(t));
            memcpy(buf, t, len);
        } else if (kind == 2) { /* a request with one byte changed */
            const char *t = samples[cs_rng_below(&rng, sizeof samples / sizeof samples[0])];
            len = strlen(t);
            memcpy(buf, t, len);
            buf[cs_rng_below(&rng, len)] = (char)(' ' + cs_rng_below(&rng, 95));
        } else { /* a well-formed request that is refused */
            const char *t = refused[cs_rng_below(&rng, sizeof refused / sizeof refused[0])];
            len = strlen(t);
            memcpy(buf, t, len);
        }
        bool error = false;
        cs_rc rc = send_raw(s, buf, len, 3000, &error);
        if (rc == CS_OK && error) {
            errors++;
        } else if (kind == 2 && rc == CS_OK) {
            /* A changed byte may leave a valid request (a changed name, say). */
            errors++;
        } else {
            dropped++;
            print_message("# message %d (kind %d, %zu bytes): %s\n", i, kind, len,
                          rc == CS_OK ? "a non-error reply" : "no reply");
        }
    }
    free(buf);
    assert_int_equal(errors, 1000);
    assert_int_equal(dropped, 0);

    /* The daemon still serves: the sweep completes. */
    int done = 0;
    int64_t end = cs_time_mono_ms() + 30000;
    while (done < 20 && cs_time_mono_ms() < end) {
        cs_msg rep;
        assert_int_equal(dt_claim(sock[0], "good", NULL, 5000, &rep), CS_OK);
        if (rep.type == CS_MSG_JOB) {
            int64_t id = rep.job.job_id, at = rep.job.attempt;
            char lease[CS_PROTO_TOKEN_LEN + 1];
            snprintf(lease, sizeof lease, "%s", rep.job.lease_token);
            cs_msg_fini(&rep);
            assert_int_equal(dt_result(sock[0], "good", lease, id, at, NULL, 5000, &rep), CS_OK);
            assert_int_equal(rep.type, CS_MSG_ACK);
            done++;
        }
        cs_msg_fini(&rep);
    }
    assert_int_equal(done, 20);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state = 'done'"), 20);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM result"), 20);
    /* Logged, but rate-limited: far fewer lines than messages. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(wc -l < '%s') -lt 300", f->e.log);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(kill(f->e.pid, SIGTERM), 0);
    int st = dt_wait(f->e.pid, 10000);
    f->e.pid = 0;
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(dt_integrity_ok(f->e.db));
    nng_close(sock[0]);
    nng_close(sock[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_garbage, setup, teardown),
    };
    return cmocka_run_group_tests_name("daemon_fuzz", tests, NULL, NULL);
}
