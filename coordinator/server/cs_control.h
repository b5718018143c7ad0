/* cs_control.h - the control requests of the CLI, answered from the store.
 *
 * The daemon decodes a control message (SUBMIT, PLAN, STATUS, JOBS, WORKERS, LOGS, CANCEL, PAUSE,
 * RESUME, RETRY, EXTEND, RESULTS, WATCH, JOB_INFO), checks the token, and hands it here on its loop
 * thread. The reply is an OK message whose data is canonical JSON (shapes in README.md, "Control
 * replies"), or an ERROR with the code and a message a person understands (validation errors:
 * CS_ESCHEMA with one "path: reason" per line). Each request is its own transaction, never inside a
 * batch. RESULTS aggregates on the loop thread (cs_store_results); its bootstrap takes the time the
 * request's resamples ask for. WATCH and JOB_INFO are cs_watch's (cs_watch.h): WATCH here has no
 * cache (calsweepd answers it with its own, on the thread pool, as it does RESULTS).
 */
#ifndef CS_COORDINATOR_SERVER_CS_CONTROL_H
#define CS_COORDINATOR_SERVER_CS_CONTROL_H

#include <stdint.h>

#include "cs_err.h"
#include "cs_proto.h"
#include "cs_store.h"

/* Answers req (a control-endpoint message) into rep (owned: cs_msg_fini it). Returns CS_OK
 * whenever rep holds a reply to send, OK or ERROR; a non-OK return means no reply could be built
 * (out of memory) and the daemon answers ERROR CS_EINTERNAL itself. now: ms since the epoch. */
cs_rc cs_control_handle(cs_store *s, const cs_msg *req, int64_t now, cs_msg *rep, cs_err *err);

#endif
