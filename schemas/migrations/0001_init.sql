-- 0001_init.sql - the calsweep job store, first schema.
--
-- Applied by coordinator/store/cs_store.c inside one transaction under PRAGMA user_version (this file
-- takes a database from version 0 to 1). The file is compiled into the binary (see
-- coordinator/store/gen_migrations.c); editing it after a release means adding 0002_*.sql instead.
--
-- Times are integer milliseconds since the Unix epoch. Job states (docs/architecture.md):
--   queued -> running -> done | retry_wait -> queued | failed | lost | cancelled, and cached.
-- Every change of job.state writes a job_event row through the trigger at the end: each UPDATE
-- that changes state also sets state_at (the time) and state_why (the reason).

CREATE TABLE sweep (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL,
    spec            TEXT NOT NULL,              -- canonical JSON of the sweep file
    spec_hash       TEXT NOT NULL,              -- hex SHA-256 of spec
    max_attempts    INTEGER NOT NULL CHECK (max_attempts >= 1),
    backoff_base_ms INTEGER NOT NULL CHECK (backoff_base_ms >= 0),
    backoff_max_ms  INTEGER NOT NULL CHECK (backoff_max_ms >= 0),
    timeout_ms      INTEGER NOT NULL DEFAULT 0, -- per attempt, 0 = none
    priority        INTEGER NOT NULL DEFAULT 0, -- higher first
    max_running     INTEGER NOT NULL DEFAULT 0, -- 0 = no cap
    on_failure      TEXT NOT NULL DEFAULT 'continue' CHECK (on_failure IN ('continue', 'stop')),
    state           TEXT NOT NULL DEFAULT 'active'
                    CHECK (state IN ('active', 'paused', 'cancelled', 'done')),
    state_why       TEXT,                       -- reason of the last state change
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL            -- time of the last change (state changes too)
);
-- One live sweep per name; a cancelled sweep's name may be reused.
CREATE UNIQUE INDEX sweep_live_name ON sweep(name) WHERE state <> 'cancelled';
CREATE INDEX sweep_state ON sweep(state);

CREATE TABLE job (
    id               INTEGER PRIMARY KEY,
    sweep_id         INTEGER NOT NULL REFERENCES sweep(id),
    key              TEXT NOT NULL,             -- hex SHA-256(canonical config + engine version)
    config           TEXT NOT NULL,             -- canonical JSON, fully resolved
    axes             TEXT NOT NULL,             -- canonical JSON of the cell's axis values
    baseline         INTEGER NOT NULL DEFAULT 0,
    state            TEXT NOT NULL CHECK (state IN ('queued', 'running', 'retry_wait', 'done',
                                                    'failed', 'lost', 'cancelled', 'cached')),
    state_at         INTEGER NOT NULL,          -- time of the last state change
    state_why        TEXT,                      -- reason of the last state change
    priority         INTEGER NOT NULL DEFAULT 0,
    attempt          INTEGER NOT NULL DEFAULT 0, -- attempts started so far (the fencing token)
    max_attempts     INTEGER NOT NULL,          -- attempt number after which failures are final
    worker           TEXT,                      -- holder of the lease while running
    lease_until      INTEGER,
    heartbeat_at     INTEGER,
    not_before       INTEGER,                   -- retry_wait: earliest requeue
    cancel_requested INTEGER NOT NULL DEFAULT 0, -- running: the next heartbeat ACK says cancel
    last_error       TEXT,
    progress         TEXT,                      -- last heartbeat's progress (JSON), display only
    result_id        INTEGER REFERENCES result(id), -- done: own result; cached: the reused one
    req_model        TEXT,                      -- model folder (config $.model.folder)
    req_backend      TEXT NOT NULL DEFAULT 'native', -- 'native' or 'exec'
    req_mem_mb       INTEGER NOT NULL DEFAULT 0,
    req_gpus         INTEGER NOT NULL DEFAULT 0,
    created          INTEGER NOT NULL,
    UNIQUE (sweep_id, key)
);
-- The claim path: per sweep, queued jobs by priority then FIFO; also per-sweep state counts.
CREATE INDEX job_claim ON job(sweep_id, state, priority DESC, id);
CREATE INDEX job_lease ON job(lease_until) WHERE state = 'running';
CREATE INDEX job_worker ON job(worker) WHERE state = 'running';
CREATE INDEX job_retry ON job(not_before) WHERE state = 'retry_wait';

CREATE TABLE attempt (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES job(id),
    n           INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    host        TEXT,
    started     INTEGER NOT NULL,
    ended       INTEGER,
    exit_status INTEGER,
    signal      INTEGER,
    log_path    TEXT,
    outcome     TEXT CHECK (outcome IS NULL OR
                            outcome IN ('done', 'failed', 'expired', 'cancelled')),
    error       TEXT,
    UNIQUE (job_id, n)
);

CREATE TABLE result (
    id      INTEGER PRIMARY KEY,
    job_id  INTEGER NOT NULL REFERENCES job(id),
    attempt INTEGER NOT NULL,
    json    TEXT NOT NULL,                      -- the whole result document
    created INTEGER NOT NULL,
    UNIQUE (job_id, attempt)                    -- a resent RESULT stores nothing twice
);

CREATE TABLE metric (
    result_id INTEGER NOT NULL REFERENCES result(id),
    job_id    INTEGER NOT NULL REFERENCES job(id),
    task      TEXT NOT NULL,
    metric    TEXT NOT NULL,
    value     REAL,
    stderr    REAL,
    n         INTEGER,
    PRIMARY KEY (result_id, task, metric)
) WITHOUT ROWID;
CREATE INDEX metric_job ON metric(job_id);

CREATE TABLE job_event (
    id         INTEGER PRIMARY KEY,
    time       INTEGER NOT NULL,
    job_id     INTEGER REFERENCES job(id),      -- NULL for a sweep-level event
    sweep_id   INTEGER REFERENCES sweep(id),
    from_state TEXT,
    to_state   TEXT NOT NULL,
    worker     TEXT,
    attempt    INTEGER,
    why        TEXT
);
CREATE INDEX job_event_job ON job_event(job_id, id);
CREATE INDEX job_event_sweep ON job_event(sweep_id, id);

CREATE TABLE worker (
    id           TEXT PRIMARY KEY,
    host         TEXT,
    capabilities TEXT,                          -- JSON as the worker advertised it
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL
);

-- key -> the good result every sweep may reuse (the newest one wins).
CREATE TABLE result_cache (
    key       TEXT PRIMARY KEY,
    result_id INTEGER NOT NULL REFERENCES result(id),
    updated   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER job_state_event AFTER UPDATE OF state ON job
WHEN old.state IS NOT new.state
BEGIN
    INSERT INTO job_event (time, job_id, sweep_id, from_state, to_state, worker, attempt, why)
    VALUES (new.state_at, new.id, new.sweep_id, old.state, new.state,
            coalesce(new.worker, old.worker), new.attempt, new.state_why);
END;

CREATE TRIGGER sweep_state_event AFTER UPDATE OF state ON sweep
WHEN old.state IS NOT new.state
BEGIN
    INSERT INTO job_event (time, job_id, sweep_id, from_state, to_state, why)
    VALUES (new.updated, NULL, new.id, old.state, new.state, new.state_why);
END;
