/* cs_store_insert.c - submit and extend: a sweep's cells become jobs (see cs_store.h).
 *
 * A job's config and axes are stored as lists of shared fragments (0002_fragments.sql); the rows
 * go in by multi-row INSERTs of INSERT_ROWS jobs; the keys of a sweep's jobs are kept in a
 * cs_keyset while it runs, so a repeated key costs no query.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs_keyset.h"
#include "cs_store_int.h"

/* ---- submit and extend ----------------------------------------------------------------------- */

typedef struct insert_ctx {
    int64_t sweep_id;
    int priority;
    int max_attempts;
    bool force;
    bool extend; /* the sweep may have jobs already: load their keys first */
    int64_t now;
} insert_ctx;

/* Lowercase hex digits (a table: this runs once per cell of a 10^6-cell insert). */
static const unsigned char hex_digit[256] = {
        ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
        ['8'] = 1, ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1,
};

static bool key_ok(const char *key)
{
    unsigned bad = 0;
    if (!key) {
        return false;
    }
    for (size_t n = 0; n < 64; n++) {
        if (!key[n]) {
            return false;
        }
        bad |= hex_digit[(unsigned char)key[n]] ^ 1u;
    }
    return bad == 0 && key[64] == '\0';
}

cs_rc st_lookup_cache(cs_store *s, const char *key, int64_t *result_id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_CACHE_GET, &st, err);
    bool found;
    *result_id = 0;
    if (rc != CS_OK) {
        return rc;
    }
    st_bind_text(st, 1, key);
    return st_step_int64(s, st, result_id, &found, "look up result cache", err);
}

/* Runs a one-column, one-row query with one text parameter; *out = its integer. */
static cs_rc query_int_text(cs_store *s, int id, const char *text, size_t len, int64_t *out,
                            bool *found, const char *what, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, id, &st, err);
    *found = false;
    if (rc != CS_OK) {
        return rc;
    }
    if (text) {
        sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
    }
    return st_step_int64(s, st, out, found, what, err);
}

/* ---- fragments ----------------------------------------------------------------------------- */

/* The fragment id of member text[0..len): the map, else the table, else a new row. A new member
 * must be valid JSON as the only member of an object: CS_EINVAL "malformed JSON" otherwise. */
static cs_rc frag_id(cs_store *s, const char *text, size_t len, int64_t *id, cs_err *err)
{
    uint64_t h = cs_frag_hash(text, len);
    sqlite3_stmt *st = NULL;
    bool found = false;
    cs_rc rc;

    *id = cs_frag_map_find_text(&s->frags, text, len, h);
    if (*id > 0) {
        return CS_OK;
    }
    if (len > INT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "member of %zu bytes", len);
    }
    rc = query_int_text(s, S_FRAG_FIND, text, len, id, &found, "find fragment", err);
    if (rc == CS_OK && !found) {
        rc = st_stmt(s, S_FRAG_INSERT, &st, err);
        if (rc == CS_OK) {
            sqlite3_bind_text(st, 1, text, (int)len, SQLITE_STATIC);
            rc = st_run(s, st, "insert fragment", err);
        }
        if (rc == CS_OK && sqlite3_changes(s->db) == 0) {
            return cs_err_set(err, CS_EINVAL, 0, "malformed JSON in the member '%.*s'",
                              (int)(len < 60 ? len : 60), text);
        }
        if (rc == CS_OK) {
            *id = sqlite3_last_insert_rowid(s->db);
            s->frags_fresh = true;
        }
    }
    if (rc == CS_OK) {
        rc = cs_frag_map_add(&s->frags, *id, text, len, h, err);
    }
    return rc;
}

/* The text of fragment id: the map, else the table. Returns borrowed, valid until the next
 * fragment lookup. */
static cs_rc frag_text(cs_store *s, int64_t id, const char **text, size_t *len, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc;
    int src;

    *text = cs_frag_map_find_id(&s->frags, id, len);
    if (*text) {
        return CS_OK;
    }
    rc = st_stmt(s, S_FRAG_GET, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        rc = cs_frag_map_add(&s->frags, id, t ? t : "", t ? n : 0, cs_frag_hash(t ? t : "", n),
                             err);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_EDB, 0, "store: fragment %lld is missing", (long long)id);
    } else {
        rc = st_err(s->db, src, "read fragment", err);
    }
    st_rel(st);
    if (rc == CS_OK) {
        *text = cs_frag_map_find_id(&s->frags, id, len);
    }
    return rc;
}

