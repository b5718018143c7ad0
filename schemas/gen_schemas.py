#!/usr/bin/env python3
"""Writes sweep.schema.json and job.schema.json (JSON Schema draft 2020-12). The algorithms and
selectors come from schemas/methods.json, the output of `calsweep methods --json` (the table of
common/cs_methods.c; tests/cli/methods.sh checks the committed file is that output).
A development tool: the build and the tests only read the JSON files. Run from schemas/.
check_schemas.py validates the shipped and test sweeps, and the job configs `calsweep plan`
produces, against them."""
import json
import os

from limits import LIMITS as L


def intp(lo, hi, d, desc=None):
    o = {"type": "integer", "minimum": lo, "maximum": hi, "default": d}
    if desc:
        o["description"] = desc
    return o


def num(lo, hi, d, excl=False, desc=None):
    o = {"type": "number", "maximum": hi, "default": d}
    o["exclusiveMinimum" if excl else "minimum"] = lo
    if desc:
        o["description"] = desc
    return o


def enum(vals, desc=None):
    o = {"enum": vals, "default": vals[0]}
    if desc:
        o["description"] = desc
    return o


def boolean(d, desc=None):
    o = {"type": "boolean", "default": d}
    if desc:
        o["description"] = desc
    return o


def param_schema(p):
    """One parameter of schemas/methods.json as a JSON Schema."""
    t, d = p["type"], p.get("default")
    if t == "integer":
        o = intp(int(p["min"]), int(p["max"]), int(d))
    elif t == "number":
        o = num(p["min"], p["max"], d, p["exclusive_min"])
    elif t == "boolean":
        o = boolean(d)
    elif t == "enum":
        o = {"enum": p["choices"], "default": d}
    elif t == "group_size":
        o = {"description": "-1 (one group per row) or a positive power of two", "default": int(d),
             "anyOf": [{"const": -1}, {"enum": [2**i for i in range(0, int(p["max"]).bit_length())]}]}
    elif t == "power_of_two":
        o = {"description": "a positive power of two", "default": int(d),
             "enum": [2**i for i in range(0, int(p["max"]).bit_length())]}
    elif t == "task_sources":
        o = {"type": "array", "items": {"type": "string"}, "minItems": 1}
    else:
        raise ValueError("methods.json: unknown type %s of %s" % (t, p["key"]))
    if p.get("description"):
        o["description"] = p["description"]
    return o


def read_methods(family):
    """{name: ({key: schema}, description)} of one family of schemas/methods.json (the output of
    `calsweep methods --json`, the table of common/cs_methods.c), engine-only parameters left out."""
    out = {}
    for m in METHODS[family]:
        params = {p["key"]: param_schema(p) for p in m["params"] if not p["engine_only"]}
        out[m["name"]] = (params, m["description"])
    return out


METHODS = json.load(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "methods.json")))
algos = read_methods("algorithms")
sels = read_methods("selectors")


def method_defs(table, what):
    names = list(table)
    variants = []
    for n, (params, desc) in table.items():
        props = {"name": {"const": n}}
        props.update(params)
        variants.append({"title": n, "description": desc, "type": "object", "required": ["name"],
                         "properties": props, "additionalProperties": False})
    obj = {"description": "a %s name, or an object with its name and parameters" % what,
           "oneOf": [{"enum": names}] + variants}
    return obj, variants


alg_def, alg_variants = method_defs(algos, "algorithm")
sel_def, sel_variants = method_defs(sels, "selector")
name_re = "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$"
range_def = {
  "type": "object", "required": ["range"], "additionalProperties": False,
  "properties": {
    "range": {"type": "array", "prefixItems": [{"type": "number"}, {"type": "number"}], "minItems": 2, "maxItems": 2,
              "description": "[low, high], both included when reached"},
    "scale": {"enum": ["linear", "log2"], "default": "linear", "description": "log2 doubles from low"},
    "step": {"type": "number", "exclusiveMinimum": 0, "default": 1, "description": "linear only"}
  }
}


def axis(item):
    return {"oneOf": [{"type": "array", "minItems": 1, "maxItems": L["AXIS_VALUES"], "items": item}, {"$ref": "#/$defs/range"}]}


