/* cs_docs.c - documents of calibration sources; the leak checks (cs_docs.h). */
#include "cs_docs.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_path.h"
#include "cs_task.h"

#define SOURCE_MAX_FILE ((size_t)1 << 30) /* the largest source file read */

extern char **environ;

char *cs_calib_normalize(const char *text)
{
    size_t len = strlen(text), o = 0;
    char *out = malloc(len + 1);
    bool space = false;
    if (!out) {
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = o > 0;
            continue;
        }
        if (space) {
            out[o++] = ' ';
            space = false;
        }
        out[o++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[o] = '\0';
    return out;
}

void cs_calib_docs_destroy(cs_calib_doc *docs, size_t n)
{
    for (size_t i = 0; docs && i < n; i++) {
        free(docs[i].id);
        free(docs[i].text);
        free(docs[i].key);
    }
    free(docs);
}

typedef struct doc_list {
    cs_calib_doc *d;
    size_t n, cap;
} doc_list;

/* Takes ownership of id and text (freed on failure). */
static cs_rc docs_push(doc_list *l, char *id, char *text, const char *keysrc, size_t line,
                       cs_err *err)
{
    char *key = (id && text) ? cs_calib_normalize(keysrc ? keysrc : text) : NULL;
    if (!key) {
        goto oom;
    }
    if (l->n == l->cap) {
        size_t nc = l->cap ? 2 * l->cap : 64;
        cs_calib_doc *nd = realloc(l->d, nc * sizeof(*nd));
        if (!nd) {
            goto oom;
        }
        l->d = nd;
        l->cap = nc;
    }
    l->d[l->n++] = (cs_calib_doc){.id = id, .text = text, .key = key, .line = line};
    return CS_OK;
oom:
    free(id);
    free(text);
    free(key);
    return cs_err_set(err, CS_ENOMEM, 0, "out of memory");
}

char *cs_calib_join_id(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char *s = malloc(na + nb + 2);
    if (s) {
        memcpy(s, a, na);
        s[na] = ':';
        memcpy(s + na + 1, b, nb + 1);
    }
    return s;
}

static char *id_line(size_t line, char prefix)
{
    char b[32];
    snprintf(b, sizeof b, "%c%zu", prefix, line);
    return cs_strdup(b);
}

/* A source file's bytes: as they are, or decompressed when the name ends in ".gz" (C4 and
 * pile-val are published gzipped), by the system's gzip (gzip -dc, reading the file on its stdin,
 * its output read here up to SOURCE_MAX_FILE bytes). */
static cs_rc read_source(const char *path, char **out, size_t *len, cs_err *err)
{
    size_t n = strlen(path);
    if (n < 3 || strcmp(path + n - 3, ".gz") != 0) {
        return cs_path_read_file(path, SOURCE_MAX_FILE, out, len, err);
    }
    *out = NULL;
    *len = 0;
    int in = open(path, O_RDONLY | O_CLOEXEC), pfd[2] = {-1, -1}, status = 0;
    if (in < 0) {
        return cs_err_errno(err, errno, "%s", path);
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    pid_t pid = -1;
    cs_buf b = {0};
    cs_rc rc = CS_OK;
    char *const argv[] = {"gzip", "-dc", NULL};
    if (pipe(pfd) != 0) {
        rc = cs_err_errno(err, errno, "%s: pipe", path);
    } else {
        posix_spawn_file_actions_adddup2(&fa, in, 0);
        posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        int e = posix_spawnp(&pid, "gzip", &fa, NULL, argv, environ);
        if (e != 0) {
            rc = cs_err_errno(err, e, "%s: cannot run gzip to decompress it", path);
            pid = -1;
        }
        close(pfd[1]);
    }
    while (rc == CS_OK) {
        if (b.cap - b.len < 2 && cs_buf_reserve(&b, b.cap ? b.cap : 1 << 16) != CS_OK) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
            break;
        }
        ssize_t r = read(pfd[0], b.data + b.len, b.cap - b.len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        b.len += (size_t)r;
        if (b.len > SOURCE_MAX_FILE) {
            rc = cs_err_set(err, CS_ETOOBIG, EFBIG,
                            "%s: decompresses to more than the limit of %zu bytes", path,
                            (size_t)SOURCE_MAX_FILE);
        }
    }
    if (pfd[0] >= 0) {
        close(pfd[0]);
    }
    close(in);
    posix_spawn_file_actions_destroy(&fa);
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (rc == CS_OK && pid > 0 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        rc = cs_err_set(err, CS_EPARSE, 0, "%s: not a valid gzip file (gzip -dc failed)", path);
    }
    if (rc != CS_OK) {
        cs_buf_fini(&b);
        return rc;
    }
    if (!b.data && cs_buf_reserve(&b, 1) != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "%s: out of memory", path);
    }
    b.data[b.len] = '\0';
    *out = b.data;
    *len = b.len;
    return CS_OK;
}

static cs_rc docs_jsonl(const cs_calib_source *src, doc_list *l, cs_err *err)
{
    const char *field = src->text_field ? src->text_field : "text";
    char *text = NULL, name[512];
    size_t len = 0, line = 0;
    cs_rc rc = read_source(src->path, &text, &len, err);
    if (rc != CS_OK) {
        return rc;
    }
    for (char *p = text, *end = text ? text + len : NULL; rc == CS_OK && p < end;) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *o = NULL;
        line++;
        if (n > 0 && !(n == 1 && p[0] == '\r')) {
            snprintf(name, sizeof name, "%s:%zu", src->path, line);
            rc = cs_task_parse_line(p, n, name, &o, err);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, field);
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
            if (rc == CS_OK && !cJSON_IsString(v)) {
                rc = cs_err_set(err, CS_ESCHEMA, 0, "%s: \"%s\": expected a string", name, field);
            }
            if (rc == CS_OK) {
                rc = docs_push(l,
                               cJSON_IsString(id) ? cs_strdup(id->valuestring) : id_line(line, 'L'),
                               cs_strdup(v->valuestring), NULL, line, err);
            }
            cJSON_Delete(o);
        }
        p += n + 1;
    }
    free(text);
    return rc;
}

