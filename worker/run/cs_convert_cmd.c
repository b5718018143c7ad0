/* run: `calsweep-run convert-task` (cs_convert_cmd.h).
 *
 * Each row of IN is one JSON object with a benchmark's own fields (what the datasets library
 * exports); each becomes one task item (common/cs_task.h) rendered as lm-evaluation-harness renders
 * it: the templates of its task YAML files and of its hellaswag and winogrande utilities, written
 * down in docs/tasks.md. The whole file is converted in memory first, so a bad row stops the
 * command before anything is written; the outputs are then each written atomically
 * (cs_path_write_atomic).
 *
 * Text rules that must match Python's exactly: str.strip() (Python's whitespace, not only ASCII),
 * str.capitalize() (the first character title-cased, the rest lower-cased), str.replace (one
 * left-to-right pass of non-overlapping matches) and re.sub("\\[.*?\\]", "") (the shortest
 * bracketed run on one line).
 */
#include "cs_convert_cmd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <unistd.h>
#include <utf8proc.h>

#include "cs_alloc.h"
#include "cs_json.h"
#include "cs_opt.h"
#include "cs_path.h"
#include "cs_rng.h"
#include "cs_score.h"
#include "cs_task.h"

#define N_OF(t)     (sizeof(t) / sizeof((t)[0]))
#define CV_MAX_FILE ((size_t)1 << 30) /* the task loader's limit */
#define CV_TASK_MAX 200               /* the id "<task>-NNNNN" stays under the schema's 256 */

/* ---- Python's text rules ----------------------------------------------------------------- */

/* Python's str.isspace() for one code point (the characters str.strip() and str.split() drop). */
static bool py_space(int32_t c)
{
    return (c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 ||
           c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The code point at s[0..n) (valid UTF-8: the JSON parser checked it); its length in bytes. */
static size_t cp_at(const char *s, size_t n, int32_t *c)
{
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, c);
    if (k <= 0) {
        *c = (unsigned char)s[0];
        return 1;
    }
    return (size_t)k;
}

/* str.strip(): s[*b..*e) is s[0..n) without Python's whitespace at either end. */
static void py_strip(const char *s, size_t n, size_t *b, size_t *e)
{
    size_t i = 0, j = n;
    int32_t c;
    while (i < n) {
        size_t k = cp_at(s + i, n - i, &c);
        if (!py_space(c)) {
            break;
        }
        i += k;
    }
    while (j > i) {
        size_t k = j - 1;
        while (k > i && ((unsigned char)s[k] & 0xC0) == 0x80) {
            k--;
        }
        cp_at(s + k, j - k, &c);
        if (!py_space(c)) {
            break;
        }
        j = k;
    }
    *b = i;
    *e = j;
}

static void put_cp(cs_buf *out, int32_t c, cs_rc *rc)
{
    utf8proc_uint8_t u[4];
    utf8proc_ssize_t k = utf8proc_encode_char(c, u);
    if (*rc == CS_OK) {
        *rc = cs_buf_append(out, u, (size_t)(k > 0 ? k : 0));
    }
}

/* str.capitalize() of s onto out: the first code point title-cased, every other lower-cased
 * (utf8proc's one-to-one mappings; Python's few one-to-many special cases are not made). */
static void py_capitalize(const char *s, cs_buf *out, cs_rc *rc)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        int32_t c;
        size_t k = cp_at(s + i, n - i, &c);
        put_cp(out, i == 0 ? utf8proc_totitle(c) : utf8proc_tolower(c), rc);
        i += k;
    }
}

/* s[0..n) onto out with every occurrence of pat (left to right, not overlapping) replaced by
 * with: str.replace. */
static void py_replace(const char *s, size_t n, const char *pat, const char *with, cs_buf *out,
                       cs_rc *rc)
{
    size_t lp = strlen(pat), lw = strlen(with);
    for (size_t i = 0; i < n && *rc == CS_OK;) {
        if (n - i >= lp && memcmp(s + i, pat, lp) == 0) {
            *rc = cs_buf_append(out, with, lw);
            i += lp;
        } else {
            *rc = cs_buf_append(out, s + i, 1);
            i++;
        }
    }
}

/* s[0..n) onto out without the matches of re.sub("\\[.*?\\]", ""): from each '[' to the first
 * ']' after it, when no newline comes between (the dot does not match one). */
static void drop_brackets(const char *s, size_t n, cs_buf *out, cs_rc *rc)
{
    for (size_t i = 0; i < n && *rc == CS_OK;) {
        const char *close = s[i] == '[' ? memchr(s + i + 1, ']', n - i - 1) : NULL;
        if (close && !memchr(s + i + 1, '\n', (size_t)(close - s) - i - 1)) {
            i = (size_t)(close - s) + 1;
            continue;
        }
        *rc = cs_buf_append(out, s + i, 1);
        i++;
    }
}

/* lm-eval's hellaswag preprocess(text) onto out: strip; " [title]" -> ". "; drop "[...]"; then
 * "  " -> " " (one pass, so three spaces leave two). */
static void hs_preprocess(const char *s, cs_buf *out, cs_rc *rc)
{
    cs_buf t1, t2;
    size_t b, e;
    cs_buf_init(&t1);
    cs_buf_init(&t2);
    py_strip(s, strlen(s), &b, &e);
    py_replace(s + b, e - b, " [title]", ". ", &t1, rc);
    drop_brackets(t1.data ? t1.data : "", t1.len, &t2, rc);
    py_replace(t2.data ? t2.data : "", t2.len, "  ", " ", out, rc);
    cs_buf_fini(&t1);
    cs_buf_fini(&t2);
}

