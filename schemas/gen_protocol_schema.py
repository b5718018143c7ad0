#!/usr/bin/env python3
"""Writes protocol.schema.json (JSON Schema draft 2020-12) for protocol version 4, kept in step by
hand with the field table of common/cs_proto.c (the C decoder is the definition; this schema
documents it for other languages). The error codes are read from common/cs_err.h.
A development tool: the build and the tests only read the JSON file. Run from the repo root:
    python3 schemas/gen_protocol_schema.py
tests/node/validate-schemas.js checks the examples under schemas/examples/protocol/ against the
schema, and tests/unit/proto_test.c checks the same examples against the C codec.

Known differences: maxLength counts characters here and bytes in C (equal for ASCII); the C
decoder also refuses NUL characters and duplicate keys, which JSON Schema cannot express."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from limits import LIMITS as L  # noqa: E402

EXACT = 2 ** 53
MAX_NAME = L["NAME_BYTES"]
MAX_TEXT = L["TEXT_BYTES"]
MAX_LIST = L["LIST_ITEMS"]

rc_names = re.findall(r"X\((CS_[A-Z]+), -?\d+,", open("common/cs_err.h").read())
error_codes = [n for n in rc_names if n != "CS_OK"]
fail_kinds = ["bad_input", "oom", "model_missing", "internal", "crash", "timeout", "cancelled",
              "spawn"]
job_states = ["queued", "running", "retry_wait", "done", "failed", "lost", "cancelled", "cached"]


def ref(name):
    return {"$ref": "#/$defs/" + name}


def integer(lo, hi=EXACT, desc=None):
    o = {"type": "integer", "minimum": lo, "maximum": hi}
    if desc:
        o["description"] = desc
    return o


def opt(schema):
    """An optional field: JSON null counts as absent."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj_json(desc):
    return {"type": "object", "description": desc}


