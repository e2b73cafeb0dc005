#!/usr/bin/env bash
# The whole study on a fresh machine: set up .venv, run the grid of a preset, build the report, print a table.
#   ./run_all.sh                         # smoke preset: synthetic data, tiny models, offline, a few minutes
#   ./run_all.sh paper                   # the paper grid (hub models and datasets)
#   ./run_all.sh smoke grid.seeds=[0,1]  # overrides a.b=value go to `python -m repro grid`
#   ./run_all.sh path/to/config.yaml
# Exit status: that of the grid (1 if a cell failed; 2 for a config/data/output error).
# Env: XT_VENV, XT_NO_VENV, XT_JAX_EXTRA (e.g. cuda), as scripts/setup_env.sh.
set -euo pipefail
cd "$(dirname "$0")"

preset=smoke
if [ $# -gt 0 ] && [[ "$1" != *=* ]]; then preset=$1; shift; fi
config=$preset
[ -f "$config" ] || config=configs/$preset.yaml
if [ ! -f "$config" ]; then
  echo "run_all.sh: no preset '$preset' (choose one of: $(cd configs && ls *.yaml | sed 's/\.yaml//' | tr '\n' ' '))" >&2
  exit 2
fi

start=$(date +%s)
scripts/setup_env.sh run
if [ "${XT_NO_VENV:-0}" = 1 ]; then py=${PYTHON:-python3}; else py=${XT_VENV:-.venv}/bin/python; fi
export TOKENIZERS_PARALLELISM=false

# Synthetic presets never touch the network: make sure of it.
settings=$("$py" - "$config" "$@" <<'PY'
import sys
from repro import config
try:
    cfg = config.load(sys.argv[1], [a for a in sys.argv[2:] if not a.startswith("--")])
except config.ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)
print(cfg.data.source, cfg.output_dir)
PY
) || exit 2
read -r source output_dir <<<"$settings"
if [ "$source" = synthetic ]; then
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
fi

set +e
"$py" -m repro grid "$config" "$@"
grid_rc=$?
set -e
if [ "$grid_rc" = 2 ]; then exit 2; fi   # config / data / output error: already explained on stderr

"$py" -m repro report "$output_dir"
echo
"$py" -m repro table "$output_dir"
echo
echo "run_all.sh: $preset done in $(( $(date +%s) - start )) s; report: $output_dir/report/report.md"
exit "$grid_rc"
