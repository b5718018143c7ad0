/* testbed_suite.c - writes the testbed's default evaluation suite (data/suite/).
 *
 * The small task splits of testbed_gen.c (200 items each) cannot resolve the half-point effects
 * that calibration papers report, and two of them are saturated. The suite holds thousands of
 * items per task, each task tuned so that both testbed models score between 35 % and 90 %
 * unquantized (sweeps/testbed/README.md, "The default eval suite"). Its items come from the same
 * world as the corpora: prose tasks state a fact of the world in an order or wording that the
 * corpus never uses (the models learned the rules in the corpus's own order), arithmetic and code
 * are fresh problems of the corpus's kinds, and facts are asked in the five wordings of the facts
 * corpus that the models do not already get right 98-100 % of the time.
 *
 * The suite is drawn from its own cs_rng stream (seed XOR SUITE_SEED_SALT), after the corpora, so
 * nothing that testbed_gen.c wrote before changes. Per task: SUITE_N_EVAL evaluation items (the
 * default limit; there is no train-side split), no two alike (item_key), no arithmetic question or
 * program of the corpora. Each item's id ends with its unit: the piece of the world its answer
 * depends on (a state, a profession, an arithmetic problem, a program up to its variable names,
 * one fact), which is what a cluster-robust standard error groups by (../suite_stats.sh).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testbed_gen.h"

enum {
    SUITE_N_EVAL = 6000,
    SUITE_DRAWS_PER_ITEM = 10000, /* draws of one item before giving up */
};

#define SUITE_SEED_SALT 0x5375697465313400ULL /* "Suite14\0" */

typedef enum suite_task {
    SUITE_PROSE_STATE,
    SUITE_PROSE_ROLE,
    SUITE_ARITH,
    SUITE_CODE,
    SUITE_FACTS,
    N_SUITE_TASKS
} suite_task;

static const char *const k_suite_names[N_SUITE_TASKS] = {"prose_state", "prose_role", "arith_chain",
                                                         "code_output", "facts_recall"};

/* One drawn item: the context, its unit and the choices. */
typedef struct suite_item {
    cs_buf ctx;
    cs_buf unit;
    tb_mc mc;
} suite_item;

/* ---------------------------------------------------------------- prose */

/* A person other than a and b (either may be NULL). */
static const tb_person *other_person(cs_rng *r, const tb_person *a, const tb_person *b)
{
    const tb_person *p;
    do {
        p = &tb_people[tb_pick(r, TB_N_PEOPLE)];
    } while (p == a || p == b);
    return p;
}

/* The start of a corpus story, as prose documents tell it: p's profession f and workday, then
 * maybe the weather, then maybe the meeting with q (profession f2); *met says whether it did. */
static cs_rc story_start(cs_rng *r, cs_buf *b, const tb_person *p, const tb_person *q, bool *met)
{
    const tb_prof *f = &tb_profs[tb_pick(r, TB_N_PROFS)];
    const tb_prof *f2 = &tb_profs[tb_pick(r, TB_N_PROFS)];
    const tb_pair *w = &tb_weathers[tb_pick(r, TB_N_WEATHERS)];
    cs_rc rc = tb_prose_intro(r, b, p, f);
    if (rc == CS_OK) {
        rc = cs_buf_printf(b, " Every morning %s goes to the %s, where %s %s.", p->pron, f->place,
                           p->pron, f->act);
    }
    if (rc == CS_OK && tb_chance(r, 50)) {
        rc = cs_buf_printf(b, " The weather was %s, so %s %s.", w->a, p->name, w->b);
    }
    *met = tb_chance(r, 50);
    if (rc == CS_OK && *met) {
        rc = cs_buf_printf(b, " Later, %s met %s at the %s. %s is a %s, and %s %s every day.",
                           p->name, q->name, f2->place, q->name, f2->prof, q->pron, f2->act);
    }
    return rc;
}

/* prose_state: a state of the story's person (or of the person met), then what that person did
 * about it, in wordings the corpus never uses ("X was S, so she R" is its only one). */
