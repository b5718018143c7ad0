/* calib_test.c - worker/calib on the testbed: sources (JSONL ids, plain text split at blank lines,
 * task items as plain or question/reasoning/answer text), bad input naming file:line, quotas and
 * the three compositions (n x seq_len, recorded mode, seeded), the evaluation overlap check, and
 * every selector: deterministic for a seed and changing with it, ZipCal's greedy == a brute-force
 * reading of its rule, self-calibration's exact length and EOS -> BOS continuation, stratified
 * quotas, perplexity rank against per-item log-likelihoods, and the parameter parser. */
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "cs_alloc.h"
#include "cs_calib.h"
#include "cs_json.h"
#include "cs_model.h"
#include "cs_path.h"
#include "cs_select.h"
#include "cs_source.h"
#include "cs_test.h"
#include "cs_tok.h"

typedef struct fixture {
    cs_model *m;
    cs_tok *tok;
    char dir[64];
} fixture;

static char *src_path(const char *rel)
{
    const char *root = getenv("CS_SOURCE_DIR");
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", root ? root : ".", rel), CS_OK);
    return cs_buf_take(&b);
}

static char *tmp_file(const fixture *f, const char *name, const char *content)
{
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "%s/%s", f->dir, name), CS_OK);
    FILE *fp = fopen(b.data, "w");
    assert_non_null(fp);
    fputs(content, fp);
    fclose(fp);
    return cs_buf_take(&b);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    cs_err err = {0};
    char *dir = src_path("sweeps/testbed/models/tb-llama");
    char *tp = src_path("sweeps/testbed/models/tb-llama/tokenizer.json");
    cs_rc rc = cs_model_load(&f->m, dir, 2, &err);
    if (rc == CS_OK) {
        rc = cs_tok_load(&f->tok, tp, &err);
    }
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    free(dir);
    free(tp);
    snprintf(f->dir, sizeof f->dir, "/tmp/calib_test_XXXXXX");
    if (rc != CS_OK || !mkdtemp(f->dir)) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) {
        print_error("could not remove %s\n", f->dir);
    }
    cs_model_destroy(f->m);
    cs_tok_destroy(f->tok);
    free(f);
    return 0;
}

static cs_calib_source corpus(const char *name, char **hold)
{
    char rel[128];
    snprintf(rel, sizeof rel, "sweeps/testbed/data/corpus/%s.jsonl", name);
    *hold = src_path(rel);
    return (cs_calib_source){.kind = "jsonl", .path = *hold, .name = name};
}

static cs_calib_source task(const char *file, const char *name, char **hold)
{
    char rel[128];
    snprintf(rel, sizeof rel, "sweeps/testbed/data/tasks/%s.jsonl", file);
    *hold = src_path(rel);
    return (cs_calib_source){.kind = "task", .path = *hold, .name = name};
}

static void build(const fixture *f, const cs_calib_source *s, size_t ns, cs_calib_compose mode,
                  size_t n, size_t L, uint64_t seed, cs_calib_pool *pool)
{
    cs_calib_compose_opts o;
    cs_err err = {0};
    cs_calib_compose_opts_default(&o);
    o.mode = mode;
    o.n = n;
    o.seq_len = L;
    o.seed = seed;
    cs_rc rc = cs_calib_pool_build(s, ns, f->tok, &o, pool, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
}

static bool same_ids(const cs_calib_pool *a, const cs_calib_pool *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (strcmp(a->items[i].id, b->items[i].id) != 0 ||
            a->items[i].n_tokens != b->items[i].n_tokens ||
            memcmp(a->items[i].tokens, b->items[i].tokens, a->items[i].n_tokens * 4) != 0) {
            return false;
        }
    }
    return true;
}

/* ---- sources ---- */

