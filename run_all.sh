#!/usr/bin/env bash
# The whole study on a fresh machine: set up .venv, run the grid of a preset, build the report, print a table.
#
# Usage: ./run_all.sh [--device cpu|gpu|tpu] [PRESET | CONFIG.yaml] [a.b=value ...]
#   ./run_all.sh                         # smoke preset: synthetic data, tiny models, offline, a few minutes
#   ./run_all.sh paper                   # the paper grid (hub models and datasets)
#   ./run_all.sh mini models.e5-small.name_or_path=DIR data.data_dir=DIR   # real data, real encoder, CPU (README)
#   ./run_all.sh smoke grid.seeds=[0,1]  # overrides a.b=value go to `python -m repro grid`
#   ./run_all.sh path/to/config.yaml
#   ./run_all.sh --device gpu paper      # stop at once, before any work, if JAX sees no GPU
#
# Stopping: SIGTERM or SIGINT (Ctrl-C) go to the grid, which saves where it is; nothing after it runs, no
# report is written, and the same command resumes. A grid with failed cells still gets a report, marked
# INCOMPLETE at its top (and report/INCOMPLETE).
# Exit status: 0; 1 if a cell failed; 2 for a config/data/output/device error; 128+N when stopped by
# signal N (143 SIGTERM, 130 SIGINT).
# Env: XT_DEVICE (as --device), XT_VENV, XT_NO_VENV, XT_JAX_EXTRA (e.g. cuda) as scripts/setup_env.sh;
#      XT_SKIP_SETUP=1 uses the Python environment as it is (no setup_env.sh).
set -euo pipefail
cd "$(dirname "$0")"
me=run_all.sh

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

# ---- arguments: our own flags first, then the preset, then overrides for the grid ----------------------
device=${XT_DEVICE:-}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    -h|--help) usage; exit 0 ;;
    --device) [ $# -ge 2 ] || { echo "$me: --device needs a value: cpu, gpu or tpu" >&2; exit 2; }
              device=$2; shift 2 ;;
    --device=*) device=${1#--device=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
set -- "${args[@]+"${args[@]}"}"
case $device in
  ""|cpu|gpu|tpu) ;;
  *) echo "$me: --device (or XT_DEVICE) must be cpu, gpu or tpu, not '$device'" >&2; exit 2 ;;
esac

preset=smoke
if [ $# -gt 0 ] && [[ "$1" != *=* ]] && [[ "$1" != -* ]]; then preset=$1; shift; fi
config=$preset
[ -f "$config" ] || config=configs/$preset.yaml
if [ ! -f "$config" ]; then
  echo "$me: no preset '$preset' (choose one of: $(cd configs && ls *.yaml | sed 's/\.yaml//' | tr '\n' ' ')or see --help)" >&2
  exit 2
fi

# ---- signals: each step runs as a background job in its own process group (started under set -m), so
# that a Ctrl-C from a terminal reaches us once and we pass it on once, and so that the step keeps Python's
# SIGINT handler (without job control bash starts background jobs with SIGINT ignored). The trap forwards
# TERM/INT/HUP to the running step. Bash as PID 1 (the image) gets signals too, because it traps them.
child="" stop_signal="" forwarded="" signals=0
forward() {   # to the step's whole process group (it leads one), as a terminal's Ctrl-C would
  forwarded=1
  kill -s "$1" -- "-$child" 2>/dev/null || kill -s "$1" "$child" 2>/dev/null || true
}
on_signal() {
  stop_signal=$1 signals=$((signals + 1))
  if [ -n "$child" ] && [ -z "$forwarded" ]; then forward "$1"; fi
}
trap 'on_signal TERM' TERM
trap 'on_signal INT' INT
trap 'on_signal HUP' HUP
signal_status() { case $1 in TERM) echo 143 ;; INT) echo 130 ;; HUP) echo 129 ;; esac; }

# run_step CMD...: runs CMD as a background job and waits for it, forwarding signals; sets step_rc.
run_step() {
  local seen again
  forwarded=""
  set -m                 # job control only to start the job: no "[1]+ Terminated" notices afterwards
  "$@" &
  child=$!
  set +m
  if [ -n "$stop_signal" ] && [ -z "$forwarded" ]; then forward "$stop_signal"; fi
  while :; do
    seen=$signals step_rc=0
    wait "$child" || step_rc=$?
    [ "$signals" != "$seen" ] || break          # no signal came: this is the step's own status
    # A trapped signal ends `wait` early (with 128+N): wait again while the step lives. If it ended just
    # then, ask once more for its status (127: this wait already returned it).
    kill -0 "$child" 2>/dev/null && continue
    again=0; wait "$child" 2>/dev/null || again=$?
    [ "$again" = 127 ] || step_rc=$again
    break
  done
  child=""
}

# stop_if_signalled WHAT [STATE]: after a step, a pending stop ends the run with one line and 128+N.
stop_if_signalled() {
  [ -n "$stop_signal" ] || return 0
  echo "$me: stopped by SIG$stop_signal $1; ${2:-no report written. Rerun the same command to resume (finished cells are kept).}" >&2
  exit "$(signal_status "$stop_signal")"
}

