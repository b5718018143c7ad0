/* daemon_auth_test.c - calsweepd's authentication, with the real binary on loopback: token mode
 * on tcp://127.0.0.1 (a wrong, missing or garbled token gets ERROR CS_EAUTH "authentication
 * failed" and nothing else, on both endpoints), the refusal to listen on a non-loopback address
 * without protection, and mutual TLS with certificates made by openssl at test time (a client
 * whose certificate the CA did not sign gets no reply at all; a good one is served). */
#include <sys/stat.h>

#include "cs_test.h"
#include "integration/daemon_util.h"

typedef struct fixture {
    dt_env e;
    char token_file[320];
    char args[8][320];
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

/* A port from the pid, so parallel runs of different test binaries rarely collide. */
static void expect_auth_error(const cs_msg *rep)
{
    if (rep->type != CS_MSG_ERROR) {
        fail_msg("expected ERROR CS_EAUTH, got %s", cs_msg_type_name(rep->type));
    }
    assert_int_equal(rep->error.code, CS_EAUTH);
    assert_string_equal(rep->error.message, "authentication failed");
}

static void test_token(void **state)
{
    fixture *f = *state;
    dt_submit(f->e.db, "s", 0, 2, 3);
    snprintf(f->token_file, sizeof f->token_file, "%s/token", f->e.dir);
    FILE *tf = fopen(f->token_file, "w");
    assert_non_null(tf);
    fputs("s3cret-token\n", tf);
    fclose(tf);
    assert_int_equal(chmod(f->token_file, 0600), 0);
    snprintf(f->e.work, sizeof f->e.work, "tcp://127.0.0.1:%d", dt_free_port());
    snprintf(f->e.control, sizeof f->e.control, "tcp://127.0.0.1:%d", dt_free_port());
    const char *extra[] = {"--token-file", f->token_file, "--claim-hold-ms", "200", NULL};
    dt_start(&f->e, extra);
    nng_socket w = dt_dial(f->e.work, NULL), c = dt_dial(f->e.control, NULL);
    assert_true(dt_ready(w, "s3cret-token", 10000));

    cs_msg rep;
    /* Wrong token, no token, a prefix of the token: CS_EAUTH, no job. */
    const char *bad[] = {"wrong", NULL, "s3cret", "s3cret-token-and-more"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(dt_claim(w, "thief", bad[i], 5000, &rep), CS_OK);
        expect_auth_error(&rep);
        cs_msg_fini(&rep);
        assert_int_equal(dt_result(w, "thief", DT_NO_LEASE, 1, 1, bad[i], 5000, &rep), CS_OK);
        expect_auth_error(&rep);
        cs_msg_fini(&rep);
    }
    /* Garbage with a token configured: the same answer, nothing about why. */
    {
        void *in = NULL;
        size_t n = 0;
        nng_socket_set_ms(w, NNG_OPT_RECVTIMEO, 5000);
        assert_int_equal(nng_send(w, dt_mut("{\"v\":4,\"type\":\"CLAIM\""), 21, 0), 0);
        assert_int_equal(nng_recv(w, &in, &n, NNG_FLAG_ALLOC), 0);
        assert_int_equal(cs_msg_decode(in, n, &rep, NULL), CS_OK);
        nng_free(in, n);
        expect_auth_error(&rep);
        cs_msg_fini(&rep);
    }
    /* The control endpoint too. */
    cs_msg m;
    cs_msg_init(&m, CS_MSG_STATUS);
    m.token = dt_mut("wrong");
    assert_int_equal(dt_call(c, &m, &rep, 5000), CS_OK);
    expect_auth_error(&rep);
    cs_msg_fini(&rep);
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state = 'running'"), 0);

    /* The right token is served. */
    assert_int_equal(dt_claim(w, "w1", "s3cret-token", 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_JOB);
    int64_t id = rep.job.job_id;
    char lease[CS_PROTO_TOKEN_LEN + 1];
    snprintf(lease, sizeof lease, "%s", rep.job.lease_token);
    cs_msg_fini(&rep);
    assert_int_equal(dt_result(w, "w1", lease, id, 1, "s3cret-token", 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_ACK);
    cs_msg_fini(&rep);
    nng_close(w);
    nng_close(c);
    /* The failures were logged, once per peer. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "test $(grep -c 'authentication failed' '%s') -le 3", f->e.log);
    assert_int_equal(system(cmd), 0);
}

static void test_refuse_open_listener(void **state)
{
    fixture *f = *state;
    snprintf(f->e.work, sizeof f->e.work, "tcp://0.0.0.0:%d", dt_free_port());
    dt_start(&f->e, NULL);
    int st = dt_wait(f->e.pid, 10000);
    f->e.pid = 0;
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 1);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "grep -q 'non-loopback' '%s'", f->e.log);
    assert_int_equal(system(cmd), 0);
}

static void run_sh(const char *dir, const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd '%s' && { %s ; } >openssl.log 2>&1", dir, cmd);
    if (system(full) != 0) {
        snprintf(full, sizeof full, "cat '%s/openssl.log'", dir);
        (void)system(full);
        fail_msg("openssl failed: %s", cmd);
    }
}

static void test_tls(void **state)
{
    fixture *f = *state;
    const char *d = f->e.dir;
    dt_submit(f->e.db, "s", 0, 2, 3);
    /* A CA, a server certificate for localhost, a client certificate it signed, and a client
     * certificate of another CA. */
    run_sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=test-ca "
              "-keyout ca.key -out ca.crt");
    run_sh(d, "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=evil-ca "
              "-keyout evil.key -out evil.crt");
    run_sh(d, "printf 'subjectAltName=DNS:localhost\\n' > san.ext && "
              "openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key "
              "-out server.csr && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key "
              "-CAcreateserial -days 2 -extfile san.ext -out server.crt");
    run_sh(d, "openssl req -newkey rsa:2048 -nodes -subj /CN=worker -keyout client.key "
              "-out client.csr && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key "
              "-CAcreateserial -days 2 -out client.crt");
    run_sh(d, "openssl req -newkey rsa:2048 -nodes -subj /CN=worker -keyout bad.key "
              "-out bad.csr && openssl x509 -req -in bad.csr -CA evil.crt -CAkey evil.key "
              "-CAcreateserial -days 2 -out bad.crt");
    for (int i = 0; i < 6; i++) {
        snprintf(f->args[i], sizeof f->args[i], "%s/%s", d,
                 (const char *[]){"server.crt", "server.key", "ca.crt", "client.crt", "client.key",
                                  "bad.crt"}[i]);
    }
    snprintf(f->args[6], sizeof f->args[6], "%s/bad.key", d);
    snprintf(f->e.work, sizeof f->e.work, "tls+tcp://localhost:%d", dt_free_port());
    const char *extra[] = {"--tls-cert", f->args[0], "--tls-key", f->args[1],
                           "--tls-ca",   f->args[2], NULL};
    dt_start(&f->e, extra);

    cs_net_tls good = {.cert = f->args[3], .key = f->args[4], .ca = f->args[2]};
    cs_net_tls bad = {.cert = f->args[5], .key = f->args[6], .ca = f->args[2]};
    cs_net_tls none = {.ca = f->args[2]};
    nng_socket g = dt_dial(f->e.work, &good);
    assert_true(dt_ready(g, NULL, 10000));
    cs_msg rep;
    assert_int_equal(dt_claim(g, "w1", NULL, 5000, &rep), CS_OK);
    assert_int_equal(rep.type, CS_MSG_JOB);
    cs_msg_fini(&rep);

    const cs_net_tls *rejected[] = {&bad, &none};
    for (size_t i = 0; i < 2; i++) {
        nng_socket b = dt_dial(f->e.work, rejected[i]);
        assert_int_not_equal(dt_claim(b, "thief", NULL, 1500, &rep), CS_OK);
        cs_msg_fini(&rep);
        nng_close(b);
    }
    assert_int_equal(dt_sql_int(f->e.db, "SELECT count(*) FROM job WHERE state = 'running'"), 1);
    nng_close(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test_setup_teardown(test_token, setup, teardown),
            cmocka_unit_test_setup_teardown(test_refuse_open_listener, setup, teardown),
            cmocka_unit_test_setup_teardown(test_tls, setup, teardown),
    };
    return cmocka_run_group_tests_name("daemon_auth", tests, NULL, NULL);
}
