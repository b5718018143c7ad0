#!/usr/bin/env bash
# calsweep-run's engine commands on the testbed models: info, tokenize (ids of ref/tokens.jsonl),
# ppl of heldout.txt equal to README's figures within 1e-3 relative, greedy generation, --help of
# each command, clear errors for a missing model, eval's few-shot options. (The job-file mode: tests/cli/run_job.sh.)
n=0; fail=0
ok() { local m=${2//$'\n'/ | }; n=$((n+1)); if [ "$1" = 0 ]; then echo "ok $n - $m"; else echo "not ok $n - $m"; fail=1; fi; }
R=$CALSWEEP_RUN
S=${CS_SOURCE_DIR:-.}
M=$S/sweeps/testbed/models
echo "1..24"
out=$("$R" info "$M/tb-qwen"); ok $? "info exits 0"
case "$out" in *"architecture: Qwen2ForCausalLM"*"kv_heads: 2"*"tie_word_embeddings: true"*"parameters: 607872"*) ok 0 "info tb-qwen";; *) ok 1 "info tb-qwen: $out";; esac
out=$("$R" info "$M/tb-llama"); case "$out" in *"LlamaForCausalLM"*"layers: 4"*"parameters: 1180800"*) ok 0 "info tb-llama";; *) ok 1 "info tb-llama: $out";; esac
out=$("$R" tokenize "$M/tb-llama" --text "Zoe is a pilot."); [ "$out" = "1534 1159 290 259 877 13" ]; ok $? "tokenize --text adds BOS: $out"
out=$(printf 'Zoe is a pilot.' | "$R" tokenize "$M/tb-llama" --no-special); [ "$out" = "1159 290 259 877 13" ]; ok $? "tokenize stdin --no-special: $out"
check_ppl() { # model want
    local out p
    out=$("$R" ppl "$M/$1" --data "$S/sweeps/testbed/data/heldout.txt" --seq-len 256 --threads 2 --batch 4 2>&1) || { ok 1 "ppl $1: $out"; return; }
    p=$(printf '%s\n' "$out" | sed -n 's/^ppl: //p')
    awk -v p="$p" -v w="$2" 'BEGIN { d = (p - w) / w; if (d < 0) d = -d; exit !(d < 1e-3) }'
    ok $? "ppl $1 = $p (README $2)"
}
check_ppl tb-llama "$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$S/sweeps/testbed/ref/tb-llama.metrics.json" | head -1)"
check_ppl tb-qwen "$(sed -n 's/.*"ppl": \([0-9.]*\).*/\1/p' "$S/sweeps/testbed/ref/tb-qwen.metrics.json" | head -1)"
out=$("$R" ppl "$M/tb-llama" --data "$S/sweeps/testbed/data/heldout.txt" --seq-len 100000 2>&1); [ $? -eq 1 ] && case "$out" in *"fewer than one window"*) true;; *) false;; esac; ok $? "ppl with a window longer than the data: $out"
out=$("$R" generate "$M/tb-llama" --prompt "Zoe is a pilot. Every morning she goes to the" --max-new 3 2>&1); ok $? "generate exits 0: $out"
[ -n "$out" ]; ok $? "generate prints text"
out2=$("$R" generate "$M/tb-llama" --prompt "Zoe is a pilot. Every morning she goes to the" --max-new 3 --threads 2 2>&1); [ "$out" = "$out2" ]; ok $? "greedy generation is the same with 2 threads"
for c in info tokenize ppl generate eval; do
    "$R" $c --help | grep -q "usage: calsweep-run $c"; ok $? "$c --help"
done
out=$("$R" info /nonexistent 2>&1); [ $? -eq 1 ] && case "$out" in *"/nonexistent/config.json"*) true;; *) false;; esac; ok $? "info of a missing model names the file: $out"
T=$S/sweeps/testbed/data/tasks
out=$("$R" eval "$M/tb-llama" --task "$T/facts_mc.eval.jsonl" --first 40 --threads 2 2>/dev/null); ok $? "eval exits 0"
printf '%s\n' "$out" | grep -Eq '^facts_mc +40 +0\.8500 '; ok $? "eval prints the README's first-40 facts_mc accuracy (85.0 %)"
"$R" eval "$M/tb-llama" >/dev/null 2>&1; [ $? = 2 ]; ok $? "eval without --task exits 2"
out=$("$R" eval "$M/tb-llama" --task "$S/sweeps/testbed/data/heldout.txt" 2>&1); [ $? = 1 ] && case "$out" in *"heldout.txt:1"*) true;; *) false;; esac
ok $? "eval of a file that is not a task file names file:line: $out"
"$R" eval "$M/tb-llama" --task "$T/facts_mc.eval.jsonl" --fewshot 2 >/dev/null 2>&1; [ $? = 2 ]; ok $? "eval --fewshot without --shots exits 2"
out=$("$R" eval "$M/tb-llama" --task "$T/facts_mc.eval.jsonl" --fewshot 2 --shots "$T/arith_gen.train.jsonl" 2>&1); [ $? = 1 ] && case "$out" in *"arith_gen.train.jsonl"*) true;; *) false;; esac
ok $? "eval with shots of another kind fails naming the shot file: $out"
a=$("$R" eval "$M/tb-llama" --task "$T/facts_mc.eval.jsonl" --limit 20 --json 2>/dev/null | jq -c .tasks.facts_mc)
b=$("$R" eval "$M/tb-llama" --task "$T/facts_mc.eval.jsonl" --limit 20 --fewshot 2 --shots "$T/facts_mc.train.jsonl" --json 2>/dev/null | jq -c .tasks.facts_mc)
[ "$(jq .n <<<"$a") $(jq .n <<<"$b")" = "20 20" ]; ok $? "eval --limit 20, 0-shot and 2-shot: $a / $b"
exit $fail
