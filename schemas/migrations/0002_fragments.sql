-- 0002_fragments.sql - compact job rows: configs and axes as lists of shared fragments.
--
-- Applied by coordinator/store/cs_store.c inside the migration transaction, with foreign_keys OFF (the
-- job table is rebuilt, SQLite's documented 12-step procedure); cs_store.c runs
-- PRAGMA foreign_key_check before it commits. Takes a database from version 1 to 2.
--
-- Why: a sweep of 10^6 jobs stored ~1.1 KB per job in version 1 (the whole config, ~520 B, and
-- axes, ~290 B, per row, a 64-character key and its unique index), 1.1 GB in one transaction.
-- The cells of a sweep share almost all of their text: the config of one cell differs from the
-- next in a member or two (seed, n_samples, ...). Version 2 stores every distinct top-level
-- member once in `fragment` ("name":value, exactly as it appears in the canonical text) and each
-- job lists its fragment ids: a job row is ~200 bytes, ~250 with its index entry.
--
-- Readers see no difference: the view `job` has the columns of the version-1 table, with config
-- and axes rebuilt as the exact text that was submitted: '{' || the fragments' texts in list
-- order joined by ',' || '}'. A text that fragments cannot represent exactly (not an object, or
-- found so while converting below) is kept whole in config_raw / axes_raw, and then wins.
-- The coordinator writes job_row; the view also accepts UPDATEs of its plain columns (sqlite3
-- users fixing a job by hand), refusing changes of id, key, config and axes.
--
-- Within-sweep uniqueness of keys is enforced by the store, not by an index: the unique
-- (sweep_id, key) index of version 1 took a random B-tree insert per job, about a quarter of the
-- time of a 10^6-job submit, and no query looks jobs up by key. cs_store.c checks every cell
-- against the sweep's keys (held in memory while it inserts), except the cells of a stream that
-- guarantees distinct keys itself (cs_expand) going into a new sweep.

CREATE TABLE fragment (
    id   INTEGER PRIMARY KEY,
    text TEXT NOT NULL UNIQUE                   -- one member of an object: "name":value
);

-- Its references are checked at COMMIT (DEFERRABLE INITIALLY DEFERRED): an immediate one makes
-- SQLite keep a statement journal for every INSERT into job_row, a copy of each page it touches
-- that a 10^6-job insert spilled to the WAL already (~0.2 s of such writes per 10^6 jobs). The
-- store inserts only references it has just read or written (the new sweep, a cached result).
CREATE TABLE job_new (
    id               INTEGER PRIMARY KEY,
    sweep_id         INTEGER NOT NULL REFERENCES sweep(id) DEFERRABLE INITIALLY DEFERRED,
    key              TEXT NOT NULL,             -- hex SHA-256(canonical config + engine version)
    cfg              TEXT NOT NULL,             -- JSON array of fragment ids: the config's members
    axs              TEXT NOT NULL,             -- JSON array of fragment ids: the axes' members
    config_raw       TEXT,                      -- the whole config when cfg cannot represent it
    axes_raw         TEXT,                      -- the whole axes object when axs cannot
    baseline         INTEGER NOT NULL DEFAULT 0,
    -- An OR chain, not IN (...): SQLite evaluates an IN list of more than two constants through
    -- a small table that it builds again for every INSERT and UPDATE statement it runs (~2 us).
    state            TEXT NOT NULL CHECK (state = 'queued' OR state = 'running' OR
                                          state = 'retry_wait' OR state = 'done' OR
                                          state = 'failed' OR state = 'lost' OR
                                          state = 'cancelled' OR state = 'cached'),
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
    result_id        INTEGER REFERENCES result(id) DEFERRABLE INITIALLY DEFERRED,
                                                -- done: own result; cached: the reused one
    req_model        TEXT,                      -- model folder (config $.model.folder)
    req_backend      TEXT NOT NULL DEFAULT 'native', -- 'native' or 'exec'
    req_mem_mb       INTEGER NOT NULL DEFAULT 0,
    req_gpus         INTEGER NOT NULL DEFAULT 0,
    created          INTEGER NOT NULL
);

-- The members of every version-1 config and axes object, in the order first seen. SQLite's JSON
-- functions re-render objects and arrays byte for byte from minified input and json_quote
-- escapes as the canonical form does; a member they cannot reproduce exactly (a real number
-- spelled differently, whitespace) only costs compactness: that job keeps its raw text.
INSERT OR IGNORE INTO fragment (text)
SELECT json_quote(e.key) || ':' || CASE e.type WHEN 'object' THEN e.value WHEN 'array' THEN e.value
       WHEN 'text' THEN json_quote(e.value) WHEN 'null' THEN 'null' WHEN 'true' THEN 'true'
       WHEN 'false' THEN 'false' ELSE CAST(e.value AS TEXT) END
  FROM (SELECT id, 0 AS which, config AS doc FROM job UNION ALL
        SELECT id, 1, axes FROM job ORDER BY 1, 2) d, json_each(d.doc) e
 WHERE json_type(d.doc) = 'object'
 ORDER BY d.id, d.which, e.id;

INSERT INTO job_new (id, sweep_id, key, cfg, axs, config_raw, axes_raw, baseline, state,
                     state_at, state_why, priority, attempt, max_attempts, worker, lease_until,
                     heartbeat_at, not_before, cancel_requested, last_error, progress, result_id,
                     req_model, req_backend, req_mem_mb, req_gpus, created)
SELECT j.id, j.sweep_id, j.key,
       CASE WHEN json_type(j.config) = 'object' THEN
         (SELECT json_group_array(fid) FROM (SELECT f.id AS fid FROM json_each(j.config) e
            JOIN fragment f ON f.text = json_quote(e.key) || ':' || CASE e.type
              WHEN 'object' THEN e.value WHEN 'array' THEN e.value
              WHEN 'text' THEN json_quote(e.value) WHEN 'null' THEN 'null'
              WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(e.value AS TEXT) END
            ORDER BY e.id))
       ELSE '[]' END,
       CASE WHEN json_type(j.axes) = 'object' THEN
         (SELECT json_group_array(fid) FROM (SELECT f.id AS fid FROM json_each(j.axes) e
            JOIN fragment f ON f.text = json_quote(e.key) || ':' || CASE e.type
              WHEN 'object' THEN e.value WHEN 'array' THEN e.value
              WHEN 'text' THEN json_quote(e.value) WHEN 'null' THEN 'null'
              WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(e.value AS TEXT) END
            ORDER BY e.id))
       ELSE '[]' END,
       NULL, NULL, j.baseline, j.state, j.state_at, j.state_why, j.priority, j.attempt,
       j.max_attempts, j.worker, j.lease_until, j.heartbeat_at, j.not_before, j.cancel_requested,
       j.last_error, j.progress, j.result_id, j.req_model, j.req_backend, j.req_mem_mb,
       j.req_gpus, j.created
  FROM job j ORDER BY j.id;

-- Keep the whole text of every job whose fragments do not give back its text byte for byte.
UPDATE job_new SET config_raw = (SELECT config FROM job o WHERE o.id = job_new.id)
 WHERE '{' || coalesce((SELECT group_concat(t, ',') FROM (SELECT f.text AS t
          FROM json_each(job_new.cfg) e JOIN fragment f ON f.id = e.value ORDER BY e.key)), '')
       || '}' IS NOT (SELECT config FROM job o WHERE o.id = job_new.id);
UPDATE job_new SET axes_raw = (SELECT axes FROM job o WHERE o.id = job_new.id)
 WHERE '{' || coalesce((SELECT group_concat(t, ',') FROM (SELECT f.text AS t
          FROM json_each(job_new.axs) e JOIN fragment f ON f.id = e.value ORDER BY e.key)), '')
       || '}' IS NOT (SELECT axes FROM job o WHERE o.id = job_new.id);
UPDATE job_new SET cfg = '[]' WHERE config_raw IS NOT NULL;
UPDATE job_new SET axs = '[]' WHERE axes_raw IS NOT NULL;

-- Swap the tables. Renaming job first makes SQLite rewrite the REFERENCES job(id) of attempt,
-- result, metric and job_event to job_row (and moves the old indexes and trigger along, to be
-- dropped with the old table); the new table then takes that name.
ALTER TABLE job RENAME TO job_row;
DROP TABLE job_row;
ALTER TABLE job_new RENAME TO job_row;

-- The claim path: per sweep, queued jobs by priority then FIFO; also per-sweep state counts.
CREATE INDEX job_claim ON job_row(sweep_id, state, priority DESC, id);
CREATE INDEX job_lease ON job_row(lease_until) WHERE state = 'running';
CREATE INDEX job_worker ON job_row(worker) WHERE state = 'running';
CREATE INDEX job_retry ON job_row(not_before) WHERE state = 'retry_wait';

CREATE TRIGGER job_state_event AFTER UPDATE OF state ON job_row
WHEN old.state IS NOT new.state
BEGIN
    INSERT INTO job_event (time, job_id, sweep_id, from_state, to_state, worker, attempt, why)
    VALUES (new.state_at, new.id, new.sweep_id, old.state, new.state,
            coalesce(new.worker, old.worker), new.attempt, new.state_why);
END;

-- Every reader's job table: the version-1 columns, config and axes as text.
CREATE VIEW job AS
SELECT j.id, j.sweep_id, j.key,
       coalesce(j.config_raw, '{' || coalesce((SELECT group_concat(t, ',') FROM
         (SELECT f.text AS t FROM json_each(j.cfg) e JOIN fragment f ON f.id = e.value
          ORDER BY e.key)), '') || '}') AS config,
       coalesce(j.axes_raw, '{' || coalesce((SELECT group_concat(t, ',') FROM
         (SELECT f.text AS t FROM json_each(j.axs) e JOIN fragment f ON f.id = e.value
          ORDER BY e.key)), '') || '}') AS axes,
       j.baseline, j.state, j.state_at, j.state_why, j.priority, j.attempt, j.max_attempts,
       j.worker, j.lease_until, j.heartbeat_at, j.not_before, j.cancel_requested, j.last_error,
       j.progress, j.result_id, j.req_model, j.req_backend, j.req_mem_mb, j.req_gpus, j.created
  FROM job_row j;

CREATE TRIGGER job_view_update INSTEAD OF UPDATE ON job
BEGIN
    SELECT RAISE(ABORT, 'job: id, key, config and axes cannot be changed')
     WHERE new.id IS NOT old.id OR new.key IS NOT old.key OR new.config IS NOT old.config
        OR new.axes IS NOT old.axes;
    UPDATE job_row SET sweep_id = new.sweep_id, baseline = new.baseline, state = new.state,
           state_at = new.state_at, state_why = new.state_why, priority = new.priority,
           attempt = new.attempt, max_attempts = new.max_attempts, worker = new.worker,
           lease_until = new.lease_until, heartbeat_at = new.heartbeat_at,
           not_before = new.not_before, cancel_requested = new.cancel_requested,
           last_error = new.last_error, progress = new.progress, result_id = new.result_id,
           req_model = new.req_model, req_backend = new.req_backend,
           req_mem_mb = new.req_mem_mb, req_gpus = new.req_gpus, created = new.created
     WHERE id = old.id;
END;
