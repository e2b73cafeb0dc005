"""How long a new user waits for `xtreme-transfer --help` and `--version` (a fresh interpreter each round).

    pytest tests/benchmarks/test_cli_help.py --benchmark-only

The target is under 1 s on a quiet 2-core machine: parsing imports no jax (tests/repro/test_packaging.py
checks that part without a clock). Most of what is left is the interpreter's own start-up, recorded here as
the `python -c pass` case so that a reader can subtract it.
"""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.cli import env
from tests.support.paths import ROOT

CASES = {"python-startup": ["-c", "pass"], "help": ["-m", "repro", "--help"],
         "grid-help": ["-m", "repro", "grid", "--help"], "version": ["-m", "repro", "--version"]}


@pytest.mark.parametrize("command", list(CASES))
def test_cli_help_time(benchmark, command):
    e = env()

    def call():
        r = subprocess.run([sys.executable, *CASES[command]], cwd=ROOT, env=e, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stderr
        return r.stdout

    out = benchmark.pedantic(call, rounds=5, iterations=1, warmup_rounds=1)
    benchmark.extra_info.update(kind="cli", command=command, argv=" ".join(CASES[command]))
    if command != "python-startup":
        assert out.strip()
