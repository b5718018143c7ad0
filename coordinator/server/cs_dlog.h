/* cs_dlog.h - calsweepd's logging helpers: a per-kind rate limit, the peer of an nng pipe, and
 * a printable copy of text that came from a peer. Loop thread only (no locking). */
#ifndef CS_COORDINATOR_SERVER_CS_DLOG_H
#define CS_COORDINATOR_SERVER_CS_DLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* At most CS_DLOG_PER_SEC lines of one kind per second; the rest are counted and reported as one
 * line when the next second's window opens. Zero-initialised = ready. */
#define CS_DLOG_PER_SEC 5

typedef struct cs_ratelog {
    int64_t window; /* monotonic ms of the current one-second window */
    unsigned n, suppressed;
} cs_ratelog;

/* Whether a line of kind `what` may be logged now. */
bool cs_ratelog_ok(cs_ratelog *r, const char *what);

/* The peer of nng pipe pipe_id as text into buf (size n): "1.2.3.4:5 (pipe 7)", "[::1]:5 (pipe
 * 7)", "ipc peer (pipe 7)", or "pipe 7" when nng does not know. */
void cs_peer_name(uint32_t pipe_id, char *buf, size_t n);

/* src (NULL = "") into dst (size n >= 1), every byte outside printable ASCII, and every byte in
 * also (may be NULL), replaced by '?': the log stays one printable line whatever a peer sent. */
void cs_printable(char *dst, size_t n, const char *src, const char *also);

#endif
