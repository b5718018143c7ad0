/* testbed_gen.c - writes the testbed's corpora, evaluation tasks and held-out text from one seed.
 *
 * calsweep ships its own small calibration study (sweeps/testbed/README.md): two tiny models are
 * trained on four synthetic corpora whose statistics differ (story prose, arithmetic word problems
 * with reasoning chains, tiny programs with their output, and encyclopedia entries about a made-up
 * knowledge base), and evaluated on tasks built from the same world, so that a small model can
 * learn them and a quantizer can damage them. Everything here is integer arithmetic on one
 * cs_rng stream, so the output is byte-for-byte the same on every machine; a test regenerates the
 * files and compares them with the committed ones.
 *
 * Layout under --out DIR: corpus/{prose,arith,code,facts}.jsonl, the calibration corpora
 * ({"id","text"}); tasks/<task>.eval.jsonl, the evaluation split (selectors-and-metrics.md task
 * format); tasks/<task>.train.jsonl, the train-side split, same schema, disjoint from eval;
 * tasks/<task>.ref.jsonl, the train split as ACDM reference items ({"id","task","text"});
 * heldout.txt, held-out mixed-domain text for perplexity (40 documents), and heldout_long.txt,
 * the same 40 followed by 360 more (for comparisons of quantizers whose perplexities differ by
 * tenths of a percent); SUMMARY.txt, sizes and the disjointness proof; suite/, the default
 * evaluation suite (testbed_suite.c, from a stream of its own). The program checks, and
 * fails otherwise, that no train-side context equals an eval context, that no arithmetic question
 * or program of a task occurs in the corpora, and that no held-out document occurs in the corpora.
 */
#include "testbed_gen.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_opt.h"
#include "cs_rng.h"

enum {
    N_EVAL_MC = 200,
    N_TRAIN_MC = 100,
    N_EVAL_GEN = 100,
    N_TRAIN_GEN = 64,
    N_PROSE_DOCS = 1100,
    N_ARITH_DOCS = 700,
    N_CODE_DOCS = 700,
    N_FACT_DOCS_PER_ENTITY = 12,
    N_HELDOUT_PER_DOMAIN = 10,
    N_HELDOUT_LONG_PER_DOMAIN = 100,
};

/* ---------------------------------------------------------------- world tables */

const tb_person tb_people[TB_N_PEOPLE] = {
        {"Tom", "he", "his", "He"},    {"Mia", "she", "her", "She"},  {"Ben", "he", "his", "He"},
        {"Lily", "she", "her", "She"}, {"Sam", "he", "his", "He"},    {"Anna", "she", "her", "She"},
        {"Leo", "he", "his", "He"},    {"Emma", "she", "her", "She"}, {"Max", "he", "his", "He"},
        {"Zoe", "she", "her", "She"},  {"Jack", "he", "his", "He"},   {"Ruby", "she", "her", "She"},
        {"Noah", "he", "his", "He"},   {"Ella", "she", "her", "She"}, {"Finn", "he", "his", "He"},
        {"Nora", "she", "her", "She"},
};

const tb_prof tb_profs[TB_N_PROFS] = {
        {"baker", "bakery", "bakes fresh bread"},      {"farmer", "farm", "feeds the cows"},
        {"teacher", "school", "teaches the children"}, {"doctor", "hospital", "helps sick people"},
        {"fisher", "harbor", "catches fish"},          {"painter", "studio", "paints pictures"},
        {"builder", "building site", "builds houses"}, {"librarian", "library", "sorts the books"},
        {"cook", "restaurant", "cooks soup"},          {"pilot", "airport", "flies planes"},
        {"gardener", "garden", "waters the flowers"},  {"tailor", "tailor shop", "sews coats"},
};

/* state -> what a person does about it (the prose_cause task) */
const tb_pair tb_states[TB_N_STATES] = {
        {"hungry", "ate a piece of bread"}, {"tired", "went to bed early"},
        {"cold", "put on a warm coat"},     {"thirsty", "drank a glass of water"},
        {"bored", "read a long book"},      {"dirty", "took a hot bath"},
        {"sad", "called an old friend"},    {"late", "ran to the station"},
        {"sick", "stayed at home all day"}, {"lost", "asked someone for directions"},
};

const tb_pair tb_weathers[TB_N_WEATHERS] = {
        {"sunny", "went for a walk in the park"},
        {"rainy", "stayed inside with a cup of tea"},
        {"snowy", "built a snowman"},
        {"windy", "flew a kite on the hill"},
        {"foggy", "drove very slowly"},
        {"hot", "went swimming in the lake"},
};

const char *const tb_topics[TB_N_TOPICS] = {"the weather",    "their families", "an old song",
                                            "the new bridge", "a funny dream",  "the market"};
static const char *const k_evenings[] = {"cooked dinner",     "wrote a letter", "played the piano",
                                         "watched the stars", "fed the cat",    "read the news"};
static const char *const k_items[] = {"apples",   "pens",  "marbles", "books", "cards",
                                      "stickers", "coins", "shells",  "eggs",  "cups"};
static const char *const k_words[] = {"cat",  "sun",  "red",  "box",  "tree", "moon",
                                      "fish", "star", "blue", "cake", "door", "ship"};
static const tb_pair k_varnames[] = {{"a", "b"}, {"x", "y"}, {"m", "n"}, {"p", "q"}};
static const tb_pair k_branch_words[] = {
        {"big", "small"}, {"hot", "cold"}, {"yes", "no"}, {"up", "down"}};

const char *const tb_countries[TB_N_COUNTRIES] = {"Dastria",  "Korveth", "Ilmara", "Sundral",
                                                  "Vantoria", "Eskel",   "Mirath", "Toluna"};
const char *const tb_rivers[TB_N_RIVERS] = {"Olen", "Varda", "Tessin", "Morrow", "Kelbe",
                                            "Arun", "Sille", "Dravo",  "Hune",   "Pallas"};
const char *const tb_goods[TB_N_GOODS] = {"copper", "silk",  "glass",  "wine",   "salt",
                                          "horses", "paper", "clocks", "cheese", "pottery"};
const char *const tb_jobs[TB_N_JOBS] = {"sculptor", "merchant", "poet",      "weaver", "potter",
                                        "singer",   "scholar",  "navigator", "healer", "mapmaker"};

static const char *const k_onsets[] = {"b", "d", "f", "g", "k",  "l",  "m",  "n",  "p",  "r",
                                       "s", "t", "v", "z", "br", "dr", "gr", "kr", "th", "st"};
static const char *const k_vowels[] = {"a", "e", "i", "o", "u", "ai", "ei", "ou"};
static const char *const k_codas[] = {"", "n", "r", "s", "l", "m"};
static const char *const k_city_ends[] = {"ora", "ath", "ven", "mere", "dell", "wick"};

/* ---------------------------------------------------------------- small helpers */

size_t tb_pick(cs_rng *r, size_t n)
{
    return (size_t)cs_rng_below(r, n);
}

static int rand_int(cs_rng *r, int lo, int hi)
{
    return lo + (int)cs_rng_below(r, (uint64_t)(hi - lo + 1));
}

