/* net_test.c - cs_net: default endpoints, the listen policy, token files and constant-time
 * comparison, and a real request/reply over ipc:// with the socket made private. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cs_net.h"
#include "cs_test.h"
#include "cs_time.h"

static void test_default_url_env(void **state)
{
    (void)state;
    char *url = NULL;
    cs_err err = {0};
    setenv("CALSWEEP_CONTROL", "tcp://127.0.0.1:5999", 1);
    assert_int_equal(cs_net_default_url(CS_NET_CONTROL, &url, &err), CS_OK);
    assert_string_equal(url, "tcp://127.0.0.1:5999");
    free(url);
    unsetenv("CALSWEEP_WORK");
    setenv("XDG_RUNTIME_DIR", "/tmp", 1);
    assert_int_equal(cs_net_default_url(CS_NET_WORK, &url, &err), CS_OK);
    assert_true(strncmp(url, "ipc:///", 7) == 0);
    assert_non_null(strstr(url, "/work.sock"));
    free(url);
    unsetenv("CALSWEEP_CONTROL");
}

static void test_check_listen(void **state)
{
    (void)state;
    cs_err err = {0};
    cs_net_tls none = {0}, full = {"c.pem", "k.pem", "ca.pem"};
    assert_int_equal(cs_net_check_listen("ipc:///tmp/x.sock", false, NULL, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("ipc://rel.sock", false, NULL, false, &err), CS_EINVAL);
    assert_int_equal(cs_net_check_listen("tcp://127.0.0.1:1", false, NULL, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("tcp://localhost:1", false, NULL, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("tcp://[::1]:1", false, NULL, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("tcp://0.0.0.0:1", false, NULL, false, &err), CS_EAUTH);
    assert_non_null(strstr(err.msg, "--insecure"));
    assert_int_equal(cs_net_check_listen("tcp://*:1", false, NULL, false, &err), CS_EAUTH);
    assert_int_equal(cs_net_check_listen("tcp://10.0.0.1:1", true, NULL, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("tcp://10.0.0.1:1", false, NULL, true, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("tls+tcp://10.0.0.1:1", false, &none, false, &err),
                     CS_EAUTH);
    assert_int_equal(cs_net_check_listen("tls+tcp://10.0.0.1:1", false, &full, false, &err), CS_OK);
    assert_int_equal(cs_net_check_listen("udp://x:1", false, NULL, true, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "udp://x:1"));
}

static void test_token_file(void **state)
{
    (void)state;
    char path[] = "/tmp/cs_net_token_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "s3cret \r\nsecond line\n", 21), 21);
    close(fd);
    char *tok = NULL;
    cs_err err = {0};
    assert_int_equal(chmod(path, 0644), 0);
    assert_int_equal(cs_net_token_load(path, &tok, &err), CS_EAUTH);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(cs_net_token_load(path, &tok, &err), CS_OK);
    assert_string_equal(tok, "s3cret");
    free(tok);
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "\n", 1), 1);
    close(fd);
    assert_int_equal(cs_net_token_load(path, &tok, &err), CS_EAUTH);
    assert_non_null(strstr(err.msg, "empty"));
    unlink(path);
    assert_int_equal(cs_net_token_load(path, &tok, &err), CS_ENOENT);
}

static void test_token_eq(void **state)
{
    (void)state;
    assert_true(cs_net_token_eq("abc", "abc"));
    assert_false(cs_net_token_eq("abc", "abd"));
    assert_false(cs_net_token_eq("abc", "ab"));
    assert_false(cs_net_token_eq("abc", "abcd"));
    assert_false(cs_net_token_eq("abc", ""));
    assert_false(cs_net_token_eq("abc", NULL));
    assert_false(cs_net_token_eq(NULL, "abc"));
}

/* A REP peer answering one request with OK {"echo":<type>}. */
static void *rep_once(void *arg)
{
    nng_socket *s = arg;
    void *in = NULL;
    size_t n = 0;
    if (nng_recv(*s, &in, &n, NNG_FLAG_ALLOC) != 0) {
        return NULL;
    }
    cs_msg req, rep;
    cs_err err = {0};
    char data[64];
    char *out = NULL;
    size_t len = 0;
    if (cs_msg_decode(in, n, &req, &err) == CS_OK) {
        snprintf(data, sizeof data, "{\"echo\":\"%s\"}", cs_msg_type_name(req.type));
        cs_msg_init(&rep, CS_MSG_OK);
        rep.ok.data = data;
        if (cs_msg_encode(&rep, &out, &len, &err) == CS_OK) {
            nng_send(*s, out, len, 0);
        }
        free(out);
        cs_msg_fini(&req);
    }
    nng_free(in, n);
    return NULL;
}