static void test_docs(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_calib_doc *d = NULL;
    size_t n = 0;
    char *p = tmp_file(f, "plain.txt", "First doc\nline two.\n\n\n  \nSecond doc.\n\nThird\n");
    cs_calib_source s = {.kind = "text", .path = p};
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_int_equal(n, 3);
    assert_string_equal(d[0].text, "First doc\nline two.");
    assert_string_equal(d[0].id, "p1");
    assert_string_equal(d[1].text, "Second doc.");
    assert_int_equal(d[1].line, 6);
    assert_string_equal(d[2].id, "p3");
    cs_calib_docs_destroy(d, n);
    free(p);

    p = tmp_file(f, "j.jsonl", "{\"id\":\"a\",\"body\":\"x  Y\"}\n\n{\"body\":\"z\"}\n");
    s = (cs_calib_source){.kind = "jsonl", .path = p, .text_field = "body"};
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(d[0].id, "a");
    assert_string_equal(d[0].key, "x y");
    assert_string_equal(d[1].id, "L3");
    cs_calib_docs_destroy(d, n);
    free(p);

    /* task items: plain, and qa with the reasoning chain kept */
    p = tmp_file(f, "t.jsonl",
                 "{\"id\":\"g1\",\"task\":\"g\",\"prompt\":\"Question: 2+3?\\nAnswer:\","
                 "\"answer\":\"2 plus 3 is 5. #### 5\",\"stop\":[]}\n");
    s = (cs_calib_source){.kind = "task", .path = p, .format = CS_CALIB_FMT_QA};
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_string_equal(d[0].text, "Question: 2+3?\nReasoning: 2 plus 3 is 5.\nAnswer: 5");
    cs_calib_docs_destroy(d, n);
    s.format = CS_CALIB_FMT_PLAIN;
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_string_equal(d[0].text, "Question: 2+3?\nAnswer: 2 plus 3 is 5. #### 5");
    cs_calib_docs_destroy(d, n);
    free(p);

    /* an MC context holding the chain after "Answer:" keeps it as the reasoning */
    char *hold;
    s = task("arith_mc.train", "mc", &hold);
    s.format = CS_CALIB_FMT_QA;
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_true(n > 10);
    assert_non_null(strstr(d[0].text, "\nReasoning: Emma starts with 2 stickers."));
    assert_non_null(strstr(d[0].text, "\nAnswer: 2"));
    assert_int_equal(strncmp(d[0].text, "Question: Emma has 2", 20), 0);
    cs_calib_docs_destroy(d, n);
    free(hold);
}

static void test_bad_input(void **state)
{
    fixture *f = *state;
    cs_err err = {0};
    cs_calib_doc *d = NULL;
    size_t n = 0;
    cs_calib_source s = {.kind = "jsonl", .path = "/nonexistent/calib.jsonl"};
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_ENOENT);
    assert_non_null(strstr(err.msg, "/nonexistent/calib.jsonl"));

    char *p = tmp_file(f, "bad.jsonl", "{\"text\":\"ok\"}\n{\"text\": oops}\n");
    s.path = p;
    assert_int_not_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_OK);
    assert_non_null(strstr(err.msg, "bad.jsonl:2"));
    free(p);
    p = tmp_file(f, "nofield.jsonl", "{\"text\":\"ok\"}\n{\"body\":\"x\"}\n");
    s.path = p;
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "nofield.jsonl:2"));
    assert_non_null(strstr(err.msg, "\"text\""));
    free(p);
    s.kind = "csv";
    assert_int_equal(cs_calib_source_docs(&s, &d, &n, &err), CS_EINVAL);

    /* a source too short for its share names itself */
    p = tmp_file(f, "short.txt", "tiny\n");
    cs_calib_source sh = {.kind = "text", .path = p, .name = "short"};
    cs_calib_pool pool;
    cs_calib_compose_opts o;
    cs_calib_compose_opts_default(&o);
    o.n = 4;
    o.seq_len = 64;
    assert_int_equal(cs_calib_pool_build(&sh, 1, f->tok, &o, &pool, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "'short'"));
    assert_null(pool.items);
    free(p);
    cs_calib_compose c;
    assert_int_equal(cs_calib_compose_parse("windows", &c, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "random_windows"));
}

/* ---- composition ---- */

static void test_compose(void **state)
{
    fixture *f = *state;
    char *h1, *h2;
    cs_calib_source s[2] = {corpus("prose", &h1), corpus("code", &h2)};
    const cs_calib_compose modes[] = {CS_COMPOSE_RANDOM_WINDOWS, CS_COMPOSE_CONCAT,
                                      CS_COMPOSE_PER_DOC};
    const char *prefix[] = {"prose:w", "prose:c", "prose:prose-"};
    int32_t bos = cs_tok_bos(f->tok);
    assert_true(bos >= 0);
    for (size_t k = 0; k < 3; k++) {
        cs_calib_pool a, b, c;
        cs_calib_compose_opts o;
        build(f, s, 2, modes[k], 7, 24, 5, &a);
        build(f, s, 2, modes[k], 7, 24, 5, &b);
        build(f, s, 2, modes[k], 7, 24, 6, &c);
        assert_int_equal(a.n, 7);
        assert_int_equal(a.seq_len, 24);
        assert_int_equal(a.n_sources, 2);
        size_t per[2] = {0, 0};
        for (size_t i = 0; i < a.n; i++) {
            assert_int_equal(a.items[i].n_tokens, 24);
            assert_int_equal(a.items[i].tokens[0], bos);
            per[a.items[i].source]++;
            for (size_t j = 0; j < i; j++) {
                assert_string_not_equal(a.items[i].id, a.items[j].id);
            }
        }
        /* 7 over two sources: the remainder to the first */
        assert_int_equal(per[0], 4);
        assert_int_equal(per[1], 3);
        assert_int_equal(strncmp(a.items[0].id, prefix[k], strlen(prefix[k])), 0);
        assert_true(same_ids(&a, &b));
        assert_false(same_ids(&a, &c));
        cs_calib_compose_opts_default(&o);
        o.mode = modes[k];
        o.seed = 5;
        cJSON *j = cs_calib_pool_describe(&a, s, 2, &o);
        assert_non_null(j);
        assert_string_equal(cJSON_GetObjectItem(j, "composition")->valuestring,
                            cs_calib_compose_name(modes[k]));
        assert_int_equal(cJSON_GetObjectItem(j, "seq_len")->valueint, 24);
        assert_int_equal(cJSON_GetObjectItem(
                                 cJSON_GetArrayItem(cJSON_GetObjectItem(j, "sources"), 1), "items")
                                 ->valueint,
                         3);
        cJSON_Delete(j);
        cs_calib_pool_fini(&a);
        cs_calib_pool_fini(&b);
        cs_calib_pool_fini(&c);
    }
    /* explicit quotas: prose 5, code takes the rest */
    s[0].quota = 5;
    cs_calib_pool q;
    build(f, s, 2, CS_COMPOSE_RANDOM_WINDOWS, 6, 16, 0, &q);
    assert_int_equal(q.items[4].source, 0);
    assert_int_equal(q.items[5].source, 1);
    cs_calib_pool_fini(&q);
    /* quotas above n are refused */
    s[0].quota = 9;
    cs_calib_compose_opts o;
    cs_err err = {0};
    cs_calib_compose_opts_default(&o);
    o.n = 6;
    assert_int_equal(cs_calib_pool_build(s, 2, f->tok, &o, &q, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "quotas"));
    free(h1);
    free(h2);
}