static cs_rc docs_text(const cs_calib_source *src, doc_list *l, cs_err *err)
{
    char *text = NULL;
    size_t len = 0, line = 1, k = 0;
    cs_rc rc = read_source(src->path, &text, &len, err);
    size_t i = 0;
    while (rc == CS_OK && i < len) {
        /* skip blank lines */
        while (i < len &&
               (text[i] == '\n' || text[i] == '\r' || text[i] == ' ' || text[i] == '\t')) {
            line += text[i] == '\n';
            i++;
        }
        if (i >= len) {
            break;
        }
        size_t start = i, start_line = line, end = i;
        /* a document ends at a line that is blank (only whitespace) */
        while (i < len) {
            char *nl = memchr(text + i, '\n', len - i);
            size_t e = nl ? (size_t)(nl - text) : len;
            bool blank = true;
            for (size_t j = i; j < e; j++) {
                blank = blank && (text[j] == ' ' || text[j] == '\t' || text[j] == '\r');
            }
            if (blank) {
                break;
            }
            end = e;
            i = nl ? e + 1 : e;
            line += nl != NULL;
        }
        char *d = malloc(end - start + 1);
        if (d) {
            memcpy(d, text + start, end - start);
            d[end - start] = '\0';
        }
        rc = d ? docs_push(l, id_line(++k, 'p'), d, NULL, start_line, err)
               : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    free(text);
    return rc;
}

/* Splits a generation answer "chain #### final" (GSM8K) into chain and final. */
static void split_answer(const char *ans, cs_buf *chain, cs_buf *final, cs_rc *rc)
{
    const char *h = strstr(ans, "####");
    if (!h) {
        *rc = *rc == CS_OK ? cs_buf_puts(final, ans) : *rc;
        return;
    }
    size_t n = (size_t)(h - ans);
    while (n > 0 && (ans[n - 1] == ' ' || ans[n - 1] == '\n')) {
        n--;
    }
    const char *f = h + 4;
    while (*f == ' ') {
        f++;
    }
    if (*rc == CS_OK) {
        *rc = cs_buf_append(chain, ans, n);
    }
    if (*rc == CS_OK) {
        *rc = cs_buf_puts(final, f);
    }
}

static const char *strip_prefix(const char *s, const char *p)
{
    size_t n = strlen(p);
    return strncmp(s, p, n) == 0 ? s + n : s;
}

static cs_rc format_item(const cs_task *t, const cs_task_item *it, cs_calib_format fmt, cs_buf *doc)
{
    cs_rc rc = CS_OK;
    const char *gold = (t->kind == CS_TASK_MC || t->kind == CS_TASK_MULTI) && it->gold >= 0 &&
                                       (size_t)it->gold < it->n_options
                               ? it->options[it->gold]
                               : "";
    if (fmt == CS_CALIB_FMT_PLAIN || t->kind == CS_TASK_REF) {
        switch (t->kind) {
        case CS_TASK_MC:
            return cs_buf_printf(doc, "%s %s", it->text, gold);
        case CS_TASK_MULTI:
            return cs_buf_printf(doc, "%s %s", gold, it->text);
        case CS_TASK_GEN:
            return cs_buf_printf(doc, "%s %s", it->text, it->answer ? it->answer : "");
        default:
            return cs_buf_puts(doc, it->text);
        }
    }
    /* qa: Question / Reasoning / Answer */
    cs_buf q, chain, fin;
    cs_buf_init(&q);
    cs_buf_init(&chain);
    cs_buf_init(&fin);
    const char *body = t->kind == CS_TASK_MULTI ? gold : it->text;
    body = strip_prefix(body, "Question: ");
    const char *a = strstr(body, "\nAnswer:");
    if (a) {
        /* the context holds "Answer: <chain>": that is the reasoning */
        rc = cs_buf_append(&q, body, (size_t)(a - body));
        const char *c = a + strlen("\nAnswer:");
        while (*c == ' ') {
            c++;
        }
        if (rc == CS_OK) {
            rc = cs_buf_puts(&chain, c);
        }
    } else {
        rc = cs_buf_puts(&q, body);
    }
    if (t->kind == CS_TASK_GEN) {
        split_answer(it->answer ? it->answer : "", &chain, &fin, &rc);
    } else if (rc == CS_OK) {
        rc = cs_buf_puts(&fin, t->kind == CS_TASK_MULTI ? it->text : gold);
    }
    if (rc == CS_OK) {
        rc = chain.len > 0 ? cs_buf_printf(doc, "Question: %s\nReasoning: %s\nAnswer: %s", q.data,
                                           chain.data, fin.data ? fin.data : "")
                           : cs_buf_printf(doc, "Question: %s\nAnswer: %s", q.data ? q.data : "",
                                           fin.data ? fin.data : "");
    }
    cs_buf_fini(&q);
    cs_buf_fini(&chain);
    cs_buf_fini(&fin);
    return rc;
}

static cs_rc docs_task(const cs_calib_source *src, doc_list *l, cs_err *err)
{
    cs_task t;
    cs_rc rc = cs_task_load(&t, src->path, 0, err);
    for (size_t i = 0; rc == CS_OK && i < t.n; i++) {
        const cs_task_item *it = &t.items[i];
        cs_buf doc;
        cs_buf_init(&doc);
        if (format_item(&t, it, src->format, &doc) != CS_OK) {
            cs_buf_fini(&doc);
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
            break;
        }
        rc = docs_push(l, cs_strdup(it->id), cs_buf_take(&doc), it->text, it->line, err);
    }
    cs_task_fini(&t);
    return rc;
}

cs_rc cs_calib_source_docs(const cs_calib_source *src, cs_calib_doc **docs, size_t *n, cs_err *err)
{
    doc_list l = {0};
    cs_rc rc;
    *docs = NULL;
    *n = 0;
    if (!src->kind || !src->path) {
        return cs_err_set(err, CS_EINVAL, 0, "calibration source: missing kind or path");
    }
    if (strcmp(src->kind, "jsonl") == 0) {
        rc = docs_jsonl(src, &l, err);
    } else if (strcmp(src->kind, "text") == 0) {
        rc = docs_text(src, &l, err);
    } else if (strcmp(src->kind, "task") == 0) {
        rc = docs_task(src, &l, err);
    } else {
        rc = cs_err_set(err, CS_EINVAL, 0, "calibration.source.kind: '%s' (jsonl, text, task)",
                        src->kind);
    }
    if (rc == CS_OK && l.n == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: no documents", src->path);
    }
    if (rc != CS_OK) {
        cs_calib_docs_destroy(l.d, l.n);
        return rc;
    }
    *docs = l.d;
    *n = l.n;
    return CS_OK;
}

/* ---- overlap ---- */

typedef struct eval_key {
    const char *key; /* borrowed */
    const char *id;
    const char *path;
    size_t line;
} eval_key;

static int eval_key_cmp(const void *a, const void *b)
{
    return strcmp(((const eval_key *)a)->key, ((const eval_key *)b)->key);
}

static const eval_key *find_key(const eval_key *k, size_t n, const char *s)
{
    eval_key q = {.key = s};
    return bsearch(&q, k, n, sizeof(*k), eval_key_cmp);
}

cs_rc cs_calib_check_overlap(const cs_calib_source *src, size_t n_src,
                             const char *const *eval_paths, size_t n_eval, cs_err *err)
{
    return cs_calib_check_disjoint(src, n_src, eval_paths, n_eval, "calibration", "evaluation",
                                   err);
}

cs_rc cs_calib_check_disjoint(const cs_calib_source *src, size_t n_src,
                              const char *const *eval_paths, size_t n_eval, const char *what,
                              const char *other, cs_err *err)
{
    cs_task *tasks = cs_alloc_array(n_eval ? n_eval : 1, sizeof(cs_task));
    size_t n_items = 0, n_loaded = 0, nk = 0, ni = 0;
    eval_key *texts = NULL, *ids = NULL;
    char **owned = NULL;
    size_t n_owned = 0;
    cs_rc rc = tasks ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    for (size_t e = 0; rc == CS_OK && e < n_eval; e++) {
        rc = cs_task_load(&tasks[e], eval_paths[e], 0, err);
        if (rc == CS_OK) {
            n_loaded++;
            n_items += tasks[e].n;
        }
    }
    if (rc == CS_OK) {
        texts = cs_alloc_array(2 * n_items + 1, sizeof(eval_key));
        ids = cs_alloc_array(n_items + 1, sizeof(eval_key));
        owned = cs_alloc_array(2 * n_items + 1, sizeof(char *));
        if (!texts || !ids || !owned) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
        }
    }
    for (size_t e = 0; rc == CS_OK && e < n_eval; e++) {
        for (size_t i = 0; rc == CS_OK && i < tasks[e].n; i++) {
            const cs_task_item *it = &tasks[e].items[i];
            cs_buf full;
            cs_buf_init(&full);
            eval_key base = {.id = it->id, .path = eval_paths[e], .line = it->line};
            char *a = cs_calib_normalize(it->text);
            char *b = format_item(&tasks[e], it, CS_CALIB_FMT_PLAIN, &full) == CS_OK
                              ? cs_calib_normalize(full.data ? full.data : "")
                              : NULL;
            cs_buf_fini(&full);
            if (!a || !b) {
                free(a);
                free(b);
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                break;
            }
            owned[n_owned++] = a;
            owned[n_owned++] = b;
            texts[nk] = base;
            texts[nk++].key = a;
            texts[nk] = base;
            texts[nk++].key = b;
            ids[ni] = base;
            ids[ni++].key = it->id;
        }
    }
    if (rc == CS_OK) {
        qsort(texts, nk, sizeof(*texts), eval_key_cmp);
        qsort(ids, ni, sizeof(*ids), eval_key_cmp);
    }
    for (size_t s = 0; rc == CS_OK && s < n_src; s++) {
        cs_calib_doc *d = NULL;
        size_t nd = 0;
        rc = cs_calib_source_docs(&src[s], &d, &nd, err);
        bool by_id = rc == CS_OK && strcmp(src[s].kind, "text") != 0;
        for (size_t i = 0; rc == CS_OK && i < nd; i++) {
            const eval_key *hit = by_id ? find_key(ids, ni, d[i].id) : NULL;
            const char *why = "same id";
            if (!hit) {
                hit = find_key(texts, nk, d[i].key);
                why = "same text";
            }
            if (hit) {
                rc = cs_err_set(err, CS_EINVAL, 0, "%s overlaps %s (%s): %s:%zu = %s:%zu", what,
                                other, why, src[s].path, d[i].line, hit->path, hit->line);
            }
        }
        cs_calib_docs_destroy(d, nd);
    }
    for (size_t i = 0; i < n_owned; i++) {
        free(owned[i]);
    }
    for (size_t e = 0; e < n_loaded; e++) {
        cs_task_fini(&tasks[e]);
    }
    free(owned);
    free(texts);
    free(ids);
    free(tasks);
    return rc;
}

