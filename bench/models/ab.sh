#!/usr/bin/env bash
# A/B of two runnel binaries on one benchmark model, alternating A and B run by run, so that both
# see the same drift of a shared machine (its memory bandwidth moves by 1.5x within minutes).
# Prints the median, max and every run of the chosen figure for each binary.
# Usage: ab.sh BIN_A BIN_B SHAPE-DTYPE [ROUNDS] [BENCH ARGS...]
#   ROUNDS (default 6) runs of each; BENCH ARGS default "-p 16 -n 64 -r 1 -t 2".
# Env: RUNNEL_BENCH_DIR (default /tmp/runnel-bench), KEY: the --json field to compare
#      (default decode_tokens_per_s; e.g. prefill_tokens_per_s with "-p 512 -n 1 -r 1 -t 2").
# Example: bench/models/ab.sh /tmp/runnel-old build/runnel qwen06b-q4_0 8
set -euo pipefail
[ $# -ge 3 ] || { sed -n 2,9p "$0" >&2; exit 2; }
a="$1" b="$2" model="$3"
shift 3
rounds="${1:-6}"
[ $# -gt 0 ] && shift
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(-p 16 -n 64 -r 1 -t 2)
dir="${RUNNEL_BENCH_DIR:-/tmp/runnel-bench}"
key="${KEY:-decode_tokens_per_s}"
file="$dir/$model.gguf"
[ -f "$file" ] || { echo "ab.sh: no $file (bench/models/make_models.sh $model)" >&2; exit 1; }
for bin in "$a" "$b"; do
  [ -x "$bin" ] || { echo "ab.sh: $bin is not an executable" >&2; exit 1; }
done
for ((i = 0; i < rounds; ++i)); do
  for side in A B; do
    bin="$a"
    [ "$side" = B ] && bin="$b"
    "$bin" bench "$file" "${args[@]}" --json |
      /usr/bin/python3 -c "import json, sys; print('$side', json.load(sys.stdin)['$key'])"
  done
done | /usr/bin/python3 -c "
import statistics, sys
runs = {'A': [], 'B': []}
for line in sys.stdin:
    side, value = line.split()
    runs[side].append(float(value))
for side, name in (('A', sys.argv[1]), ('B', sys.argv[2])):
    v = runs[side]
    print(f'{side} {name}: median {statistics.median(v):.2f} max {max(v):.2f} runs',
          ' '.join(f'{x:.1f}' for x in v))
" "$a" "$b"