# Paths as the user sees them: in the image /results is a folder mounted from the host. docker/entrypoint.py
# sets XT_RESULTS_MOUNT=/results, XT_RESULTS_SHOWN=<the host folder, else /results> and XT_RESULTS_WHERE
# (what /results is when it is no host folder, e.g. "volume NAME").
show_path() {
  local p
  p=$(realpath -m "$1" 2>/dev/null) || p=$1    # realpath -m: GNU coreutils
  if [ -n "${XT_RESULTS_MOUNT:-}" ] && [ -n "${XT_RESULTS_SHOWN:-}" ]; then
    case $p in
      "$XT_RESULTS_MOUNT"|"$XT_RESULTS_MOUNT"/*)
        p=$XT_RESULTS_SHOWN${p#"$XT_RESULTS_MOUNT"}
        [ -z "${XT_RESULTS_WHERE:-}" ] || p="$p ($XT_RESULTS_MOUNT: $XT_RESULTS_WHERE)" ;;
    esac
  fi
  printf '%s' "$p"
}
closing_warning() {
  if [ -n "${XT_RESULTS_EPHEMERAL:-}" ]; then echo "$me: WARNING: $XT_RESULTS_EPHEMERAL" >&2; fi
}

# ---- setup ------------------------------------------------------------------------------------------
start=$(date +%s)
if [ "${XT_SKIP_SETUP:-0}" != 1 ]; then
  run_step scripts/setup_env.sh run
  stop_if_signalled "while setting up the environment"
  [ "$step_rc" = 0 ] || exit "$step_rc"
fi
if [ "${XT_NO_VENV:-0}" = 1 ] || [ "${XT_SKIP_SETUP:-0}" = 1 ]; then py=${PYTHON:-python3}; else py=${XT_VENV:-.venv}/bin/python; fi
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
) || { stop_if_signalled "before the grid started"; exit 2; }
stop_if_signalled "before the grid started"
read -r source output_dir <<<"$settings"
if [ "$source" = synthetic ]; then
  export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1
fi

# ---- device: an accelerator asked for and not there is an error before any work, not a CPU run --------
if [ -n "$device" ]; then
  if [ "$device" = cpu ]; then
    export JAX_PLATFORMS=cpu     # no accelerator plugin is even tried (no plugin warnings)
  else
    # JAX prints plugin tracebacks when a backend fails to start: they stay out of the console.
    found=$(env -u JAX_PLATFORMS "$py" - "$device" 2>/dev/null <<'PY'
import sys
import jax
try:
    devices = jax.devices(sys.argv[1])
except RuntimeError:
    print("none", " ".join(sorted({d.platform for d in jax.devices()})))
else:
    print("ok", len(devices), devices[0].device_kind)
PY
) || found="none (jax did not start)"
    stop_if_signalled "before the grid started"
    read -r status detail kind <<<"$found"   # "ok COUNT DEVICE KIND" or "none PLATFORMS..."
    if [ "$status" != ok ]; then
      if [ "${XT_IN_CONTAINER:-0}" = 1 ]; then   # set by docker/entrypoint.py
        hint="run the container with --gpus all (NVIDIA Container Toolkit)"
        [ "$device" = tpu ] && hint="on a TPU VM run the container with --privileged --net host"
      else
        hint="check nvidia-smi and install JAX's CUDA wheels (XT_JAX_EXTRA=cuda)"
        [ "$device" = tpu ] && hint="run on a TPU VM with JAX's TPU wheels (XT_JAX_EXTRA=tpu)"
      fi
      echo "$me: --device $device, but JAX finds no ${device^^} here (only: ${detail:-nothing}${kind:+ $kind}); $hint, or pass --device cpu." >&2
      exit 2
    fi
    # Found: JAX's own choice is that accelerator. (No JAX_PLATFORMS=gpu: that alias also names rocm and
    # oneapi, which JAX would then insist on starting.)
    unset JAX_PLATFORMS
    echo "$me: device $device: $detail x $kind"
  fi
fi

# ---- the grid, then the report ------------------------------------------------------------------------
run_step "$py" -m repro grid "$config" "$@"
grid_rc=$step_rc
stop_if_signalled "during the grid"
case $grid_rc in
  0) ;;
  2) closing_warning; exit 2 ;;   # config / data / output error: already explained on stderr
  129|130|143)                     # stopped from outside the grid's process group (kill of the grid alone)
    echo "$me: the grid was stopped (exit $grid_rc); no report written. Rerun the same command to resume." >&2
    closing_warning; exit "$grid_rc" ;;
esac

report_dir=$output_dir/report
run_step "$py" -m repro report "$output_dir"
report_rc=$step_rc
stop_if_signalled "while writing the report"
if [ "$report_rc" != 0 ]; then
  echo "$me: the report was not written (exit $report_rc)" >&2
  closing_warning; exit "$(( grid_rc != 0 ? grid_rc : report_rc ))"
fi
if [ "$grid_rc" != 0 ]; then
  # Failed cells: the report covers only the finished ones. Say so at its top, where a reader starts.
  finished=$(find "$output_dir/cells" -name results.json 2>/dev/null | wc -l)
  note="INCOMPLETE: \`./run_all.sh $preset\` ended with exit $grid_rc (cells failed, see the grid's output and $output_dir/repro.log). This report covers only the $finished cells that finished; rerun the same command to run the others and rebuild it."
  printf '%s\n' "$note" > "$report_dir/INCOMPLETE"
  { printf '> **%s**\n\n' "$note"; cat "$report_dir/report.md"; } > "$report_dir/report.md.tmp"
  mv "$report_dir/report.md.tmp" "$report_dir/report.md"
fi
echo
run_step "$py" -m repro table "$output_dir"
stop_if_signalled "while printing the table" "the report is written: $(show_path "$report_dir/report.md")"
echo
if [ "$grid_rc" = 0 ]; then
  echo "$me: $preset done in $(( $(date +%s) - start )) s; report: $(show_path "$report_dir/report.md")"
else
  echo "$me: $preset finished with failed cells (exit $grid_rc) in $(( $(date +%s) - start )) s; INCOMPLETE report: $(show_path "$report_dir/report.md")" >&2
fi
closing_warning
exit "$grid_rc"
