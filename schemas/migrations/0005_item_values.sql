-- 0005_item_values.sql - the real-valued per-item outcomes get their own table.
--
-- Applied by coordinator/store/cs_store.c inside the migration transaction; takes a database from
-- version 4 to 5. Every row of version 4 is kept; only where it lives changes.
--
-- Why: in version 4 one WITHOUT ROWID table held the bitsets (acc, acc_norm, acc_bytes,
-- exact_match, exact_match_flex: ceil(n/8) bytes, ~125 for 1,000 items) and the float arrays
-- (margin, window_loss: 4 n bytes, ~4 KB), interleaved by (result_id, task, metric). A float
-- array overflows its leaf cell, and SQLite compares a search key against an overflowing cell by
-- reading the whole cell, overflow pages included: each lookup of a bitset (the paired bootstrap
-- reads one per job and task) dragged in the margins around it, and `calsweep results` on a
-- 100,803-job sweep read 2.9 GB of the 3.1 GB file to use 63 MB of bitsets. Now item_outcome
-- holds the bitsets only (its leaves ~3 KB per result of 5 tasks) and item_value the floats.
--
-- item_value has the columns and key of item_outcome: one row per (result, task, metric) of the
-- result's real-valued "items", data the raw little-endian float32 bytes. The store puts an
-- outcome in one table or the other by its metric name (margin and window_loss are real).
CREATE TABLE item_value (
    result_id INTEGER NOT NULL REFERENCES result(id),
    job_id    INTEGER NOT NULL REFERENCES job_row(id),
    task      TEXT NOT NULL,
    metric    TEXT NOT NULL,
    sample    TEXT NOT NULL,
    n         INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (result_id, task, metric)
) WITHOUT ROWID;

INSERT INTO item_value (result_id, job_id, task, metric, sample, n, data)
SELECT result_id, job_id, task, metric, sample, n, data FROM item_outcome
 WHERE metric = 'margin' OR metric = 'window_loss';

-- item_outcome is rebuilt, not DELETEd from: a DELETE would leave its leaf pages as sparse as
-- they were, and a scan would still read as many.
CREATE TABLE item_outcome_new (
    result_id INTEGER NOT NULL REFERENCES result(id),
    job_id    INTEGER NOT NULL REFERENCES job_row(id),
    task      TEXT NOT NULL,
    metric    TEXT NOT NULL,
    sample    TEXT NOT NULL,
    n         INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (result_id, task, metric)
) WITHOUT ROWID;

INSERT INTO item_outcome_new (result_id, job_id, task, metric, sample, n, data)
SELECT result_id, job_id, task, metric, sample, n, data FROM item_outcome
 WHERE metric <> 'margin' AND metric <> 'window_loss';

DROP TABLE item_outcome;
ALTER TABLE item_outcome_new RENAME TO item_outcome;
CREATE INDEX item_outcome_job ON item_outcome(job_id);
CREATE INDEX item_value_job ON item_value(job_id);
