/* testbed_gen.h - what the testbed generator's two files share: the made-up world (its tables and
 * the generated cities and scholars), the generator's state, and the helpers that draw items and
 * write them as JSON lines.
 *
 * testbed_gen.c writes the corpora, the small task splits and the held-out text from one cs_rng
 * stream; testbed_suite.c then writes the default evaluation suite (data/suite/) from its own
 * stream, so that adding or changing the suite never changes a byte of what came before it.
 * Symbols shared between the two files start with tb_; everything else stays static.
 */
#ifndef CS_SWEEPS_TESTBED_GEN_TESTBED_GEN_H
#define CS_SWEEPS_TESTBED_GEN_TESTBED_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_rng.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

enum {
    N_CITIES = 72,
    N_SCHOLARS = 60,
    NAME_MAX_LEN = 24,
    TB_N_PEOPLE = 16,
    TB_N_PROFS = 12,
    TB_N_STATES = 10,
    TB_N_WEATHERS = 6,
    TB_N_TOPICS = 6,
    TB_N_COUNTRIES = 8,
    TB_N_RIVERS = 10,
    TB_N_GOODS = 10,
    TB_N_JOBS = 10,
};

/* ---------------------------------------------------------------- the world */

typedef struct tb_person {
    const char *name;
    const char *pron; /* he / she */
    const char *poss; /* his / her */
    const char *cap;  /* He / She */
} tb_person;

typedef struct tb_prof {
    const char *prof;
    const char *place;
    const char *act;
} tb_prof;

typedef struct tb_pair {
    const char *a;
    const char *b;
} tb_pair;

extern const tb_person tb_people[TB_N_PEOPLE];
extern const tb_prof tb_profs[TB_N_PROFS];
extern const tb_pair tb_states[TB_N_STATES];     /* state -> what a person does about it */
extern const tb_pair tb_weathers[TB_N_WEATHERS]; /* weather -> what a person does then */
extern const char *const tb_topics[TB_N_TOPICS];
extern const char *const tb_countries[TB_N_COUNTRIES];
extern const char *const tb_rivers[TB_N_RIVERS];
extern const char *const tb_goods[TB_N_GOODS];
extern const char *const tb_jobs[TB_N_JOBS];

typedef struct tb_city {
    char name[NAME_MAX_LEN];
    size_t country, river, good;
} tb_city;

typedef struct tb_scholar {
    char name[NAME_MAX_LEN];
    size_t city, job;
} tb_scholar;

/* A set of strings (open addressing, FNV-1a); owns its copies. */
typedef struct tb_set {
    char **slot;
    size_t cap; /* power of two */
    size_t n;
} tb_set;

typedef struct tb_gen {
    cs_rng rng;
    tb_city cities[N_CITIES];
    tb_scholar scholars[N_SCHOLARS];
    tb_set reserved;    /* questions and programs of all tasks: kept out of the corpora */
    tb_set corpus_keys; /* questions and programs that went into the corpora */
    tb_set corpus_docs; /* every corpus document text */
    const char *out_dir;
    cs_buf summary;
} tb_gen;

/* ---------------------------------------------------------------- helpers (testbed_gen.c) */

size_t tb_pick(cs_rng *r, size_t n);     /* uniform in [0, n) */
bool tb_chance(cs_rng *r, unsigned pct); /* true with probability pct / 100 */
void tb_set_fini(tb_set *s);
bool tb_set_has(const tb_set *s, const char *k);
/* Adds a copy of k; *added says whether it was new. */
cs_rc tb_set_add(tb_set *s, const char *k, bool *added, cs_err *err);
cs_rc tb_put_json_str(cs_buf *b, const char *s); /* s as a JSON string */
cs_rc tb_mkdir_p(const char *path, cs_err *err);
/* Writes b to OUT_DIR/rel. */
cs_rc tb_write_file(const tb_gen *g, const char *rel, const cs_buf *b, cs_err *err);

/* The 4 choices of a multiple-choice item and the gold's index. */
typedef struct tb_mc {
    char choices[4][64];
    int gold;
} tb_mc;

/* Picks 3 distinct distractor strings from pool (n >= 4 entries that differ from gold where
 * possible) and writes the 4 choices with the gold at a random place. */
cs_rc tb_mc_fill(cs_rng *r, tb_mc *mc, const char *gold, const char *const *pool, size_t n,
                 cs_err *err);
/* Numeric distractors: near misses and the extra values, all distinct and >= 0. */
cs_rc tb_mc_fill_num(cs_rng *r, tb_mc *mc, int gold, const int *extra, size_t n_extra, cs_err *err);

/* One fact sentence of the kind's paraphrase template (city: 0-5, scholar: 0-3), as the facts
 * corpus writes it. */
cs_rc tb_city_sentence(cs_rng *r, cs_buf *b, const tb_city *c, size_t kind);
cs_rc tb_scholar_sentence(const tb_gen *g, cs_rng *r, cs_buf *b, const tb_scholar *s, size_t kind);
/* "Name is a prof." or "Name works as a prof." */
cs_rc tb_prose_intro(cs_rng *r, cs_buf *b, const tb_person *p, const tb_prof *f);

/* An arithmetic word problem: the question, the reasoning chain up to its last " =", the answer
 * and three wrong values a careless reader might give. */
typedef struct tb_arith {
    cs_buf q;     /* the question */
    cs_buf chain; /* the reasoning up to and including the last " =" */
    int ans;
    int ops[3];
} tb_arith;

void tb_arith_fini(tb_arith *a);
cs_rc tb_arith_make(cs_rng *r, tb_arith *a);

/* A tiny program, its output and up to 8 wrong outputs. */
typedef struct tb_code {
    cs_buf prog;
    char out[64];
    char pool[8][64]; /* distractor outputs */
    size_t n_pool;
} tb_code;

cs_rc tb_code_make(cs_rng *r, tb_code *c);

/* ---------------------------------------------------------------- the suite (testbed_suite.c) */

/* Writes OUT_DIR/suite/: the default evaluation suite, drawn from its own stream seeded from
 * seed, after the corpora (whose questions and programs it keeps out). */
cs_rc tb_suite_run(tb_gen *g, uint64_t seed, cs_err *err);

#endif
