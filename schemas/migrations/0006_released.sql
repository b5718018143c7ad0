-- 0006_released.sql - an attempt its worker handed back (protocol BYE.release_job) is "released".
--
-- Applied by coordinator/store/cs_store.c inside the migration transaction; takes a database from
-- version 5 to 6. A worker that is asked to stop (SIGTERM with --release, or the end of its
-- --drain-s) hands its job back: calsweepd queues the job again at once and gives the attempt
-- back (max_attempts + 1), so a drained cluster node costs no attempt. Until now such a lease
-- only expired and the reaper counted it as a lost attempt. SQLite cannot change a CHECK, so the
-- table is copied: every row keeps its id and values.
CREATE TABLE attempt_new (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES job_row(id),
    n           INTEGER NOT NULL,
    worker      TEXT NOT NULL,
    host        TEXT,
    started     INTEGER NOT NULL,
    ended       INTEGER,
    exit_status INTEGER,
    signal      INTEGER,
    log_path    TEXT,
    outcome     TEXT CHECK (outcome IS NULL OR
                            outcome IN ('done', 'failed', 'expired', 'cancelled', 'released')),
    error       TEXT,
    lease_token TEXT,
    instance    TEXT,
    UNIQUE (job_id, n)
);
INSERT INTO attempt_new (id, job_id, n, worker, host, started, ended, exit_status, signal,
                         log_path, outcome, error, lease_token, instance)
    SELECT id, job_id, n, worker, host, started, ended, exit_status, signal, log_path, outcome,
           error, lease_token, instance FROM attempt;
DROP TABLE attempt;
ALTER TABLE attempt_new RENAME TO attempt;
