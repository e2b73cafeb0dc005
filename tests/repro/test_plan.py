"""repro plan: its counts are the run's own (results.json of a real grid), its sizes are the published ones,
and its device-hours are FLOPs over peak x MFU."""
from __future__ import annotations

import csv
import io
import math

import pytest

import data_prep as dp
from flax_models import flops as fl
from repro import config
from repro.study import known_sizes, plan
from tests.benchmarks.harness import CONFIGS
from tests.repro.conftest import SMALL_CELLS, small_grid_overrides
from tests.support.cli import ROOT, SMOKE, cli, results

PAPER = ROOT / "configs" / "paper.yaml"
# The paper preset without its matched pairings and size axis: one cell per model x task x seed.
CROSS = ("grid.analysis=cross", "grid.train_sizes=[]")
COUNTERS = ("train_examples", "epochs", "steps", "tokens", "flops")


def _csv(stdout: str) -> dict[str, dict]:
    return {r["run"]: r for r in csv.DictReader(io.StringIO(stdout))}


def test_plan_counts_are_the_results_counters_of_the_grid(small_grid):
    r = cli("plan", SMOKE, *small_grid_overrides(small_grid), "--format", "csv")
    assert r.returncode == 0, r.stderr[-2000:]
    rows = _csv(r.stdout)
    cells = sorted(p.parent for p in (small_grid / "cells").glob("*/results.json"))
    assert len(cells) == SMALL_CELLS
    intermediate_runs = set()
    for cell in cells:
        res = results(cell)
        for phase, run in (("target", res["cell_id"]),
                           ("intermediate", f"{res['model']['name']}__int-{res['intermediate_task']}__seed0")):
            counted = res["training"][phase]
            if counted is None:
                continue
            row = rows[run]
            assert row["basis"] == "data", row
            planned = {"train_examples": int(row["examples"]), "epochs": float(row["epochs"]),
                       "steps": int(row["steps"]), "tokens": int(row["tokens"]), "flops": int(row["FLOPs"])}
            assert planned == {k: counted[k] for k in COUNTERS}, (run, planned)
            if phase == "intermediate":
                intermediate_runs.add(run)
    # The grid exercised what the counting must get right: several buckets, a partial last epoch.
    assert {float(rows[r]["epochs"]) for r in rows} == {1.0, 2.5}
    # Each intermediate run once, however many cells share it; the total is the sum of the runs.
    assert sorted(r for r in rows if rows[r]["phase"].startswith("intermediate")) == sorted(intermediate_runs)
    assert len(rows) == SMALL_CELLS + len(intermediate_runs) == 6


def test_paper_plan_prints_every_run_and_the_total_on_h100():
    r = cli("plan", PAPER, "--device", "h100", "--mfu", "0.4")
    assert r.returncode == 0, r.stderr[-2000:]
    # Matched pairings: 13 targets x {none, paired task, control} x 3 seeds x 5 models, 2 train sizes (tatoeba 1);
    # 10 intermediate runs (5 paired tasks and their controls) per model and seed.
    assert "total: 1125 cells and 150 intermediate runs (each counted once)" in r.stdout
    assert "on h100 at 67 TFLOP/s peak x MFU 0.4" in r.stdout   # the preset is fp32
    lines = r.stdout.splitlines()
    assert sum("__tgt-" in ln and " target " in ln for ln in lines) == 1125
    shared = {n: sum(f" intermediate ({n} cells) " in ln for ln in lines) for n in (2, 4, 7, 8)}
    assert shared == {2: 30, 4: 60, 7: 30, 8: 30}   # siqa; imdb, qqp; squad (+ tatoeba); mnli (x 2: the controls)
    assert sum("__int-control-" in ln and " intermediate (" in ln for ln in lines) == 75
    assert sum("__tgt-tatoeba" in ln and "retrieval: no training" in ln for ln in lines) == 45


