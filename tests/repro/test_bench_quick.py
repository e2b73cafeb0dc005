"""scripts/bench_quick.py, the minutes-long device check (issue 33), on CPU with tiny shapes: its summary, its
table and its pytest-benchmark JSON (read by `repro plan --benchmarks`). The fixture folder holds the output
of `bench_quick.py --tiny --pieces latency,train,parity` on this project's 2-core CPU machine."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repro.study import measured
from tests.support.cli import env
from tests.support.paths import ROOT

SCRIPT = ROOT / "scripts" / "bench_quick.py"
FIXTURE = ROOT / "tests" / "fixtures" / "bench_quick_cpu"
sys.path.insert(0, str(ROOT / "scripts"))
import bench_quick  # noqa: E402


def _quick(tmp_path, *args, timeout=600):
    return subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "out"), *args], cwd=tmp_path,
                          env=env(), capture_output=True, text=True, timeout=timeout)


def test_the_summary_table_of_a_cpu_run():
    summary = json.loads((FIXTURE / "summary.json").read_text())
    table = bench_quick.render(summary)
    assert table.startswith("device: cpu (cpu); jax ")
    rows = [line for line in table.splitlines() if line.startswith("| bf16")]
    assert len(rows) == 6 and sum("train step" in r for r in rows) == 2   # 2 models x (2 latencies + 1 step)
    assert "| fp32 parity | bert-tiny |" in table and "PASS" in table
    assert table.rstrip().endswith("parity 20.2")
    broken = dict(summary, pieces={"smoke": {"wall_s": 12.5, "train_steps": 30, "average": 51.0}},
                  errors={"train": "RuntimeError: out of memory"}, seconds={"smoke": 12.5})
    table = bench_quick.render(broken)
    assert "| smoke cell | bert-tiny | | | | | 12.5 s, 30 steps, average 51 |" in table
    assert "| train | FAILED | | | | | RuntimeError: out of memory |" in table


def test_its_benchmark_json_prices_a_plan():
    rates = measured.load_rates(FIXTURE / "bench.json", "bf16")
    assert set(rates) == {"bert-tiny", "roberta-tiny"} and rates["bert-tiny"].batch == 4
    rows = json.loads((FIXTURE / "bench.json").read_text())["benchmarks"]
    assert rates["bert-tiny"].step_s == next(r["stats"]["median"] for r in rows if r["extra_info"]["kind"] == "train"
                                             and r["extra_info"]["impl"] == "jax"
                                             and r["extra_info"]["model"] == "bert-tiny")


def test_the_parity_piece_runs_and_bad_pieces_are_refused(tmp_path):
    r = _quick(tmp_path, "--tiny", "--pieces", "parity")
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["pieces"]["parity"]["passed"] and summary["pieces"]["parity"]["max_abs_hidden"] <= 1e-4
    assert summary["errors"] == {} and "| fp32 parity | bert-tiny |" in r.stdout
    bad = _quick(tmp_path, "--pieces", "latency,warp")
    assert bad.returncode == 2 and bad.stderr.strip() == ("bench_quick: unknown piece(s) warp; pieces: "
                                                           "latency, train, parity, smoke")


@pytest.mark.slow
def test_every_piece_on_cpu(tmp_path):
    r = _quick(tmp_path, "--tiny", timeout=1800)
    assert r.returncode == 0, r.stderr
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert set(summary["pieces"]) == {"latency", "train", "parity", "smoke"}
    assert summary["pieces"]["smoke"]["compute"]["compute_dtype"] == "bfloat16"