static cs_rc item_prose_state(cs_rng *r, suite_item *it, cs_err *err)
{
    const tb_person *p = &tb_people[tb_pick(r, TB_N_PEOPLE)];
    const tb_person *q = other_person(r, p, NULL);
    const char *pool[TB_N_STATES];
    bool met = false;
    cs_rc rc = story_start(r, &it->ctx, p, q, &met);
    const tb_person *s = met && tb_chance(r, 50) ? q : p;
    const tb_pair *st = &tb_states[tb_pick(r, TB_N_STATES)];
    size_t wording = tb_pick(r, 4);
    if (rc == CS_OK && wording == 0) {
        rc = cs_buf_printf(&it->ctx, " One day %s was %s. %s", s->name, st->a, s->cap);
    } else if (rc == CS_OK && wording == 1) {
        rc = cs_buf_printf(&it->ctx, " One day %s was %s. So %s", s->name, st->a, s->pron);
    } else if (rc == CS_OK && wording == 2) {
        rc = cs_buf_printf(&it->ctx, " Because %s was %s, %s", s->name, st->a, s->pron);
    } else if (rc == CS_OK) {
        rc = cs_buf_printf(&it->ctx, " When %s was %s, %s", s->name, st->a, s->pron);
    }
    for (size_t i = 0; i < TB_N_STATES; i++) {
        pool[i] = tb_states[i].b;
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(&it->unit, st->a);
    }
    return rc == CS_OK ? tb_mc_fill(r, &it->mc, st->b, pool, TB_N_STATES, err) : rc;
}

/* prose_role: a third person's workplace and work, then the profession, which the corpus always
 * states first ("X is a pilot. Every morning she goes to the airport, where she flies planes."). */
static cs_rc item_prose_role(cs_rng *r, suite_item *it, cs_err *err)
{
    const tb_person *p = &tb_people[tb_pick(r, TB_N_PEOPLE)];
    const tb_person *q = other_person(r, p, NULL);
    const tb_person *x = other_person(r, p, q);
    const char *pool[TB_N_PROFS];
    bool met = false;
    cs_rc rc = story_start(r, &it->ctx, p, q, &met);
    const tb_prof *f = &tb_profs[tb_pick(r, TB_N_PROFS)];
    size_t wording = tb_pick(r, 3);
    if (rc == CS_OK && wording == 0) {
        rc = cs_buf_printf(&it->ctx, " Every morning %s goes to the %s, where %s %s. %s is a",
                           x->name, f->place, x->pron, f->act, x->name);
    } else if (rc == CS_OK && wording == 1) {
        rc = cs_buf_printf(&it->ctx, " At the %s, %s %s. %s is a", f->place, x->name, f->act,
                           x->name);
    } else if (rc == CS_OK) {
        rc = cs_buf_printf(&it->ctx,
                           " Then %s met %s. Every morning %s goes to the %s, where %s %s. %s is a",
                           p->name, x->name, x->pron, f->place, x->pron, f->act, x->name);
    }
    for (size_t i = 0; i < TB_N_PROFS; i++) {
        pool[i] = tb_profs[i].prof;
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(&it->unit, f->prof);
    }
    return rc == CS_OK ? tb_mc_fill(r, &it->mc, f->prof, pool, TB_N_PROFS, err) : rc;
}

/* ---------------------------------------------------------------- arithmetic and code */

/* arith_chain: a fresh word problem of the corpus's kinds (none of the corpus's questions), the
 * reasoning up to its last " =", the answer among near misses. Unit: the operation and the
 * question's numbers ("add-3-5"), whatever the names and things. */