/* ---- overlap ---- */

static void test_overlap(void **state)
{
    fixture *f = *state;
    static const char *const tasks[] = {"arith_gen", "arith_mc",    "code_mc",
                                        "facts_mc",  "prose_cause", "prose_work"};
    char *evals[6], *trains[12];
    cs_calib_source src[12];
    cs_err err = {0};
    for (size_t i = 0; i < 6; i++) {
        char rel[128];
        snprintf(rel, sizeof rel, "sweeps/testbed/data/tasks/%s.eval.jsonl", tasks[i]);
        evals[i] = src_path(rel);
        snprintf(rel, sizeof rel, "%s.train", tasks[i]);
        src[i] = task(rel, tasks[i], &trains[i]);
        snprintf(rel, sizeof rel, "%s.ref", tasks[i]);
        src[6 + i] = task(rel, tasks[i], &trains[6 + i]);
    }
    /* the testbed's train and reference splits do not overlap its eval splits */
    cs_rc rc = cs_calib_check_overlap(src, 12, (const char *const *)evals, 6, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);

    /* a train file holding an eval item under another id: refused by text */
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(cs_path_read_file(evals[1], 1 << 24, &text, &len, &err), CS_OK);
    char *l2 = strchr(text, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
    *strchr(l3, '\n') = '\0';
    cJSON *o = cJSON_Parse(l3);
    cJSON_ReplaceItemInObject(o, "id", cJSON_CreateString("renamed-train-7"));
    char *line = cJSON_PrintUnformatted(o);
    cs_buf b;
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b,
                                   "{\"id\":\"t0\",\"task\":\"arith_mc\",\"context\":\"Question: "
                                   "unrelated\",\"choices\":[\"a\",\"b\"],\"gold\":0}\n%s\n",
                                   line),
                     CS_OK);
    char *bad = tmp_file(f, "overlap.train.jsonl", b.data);
    cs_calib_source bs = {.kind = "task", .path = bad, .name = "bad"};
    const char *ev[1] = {evals[1]};
    assert_int_equal(cs_calib_check_overlap(&bs, 1, ev, 1, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "same text"));
    assert_non_null(strstr(err.msg, "overlap.train.jsonl:2"));
    assert_non_null(strstr(err.msg, "arith_mc.eval.jsonl:3"));
    assert_null(strstr(err.msg, "renamed-train-7")); /* positions only, never the file's text */
    free(bad);
    /* the eval file itself as a source: refused by id, first item */
    bs.path = evals[1];
    assert_int_equal(cs_calib_check_overlap(&bs, 1, ev, 1, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "same id"));
    assert_non_null(strstr(err.msg, "arith_mc.eval.jsonl:1 = "));
    assert_null(strstr(err.msg, "arith_mc-eval-0000"));
    /* a plain corpus document equal to an eval item's text */
    cs_buf_fini(&b);
    cs_buf_init(&b);
    assert_int_equal(cs_buf_printf(&b, "Intro text.\n\n%s\n",
                                   cJSON_GetObjectItem(o, "context")->valuestring),
                     CS_OK);
    bad = tmp_file(f, "plain_overlap.txt", b.data);
    cs_calib_source ps = {.kind = "text", .path = bad};
    assert_int_equal(cs_calib_check_overlap(&ps, 1, ev, 1, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "plain_overlap.txt:3"));
    free(bad);
    cs_buf_fini(&b);
    cJSON_Delete(o);
    free(line);
    free(text);
    for (size_t i = 0; i < 6; i++) {
        free(evals[i]);
    }
    for (size_t i = 0; i < 12; i++) {
        free(trains[i]);
    }
}

/* ---- selectors ---- */

