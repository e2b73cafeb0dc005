#!/usr/bin/env bash
# One grid shard per GPU on one node: N processes, each seeing one GPU, launched and stopped as one command.
#
#   scripts/launch_per_gpu.sh N [--gpus 0,1,2,3] [--mem-fraction 0.9] [--logs DIR] -- COMMAND [ARGS...]
#   scripts/launch_per_gpu.sh 8 -- python -m repro grid paper precision=bf16
#   scripts/launch_per_gpu.sh 4 --gpus 4,5,6,7 -- ./run_all.sh paper
#
# Process i (from 0) runs COMMAND with
#   CUDA_VISIBLE_DEVICES=<the i-th GPU>   so it sees one GPU: mesh.data 0 ("all devices") is then 1, and it
#                                         does not pre-allocate memory on the others' GPUs (JAX takes 75 % of
#                                         every visible GPU at start-up, so a second process would fail)
#   XLA_PYTHON_CLIENT_MEM_FRACTION        the share of its GPU JAX takes (default 0.9; repro plan --memory)
#   JOB_COMPLETION_INDEX=i XT_SHARD_COUNT=N   the grid's shard (repro/study/shards.py): the N shards split the
#                                         grid by planned FLOPs and share one output_dir, as an array job's do
# Its output goes to DIR/gpu<i>.log (default runs/launch-<time>). The GPUs are --gpus, else the
# CUDA_VISIBLE_DEVICES already set, else 0..N-1. TERM or INT is passed on to every process (a grid stops
# cleanly and resumes where it was); the exit status is 0 when all exit 0, else the first non-zero one.
# One cell over several GPUs stays available: run the grid itself with mesh.data=0 and no launcher.
set -uo pipefail
usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; }
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then usage; exit 0; fi
n=${1:-}
if ! [[ "$n" =~ ^[1-9][0-9]*$ ]]; then echo "launch_per_gpu: N=${n:-<missing>} must be a positive whole number (--help)" >&2; exit 2; fi
shift
gpus=${CUDA_VISIBLE_DEVICES:-} fraction=0.9 logs=runs/launch-$(date -u +%Y%m%dT%H%M%SZ)
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  case "$1" in
    --gpus) gpus=${2:-}; shift 2 ;;
    --mem-fraction) fraction=${2:-}; shift 2 ;;
    --logs) logs=${2:-}; shift 2 ;;
    *) echo "launch_per_gpu: unknown option $1 (--help)" >&2; exit 2 ;;
  esac
done
if [ "${1:-}" != "--" ] || [ $# -lt 2 ]; then echo "launch_per_gpu: no command after -- (--help)" >&2; exit 2; fi
shift
if ! [[ "$fraction" =~ ^(0?\.[0-9]*[1-9][0-9]*|1(\.0*)?)$ ]]; then
  echo "launch_per_gpu: --mem-fraction $fraction must be in (0, 1]" >&2; exit 2
fi
if [ -z "$gpus" ]; then gpus=$(seq -s, 0 $((n - 1))); fi
IFS=, read -r -a list <<< "$gpus"
if [ "${#list[@]}" -lt "$n" ]; then
  echo "launch_per_gpu: $n processes but only ${#list[@]} GPU(s) given: $gpus" >&2; exit 2
fi
mkdir -p "$logs" || exit 2

pids=()
# shellcheck disable=SC2329  # called by the trap
stop() { for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; }
trap stop TERM INT
for ((i = 0; i < n; i++)); do
  CUDA_VISIBLE_DEVICES=${list[$i]} XLA_PYTHON_CLIENT_MEM_FRACTION=$fraction \
    JOB_COMPLETION_INDEX=$i XT_SHARD_COUNT=$n "$@" > "$logs/gpu$i.log" 2>&1 &
  pids+=($!)
  echo "launch_per_gpu: shard $i/$n on GPU ${list[$i]}: pid $! -> $logs/gpu$i.log"
done
status=0
for i in "${!pids[@]}"; do
  while true; do
    wait "${pids[$i]}"; rc=$?
    # a trapped signal interrupts `wait` with rc > 128 while the process still runs: wait again
    if kill -0 "${pids[$i]}" 2>/dev/null; then continue; fi
    break
  done
  echo "launch_per_gpu: shard $i exited $rc"
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
done
exit "$status"