static cs_rc item_arith(const tb_gen *g, cs_rng *r, suite_item *it, size_t *redrawn, cs_err *err)
{
    tb_arith a = {0};
    cs_rc rc = CS_OK;
    do {
        rc = tb_arith_make(r, &a);
        *redrawn += rc == CS_OK && tb_set_has(&g->corpus_keys, a.q.data);
    } while (rc == CS_OK && tb_set_has(&g->corpus_keys, a.q.data));
    if (rc == CS_OK) {
        rc = cs_buf_printf(&it->ctx, "Question: %s\nAnswer: %s", a.q.data, a.chain.data);
    }
    if (rc == CS_OK) {
        bool add = strstr(a.chain.data, " + ") != NULL, sub = strstr(a.chain.data, " - ") != NULL;
        rc = cs_buf_puts(&it->unit, add && sub ? "two" : add ? "add" : sub ? "sub" : "mul");
    }
    for (const char *s = a.q.data; rc == CS_OK && *s; s++) {
        bool digit = *s >= '0' && *s <= '9';
        bool starts = digit && (s == a.q.data || s[-1] < '0' || s[-1] > '9');
        if (starts) {
            rc = cs_buf_putc(&it->unit, '-');
        }
        if (rc == CS_OK && digit) {
            rc = cs_buf_putc(&it->unit, *s);
        }
    }
    if (rc == CS_OK) {
        rc = tb_mc_fill_num(r, &it->mc, a.ans, a.ops, 3, err);
    }
    tb_arith_fini(&a);
    return rc;
}

static bool is_ident(char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

/* The program with every variable named by the order of its first use ("x = 3\nprint(x + y)"
 * and "a = 3\nprint(a + b)" are one unit), hashed: FNV-1a, 16 hex digits. */
static cs_rc code_unit(const char *prog, cs_buf *unit)
{
    static const char *const keep[] = {"print", "len",   "max", "min", "for",
                                       "in",    "range", "if",  "else"};
    const char *names[16];
    size_t lens[16], n_names = 0;
    uint64_t h = 1469598103934665603ULL;
    bool quoted = false;
    for (const char *s = prog; *s;) {
        size_t len = 0, id = 0;
        while (!quoted && is_ident(s[len])) {
            len++;
        }
        bool var = len > 0;
        for (size_t i = 0; var && i < N_ELEMS(keep); i++) {
            var = !(strlen(keep[i]) == len && memcmp(keep[i], s, len) == 0);
        }
        while (var && id < n_names && !(lens[id] == len && memcmp(names[id], s, len) == 0)) {
            id++;
        }
        if (var && id == n_names && n_names < N_ELEMS(names)) {
            names[n_names] = s;
            lens[n_names++] = len;
        }
        /* a variable hashes as one letter, anything else (keywords, strings) as itself */
        size_t step = len ? len : 1;
        for (size_t i = 0; i < (var ? 1 : step); i++) {
            unsigned char c = var ? (unsigned char)('A' + id) : (unsigned char)s[i];
            quoted = quoted != (!var && c == '"');
            h = (h ^ c) * 1099511628211ULL;
        }
        s += step;
    }
    return cs_buf_printf(unit, "%016llx", (unsigned long long)h);
}

/* code_output: a fresh program of the corpus's kinds (none of the corpus's programs) and its
 * output among plausible wrong ones. */
static cs_rc item_code(const tb_gen *g, cs_rng *r, suite_item *it, size_t *redrawn, cs_err *err)
{
    tb_code c = {0};
    const char *pool[N_ELEMS(c.pool)];
    cs_rc rc = CS_OK;
    do {
        rc = tb_code_make(r, &c);
        *redrawn += rc == CS_OK && tb_set_has(&g->corpus_keys, c.prog.data);
    } while (rc == CS_OK && tb_set_has(&g->corpus_keys, c.prog.data));
    for (size_t i = 0; i < c.n_pool; i++) {
        pool[i] = c.pool[i];
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&it->ctx, "%s\n# output:", c.prog.data);
    }
    if (rc == CS_OK) {
        rc = code_unit(c.prog.data, &it->unit);
    }
    if (rc == CS_OK) {
        rc = tb_mc_fill(r, &it->mc, c.out, pool, c.n_pool, err);
    }
    cs_buf_fini(&c.prog);
    return rc;
}