# (wire name, endpoint, description, [(key, schema, required)])
MESSAGES = [
    ("HELLO", "work request", "A worker introduces itself; reply OK or ERROR.",
     [("worker", ref("name"), True), ("host", ref("name"), True),
      ("capabilities", ref("capabilities"), True)]),
    ("CLAIM", "work request", "A worker asks for a job; reply JOB, NO_WORK or ERROR. A resent "
     "CLAIM of the same worker and instance gets the job that worker process already holds.",
     [("worker", ref("name"), True), ("instance", ref("instance"), True),
      ("capabilities", ref("capabilities"), True)]),
    ("JOB", "reply", "A leased job: run attempt `attempt` of `job_id` and renew the lease; every "
     "message about it names the worker and lease_token.",
     [("job_id", ref("id"), True), ("attempt", ref("id"), True),
      ("lease_token", ref("lease_token"), True),
      ("lease_s", integer(1, L["LEASE_S"], "lease length in seconds"), True),
      ("timeout_s", integer(1, L["TIMEOUT_S"], "the sweep's per-job time limit (policy.timeout_s)"), False),
      ("config", obj_json("the fully resolved job config (job.schema.json)"), True)]),
    ("NO_WORK", "reply", "Nothing to do now; ask again after retry_ms.",
     [("retry_ms", integer(0, 86400000), True)]),
    ("HEARTBEAT", "work request", "Progress of a running attempt; reply ACK (maybe cancel) or "
     "ERROR CS_ESTALE when the attempt is no longer current or the worker does not hold its "
     "lease.",
     [("worker", ref("name"), True), ("job_id", ref("id"), True), ("attempt", ref("id"), True),
      ("lease_token", ref("lease_token"), True), ("stage", ref("name"), True),
      ("done", ref("count"), True), ("total", ref("count"), True),
      ("log_tail", ref("text"), True),
      ("detail", opt(ref("name")), False),
      ("stage_ms", opt(integer(1, EXACT, "time spent in the stage so far, ms")), False)]),
    ("ACK", "reply", "Acknowledges HEARTBEAT, RESULT or FAIL; cancel asks the worker to stop.",
     [("cancel", {"type": "boolean"}, True)]),
    ("RESULT", "work request", "The result of an attempt; stored idempotently per (job_id, "
     "attempt). Reply ACK or ERROR; with claim: JOB (stored, and the worker's next job), NO_WORK "
     "(stored, nothing to run now) or ERROR (not stored, nothing claimed). Stored only from the "
     "lease holder (worker and lease_token of the JOB).",
     [("worker", ref("name"), True), ("job_id", ref("id"), True), ("attempt", ref("id"), True),
      ("lease_token", ref("lease_token"), True),
      ("result", ref("result"), True),
      ("claim", opt(ref("claim")), False)]),
    ("FAIL", "work request", "An attempt failed. Reply ACK or ERROR; with claim: JOB, NO_WORK or "
     "ERROR as for RESULT. Stored only from the lease holder.",
     [("worker", ref("name"), True), ("job_id", ref("id"), True), ("attempt", ref("id"), True),
      ("lease_token", ref("lease_token"), True),
      ("kind", {"enum": fail_kinds, "description": "error.json kinds, then what the worker saw"},
       True),
      ("reason", ref("text"), True),
      ("exit_status", integer(-1, 255, "-1 when the runner did not exit"), True),
      ("signal", integer(0, 127, "0 when none"), True), ("log_tail", ref("text"), True),
      ("log_path", opt(ref("text")), False),
      ("claim", opt(ref("claim")), False)]),
    ("BYE", "work request", "A worker leaves, maybe handing back the job it holds; the "
     "long-poll CLAIM its process (instance) still has pending gets NO_WORK.",
     [("worker", ref("name"), True), ("instance", ref("instance"), True),
      ("release_job", opt(ref("job_ref")), False)]),
    ("SUBMIT", "control request", "Submit a sweep document.",
     [("sweep", obj_json("the sweep document (sweep.schema.json), sent as written without whitespace: its member order is the order of its jobs"), True),
      ("force", {"type": "boolean"}, True)]),
    ("PLAN", "control request", "Validate and expand a sweep without writing.",
     [("sweep", obj_json("the sweep document (sweep.schema.json)"), True)]),
    ("STATUS", "control request", "Status of one sweep, or of all.",
     [("sweep", opt(ref("sweep_ref")), False)]),
    ("CANCEL", "control request", "Cancel a sweep, a job, or the jobs a filter selects: exactly "
     "one of the three.",
     [("sweep", opt(ref("sweep_ref")), False), ("job", opt(ref("id")), False),
      ("filter", opt(obj_json("selects jobs, e.g. {\"sweep\":\"x\",\"state\":\"queued\"}")),
       False)]),
    ("PAUSE", "control request", "Stop handing out jobs of a sweep.",
     [("sweep", ref("sweep_ref"), True)]),
    ("RESUME", "control request", "Hand out jobs of a paused sweep again.",
     [("sweep", ref("sweep_ref"), True)]),
    ("RETRY", "control request", "Requeue failed and/or lost jobs.",
     [("sweep", opt(ref("sweep_ref")), False), ("failed", {"type": "boolean"}, True),
      ("lost", {"type": "boolean"}, True)]),
    ("EXTEND", "control request", "Add values or seeds to a submitted sweep.",
     [("sweep_id", ref("sweep_ref"), True),
      ("sweep", obj_json("the extended sweep document"), True)]),
    ("JOBS", "control request", "List jobs.",
     [("sweep", opt(ref("sweep_ref")), False), ("state", opt({"enum": job_states}), False),
      ("limit", integer(1, 100000), True), ("offset", ref("count"), True)]),
    ("WORKERS", "control request", "List workers.", []),
    ("LOGS", "control request", "The log of an attempt (the latest when attempt is absent).",
     [("job_id", ref("id"), True), ("attempt", opt(ref("id")), False),
      ("tail", opt(integer(1, EXACT, "bytes from the end")), False)]),
    ("RESULTS", "control request", "The aggregate of a sweep's results (`calsweep results`); "
     "reply OK with data = the aggregate (docs/results.md; with slim, its slim form) or ERROR "
     "(CS_ENOENT for an unknown sweep, CS_EINVAL for an unknown axis, task or metric, or a "
     "reference matching no or several rows).",
     [("sweep", ref("sweep_ref"), True),
      ("by", opt({"type": "array", "maxItems": 64, "items": ref("name"),
                  "description": "axes to group by; absent = every axis but seed"}), False),
      ("metric", opt(ref("name")), False),
      ("reference", opt(ref("name")), False),
      ("tasks", opt({"type": "array", "maxItems": 64, "items": ref("name"),
                     "description": "tasks to report; absent = all"}), False),
      ("resamples", integer(0, L["RESAMPLES"], "bootstrap resamples; 0 = no bootstrap"), True),
      ("item_resamples", opt(integer(0, L["RESAMPLES"], "resamples of the bootstrap over items "
                                     "of the average of each row of one done job "
                                     "(average.item_ci); absent = 0, none")), False),
      ("seed", integer(0, EXACT - 1, "bootstrap seed"), True),
      ("slim", opt({"type": "boolean", "description": "the slim aggregate: only the members "
                    "the text table reads (docs/results.md \"Slim form\"); absent = false"}),
       False)]),
    ("WATCH", "control request", "The live view's one request (`calsweep watch`): sweeps with "
     "counts, rates and ETA, workers with their jobs' progress, failing and lost jobs, and the "
     "best groups so far; reply OK with data = that document (docs/watch.md).",
     [("sweep", opt(ref("sweep_ref")), False),
      ("top", opt(integer(1, 100, "best groups per sweep; absent = 5")), False),
      ("problems", opt(integer(1, 1000, "failing and lost jobs listed; absent = 20")), False)]),
    ("JOB_INFO", "control request", "One job whole: its config, axes, attempts with worker and "
     "exit, progress, and the command that reproduces it on one machine.",
     [("job_id", ref("id"), True)]),
    ("OK", "reply", "Success; data is any JSON value, absent when there is nothing to say.",
     [("data", {"description": "any JSON value"}, False)]),
    ("ERROR", "reply", "Failure: code is a cs_rc name (common/cs_err.h).",
     [("code", {"enum": error_codes}, True), ("message", ref("text"), True)]),
]