/* ---- one row: a sticky reader ------------------------------------------------------------ */

/* The conversion of one row. The getters do nothing once rc is set, so a converter reads every
 * field it needs and checks rc once (docs/style.md R6). */
typedef struct conv {
    cs_jctx c;
    cs_err e;         /* the first problem: "<field path>: <what>" */
    cs_rc rc;         /* sticky */
    const cJSON *bad; /* the value a getter refused (only its type is shown when it is text) */
    cs_buf a, b;      /* scratch text */
} conv;

static void conv_fail(conv *v, const cJSON *node, const char *key, const char *fmt, ...)
        CS_PRINTF(4, 5);
static void conv_fail(conv *v, const cJSON *node, const char *key, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    if (v->rc != CS_OK) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    v->bad = NULL;
    v->rc = cs_jctx_error(&v->c, node, key, "%s", msg);
}

static void conv_oom(conv *v)
{
    if (v->rc == CS_OK) {
        v->rc = cs_err_set(&v->e, CS_ENOMEM, 0, "out of memory");
    }
}

static const char *get_str(conv *v, const cJSON *o, const char *key)
{
    const char *s = NULL;
    if (v->rc == CS_OK) {
        v->bad = cJSON_GetObjectItemCaseSensitive(o, key);
        v->rc = cs_json_req_string(&v->c, o, key, &s);
    }
    return s;
}

static const cJSON *get_obj(conv *v, const cJSON *o, const char *key)
{
    const cJSON *x = NULL;
    if (v->rc == CS_OK) {
        v->bad = cJSON_GetObjectItemCaseSensitive(o, key);
        v->rc = cs_json_req_object(&v->c, o, key, &x);
    }
    return x;
}

static int64_t get_int(conv *v, const cJSON *o, const char *key, int64_t lo, int64_t hi)
{
    int64_t x = 0;
    if (v->rc == CS_OK) {
        v->bad = cJSON_GetObjectItemCaseSensitive(o, key);
        v->rc = cs_json_req_int(&v->c, o, key, lo, hi, &x);
    }
    return x;
}

/* o[key]: an array of strings, at least min of them; *n its length. */
static const cJSON *get_strs(conv *v, const cJSON *o, const char *key, size_t min, size_t *n)
{
    const cJSON *arr = NULL, *x;
    size_t i = 0;
    *n = 0;
    if (v->rc != CS_OK) {
        return NULL;
    }
    v->bad = cJSON_GetObjectItemCaseSensitive(o, key);
    v->rc = cs_json_req_array(&v->c, o, key, &arr);
    if (v->rc != CS_OK) {
        return NULL;
    }
    cs_jpath_push_key(&v->c.path, key);
    cJSON_ArrayForEach(x, arr)
    {
        const char *s;
        cs_jpath_push_index(&v->c.path, i++);
        v->bad = x;
        v->rc = cs_json_as_string(&v->c, x, &s);
        cs_jpath_pop(&v->c.path);
        if (v->rc != CS_OK) {
            break;
        }
    }
    cs_jpath_pop(&v->c.path);
    if (v->rc == CS_OK && i < min) {
        conv_fail(v, arr, key, "has %zu strings, at least %zu needed", i, min);
    }
    *n = i;
    return v->rc == CS_OK ? arr : NULL;
}

/* o[key] as Python's int(label) reads a label: an integer, or a string of digits; in [lo, hi]. */
static int64_t get_label(conv *v, const cJSON *o, const char *key, int64_t lo, int64_t hi)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
    if (v->rc != CS_OK || !cJSON_IsString(x)) {
        return get_int(v, o, key, lo, hi);
    }
    const char *s = x->valuestring;
    char *end = NULL;
    if (s[0] == '\0') {
        conv_fail(v, x, key, "empty (the rows of a test split have no labels)");
        return 0;
    }
    errno = 0;
    long long l = s[0] >= '0' && s[0] <= '9' ? strtoll(s, &end, 10) : -1;
    if (end && *end == '\0' && errno == 0 && l >= lo && l <= hi) {
        return (int64_t)l;
    }
    conv_fail(v, x, key, "expected a label \"%lld\"..\"%lld\"", (long long)lo, (long long)hi);
    return 0;
}

/* The text of b ("" when nothing was ever put there). */
static const char *txt(const cs_buf *b)
{
    return b->data ? b->data : "";
}

static void clear(cs_buf *b)
{
    b->len = 0;
    if (b->data) {
        b->data[0] = '\0';
    }
}

/* Appends the strings of the NULL-terminated list to b (sticky). */
static void cat(conv *v, cs_buf *b, ...)
{
    va_list ap;
    const char *s;
    va_start(ap, b);
    while ((s = va_arg(ap, const char *)) != NULL) {
        if (v->rc == CS_OK && cs_buf_puts(b, s) != CS_OK) {
            conv_oom(v);
        }
    }
    va_end(ap);
}

static void put_str(conv *v, cJSON *item, const char *key, const char *s)
{
    if (v->rc == CS_OK && !cJSON_AddStringToObject(item, key, s ? s : "")) {
        conv_oom(v);
    }
}

static void put_int(conv *v, cJSON *item, const char *key, int64_t x)
{
    if (v->rc == CS_OK && !cJSON_AddNumberToObject(item, key, (double)x)) {
        conv_oom(v);
    }
}

