#!/usr/bin/env bash
# Latency regression gate for tests/benchmarks, to run on your own machine (timings only compare on the
# same machine, under similar load):
#
#   scripts/bench_gate.sh save  [pytest args]   # run the benchmarks, save the baseline (.benchmarks/)
#   scripts/bench_gate.sh check [pytest args]   # run again, fail if any median is more than X % slower
#
# Env: XT_BENCH_GATE_THRESHOLD  allowed median slowdown in percent (default 25)
#      XT_BENCH_GATE_FIELD      statistic compared (default median; min is steadier on a shared machine)
#      XT_BENCH_GATE_NAME       name of the saved baseline (default "baseline"); check compares with the
#                               newest run saved under this name
#      XT_BENCH_STORAGE         pytest-benchmark storage (default .benchmarks in the repository)
#      XT_BENCH_PRESET          tiny (default) | base | real, as for pytest tests/benchmarks
# Extra arguments go to pytest, e.g. `--bench-preset base --bench-shapes 32x128 -k jax`; pass the same
# ones to save and check, so that the same benchmarks compare (ids are stable across runs).
#
# TEST HOOK: XT_BENCH_PLANT_SLOWDOWN=2 makes every benchmarked call run its operation twice; `check`
# must then fail. docs/benchmarks.md quotes such a run. Never set it when saving a baseline.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
shift || true
threshold=${XT_BENCH_GATE_THRESHOLD:-25}
field=${XT_BENCH_GATE_FIELD:-median}
name=${XT_BENCH_GATE_NAME:-baseline}
storage=${XT_BENCH_STORAGE:-.benchmarks}
py=${XT_PYTHON:-${XT_VENV:-.venv}/bin/python}
[ -x "$py" ] || py=python
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
# Benchmarks need one process: no xdist (pytest-benchmark disables itself under it).
common=(-m pytest tests/benchmarks -p no:xdist -q --benchmark-storage="$storage" --benchmark-columns=median,iqr,rounds)
case "$mode" in
  save)
    exec "$py" "${common[@]}" --benchmark-save="$name" "$@"
    ;;
  check)
    baseline=$(ls "$storage"/*/[0-9][0-9][0-9][0-9]_"$name".json 2>/dev/null | sort -t/ -k3 | tail -1 || true)
    if [ -z "$baseline" ]; then
      echo "bench_gate: no baseline named '$name' in $storage; run: scripts/bench_gate.sh save" >&2
      exit 2
    fi
    echo "bench_gate: comparing with $baseline, failing on a ${field} slowdown > ${threshold}%" >&2
    exec "$py" "${common[@]}" --benchmark-compare="$baseline" \
      --benchmark-compare-fail="${field}:${threshold}%" "$@"
    ;;
  *)
    sed -n '2,22p' "$0" >&2
    exit 2
    ;;
esac