/* Rebuilds a config or axes text into s->text: raw when not NULL, else '{' + the texts of the
 * fragments of the id list + '}'. Returns an owned copy in *out (free()). */
cs_rc st_rebuild(cs_store *s, const char *ids, const char *raw, char **out, cs_err *err)
{
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t n = 0;
    cs_rc rc = CS_OK;

    *out = NULL;
    if (raw) {
        *out = cs_strdup(raw);
        return *out ? CS_OK : cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (!cs_frag_parse_ids(ids, id, CS_FRAG_MAX_MEMBERS, &n)) {
        return cs_err_set(err, CS_EDB, 0, "store: bad fragment list '%.40s'", ids ? ids : "");
    }
    s->text.len = 0;
    rc = cs_buf_putc(&s->text, '{');
    for (size_t i = 0; i < n && rc == CS_OK; i++) {
        const char *t = NULL;
        size_t len = 0;
        rc = frag_text(s, id[i], &t, &len, err);
        if (rc == CS_OK && i > 0) {
            rc = cs_buf_putc(&s->text, ',');
        }
        if (rc == CS_OK) {
            rc = cs_buf_append(&s->text, t, len);
        }
    }
    if (rc == CS_OK) {
        rc = cs_buf_putc(&s->text, '}');
    }
    if (rc == CS_OK) {
        *out = cs_strndup(s->text.data, s->text.len);
        if (!*out) {
            rc = CS_ENOMEM;
        }
    }
    if (rc == CS_ENOMEM) {
        cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    return rc;
}

/* The members of the previous cell's config (or axes) and their ids: consecutive cells share
 * most members, which are then found with one memcmp instead of a hash lookup. */
typedef struct member_memo {
    cs_buf text;
    cs_frag_span span[CS_FRAG_MAX_MEMBERS];
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t n;
} member_memo;

/* An object text as stored: the id list in ids, or *raw = true when the text is kept whole
 * (it is not an object that cs_frag_split can cut; then it must still be valid JSON). spans/n
 * receive the members (n = 0 when raw). The members before the first byte in which text differs
 * from the previous cell's (memo) are that cell's: only the rest is split and looked up. */
static cs_rc encode_object(cs_store *s, member_memo *memo, const char *text, size_t len,
                           cs_buf *ids, bool *raw, cs_frag_span *spans, size_t *n, const char *what,
                           cs_err *err)
{
    int64_t id[CS_FRAG_MAX_MEMBERS];
    size_t keep = 0, rest = 0;
    bool ok;
    cs_rc rc = CS_OK;

    ids->len = 0;
    *raw = false;
    if (memo->n > 0) {
        /* Member k is the memo's when its bytes and the separator after it are common. */
        size_t common = cs_frag_common_prefix(text, len, memo->text.data, memo->text.len);
        while (keep < memo->n && memo->span[keep].off + memo->span[keep].len < common) {
            keep++;
        }
    }
    if (keep > 0) {
        memcpy(spans, memo->span, keep * sizeof(*spans));
        memcpy(id, memo->id, keep * sizeof(*id));
        ok = cs_frag_split_from(text, len, memo->span[keep - 1].off + memo->span[keep - 1].len + 1,
                                spans + keep, CS_FRAG_MAX_MEMBERS - keep, &rest);
        *n = keep + rest;
    } else {
        ok = cs_frag_split(text, len, spans, CS_FRAG_MAX_MEMBERS, n);
    }
    if (!ok) {
        int64_t valid = 0;
        bool found = false;
        *n = 0;
        *raw = true;
        memo->n = 0;
        if (len > INT_MAX) {
            return cs_err_set(err, CS_ETOOBIG, 0, "%s of %zu bytes", what, len);
        }
        rc = query_int_text(s, S_JSON_VALID, text, len, &valid, &found, "check JSON", err);
        if (rc == CS_OK && !valid) {
            rc = cs_err_set(err, CS_EINVAL, 0, "%s: malformed JSON", what);
        }
        return rc;
    }
    for (size_t i = keep; i < *n && rc == CS_OK; i++) {
        const char *m = text + spans[i].off;
        /* After the member that changed, the others are often the memo's again. */
        if (i < memo->n && memo->span[i].len == spans[i].len &&
            memcmp(memo->text.data + memo->span[i].off, m, spans[i].len) == 0) {
            id[i] = memo->id[i];
            continue;
        }
        rc = frag_id(s, m, spans[i].len, &id[i], err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "%s", what);
        }
    }
    if (rc == CS_OK) {
        rc = cs_frag_format_ids(ids, id, *n);
        if (rc != CS_OK) {
            return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    }
    memo->text.len = 0;
    memo->n = 0;
    if (rc == CS_OK && cs_buf_append(&memo->text, text, len) == CS_OK) {
        memcpy(memo->span, spans, *n * sizeof(*spans));
        memcpy(memo->id, id, *n * sizeof(*id));
        memo->n = *n;
    }
    return rc;
}

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* When member m[0..len) is "model": value (the key written plainly, as canonical JSON always
 * does), the value's span without surrounding whitespace. */
static bool model_member(const char *m, size_t len, const char **v, size_t *vlen)
{
    size_t i = 0, end = len;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    if (len - i < 7 || memcmp(m + i, "\"model\"", 7) != 0) {
        return false;
    }
    i += 7;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    if (i >= len || m[i] != ':') {
        return false;
    }
    i++;
    while (i < len && is_ws(m[i])) {
        i++;
    }
    while (end > i && is_ws(m[end - 1])) {
        end--;
    }
    *v = m + i;
    *vlen = end - i;
    return true;
}

/* Fills s->req with the requirements of json[0..len) - a model object (whole = false) or a whole
 * config (whole = true) - unless they are cached. A malformed text fails with SQLite's
 * "malformed JSON". */
static cs_rc reqs_of(cs_store *s, const char *json, size_t len, bool whole, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    req_cache *c = &s->req;
    cs_rc rc;
    int src;

    if (c->model && c->whole == whole && c->len == len && memcmp(c->model, json, len) == 0) {
        return CS_OK;
    }
    st_req_cache_clear(c);
    if (len > INT_MAX) {
        return cs_err_set(err, CS_ETOOBIG, 0, "store: config of %zu bytes", len);
    }
    rc = st_stmt(s, whole ? S_REQ_OF_CONFIG : S_REQ_OF_MODEL, &st, err);
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_text(st, 1, json, (int)len, SQLITE_STATIC);
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = st_err(s->db, src, "read the model's requirements", err);
        st_rel(st);
        return rc;
    }
    for (int i = 0; i < 4; i++) {
        c->value[i] = sqlite3_value_dup(sqlite3_column_value(st, i));
        if (!c->value[i]) {
            rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
        }
    }
    st_rel(st);
    c->model = rc == CS_OK ? malloc(len ? len : 1) : NULL;
    if (rc == CS_OK && !c->model) {
        rc = cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (rc != CS_OK) {
        st_req_cache_clear(c);
        return rc;
    }
    memcpy(c->model, json, len);
    c->len = len;
    c->whole = whole;
    return CS_OK;
}

/* The requirement columns of a config: from its "model" member, evaluated once per distinct
 * model (consecutive cells share it), else from the whole text (the model key escaped, no model,
 * or a config kept raw). */
static cs_rc config_reqs(cs_store *s, const char *config, size_t len, const cs_frag_span *spans,
                         size_t n, cs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = NULL;
        size_t vlen = 0;
        if (model_member(config + spans[i].off, spans[i].len, &v, &vlen)) {
            return reqs_of(s, v, vlen, false, err);
        }
    }
    return reqs_of(s, config, len, true, err);
}

/* ---- the insert path ------------------------------------------------------------------------ */

/* One of the 17 values per row of JOB_INSERT that the requirement cache provides, copied out of
 * it (the cache may hold another model's by the time the row is written). */
typedef struct req_val {
    int type; /* SQLITE_NULL, _INTEGER, _FLOAT, _TEXT */
    int64_t i;
    double d;
    cs_buf text;
} req_val;

/* A job waiting in the insert batch: its own copies of everything it binds. */
typedef struct pending_row {
    char key[65];
    cs_buf cfg, axes; /* id lists, or the whole texts when raw */
    bool cfg_raw, axes_raw;
    bool baseline;
    int64_t result_id; /* 0: queued */
    req_val req[4];
} pending_row;

/* Rows per multi-row INSERT: one statement per job cost as much again as the row itself. The
 * insert is OR FAIL and job_row's references are deferred (0002_fragments.sql): no constraint can
 * then make SQLite undo part of a statement, so it keeps no statement journal (a copy of every
 * page the statement touches); on an error the operation's transaction or savepoint is undone
 * whole anyway. */
#define INSERT_ROWS 32

/* Per-insert state: the sweep's keys, the previous cell's members, the batch of rows. */
typedef struct inserter {
    cs_keyset keys; /* the sweep's stored keys, once keys_on */
    bool keys_on;   /* keys holds every stored job of the sweep (extend, or a cell not unique) */
    member_memo cfg_memo, axes_memo;
    cs_frag_span spans[CS_FRAG_MAX_MEMBERS];
    pending_row rows[INSERT_ROWS];
    size_t n_rows;
} inserter;

static void inserter_fini(inserter *in)
{
    cs_keyset_fini(&in->keys);
    cs_buf_fini(&in->cfg_memo.text);
    cs_buf_fini(&in->axes_memo.text);
    for (size_t r = 0; r < INSERT_ROWS; r++) {
        cs_buf_fini(&in->rows[r].cfg);
        cs_buf_fini(&in->rows[r].axes);
        for (int i = 0; i < 4; i++) {
            cs_buf_fini(&in->rows[r].req[i].text);
        }
    }
}

/* Puts the keys of the sweep's stored jobs into in->keys. */
static cs_rc load_keys(cs_store *s, inserter *in, int64_t sweep_id, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    cs_rc rc = st_stmt(s, S_SWEEP_KEYS, &st, err);
    int src;
    if (rc != CS_OK) {
        return rc;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        const char *key = (const char *)sqlite3_column_text(st, 1);
        if (!key_ok(key)) {
            rc = cs_err_set(err, CS_EDB, 0, "store: job %lld has a bad key",
                            (long long)sqlite3_column_int64(st, 0));
            break;
        }
        rc = cs_keyset_add(&in->keys, cs_keyset_fingerprint(key), sqlite3_column_int64(st, 0), err);
        if (rc != CS_OK) {
            break;
        }
    }
    if (rc == CS_OK && src != SQLITE_DONE) {
        rc = st_err(s->db, src, "read the sweep's keys", err);
    }
    st_rel(st);
    return rc;
}

/* Whether the sweep has a job with key (fingerprint fp) already: stored, or in the batch. */
static cs_rc key_known(cs_store *s, const inserter *in, const char *key, uint64_t fp, bool *known,
                       cs_err *err)
{
    *known = false;
    for (size_t r = 0; r < in->n_rows; r++) {
        if (memcmp(in->rows[r].key, key, 64) == 0) {
            *known = true;
            return CS_OK;
        }
    }
    for (size_t i = cs_keyset_first(&in->keys, fp); i != CS_KEYSET_END;
         i = cs_keyset_next(&in->keys, fp, i)) {
        sqlite3_stmt *st = NULL;
        cs_rc rc = st_stmt(s, S_KEY_OF, &st, err);
        int src;
        if (rc != CS_OK) {
            return rc;
        }
        sqlite3_bind_int64(st, 1, cs_keyset_id(&in->keys, i));
        src = sqlite3_step(st);
        if (src == SQLITE_ROW) {
            const char *k = (const char *)sqlite3_column_text(st, 0);
            *known = k && strcmp(k, key) == 0;
        } else if (src != SQLITE_DONE) {
            rc = st_err(s->db, src, "read a job's key", err);
        }
        st_rel(st);
        if (rc != CS_OK || *known) {
            return rc;
        }
    }
    return CS_OK;
}

static cs_rc copy_req(req_val *v, sqlite3_value *src)
{
    v->type = sqlite3_value_type(src);
    if (v->type == SQLITE_INTEGER) {
        v->i = sqlite3_value_int64(src);
    } else if (v->type == SQLITE_FLOAT) {
        v->d = sqlite3_value_double(src);
    } else if (v->type == SQLITE_TEXT) {
        const char *t = (const char *)sqlite3_value_text(src);
        v->text.len = 0;
        return cs_buf_append(&v->text, t ? t : "", (size_t)sqlite3_value_bytes(src));
    } else {
        v->type = SQLITE_NULL;
    }
    return CS_OK;
}

/* Encodes a cell that the sweep does not have into the next row of the batch. */
static cs_rc add_row(cs_store *s, inserter *in, const cs_cell *cell, int64_t result_id, cs_err *err)
{
    pending_row *row = &in->rows[in->n_rows];
    cs_frag_span axes_spans[CS_FRAG_MAX_MEMBERS];
    size_t n = 0, n_axes = 0;
    size_t cfg_len = cell->config_len ? cell->config_len : strlen(cell->config);
    size_t axes_len = cell->axes_len ? cell->axes_len : strlen(cell->axes);
    cs_rc rc;

    rc = encode_object(s, &in->cfg_memo, cell->config, cfg_len, &row->cfg, &row->cfg_raw, in->spans,
                       &n, "config", err);
    if (rc == CS_OK) {
        rc = config_reqs(s, cell->config, cfg_len, in->spans, n, err);
    }
    if (rc == CS_OK) {
        rc = encode_object(s, &in->axes_memo, cell->axes, axes_len, &row->axes, &row->axes_raw,
                           axes_spans, &n_axes, "axes", err);
    }
    if (rc != CS_OK) {
        return rc;
    }
    if (row->cfg_raw) {
        row->cfg.len = 0;
        rc = cs_buf_append(&row->cfg, cell->config, cfg_len);
    }
    if (rc == CS_OK && row->axes_raw) {
        row->axes.len = 0;
        rc = cs_buf_append(&row->axes, cell->axes, axes_len);
    }
    for (int i = 0; i < 4 && rc == CS_OK; i++) {
        rc = copy_req(&row->req[i], s->req.value[i]);
    }
    if (rc != CS_OK) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    memcpy(row->key, cell->key, 65);
    row->baseline = cell->baseline;
    row->result_id = result_id;
    in->n_rows++;
    return CS_OK;
}

static void bind_row(sqlite3_stmt *st, int b, const insert_ctx *ic, const pending_row *row)
{
    sqlite3_bind_int64(st, b + 1, ic->sweep_id);
    sqlite3_bind_text(st, b + 2, row->key, 64, SQLITE_STATIC);
    if (row->cfg_raw) {
        sqlite3_bind_text(st, b + 3, "[]", 2, SQLITE_STATIC);
        sqlite3_bind_text(st, b + 5, row->cfg.data, (int)row->cfg.len, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, b + 3, row->cfg.data, (int)row->cfg.len, SQLITE_STATIC);
        sqlite3_bind_null(st, b + 5);
    }
    if (row->axes_raw) {
        sqlite3_bind_text(st, b + 4, "[]", 2, SQLITE_STATIC);
        sqlite3_bind_text(st, b + 6, row->axes.data, (int)row->axes.len, SQLITE_STATIC);
    } else {
        sqlite3_bind_text(st, b + 4, row->axes.data, (int)row->axes.len, SQLITE_STATIC);
        sqlite3_bind_null(st, b + 6);
    }
    sqlite3_bind_int(st, b + 7, row->baseline ? 1 : 0);
    sqlite3_bind_text(st, b + 8, row->result_id ? "cached" : "queued", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, b + 9, ic->now);
    sqlite3_bind_text(st, b + 10, row->result_id ? "result cached" : "submitted", -1,
                      SQLITE_STATIC);
    sqlite3_bind_int(st, b + 11, ic->priority);
    sqlite3_bind_int(st, b + 12, ic->max_attempts);
    if (row->result_id) {
        sqlite3_bind_int64(st, b + 13, row->result_id);
    } else {
        sqlite3_bind_null(st, b + 13);
    }
    for (int i = 0; i < 4; i++) {
        const req_val *v = &row->req[i];
        if (v->type == SQLITE_INTEGER) {
            sqlite3_bind_int64(st, b + 14 + i, v->i);
        } else if (v->type == SQLITE_FLOAT) {
            sqlite3_bind_double(st, b + 14 + i, v->d);
        } else if (v->type == SQLITE_TEXT) {
            sqlite3_bind_text(st, b + 14 + i, v->text.data ? v->text.data : "", (int)v->text.len,
                              SQLITE_STATIC);
        } else {
            sqlite3_bind_null(st, b + 14 + i);
        }
    }
}

/* The multi-row insert (INSERT_ROWS rows), prepared on first use. */
static cs_rc bulk_stmt(cs_store *s, sqlite3_stmt **out, cs_err *err)
{
    cs_buf sql = {0};
    int src;
    cs_rc rc = CS_OK;

    if (s->bulk) {
        sqlite3_reset(s->bulk);
        *out = s->bulk;
        return CS_OK;
    }
    /* JOB_INSERT's column list, then its values once per row with the parameters shifted. */
    rc = cs_buf_puts(&sql, st_sql[S_JOB_INSERT]);
    if (rc == CS_OK) {
        char *values = strstr(sql.data, " VALUES ");
        sql.len = (size_t)(values - sql.data) + 8;
        for (int r = 0; r < INSERT_ROWS && rc == CS_OK; r++) {
            int b = 17 * r;
            rc = cs_buf_printf(&sql, "%s(", r ? "," : "");
            for (int i = 1; i <= 17 && rc == CS_OK; i++) {
                rc = cs_buf_printf(&sql, "?%d,", b + i);
            }
            if (rc == CS_OK) {
                rc = cs_buf_printf(&sql, "?%d)", b + 9); /* created = state_at */
            }
        }
    }
    if (rc != CS_OK) {
        cs_buf_fini(&sql);
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    src = sqlite3_prepare_v3(s->db, sql.data, -1, SQLITE_PREPARE_PERSISTENT, &s->bulk, NULL);
    cs_buf_fini(&sql);
    if (src != SQLITE_OK) {
        return st_err(s->db, src, "prepare the bulk insert", err);
    }
    *out = s->bulk;
    return CS_OK;
}

/* Writes the batch: one multi-row INSERT when it is full, else one INSERT per row. With keys_on
 * the new jobs' keys join in->keys (rowids of one INSERT are consecutive: the table only grows at
 * its end; checked on the first and last row). */
static cs_rc flush_rows(cs_store *s, inserter *in, const insert_ctx *ic, cs_err *err)
{
    sqlite3_stmt *st = NULL;
    int64_t last = 0;
    cs_rc rc = CS_OK;

    if (in->n_rows == INSERT_ROWS) {
        rc = bulk_stmt(s, &st, err);
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            bind_row(st, 17 * (int)r, ic, &in->rows[r]);
        }
        if (rc == CS_OK) {
            rc = st_run(s, st, "insert jobs", err);
        }
        if (rc == CS_OK && sqlite3_changes(s->db) != INSERT_ROWS) {
            rc = cs_err_set(err, CS_EINTERNAL, 0, "store: the bulk insert stored %d rows",
                            sqlite3_changes(s->db));
        }
    } else {
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            rc = st_stmt(s, S_JOB_INSERT, &st, err);
            if (rc == CS_OK) {
                bind_row(st, 0, ic, &in->rows[r]);
                rc = st_run(s, st, "insert job", err);
            }
        }
    }
    last = sqlite3_last_insert_rowid(s->db);
    if (rc == CS_OK && in->keys_on && in->n_rows > 0) {
        int64_t first = last - (int64_t)in->n_rows + 1;
        for (int k = 0; k < 2 && rc == CS_OK; k++) {
            sqlite3_stmt *q = NULL;
            const pending_row *row = &in->rows[k ? in->n_rows - 1 : 0];
            rc = st_stmt(s, S_KEY_OF, &q, err);
            if (rc == CS_OK) {
                sqlite3_bind_int64(q, 1, k ? last : first);
                if (sqlite3_step(q) != SQLITE_ROW || !sqlite3_column_text(q, 0) ||
                    strcmp((const char *)sqlite3_column_text(q, 0), row->key) != 0) {
                    rc = cs_err_set(err, CS_EINTERNAL, 0,
                                    "store: the batch's job ids are not consecutive");
                }
                st_rel(q);
            }
        }
        for (size_t r = 0; r < in->n_rows && rc == CS_OK; r++) {
            rc = cs_keyset_add(&in->keys, cs_keyset_fingerprint(in->rows[r].key),
                               first + (int64_t)r, err);
        }
    }
    in->n_rows = 0;
    return rc;
}