static void test_ipc_roundtrip(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs_net_ipc_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128], sockpath[96];
    snprintf(sockpath, sizeof sockpath, "%s/sub/control.sock", dir);
    snprintf(url, sizeof url, "ipc://%s", sockpath);
    nng_socket rep, req;
    cs_err err = {0};
    assert_int_equal(cs_net_listen(&rep, url, NULL, &err), CS_OK);
    struct stat st;
    assert_int_equal(stat(sockpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(sockpath, sizeof sockpath, "%s/sub", dir);
    assert_int_equal(stat(sockpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, rep_once, &rep), 0);
    assert_int_equal(cs_net_dial(&req, url, NULL, 0, &err), CS_OK);
    cs_msg m, r;
    cs_msg_init(&m, CS_MSG_STATUS);
    assert_int_equal(cs_net_call(req, &m, &r, 5000, &err), CS_OK);
    assert_int_equal(r.type, CS_MSG_OK);
    assert_string_equal(r.ok.data, "{\"echo\":\"STATUS\"}");
    cs_msg_fini(&r);
    pthread_join(th, NULL);

    /* Nobody answers now: the call times out instead of hanging. */
    assert_int_equal(cs_net_call(req, &m, &r, 200, &err), CS_ETIMEDOUT);
    cs_msg_fini(&r);
    nng_close(req);
    nng_close(rep);
    snprintf(sockpath, sizeof sockpath, "%s/sub/control.sock", dir);
    unlink(sockpath);
    snprintf(sockpath, sizeof sockpath, "%s/sub", dir);
    rmdir(sockpath);
    rmdir(dir);
}

/* A REP peer that takes one request and dies without answering; with reopen, it comes back on
 * the same URL and answers the request that nng sends again. */
typedef struct dying_peer {
    nng_socket s;
    const char *url;
    bool reopen;
} dying_peer;

static void *die_after_request(void *arg)
{
    dying_peer *p = arg;
    void *in = NULL;
    size_t n = 0;
    cs_err err = {0};
    if (nng_recv(p->s, &in, &n, NNG_FLAG_ALLOC) != 0) {
        return NULL;
    }
    nng_free(in, n);
    nng_close(p->s);
    if (p->reopen && cs_net_listen(&p->s, p->url, NULL, &err) == CS_OK) {
        rep_once(&p->s);
    }
    return NULL;
}

static void test_call_watch(void **state)
{
    (void)state;
    char dir[] = "/tmp/cs_net_watch_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char url[128], path[96];
    snprintf(path, sizeof path, "%s/control.sock", dir);
    snprintf(url, sizeof url, "ipc://%s", path);
    dying_peer p = {.url = url};
    nng_socket req;
    cs_err err = {0};
    cs_msg m, r;
    pthread_t th;
    cs_msg_init(&m, CS_MSG_SUBMIT);
    m.submit.sweep = (char[]){"{}"};

    /* The peer dies and stays away: CS_ENET after about dead_ms, not the 60 s timeout. */
    assert_int_equal(cs_net_listen(&p.s, url, NULL, &err), CS_OK);
    assert_int_equal(pthread_create(&th, NULL, die_after_request, &p), 0);
    assert_int_equal(cs_net_dial(&req, url, NULL, 120000, &err), CS_OK);
    int64_t t0 = cs_time_mono_ms();
    assert_int_equal(cs_net_call_watch(req, &m, &r, 60000, 500, &err), CS_ENET);
    int64_t took = cs_time_mono_ms() - t0;
    assert_true(took >= 500 && took < 10000);
    assert_non_null(strstr(err.msg, "did not come back within 500 ms"));
    cs_msg_fini(&r);
    pthread_join(th, NULL);
    nng_close(req);

    /* It comes back within dead_ms: the request is sent again on the new connection and the
     * reply of the new peer is returned. */
    p.reopen = true;
    unlink(path);
    assert_int_equal(cs_net_listen(&p.s, url, NULL, &err), CS_OK);
    assert_int_equal(pthread_create(&th, NULL, die_after_request, &p), 0);
    assert_int_equal(cs_net_dial(&req, url, NULL, 120000, &err), CS_OK);
    assert_int_equal(cs_net_call_watch(req, &m, &r, 60000, 10000, &err), CS_OK);
    assert_int_equal(r.type, CS_MSG_OK);
    assert_string_equal(r.ok.data, "{\"echo\":\"SUBMIT\"}");
    cs_msg_fini(&r);
    pthread_join(th, NULL);
    nng_close(req);
    nng_close(p.s);
    unlink(path);
    rmdir(dir);
}

static void test_tls_needs_files(void **state)
{
    (void)state;
    nng_socket s;
    cs_err err = {0};
    cs_net_tls tls = {"/nonexistent/c.pem", "/nonexistent/k.pem", "/nonexistent/ca.pem"};
    assert_int_equal(cs_net_listen(&s, "tls+tcp://127.0.0.1:0", &tls, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/ca.pem"));
    assert_int_equal(cs_net_dial(&s, "tls+tcp://127.0.0.1:1", NULL, 0, &err), CS_EAUTH);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_default_url_env), cmocka_unit_test(test_check_listen),
            cmocka_unit_test(test_token_file),      cmocka_unit_test(test_token_eq),
            cmocka_unit_test(test_ipc_roundtrip),   cmocka_unit_test(test_call_watch),
            cmocka_unit_test(test_tls_needs_files),
    };
    return cmocka_run_group_tests_name("net", tests, NULL, NULL);
}
