/* tok_dump.c - prints calsweep's token ids for a corpus, for the reference test against Hugging
 * Face's tokenizers (tests/node/tokenizer-ref.mjs) and the encode benchmark.
 *
 *   tok_dump TOKENIZER_JSON CORPUS_JSONL [--add-special] [--bench]
 *
 * CORPUS_JSONL holds one JSON string per line (so newlines and any other character can be part of
 * a line). For each line tok_dump writes one JSON object on stdout:
 *   {"ids":[...],"text":"<decode(ids) as a JSON string>"}
 * With --bench it writes nothing per line; it encodes the whole corpus (at least 3 times and at
 * least one second in all) and prints one line: {"bytes":N,"seconds":S,"mb_per_s":R}.
 * Exit status: 0 on success, 1 on any error (with the message on stderr), 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cs_alloc.h"
#include "cs_err.h"
#include "cs_path.h"
#include "cs_tok.h"

typedef struct line {
    char *text; /* owned */
    size_t len;
} line;

/* Reads CORPUS_JSONL into lines (owned; free each text and the array). */
static cs_rc read_corpus(const char *path, line **out, size_t *n, cs_err *err)
{
    char *data = NULL;
    size_t len = 0, cap = 0, lineno = 0;
    line *lines = NULL;
    cs_rc rc = cs_path_read_file(path, (size_t)256 << 20, &data, &len, err);
    *out = NULL;
    *n = 0;
    if (rc != CS_OK) {
        return rc;
    }
    for (size_t i = 0; i < len;) {
        size_t j = i;
        cJSON *v;
        while (j < len && data[j] != '\n') {
            j++;
        }
        lineno++;
        if (j > i) {
            v = cJSON_ParseWithLength(data + i, j - i);
            if (!cJSON_IsString(v)) {
                cJSON_Delete(v);
                rc = cs_err_set(err, CS_EPARSE, 0, "%s:%zu: expected one JSON string", path,
                                lineno);
                goto out;
            }
            if (*n == cap) {
                line *p = cs_realloc_array(lines, cap ? cap * 2 : 256, sizeof(line));
                if (!p) {
                    cJSON_Delete(v);
                    rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                    goto out;
                }
                lines = p;
                cap = cap ? cap * 2 : 256;
            }
            lines[*n].len = strlen(v->valuestring);
            lines[*n].text = cs_strdup(v->valuestring);
            cJSON_Delete(v);
            if (!lines[*n].text) {
                rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
                goto out;
            }
            (*n)++;
        }
        i = j + 1;
    }
out:
    free(data);
    if (rc != CS_OK) {
        for (size_t k = 0; k < *n; k++) {
            free(lines[k].text);
        }
        free(lines);
        *n = 0;
        return rc;
    }
    *out = lines;
    return CS_OK;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static cs_rc dump(const cs_tok *tok, const line *lines, size_t n, unsigned flags, cs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int32_t *ids = NULL;
        size_t n_ids = 0, dlen = 0;
        char *dec = NULL, *js = NULL;
        cJSON *s = NULL;
        cs_rc rc = cs_tok_encode(tok, lines[i].text, lines[i].len, flags, &ids, &n_ids, err);
        if (rc == CS_OK) {
            rc = cs_tok_decode(tok, ids, n_ids, false, &dec, &dlen, err);
        }
        if (rc != CS_OK) {
            free(ids);
            cs_err_prefix(err, "line %zu", i + 1);
            return rc;
        }
        fputs("{\"ids\":[", stdout);
        for (size_t k = 0; k < n_ids; k++) {
            printf(k ? ",%d" : "%d", (int)ids[k]);
        }
        s = cJSON_CreateString(dec);
        js = s ? cJSON_PrintUnformatted(s) : NULL;
        printf("],\"text\":%s}\n", js ? js : "null");
        cJSON_free(js);
        cJSON_Delete(s);
        free(dec);
        free(ids);
    }
    return CS_OK;
}

static cs_rc bench(const cs_tok *tok, const line *lines, size_t n, unsigned flags, cs_err *err)
{
    size_t bytes = 0, rounds = 0, total_ids = 0;
    double t0 = now_s(), dt = 0;
    while (rounds < 3 || dt < 1.0) {
        for (size_t i = 0; i < n; i++) {
            int32_t *ids = NULL;
            size_t n_ids = 0;
            cs_rc rc = cs_tok_encode(tok, lines[i].text, lines[i].len, flags, &ids, &n_ids, err);
            if (rc != CS_OK) {
                return rc;
            }
            free(ids);
            bytes += lines[i].len;
            total_ids += n_ids;
        }
        rounds++;
        dt = now_s() - t0;
        if (n == 0) {
            break;
        }
    }
    printf("{\"bytes\":%zu,\"tokens\":%zu,\"seconds\":%.4f,\"mb_per_s\":%.2f}\n", bytes, total_ids,
           dt, dt > 0 ? (double)bytes / dt / 1e6 : 0.0);
    return CS_OK;
}

int main(int argc, char **argv)
{
    cs_tok *tok = NULL;
    line *lines = NULL;
    size_t n = 0;
    unsigned flags = 0;
    bool do_bench = false;
    cs_err err = {0};
    cs_rc rc;
    double t0;

    if (argc < 3) {
        fputs("usage: tok_dump TOKENIZER_JSON CORPUS_JSONL [--add-special] [--bench]\n", stderr);
        return 2;
    }
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--add-special") == 0) {
            flags |= CS_TOK_ADD_SPECIAL;
        } else if (strcmp(argv[i], "--bench") == 0) {
            do_bench = true;
        } else {
            fprintf(stderr, "tok_dump: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    t0 = now_s();
    rc = cs_tok_load(&tok, argv[1], &err);
    if (rc == CS_OK && do_bench) {
        fprintf(stderr, "tok_dump: loaded %s in %.3f s\n", argv[1], now_s() - t0);
    }
    if (rc == CS_OK) {
        rc = read_corpus(argv[2], &lines, &n, &err);
    }
    if (rc == CS_OK) {
        rc = do_bench ? bench(tok, lines, n, flags, &err) : dump(tok, lines, n, flags, &err);
    }
    for (size_t i = 0; i < n; i++) {
        free(lines[i].text);
    }
    free(lines);
    cs_tok_destroy(tok);
    if (rc != CS_OK) {
        fprintf(stderr, "tok_dump: %s\n", err.msg);
        return 1;
    }
    return 0;
}