static void run_sel(const fixture *f, const cs_select_params *p, const cs_calib_pool *pool,
                    cs_calib_selection *s)
{
    cs_err err = {0};
    cs_rc rc = cs_select_run(p, pool, f->m, f->tok, NULL, NULL, s, &err);
    if (rc != CS_OK) {
        print_error("%s\n", err.msg);
    }
    assert_int_equal(rc, CS_OK);
    assert_non_null(s->diag);
    assert_string_equal(cJSON_GetObjectItem(s->diag, "selector")->valuestring,
                        cs_select_name(p->kind));
    assert_non_null(cJSON_GetObjectItem(s->diag, "forward_s"));
    assert_non_null(cJSON_GetObjectItem(s->diag, "select_s"));
}

static bool same_sel(const cs_calib_selection *a, const cs_calib_selection *b)
{
    if (a->n != b->n) {
        return false;
    }
    for (size_t i = 0; i < a->n; i++) {
        if (a->index && a->index[i] != b->index[i]) {
            return false;
        }
        if (a->generated && (a->generated[i].n_tokens != b->generated[i].n_tokens ||
                             memcmp(a->generated[i].tokens, b->generated[i].tokens,
                                    a->generated[i].n_tokens * sizeof(int32_t)) != 0)) {
            return false;
        }
    }
    return true;
}

/* Runs p with seeds s, s and s+1 (and s+2): the first two agree, a later one differs. */
static void check_seeds(const fixture *f, cs_select_params *p, const cs_calib_pool *pool)
{
    cs_calib_selection a, b, c;
    run_sel(f, p, pool, &a);
    run_sel(f, p, pool, &b);
    assert_true(same_sel(&a, &b));
    bool differs = false;
    for (uint64_t d = 1; d <= 3 && !differs; d++) {
        p->seed += 1;
        run_sel(f, p, pool, &c);
        differs = !same_sel(&a, &c);
        cs_calib_selection_fini(&c);
    }
    assert_true(differs);
    for (size_t i = 0; a.index && i < a.n; i++) {
        assert_true(a.index[i] < pool->n);
        for (size_t j = 0; j < i; j++) {
            assert_int_not_equal(a.index[i], a.index[j]);
        }
    }
    cs_calib_selection_fini(&a);
    cs_calib_selection_fini(&b);
}

static void test_random(void **state)
{
    fixture *f = *state;
    char *h[3];
    cs_calib_source s[3] = {corpus("prose", &h[0]), corpus("arith", &h[1]), corpus("facts", &h[2])};
    cs_calib_pool pool;
    s[0].quota = 20;
    s[1].quota = 10;
    s[2].quota = 10;
    build(f, s, 3, CS_COMPOSE_RANDOM_WINDOWS, 40, 16, 1, &pool);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_RANDOM);
    p.n = 8;
    check_seeds(f, &p, &pool);
    /* stratified: 8 over 3 sources = 3, 3, 2 */
    p.stratified = true;
    p.seed = 0;
    check_seeds(f, &p, &pool);
    cs_calib_selection a;
    run_sel(f, &p, &pool, &a);
    size_t per[3] = {0, 0, 0};
    for (size_t i = 0; i < a.n; i++) {
        per[pool.items[a.index[i]].source]++;
    }
    assert_int_equal(per[0], 3);
    assert_int_equal(per[1], 3);
    assert_int_equal(per[2], 2);
    cJSON *ps = cJSON_GetObjectItem(a.diag, "per_source");
    assert_int_equal(cJSON_GetArraySize(ps), 3);
    cs_calib_selection_fini(&a);
    /* a stratum smaller than its share */
    p.n = 35;
    cs_err err = {0};
    assert_int_equal(cs_select_run(&p, &pool, NULL, NULL, NULL, NULL, &a, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "arith"));
    cs_calib_pool_fini(&pool);
    for (size_t i = 0; i < 3; i++) {
        free(h[i]);
    }
}