/* item[key] = a new array of the n strings s (NULL: none yet); returns it, NULL once rc is set. */
static cJSON *put_strs(conv *v, cJSON *item, const char *key, const char *const *s, size_t n)
{
    cJSON *arr = v->rc == CS_OK ? cJSON_AddArrayToObject(item, key) : NULL;
    if (v->rc == CS_OK && !arr) {
        conv_oom(v);
    }
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *x = cJSON_CreateString(s[i]);
        if (!x || !cJSON_AddItemToArray(arr, x)) {
            cJSON_Delete(x);
            conv_oom(v);
            return NULL;
        }
    }
    return arr;
}

/* ---- the formats ------------------------------------------------------------------------- */

/* arc: "Question: {question}\nAnswer:", choices.text, gold = choices.label.index(answerKey) */
static void conv_arc(conv *v, const cJSON *row, cJSON *item)
{
    size_t nt = 0, nl = 0, gold = 0;
    const char *q = get_str(v, row, "question");
    const cJSON *ch = get_obj(v, row, "choices"), *text, *label, *x;
    cs_jpath_push_key(&v->c.path, "choices");
    text = get_strs(v, ch, "text", 2, &nt);
    label = get_strs(v, ch, "label", 2, &nl);
    if (v->rc == CS_OK && nl != nt) {
        conv_fail(v, label, "label", "has %zu labels for %zu texts", nl, nt);
    }
    cs_jpath_pop(&v->c.path);
    const char *key = get_str(v, row, "answerKey");
    if (v->rc != CS_OK) {
        return;
    }
    cJSON_ArrayForEach(x, label)
    {
        if (strcmp(x->valuestring, key) == 0) {
            break;
        }
        gold++;
    }
    if (gold == nl) {
        conv_fail(v, NULL, "answerKey", "not one of choices.label");
        return;
    }
    clear(&v->a);
    cat(v, &v->a, "Question: ", q, "\nAnswer:", NULL);
    put_str(v, item, "context", v->a.data);
    cJSON *choices = v->rc == CS_OK ? cJSON_Duplicate(text, true) : NULL;
    if (v->rc == CS_OK && (!choices || !cJSON_AddItemToObject(item, "choices", choices))) {
        cJSON_Delete(choices);
        conv_oom(v);
    }
    put_int(v, item, "gold", (int64_t)gold);
}

/* hellaswag: preprocess(activity_label + ": " + ctx_a + " " + ctx_b.capitalize()), the
 * preprocessed endings, gold = int(label) */
static void conv_hellaswag(conv *v, const cJSON *row, cJSON *item)
{
    size_t n = 0;
    const char *act = get_str(v, row, "activity_label"), *a = get_str(v, row, "ctx_a");
    const char *b = get_str(v, row, "ctx_b");
    const cJSON *endings = get_strs(v, row, "endings", 2, &n), *x;
    int64_t gold = get_label(v, row, "label", 0, n > 0 ? (int64_t)n - 1 : 0);
    cs_rc rc = v->rc;
    if (rc != CS_OK) {
        return;
    }
    clear(&v->a);
    clear(&v->b);
    cat(v, &v->a, act, ": ", a, " ", NULL);
    py_capitalize(b, &v->a, &rc);
    hs_preprocess(txt(&v->a), &v->b, &rc);
    if (rc != CS_OK) {
        conv_oom(v);
    }
    put_str(v, item, "context", v->b.data);
    cJSON *choices = put_strs(v, item, "choices", NULL, 0);
    cJSON_ArrayForEach(x, endings)
    {
        clear(&v->b);
        hs_preprocess(x->valuestring, &v->b, &rc);
        cJSON *c = choices && rc == CS_OK ? cJSON_CreateString(txt(&v->b)) : NULL;
        if (choices && (!c || !cJSON_AddItemToArray(choices, c))) {
            cJSON_Delete(c);
            conv_oom(v);
            choices = NULL;
        }
    }
    put_int(v, item, "gold", gold);
}

/* piqa: "Question: {goal}\nAnswer:", [sol1, sol2], gold = label */
static void conv_piqa(conv *v, const cJSON *row, cJSON *item)
{
    const char *goal = get_str(v, row, "goal");
    const char *sol[2] = {get_str(v, row, "sol1"), get_str(v, row, "sol2")};
    int64_t gold = get_int(v, row, "label", 0, 1);
    clear(&v->a);
    cat(v, &v->a, "Question: ", goal, "\nAnswer:", NULL);
    put_str(v, item, "context", v->a.data);
    put_strs(v, item, "choices", sol, 2);
    put_int(v, item, "gold", gold);
}

/* winogrande (partial scoring): contexts = the sentence up to its first "_" + each option, the
 * continuation = the rest after the "_", stripped; gold = answer - 1 */
