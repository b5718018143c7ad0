/* cs_prefetch.c - the producer thread and the ring of chunks (see cs_prefetch.h).
 *
 * The ring holds CS_PREFETCH_CHUNKS chunks; `count` of them, from `head` on, are full and waiting
 * for the consumer. The producer fills the chunk at (head + count) % N without the lock (nobody
 * else touches a chunk that is neither full nor being read), then publishes it. The consumer
 * reads the chunk at head without the lock and gives it back when it asks for the cell after
 * its last one, so the strings of the cell it returned last stay valid until then.
 */
#include "cs_prefetch.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "cs_alloc.h"

typedef struct cell_ref {
    size_t key, config, config_len, axes, axes_len; /* offsets into the chunk's text, lengths */
    bool baseline;
    bool unique;
} cell_ref;

typedef struct chunk {
    size_t n;     /* cells */
    cs_rc end_rc; /* after the n cells: CS_OK = more follow, else the stream's end or error */
    cs_err end_err;
    cs_buf text;
    cell_ref cell[CS_PREFETCH_CELLS];
} chunk;

struct cs_prefetch {
    cs_cell_next_fn next;
    void *ctx;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    chunk ring[CS_PREFETCH_CHUNKS];
    size_t head;  /* consumer: the chunk it reads (once count > 0) */
    size_t count; /* full chunks from head on; the consumer's current one included */
    bool stop;    /* the consumer is gone: the producer ends */
    /* Consumer only: */
    bool reading; /* it holds ring[head] */
    size_t pos;   /* next cell in ring[head] */
};

/* Copies cell into c's slot k. */
static cs_rc copy_cell(chunk *c, size_t k, const cs_cell *cell)
{
    cell_ref *r = &c->cell[k];
    size_t nk = strlen(cell->key);
    size_t nc = cell->config_len ? cell->config_len : strlen(cell->config);
    size_t na = cell->axes_len ? cell->axes_len : strlen(cell->axes);
    cs_rc rc = cs_buf_reserve(&c->text, nk + nc + na + 3);
    if (rc != CS_OK) {
        return rc;
    }
    r->key = c->text.len;
    cs_buf_append(&c->text, cell->key, nk + 1);
    r->config = c->text.len;
    r->config_len = nc;
    cs_buf_append(&c->text, cell->config, nc + 1);
    r->axes = c->text.len;
    r->axes_len = na;
    cs_buf_append(&c->text, cell->axes, na + 1);
    r->baseline = cell->baseline;
    r->unique = cell->unique;
    return CS_OK;
}

static void *produce(void *arg)
{
    cs_prefetch *p = arg;
    size_t slot;

    pthread_mutex_lock(&p->mu);
    for (;;) {
        chunk *c;
        while (p->count == CS_PREFETCH_CHUNKS && !p->stop) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        if (p->stop) {
            break;
        }
        slot = (p->head + p->count) % CS_PREFETCH_CHUNKS;
        pthread_mutex_unlock(&p->mu);

        c = &p->ring[slot];
        c->n = 0;
        c->text.len = 0;
        c->end_rc = CS_OK;
        cs_err_clear(&c->end_err);
        while (c->n < CS_PREFETCH_CELLS) {
            cs_cell cell;
            memset(&cell, 0, sizeof(cell));
            c->end_rc = p->next(p->ctx, &cell, &c->end_err);
            if (c->end_rc == CS_OK && (!cell.key || !cell.config || !cell.axes)) {
                c->end_rc = cs_err_set(&c->end_err, CS_EINVAL, 0,
                                       "prefetch: a cell without "
                                       "key, config or axes");
            }
            if (c->end_rc == CS_OK && copy_cell(c, c->n, &cell) != CS_OK) {
                c->end_rc = cs_err_set(&c->end_err, CS_ENOMEM, 0, "prefetch: out of memory");
            }
            if (c->end_rc != CS_OK) {
                break;
            }
            c->n++;
        }

        pthread_mutex_lock(&p->mu);
        p->count++;
        pthread_cond_broadcast(&p->cv);
        if (c->end_rc != CS_OK) {
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

cs_rc cs_prefetch_start(cs_cell_next_fn next, void *ctx, cs_prefetch **out, cs_err *err)
{
    cs_prefetch *p;
    int r;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (!p) {
        return cs_err_set(err, CS_ENOMEM, 0, "prefetch: out of memory");
    }
    p->next = next;
    p->ctx = ctx;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    r = pthread_create(&p->thread, NULL, produce, p);
    if (r != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return cs_err_set(err, CS_EINTERNAL, r, "prefetch: cannot start a thread");
    }
    *out = p;
    return CS_OK;
}

cs_rc cs_prefetch_next(void *ctx, cs_cell *out, cs_err *err)
{
    cs_prefetch *p = ctx;
    const chunk *c;
    const cell_ref *r;

    for (;;) {
        if (p->reading) {
            c = &p->ring[p->head];
            if (p->pos < c->n) {
                break;
            }
            if (c->end_rc != CS_OK) {
                /* The end, or an error: the same answer from now on. */
                if (err && c->end_rc != CS_ENOENT) {
                    *err = c->end_err;
                }
                return c->end_rc;
            }
            pthread_mutex_lock(&p->mu);
            p->head = (p->head + 1) % CS_PREFETCH_CHUNKS;
            p->count--;
            p->reading = false;
            pthread_cond_broadcast(&p->cv);
        } else {
            pthread_mutex_lock(&p->mu);
        }
        while (p->count == 0) {
            pthread_cond_wait(&p->cv, &p->mu);
        }
        pthread_mutex_unlock(&p->mu);
        p->reading = true;
        p->pos = 0;
    }
    r = &c->cell[p->pos++];
    memset(out, 0, sizeof(*out));
    out->key = c->text.data + r->key;
    out->config = c->text.data + r->config;
    out->config_len = r->config_len;
    out->axes = c->text.data + r->axes;
    out->axes_len = r->axes_len;
    out->baseline = r->baseline;
    out->unique = r->unique;
    return CS_OK;
}

void cs_prefetch_destroy(cs_prefetch *p)
{
    if (!p) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    for (size_t i = 0; i < CS_PREFETCH_CHUNKS; i++) {
        cs_buf_fini(&p->ring[i].text);
    }
    free(p);
}