bool tb_chance(cs_rng *r, unsigned pct)
{
    return cs_rng_below(r, 100) < pct;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

void tb_set_fini(tb_set *s)
{
    if (!s->slot) {
        return;
    }
    for (size_t i = 0; i < s->cap; i++) {
        free(s->slot[i]);
    }
    free(s->slot);
    memset(s, 0, sizeof(*s));
}

bool tb_set_has(const tb_set *s, const char *k)
{
    if (!s->slot) {
        return false;
    }
    for (size_t i = (size_t)fnv1a(k) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (!s->slot[i]) {
            return false;
        }
        if (strcmp(s->slot[i], k) == 0) {
            return true;
        }
    }
}

static cs_rc set_grow(tb_set *s, cs_err *err)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    char **slot = cs_calloc_array(cap, sizeof(*slot));
    if (!slot) {
        return cs_err_set(err, CS_ENOMEM, 0, "string set of %zu slots", cap);
    }
    for (size_t i = 0; i < s->cap; i++) {
        if (s->slot[i]) {
            size_t j = (size_t)fnv1a(s->slot[i]) & (cap - 1);
            while (slot[j]) {
                j = (j + 1) & (cap - 1);
            }
            slot[j] = s->slot[i];
        }
    }
    free(s->slot);
    s->slot = slot;
    s->cap = cap;
    return CS_OK;
}

/* Adds a copy of k; *added says whether it was new. */
cs_rc tb_set_add(tb_set *s, const char *k, bool *added, cs_err *err)
{
    *added = false;
    if (tb_set_has(s, k)) {
        return CS_OK;
    }
    if ((s->n + 1) * 2 > s->cap) {
        cs_rc rc = set_grow(s, err);
        if (rc != CS_OK) {
            return rc;
        }
    }
    size_t i = (size_t)fnv1a(k) & (s->cap - 1);
    while (s->slot[i]) {
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = cs_strdup(k);
    if (!s->slot[i]) {
        return cs_err_set(err, CS_ENOMEM, 0, "string set entry");
    }
    s->n++;
    *added = true;
    return CS_OK;
}

cs_rc tb_put_json_str(cs_buf *b, const char *s)
{
    cs_rc rc = cs_buf_putc(b, '"');
    for (; rc == CS_OK && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            rc = cs_buf_putc(b, '\\');
            if (rc == CS_OK) {
                rc = cs_buf_putc(b, (char)c);
            }
        } else if (c == '\n') {
            rc = cs_buf_puts(b, "\\n");
        } else if (c < 0x20) {
            rc = cs_buf_printf(b, "\\u%04x", c);
        } else {
            rc = cs_buf_putc(b, (char)c);
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_putc(b, '"');
    }
    return rc;
}

cs_rc tb_mkdir_p(const char *path, cs_err *err)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        return cs_err_errno(err, errno, "mkdir %s", path);
    }
    return CS_OK;
}

cs_rc tb_write_file(const tb_gen *g, const char *rel, const cs_buf *b, cs_err *err)
{
    cs_buf path = {0};
    FILE *f = NULL;
    cs_rc rc = cs_buf_printf(&path, "%s/%s", g->out_dir, rel);
    if (rc != CS_OK) {
        rc = cs_err_set(err, rc, 0, "path of %s", rel);
        goto cleanup;
    }
    f = fopen(path.data, "wb");
    if (!f) {
        rc = cs_err_errno(err, errno, "open %s", path.data);
        goto cleanup;
    }
    if (b->len && fwrite(b->data, 1, b->len, f) != b->len) {
        rc = cs_err_errno(err, errno, "write %s", path.data);
        goto cleanup;
    }
    if (fclose(f) != 0) {
        f = NULL;
        rc = cs_err_errno(err, errno, "close %s", path.data);
        goto cleanup;
    }
    f = NULL;
cleanup:
    if (f) {
        fclose(f);
    }
    cs_buf_fini(&path);
    return rc;
}

cs_rc tb_mc_fill(cs_rng *r, tb_mc *mc, const char *gold, const char *const *pool, size_t n,
                 cs_err *err)
{
    const char *picked[3] = {NULL, NULL, NULL};
    size_t got = 0;
    size_t guard = 0;
    while (got < 3) {
        const char *c = pool[tb_pick(r, n)];
        bool dup = strcmp(c, gold) == 0;
        for (size_t i = 0; i < got; i++) {
            dup = dup || strcmp(picked[i], c) == 0;
        }
        if (!dup) {
            picked[got++] = c;
        }
        if (++guard > 10000) {
            return cs_err_set(err, CS_EINTERNAL, 0, "too few distractors for \"%s\"", gold);
        }
    }
    mc->gold = (int)tb_pick(r, 4);
    size_t k = 0;
    for (int i = 0; i < 4; i++) {
        const char *c = i == mc->gold ? gold : picked[k++];
        if (strlen(c) >= sizeof(mc->choices[i])) {
            return cs_err_set(err, CS_EINTERNAL, 0, "choice \"%s\" too long", c);
        }
        memcpy(mc->choices[i], c, strlen(c) + 1);
    }
    return CS_OK;
}

/* Numeric distractors: near misses and operands, all distinct and >= 0. */
cs_rc tb_mc_fill_num(cs_rng *r, tb_mc *mc, int gold, const int *extra, size_t n_extra, cs_err *err)
{
    char pool_s[16][16];
    const char *pool[16];
    int vals[16];
    size_t n = 0;
    const int near[] = {gold + 1, gold - 1, gold + 2, gold - 2, gold + 10, gold - 10, gold + 3};
    for (size_t i = 0; i < N_ELEMS(near) + n_extra && n < 16; i++) {
        int v = i < N_ELEMS(near) ? near[i] : extra[i - N_ELEMS(near)];
        bool dup = v < 0 || v == gold;
        for (size_t j = 0; j < n; j++) {
            dup = dup || vals[j] == v;
        }
        if (!dup) {
            snprintf(pool_s[n], sizeof(pool_s[n]), "%d", v);
            pool[n] = pool_s[n];
            vals[n] = v;
            n++;
        }
    }
    char gold_s[16];
    snprintf(gold_s, sizeof(gold_s), "%d", gold);
    return tb_mc_fill(r, mc, gold_s, pool, n, err);
}

static cs_rc mc_line(cs_buf *out, const char *task, const char *split, size_t idx, const char *ctx,
                     const tb_mc *mc)
{
    cs_rc rc = cs_buf_printf(out, "{\"id\":\"%s-%s-%04zu\",\"task\":\"%s\",\"context\":", task,
                             split, idx, task);
    if (rc == CS_OK) {
        rc = tb_put_json_str(out, ctx);
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(out, ",\"choices\":[");
    }
    for (int i = 0; rc == CS_OK && i < 4; i++) {
        rc = tb_put_json_str(out, mc->choices[i]);
        if (rc == CS_OK && i < 3) {
            rc = cs_buf_putc(out, ',');
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(out, "],\"gold\":%d}\n", mc->gold);
    }
    return rc;
}

static cs_rc ref_line(cs_buf *out, const char *task, size_t idx, const char *text)
{
    cs_rc rc = cs_buf_printf(out, "{\"id\":\"%s-ref-%04zu\",\"task\":\"%s\",\"text\":", task, idx,
                             task);
    if (rc == CS_OK) {
        rc = tb_put_json_str(out, text);
    }
    if (rc == CS_OK) {
        rc = cs_buf_puts(out, "}\n");
    }
    return rc;
}

/* ---------------------------------------------------------------- the knowledge base */

static void make_name(cs_rng *r, char *out, size_t cap, size_t syllables, const char *end)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t s = 0; s < syllables; s++) {
        /* one draw per statement: argument evaluation order is unspecified in C */
        size_t v = tb_pick(r, N_ELEMS(k_vowels));
        size_t o = tb_pick(r, N_ELEMS(k_onsets));
        len += (size_t)snprintf(out + len, cap - len, "%s%s", k_onsets[o], k_vowels[v]);
    }
    snprintf(out + len, cap - len, "%s", end ? end : k_codas[tb_pick(r, N_ELEMS(k_codas))]);
    out[0] = (char)(out[0] - 'a' + 'A');
}