/* ---- pool shares ---- */

cs_rc cs_calib_shares(const int64_t *quota, const double *weight, size_t n, size_t total,
                      size_t *out, cs_err *err)
{
    size_t fixed = 0, left, given = 0;
    double wsum = 0.0;
    for (size_t i = 0; i < n; i++) {
        out[i] = quota[i] > 0 ? (size_t)quota[i] : 0;
        fixed += out[i];
        wsum += quota[i] > 0 ? 0.0 : weight[i];
    }
    if (fixed > total) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "the quotas ask for %zu items, more than the %zu of the pool", fixed,
                          total);
    }
    left = total - fixed;
    if (left > 0 && !(wsum > 0.0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "the quotas give %zu of %zu items and no source has a weight", fixed,
                          total);
    }
    for (size_t i = 0; i < n && left > 0; i++) {
        if (quota[i] <= 0) {
            out[i] = (size_t)floor((double)left * weight[i] / wsum);
            given += out[i];
        }
    }
    /* the remainder, one item each, to the largest fractional parts (earlier source on a tie) */
    while (left > 0 && given < left) {
        size_t best = n;
        double best_frac = -1.0;
        for (size_t i = 0; i < n; i++) {
            if (quota[i] > 0) {
                continue;
            }
            double exact = (double)left * weight[i] / wsum, frac = exact - (double)out[i];
            if (frac > best_frac) {
                best_frac = frac;
                best = i;
            }
        }
        out[best]++;
        given++;
    }
    return CS_OK;
}

size_t cs_calib_capacity(const cs_calib_doc *docs, size_t n, const char *compose, size_t seq_len)
{
    size_t need = seq_len > 1 ? seq_len - 1 : 1, bytes = 0, fit = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(docs[i].text);
        bytes += len + (i > 0 ? 2 : 0); /* documents are joined with a blank line */
        fit += len >= need;
    }
    if (strcmp(compose, "per_doc") == 0) {
        return fit;
    }
    if (strcmp(compose, "concat") == 0 || strcmp(compose, "awq_concat") == 0) {
        return bytes / need;
    }
    if (strcmp(compose, "doc_windows") == 0) { /* windows inside one document each */
        size_t w = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(docs[i].text);
            w += len > need ? len - need : 0;
        }
        return w;
    }
    return bytes >= need ? bytes - need + 1 : 0; /* random_windows: distinct offsets */
}
