#!/usr/bin/env bash
# calsweep-run job.json (the runner contract): a baseline job on the testbed models writes a
# result.json that validates against schemas/result.schema.json, with the held-out perplexity of
# sweeps/testbed/README.md; progress lines on fd 3; relative paths resolved against
# CALSWEEP_BASE_DIR and model folders found under CALSWEEP_MODEL_ROOTS; failures write
# error.json with the right kind and stage and exit 1; a GPTQ job records its calibration set and
# per-layer losses; a few-shot task scores as `calsweep-run eval --fewshot --shots` does; the
# other algorithms run with the sweep's keys, llama.cpp imatrix included; result.json version 2
# holds every scored item's outcome, whose means are the metrics, and a "sample" hash that is
# equal between jobs that scored the same items (the ids' SHA-256 as sha256sum computes it).
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=$(cd "${CS_SOURCE_DIR:-.}" && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# result.json holds the exact doubles (canonical JSON); `eval --json` prints cJSON's 15 digits,
# which may be 1 ulp off: compare to 12 significant places, keys sorted
r12() { jq -cS 'with_entries(if .key != "n" and (.value | type) == "number" then .value |= (. * 1e12 | round) else . end)'; }
# per-item outcomes of result.json file at jq path: bits() prints item i's bit on line i + 1
# (padding bits too), f32() one float per line (od: host order, little-endian here)
bits() { jq -r "$2" "$1" | base64 -d | od -An -tu1 -v | awk '{for (i = 1; i <= NF; i++) { v = $i; for (b = 0; b < 8; b++) { print v % 2; v = int(v / 2) } } }'; }
f32() { jq -r "$2" "$1" | base64 -d | od -An -tf4 -v | tr -s ' ' '\n' | grep -v '^$'; }
# mean_is FILE TASK METRIC BITS: the mean of the first n bits is the metric (to 1e-12)
mean_is() {
    local nn m k; nn=$(jq ".items[\"$2\"].n" "$1"); m=$(jq ".metrics[\"$2\"].$3" "$1")
    k=$(bits "$1" ".items[\"$2\"].$4" | head -n "$nn" | awk '{ k += $1 } END { print k + 0 }')
    awk -v k="$k" -v n="$nn" -v m="$m" 'BEGIN { d = k / n - m; exit !(n > 0 && d < 1e-12 && d > -1e-12) }'
}
validate() { node "$S/tests/node/validate-file.js" "$S/schemas/$1.schema.json" "$2"; }
job() { # folder algorithm ppl-path tasks-json [calibration n_samples seq_len]
    printf '{"algorithm":%s,"calibration":%s,"n_samples":%s,"seq_len":%s,"seed":3,"eval":{"perplexity":{"heldout":{"max_windows":0,"path":"%s","seq_len":256}},"tasks":%s},"extra":{},"model":{"arch":"llama","backend":"native","folder":"%s"}}\n' \
        "$(case $2 in "{"*) echo "$2";; *) echo "{\"name\":\"$2\"}";; esac)" "${5:-null}" "${6:-null}" "${7:-null}" "$3" "${4:-{\}}" "$1"
}
run() { # dir: runs the job of dir/job.json there, progress to dir/progress
    (cd "$1" && rm -f result.json error.json && CALSWEEP_BASE_DIR=$S CALSWEEP_THREADS=2 "$R" job.json 3>progress 2>stderr)
}
echo "1..57"

mkdir "$tmp/a"; job sweeps/testbed/models/tb-llama none sweeps/testbed/data/heldout.txt >"$tmp/a/job.json"
run "$tmp/a"; ok $? "a baseline job exits 0"
validate result "$tmp/a/result.json"; ok $? "result.json validates against result.schema.json"
p=$(jq '.metrics["ppl:heldout"].ppl' "$tmp/a/result.json")
awk -v p="$p" 'BEGIN { d = (p - 1.6979) / 1.6979; if (d < 0) d = -d; exit !(d < 1e-3) }'
ok $? "its held-out perplexity is the README's 1.6979: $p"
[ "$(jq '.metrics["ppl:heldout"].n' "$tmp/a/result.json")" = 14 ]; ok $? "over 14 windows of 256"
[ "$(jq -r '.engine_version, .threads, (.timings | has("load") and has("evaluate") and has("total"))' "$tmp/a/result.json" | tr '\n' ' ')" = "calsweep-engine/0.1.0 2 true " ]
ok $? "engine version, threads and stage timings are recorded"
jq -e -s 'length >= 3 and all(.[]; has("stage") and has("done") and has("total"))' "$tmp/a/progress" >/dev/null
ok $? "progress on fd 3: one JSON object per line with stage, done, total"
[ ! -e "$tmp/a/error.json" ]; ok $? "no error.json on success"

mkdir "$tmp/b"; job tb-qwen none sweeps/testbed/data/heldout.txt >"$tmp/b/job.json"
(cd "$tmp/b" && CALSWEEP_BASE_DIR=$S CALSWEEP_MODEL_ROOTS=/nonexistent:$S/sweeps/testbed/models "$R" job.json 2>stderr)
ok $? "a bare model name is found under CALSWEEP_MODEL_ROOTS"
p=$(jq '.metrics["ppl:heldout"].ppl' "$tmp/b/result.json")
want=$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$S/sweeps/testbed/ref/tb-qwen.metrics.json" | head -1)
awk -v p="$p" -v w="$want" 'BEGIN { d = (p - w) / w; if (d < 0) d = -d; exit !(d < 1e-3) }'
ok $? "tb-qwen's held-out perplexity: $p (README $want)"

mkdir "$tmp/c"; job sweeps/testbed/models/no-such-model none sweeps/testbed/data/heldout.txt >"$tmp/c/job.json"
run "$tmp/c"; rc=$?
[ $rc = 1 ] && [ "$(jq -r '.kind + " " + .stage' "$tmp/c/error.json")" = "model_missing load" ]
ok $? "a missing model: exit 1, error.json kind model_missing, stage load"
jq -r .message "$tmp/c/error.json" | grep -q "model.folder: 'sweeps/testbed/models/no-such-model'"
ok $? "the message names the field and the folder"
validate error "$tmp/c/error.json"; ok $? "error.json validates against error.schema.json"

mkdir "$tmp/d"; printf '{"model": ' >"$tmp/d/job.json"
run "$tmp/d"; rc=$?
[ $rc = 1 ] && [ "$(jq -r '.kind + " " + .stage' "$tmp/d/error.json")" = "bad_input config" ]
ok $? "a malformed job.json: exit 1, kind bad_input, stage config"

mkdir "$tmp/e"; job sweeps/testbed/models/tb-llama none sweeps/testbed/data/no-such.txt >"$tmp/e/job.json"
run "$tmp/e"; rc=$?
[ $rc = 1 ] && [ "$(jq -r '.kind + " " + .stage' "$tmp/e/error.json")" = "bad_input evaluate" ] &&
    jq -r .message "$tmp/e/error.json" | grep -q "no-such.txt"
ok $? "a missing perplexity text: exit 1, kind bad_input, stage evaluate, names the file"

# tasks: multiple choice and generation, scored as `calsweep-run eval` scores them
T=sweeps/testbed/data/tasks
mkdir "$tmp/f"
job sweeps/testbed/models/tb-llama none sweeps/testbed/data/heldout.txt \
    "{\"arith\":{\"path\":\"$T/arith_mc.eval.jsonl\",\"limit\":40,\"fewshot\":0,\"fewshot_path\":null},\"gen\":{\"path\":\"$T/arith_gen.eval.jsonl\",\"limit\":8}}" >"$tmp/f/job.json"
run "$tmp/f"; ok $? "a baseline job with two task files exits 0"
validate result "$tmp/f/result.json"; ok $? "its result.json validates"
want=$(cd "$S" && "$R" eval sweeps/testbed/models/tb-llama --task $T/arith_mc.eval.jsonl --limit 40 --json 2>/dev/null | jq -cS '.tasks.arith_mc' | r12)
got=$(jq -cS '.metrics.arith' "$tmp/f/result.json" | r12)
[ -n "$want" ] && [ "$got" = "$want" ]; ok $? "task metrics equal calsweep-run eval's on the same 40 items: $got"
[ "$(jq '.metrics.gen | .n, (has("exact_match") and has("exact_match_stderr"))' "$tmp/f/result.json" | tr '\n' ' ')" = "8 true " ]
ok $? "the generation task reports exact match over 8 items"
F=$tmp/f/result.json
jq -e '.version == 2 and (.items | keys) == (.metrics | keys) and .items.arith.n == 40 and .items.gen.n == 8 and .items["ppl:heldout"].n == 14' "$F" >/dev/null
ok $? "result.json version 2 has items for every task and perplexity text: 40, 8 items, 14 windows"
mean_is "$F" arith acc acc && mean_is "$F" arith acc_norm acc_norm && mean_is "$F" arith acc_bytes acc_bytes &&
    mean_is "$F" gen exact_match exact_match && mean_is "$F" gen exact_match_flex exact_match_flex
ok $? "the means of the per-item bits are acc, acc_norm, acc_bytes, exact_match and exact_match_flex"
[ "$(bits "$F" .items.arith.acc | head -n 40 | tr -d '\n')" = "$(f32 "$F" .items.arith.margin | awk '{ printf "%d", ($1 > 0) }')" ]
ok $? "an item is right (acc) exactly where its gold margin is positive, item by item"
w=$(f32 "$F" '.items["ppl:heldout"].window_loss' | awk '{ s += $1; n++ } END { printf "%d %.9g", n, exp(s / n) }')
p=$(jq '.metrics["ppl:heldout"].ppl' "$F")
awk -v w="$w" -v p="$p" 'BEGIN { split(w, a, " "); d = (a[2] - p) / p; exit !(a[1] == 14 && d < 1e-6 && d > -1e-6) }'
ok $? "exp(mean of the 14 window losses) is the perplexity: $w vs $p"

mkdir "$tmp/g"
job sweeps/testbed/models/tb-llama none sweeps/testbed/data/heldout.txt \
    "{\"arith\":{\"path\":\"$T/arith_mc.eval.jsonl\",\"fewshot\":5}}" >"$tmp/g/job.json"
run "$tmp/g"; rc=$?
[ $rc = 1 ] && [ "$(jq -r .kind "$tmp/g/error.json")" = bad_input ] && jq -r .message "$tmp/g/error.json" | grep -q "eval.tasks.arith.fewshot_path"
ok $? "fewshot without a fewshot_path is refused as bad_input naming the field"
mkdir "$tmp/g2"
job sweeps/testbed/models/tb-llama none sweeps/testbed/data/heldout.txt \
    "{\"arith\":{\"path\":\"$T/arith_mc.eval.jsonl\",\"limit\":12,\"fewshot\":3,\"fewshot_path\":\"$T/arith_mc.train.jsonl\"}}" >"$tmp/g2/job.json"
run "$tmp/g2"; ok $? "a job with 3-shot prompts exits 0"
want=$(cd "$S" && "$R" eval sweeps/testbed/models/tb-llama --task $T/arith_mc.eval.jsonl --limit 12 --fewshot 3 --shots $T/arith_mc.train.jsonl --json 2>/dev/null | jq -cS '.tasks.arith_mc' | r12)
zero=$(cd "$S" && "$R" eval sweeps/testbed/models/tb-llama --task $T/arith_mc.eval.jsonl --limit 12 --json 2>/dev/null | jq -cS '.tasks.arith_mc' | r12)
got=$(jq -cS '.metrics.arith' "$tmp/g2/result.json" | r12)
[ -n "$want" ] && [ "$got" = "$want" ] && [ "$(jq .n <<<"$got")" = 12 ]
ok $? "its metrics equal calsweep-run eval --fewshot 3 --shots on the same 12 items: $got (0-shot: $zero)"

# the item sample: equal between jobs that scored the same items, whatever their algorithm
mkdir "$tmp/s"
job sweeps/testbed/models/tb-llama '{"name":"rtn","bits":4,"group_size":32}' sweeps/testbed/data/heldout.txt \
    "{\"arith\":{\"path\":\"$T/arith_mc.eval.jsonl\",\"limit\":40},\"gen\":{\"path\":\"$T/arith_gen.eval.jsonl\",\"limit\":8},\"facts\":{\"path\":\"$T/facts_mc.eval.jsonl\",\"limit\":0}}" >"$tmp/s/job.json"
run "$tmp/s"; ok $? "an RTN job on the same tasks exits 0"
validate result "$tmp/s/result.json"; ok $? "its result.json (version 2, with items) validates"
sample() { jq -r ".items[\"$2\"].sample" "$1/result.json"; }
[ "$(sample "$tmp/s" arith)" = "$(sample "$tmp/f" arith)" ] && [ "$(sample "$tmp/s" gen)" = "$(sample "$tmp/f" gen)" ] &&
    [ "$(sample "$tmp/s" ppl:heldout)" = "$(sample "$tmp/f" ppl:heldout)" ] && [ "$(sample "$tmp/a" ppl:heldout)" = "$(sample "$tmp/f" ppl:heldout)" ] &&
    [ "$(sample "$tmp/g2" arith)" != "$(sample "$tmp/f" arith)" ] && [ "$(sample "$tmp/b" ppl:heldout)" != "$(sample "$tmp/f" ppl:heldout)" ]
ok $? "same task file and limit, same sample (none vs rtn); limit 12 vs 40 and another model's windows differ"
[ "$(sample "$tmp/s" facts)" = "$(jq -r .id "$S/$T/facts_mc.eval.jsonl" | head -c -1 | sha256sum | cut -d' ' -f1)" ] && mean_is "$tmp/s/result.json" facts acc acc
ok $? "the sample of a whole file is the SHA-256 of its ids joined by newlines; acc is the mean of 200 bits"
jq -e '(.items.facts | tostring | length) < 1400' "$tmp/s/result.json" >/dev/null
ok $? "200 items' outcomes (3 bitsets and 200 float32 margins) take $(jq '.items.facts | tostring | length' "$tmp/s/result.json") bytes"

# quantization jobs: GPTQ with random calibration windows, RTN without calibration
CAL='{"selector":{"name":"random","stratified":false},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/arith.jsonl","text_field":"text"}}'
mkdir "$tmp/h"
job sweeps/testbed/models/tb-qwen '{"name":"gptq","bits":4,"group_size":32,"sym":false,"act_order":true,"damp":0.01,"block_size":128,"true_sequential":true,"static_groups":false}' \
    sweeps/testbed/data/heldout.txt "" "$CAL" 16 64 >"$tmp/h/job.json"
run "$tmp/h"; ok $? "a GPTQ job exits 0"
validate result "$tmp/h/result.json"; ok $? "its result.json validates"
[ "$(jq -c '[.calibration.selector, .calibration.n, .calibration.seq_len, .calibration.tokens, (.calibration.sample_ids | length)]' "$tmp/h/result.json")" = '["random",16,64,1024,16]' ]
ok $? "it records the calibration set: selector, n, seq_len, tokens and the 16 window offsets"
[ "$(jq '.extra.layers | length' "$tmp/h/result.json")" = 21 ] && [ "$(jq '.extra.rtn_fallbacks' "$tmp/h/result.json")" = 0 ]
ok $? "and each of the 21 quantized linears with its GPTQ loss"
grep -q '"stage":"quantize","layer":2,"done":3,"total":3' "$tmp/h/progress"; ok $? "per-layer progress on fd 3"
jq -e '.extra.profile as $p | ($p.peak.sgemm_gflops > 0 and $p.peak.dgemm_gflops > 0 and $p.peak.threads == 2)
    and ([$p.stages[].stage] | index("forward") != null and index("statistics") != null and index("solve") != null and index("evaluate") != null)
    and all($p.stages[] | select(.stage == "forward" or .stage == "statistics" or .stage == "solve" or .stage == "evaluate");
            .seconds > 0 and .floor_s > 0 and .gflop_f32 + .gflop_f64 > 0 and ((.ratio - .seconds / .floor_s) | fabs) < 1e-9 * .ratio)' \
    "$tmp/h/result.json" >/dev/null
ok $? "extra.profile: the peaks, and forward, statistics, solve and evaluate with time, work, floor and ratio"
mkdir "$tmp/h2"; cp "$tmp/h/job.json" "$tmp/h2/"
(cd "$tmp/h2" && CALSWEEP_BASE_DIR=$S CALSWEEP_THREADS=2 "$R" --profile job.json 3>/dev/null 2>stderr) &&
    grep -q '^profile: 2 threads; peaks measured here: sgemm' "$tmp/h2/stderr" && grep -Eq '^  forward +[0-9.]+ .* [0-9.]+x$' "$tmp/h2/stderr"
ok $? "--profile prints the table to stderr"
mkdir "$tmp/i"; job sweeps/testbed/models/tb-qwen '{"name":"gptq","bits":4,"group_size":32}' sweeps/testbed/data/heldout.txt "" \
    '{"selector":{"name":"covercal"},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/arith.jsonl"}}' 16 64 >"$tmp/i/job.json"
run "$tmp/i"; rc=$?
[ $rc = 0 ] && [ "$(jq -r '[.calibration.selector, (.calibration.sample_ids | length), .calibration.details.pool, (.calibration.details.outlier_channels | length), .calibration.details.stats.cache] | map(tostring) | join(" ")' "$tmp/i/result.json")" = "covercal 16 64 3 null" ]
ok $? "a CoverCal job picks 16 of 64 candidates and records its outlier channels per layer (no cache without CALSWEEP_CACHE_DIR)"
mkdir "$tmp/i2"; job sweeps/testbed/models/tb-qwen '{"name":"gptq"}' sweeps/testbed/data/heldout.txt "" \
    '{"selector":{"name":"kmeans"},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/arith.jsonl"}}' 16 64 >"$tmp/i2/job.json"
run "$tmp/i2"; rc=$?
[ $rc = 1 ] && [ "$(jq -r '.kind + " " + .stage' "$tmp/i2/error.json")" = "bad_input config" ] && jq -r .message "$tmp/i2/error.json" | grep -q 'calibration.selector.name: unknown selector "kmeans"'
ok $? "an unknown selector: bad_input when the config is read, before the model loads, naming the field"
mkdir "$tmp/k"; job sweeps/testbed/models/tb-qwen '{"name":"gptq","bits":4,"group_size":32,"sym":false}' sweeps/testbed/data/heldout.txt "" \
    '{"selector":{"name":"zipcal","search_limit":2000},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/code.jsonl","text_field":"text"}}' 8 64 >"$tmp/k/job.json"
run "$tmp/k"; ok $? "a GPTQ job calibrated with ZipCal exits 0"
[ "$(jq -r '[.calibration.selector, (.calibration.sample_ids | length), .calibration.details.selector, .calibration.details.pool] | map(tostring) | join(" ")' "$tmp/k/result.json")" = "zipcal 8 zipcal 32" ]
ok $? "it records ZipCal's choice of 8 among a pool of 32 and its diagnostics"
mkdir "$tmp/l"; job sweeps/testbed/models/tb-qwen '{"name":"gptq"}' sweeps/testbed/data/heldout.txt \
    "{\"facts\":{\"path\":\"$T/facts_mc.eval.jsonl\"}}" \
    "{\"selector\":{\"name\":\"random\"},\"source\":{\"kind\":\"task\",\"path\":\"$T/facts_mc.eval.jsonl\"}}" 8 64 >"$tmp/l/job.json"
run "$tmp/l"; rc=$?
[ $rc = 1 ] && [ "$(jq -r .kind "$tmp/l/error.json")" = bad_input ] && jq -r .message "$tmp/l/error.json" | grep -q "overlaps evaluation"
ok $? "calibrating on an evaluation split is refused: $(jq -r .message "$tmp/l/error.json" 2>/dev/null | cut -c1-100)"

# the job config's names of the other algorithms (coordinator/sweep/cs_sweep.c) reach the pipeline
R4='{"selector":{"name":"random"},"source":{"kind":"jsonl","path":"sweeps/testbed/data/corpus/prose.jsonl"}}'
mkdir "$tmp/m"; job sweeps/testbed/models/tb-qwen '{"name":"awq","bits":4,"group_size":64,"zero_point":true,"duo_scaling":true,"n_grid":20,"clip":true}' sweeps/testbed/data/heldout.txt "" "$R4" 8 64 >"$tmp/m/job.json"
run "$tmp/m"; ok $? "an AWQ job with the sweep's keys (zero_point, n_grid, clip) exits 0"
mkdir "$tmp/n"; job sweeps/testbed/models/tb-qwen '{"name":"sparsegpt","sparsity":0.5,"pattern":"2:4","damp":0.01,"block_size":128}' sweeps/testbed/data/heldout.txt "" "$R4" 8 64 >"$tmp/n/job.json"
run "$tmp/n"; ok $? "a SparseGPT 2:4 job with the sweep's keys exits 0"
mkdir "$tmp/o"; job sweeps/testbed/models/tb-qwen '{"name":"smoothquant","alpha":0.5,"bits":8,"act_bits":8,"weights":"rtn","damp":0.01}' sweeps/testbed/data/heldout.txt "" "$R4" 8 64 >"$tmp/o/job.json"
run "$tmp/o"; ok $? "an original-SmoothQuant job (weights rtn) exits 0"
jq -e '.extra.quant_timing.smooth > 0 and .extra.quant_timing.solve == 0 and .extra.quant_timing.rtn > 0' "$tmp/o/result.json" >/dev/null
ok $? "it smooths and rounds to nearest, with no GPTQ solve (extra.quant_timing)"
mkdir "$tmp/p"; job sweeps/testbed/models/tb-qwen '{"name":"smoothquant","alpha":0.5,"bits":8,"act_bits":8,"weights":"awq","damp":0.01}' sweeps/testbed/data/heldout.txt "" "$R4" 8 64 >"$tmp/p/job.json"
run "$tmp/p"; rc=$?
[ $rc = 1 ] && jq -r .message "$tmp/p/error.json" | grep -q "algorithm.weights"; ok $? "SmoothQuant with unknown weights is refused naming algorithm.weights"
mkdir "$tmp/q"; job sweeps/testbed/models/tb-qwen '{"name":"imatrix","type":"q4_k","chunk":64}' sweeps/testbed/data/heldout.txt "" "$R4" 8 96 >"$tmp/q/job.json"
run "$tmp/q"; ok $? "a llama.cpp imatrix job (q4_k, chunks of 64) exits 0"
validate result "$tmp/q/result.json"; ok $? "its result.json validates"
jq -e '(.extra.layers | length == 21) and ([.extra.layers[] | .type] | sort | unique == ["q4_k", "q5_0"]) and all(.extra.layers[]; .tokens == 768) and .extra.quant_timing.imatrix > 0 and .extra.quant_timing.solve == 0' "$tmp/q/result.json" >/dev/null
ok $? "it records 21 linears (q4_k, q5_0 where 128 inputs), 8 x 96 tokens in chunks of 64 and 32, and its time"
mkdir "$tmp/r"; job sweeps/testbed/models/tb-qwen '{"name":"imatrix","type":"q3_k","chunk":512}' sweeps/testbed/data/heldout.txt "" "$R4" 8 64 >"$tmp/r/job.json"
run "$tmp/r"; rc=$?
[ $rc = 1 ] && [ "$(jq -r .kind "$tmp/r/error.json")" = bad_input ] && jq -r .message "$tmp/r/error.json" | grep -q "algorithm.type"
ok $? "an unknown imatrix type is refused as bad_input naming algorithm.type"

# a mixed pool (data.pools of tests/data/sweeps/pools.json): prose weight 3, arith weight 1 as qa,
# 4 x n_samples = 32 items; the config is the one calsweep plan resolves for the sweep
mkdir "$tmp/pool"
(cd "$S" && "$CALSWEEP" plan --json --examples 10 tests/data/sweeps/pools.json) |
    jq -c '[.examples[] | select(.axes.source == "mix")][0].config' >"$tmp/pool/job.json"
run "$tmp/pool"; ok $? "a GPTQ job on a mixed pool exits 0"
validate result "$tmp/pool/result.json"; ok $? "its result.json validates"
jq -e '.calibration.pool as $p | $p.n == 32 and $p.composition == "random_windows" and ([$p.sources[] | [.name, .items, (.format // "-")]] == [["arith", 8, "qa"], ["prose", 24, "-"]])' "$tmp/pool/result.json" >/dev/null
ok $? "result.json records the pool: 32 items, arith 8 (weight 1 of 4, as qa) and prose 24"
jq -e '(.calibration.sample_ids | length == 8) and all(.calibration.sample_ids[]; test("^(arith|prose):w[0-9]+$"))' "$tmp/pool/result.json" >/dev/null
ok $? "the 8 chosen samples are named by their pool source"
jq -c '.calibration.source.composition = "doc_windows"' "$tmp/pool/job.json" >"$tmp/pool/dw.json"
mkdir "$tmp/pool-dw" && mv "$tmp/pool/dw.json" "$tmp/pool-dw/job.json" && run "$tmp/pool-dw"
jq -e '.calibration.pool.composition == "doc_windows" and all(.calibration.sample_ids[]; test("^(arith|prose):[a-z_]+-[0-9a-z-]+@[0-9]+$"))' "$tmp/pool-dw/result.json" >/dev/null
ok $? "the same pool composed as GPTQ's C4 sampler (doc_windows): samples named document@offset"
jq -c '.calibration.source.sources.leak = {"kind": "task", "path": "sweeps/testbed/data/tasks/arith_mc.eval.jsonl", "weight": 1, "format": "text"}' "$tmp/pool/job.json" >"$tmp/pool/leak.json" && mv "$tmp/pool/leak.json" "$tmp/pool/job.json"
run "$tmp/pool"; rc=$?
[ $rc = 1 ] && jq -r .message "$tmp/pool/error.json" | grep -q "calibration overlaps evaluation"
ok $? "a pool that holds an evaluation file is refused (calibration overlaps evaluation)"
exit $fail
