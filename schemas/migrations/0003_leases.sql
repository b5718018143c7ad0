-- 0003_leases.sql - lease tokens and worker liveness (protocol version 3).
--
-- Applied by coordinator/store/cs_store.c inside the migration transaction; takes a database from
-- version 2 to 3. Only columns and an index are added: every row of version 2 stays as it was.
--
-- A lease is now bound to a secret: when the coordinator hands out an attempt it draws a lease
-- token (128 random bits, 32 hex digits) and stores it with the attempt; HEARTBEAT, RESULT, FAIL
-- and BYE.release_job must name the attempt's worker and token, else they are refused. Attempts
-- leased before this version have no token, so no report for them is accepted: their leases run
-- out and the reaper requeues the jobs (the workers of protocol version 2 are refused anyway).
ALTER TABLE attempt ADD COLUMN lease_token TEXT; -- the lease's secret; NULL before version 3
ALTER TABLE attempt ADD COLUMN instance TEXT;    -- CLAIM.instance of the worker process holding it

-- Liveness: last_seen follows every message of a worker (not only HELLO); bye_at is set by its
-- BYE and cleared by any later message; instance is the last CLAIM.instance it used. Workers not
-- seen for calsweepd's --worker-prune-s and running nothing are deleted (index for that scan).
ALTER TABLE worker ADD COLUMN instance TEXT;
ALTER TABLE worker ADD COLUMN bye_at INTEGER;
CREATE INDEX worker_last_seen ON worker(last_seen);