static void conv_winogrande(conv *v, const cJSON *row, cJSON *item)
{
    const char *s = get_str(v, row, "sentence");
    const char *opt[2] = {get_str(v, row, "option1"), get_str(v, row, "option2")};
    int64_t gold = get_label(v, row, "answer", 1, 2) - 1;
    const char *blank = v->rc == CS_OK ? strchr(s, '_') : NULL;
    size_t b = 0, e = 0;
    if (v->rc == CS_OK && !blank) {
        conv_fail(v, NULL, "sentence", "has no blank \"_\"");
    }
    if (v->rc != CS_OK) {
        return;
    }
    py_strip(blank + 1, strlen(blank + 1), &b, &e);
    if (e == b) {
        conv_fail(v, NULL, "sentence", "has nothing after its blank \"_\"");
        return;
    }
    clear(&v->a);
    clear(&v->b);
    if (cs_buf_append(&v->a, s, (size_t)(blank - s)) != CS_OK ||
        cs_buf_append(&v->b, s, (size_t)(blank - s)) != CS_OK) {
        conv_oom(v);
    }
    cat(v, &v->a, opt[0], NULL);
    cat(v, &v->b, opt[1], NULL);
    const char *ctx[2] = {txt(&v->a), txt(&v->b)};
    put_strs(v, item, "contexts", ctx, 2);
    char *cont = cs_strndup(blank + 1 + b, e - b);
    if (!cont) {
        conv_oom(v);
    }
    put_str(v, item, "continuation", cont);
    free(cont);
    put_int(v, item, "gold", gold);
}

/* boolq: "{passage}\nQuestion: {question}?\nAnswer:", ["no", "yes"], gold = label */
static void conv_boolq(conv *v, const cJSON *row, cJSON *item)
{
    static const char *const no_yes[2] = {"no", "yes"};
    const char *p = get_str(v, row, "passage"), *q = get_str(v, row, "question");
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(row, "label");
    int64_t gold = cJSON_IsBool(label) ? cJSON_IsTrue(label) : get_int(v, row, "label", 0, 1);
    clear(&v->a);
    cat(v, &v->a, p, "\nQuestion: ", q, "?\nAnswer:", NULL);
    put_str(v, item, "context", v->a.data);
    put_strs(v, item, "choices", no_yes, 2);
    put_int(v, item, "gold", gold);
}

/* mmlu: the subject's header, question.strip(), the four lettered choices, "Answer:";
 * ["A", "B", "C", "D"], gold = answer */
static void conv_mmlu(conv *v, const cJSON *row, cJSON *item)
{
    static const char *const letters[4] = {"A", "B", "C", "D"};
    size_t n = 0, b = 0, e = 0, k = 0;
    const char *q = get_str(v, row, "question"), *subject = get_str(v, row, "subject");
    const cJSON *choices = get_strs(v, row, "choices", 0, &n), *x;
    int64_t gold = get_int(v, row, "answer", 0, 3);
    if (v->rc == CS_OK && n != 4) {
        conv_fail(v, choices, "choices", "has %zu strings, expected 4", n);
    }
    if (v->rc != CS_OK) {
        return;
    }
    clear(&v->a);
    clear(&v->b);
    cat(v, &v->a, "The following are multiple choice questions (with answers) about ", NULL);
    cs_rc rc = CS_OK;
    py_replace(subject, strlen(subject), "_", " ", &v->a, &rc);
    py_strip(q, strlen(q), &b, &e);
    if (rc != CS_OK || cs_buf_puts(&v->a, ".\n\n") != CS_OK ||
        cs_buf_append(&v->a, q + b, e - b) != CS_OK) {
        conv_oom(v);
    }
    cJSON_ArrayForEach(x, choices)
    {
        cat(v, &v->a, "\n", letters[k++], ". ", x->valuestring, NULL);
    }
    cat(v, &v->a, "\nAnswer:", NULL);
    put_str(v, item, "context", v->a.data);
    put_strs(v, item, "choices", letters, 4);
    put_int(v, item, "gold", gold);
}

/* gsm8k (generation): "Question: {question}\nAnswer:", the whole answer, lm-eval's stop strings */
static void conv_gsm8k(conv *v, const cJSON *row, cJSON *item)
{
    static const char *const stop[3] = {"Question:", "</s>", "<|im_end|>"};
    char *strict = NULL, *flex = NULL;
    cs_err e = {0};
    const char *q = get_str(v, row, "question"), *answer = get_str(v, row, "answer");
    if (v->rc != CS_OK) {
        return;
    }
    if (cs_score_extract(answer, &strict, &flex, &e) != CS_OK) {
        conv_oom(v);
    } else if (!strict) {
        conv_fail(v, NULL, "answer", "has no final \"#### <number>\"");
    }
    free(strict);
    free(flex);
    clear(&v->a);
    cat(v, &v->a, "Question: ", q, "\nAnswer:", NULL);
    put_str(v, item, "prompt", v->a.data);
    put_str(v, item, "answer", answer);
    put_strs(v, item, "stop", stop, 3);
}

typedef struct cv_format {
    const char *name;
    const char *fields[6]; /* the row's fields, NULL-terminated */
    const char *help;
    cs_task_kind kind;
    void (*fn)(conv *v, const cJSON *row, cJSON *item);
} cv_format;