def test_sizes_are_priced_as_the_run_would_count_them():
    cfg = config.load(PAPER, [*CROSS, "grid.models=[mbert]", "grid.intermediate_tasks=[mnli]", "grid.target_tasks=[xcopa]",
                         "grid.seeds=[0]"])
    inter, target = plan.plan_grid(cfg, "sizes")
    mbert = known_sizes.MODEL_CONFIGS["bert-base-multilingual-cased"]
    # MNLI: 392,702 examples, 3 epochs of batch 32 (the GLUE recipe), every example at 128 tokens.
    assert (inter.run, inter.examples, inter.steps) == ("mbert__int-mnli__seed0", 392_702, 3 * math.ceil(392_702 / 32))
    assert inter.flops == 3 * 392_702 * fl.train_flops(mbert, 128, "sequence_classification", 3)
    # XCOPA trains on COPA's 400 English examples, two choices each, 5 epochs.
    assert (target.task, target.examples, target.steps) == ("xcopa", 400, 5 * 13)
    assert target.flops == 5 * 400 * fl.train_flops(mbert, 128, "multiple_choice", None, 2)
    assert target.basis == inter.basis == "sizes" and target.tokens is None
    assert "upper bound: all at max_length 128" in target.note and "model config from known_sizes" in target.note


def test_phase_limits_apply_to_the_known_sizes():
    cfg = config.load(PAPER, [*CROSS, "grid.models=[mbert]", "grid.intermediate_tasks=[none]", "grid.target_tasks=[xnli]",
                         "grid.seeds=[0]", "target.max_train_examples=1000", "target.max_steps=20"])
    (p,) = plan.plan_grid(cfg, "sizes")
    assert (p.examples, p.steps, p.epochs) == (1000, 20, round(20 / 32, 4))
    assert p.flops == 20 * 32 * fl.train_flops(known_sizes.MODEL_CONFIGS["bert-base-multilingual-cased"], 128,
                                               "sequence_classification", 3)


def test_a_split_of_unknown_size_is_left_out_and_said_so():
    cfg = config.load(PAPER, [*CROSS, "grid.models=[mbert]", "grid.intermediate_tasks=[none]", "grid.target_tasks=[xnli, pawsx]",
                         "grid.seeds=[0]", "target.train_split=dev"])
    phases = plan.plan_grid(cfg, "sizes")
    assert {p.basis for p in phases} == {"unknown"} and plan.total(phases) == 0
    assert "no known size of xnli dev/en" in phases[0].note
    assert "2 runs could not be priced" in plan.summary(phases, None)


@pytest.mark.parametrize("hub_id", sorted(known_sizes.MODEL_CONFIGS))
def test_known_model_configs_are_the_checkpoints(hub_id):
    """The plan's offline copies price a model exactly as its full config.json does."""
    known, full = known_sizes.MODEL_CONFIGS[hub_id], CONFIGS[hub_id]
    assert {k: full[k] for k in known} == known
    for head, labels in (("sequence_classification", 3), ("question_answering", None)):
        assert fl.train_flops(known, 384, head, labels) == fl.train_flops(full, 384, head, labels)


def test_known_sizes_name_real_tasks_and_their_training_language():
    for (task, split, lang), size in known_sizes.TRAIN_EXAMPLES.items():
        spec = dp.get_task(task)
        assert split in spec.splits and lang == (spec.train_language or "en") and size.examples > 0, task
        assert size.source


def test_device_hours_are_flops_over_peak_times_mfu():
    dev = plan.device("tpu v5e", "bf16", 0.5)
    assert dev.peak == 197e12 and dev.hours(197e12 * 0.5 * 3600 * 10) == pytest.approx(10)
    assert plan.device("h100", "fp32", 0.4).peak == 67e12
    assert plan.device("my-gpu", "fp32", 0.3, peak=1e15).peak == 1e15


@pytest.mark.parametrize("args, needle", [
    (["--device", "tpu v5e"], "no float32 peak known for --device 'tpu v5e' (precision=fp32"),
    (["--device", "h100", "--mfu", "1.5"], "--mfu 1.5 must be in (0, 1]"),
    (["--device", "abacus"], "no float32 peak known for --device 'abacus'"),
    (["--from", "data"], "model 'bert-base-multilingual-cased'"),   # data asked for, but the hub is offline
])
def test_plan_errors_are_one_line(args, needle):
    r = cli("plan", PAPER, "grid.models=[mbert]", "grid.target_tasks=[xnli]", *args)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_tpu_plan_with_bf16_and_the_shard_preview():
    r = cli("plan", PAPER, "precision=bf16", "--device", "tpu v5e", "--mfu", "0.4", "--shards", "8",
            "--format", "markdown")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "on tpu v5e at 197 TFLOP/s peak x MFU 0.4" in r.stdout
    assert "| shard | units | cells | FLOPs | device-h |" in r.stdout
    assert "the slowest shard sets the wall time" in r.stdout
