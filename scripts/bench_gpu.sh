#!/usr/bin/env bash
# Base-preset benchmarks on one NVIDIA GPU, JAX and PyTorch in the same pytest run, then the table.
#
#   scripts/bench_gpu.sh [out_dir] [extra pytest args]      (25-45 min: 80 cases, 20 with torch.compile)
#   scripts/bench_gpu.sh --quick [out_dir]                   (<= 8 min: scripts/bench_quick.py)
#
# Records, for the five base configs (bert-base-cased, bert-base-multilingual-cased, roberta-base,
# xlm-roberta-base, xlnet-base-cased; random weights, no download), sequence classification:
#   - forward latency at B=1/T=128 and B=32/T=128, float32 and bfloat16, JAX vs PyTorch eager and
#     torch.compile on the same GPU (ratio per shape in the table);
#   - a training step at B=32/T=128, float32 and bfloat16 (mixed precision: fp32 master weights), with
#     tokens/s and MFU against the device's dense peak (BERT-base bf16 is the headline figure).
# Writes <out_dir>/bench.json (pytest-benchmark), <out_dir>/table.md and table.csv, <out_dir>/pytest.log.
#
# Needs JAX with CUDA (XT_JAX_EXTRA=cuda scripts/setup_env.sh test, or pip install -e '.[cuda,test]')
# and a CUDA build of torch (PyPI's default Linux wheel). Set XT_BENCH_ALLOW_TORCH_CPU=1 to run anyway
# when torch has no CUDA (the PyTorch column is then a CPU figure and the ratio means nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
# --quick: the minutes-long check instead (scripts/bench_quick.py; its budget is in docs/benchmarks.md)
if [ "${1:-}" = "--quick" ]; then
  shift
  export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda} HF_HUB_OFFLINE=1 XLA_PYTHON_CLIENT_PREALLOCATE=false
  exec "${XT_PYTHON:-python}" scripts/bench_quick.py --out "${1:-results/bench-quick-$(date -u +%Y%m%dT%H%M%SZ)}"
fi
out=${1:-results/bench-gpu-$(date -u +%Y%m%dT%H%M%SZ)}
shift || true
py=${XT_PYTHON:-${XT_VENV:-.venv}/bin/python}
[ -x "$py" ] || py=python
mkdir -p "$out"

export JAX_PLATFORMS=cuda HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1}
# JAX and PyTorch share the GPU in one process: allocate on demand instead of JAX's 75 % up front.
export XLA_PYTHON_CLIENT_PREALLOCATE=false

"$py" - <<'PY'
import os, sys
import jax, torch
dev = jax.devices()[0]
print(f"jax {jax.__version__}: {dev.platform} {dev.device_kind}; torch {torch.__version__}: "
      f"cuda={torch.cuda.is_available()} {torch.cuda.get_device_name() if torch.cuda.is_available() else ''}")
if dev.platform != "gpu":
    sys.exit("bench_gpu: JAX sees no GPU (install jax[cuda12]: XT_JAX_EXTRA=cuda scripts/setup_env.sh test)")
if not torch.cuda.is_available() and os.environ.get("XT_BENCH_ALLOW_TORCH_CPU") != "1":
    sys.exit("bench_gpu: torch has no CUDA; install a CUDA torch build or set XT_BENCH_ALLOW_TORCH_CPU=1")
PY

set +e
"$py" -m pytest tests/benchmarks/test_forward.py tests/benchmarks/test_train.py -p no:xdist -q \
  --bench-preset base --bench-heads seqcls --bench-shapes 1x128,32x128 --bench-torch-compile \
  --benchmark-json="$out/bench.json" --benchmark-columns=median,iqr,rounds "$@" 2>&1 | tee "$out/pytest.log"
status=${PIPESTATUS[0]}
set -e
[ -f "$out/bench.json" ] && "$py" scripts/bench_table.py "$out/bench.json" --out "$out/table"
exit "$status"