/* ---------------------------------------------------------------- facts */

/* facts_recall: a cloze prompt about a city's country, river or famous good, in one of the facts
 * corpus's five wordings of those facts, alone: the scholars' facts (birthplace, job) score
 * 98-100 % on both models, and so does everything once an entry about another entity comes first
 * (tb-qwen 74 % -> 91 %), which is why the prompt stands alone. There are 72 cities, so 360
 * prompts and 216 facts: items differ by their choices. Unit: the fact ("Thuwick.river"). */
static cs_rc item_facts(const tb_gen *g, cs_rng *r, suite_item *it, cs_err *err)
{
    /* one draw per statement: argument evaluation order is unspecified in C */
    size_t wording = tb_pick(r, 5);
    const tb_city *c = &g->cities[tb_pick(r, N_CITIES)];
    const char *const *pool = tb_goods;
    size_t n_pool = TB_N_GOODS, gold = c->good;
    const char *attr = "good";
    cs_rc rc = CS_OK;
    if (wording == 0) {
        rc = cs_buf_printf(&it->ctx, "%s is a city in", c->name);
        pool = tb_countries, n_pool = TB_N_COUNTRIES, gold = c->country, attr = "country";
    } else if (wording == 1) {
        rc = cs_buf_printf(&it->ctx, "The river that flows through %s is the", c->name);
    } else if (wording == 2) {
        rc = cs_buf_printf(&it->ctx, "The city of %s lies in %s, on the river", c->name,
                           tb_countries[c->country]);
    } else if (wording == 3) {
        rc = cs_buf_printf(&it->ctx, "%s is famous for its", c->name);
    } else {
        rc = cs_buf_printf(&it->ctx, "Traders come to %s to buy", c->name);
    }
    if (wording == 1 || wording == 2) {
        pool = tb_rivers, n_pool = TB_N_RIVERS, gold = c->river, attr = "river";
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&it->unit, "%s.%s", c->name, attr);
    }
    return rc == CS_OK ? tb_mc_fill(r, &it->mc, pool[gold], pool, n_pool, err) : rc;
}

/* ---------------------------------------------------------------- files */

static cs_rc suite_item_draw(tb_gen *g, cs_rng *r, suite_task t, suite_item *it, size_t *redrawn,
                             cs_err *err)
{
    it->ctx.len = 0;
    it->unit.len = 0;
    memset(&it->mc, 0, sizeof(it->mc));
    switch (t) {
    case SUITE_PROSE_STATE:
        return item_prose_state(r, it, err);
    case SUITE_PROSE_ROLE:
        return item_prose_role(r, it, err);
    case SUITE_ARITH:
        return item_arith(g, r, it, redrawn, err);
    case SUITE_CODE:
        return item_code(g, r, it, redrawn, err);
    default:
        return item_facts(g, r, it, err);
    }
}