static cs_rc build_world(tb_gen *g, cs_err *err)
{
    tb_set names = {0};
    bool added = false;
    cs_rc rc = CS_OK;
    /* the fixed vocabularies of the world must not collide with generated names */
    const char *const *fixed[] = {tb_countries, tb_rivers};
    const size_t n_fixed[] = {N_ELEMS(tb_countries), N_ELEMS(tb_rivers)};
    for (size_t t = 0; t < 2; t++) {
        for (size_t i = 0; i < n_fixed[t] && rc == CS_OK; i++) {
            rc = tb_set_add(&names, fixed[t][i], &added, err);
        }
    }
    for (size_t i = 0; i < N_CITIES && rc == CS_OK; i++) {
        tb_city *c = &g->cities[i];
        do {
            size_t end = tb_pick(&g->rng, N_ELEMS(k_city_ends));
            size_t syllables = 1 + tb_pick(&g->rng, 2);
            make_name(&g->rng, c->name, sizeof(c->name), syllables, k_city_ends[end]);
            rc = tb_set_add(&names, c->name, &added, err);
        } while (rc == CS_OK && !added);
        c->country = tb_pick(&g->rng, N_ELEMS(tb_countries));
        c->river = tb_pick(&g->rng, N_ELEMS(tb_rivers));
        c->good = tb_pick(&g->rng, N_ELEMS(tb_goods));
    }
    for (size_t i = 0; i < N_SCHOLARS && rc == CS_OK; i++) {
        tb_scholar *s = &g->scholars[i];
        do {
            make_name(&g->rng, s->name, sizeof(s->name), 2, NULL);
            rc = tb_set_add(&names, s->name, &added, err);
        } while (rc == CS_OK && !added);
        s->city = tb_pick(&g->rng, N_CITIES);
        s->job = tb_pick(&g->rng, N_ELEMS(tb_jobs));
    }
    tb_set_fini(&names);
    return rc;
}

/* Sentences about a city (fact statements in several paraphrases). */
cs_rc tb_city_sentence(cs_rng *r, cs_buf *b, const tb_city *c, size_t kind)
{
    const char *k = tb_countries[c->country];
    const char *rv = tb_rivers[c->river];
    const char *p = tb_goods[c->good];
    switch (kind) {
    case 0:
        return cs_buf_printf(b, "%s is a city in %s.", c->name, k);
    case 1:
        return cs_buf_printf(b, "The river that flows through %s is the %s.", c->name, rv);
    case 2:
        return cs_buf_printf(b, "%s is famous for its %s.", c->name, p);
    case 3:
        return cs_buf_printf(b, "The city of %s lies in %s, on the river %s.", c->name, k, rv);
    case 4:
        return cs_buf_printf(b, "Traders come to %s to buy %s.", c->name, p);
    default:
        if (tb_chance(r, 50)) {
            return cs_buf_printf(b, "In %s, the city of %s is known for %s.", k, c->name, p);
        }
        return cs_buf_printf(b, "The %s flows through %s, a city in %s.", rv, c->name, k);
    }
}

cs_rc tb_scholar_sentence(const tb_gen *g, cs_rng *r, cs_buf *b, const tb_scholar *s, size_t kind)
{
    const tb_city *c = &g->cities[s->city];
    const char *j = tb_jobs[s->job];
    switch (kind) {
    case 0:
        return cs_buf_printf(b, "%s was born in %s.", s->name, c->name);
    case 1:
        return cs_buf_printf(b, "%s worked as a %s.", s->name, j);
    case 2:
        return cs_buf_printf(b, "%s grew up in %s, a city in %s.", s->name, c->name,
                             tb_countries[c->country]);
    default:
        if (tb_chance(r, 50)) {
            return cs_buf_printf(b, "%s, a %s from %s, was well known in %s.", s->name, j, c->name,
                                 tb_countries[c->country]);
        }
        return cs_buf_printf(b, "As a %s, %s often returned to %s.", j, s->name, c->name);
    }
}

/* One encyclopedia entry: a random subset of an entity's sentences in random order. */
static cs_rc fact_doc(tb_gen *g, cs_rng *r, cs_buf *b, size_t entity)
{
    size_t order[6] = {0, 1, 2, 3, 4, 5};
    bool is_city = entity < N_CITIES;
    size_t n = is_city ? 6 : 4;
    cs_rc rc = CS_OK;
    cs_rng_shuffle(r, order, n);
    bool first = true;
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        if (!tb_chance(r, 70)) {
            continue;
        }
        if (!first) {
            rc = cs_buf_putc(b, ' ');
        }
        first = false;
        if (rc == CS_OK) {
            rc = is_city ? tb_city_sentence(r, b, &g->cities[entity], order[i])
                         : tb_scholar_sentence(g, r, b, &g->scholars[entity - N_CITIES], order[i]);
        }
    }
    if (first && rc == CS_OK) {
        rc = is_city ? tb_city_sentence(r, b, &g->cities[entity], 0)
                     : tb_scholar_sentence(g, r, b, &g->scholars[entity - N_CITIES], 0);
    }
    return rc;
}

/* ---------------------------------------------------------------- prose */

cs_rc tb_prose_intro(cs_rng *r, cs_buf *b, const tb_person *p, const tb_prof *f)
{
    if (tb_chance(r, 50)) {
        return cs_buf_printf(b, "%s is a %s.", p->name, f->prof);
    }
    return cs_buf_printf(b, "%s works as a %s.", p->name, f->prof);
}