static const cv_format formats[] = {
        {"arc",
         {"question", "choices", "answerKey", NULL},
         "ARC-Easy and ARC-Challenge: question, choices {text, label}, answerKey",
         CS_TASK_MC,
         conv_arc},
        {"hellaswag",
         {"activity_label", "ctx_a", "ctx_b", "endings", "label", NULL},
         "HellaSwag: activity_label, ctx_a, ctx_b, endings, label",
         CS_TASK_MC,
         conv_hellaswag},
        {"piqa",
         {"goal", "sol1", "sol2", "label", NULL},
         "PIQA: goal, sol1, sol2, label",
         CS_TASK_MC,
         conv_piqa},
        {"winogrande",
         {"sentence", "option1", "option2", "answer", NULL},
         "WinoGrande: sentence (one \"_\"), option1, option2, answer; multiple input items",
         CS_TASK_MULTI,
         conv_winogrande},
        {"boolq",
         {"passage", "question", "label", NULL},
         "BoolQ (SuperGLUE): passage, question, label",
         CS_TASK_MC,
         conv_boolq},
        {"mmlu",
         {"question", "subject", "choices", "answer", NULL},
         "MMLU: question, subject, choices (4), answer",
         CS_TASK_MC,
         conv_mmlu},
        {"gsm8k",
         {"question", "answer", NULL},
         "GSM8K: question, answer (ending \"#### N\"); generation items",
         CS_TASK_GEN,
         conv_gsm8k},
};

static const cv_format *format_named(const char *name)
{
    for (size_t i = 0; i < N_OF(formats); i++) {
        if (strcmp(formats[i].name, name) == 0) {
            return &formats[i];
        }
    }
    return NULL;
}

static size_t n_fields(const cv_format *f)
{
    size_t n = 0;
    while (f->fields[n]) {
        n++;
    }
    return n;
}

/* The format whose fields row has, all of them (the one with the most fields), or NULL. */
static const cv_format *format_of_row(const cJSON *row)
{
    const cv_format *best = NULL;
    for (size_t i = 0; cJSON_IsObject(row) && i < N_OF(formats); i++) {
        size_t k = 0;
        while (formats[i].fields[k] &&
               cJSON_GetObjectItemCaseSensitive(row, formats[i].fields[k])) {
            k++;
        }
        if (!formats[i].fields[k] && (!best || k > n_fields(best))) {
            best = &formats[i];
        }
    }
    return best;
}

/* The fields of f that row lacks, all named in one message; false when it has them all. */
static bool lacks_fields(conv *v, const cv_format *f, const cJSON *row)
{
    cs_buf miss, all;
    size_t n = 0;
    cs_buf_init(&miss);
    cs_buf_init(&all);
    for (size_t k = 0; f->fields[k]; k++) {
        bool has = cJSON_GetObjectItemCaseSensitive(row, f->fields[k]) != NULL;
        if ((!has && cs_buf_printf(&miss, "%s\"%s\"", n++ ? ", " : "", f->fields[k]) != CS_OK) ||
            cs_buf_printf(&all, "%s%s", k ? ", " : "", f->fields[k]) != CS_OK) {
            conv_oom(v);
        }
    }
    if (n > 0 && v->rc == CS_OK) {
        v->rc = cs_err_set(&v->e, CS_ESCHEMA, 0, "missing field%s %s (%s rows have %s)",
                           n > 1 ? "s" : "", miss.data, f->name, all.data);
    }
    cs_buf_fini(&miss);
    cs_buf_fini(&all);
    return v->rc != CS_OK;
}

/* The reference text of an item: its gold answer as it is scored (cs_task_fewshot's shot). */
static void ref_text(conv *v, cs_task_kind kind, const cJSON *item, cs_buf *out)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(item, "gold");
    int gold = g ? (int)g->valuedouble : 0;
    clear(out);
    if (kind == CS_TASK_MC) {
        const cJSON *c =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "choices"), gold);
        cat(v, out, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "context")), " ",
            cJSON_GetStringValue(c), NULL);
    } else if (kind == CS_TASK_MULTI) {
        const cJSON *c =
                cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(item, "contexts"), gold);
        cat(v, out, cJSON_GetStringValue(c), " ",
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "continuation")), NULL);
    } else {
        cat(v, out, cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "prompt")), " ",
            cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "answer")), NULL);
    }
}

/* item as one JSON line; owned (free with free()), NULL once v->rc is set. */
static char *print_item(conv *v, cJSON *item)
{
    char *s = v->rc == CS_OK ? cJSON_PrintUnformatted(item) : NULL;
    if (v->rc == CS_OK && !s) {
        conv_oom(v);
    }
    return s;
}

static cJSON *new_item(conv *v, const char *id, const char *task)
{
    cJSON *item = cJSON_CreateObject();
    if (!item) {
        conv_oom(v);
        return NULL;
    }
    put_str(v, item, "id", id);
    put_str(v, item, "task", task);
    return item;
}

/* Converts row, the index-th row of the file (from 0), into its item's JSON line *line and, with
 * want_ref, its reference item's *ref (both owned, free with free()). On an error v->rc and v->e
 * say what is wrong (*line and *ref may still be set: the caller frees them). */
static void convert_row(conv *v, const cv_format *f, const char *task, size_t index, bool want_ref,
                        const cJSON *row, char **line, char **ref)
{
    char id[CV_TASK_MAX + 32];
    cJSON *item = NULL, *r = NULL;
    cs_jctx_init(&v->c, NULL, &v->e);
    cs_err_clear(&v->e);
    v->bad = row;
    *line = *ref = NULL;
    v->rc = cs_json_as_object(&v->c, row);
    if (v->rc != CS_OK || lacks_fields(v, f, row)) {
        return;
    }
    snprintf(id, sizeof id, "%s-%05zu", task, index);
    item = new_item(v, id, task);
    if (item) {
        f->fn(v, row, item);
    }
    *line = print_item(v, item);
    if (want_ref && v->rc == CS_OK) {
        ref_text(v, f->kind, item, &v->b);
        r = new_item(v, id, task);
        put_str(v, r, "text", v->b.data);
        *ref = print_item(v, r);
    }
    cJSON_Delete(item);
    cJSON_Delete(r);
}