sweep = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://calsweep.invalid/schemas/sweep.schema.json",
  "title": "calsweep sweep file",
  "description": "One study: models, data, a grid of job settings, and how to run the jobs. calsweep validates more than this schema can say (references between sections, zip lengths, exclude axes); `calsweep plan FILE` is the authority.",
  "type": "object",
  "required": ["name", "models", "data"],
  "oneOf": [{"required": ["grid"]}, {"required": ["grids"]}],
  "additionalProperties": False,
  "properties": {
    "$schema": {"type": "string"},
    "name": {"type": "string", "pattern": name_re},
    "description": {"type": "string"},
    "tags": {"type": "array", "items": {"type": "string"}},
    "models": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": name_re},
               "additionalProperties": {"$ref": "#/$defs/model"}},
    "data": {"type": "object", "required": ["eval"], "additionalProperties": False,
             "properties": {
               "sources": {"type": "object", "propertyNames": {"pattern": name_re},
                           "additionalProperties": {"$ref": "#/$defs/source"}},
               "pools": {"type": "object", "propertyNames": {"pattern": name_re},
                         "additionalProperties": {"$ref": "#/$defs/pool"},
                         "description": "candidate pools mixed from several sources; a pool's name is a value of the source axis like a source's"},
               "eval": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": name_re},
                        "additionalProperties": {"$ref": "#/$defs/eval_suite"}}}},
    "grid": {"$ref": "#/$defs/grid"},
    "zip": {"$ref": "#/$defs/zip"},
    "include": {"$ref": "#/$defs/include"},
    "exclude": {"$ref": "#/$defs/exclude"},
    "grids": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": name_re},
              "additionalProperties": {"type": "object", "required": ["grid"], "additionalProperties": False,
                "properties": {"grid": {"$ref": "#/$defs/grid"}, "zip": {"$ref": "#/$defs/zip"},
                               "include": {"$ref": "#/$defs/include"}, "exclude": {"$ref": "#/$defs/exclude"}}},
              "description": "a union of named sub-grids sharing models, data and policy (instead of grid, zip, include and exclude); a job two sub-grids share runs once, labelled with the first; the sub-grid's name is the label axis \"grid\""},
    "policy": {"$ref": "#/$defs/policy"}
  },
  "$defs": {
    "grid": {"type": "object", "required": ["algorithm"],
             "properties": {
               "model": axis({"type": "string"}),
               "algorithm": axis({"$ref": "#/$defs/algorithm"}),
               "selector": axis({"$ref": "#/$defs/selector"}),
               "n_samples": axis({"type": "integer", "minimum": 1, "maximum": L["N_SAMPLES"]}),
               "seq_len": axis({"type": "integer", "minimum": 2, "maximum": L["SEQ_LEN"]}),
               "source": axis({"type": "string"}),
               "seed": axis({"type": "integer", "minimum": 0, "maximum": L["SEED"]}),
               "eval": axis({"type": "string"})},
             "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
             "additionalProperties": axis({}),
             "description": "Axes in product order (the first varies slowest). Missing mission axes take defaults: model and eval all, selector random, n_samples 128, seq_len 2048, source the only text corpus, seed 0. Other names are extra axes passed to the job."},
    "zip": {"type": "array", "items": {"type": "array", "minItems": 2, "items": {"type": "string"}, "uniqueItems": True},
            "description": "groups of grid axes with equally many values that vary together"},
    "include": {"type": "array", "items": {"type": "object", "minProperties": 1},
                "description": "extra cells: one value per axis; axes left out must have one value in the grid"},
    "exclude": {"type": "array", "items": {"type": "object", "minProperties": 1,
                "description": "a cell is left out when every entry matches: keys are axes or dotted paths (algorithm.name), values literals, globs with *, or lists of either"}},
    "pool": {"type": "object", "required": ["sources"], "additionalProperties": False, "properties": {
      "sources": {"type": "object", "minProperties": 1, "propertyNames": {"pattern": name_re},
                  "additionalProperties": {"type": "object", "additionalProperties": False, "properties": {
                    "quota": {"type": "integer", "minimum": 1, "maximum": 16777216, "description": "items from this source"},
                    "weight": {"type": "number", "exclusiveMinimum": 0, "maximum": 1000000, "default": 1, "description": "share of the items the quotas leave"},
                    "format": {"enum": ["text", "qa"], "default": "text", "description": "qa: task items as question, reasoning, answer (COLA stage 2); task sources only"}}},
                  "description": "names of data.sources"},
      "size": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": 16777216},
                         {"type": "object", "required": ["multiple"], "additionalProperties": False,
                          "properties": {"multiple": {"type": "integer", "minimum": 1, "maximum": 1024}}}],
               "description": "items in the pool, or {\"multiple\": K}: K x the job's n_samples (default 4, or the sum of the quotas when every source has one)"},
      "composition": {"enum": ["random_windows", "concat", "per_doc", "doc_windows", "awq_concat"], "default": "random_windows",
                      "description": "doc_windows: GPTQ's C4 sampler (a window inside one random document longer than seq_len); awq_concat: AWQ's pile-val recipe (documents of at most seq_len tokens joined and cut)"},
      "keep_out": {"type": "array", "items": {"type": "string"},
                   "description": "eval suites whose task files the pool must not share an item with (default: every suite)"}}},
    "range": range_def,
    "algorithm": alg_def,
    "selector": sel_def,
    "model": {"type": "object", "required": ["folder"], "additionalProperties": False, "properties": {
      "folder": {"type": "string", "minLength": 1, "description": "Hugging Face model folder; relative paths are relative to where calsweep and the workers run"},
      "arch": {"enum": ["auto", "llama", "qwen2"], "default": "auto"},
      "backend": {"enum": ["native", "exec"], "default": "native",
                  "description": "native: calsweep-run; exec: the command each worker was started with (--exec-template). Jobs go only to workers that run their backend. A command template in the sweep file is refused: anyone who can submit would run it on every worker"},
      "requires": {"type": "object", "additionalProperties": False, "properties": {
        "mem_mb": {"type": "integer", "minimum": 0, "maximum": L["MEM_MB"], "default": 0},
        "gpus": {"type": "integer", "minimum": 0, "maximum": L["GPUS"], "default": 0}}}}},
    "source": {"type": "object", "required": ["kind", "path"], "additionalProperties": False, "properties": {
      "kind": {"enum": ["jsonl", "text", "task"], "description": "a JSONL or plain-text corpus, or a task's train split"},
      "path": {"type": "string", "minLength": 1},
      "text_field": {"type": "string", "default": "text", "description": "jsonl only"}}},
    "eval_suite": {"type": "object", "additionalProperties": False, "anyOf": [{"required": ["tasks"]}, {"required": ["perplexity"]}],
      "properties": {
        "tasks": {"type": "object", "additionalProperties": {"type": "object", "required": ["path"], "additionalProperties": False, "properties": {
          "path": {"type": "string"}, "limit": {"type": "integer", "minimum": 0, "maximum": L["EVAL_ITEMS"], "description": "0 = all items"},
          "fewshot": {"type": "integer", "minimum": 0, "maximum": L["FEWSHOT"]}, "fewshot_path": {"type": "string"},
          "headline": {"enum": ["acc", "acc_norm", "acc_bytes", "exact_match", "exact_match_flex"], "default": "acc",
            "description": "the metric `calsweep results` reports for this task (average accuracy, balance); never part of a job"}}}},
        "perplexity": {"type": "object", "additionalProperties": {"type": "object", "required": ["path"], "additionalProperties": False, "properties": {
          "path": {"type": "string"}, "seq_len": {"type": "integer", "minimum": 2, "maximum": L["SEQ_LEN"], "default": 2048},
          "max_windows": {"type": "integer", "minimum": 0, "maximum": L["PPL_WINDOWS"], "default": 0}}}},
        "limit": {"type": "integer", "minimum": 0, "maximum": L["EVAL_ITEMS"], "default": 0, "description": "default limit per task"},
        "fewshot": {"type": "integer", "minimum": 0, "maximum": L["FEWSHOT"], "default": 0}}},
    "policy": {"type": "object", "additionalProperties": False, "properties": {
      "max_attempts": {"type": "integer", "minimum": 1, "maximum": L["ATTEMPTS"], "default": 3},
      "backoff_s": {"type": "number", "minimum": 0, "maximum": L["BACKOFF_S"], "default": 30, "description": "first retry delay; doubles per attempt"},
      "backoff_max_s": {"type": "number", "minimum": 0, "maximum": L["BACKOFF_MAX_S"], "default": 3600},
      "timeout_s": {"type": "integer", "minimum": 0, "maximum": L["TIMEOUT_S"], "default": 0, "description": "per attempt; 0 = none"},
      "priority": {"type": "integer", "minimum": -L["PRIORITY"], "maximum": L["PRIORITY"], "default": 0},
      "max_running": {"type": "integer", "minimum": 0, "maximum": L["MAX_RUNNING"], "default": 0, "description": "0 = no cap"},
      "on_failure": {"enum": ["continue", "stop"], "default": "continue"}}}
  }
}