static int cmp_choice(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* What makes two items the same: the context; for facts_recall, whose 360 prompts cannot make
 * thousands of items, the context and the set of choices (the gold's place aside). */
static cs_rc item_key(suite_task t, const suite_item *it, cs_buf *key)
{
    if (t != SUITE_FACTS) {
        key->len = 0;
        return cs_buf_puts(key, it->ctx.data);
    }
    char sorted[4][sizeof(it->mc.choices[0])];
    memcpy(sorted, it->mc.choices, sizeof(sorted));
    qsort(sorted, 4, sizeof(sorted[0]), cmp_choice);
    key->len = 0;
    return cs_buf_printf(key, "%s\n%s\n%s\n%s\n%s", it->ctx.data, sorted[0], sorted[1], sorted[2],
                         sorted[3]);
}

static cs_rc suite_line(cs_buf *out, suite_task t, size_t idx, const suite_item *it)
{
    cs_rc rc = cs_buf_printf(out, "{\"id\":\"%s-%05zu-%s\",\"task\":\"%s\",\"context\":",
                             k_suite_names[t], idx, it->unit.data, k_suite_names[t]);
    if (rc == CS_OK) {
        rc = tb_put_json_str(out, it->ctx.data);
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(out, ",\"choices\":[");
    }
    for (int i = 0; rc == CS_OK && i < 4; i++) {
        rc = tb_put_json_str(out, it->mc.choices[i]);
        if (rc == CS_OK && i < 3) {
            rc = cs_buf_putc(out, ',');
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(out, "],\"gold\":%d}\n", it->mc.gold);
    }
    return rc;
}

/* Draws task t's SUITE_N_EVAL items, none the same as another (item_key), and writes them as
 * suite/<task>.eval.jsonl with a line of the summary. */
static cs_rc suite_task_file(tb_gen *g, cs_rng *r, suite_task t, cs_buf *summary, cs_err *err)
{
    tb_set keys = {0}, contexts = {0}, units = {0};
    suite_item it = {0};
    cs_buf key = {0}, out = {0}, name = {0};
    size_t redrawn = 0;
    bool added = false;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < SUITE_N_EVAL && rc == CS_OK; i++) {
        size_t draws = 0;
        do {
            rc = suite_item_draw(g, r, t, &it, &redrawn, err);
            if (rc == CS_OK) {
                rc = item_key(t, &it, &key);
            }
            if (rc == CS_OK) {
                rc = tb_set_add(&keys, key.data, &added, err);
            }
            if (rc == CS_OK && ++draws > SUITE_DRAWS_PER_ITEM) {
                rc = cs_err_set(err, CS_EINTERNAL, 0, "%s: cannot draw %d distinct items",
                                k_suite_names[t], SUITE_N_EVAL);
            }
            redrawn += rc == CS_OK && !added;
        } while (rc == CS_OK && !added);
        if (rc == CS_OK) {
            rc = tb_set_add(&contexts, it.ctx.data, &added, err);
        }
        if (rc == CS_OK) {
            rc = tb_set_add(&units, it.unit.data, &added, err);
        }
        if (rc == CS_OK) {
            rc = suite_line(&out, t, i, &it);
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&name, "suite/%s.eval.jsonl", k_suite_names[t]);
    }
    if (rc == CS_OK) {
        rc = tb_write_file(g, name.data, &out, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(summary,
                           "task %-12s mc4 eval %d items, %4zu contexts, %4zu units (%zu draws "
                           "redone: a repeated item or a corpus question or program)\n",
                           k_suite_names[t], SUITE_N_EVAL, contexts.n, units.n, redrawn);
    }
    tb_set_fini(&keys);
    tb_set_fini(&contexts);
    tb_set_fini(&units);
    cs_buf_fini(&it.ctx);
    cs_buf_fini(&it.unit);
    cs_buf_fini(&key);
    cs_buf_fini(&out);
    cs_buf_fini(&name);
    return rc;
}

cs_rc tb_suite_run(tb_gen *g, uint64_t seed, cs_err *err)
{
    cs_rng r;
    cs_buf summary = {0}, dir = {0};
    cs_rng_seed(&r, seed ^ SUITE_SEED_SALT);
    cs_rc rc = cs_buf_printf(&summary, "testbed-gen suite, seed %llu ^ 0x%016llx\n",
                             (unsigned long long)seed, (unsigned long long)SUITE_SEED_SALT);
    if (rc == CS_OK) {
        rc = cs_buf_printf(&dir, "%s/suite", g->out_dir);
    }
    if (rc == CS_OK) {
        rc = tb_mkdir_p(dir.data, err);
    }
    for (size_t t = 0; t < N_SUITE_TASKS && rc == CS_OK; t++) {
        rc = suite_task_file(g, &r, (suite_task)t, &summary, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(&summary, "no item repeats another; no arithmetic question or program "
                                   "of the suite occurs in the corpora\n");
    }
    if (rc == CS_OK) {
        rc = tb_write_file(g, "suite/SUMMARY.txt", &summary, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(&g->summary, summary.data);
    }
    cs_buf_fini(&summary);
    cs_buf_fini(&dir);
    return rc;
}