static cs_rc prose_story(cs_rng *r, cs_buf *b)
{
    const tb_person *p = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    const tb_person *q = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    const tb_prof *f = &tb_profs[tb_pick(r, N_ELEMS(tb_profs))];
    const tb_prof *f2 = &tb_profs[tb_pick(r, N_ELEMS(tb_profs))];
    const tb_pair *st = &tb_states[tb_pick(r, N_ELEMS(tb_states))];
    const tb_pair *st2 = &tb_states[tb_pick(r, N_ELEMS(tb_states))];
    const tb_pair *w = &tb_weathers[tb_pick(r, N_ELEMS(tb_weathers))];
    cs_rc rc = tb_prose_intro(r, b, p, f);
    if (rc == CS_OK) {
        rc = cs_buf_printf(b, " Every morning %s goes to the %s, where %s %s.", p->pron, f->place,
                           p->pron, f->act);
    }
    if (rc == CS_OK && tb_chance(r, 60)) {
        rc = cs_buf_printf(b, " One day %s was %s, so %s %s.", p->name, st->a, p->pron, st->b);
    }
    if (rc == CS_OK && tb_chance(r, 50)) {
        rc = cs_buf_printf(b, " The weather was %s, so %s %s.", w->a, p->name, w->b);
    }
    if (rc == CS_OK && q != p && tb_chance(r, 60)) {
        rc = cs_buf_printf(b, " Later, %s met %s at the %s.", p->name, q->name, f2->place);
        if (rc == CS_OK) {
            rc = cs_buf_printf(b, " %s is a %s, and %s %s every day.", q->name, f2->prof, q->pron,
                               f2->act);
        }
        if (rc == CS_OK && tb_chance(r, 50)) {
            rc = cs_buf_printf(b, " They talked about %s for a long time.",
                               tb_topics[tb_pick(r, N_ELEMS(tb_topics))]);
        }
        if (rc == CS_OK && tb_chance(r, 40)) {
            rc = cs_buf_printf(b, " %s was %s, so %s %s.", q->name, st2->a, q->pron, st2->b);
        }
    }
    if (rc == CS_OK && tb_chance(r, 50)) {
        rc = cs_buf_printf(b, " In the evening, %s went home and %s.", p->name,
                           k_evenings[tb_pick(r, N_ELEMS(k_evenings))]);
    }
    return rc;
}

/* ---------------------------------------------------------------- arithmetic */

void tb_arith_fini(tb_arith *a)
{
    cs_buf_fini(&a->q);
    cs_buf_fini(&a->chain);
}

cs_rc tb_arith_make(cs_rng *r, tb_arith *a)
{
    const tb_person *p = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    const tb_person *p2 = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    const char *it = k_items[tb_pick(r, N_ELEMS(k_items))];
    size_t kind = tb_pick(r, 4);
    cs_rc rc = CS_OK;
    a->q.len = 0;
    a->chain.len = 0;
    if (p2 == p) {
        p2 = &tb_people[(size_t)(p - tb_people + 1) % N_ELEMS(tb_people)];
    }
    if (kind == 0) {
        int x = rand_int(r, 1, 12), y = rand_int(r, 1, 12);
        a->ans = x + y;
        a->ops[0] = x, a->ops[1] = y, a->ops[2] = x + y + 1;
        rc = cs_buf_printf(&a->q, "%s has %d %s. %s buys %d more %s. How many %s does %s have now?",
                           p->name, x, it, p->cap, y, it, it, p->name);
        if (rc == CS_OK) {
            rc = cs_buf_printf(&a->chain,
                               "%s starts with %d %s. %s buys %d more, so %d + %d =", p->name, x,
                               it, p->cap, y, x, y);
        }
    } else if (kind == 1) {
        int x = rand_int(r, 3, 20), y = rand_int(r, 1, x - 1);
        a->ans = x - y;
        a->ops[0] = x, a->ops[1] = y, a->ops[2] = x + y;
        rc = cs_buf_printf(&a->q,
                           "%s has %d %s. %s gives %d %s to %s. How many %s does %s have left?",
                           p->name, x, it, p->cap, y, it, p2->name, it, p->name);
        if (rc == CS_OK) {
            rc = cs_buf_printf(&a->chain,
                               "%s starts with %d %s. %s gives away %d, so %d - %d =", p->name, x,
                               it, p->cap, y, x, y);
        }
    } else if (kind == 2) {
        int x = rand_int(r, 2, 6), y = rand_int(r, 2, 6);
        a->ans = x * y;
        a->ops[0] = x + y, a->ops[1] = x * y + x, a->ops[2] = x * y - y;
        rc = cs_buf_printf(&a->q,
                           "%s has %d bags with %d %s in each bag. How many %s does %s have?",
                           p->name, x, y, it, it, p->name);
        if (rc == CS_OK) {
            rc = cs_buf_printf(&a->chain, "There are %d bags and each has %d %s, so %d * %d =", x,
                               y, it, x, y);
        }
    } else {
        int x = rand_int(r, 1, 10), y = rand_int(r, 1, 10);
        int z = rand_int(r, 1, x + y - 1);
        a->ans = x + y - z;
        a->ops[0] = x + y, a->ops[1] = x + y + z, a->ops[2] = z;
        rc = cs_buf_printf(&a->q,
                           "%s has %d %s. %s finds %d more and then loses %d. How many %s does "
                           "%s have now?",
                           p->name, x, it, p->cap, y, z, it, p->name);
        if (rc == CS_OK) {
            rc = cs_buf_printf(&a->chain,
                               "%s starts with %d %s. %s finds %d more, so %d + %d = %d. Then %s "
                               "loses %d, so %d - %d =",
                               p->name, x, it, p->cap, y, x, y, x + y, p->pron, z, x + y, z);
        }
    }
    return rc;
}

static cs_rc arith_text(cs_buf *b, const tb_arith *a)
{
    return cs_buf_printf(b, "Question: %s\nAnswer: %s %d. #### %d", a->q.data, a->chain.data,
                         a->ans, a->ans);
}

/* ---------------------------------------------------------------- code */

static void add_pool(tb_code *c, const char *fmt_s, int v)
{
    if (c->n_pool < N_ELEMS(c->pool)) {
        if (fmt_s) {
            size_t n = strlen(fmt_s);
            n = n < sizeof(c->pool[0]) ? n : sizeof(c->pool[0]) - 1;
            memcpy(c->pool[c->n_pool], fmt_s, n);
            c->pool[c->n_pool][n] = '\0';
        } else {
            snprintf(c->pool[c->n_pool], sizeof(c->pool[0]), "%d", v);
        }
        c->n_pool++;
    }
}