static void test_self_calibration(void **state)
{
    fixture *f = *state;
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_SELF_CALIBRATION);
    p.n = 3;
    p.seq_len = 33;
    p.t_init = 1.5;
    p.t_final = 0.8;
    p.n_sched = 5;
    int32_t bos = cs_tok_bos(f->tok);
    check_seeds(f, &p, NULL);
    cs_calib_selection a;
    run_sel(f, &p, NULL, &a);
    assert_int_equal(a.n, 3);
    assert_null(a.index);
    for (size_t k = 0; k < a.n; k++) {
        char id[16];
        snprintf(id, sizeof id, "gen:%zu", k);
        assert_string_equal(a.generated[k].id, id);
        assert_int_equal(a.generated[k].n_tokens, 33);
        assert_int_equal(a.generated[k].tokens[0], bos);
    }
    cs_calib_selection_fini(&a);

    /* t = 0 everywhere: argmax, the same sequence whatever the seed */
    cs_calib_selection g0, g1;
    p.t_init = p.t_final = 0.0;
    run_sel(f, &p, NULL, &g0);
    p.seed = 99;
    run_sel(f, &p, NULL, &g1);
    assert_true(same_sel(&g0, &g1));
    assert_memory_equal(g0.generated[0].tokens, g0.generated[1].tokens, 33 * sizeof(int32_t));
    cs_calib_selection_fini(&g0);
    cs_calib_selection_fini(&g1);

    /* EOS -> BOS: a large bias on EOS makes every generation end at once; the sequence goes on
     * BOS EOS BOS EOS ... to exactly seq_len tokens */
    const int32_t eos = f->m->cfg.n_eos ? f->m->cfg.eos[0] : cs_tok_eos(f->tok);
    assert_true(eos >= 0);
    float *bias = calloc(f->m->cfg.vocab, sizeof(float));
    bias[eos] = 1e4f;
    f->m->lm_head.b = bias;
    p.t_init = p.t_final = 1.0;
    p.seq_len = 10;
    run_sel(f, &p, NULL, &a);
    f->m->lm_head.b = NULL;
    free(bias);
    for (size_t t = 0; t < 10; t++) {
        assert_int_equal(a.generated[0].tokens[t], t % 2 ? eos : bos);
    }
    assert_int_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(a.diag, "eos_restarts"), 0)->valueint,
                     4);
    cs_calib_selection_fini(&a);
}

static void test_self_gen(void **state)
{
    fixture *f = *state;
    char *h;
    cs_calib_source s = corpus("prose", &h);
    cs_calib_pool pool;
    build(f, &s, 1, CS_COMPOSE_RANDOM_WINDOWS, 12, 16, 0, &pool);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_SELF_GEN);
    p.n = 3;
    p.prefix_texts = 10;
    p.seq_len = 20;
    check_seeds(f, &p, &pool);
    cs_calib_selection a;
    run_sel(f, &p, &pool, &a);
    int32_t bos = cs_tok_bos(f->tok);
    cJSON *pref = cJSON_GetObjectItem(a.diag, "prefix_of");
    cJSON *ppl = cJSON_GetObjectItem(a.diag, "ppl");
    double thr = cJSON_GetObjectItem(a.diag, "ppl_threshold")->valuedouble;
    assert_int_equal(cJSON_GetObjectItem(a.diag, "generated")->valueint, 10);
    /* the 80th percentile of 10 values by linear interpolation leaves 8 strictly below it (when
     * the generations' perplexities are distinct) */
    assert_int_equal(cJSON_GetObjectItem(a.diag, "survivors")->valueint, 8);
    for (size_t k = 0; k < a.n; k++) {
        const cs_calib_item *g = &a.generated[k];
        assert_true(g->n_tokens >= 4 && g->n_tokens <= 20);
        assert_int_equal(g->tokens[0], bos);
        assert_true(cJSON_GetArrayItem(ppl, (int)k)->valuedouble < thr);
        /* the prefix is the first 2 text tokens of the named pool item */
        const char *pid = cJSON_GetArrayItem(pref, (int)k)->valuestring;
        size_t j = 0;
        while (j < pool.n && strcmp(pool.items[j].id, pid) != 0) {
            j++;
        }
        assert_true(j < pool.n);
        assert_memory_equal(g->tokens + 1, pool.items[j].tokens + 1, 2 * sizeof(int32_t));
    }
    cs_calib_selection_fini(&a);
    /* more survivors wanted than exist */
    p.n = 9;
    cs_err err = {0};
    assert_int_equal(cs_select_run(&p, &pool, f->m, f->tok, NULL, NULL, &a, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "raise m"));
    cs_calib_pool_fini(&pool);
    free(h);
}

/* The rule read literally, on bitmask sets: each step, among the search set, the largest
 * popcount(C & ~covered), then the largest popcount(C), then the lowest index. The search set is
 * drawn as cs_zipcal_greedy draws it (a shuffle of the remaining items in index order). */
static void brute_zipcal(const uint64_t *mask, size_t n_items, size_t n, size_t cap, uint64_t seed,
                         size_t *out)
{
    uint64_t covered = 0;
    size_t rem[64], nrem = n_items, search[64];
    cs_rng rng;
    cs_rng_seed(&rng, seed);
    for (size_t i = 0; i < n_items; i++) {
        rem[i] = i;
    }
    for (size_t s = 0; s < n; s++) {
        size_t ns = nrem;
        memcpy(search, rem, nrem * sizeof(size_t));
        if (nrem > cap) {
            cs_rng_shuffle(&rng, search, nrem);
            ns = cap;
        }
        size_t best = 0;
        int bg = -1, bs = -1;
        for (size_t c = 0; c < ns; c++) {
            size_t i = search[c];
            int g = __builtin_popcountll(mask[i] & ~covered), sz = __builtin_popcountll(mask[i]);
            if (g > bg || (g == bg && (sz > bs || (sz == bs && i < best)))) {
                best = i;
                bg = g;
                bs = sz;
            }
        }
        out[s] = best;
        covered |= mask[best];
        size_t w = 0;
        for (size_t r = 0; r < nrem; r++) {
            if (rem[r] != best) {
                rem[w++] = rem[r];
            }
        }
        nrem = w;
    }
}

