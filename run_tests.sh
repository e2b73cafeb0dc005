#!/usr/bin/env bash
# Sets up the test environment (first time only) and runs the test suite, benchmarks included
# (tiny preset, checked for working, not for timing). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup_env.sh test
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 JAX_PLATFORMS=${JAX_PLATFORMS:-cpu}
exec "${XT_VENV:-.venv}/bin/python" -m pytest "${@:-tests}"