cs_rc tb_code_make(cs_rng *r, tb_code *c)
{
    size_t kind = tb_pick(r, 8);
    const tb_pair *vn = &k_varnames[tb_pick(r, N_ELEMS(k_varnames))];
    cs_rc rc = CS_OK;
    c->prog.len = 0;
    c->n_pool = 0;
    if (kind <= 1) {
        int x = rand_int(r, 1, 12), y = rand_int(r, 1, 12);
        if (kind == 1 && y >= x) {
            x += y;
        }
        int v = kind == 0 ? x + y : x - y;
        rc = cs_buf_printf(&c->prog, "%s = %d\n%s = %d\nprint(%s %c %s)", vn->a, x, vn->b, y, vn->a,
                           kind == 0 ? '+' : '-', vn->b);
        snprintf(c->out, sizeof(c->out), "%d", v);
        const int d[] = {v + 1, v - 1, v + 2, x, y, v + 10};
        for (size_t i = 0; i < N_ELEMS(d); i++) {
            if (d[i] >= 0) {
                add_pool(c, NULL, d[i]);
            }
        }
    } else if (kind == 2) {
        int v[4];
        for (size_t i = 0; i < 4; i++) {
            bool dup;
            do {
                v[i] = rand_int(r, 1, 60);
                dup = false;
                for (size_t j = 0; j < i; j++) {
                    dup = dup || v[j] == v[i];
                }
            } while (dup);
        }
        size_t at = tb_pick(r, 4);
        rc = cs_buf_printf(&c->prog, "nums = [%d, %d, %d, %d]\nprint(nums[%zu])", v[0], v[1], v[2],
                           v[3], at);
        snprintf(c->out, sizeof(c->out), "%d", v[at]);
        for (size_t i = 0; i < 4; i++) {
            add_pool(c, NULL, v[i]);
        }
    } else if (kind == 3) {
        size_t i1 = tb_pick(r, N_ELEMS(k_words)), i2 = tb_pick(r, N_ELEMS(k_words) - 1);
        i2 += i2 >= i1;
        const char *w1 = k_words[i1], *w2 = k_words[i2];
        char tmp[4][32];
        rc = cs_buf_printf(&c->prog, "%s = \"%s\"\n%s = \"%s\"\nprint(%s + %s)", vn->a, w1, vn->b,
                           w2, vn->a, vn->b);
        snprintf(c->out, sizeof(c->out), "%s%s", w1, w2);
        snprintf(tmp[0], sizeof(tmp[0]), "%s%s", w2, w1);
        snprintf(tmp[1], sizeof(tmp[1]), "%s%s", w1, w1);
        snprintf(tmp[2], sizeof(tmp[2]), "%s%s", w2, w2);
        snprintf(tmp[3], sizeof(tmp[3]), "%s %s", w1, w2);
        for (size_t i = 0; i < 4; i++) {
            add_pool(c, tmp[i], 0);
        }
    } else if (kind == 4) {
        static const char *const vars[] = {"word", "s", "name", "text"};
        const char *w1 = k_words[tb_pick(r, N_ELEMS(k_words))];
        const char *w2 = tb_chance(r, 50) ? k_words[tb_pick(r, N_ELEMS(k_words))] : "";
        const char *v = vars[tb_pick(r, N_ELEMS(vars))];
        int n = (int)(strlen(w1) + strlen(w2));
        rc = cs_buf_printf(&c->prog, "%s = \"%s%s\"\nprint(len(%s))", v, w1, w2, v);
        snprintf(c->out, sizeof(c->out), "%d", n);
        const int d[] = {n + 1, n - 1, n + 2, n - 2, n + 3};
        for (size_t i = 0; i < N_ELEMS(d); i++) {
            add_pool(c, NULL, d[i]);
        }
    } else if (kind == 5) {
        int v[3], m = 0;
        for (size_t i = 0; i < 3; i++) {
            bool dup;
            do {
                v[i] = rand_int(r, 1, 30);
                dup = false;
                for (size_t j = 0; j < i; j++) {
                    dup = dup || v[j] == v[i];
                }
            } while (dup);
            m = v[i] > m ? v[i] : m;
        }
        bool is_max = tb_chance(r, 50);
        int mn = v[0] < v[1] ? (v[0] < v[2] ? v[0] : v[2]) : (v[1] < v[2] ? v[1] : v[2]);
        rc = cs_buf_printf(&c->prog, "print(%s(%d, %d, %d))", is_max ? "max" : "min", v[0], v[1],
                           v[2]);
        snprintf(c->out, sizeof(c->out), "%d", is_max ? m : mn);
        for (size_t i = 0; i < 3; i++) {
            add_pool(c, NULL, v[i]);
        }
        add_pool(c, NULL, m + mn);
    } else if (kind == 6) {
        static const char *const vars[] = {"total", "acc", "count", "t"};
        const char *v = vars[tb_pick(r, N_ELEMS(vars))];
        int n = rand_int(r, 2, 7), s0 = rand_int(r, 0, 9);
        int v_out = s0 + n * (n - 1) / 2;
        rc = cs_buf_printf(&c->prog, "%s = %d\nfor i in range(%d):\n    %s = %s + i\nprint(%s)", v,
                           s0, n, v, v, v);
        snprintf(c->out, sizeof(c->out), "%d", v_out);
        const int d[] = {v_out + 1, v_out - 1, s0 + n * (n + 1) / 2, s0 + n, v_out + 2, s0};
        for (size_t i = 0; i < N_ELEMS(d); i++) {
            if (d[i] >= 0 && d[i] != v_out) {
                add_pool(c, NULL, d[i]);
            }
        }
    } else {
        size_t wp = tb_pick(r, N_ELEMS(k_branch_words));
        const tb_pair *bw = &k_branch_words[wp];
        const tb_pair *other = &k_branch_words[(wp + 1) % N_ELEMS(k_branch_words)];
        int x = rand_int(r, 1, 20), y = rand_int(r, 1, 20);
        rc = cs_buf_printf(&c->prog,
                           "%s = %d\nif %s > %d:\n    print(\"%s\")\nelse:\n    print(\"%s\")",
                           vn->a, x, vn->a, y, bw->a, bw->b);
        snprintf(c->out, sizeof(c->out), "%s", x > y ? bw->a : bw->b);
        add_pool(c, x > y ? bw->b : bw->a, 0);
        add_pool(c, other->a, 0);
        add_pool(c, other->b, 0);
    }
    return rc;
}

/* ---------------------------------------------------------------- tasks */

typedef enum tb_task_kind {
    TASK_PROSE_CAUSE,
    TASK_PROSE_WORK,
    TASK_ARITH_MC,
    TASK_CODE_MC,
    TASK_FACTS_MC,
    TASK_ARITH_GEN,
} tb_task_kind;

static const char *const k_task_names[] = {"prose_cause", "prose_work", "arith_mc",
                                           "code_mc",     "facts_mc",   "arith_gen"};

/* The prose_cause item: a person's day and a state, whose cause is the answer. */
static cs_rc task_prose_cause(cs_rng *r, cs_buf *ctx, tb_mc *mc, cs_err *err)
{
    cs_rc rc;
    const tb_person *p = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    const tb_prof *f = &tb_profs[tb_pick(r, N_ELEMS(tb_profs))];
    size_t s = tb_pick(r, N_ELEMS(tb_states));
    const char *pool[N_ELEMS(tb_states)];
    for (size_t i = 0; i < N_ELEMS(tb_states); i++) {
        pool[i] = tb_states[i].b;
    }
    rc = tb_prose_intro(r, ctx, p, f);
    if (rc == CS_OK) {
        rc = cs_buf_printf(ctx,
                           " Every morning %s goes to the %s, where %s %s. One day %s was %s, "
                           "so %s",
                           p->pron, f->place, p->pron, f->act, p->name, tb_states[s].a, p->pron);
    }
    if (rc == CS_OK) {
        rc = tb_mc_fill(r, mc, tb_states[s].b, pool, N_ELEMS(pool), err);
    }
    return rc;
}

/* The prose_work item: where a person of a profession goes every morning. */
static cs_rc task_prose_work(cs_rng *r, cs_buf *ctx, tb_mc *mc, cs_err *err)
{
    cs_rc rc;
    const tb_person *p = &tb_people[tb_pick(r, N_ELEMS(tb_people))];
    size_t fi = tb_pick(r, N_ELEMS(tb_profs));
    const char *pool[N_ELEMS(tb_profs)];
    for (size_t i = 0; i < N_ELEMS(tb_profs); i++) {
        pool[i] = tb_profs[i].place;
    }
    rc = tb_prose_intro(r, ctx, p, &tb_profs[fi]);
    if (rc == CS_OK) {
        rc = cs_buf_printf(ctx, " Every morning %s goes to the", p->pron);
    }
    if (rc == CS_OK) {
        rc = tb_mc_fill(r, mc, tb_profs[fi].place, pool, N_ELEMS(pool), err);
    }
    return rc;
}