/* "<file>:<line>: <what>" from the reader's message, which never shows the file's text: a value
 * refused for its type is named by its type when it is a string (numbers, booleans and null are
 * shown as they are), and the row itself is "row". */
static void row_error(const conv *v, const char *file, size_t line, cs_err *err)
{
    const char *m = v->e.msg, *got = strstr(m, ", got ");
    const char *root = "(root): ";
    const char *where = strncmp(m, root, strlen(root)) == 0 ? "row: " : "";
    if (where[0]) {
        m += strlen(root);
    }
    if (v->rc == CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    } else if (got && cJSON_IsString(v->bad)) {
        cs_err_set(err, CS_ESCHEMA, 0, "%s:%zu: %s%.*s, got a string", file, line, where,
                   (int)(got - m), m);
    } else {
        cs_err_set(err, CS_ESCHEMA, 0, "%s:%zu: %s%s", file, line, where, m);
    }
}

/* ---- the command ------------------------------------------------------------------------- */

enum { CV_HELP, CV_TASK, CV_SPLIT, CV_SEED };

static const cs_opt cv_options[] = {
        {"help", 'h', CS_OPT_NONE, CV_HELP, NULL, "show this help and exit"},
        {"task", 'T', CS_OPT_VALUE, CV_TASK, "NAME",
         "the items' \"task\" and id prefix (default: FORMAT)"},
        {"split-train", 0, CS_OPT_VALUE, CV_SPLIT, "N",
         "hold out N rows (drawn with --seed) for acdm: STEM.train.jsonl, STEM.ref.jsonl"},
        {"seed", 0, CS_OPT_VALUE, CV_SEED, "S", "--split-train's draw (default 0)"},
};

typedef struct cv_args {
    const char *format, *in, *out, *task;
    int64_t split, seed;
    bool has_seed;
    char *train_path, *ref_path; /* owned; with --split-train */
} cv_args;

/* The rows of IN, converted: per row its item's line and (--split-train) its reference's. */
typedef struct cv_rows {
    char **items, **refs; /* owned, n each */
    size_t n, cap;
} cv_rows;

static void rows_fini(cv_rows *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->items[i]);
        free(r->refs[i]);
    }
    free(r->items);
    free(r->refs);
    memset(r, 0, sizeof *r);
}

static cs_rc rows_push(cv_rows *r, char *item, char *ref)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        char **a = cs_realloc_array(r->items, cap, sizeof(char *));
        if (a) {
            r->items = a;
        }
        char **b = a ? cs_realloc_array(r->refs, cap, sizeof(char *)) : NULL;
        if (b) {
            r->refs = b;
        }
        if (!a || !b) {
            free(item);
            free(ref);
            return CS_ENOMEM;
        }
        r->cap = cap;
    }
    r->items[r->n] = item;
    r->refs[r->n++] = ref;
    return CS_OK;
}

static bool blank_line(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\r') {
            return false;
        }
    }
    return true;
}

/* Converts every row of text[0..len) (the file a->in) into r. On a bad row: CS_ESCHEMA (or the
 * parser's CS_EPARSE) with "<file>:<line>: ..." in err and *hint = the format whose fields the
 * row has, when that is another one. */
static cs_rc convert_rows(const cv_args *a, const cv_format *f, const char *text, size_t len,
                          cv_rows *r, const cv_format **hint, cs_err *err)
{
    conv v;
    size_t line = 0;
    cs_rc rc = CS_OK;
    char name[512];
    memset(&v, 0, sizeof v);
    *hint = NULL;
    for (const char *p = text, *end = text + len; p < end && rc == CS_OK;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        cJSON *row = NULL;
        char *item = NULL, *ref = NULL;
        line++;
        if (!blank_line(p, n)) {
            snprintf(name, sizeof name, "%s:%zu", a->in, line);
            rc = cs_task_parse_line(p, n, name, &row, err);
            if (rc == CS_OK) {
                convert_row(&v, f, a->task, r->n, a->split > 0, row, &item, &ref);
                rc = v.rc;
            }
            if (rc == CS_OK) {
                rc = rows_push(r, item, ref);
                rc = rc == CS_OK ? rc : cs_err_set(err, rc, 0, "out of memory");
            } else if (v.rc != CS_OK) {
                row_error(&v, a->in, line, err);
                const cv_format *g = format_of_row(row);
                *hint = g != f ? g : NULL;
                free(item);
                free(ref);
            }
            cJSON_Delete(row);
        }
        p += n + 1;
    }
    cs_buf_fini(&v.a);
    cs_buf_fini(&v.b);
    if (rc == CS_OK && r->n == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "%s: no rows", a->in);
    }
    return rc;
}

/* The rows held out for --split-train: the first a->split of a Fisher-Yates shuffle of the row
 * numbers under a->seed (cs_rng_shuffle), as cs_task_load_seeded draws its --limit sample. Owned
 * flags, one per row; NULL on no memory. */
static bool *draw_train(const cv_args *a, size_t n)
{
    size_t *idx = cs_alloc_array(n, sizeof(size_t));
    bool *train = cs_calloc_array(n, sizeof(bool));
    cs_rng rng;
    if (!idx || !train) {
        free(idx);
        free(train);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
    }
    cs_rng_seed(&rng, (uint64_t)a->seed);
    cs_rng_shuffle(&rng, idx, n);
    for (size_t i = 0; i < (size_t)a->split; i++) {
        train[idx[i]] = true;
    }
    free(idx);
    return train;
}

