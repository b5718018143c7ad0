#!/usr/bin/env bash
# suite_stats.sh - accuracy, standard errors and paired tests of testbed suite results, from the
# per-item outcomes of result.json (version 2 "items", docs/architecture.md).
#
#   suite_stats.sh [--suite DIR] A/result.json              one job: accuracy per task
#   suite_stats.sh [--suite DIR] A/result.json B/result.json  B minus A, item by item
#
# Every task of the result is read (its headline metric acc); the job must have scored the whole
# file (limit 0 or at least its size, so the outcomes are in file order) of DIR/<task>.eval.jsonl
# (DIR: sweeps/testbed/data/suite next to this script). Per task and for the mean over the tasks:
#   se       the standard error over items: sqrt(p(1 - p) / (n - 1)) for one job (what calsweep
#            reports), sd(d) / sqrt(n) of the item differences d = b - a for two (paired);
#   se_unit  the cluster-robust standard error that treats the item's unit (the end of its id:
#            the state, profession, arithmetic problem, program or fact its answer depends on) as
#            the independent draw: sqrt(G / (G - 1) * sum over units of (sum of residuals)^2) / n;
#   z, p     the paired difference over its item standard error, two-sided normal p-value;
#   mde      the minimum detectable paired difference at 80 % power, two-sided 5 %: 2.80 se.
# The mean over T tasks has standard error sqrt(sum of se^2) / T (tasks are drawn independently).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
suite=$here/data/suite
if [ "${1:-}" = --suite ]; then
    suite=$2
    shift 2
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
A=$1 B=${2:-}

# bits FILE TASK: item i's acc outcome on line i + 1
bits() {
    local n
    n=$(jq ".items[\"$2\"].n" "$1")
    jq -r ".items[\"$2\"].acc" "$1" | base64 -d | od -An -tu1 -v |
        awk -v n="$n" '{ for (i = 1; i <= NF; i++) { v = $i
                           for (b = 0; b < 8; b++) { if (k++ < n) print v % 2; v = int(v / 2) } } }'
}

# one line per item: task, unit, a, b
rows() {
    local t f n
    for t in $(jq -r '.items | keys[]' "$A"); do
        f=$suite/$t.eval.jsonl
        [ -f "$f" ] || { echo "suite_stats.sh: no task file $f" >&2; exit 1; }
        n=$(jq ".items[\"$t\"].n" "$A")
        [ "$n" = "$(wc -l <"$f")" ] || { echo "suite_stats.sh: $t: $n items scored, $f has $(wc -l <"$f") (score the whole file)" >&2; exit 1; }
        if [ -n "$B" ]; then
            [ "$(jq -r ".items[\"$t\"].sample" "$A")" = "$(jq -r ".items[\"$t\"].sample" "$B")" ] ||
                { echo "suite_stats.sh: $t: the two results scored different items" >&2; exit 1; }
            paste <(jq -r '.id | sub("^[a-z_]+-[0-9]+-"; "")' "$f") <(bits "$A" "$t") <(bits "$B" "$t")
        else
            paste <(jq -r '.id | sub("^[a-z_]+-[0-9]+-"; "")' "$f") <(bits "$A" "$t") <(bits "$A" "$t")
        fi | sed "s/^/$t\t/"
    done
}

rows | awk -F'\t' -v paired="${B:+1}" '
function erfc(x,   t) { t = 1 / (1 + 0.3275911 * x)   # Abramowitz and Stegun 7.1.26, |error| < 1.5e-7
    return t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * exp(-x * x) }
function pval(z) { z = z < 0 ? -z : z; return erfc(z / sqrt(2)) }
function pstr(p) { return p < 1e-6 ? "<1e-6" : sprintf("%.2g", p) }
{ t = $1; if (!(t in n)) order[++T] = t
  n[t]++; a[t] += $3; b[t] += $4; x = paired ? $4 - $3 : $3; s[t] += x; ss[t] += x * x
  k = t SUBSEP $2; if (!(k in us)) nu[t]++; us[k] += x; un[k]++; unit_of[t, n[t]] = k; val[t, n[t]] = x }
END {
  if (paired) printf "%-13s %5s %7s %7s %8s %6s %7s %6s %7s %6s\n", "task", "n", "acc A", "acc B", "B - A", "se", "se_unit", "units", "z", "p"
  else printf "%-13s %5s %7s %6s %7s %6s\n", "task", "n", "acc", "se", "se_unit", "units"
  for (i = 1; i <= T; i++) { t = order[i]; N = n[t]; m = s[t] / N
    if (paired) se = sqrt((ss[t] - N * m * m) / (N - 1) / N); else se = sqrt(m * (1 - m) / (N - 1))
    # cluster-robust: residuals summed per unit
    delete r; for (j = 1; j <= N; j++) r[unit_of[t, j]] += val[t, j] - m
    c2 = 0; for (k in r) c2 += r[k] * r[k]; G = nu[t]
    seu = G > 1 ? sqrt(G / (G - 1) * c2) / N : 0
    z = (se > 0) ? m / se : 0
    sum_m += m; v += se * se; vu += seu * seu; ma += a[t] / N; mb += b[t] / N
    if (paired) printf "%-13s %5d %7.2f %7.2f %+8.2f %6.2f %7.2f %6d %7.2f %6s\n", t, N, 100 * a[t] / N, 100 * b[t] / N, 100 * m, 100 * se, 100 * seu, G, z, pstr(pval(z))
    else printf "%-13s %5d %7.2f %6.2f %7.2f %6d\n", t, N, 100 * m, 100 * se, 100 * seu, G }
  se = sqrt(v) / T; seu = sqrt(vu) / T; m = sum_m / T
  if (paired) printf "%-13s %5s %7.2f %7.2f %+8.2f %6.2f %7.2f %6s %7.2f %6s  mde %.2f (unit %.2f)\n", "mean of " T, "", 100 * ma / T, 100 * mb / T, 100 * m, 100 * se, 100 * seu, "", m / se, pstr(pval(m / se)), 280.16 * se, 280.16 * seu
  else printf "%-13s %5s %7.2f %6.2f %7.2f\n", "mean of " T, "", 100 * m, 100 * se, 100 * seu }'
