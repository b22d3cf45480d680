#!/usr/bin/env bash
# Makes the benchmark models (random weights, real shapes) with tools/gen_tiny_model.py into a cache
# dir outside the repo (never committed). Same arguments -> byte-identical files, so a file that
# already exists is kept. Usage: make_models.sh [SHAPE-DTYPE ...]  (default: llama1b-{f16,q8_0,q4_0})
#   SHAPE: llama1b (Llama-3.2-1B: dim 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied)
#          qwen06b (Qwen3-0.6B: dim 1024, 28 layers, 16/8 heads, head_dim 128, FFN 3072, vocab 151936, tied)
#   DTYPE: f32 f16 bf16 q8_0 q4_0 (numpy), or q4_1 q5_0 q5_1 q2_k q3_k q4_k q4_k_m q5_k q5_k_m q6_k
#   iq4_nl iq4_xs
#   (runnel's own quantizer, from the SHAPE-f16 file, made first: `runnel create --quantize`, into a
#   scratch store).
#   Cache dir: ${RUNNEL_BENCH_DIR:-/tmp/runnel-bench}. RUNNEL_BIN: the runnel binary (build/runnel).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${RUNNEL_BENCH_DIR:-/tmp/runnel-bench}"
mkdir -p "$dir"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(llama1b-f16 llama1b-q8_0 llama1b-q4_0)

shape_args() {
  case "$1" in
    llama1b) echo "--arch LlamaForCausalLM --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --ffn 8192 --vocab 128256 --tied --ctx 131072 --rope-theta 500000" ;;
    qwen06b) echo "--arch Qwen3ForCausalLM --hidden 1024 --layers 28 --heads 16 --kv-heads 8 --head-dim 128 --ffn 3072 --vocab 151936 --tied --ctx 40960 --rope-theta 1000000 --rms-eps 1e-6" ;;
    *) echo "make_models.sh: unknown shape $1" >&2; return 1 ;;
  esac
}

for m in "${models[@]}"; do
  shape="${m%%-*}"
  dtype="${m#*-}"
  out="$dir/$m.gguf"
  if [ -s "$out" ]; then
    echo "have $out"
    continue
  fi
  args="$(shape_args "$shape")"
  case "$dtype" in
    q4_1 | q5_0 | q5_1 | q2_k | q3_k | q4_k | q4_k_m | q5_k | q5_k_m | q6_k | iq4_nl | iq4_xs)
      "$0" "$shape-f16"
      store="$dir/store.tmp"
      rm -rf "$store"
      echo "making $out (runnel create --quantize $dtype from $shape-f16)"
      RUNNEL_MODELS="$store" "${RUNNEL_BIN:-$repo/build/runnel}" create "bench-$m" \
        --from "$dir/$shape-f16.gguf" --quantize "$dtype" >&2
      blob="$(find "$store" -type f -size +1M -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)"
      mv "$blob" "$out"
      rm -rf "$store"
      continue
      ;;
  esac
  echo "making $out ($shape, $dtype)"
  # shellcheck disable=SC2086
  /usr/bin/python3 "$repo/tools/gen_tiny_model.py" $args --format gguf --dtype "$dtype" --seed 0 \
    --out "$out.tmp"
  mv "$out.tmp" "$out"
done
