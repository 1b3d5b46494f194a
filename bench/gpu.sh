#!/usr/bin/env bash
# The GPU figures of docs/benchmarks.md, in one short run (~8 minutes on an H100/H200).
#
#   bash bench/gpu.sh                 # from the repository root; results in $OUT (default bench/gpu-out)
#
# 1. `medium` (nanoGPT's 10.7M shakespeare_char model) as nanoGPT trains it (AdamW, dropout 0.2),
#    bf16 autocast + torch.compile, 100 s of training: time to val 1.47, tokens/s, MFU.
# 2. The same shape with this project's CPU recipe switches (modern block + Muon), 60 s.
# 3. KV-cached sampling of `medium` on the GPU, tokens/s.
# 4. The app on the GPU: Start -> first loss point (API), then 20 clients sampling while a run trains.
#
# Needs: a CUDA build of torch in .venv (or on PATH), Tiny Shakespeare in $GPT_DATA_DIR or data/
# (the GPU machine may have no internet, so nothing is downloaded), gradio + gradio_client for step 4.
# Every step has its own time limit (~8 minutes in all when each succeeds, at most ~11); a failed step
# is reported and the next one still runs, and $OUT/summary.md is written as it goes.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
OUT=${OUT:-bench/gpu-out}
mkdir -p "$OUT"
export GPT_DATA_DIR=${GPT_DATA_DIR:-data}
export PYTHONUNBUFFERED=1
SUMMARY="$OUT/summary.md"
: > "$SUMMARY"
say() { echo "$*" | tee -a "$SUMMARY"; }

say "# bench/gpu.sh $(date -u +%Y-%m-%dT%H:%MZ)"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' | tee -a "$SUMMARY"
"$PY" - <<'PY' || { say "no CUDA torch here: stop"; exit 1; }
import sys, torch
print(f"torch {torch.__version__}, cuda {torch.version.cuda}, available {torch.cuda.is_available()}")
sys.exit(0 if torch.cuda.is_available() else 1)
PY
if [ ! -f "$GPT_DATA_DIR/tinyshakespeare.txt" ]; then
  say "Tiny Shakespeare not found in $GPT_DATA_DIR (set GPT_DATA_DIR or copy tinyshakespeare.txt into data/): stop"
  exit 1
fi

# time to val 1.47, median tokens/s and MFU, from a run folder's metrics.jsonl
report() {
  "$PY" - "$1" "$2" <<'PY' | tee -a "$SUMMARY"
import json, statistics, sys
folder, label = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(f"{folder}/metrics.jsonl") if l.strip()]
hit = next((r for r in rows if r["val_loss"] <= 1.47), None)
rates = [r["tokens_per_sec"] for r in rows if r.get("tokens_per_sec")]
mfu = [r["mfu"] for r in rows if r.get("mfu")]
best = min(rows, key=lambda r: r["val_loss"])
print(f"| {label} | " + (f"{hit['elapsed_s']:.1f} s (step {hit['step']})" if hit else "not reached") +
      f" | {best['val_loss']:.4f} at {best['elapsed_s']:.1f} s (step {best['step']}) | "
      f"{statistics.median(rates):,.0f} | " + (f"{100 * statistics.median(mfu):.1f}%" if mfu else "-") + " |")
PY
}

train() {  # label, seconds, extra flags...
  local label=$1 secs=$2; shift 2
  local dir="$OUT/$label"
  rm -rf "$dir"
  local t0=$(date +%s)
  timeout $((secs + 90)) "$PY" -m gpt.train --data shakespeare --tokenizer char --preset medium --dtype bfloat16 \
      --compile --max-seconds "$secs" --max-iters 5000 --eval-interval 250 --eval-iters 40 --sample-tokens 0 \
      --out "$dir" "$@" > "$dir.log" 2>&1
  local rc=$?
  say "<!-- $label: exit $rc, whole command $(( $(date +%s) - t0 )) s (compile included; log $dir.log) -->"
  [ -f "$dir/metrics.jsonl" ] && report "$dir" "$label" || tail -5 "$dir.log" | tee -a "$SUMMARY"
}

say ""
say "| run | training s to val 1.47 | best val | tokens/s (median) | MFU (median) |"
say "|---|---|---|---|---|"
train medium-nanogpt 100
train medium-modern-muon 60 --arch modern --optimizer muon --muon-lr 0.02 --lr 3e-3 --dropout 0.1

say ""
say "KV-cached sampling on the GPU (medium, fresh weights, 500 new tokens, median of 3):"
timeout 90 "$PY" - <<'PY' 2>&1 | tee -a "$SUMMARY"
import statistics, time, torch
from gpt.engine import SamplingSettings, generate
from gpt.model import GPT, GPTConfig, MODEL_PRESETS
model = GPT(GPTConfig(vocab_size=65, **MODEL_PRESETS["medium"])).cuda().eval()
settings = SamplingSettings(max_new_tokens=500, temperature=0.8, seed=1)
generate(model, [0], SamplingSettings(max_new_tokens=20))
for cache in (True, False):
    walls = []
    for _ in range(3):
        torch.cuda.synchronize(); t = time.perf_counter()
        generate(model, [0], settings, use_cache=cache)
        torch.cuda.synchronize(); walls.append(time.perf_counter() - t)
    print(f"- {'KV cache' if cache else 'no cache'}: {500 / statistics.median(walls):,.0f} tokens/s")
PY

say ""
say "The app on the GPU:"
timeout 120 "$PY" bench/first_point.py --preset medium --rounds 3 2>&1 | tail -3 | tee -a "$SUMMARY"
timeout 180 "$PY" bench/load_test.py --users 20 --requests 3 --tokens 100 --preset medium --time-limit 150 \
    --json "$OUT/load.json" 2>&1 | tail -12 | tee -a "$SUMMARY"
say ""
say "done $(date -u +%H:%MZ); everything is in $OUT"