/* The facts_mc item: a fact about a generated city (country, river, goods) or scholar (birthplace,
 * job). */
static cs_rc task_facts(tb_gen *g, cs_buf *ctx, tb_mc *mc, cs_err *err)
{
    cs_rng *r = &g->rng;
    cs_rc rc;
    size_t rel = tb_pick(r, 5);
    const char *pool[N_CITIES];
    const char *gold = NULL;
    size_t n_pool = 0;
    if (rel < 3) {
        const tb_city *cy = &g->cities[tb_pick(r, N_CITIES)];
        const char *const *tab = rel == 0 ? tb_countries : rel == 1 ? tb_rivers : tb_goods;
        n_pool = rel == 0   ? N_ELEMS(tb_countries)
                 : rel == 1 ? N_ELEMS(tb_rivers)
                            : N_ELEMS(tb_goods);
        for (size_t i = 0; i < n_pool; i++) {
            pool[i] = tab[i];
        }
        gold = tab[rel == 0 ? cy->country : rel == 1 ? cy->river : cy->good];
        rc = rel == 0   ? cs_buf_printf(ctx, "%s is a city in", cy->name)
             : rel == 1 ? cs_buf_printf(ctx, "The river that flows through %s is the", cy->name)
                        : cs_buf_printf(ctx, "%s is famous for its", cy->name);
    } else {
        const tb_scholar *s = &g->scholars[tb_pick(r, N_SCHOLARS)];
        if (rel == 3) {
            n_pool = N_CITIES;
            for (size_t i = 0; i < N_CITIES; i++) {
                pool[i] = g->cities[i].name;
            }
            gold = g->cities[s->city].name;
            rc = cs_buf_printf(ctx, "%s was born in", s->name);
        } else {
            n_pool = N_ELEMS(tb_jobs);
            for (size_t i = 0; i < n_pool; i++) {
                pool[i] = tb_jobs[i];
            }
            gold = tb_jobs[s->job];
            rc = cs_buf_printf(ctx, "%s worked as a", s->name);
        }
    }
    if (rc == CS_OK) {
        rc = tb_mc_fill(r, mc, gold, pool, n_pool, err);
    }
    return rc;
}

/* One item of a task: ctx is the disjointness key; key2 (arith, code) is kept out of corpora. */
static cs_rc task_item(tb_gen *g, tb_task_kind t, cs_buf *ctx, cs_buf *key2, cs_buf *line,
                       const char *split, size_t idx, cs_buf *reftext, cs_err *err)
{
    cs_rng *r = &g->rng;
    tb_mc mc;
    cs_rc rc = CS_OK;
    memset(&mc, 0, sizeof(mc));
    tb_arith a = {0};
    tb_code c = {0};
    ctx->len = 0;
    key2->len = 0;
    reftext->len = 0;
    switch (t) {
    case TASK_PROSE_CAUSE:
        rc = task_prose_cause(r, ctx, &mc, err);
        break;
    case TASK_PROSE_WORK:
        rc = task_prose_work(r, ctx, &mc, err);
        break;
    case TASK_ARITH_MC:
    case TASK_ARITH_GEN:
        rc = tb_arith_make(r, &a);
        if (rc == CS_OK) {
            rc = cs_buf_puts(key2, a.q.data);
        }
        if (rc == CS_OK && t == TASK_ARITH_MC) {
            rc = cs_buf_printf(ctx, "Question: %s\nAnswer: %s", a.q.data, a.chain.data);
            if (rc == CS_OK) {
                rc = tb_mc_fill_num(r, &mc, a.ans, a.ops, 3, err);
            }
        } else if (rc == CS_OK) {
            rc = cs_buf_printf(ctx, "Question: %s\nAnswer:", a.q.data);
        }
        break;
    case TASK_CODE_MC: {
        rc = tb_code_make(r, &c);
        const char *pool[N_ELEMS(c.pool)];
        for (size_t i = 0; i < c.n_pool; i++) {
            pool[i] = c.pool[i];
        }
        if (rc == CS_OK) {
            rc = cs_buf_puts(key2, c.prog.data);
        }
        if (rc == CS_OK) {
            rc = cs_buf_printf(ctx, "%s\n# output:", c.prog.data);
        }
        if (rc == CS_OK) {
            rc = tb_mc_fill(r, &mc, c.out, pool, c.n_pool, err);
        }
        break;
    }
    case TASK_FACTS_MC:
        rc = task_facts(g, ctx, &mc, err);
        break;
    }
    if (rc != CS_OK) {
        goto cleanup;
    }
    if (t == TASK_ARITH_GEN) {
        rc = cs_buf_printf(line,
                           "{\"id\":\"%s-%s-%04zu\",\"task\":\"%s\",\"prompt\":", k_task_names[t],
                           split, idx, k_task_names[t]);
        if (rc == CS_OK) {
            rc = tb_put_json_str(line, ctx->data);
        }
        if (rc == CS_OK) {
            rc = cs_buf_printf(line, ",\"answer\":\"%d\",\"stop\":[\"Question:\"]}\n", a.ans);
        }
        if (rc == CS_OK) {
            rc = arith_text(reftext, &a);
        }
    } else {
        rc = mc_line(line, k_task_names[t], split, idx, ctx->data, &mc);
        if (rc == CS_OK) {
            rc = cs_buf_printf(reftext, "%s %s", ctx->data, mc.choices[mc.gold]);
        }
    }
cleanup:
    tb_arith_fini(&a);
    cs_buf_fini(&c.prog);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Writes one task's eval and train splits and proves them disjoint: the train split is drawn with
 * rejection against the eval contexts, and then, independently, both context lists are sorted and
 * merged to find any shared context. */
static cs_rc gen_task(tb_gen *g, tb_task_kind t, cs_err *err)
{
    const bool gen = t == TASK_ARITH_GEN;
    const size_t n_split[2] = {gen ? N_EVAL_GEN : N_EVAL_MC, gen ? N_TRAIN_GEN : N_TRAIN_MC};
    const char *const split_names[2] = {"eval", "train"};
    char *keys[2][N_EVAL_MC] = {{NULL}};
    tb_set seen = {0};
    cs_buf ctx = {0}, key2 = {0}, line = {0}, ref = {0}, text = {0}, files[2] = {{0}};
    cs_buf name = {0};
    size_t shared = 0;
    bool added = false;
    cs_rc rc = CS_OK;
    for (size_t s = 0; s < 2 && rc == CS_OK; s++) {
        for (size_t i = 0; i < n_split[s] && rc == CS_OK; i++) {
            size_t guard = 0;
            do {
                line.len = 0;
                rc = task_item(g, t, &ctx, &key2, &line, split_names[s], i, &text, err);
                if (rc == CS_OK) {
                    rc = tb_set_add(&seen, ctx.data, &added, err);
                }
                if (rc == CS_OK && ++guard > 100000) {
                    rc = cs_err_set(err, CS_EINTERNAL, 0, "%s: cannot draw %zu distinct items",
                                    k_task_names[t], n_split[0] + n_split[1]);
                }
            } while (rc == CS_OK && !added);
            if (rc != CS_OK) {
                break;
            }
            keys[s][i] = cs_strdup(ctx.data);
            if (!keys[s][i]) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "task key");
                break;
            }
            if (key2.len) {
                rc = tb_set_add(&g->reserved, key2.data, &added, err);
            }
            if (rc == CS_OK) {
                rc = cs_buf_append(&files[s], line.data, line.len);
            }
            if (rc == CS_OK && s == 1) {
                rc = ref_line(&ref, k_task_names[t], i, text.data);
            }
        }
    }
    if (rc != CS_OK) {
        goto cleanup;
    }
    /* the proof: sort both key lists and merge */
    qsort(keys[0], n_split[0], sizeof(char *), cmp_str);
    qsort(keys[1], n_split[1], sizeof(char *), cmp_str);
    for (size_t i = 0, j = 0; i < n_split[0] && j < n_split[1];) {
        int c = strcmp(keys[0][i], keys[1][j]);
        shared += c == 0;
        i += c <= 0;
        j += c >= 0;
    }
    if (shared) {
        rc = cs_err_set(err, CS_EINTERNAL, 0, "%s: %zu contexts in both eval and train",
                        k_task_names[t], shared);
        goto cleanup;
    }
    for (size_t s = 0; s < 2 && rc == CS_OK; s++) {
        name.len = 0;
        rc = cs_buf_printf(&name, "tasks/%s.%s.jsonl", k_task_names[t], split_names[s]);
        if (rc == CS_OK) {
            rc = tb_write_file(g, name.data, &files[s], err);
        }
    }
    name.len = 0;
    if (rc == CS_OK) {
        rc = cs_buf_printf(&name, "tasks/%s.ref.jsonl", k_task_names[t]);
    }
    if (rc == CS_OK) {
        rc = tb_write_file(g, name.data, &ref, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(
                &g->summary,
                "task %-12s %-10s eval %3zu  train %3zu  shared contexts %zu: disjoint\n",
                k_task_names[t], gen ? "generation" : "mc4", n_split[0], n_split[1], shared);
    }
cleanup:
    for (size_t s = 0; s < 2; s++) {
        for (size_t i = 0; i < N_EVAL_MC; i++) {
            free(keys[s][i]);
        }
        cs_buf_fini(&files[s]);
    }
    tb_set_fini(&seen);
    cs_buf_fini(&ctx);
    cs_buf_fini(&key2);
    cs_buf_fini(&line);
    cs_buf_fini(&ref);
    cs_buf_fini(&text);
    cs_buf_fini(&name);
    return rc;
}