/* Reads every cell of the stream into the sweep. */
static cs_rc insert_cells(cs_store *s, const insert_ctx *ic, cs_cell_next_fn next, void *ctx,
                          cs_store_submit_counts *c, cs_err *err)
{
    inserter *in = calloc(1, sizeof(*in));
    bool probe_cache = false, found = false;
    int64_t any = 0;
    size_t flushed = 0; /* cells up to the first one in the batch */
    cs_cell cell;
    cs_rc rc = CS_OK;

    if (!in) {
        return cs_err_set(err, CS_ENOMEM, 0, "store: out of memory");
    }
    if (!ic->force) {
        /* An empty cache (a new database) needs no probe per cell. */
        rc = query_int_text(s, S_CACHE_ANY, NULL, 0, &any, &found, "probe result cache", err);
        probe_cache = any != 0;
    }
    if (rc == CS_OK && ic->extend) {
        rc = load_keys(s, in, ic->sweep_id, err);
        in->keys_on = true;
    }
    while (rc == CS_OK) {
        int64_t result_id = 0;
        bool known = false;
        memset(&cell, 0, sizeof(cell));
        rc = next(ctx, &cell, err);
        if (rc == CS_ENOENT) {
            cs_err_clear(err);
            rc = CS_OK;
            break;
        }
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cell %zu", c->cells + 1);
            break;
        }
        c->cells++;
        if (!key_ok(cell.key) || !cell.config || !cell.axes) {
            rc = cs_err_set(err, CS_EINVAL, 0, "store: cell %zu: %s", c->cells,
                            !key_ok(cell.key) ? "key is not 64 lowercase hex digits"
                                              : "config or axes missing");
            break;
        }
        if (!cell.unique && !in->keys_on) {
            /* The cells so far needed no check; this one is checked against them all. */
            rc = flush_rows(s, in, ic, err);
            if (rc == CS_OK) {
                rc = load_keys(s, in, ic->sweep_id, err);
            }
            in->keys_on = true;
        }
        if (rc == CS_OK && in->keys_on) {
            rc = key_known(s, in, cell.key, cs_keyset_fingerprint(cell.key), &known, err);
        }
        if (rc != CS_OK) {
            break;
        }
        if (known) {
            c->existing++;
            continue;
        }
        if (probe_cache) {
            rc = st_lookup_cache(s, cell.key, &result_id, err);
            if (rc != CS_OK) {
                break;
            }
        }
        if (in->n_rows == 0) {
            flushed = c->cells - 1;
        }
        rc = add_row(s, in, &cell, result_id, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cell %zu (key %.12s)", c->cells, cell.key);
            break;
        }
        if (in->n_rows == INSERT_ROWS) {
            rc = flush_rows(s, in, ic, err);
            if (rc != CS_OK) {
                cs_err_prefix(err, "store: cells %zu..%zu", flushed + 1, c->cells);
                break;
            }
        }
        c->inserted++;
        if (result_id) {
            c->cached++;
        } else {
            c->queued++;
        }
        if (cell.baseline) {
            c->baselines++;
        }
    }
    if (rc == CS_OK && in->n_rows > 0) {
        rc = flush_rows(s, in, ic, err);
        if (rc != CS_OK) {
            cs_err_prefix(err, "store: cells %zu..%zu", flushed + 1, c->cells);
        }
    }
    inserter_fini(in);
    free(in);
    return rc;
}

