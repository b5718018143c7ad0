-- 0004_items.sql - per-item outcomes of results (result.json version 2, issue 19).
--
-- Applied by coordinator/store/cs_store.c inside the migration transaction; takes a database from
-- version 3 to 4. Only a table and an index are added: every row of version 3 stays as it was
-- (results stored before have no outcomes and aggregate without per-item tests).
--
-- One row per (result, task, metric) of the result's "items": metric is acc, acc_norm,
-- acc_bytes, exact_match, exact_match_flex (bitsets: ceil(n/8) bytes, item i is bit (i & 7) of
-- byte i >> 3), margin or window_loss (n little-endian float32). data holds the raw bytes, not
-- base64; sample is the hex SHA-256 of the ordered item sample, so two jobs pair item by item
-- iff their samples are equal. The stored result json has no "items" member: the outcomes live
-- here only. A cached job reads the outcomes of the result it points at (job.result_id).
-- job_id references job_row: job is a view since version 2.
CREATE TABLE item_outcome (
    result_id INTEGER NOT NULL REFERENCES result(id),
    job_id    INTEGER NOT NULL REFERENCES job_row(id),
    task      TEXT NOT NULL,
    metric    TEXT NOT NULL,
    sample    TEXT NOT NULL,
    n         INTEGER NOT NULL,
    data      BLOB NOT NULL,
    PRIMARY KEY (result_id, task, metric)
) WITHOUT ROWID;
CREATE INDEX item_outcome_job ON item_outcome(job_id);