/* ---------------------------------------------------------------- corpora */

typedef enum tb_domain { DOM_PROSE, DOM_ARITH, DOM_CODE, DOM_FACTS } tb_domain;
static const char *const k_domain_names[] = {"prose", "arith", "code", "facts"};

/* One document of a domain into doc. An arithmetic question or program that belongs to a task is
 * drawn again; *redrawn counts those draws. */
static cs_rc domain_doc(tb_gen *g, tb_domain d, size_t idx, cs_buf *doc, size_t *redrawn,
                        cs_err *err)
{
    cs_rng *r = &g->rng;
    tb_arith a = {0};
    tb_code c = {0};
    cs_rc rc = CS_OK;
    doc->len = 0;
    if (d == DOM_PROSE) {
        rc = prose_story(r, doc);
    } else if (d == DOM_ARITH || d == DOM_CODE) {
        size_t n = d == DOM_ARITH ? 2 + tb_pick(r, 3) : 3 + tb_pick(r, 4);
        for (size_t i = 0; i < n && rc == CS_OK; i++) {
            if (i) {
                rc = cs_buf_puts(doc, "\n\n");
            }
            /* an item of a task is drawn again, not kept out with its whole document */
            do {
                rc = d == DOM_ARITH ? tb_arith_make(r, &a) : tb_code_make(r, &c);
                *redrawn += rc == CS_OK &&
                            tb_set_has(&g->reserved, d == DOM_ARITH ? a.q.data : c.prog.data);
            } while (rc == CS_OK &&
                     tb_set_has(&g->reserved, d == DOM_ARITH ? a.q.data : c.prog.data));
            if (rc == CS_OK) {
                rc = d == DOM_ARITH ? arith_text(doc, &a)
                                    : cs_buf_printf(doc, "%s\n# output: %s", c.prog.data, c.out);
            }
        }
    } else {
        /* every entity has the same number of entries; a third of them also mention a second */
        size_t entity = idx % (N_CITIES + N_SCHOLARS);
        rc = fact_doc(g, r, doc, entity);
        if (rc == CS_OK && tb_chance(r, 33)) {
            rc = cs_buf_putc(doc, ' ');
            if (rc == CS_OK) {
                rc = fact_doc(g, r, doc, tb_pick(r, N_CITIES + N_SCHOLARS));
            }
        }
    }
    tb_arith_fini(&a);
    cs_buf_fini(&c.prog);
    if (rc != CS_OK && err && err->rc == CS_OK) {
        rc = cs_err_set(err, rc, 0, "%s document %zu", k_domain_names[d], idx);
    }
    return rc;
}

static cs_rc gen_corpus(tb_gen *g, tb_domain d, cs_err *err)
{
    const size_t n_docs[] = {N_PROSE_DOCS, N_ARITH_DOCS, N_CODE_DOCS,
                             (size_t)N_FACT_DOCS_PER_ENTITY * (N_CITIES + N_SCHOLARS)};
    cs_buf doc = {0}, out = {0}, name = {0};
    bool added = false;
    size_t rejected = 0;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < n_docs[d] && rc == CS_OK; i++) {
        rc = domain_doc(g, d, i, &doc, &rejected, err);
        /* record the questions and programs of the accepted document */
        if (rc == CS_OK && (d == DOM_ARITH || d == DOM_CODE)) {
            for (const char *p = doc.data; p && *p;) {
                const char *end = strstr(p, "\n\n");
                size_t n = end ? (size_t)(end - p) : strlen(p);
                char *piece = cs_strndup(p, n);
                char *cut = NULL;
                if (!piece) {
                    rc = cs_err_set(err, CS_ENOMEM, 0, "corpus key");
                    break;
                }
                if (d == DOM_ARITH) {
                    memmove(piece, piece + strlen("Question: "), strlen(piece) + 1 - 10);
                    cut = strstr(piece, "\nAnswer:");
                } else {
                    cut = strstr(piece, "\n# output:");
                }
                if (cut) {
                    *cut = '\0';
                }
                rc = tb_set_add(&g->corpus_keys, piece, &added, err);
                free(piece);
                p = end ? end + 2 : p + n;
            }
        }
        if (rc == CS_OK) {
            rc = tb_set_add(&g->corpus_docs, doc.data, &added, err);
        }
        if (rc == CS_OK) {
            rc = cs_buf_printf(&out, "{\"id\":\"%s-%05zu\",\"text\":", k_domain_names[d], i);
        }
        if (rc == CS_OK) {
            rc = tb_put_json_str(&out, doc.data);
        }
        if (rc == CS_OK) {
            rc = cs_buf_puts(&out, "}\n");
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&name, "corpus/%s.jsonl", k_domain_names[d]);
    }
    if (rc == CS_OK) {
        rc = tb_write_file(g, name.data, &out, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&g->summary,
                           "corpus %-6s %5zu documents %8zu bytes (%zu task items drawn "
                           "again)\n",
                           k_domain_names[d], n_docs[d], out.len, rejected);
    }
    cs_buf_fini(&doc);
    cs_buf_fini(&out);
    cs_buf_fini(&name);
    return rc;
}