static cs_rc append_line(cs_buf *b, const char *line)
{
    cs_rc rc = cs_buf_puts(b, line);
    return rc == CS_OK ? cs_buf_putc(b, '\n') : rc;
}

/* Writes the evaluation items to a->out and, with --split-train, the held-out ones and their
 * references beside it: those two first, OUT last; when a write fails, the files this call wrote
 * are removed again. */
static cs_rc write_outputs(const cv_args *a, const cv_rows *r, const bool *train, cs_err *err)
{
    cs_buf ev, tr, rf;
    cs_rc rc = CS_OK;
    size_t written = 0;
    cs_buf_init(&ev);
    cs_buf_init(&tr);
    cs_buf_init(&rf);
    for (size_t i = 0; i < r->n && rc == CS_OK; i++) {
        if (train && train[i]) {
            rc = append_line(&tr, r->items[i]);
            rc = rc == CS_OK ? append_line(&rf, r->refs[i]) : rc;
        } else {
            rc = append_line(&ev, r->items[i]);
        }
    }
    if (rc != CS_OK) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "out of memory");
    }
    if (rc == CS_OK && train) {
        rc = cs_path_write_atomic(a->train_path, tr.data, tr.len, 0644, err);
        written += rc == CS_OK;
        rc = rc == CS_OK ? cs_path_write_atomic(a->ref_path, rf.data, rf.len, 0644, err) : rc;
        written += rc == CS_OK;
    }
    if (rc == CS_OK) {
        rc = cs_path_write_atomic(a->out, ev.data, ev.len, 0644, err);
    }
    if (rc != CS_OK && written > 0) {
        unlink(a->train_path);
    }
    if (rc != CS_OK && written > 1) {
        unlink(a->ref_path);
    }
    cs_buf_fini(&ev);
    cs_buf_fini(&tr);
    cs_buf_fini(&rf);
    return rc;
}

static void cv_usage(FILE *out)
{
    fprintf(out,
            "usage: calsweep-run convert-task FORMAT IN OUT [--task NAME] [--split-train N "
            "[--seed S]]\n\n"
            "Converts a benchmark's published rows (JSON lines with the dataset's own fields, as "
            "the\ndatasets library exports them) into a calsweep task file, with the prompt "
            "templates of\nlm-evaluation-harness (docs/tasks.md). Item ids are TASK-NNNNN, the "
            "row's number in IN\ncounted from 0 (blank lines do not count). A bad row is refused "
            "naming IN:line and\nthe field (exit 1), and nothing is written; each output file is "
            "replaced whole.\n\n"
            "With --split-train N, N rows drawn with --seed go to STEM.train.jsonl (items) and\n"
            "STEM.ref.jsonl (reference items: the gold answer's text) beside OUT, STEM being\n"
            "OUT's name without .jsonl and .eval; the other rows go to OUT.\n\nformats:\n");
    for (size_t i = 0; i < N_OF(formats); i++) {
        fprintf(out, "  %-12s%s\n", formats[i].name, formats[i].help);
    }
    fprintf(out, "\noptions:\n");
    cs_opt_print_help(out, cv_options, N_OF(cv_options));
}

static void list_formats(cs_buf *b)
{
    for (size_t i = 0; i < N_OF(formats); i++) {
        cs_buf_printf(b, "%s%s", i ? ", " : "", formats[i].name);
    }
}

/* Each option into a; -1 to go on, else an exit code (the message printed). */
static int take_args(int argc, char **argv, cv_args *a)
{
    cs_opt_parser p;
    cs_err err = {0};
    const char *arg, *pos[3] = {NULL, NULL, NULL};
    size_t n_pos = 0;
    int id;
    cs_rc rc;
    cs_opt_init(&p, argc, argv, 2);
    while ((rc = cs_opt_next(&p, cv_options, N_OF(cv_options), &id, &arg, &err)) == CS_OK) {
        if (id == CV_HELP) {
            cv_usage(stdout);
            return CS_EXIT_OK;
        } else if (id == CS_OPT_POSITIONAL) {
            if (n_pos < 3) {
                pos[n_pos++] = arg;
            } else {
                rc = cs_err_set(&err, CS_EINVAL, 0, "unexpected argument '%s'", arg);
            }
        } else if (id == CV_TASK) {
            a->task = arg;
        } else if (id == CV_SPLIT) {
            rc = cs_parse_i64(arg, 1, INT64_MAX, &a->split, "--split-train", &err);
        } else {
            rc = cs_parse_i64(arg, 0, INT64_MAX, &a->seed, "--seed", &err);
            a->has_seed = true;
        }
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc != CS_ENOENT) {
        fprintf(stderr, "calsweep-run convert-task: %s (see --help)\n", err.msg);
        return CS_EXIT_USAGE;
    }
    if (n_pos < 3) {
        fprintf(stderr, "calsweep-run convert-task: expected FORMAT IN OUT (see --help)\n");
        return CS_EXIT_USAGE;
    }
    a->format = pos[0];
    a->in = pos[1];
    a->out = pos[2];
    if (a->has_seed && a->split == 0) {
        fprintf(stderr, "calsweep-run convert-task: --seed is for --split-train\n");
        return CS_EXIT_USAGE;
    }
    return -1;
}