def resolved(variants):
    out = []
    for v in variants:
        v = json.loads(json.dumps(v))
        v["required"] = list(v["properties"].keys())
        for k, p in v["properties"].items():
            p.pop("default", None)
        out.append(v)
    return {"oneOf": out}


job = {
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "$id": "https://calsweep.invalid/schemas/job.schema.json",
  "title": "calsweep job config",
  "description": "The fully resolved config of one job, as the coordinator hashes it: canonical JSON (sorted keys, no whitespace) of this object; key = SHA-256(config || engine version). Paths are as written in the sweep file. Calibration-free algorithms (none, rtn) have calibration, n_samples, seed and seq_len null.",
  "type": "object",
  "required": ["algorithm", "calibration", "eval", "extra", "model", "n_samples", "seed", "seq_len"],
  "additionalProperties": False,
  "properties": {
    "algorithm": {"$ref": "#/$defs/algorithm"},
    "calibration": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["selector", "source"], "additionalProperties": False,
      "properties": {"selector": {"$ref": "#/$defs/selector"},
                     "source": {"oneOf": [{"type": "null", "description": "the selector makes its own data"}, {"$ref": "#/$defs/source"}, {"$ref": "#/$defs/pool"}]}}}]},
    "eval": {"type": "object", "required": ["perplexity", "tasks"], "additionalProperties": False, "properties": {
      "tasks": {"type": "object", "additionalProperties": {"type": "object", "required": ["path", "limit", "fewshot", "fewshot_path"],
        "additionalProperties": False, "properties": {"path": {"type": "string"}, "limit": {"type": "integer", "minimum": 0, "maximum": L["EVAL_ITEMS"]},
        "fewshot": {"type": "integer", "minimum": 0, "maximum": L["FEWSHOT"]}, "fewshot_path": {"type": ["string", "null"]}}}},
      "perplexity": {"type": "object", "additionalProperties": {"type": "object", "required": ["path", "seq_len", "max_windows"],
        "additionalProperties": False, "properties": {"path": {"type": "string"}, "seq_len": {"type": "integer", "minimum": 2, "maximum": L["SEQ_LEN"]},
        "max_windows": {"type": "integer", "minimum": 0, "maximum": L["PPL_WINDOWS"]}}}}}},
    "extra": {"type": "object", "description": "the sweep's extra axes, by name"},
    "model": {"type": "object", "required": ["arch", "backend", "folder"], "additionalProperties": False, "properties": {
      "arch": {"enum": ["auto", "llama", "qwen2"]},
      "backend": {"enum": ["native", "exec"]},
      "folder": {"type": "string"}}},
    "n_samples": {"type": ["integer", "null"], "minimum": 1, "maximum": L["N_SAMPLES"]},
    "seed": {"type": ["integer", "null"], "minimum": 0, "maximum": L["SEED"]},
    "seq_len": {"type": ["integer", "null"], "minimum": 2, "maximum": L["SEQ_LEN"]}
  },
  "$defs": {
    "algorithm": resolved(alg_variants),
    "selector": resolved([v for v in sel_variants]),
    "source": {"type": "object", "required": ["kind", "path"], "additionalProperties": False, "properties": {
      "kind": {"enum": ["jsonl", "text", "task"]}, "path": {"type": "string"}, "text_field": {"type": "string"}}},
    "pool": {"type": "object", "required": ["kind", "composition", "keep_out", "size", "sources"], "additionalProperties": False, "properties": {
      "kind": {"const": "pool"}, "composition": {"enum": ["random_windows", "concat", "per_doc", "doc_windows", "awq_concat"]},
      "keep_out": {"type": "array", "items": {"type": "string"}},
      "size": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "object", "required": ["multiple"], "additionalProperties": False,
                         "properties": {"multiple": {"type": "integer", "minimum": 1, "maximum": 1024}}}]},
      "sources": {"type": "object", "minProperties": 1, "additionalProperties": {"type": "object", "required": ["kind", "path"], "additionalProperties": False,
        "properties": {"kind": {"enum": ["jsonl", "text", "task"]}, "path": {"type": "string"}, "text_field": {"type": "string"},
                       "quota": {"type": "integer", "minimum": 1}, "weight": {"type": "number", "exclusiveMinimum": 0},
                       "format": {"enum": ["text", "qa"]}}}}}}
  }
}
# acdm.reference resolves to source objects
for v in job["$defs"]["selector"]["oneOf"]:
    if v["title"] == "acdm":
        v["properties"]["reference"] = {"type": "array", "items": {"$ref": "#/$defs/source"}, "minItems": 1}

if __name__ == "__main__":
    open("sweep.schema.json", "w").write(json.dumps(sweep, indent=2) + "\n")
    open("job.schema.json", "w").write(json.dumps(job, indent=2) + "\n")