static int64_t secs_to_ms(double sec)
{
    if (!(sec > 0)) {
        return 0;
    }
    if (sec > (double)(INT64_MAX / 1000)) {
        return INT64_MAX / 1000 * 1000;
    }
    return (int64_t)llround(sec * 1000.0);
}

cs_rc cs_store_submit(cs_store *s, const cs_sweep_meta *meta, cs_cell_next_fn next, void *ctx,
                      bool force, int64_t now, cs_store_submit_counts *counts, cs_err *err)
{
    st_op op;
    cs_store_submit_counts c = {0};
    sqlite3_stmt *st = NULL;
    insert_ctx ic = {0};
    const cs_policy *p = meta ? &meta->policy : NULL;
    cs_rc rc;
    int src;

    if (counts) {
        memset(counts, 0, sizeof(*counts));
    }
    if (meta && meta->name && (p->max_attempts < 1 || p->max_running < 0)) {
        return cs_err_set(err, CS_EINVAL, 0,
                          "store: submit %s: max_attempts %d must be >= 1, max_running %d >= 0",
                          meta->name, p->max_attempts, p->max_running);
    }
    rc = st_enter(&op, s, ST_WRITE,
                  !meta || !meta->name || !meta->spec || !meta->spec_hash || !next
                          ? "submit: name, spec, hash and cells needed"
                          : NULL,
                  err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_stmt(s, S_SWEEP_LIVE, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    st_bind_text(st, 1, meta->name);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        rc = cs_err_set(err, CS_EEXIST, 0,
                        "store: sweep '%s' already exists (id %lld); extend it to add cells, "
                        "or cancel it first",
                        meta->name, (long long)sqlite3_column_int64(st, 0));
    } else if (src != SQLITE_DONE) {
        rc = st_err(s->db, src, "look up sweep", err);
    }
    st_rel(st);
    if (rc != CS_OK) {
        goto out;
    }
    rc = st_stmt(s, S_SWEEP_INSERT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    st_bind_text(st, 1, meta->name);
    st_bind_text(st, 2, meta->spec);
    st_bind_text(st, 3, meta->spec_hash);
    sqlite3_bind_int(st, 4, p->max_attempts);
    sqlite3_bind_int64(st, 5, secs_to_ms(p->backoff_base_s));
    sqlite3_bind_int64(st, 6, secs_to_ms(p->backoff_max_s));
    sqlite3_bind_int64(st, 7, p->timeout_s > 0 ? p->timeout_s * 1000 : 0);
    sqlite3_bind_int(st, 8, p->priority);
    sqlite3_bind_int(st, 9, p->max_running);
    st_bind_text(st, 10, p->stop_on_failure ? "stop" : "continue");
    sqlite3_bind_int64(st, 11, now);
    rc = st_run(s, st, "insert sweep", err);
    if (rc != CS_OK) {
        goto out;
    }
    c.sweep_id = sqlite3_last_insert_rowid(s->db);
    rc = st_stmt(s, S_SWEEP_EVENT, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, c.sweep_id);
    st_bind_text(st, 3, "active");
    st_bind_text(st, 4, "submitted");
    rc = st_run(s, st, "log sweep", err);
    if (rc != CS_OK) {
        goto out;
    }
    ic.sweep_id = c.sweep_id;
    ic.priority = p->priority;
    ic.max_attempts = p->max_attempts;
    ic.force = force;
    ic.now = now;
    rc = insert_cells(s, &ic, next, ctx, &c, err);
    if (rc == CS_OK && c.inserted == 0) {
        rc = cs_err_set(err, CS_EINVAL, 0, "store: sweep '%s' has no cells", meta->name);
    }
    if (rc == CS_OK) {
        rc = st_settle_one(s, c.sweep_id, now, err);
    }
    if (rc == CS_OK && c.inserted >= CS_STORE_BULK_JOBS) {
        s->defer_ckpt = true;
    }
out:
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}

cs_rc cs_store_extend(cs_store *s, int64_t sweep_id, const cs_sweep_meta *meta,
                      cs_cell_next_fn next, void *ctx, bool force, int64_t now,
                      cs_store_submit_counts *counts, cs_err *err)
{
    st_op op;
    cs_store_submit_counts c = {0};
    sqlite3_stmt *st = NULL;
    insert_ctx ic = {0};
    cs_sweep_state state = CS_SWEEP_ACTIVE;
    cs_rc rc;
    int src;

    if (counts) {
        memset(counts, 0, sizeof(*counts));
    }
    rc = st_enter(&op, s, ST_WRITE, !next ? "extend: no cells" : NULL, err);
    if (rc != CS_OK) {
        return rc;
    }
    rc = st_stmt(s, S_SWEEP_BASICS, &st, err);
    if (rc != CS_OK) {
        goto out;
    }
    sqlite3_bind_int64(st, 1, sweep_id);
    src = sqlite3_step(st);
    if (src == SQLITE_ROW) {
        state = st_sweep_state_of((const char *)sqlite3_column_text(st, 0));
        ic.priority = sqlite3_column_int(st, 1);
        ic.max_attempts = sqlite3_column_int(st, 2);
    } else if (src == SQLITE_DONE) {
        rc = cs_err_set(err, CS_ENOENT, 0, "store: extend: no sweep %lld", (long long)sweep_id);
    } else {
        rc = st_err(s->db, src, "read sweep", err);
    }
    st_rel(st);
    if (rc == CS_OK && state == CS_SWEEP_CANCELLED) {
        rc = cs_err_set(err, CS_ESTATE, 0, "store: extend: sweep %lld is cancelled",
                        (long long)sweep_id);
    }
    if (rc != CS_OK) {
        goto out;
    }
    if (meta && meta->spec && meta->spec_hash) {
        rc = st_stmt(s, S_SWEEP_SPEC, &st, err);
        if (rc != CS_OK) {
            goto out;
        }
        sqlite3_bind_int64(st, 1, sweep_id);
        st_bind_text(st, 2, meta->spec);
        st_bind_text(st, 3, meta->spec_hash);
        sqlite3_bind_int64(st, 4, now);
        rc = st_run(s, st, "update sweep spec", err);
        if (rc != CS_OK) {
            goto out;
        }
    }
    c.sweep_id = sweep_id;
    ic.sweep_id = sweep_id;
    ic.force = force;
    ic.extend = true;
    ic.now = now;
    rc = insert_cells(s, &ic, next, ctx, &c, err);
    if (rc == CS_OK && state == CS_SWEEP_DONE && c.queued > 0) {
        rc = st_sweep_set_state(s, sweep_id, "done", "active", "extended", now, NULL, err);
    }
    if (rc == CS_OK && c.inserted >= CS_STORE_BULK_JOBS) {
        s->defer_ckpt = true;
    }
out:
    rc = st_leave(&op, rc, err);
    if (rc == CS_OK && counts) {
        *counts = c;
    }
    return rc;
}