/* Writes the held-out text gathered so far (n documents) as NAME, with its summary line. */
static cs_rc write_heldout(tb_gen *g, const char *name, cs_buf *out, size_t n, cs_err *err)
{
    cs_rc rc = cs_buf_putc(out, '\n');
    if (rc == CS_OK) {
        rc = tb_write_file(g, name, out, err);
    }
    if (rc == CS_OK) {
        rc = cs_buf_printf(&g->summary,
                           "%s %zu documents %zu bytes, none equal to a corpus document\n", name, n,
                           out->len);
    }
    if (rc == CS_OK) {
        out->data[--out->len] = '\0'; /* drop the final newline again: more documents follow */
    }
    return rc;
}

/* Held-out text: fresh documents of every domain, interleaved, joined by blank lines; none may
 * equal a corpus document. heldout.txt holds the first N_HELDOUT_PER_DOMAIN rounds, and
 * heldout_long.txt the same text continued to N_HELDOUT_LONG_PER_DOMAIN rounds (drawn after
 * everything else, so that the longer file changes nothing before it). */
static cs_rc gen_heldout(tb_gen *g, cs_err *err)
{
    cs_buf doc = {0}, out = {0};
    size_t n = 0, redrawn = 0;
    cs_rc rc = CS_OK;
    for (size_t i = 0; i < N_HELDOUT_LONG_PER_DOMAIN && rc == CS_OK; i++) {
        for (size_t d = 0; d < 4 && rc == CS_OK; d++) {
            do {
                rc = domain_doc(g, (tb_domain)d, tb_pick(&g->rng, N_CITIES + N_SCHOLARS), &doc,
                                &redrawn, err);
            } while (rc == CS_OK && tb_set_has(&g->corpus_docs, doc.data));
            if (rc == CS_OK && n++) {
                rc = cs_buf_puts(&out, "\n\n");
            }
            if (rc == CS_OK) {
                rc = cs_buf_append(&out, doc.data, doc.len);
            }
        }
        if (rc == CS_OK && i + 1 == N_HELDOUT_PER_DOMAIN) {
            rc = write_heldout(g, "heldout.txt", &out, n, err);
        }
    }
    if (rc == CS_OK) {
        rc = write_heldout(g, "heldout_long.txt", &out, n, err);
    }
    cs_buf_fini(&doc);
    cs_buf_fini(&out);
    return rc;
}

/* Every reserved key (task question or program) is absent from the corpus keys. */
static cs_rc check_reserved(tb_gen *g, cs_err *err)
{
    size_t clash = 0;
    for (size_t i = 0; i < g->reserved.cap; i++) {
        if (g->reserved.slot[i] && tb_set_has(&g->corpus_keys, g->reserved.slot[i])) {
            clash++;
        }
    }
    if (clash) {
        return cs_err_set(err, CS_EINTERNAL, 0, "%zu task questions or programs occur in corpora",
                          clash);
    }
    return cs_buf_printf(&g->summary,
                         "%zu arithmetic questions and programs of the tasks, %zu in the corpora: "
                         "none shared\n",
                         g->reserved.n, g->corpus_keys.n);
}

static cs_rc run(tb_gen *g, uint64_t seed, cs_err *err)
{
    cs_buf sub = {0};
    cs_rc rc = CS_OK;
    cs_rng_seed(&g->rng, seed);
    rc = cs_buf_printf(&g->summary, "testbed-gen seed %llu\n", (unsigned long long)seed);
    if (rc == CS_OK) {
        rc = tb_mkdir_p(g->out_dir, err);
    }
    for (size_t i = 0; i < 2 && rc == CS_OK; i++) {
        sub.len = 0;
        rc = cs_buf_printf(&sub, "%s/%s", g->out_dir, i ? "tasks" : "corpus");
        if (rc == CS_OK) {
            rc = tb_mkdir_p(sub.data, err);
        }
    }
    if (rc == CS_OK) {
        rc = build_world(g, err);
    }
    for (size_t t = 0; t < N_ELEMS(k_task_names) && rc == CS_OK; t++) {
        rc = gen_task(g, (tb_task_kind)t, err);
    }
    for (size_t d = 0; d < 4 && rc == CS_OK; d++) {
        rc = gen_corpus(g, (tb_domain)d, err);
    }
    if (rc == CS_OK) {
        rc = gen_heldout(g, err);
    }
    if (rc == CS_OK) {
        rc = check_reserved(g, err);
    }
    if (rc == CS_OK) {
        rc = tb_write_file(g, "SUMMARY.txt", &g->summary, err);
    }
    if (rc == CS_OK) {
        rc = tb_suite_run(g, seed, err); /* last, from its own stream: nothing above changes */
    }
    cs_buf_fini(&sub);
    return rc;
}

enum { OPT_OUT, OPT_SEED, OPT_HELP };

static const cs_opt k_opts[] = {
        {"out", 'o', CS_OPT_VALUE, OPT_OUT, "DIR", "output folder (created)"},
        {"seed", 's', CS_OPT_VALUE, OPT_SEED, "N", "generator seed (default 20260501)"},
        {"help", 'h', CS_OPT_NONE, OPT_HELP, NULL, "show this help"},
};

int main(int argc, char **argv)
{
    tb_gen g;
    cs_opt_parser p;
    cs_err err = {0};
    int64_t seed = 20260501;
    int id = 0;
    const char *arg = NULL;
    cs_rc rc;
    memset(&g, 0, sizeof(g));
    cs_opt_init(&p, argc, argv, 1);
    while ((rc = cs_opt_next(&p, k_opts, N_ELEMS(k_opts), &id, &arg, &err)) == CS_OK) {
        if (id == OPT_OUT) {
            g.out_dir = arg;
        } else if (id == OPT_SEED) {
            if (cs_parse_i64(arg, 0, INT64_MAX, &seed, "--seed", &err) != CS_OK) {
                fprintf(stderr, "testbed-gen: %s\n", err.msg);
                return CS_EXIT_USAGE;
            }
        } else if (id == OPT_HELP) {
            printf("usage: testbed-gen --out DIR [--seed N]\n");
            cs_opt_print_help(stdout, k_opts, N_ELEMS(k_opts));
            return CS_EXIT_OK;
        } else {
            fprintf(stderr, "testbed-gen: unexpected argument %s\n", arg);
            return CS_EXIT_USAGE;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "testbed-gen: %s\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (!g.out_dir) {
        fprintf(stderr, "testbed-gen: --out DIR is required\n");
        return CS_EXIT_USAGE;
    }
    rc = run(&g, (uint64_t)seed, &err);
    tb_set_fini(&g.reserved);
    tb_set_fini(&g.corpus_keys);
    tb_set_fini(&g.corpus_docs);
    if (rc == CS_OK) {
        fputs(g.summary.data, stdout);
    }
    cs_buf_fini(&g.summary);
    if (rc != CS_OK) {
        fprintf(stderr, "testbed-gen: %s\n", err.msg[0] ? err.msg : cs_rc_str(rc));
        return CS_EXIT_FAIL;
    }
    return CS_EXIT_OK;
}