static void test_zipcal_brute(void **state)
{
    (void)state;
    cs_rng rng;
    cs_rng_seed(&rng, 42);
    for (int trial = 0; trial < 200; trial++) {
        size_t n_items = 1 + (size_t)cs_rng_below(&rng, 24);
        size_t n = 1 + (size_t)cs_rng_below(&rng, n_items);
        size_t cap = trial % 3 == 0 ? 1 + (size_t)cs_rng_below(&rng, n_items) : 2000;
        uint64_t mask[64];
        uint32_t sets[64][64];
        const uint32_t *sp[64];
        size_t sn[64], got[64], want[64], gain[64];
        size_t n_classes = 4 + (size_t)cs_rng_below(&rng, 40);
        for (size_t i = 0; i < n_items; i++) {
            mask[i] = 0;
            sn[i] = 0;
            /* small sets over few classes: many ties */
            size_t k = (size_t)cs_rng_below(&rng, 6);
            for (size_t j = 0; j < k; j++) {
                mask[i] |= UINT64_C(1) << cs_rng_below(&rng, n_classes);
            }
            for (uint32_t c = 0; c < 64; c++) {
                if (mask[i] >> c & 1) {
                    sets[i][sn[i]++] = c;
                }
            }
            sp[i] = sets[i];
        }
        uint64_t seed = cs_rng_u64(&rng);
        cs_err err = {0};
        assert_int_equal(cs_zipcal_greedy(sp, sn, n_items, 64, n, cap, seed, got, gain, &err),
                         CS_OK);
        brute_zipcal(mask, n_items, n, cap, seed, want);
        assert_memory_equal(got, want, n * sizeof(size_t));
        /* and with the full search set, every pick has the largest gain of the remaining */
        if (cap >= n_items) {
            uint64_t cov = 0;
            for (size_t s = 0; s < n; s++) {
                for (size_t i = 0; i < n_items; i++) {
                    bool used = false;
                    for (size_t t = 0; t < s; t++) {
                        used = used || got[t] == i;
                    }
                    if (!used) {
                        assert_true(__builtin_popcountll(mask[i] & ~cov) <= (int)gain[s]);
                    }
                }
                assert_int_equal(__builtin_popcountll(mask[got[s]] & ~cov), gain[s]);
                cov |= mask[got[s]];
            }
        }
    }
}

static void test_kcenter(void **state)
{
    (void)state;
    /* points on a line: 0, 1, 10, 11, 5 -> centers 0 (first), 11 (farthest), then 5 */
    const float x[] = {0, 1, 10, 11, 5};
    size_t out[3];
    cs_err err = {0};
    assert_int_equal(cs_kcenter_greedy(x, 5, 1, 3, out, &err), CS_OK);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 3);
    assert_int_equal(out[2], 4);
    assert_int_equal(cs_kcenter_greedy(x, 5, 1, 6, out, &err), CS_EINVAL);
}

static void test_zipcal(void **state)
{
    fixture *f = *state;
    char *h[2];
    cs_calib_source s[2] = {corpus("prose", &h[0]), corpus("code", &h[1])};
    cs_calib_pool one, two;
    build(f, s, 1, CS_COMPOSE_RANDOM_WINDOWS, 30, 32, 3, &one);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_ZIPCAL);
    p.n = 6;
    p.search_limit = 10; /* fewer than the pool: the seed picks the search sets */
    check_seeds(f, &p, &one);
    /* without the cap the rule is deterministic whatever the seed, and the first pick covers the
     * most distinct normalized tokens */
    p.search_limit = 2000;
    cs_calib_selection a, b;
    run_sel(f, &p, &one, &a);
    p.seed = 77;
    run_sel(f, &p, &one, &b);
    assert_true(same_sel(&a, &b));
    cJSON *per = cJSON_GetArrayItem(cJSON_GetObjectItem(a.diag, "per_source"), 0);
    cJSON *gains = cJSON_GetObjectItem(per, "gains");
    for (int k = 1; k < cJSON_GetArraySize(gains); k++) {
        assert_true(cJSON_GetArrayItem(gains, k)->valueint <=
                    cJSON_GetArrayItem(gains, k - 1)->valueint);
    }
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(a.diag, "kcenter")));
    cs_calib_selection_fini(&a);
    cs_calib_selection_fini(&b);

    /* two sources: 6 each, then k-center down to 6 */
    build(f, s, 2, CS_COMPOSE_RANDOM_WINDOWS, 30, 32, 3, &two);
    p.seed = 0;
    p.search_limit = 8;
    check_seeds(f, &p, &two);
    run_sel(f, &p, &two, &a);
    assert_int_equal(a.n, 6);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(a.diag, "kcenter")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(a.diag, "per_source")), 2);
    cs_calib_selection_fini(&a);
    /* the model is needed for the embeddings */
    cs_err err = {0};
    assert_int_equal(cs_select_run(&p, &two, NULL, f->tok, NULL, NULL, &a, &err), CS_EINVAL);
    assert_non_null(strstr(err.msg, "embeddings"));
    cs_calib_pool_fini(&one);
    cs_calib_pool_fini(&two);
    free(h[0]);
    free(h[1]);
}

