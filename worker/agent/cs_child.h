/* cs_child.h - one job runner child process supervised on a libuv loop (the runner contract of
 * docs/architecture.md): spawned in its per-attempt folder, progress JSON lines read from its fd 3,
 * stdout and stderr appended to stderr.log there, a wall-clock timeout, and a stop (SIGTERM to its
 * process group, SIGKILL after a grace period) for cancels, timeouts and releases.
 *
 * OOM diagnosis: the kernel OOM killer is not visible to a parent (the child just dies of
 * SIGKILL), and dmesg is usually not readable by a worker. So the child reads the oom_kill counter
 * of its own cgroup v2 (memory.events; the child runs in the worker's cgroup) before the spawn and
 * after the exit: a SIGKILL the worker did not send, with the counter grown, is an OOM kill. When
 * the counter is not available the outcome says so (oom_before < 0) and a foreign SIGKILL is
 * reported as "possibly the OOM killer".
 *
 * Loop thread only; not thread-safe.
 */
#ifndef CS_WORKER_AGENT_CS_CHILD_H
#define CS_WORKER_AGENT_CS_CHILD_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "cs_err.h"

typedef struct cs_child cs_child;

/* Why the worker stopped the child (NONE: it ended on its own). */
typedef enum cs_child_reason {
    CS_CHILD_STOP_NONE = 0,
    CS_CHILD_STOP_TIMEOUT, /* the job's timeout passed */
    CS_CHILD_STOP_CANCEL,  /* the coordinator asked (ACK.cancel) */
    CS_CHILD_STOP_RELEASE, /* the worker hands the job back (SIGTERM with --release) */
    CS_CHILD_STOP_STALE,   /* the coordinator refused the attempt (CS_ESTALE) */
} cs_child_reason;

typedef struct cs_child_spec {
    const char *dir;         /* the attempt folder (exists); cwd of the child; holds stderr.log */
    const char *const *argv; /* NULL-terminated; argv[0] is the program (a path or a name) */
    const char *const *env;  /* extra "K=V" entries added to (replacing) the environment; may
                                be NULL */
    int64_t timeout_ms;      /* 0 = none */
    int64_t kill_grace_ms;   /* between SIGTERM and SIGKILL, >= 0 */
    const char *guard;       /* a program that runs cs_child_guard_main when its argv[1] is
                                CS_CHILD_GUARD_FLAG (calsweep-worker itself), or NULL: no guard */
} cs_child_spec;

typedef struct cs_child_outcome {
    int64_t exit_status;        /* 0..255, or -1 when a signal ended it */
    int signal;                 /* 0 = none */
    cs_child_reason stopped_by; /* the worker's reason, if it stopped the child */
    bool sigkill_sent;          /* the worker escalated to SIGKILL */
    bool oom;                   /* the kernel OOM killer killed it (cgroup counter grew) */
    int64_t oom_before;         /* cgroup oom_kill counter before the spawn, -1 = unknown */
    int64_t oom_after;          /* after the exit, -1 = unknown */
    int64_t elapsed_ms;
} cs_child_outcome;

/* Called once on the loop thread when the child has exited. o is borrowed for the call. The
 * callback may call cs_child_destroy(c). */
typedef void (*cs_child_exit_cb)(cs_child *c, const cs_child_outcome *o, void *data);

/* The guard: the child dies with the worker. With spec.guard, the spawned process is
 * `guard --child-guard <worker pid> -- argv...`: it asks the kernel for a signal when the worker
 * dies (prctl PR_SET_PDEATHSIG; checked against the worker pid for a worker that died before the
 * prctl, and polled once a second), runs argv in a child of its own, in its process group, and
 * waits; when the worker dies it SIGKILLs the whole group (the runner, or an exec command and
 * everything it started). Otherwise it ends as its child ended (the same exit status, or the
 * same signal), so the worker sees the outcome it would see without the guard. The kernel sends
 * the death signal when the thread that spawned the guard ends: start children from a thread
 * that outlives them (the agent's loop thread, the worker's main thread). */
#define CS_CHILD_GUARD_FLAG "--child-guard"

/* The guard's main (argv as above). Returns the exit status, or does not return (it re-raises
 * the child's signal, or is SIGKILLed with its group). */
int cs_child_guard_main(int argc, char **argv);

/* Allocates a child bound to loop (borrowed; must outlive the child). */
cs_rc cs_child_create(uv_loop_t *loop, cs_child **out, cs_err *err);

/* Spawns the child as spec says (borrowed for the call). On CS_OK cb will be called exactly
 * once. Errors (cb never called): CS_EIO when stderr.log cannot be opened, CS_ENOENT/CS_EAUTH/
 * CS_EIO when the program cannot be started (the message names it and the uv error). */
cs_rc cs_child_start(cs_child *c, const cs_child_spec *spec, cs_child_exit_cb cb, void *data,
                     cs_err *err);

/* Stops a running child: SIGTERM to its process group now, SIGKILL after the grace period. The
 * first reason given is kept. No-op when it is not running. */
void cs_child_stop(cs_child *c, cs_child_reason why);

/* The latest progress line: stage ("starting" before any), done, total. Borrowed, valid until the
 * next loop iteration. */
const char *cs_child_stage(const cs_child *c);
/* What the stage works on: the latest line's "task", else its "step", else "layer" when it has a
 * "layer" member; NULL when none. Borrowed like cs_child_stage. */
const char *cs_child_detail(const cs_child *c);
/* Milliseconds (>= 1, monotonic clock) since the current (stage, detail) began: since the spawn
 * before any progress line. */
int64_t cs_child_stage_ms(const cs_child *c);
int64_t cs_child_done(const cs_child *c);
int64_t cs_child_total(const cs_child *c);
bool cs_child_running(const cs_child *c);
/* The process id while running, else 0. */
int cs_child_pid(const cs_child *c);

/* Path of the log file (borrowed, valid until destroy); NULL before a start. */
const char *cs_child_log_path(const cs_child *c);

/* The last lines of the log file, at most max_bytes (cut at a line start when possible), fit
 * to send (cs_proto_log_tail). Returns owned text ("" when there is no log), NULL on OOM. */
char *cs_child_log_tail(const char *log_path, size_t max_bytes);

/* The oom_kill counter of this process's cgroup v2, or -1 when it cannot be read. */
int64_t cs_child_oom_kills(void);

/* Kills a still running child (SIGKILL to its group), closes every handle and frees c once the
 * loop has run their close callbacks. NULL-safe. The exit callback is not called afterwards. */
void cs_child_destroy(cs_child *c);

#endif