/* A task name as the task schema allows it: [A-Za-z0-9][A-Za-z0-9_.:-]*, at most CV_TASK_MAX. */
static bool task_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CV_TASK_MAX ||
        !strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", s[0])) {
        return false;
    }
    return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == n;
}

/* OUT's siblings for --split-train: <dir>/<stem>.train.jsonl and .ref.jsonl, stem = OUT's name
 * without ".jsonl" and then without ".eval" (tasks/arc.eval.jsonl: tasks/arc.train.jsonl). */
static cs_rc sibling_paths(cv_args *a)
{
    const char *slash = strrchr(a->out, '/');
    size_t base = slash ? (size_t)(slash - a->out) + 1 : 0, n = strlen(a->out);
    if (n - base > 6 && strcmp(a->out + n - 6, ".jsonl") == 0) {
        n -= 6;
    }
    if (n - base > 5 && strncmp(a->out + n - 5, ".eval", 5) == 0) {
        n -= 5;
    }
    cs_buf t, r;
    cs_buf_init(&t);
    cs_buf_init(&r);
    if (cs_buf_printf(&t, "%.*s.train.jsonl", (int)n, a->out) != CS_OK ||
        cs_buf_printf(&r, "%.*s.ref.jsonl", (int)n, a->out) != CS_OK) {
        cs_buf_fini(&t);
        cs_buf_fini(&r);
        return CS_ENOMEM;
    }
    a->train_path = cs_buf_take(&t);
    a->ref_path = cs_buf_take(&r);
    return CS_OK;
}

/* true when path names the same file as in (both exist). */
static bool same_file(const char *in, const char *path)
{
    struct stat s1, s2;
    return path && stat(in, &s1) == 0 && stat(path, &s2) == 0 && s1.st_dev == s2.st_dev &&
           s1.st_ino == s2.st_ino;
}

/* The checks of the arguments that need no file: -1 to go on, else an exit code. */
static int check_args(cv_args *a, const cv_format **f)
{
    const char *me = "calsweep-run convert-task";
    *f = format_named(a->format);
    if (!*f) {
        cs_buf l;
        cs_buf_init(&l);
        list_formats(&l);
        fprintf(stderr, "%s: unknown format '%s' (one of %s)\n", me, a->format,
                l.data ? l.data : "");
        cs_buf_fini(&l);
        return CS_EXIT_USAGE;
    }
    if (!a->task) {
        a->task = (*f)->name;
    }
    if (!task_name_ok(a->task)) {
        fprintf(stderr,
                "%s: --task '%s': expected letters, digits and _ . : - (at most %d, starting "
                "with a letter or digit)\n",
                me, a->task, CV_TASK_MAX);
        return CS_EXIT_USAGE;
    }
    if (a->split > 0 && sibling_paths(a) != CS_OK) {
        fprintf(stderr, "%s: out of memory\n", me);
        return CS_EXIT_FAIL;
    }
    const char *outs[3] = {a->out, a->train_path, a->ref_path};
    for (size_t i = 0; i < 3; i++) {
        if (same_file(a->in, outs[i])) {
            fprintf(stderr, "%s: %s is the input file\n", me, outs[i]);
            return CS_EXIT_USAGE;
        }
    }
    return -1;
}

int cs_cmd_convert(int argc, char **argv)
{
    const char *me = "calsweep-run convert-task";
    cv_args a;
    cv_rows r = {0};
    const cv_format *f = NULL, *hint = NULL;
    cs_err err = {0};
    char *text = NULL;
    bool *train = NULL;
    size_t len = 0;
    cs_rc rc;
    memset(&a, 0, sizeof a);
    int code = take_args(argc, argv, &a);
    code = code >= 0 ? code : check_args(&a, &f);
    if (code >= 0) {
        goto out;
    }
    code = CS_EXIT_FAIL;
    rc = cs_path_read_file(a.in, CV_MAX_FILE, &text, &len, &err);
    if (rc == CS_OK) {
        rc = convert_rows(&a, f, text, len, &r, &hint, &err);
    }
    if (rc == CS_OK && a.split > 0 && (size_t)a.split >= r.n) {
        rc = cs_err_set(&err, CS_EINVAL, 0,
                        "%s has %zu rows: --split-train %lld leaves none to evaluate", a.in, r.n,
                        (long long)a.split);
    }
    if (rc == CS_OK && a.split > 0 && !(train = draw_train(&a, r.n))) {
        rc = cs_err_set(&err, CS_ENOMEM, 0, "out of memory");
    }
    if (rc == CS_OK) {
        rc = write_outputs(&a, &r, train, &err);
    }
    if (rc != CS_OK) {
        fprintf(stderr, "%s: %s", me, err.msg);
        if (hint) {
            fprintf(stderr, "; the row has the fields of %s rows (try: %s %s %s %s)", hint->name,
                    me, hint->name, a.in, a.out);
        }
        fprintf(stderr, "\n");
        goto out;
    }
    printf("%s: %zu %s items (task %s)\n", a.out, r.n - (size_t)a.split, cs_task_kind_name(f->kind),
           a.task);
    if (train) {
        printf("%s: %lld %s items\n%s: %lld reference items\n", a.train_path, (long long)a.split,
               cs_task_kind_name(f->kind), a.ref_path, (long long)a.split);
    }
    code = CS_EXIT_OK;
out:
    free(text);
    free(train);
    rows_fini(&r);
    free(a.train_path);
    free(a.ref_path);
    return code;
}