static void test_ppl(void **state)
{
    fixture *f = *state;
    char *h[2];
    cs_calib_source s[2] = {corpus("prose", &h[0]), corpus("code", &h[1])};
    cs_calib_pool pool, pool2;
    build(f, s, 2, CS_COMPOSE_RANDOM_WINDOWS, 12, 20, 0, &pool);
    /* reference: each item alone */
    double nll[12], lp[20];
    cs_err err = {0};
    for (size_t i = 0; i < pool.n; i++) {
        assert_int_equal(cs_model_logprobs(f->m, pool.items[i].tokens, 1, 20, NULL, lp, &err),
                         CS_OK);
        nll[i] = 0;
        for (size_t t = 0; t < 19; t++) {
            nll[i] -= lp[t] / 19.0;
        }
    }
    const cs_ppl_mode modes[] = {CS_PPL_LOW, CS_PPL_MID, CS_PPL_HIGH};
    double sorted[12];
    memcpy(sorted, nll, sizeof nll);
    for (size_t i = 0; i < 12; i++) {
        for (size_t j = i + 1; j < 12; j++) {
            if (sorted[j] < sorted[i]) {
                double t = sorted[i];
                sorted[i] = sorted[j];
                sorted[j] = t;
            }
        }
    }
    double med = 0.5 * (sorted[5] + sorted[6]);
    for (size_t k = 0; k < 3; k++) {
        cs_select_params p;
        cs_select_params_default(&p, CS_SEL_PPL_RANK);
        p.n = 4;
        p.mode = modes[k];
        p.batch = 5; /* batches of 5, 5, 2: padding does not change the scores */
        cs_calib_selection a, b;
        run_sel(f, &p, &pool, &a);
        p.seed = 1234;
        run_sel(f, &p, &pool, &b);
        assert_true(same_sel(&a, &b));
        for (size_t i = 0; i < a.n; i++) {
            double ki = nll[a.index[i]];
            assert_float_equal(
                    cJSON_GetArrayItem(cJSON_GetObjectItem(a.diag, "nll"), (int)i)->valuedouble, ki,
                    1e-4);
            /* every chosen item ranks before every item left out */
            for (size_t j = 0; j < pool.n; j++) {
                bool chosen = false;
                for (size_t t = 0; t < a.n; t++) {
                    chosen = chosen || a.index[t] == j;
                }
                if (chosen) {
                    continue;
                }
                double kj = nll[j];
                if (modes[k] == CS_PPL_LOW) {
                    assert_true(ki <= kj + 1e-4);
                } else if (modes[k] == CS_PPL_HIGH) {
                    assert_true(ki >= kj - 1e-4);
                } else {
                    assert_true(fabs(ki - med) <= fabs(kj - med) + 1e-4);
                }
            }
        }
        cs_calib_selection_fini(&a);
        cs_calib_selection_fini(&b);
    }
    /* the selection follows the pool's seed */
    build(f, s, 2, CS_COMPOSE_RANDOM_WINDOWS, 12, 20, 1, &pool2);
    cs_select_params p;
    cs_select_params_default(&p, CS_SEL_PPL_RANK);
    p.n = 4;
    cs_calib_selection a, b;
    run_sel(f, &p, &pool, &a);
    run_sel(f, &p, &pool2, &b);
    bool differ = false;
    for (size_t i = 0; i < 4; i++) {
        differ = differ || strcmp(pool.items[a.index[i]].id, pool2.items[b.index[i]].id) != 0;
    }
    assert_true(differ);
    cs_calib_selection_fini(&a);
    cs_calib_selection_fini(&b);
    cs_calib_pool_fini(&pool);
    cs_calib_pool_fini(&pool2);
    free(h[0]);
    free(h[1]);
}

