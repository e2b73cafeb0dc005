#!/usr/bin/env bash
# Sets up the test environment (first time only) and runs the test suite, benchmarks included
# (tiny preset, checked for working, not for timing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh test
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
# Bytecode, compiled once: the suite starts hundreds of Python processes (CLI runs, grids, reports), each importing
# jax, flax, orbax, transformers and scipy. The test set-up installs without byte-compiling (--no-compile), and
# where PYTHONDONTWRITEBYTECODE is set (as in this project's image and many CI images) every process compiled
# every module it imported again: ~2.5 s of CPU a process. The suite keeps its bytecode in the test
# environment's own folder (PYTHONPYCACHEPREFIX), never beside the sources.
venv=$(cd "${XT_VENV:-.venv}" && pwd)
export PYTHONPYCACHEPREFIX="$venv/pycache"
unset PYTHONDONTWRITEBYTECODE
exec "$venv/bin/python" -m pytest "${@:-tests}"
