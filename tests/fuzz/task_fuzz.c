/* task_fuzz.c - libFuzzer target for the task-file loader (cs_task_parse): arbitrary bytes in. A
 * refused input must come with a message that names the file ("fuzz.jsonl"); an accepted one must
 * hold items that the scorer can use: an id, a text, for MC and multi-input at least 2 options and
 * gold among them, for generation an answer, lines rising, ids unique, and a --limit 3 sample of it
 * must load too with min(n, 3) items in file order. Any broken property abort()s. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_task.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "task_fuzz: %s: %s\n", what, detail ? detail : "");
    abort();
}

static void check(const cs_task *t)
{
    if (t->n == 0 || !t->name || !t->path) {
        fail("accepted without items or name", t->path);
    }
    for (size_t i = 0; i < t->n; i++) {
        const cs_task_item *it = &t->items[i];
        if (!it->id || !it->text) {
            fail("item without id or text", it->id);
        }
        if ((t->kind == CS_TASK_MC || t->kind == CS_TASK_MULTI) &&
            (it->n_options < 2 || it->gold < 0 || (size_t)it->gold >= it->n_options)) {
            fail("options or gold out of range", it->id);
        }
        if (t->kind == CS_TASK_GEN && !it->answer) {
            fail("generation item without an answer", it->id);
        }
        for (size_t j = 0; j < it->n_options; j++) {
            if (!it->options[j]) {
                fail("NULL option", it->id);
            }
        }
        if (i > 0 && it->line <= t->items[i - 1].line) {
            fail("lines not rising", it->id);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(t->items[j].id, it->id) == 0) {
                fail("duplicate id accepted", it->id);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_task t, s;
    cs_err err = {0};
    cs_rc rc = cs_task_parse(&t, "fuzz.jsonl", (const char *)data, size, 0, 1, &err);
    if (rc != CS_OK) {
        if (!err.msg[0] || (rc != CS_ENOMEM && !strstr(err.msg, "fuzz.jsonl"))) {
            fail("refused without naming the file", err.msg);
        }
        return 0;
    }
    check(&t);
    rc = cs_task_parse(&s, "fuzz.jsonl", (const char *)data, size, 3, 1, &err);
    if (rc != CS_OK) {
        fail("a --limit sample of an accepted file refused", err.msg);
    }
    check(&s);
    if (s.n != (t.n < 3 ? t.n : 3) || s.kind != t.kind) {
        fail("the sample has the wrong size or kind", s.name);
    }
    cs_task_fini(&s);
    cs_task_fini(&t);
    return 0;
}