static void test_params(void **state)
{
    (void)state;
    cs_select_params p;
    cs_err err = {0};
    /* the spec's defaults */
    assert_int_equal(cs_select_params_parse_str("self_gen", &p, &err), CS_OK);
    assert_int_equal(p.kind, CS_SEL_SELF_GEN);
    assert_int_equal(p.n, 128);
    assert_int_equal(p.prefix_texts, 5000);
    assert_int_equal(p.prefix_tokens, 2);
    assert_int_equal(p.top_k, 50);
    assert_float_equal(p.temperature, 0.6, 1e-12);
    assert_float_equal(p.top_p, 0.95, 1e-12);
    assert_float_equal(p.repetition_penalty, 1.2, 1e-12);
    assert_float_equal(p.ppl_quantile, 0.8, 1e-12);
    assert_int_equal(cs_select_params_parse_str("self_calibration", &p, &err), CS_OK);
    assert_float_equal(p.t_init, 1.0, 0);
    assert_float_equal(p.t_final, 1.0, 0);
    assert_int_equal(p.n_sched, 10);
    assert_int_equal(p.seq_len, 2048);
    assert_int_equal(cs_select_params_parse_str("zipcal", &p, &err), CS_OK);
    assert_int_equal(p.search_limit, 2000);
    assert_int_equal(
            cs_select_params_parse_str("{\"name\":\"ppl_rank\",\"mode\":\"high\"}", &p, &err),
            CS_OK);
    assert_int_equal(p.mode, CS_PPL_HIGH);
    assert_int_equal(p.n, 128);
    /* round trip through the JSON record (the table's keys; n and seed are the job's) */
    cJSON *j = cs_select_params_json(&p);
    cs_select_params q = p;
    assert_int_equal(cs_select_params_parse(j, "x", true, &q, &err), CS_OK);
    assert_memory_equal(&p, &q, sizeof p);
    cJSON_Delete(j);

    /* errors name the path */
    cJSON *o = cJSON_Parse("{\"name\":\"zipcal\",\"temprature\":1}");
    assert_int_equal(cs_select_params_parse(o, "calibration.selector", false, &p, &err),
                     CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "calibration.selector.temprature"));
    assert_non_null(strstr(err.msg, "unknown key"));
    cJSON_Delete(o);
    /* a key of another selector is unknown here */
    assert_int_equal(
            cs_select_params_parse_str("{\"name\":\"random\",\"search_limit\":5}", &p, &err),
            CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.search_limit"));
    assert_int_equal(
            cs_select_params_parse_str("{\"name\":\"zipcal\",\"search_limit\":1.5}", &p, &err),
            CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.search_limit: expected an integer"));
    assert_int_equal(
            cs_select_params_parse_str("{\"name\":\"ppl_rank\",\"mode\":\"median\"}", &p, &err),
            CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.mode"));
    assert_int_equal(cs_select_params_parse_str("kmeans", &p, &err), CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector: unknown selector \"kmeans\""));
    assert_non_null(strstr(err.msg, "cola, acdm, ppl_rank, covercal"));
    /* COLA, ACDM and CoverCal: the spec's defaults, and a round trip */
    assert_int_equal(cs_select_params_parse_str("cola", &p, &err), CS_OK);
    assert_int_equal(p.proj_dim, 64);
    assert_int_equal(p.n_init, 10);
    assert_int_equal(p.max_iter, 300);
    assert_float_equal(p.tol, 1e-4, 1e-15);
    assert_int_equal(cs_select_params_parse_str("covercal", &p, &err), CS_OK);
    assert_float_equal(p.outlier_factor, 6.0, 0);
    assert_float_equal(p.cover_frac, 0.5, 0);
    assert_int_equal(cs_select_params_parse_str("acdm", &p, &err), CS_OK);
    assert_int_equal(p.n_ref, 64);
    assert_int_equal(p.acdm_stat, CS_ACDM_MEAN);
    assert_int_equal(p.acdm_mode, CS_ACDM_QUOTA);
    assert_int_equal(
            cs_select_params_parse_str(
                    "{\"name\":\"acdm\",\"stat\":\"absmean\",\"mode\":\"minimax\",\"n_ref\":8}", &p,
                    &err),
            CS_OK);
    assert_int_equal(p.acdm_stat, CS_ACDM_ABSMEAN);
    assert_int_equal(p.acdm_mode, CS_ACDM_MINIMAX);
    j = cs_select_params_json(&p);
    q = p;
    assert_int_equal(cs_select_params_parse(j, "x", true, &q, &err), CS_OK);
    assert_memory_equal(&p, &q, sizeof p);
    assert_string_equal(cJSON_GetObjectItem(j, "mode")->valuestring, "minimax");
    cJSON_Delete(j);
    assert_int_equal(cs_select_params_parse_str("{\"name\":\"acdm\",\"stat\":\"max\"}", &p, &err),
                     CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.stat"));
    assert_int_equal(
            cs_select_params_parse_str("{\"name\":\"covercal\",\"cover_frac\":1.5}", &p, &err),
            CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.cover_frac"));
    assert_int_equal(cs_select_params_parse_str("{\"name\":\"cola\",\"stat\":\"mean\"}", &p, &err),
                     CS_ESCHEMA);
    assert_non_null(strstr(err.msg, "selector.stat: unknown key"));
    assert_int_not_equal(cs_select_params_parse_str("{\"name\":", &p, &err), CS_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
            cmocka_unit_test(test_docs),     cmocka_unit_test(test_bad_input),
            cmocka_unit_test(test_compose),  cmocka_unit_test(test_overlap),
            cmocka_unit_test(test_random),   cmocka_unit_test(test_self_calibration),
            cmocka_unit_test(test_self_gen), cmocka_unit_test(test_zipcal_brute),
            cmocka_unit_test(test_kcenter),  cmocka_unit_test(test_zipcal),
            cmocka_unit_test(test_ppl),      cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