defs = {
    "version": {"const": 4, "description": "protocol version"},
    "result": {
        "type": "object",
        "description": "result.json (result.schema.json) as the worker read it, plus the "
                       "worker's \"worker\" and \"log_path\" (common/cs_result.h); the metrics "
                       "travel here once. At most %d metric values in all (the C decoder counts "
                       "them over every task); a null metric (a NaN or infinity) is refused."
                       % L["RESULT_METRICS"],
        "required": ["metrics"],
        "properties": {
            "metrics": {
                "type": "object",
                "maxProperties": L["RESULT_METRICS"],
                "additionalProperties": {
                    "type": "object",
                    "maxProperties": L["RESULT_METRICS"] + 1,
                    "properties": {"n": integer(0)},
                    "additionalProperties": {"type": "number"},
                },
            },
            "worker": ref("name"),
            "log_path": ref("text"),
        },
    },
    "lease_token": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                    "description": "the secret of one lease (128 random bits), drawn by the "
                                   "coordinator for each attempt it leases"},
    "instance": {"type": "string", "pattern": "^[0-9a-f]{32}$",
                 "description": "a secret id (128 random bits) the worker draws once per "
                                "process"},
    "token": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
              "description": "shared secret, when the coordinator asks for one"},
    "req_id": {"type": "integer", "minimum": 1, "maximum": EXACT,
               "description": "sender's request number, for logs"},
    "id": {"type": "integer", "minimum": 1, "maximum": EXACT,
           "description": "a database id or attempt number (exact in a double)"},
    "count": {"type": "integer", "minimum": 0, "maximum": EXACT},
    "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME},
    "text": {"type": "string", "maxLength": MAX_TEXT},
    "sweep_ref": {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
                  "description": "a sweep's name or its decimal id"},
    "job_ref": {"type": "object", "additionalProperties": False,
                "required": ["job_id", "attempt", "lease_token"],
                "properties": {"job_id": ref("id"), "attempt": ref("id"),
                               "lease_token": ref("lease_token")}},
    "gpu": {"type": "object", "additionalProperties": False,
            "required": ["index", "name", "mem_mb"],
            "properties": {"index": integer(0, 65535), "name": ref("name"),
                           "mem_mb": ref("count")}},
    "claim": {"type": "object", "additionalProperties": False,
              "required": ["worker", "instance", "capabilities"],
              "description": "a CLAIM riding on a RESULT or FAIL (version 2): the coordinator "
                             "claims the worker's next job once the report is stored",
              "properties": {"worker": ref("name"), "instance": ref("instance"),
                             "capabilities": ref("capabilities")}},
    "capabilities": {
        "type": "object", "additionalProperties": False,
        "required": ["backends", "models", "threads", "mem_mb", "gpus"],
        "properties": {
            "backends": {"type": "array", "maxItems": MAX_LIST, "items": ref("name"),
                         "description": "\"native\", \"exec\""},
            "models": {"type": "array", "maxItems": MAX_LIST, "items": ref("name")},
            "threads": integer(1, 1 << 20),
            "mem_mb": ref("count"),
            "gpus": {"type": "array", "maxItems": MAX_LIST, "items": ref("gpu")},
        },
    },
}

for name, endpoint, desc, fields in MESSAGES:
    props = {"v": ref("version"), "type": {"const": name}, "token": opt(ref("token")),
             "req_id": opt(ref("req_id"))}
    required = ["v", "type"]
    for key, schema, req in fields:
        props[key] = schema
        if req:
            required.append(key)
    d = {"description": f"{endpoint}: {desc}", "type": "object", "required": required,
         "additionalProperties": False, "properties": props}
    if name == "CANCEL":
        d["oneOf"] = [{"required": [k], "properties": {k: s}} for k, s in
                      [("sweep", ref("sweep_ref")), ("job", ref("id")),
                       ("filter", {"type": "object"})]]
    defs[name] = d

schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://calsweep.invalid/schemas/protocol.schema.json",
    "title": "calsweep protocol v3 message",
    "description": "One message between calsweep-worker, calsweep (CLI) and calsweepd: a JSON "
                   "object with the envelope {v, type, token?, req_id?} and the fields of its "
                   "type. Generated by schemas/gen_protocol_schema.py from the field table of "
                   "common/cs_proto.c; the C decoder is the reference.",
    "type": "object",
    "required": ["v", "type"],
    "properties": {"v": ref("version"), "type": {"enum": [m[0] for m in MESSAGES]}},
    "oneOf": [ref(m[0]) for m in MESSAGES],
    "$defs": defs,
}

with open("schemas/protocol.schema.json", "w") as f:
    json.dump(schema, f, indent=2)
    f.write("\n")
print(f"wrote schemas/protocol.schema.json: {len(MESSAGES)} message types, "
      f"{len(error_codes)} error codes")
