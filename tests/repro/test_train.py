"""Training: one compilation per length bucket, exact resume after SIGKILL, 8 devices = 1 device."""
from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest

import data_prep as dp
from repro import config
from repro.training import loop as train
from repro.study.cell import run_cell
from tests.support.cli import (CELL, SMOKE, assert_same_run, cli, popen, results, run_cell_ok, tiny_overrides,
                               train_log)
# 256 examples, batch 16: 16 steps an epoch, 48 in all; a checkpoint every 4 steps, dev eval every 8.
LONG = {"target.max_train_examples": 256, "target.batch_size": 16, "target.checkpoint_every": 4,
        "target.eval_every": 8}


def test_one_compilation_per_length_bucket(tmp_path):
    train._STEP_CACHE.clear()
    overrides = tiny_overrides(tmp_path, **{"data.buckets": "[16, 24]", "target.max_train_examples": 128,
                                            "target.batch_size": 16})
    cfg = config.load(SMOKE, overrides).resolved_cell()
    res = run_cell(cfg).to_dict()
    stats = res["training"]["target"]
    # The shapes the run fed to train_step, counted independently from the Batcher.
    task = dp.get_task("synth_sentiment")
    examples = dp.load_examples(task, "train", "en", max_examples=128, seed=0)
    feats = dp.featurize(task, examples, dp.synthetic_tokenizer("bert"), max_length=32)
    batcher = dp.Batcher(feats, 16, buckets=(16, 24, 32), seed=0)
    epochs = -(-stats["steps"] // len(batcher))
    shapes = {b["input_ids"].shape for e in range(epochs) for b, _ in batcher.iterate(e)}
    assert len(shapes) >= 2, shapes          # the test needs several buckets to mean anything
    assert stats["compilations"] == len(shapes)
    (entry,) = train._STEP_CACHE.values()
    assert entry.train_step._cache_size() == len(shapes)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return run_cell_ok(tmp_path_factory.mktemp("straight"), **LONG)


def _latest_step(cell):
    d = cell / "target" / "ckpt" / "latest"
    steps = [int(p.name) for p in d.iterdir() if p.name.isdigit()] if d.exists() else []
    return max(steps, default=-1)


@pytest.mark.slow
def test_sigkill_at_random_step_then_rerun_is_bitwise_equal(uninterrupted, tmp_path):
    out = tmp_path / "killed"
    rng = random.Random(int(os.environ.get("XT_KILL_SEED", time.time_ns() % 10_000)))
    cell = out / "cells" / CELL
    target_step = rng.randrange(4, 40, 4)
    proc = popen("run", SMOKE, *tiny_overrides(out, **LONG))
    deadline = time.time() + 300
    while _latest_step(cell) < target_step and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.05))   # land anywhere between two checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-2000:]
    assert not (cell / "results.json").exists(), "the kill came after the run finished"
    killed_at = _latest_step(cell)
    r = cli("run", SMOKE, *tiny_overrides(out, **LONG))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed at step" in (out / "repro.log").read_text(), killed_at

    assert_same_run(uninterrupted, cell)


@pytest.mark.slow
def test_eight_simulated_devices_give_the_one_device_loss_curve(uninterrupted, tmp_path):
    r = cli("run", SMOKE, *tiny_overrides(tmp_path, **LONG, **{"mesh.data": 8}), devices=8)
    assert r.returncode == 0, r.stderr[-3000:]
    cell = tmp_path / "cells" / CELL
    res = results(cell)
    assert res["environment"]["device_count"] == 8 and res["inference"]["devices"] == 8
    one = [x["loss"] for x in train_log(uninterrupted / "target") if "loss" in x]
    eight = [x["loss"] for x in train_log(cell / "target") if "loss" in x]
    assert len(one) == len(eight) == 48
    np.testing.assert_allclose(eight[0], one[0], rtol=1e-6)
    np.testing.assert_allclose(eight, one, rtol=2e-4, atol=1e-5)
    assert res["training"]["target"]["tokens"] == results(uninterrupted)["training"]["target"]["tokens"]


@pytest.mark.slow
@pytest.mark.parametrize("target, extra", [
    ("synth_qa", {"data.max_length": 64, "data.buckets": "[64]"}),
    ("synth_choice", {}),
    ("synth_sts", {}),
    ("synth_nli", {"precision": "bf16", "target.optimizer.accumulation": 2}),
])
def test_every_trainable_kind_runs_a_cell(tmp_path, target, extra):
    cfg = config.load(SMOKE, tiny_overrides(tmp_path, target=target, **{"target.max_steps": 4, **extra})).resolved_cell()
    r = run_cell(cfg).to_dict()
    task = dp.get_task(target)
    assert r["metric"] == task.metric and set(r["per_language"]) == {"en", "x1"}
    assert all(np.isfinite(v) for v in r["per_language"].values())
    assert r["training"]["target"]["steps"] == 4 and r["training"]["target"]["tokens"] > 0
    assert r["inference"]["dtype"] == ("bfloat16" if extra.get("precision") == "bf16" else "float32")
    log = train_log(tmp_path / "cells" / r["cell_id"] / "target")
    lrs = [x["learning_rate"] for x in log if "loss" in x]
    if extra.get("target.optimizer.accumulation") == 2:
        assert lrs[0] == lrs[1] != lrs[2]     # the schedule moves once per 2 micro-batches


# ---- checkpoint cadence: the latest state every checkpoint_every steps, the best params only with it --------
# 96 examples, batch 16: 6 steps an epoch, 18 in all; a dev evaluation every 2 steps, the latest state every 6.
CADENCE = {"target.batch_size": 16, "target.eval_every": 2, "target.checkpoint_every": 6}


def _record_saves(monkeypatch, fail_at_latest: int | None = None) -> list[tuple[str, int]]:
    from repro.training import checkpoint

    saves: list[tuple[str, int]] = []
    latest, best = checkpoint.CheckpointStore.save_latest, checkpoint.CheckpointStore.save_best

    def save_latest(self, step, state, meta):
        if step == fail_at_latest:
            raise RuntimeError(f"planted crash before the latest state of step {step}")
        saves.append(("latest", step))
        latest(self, step, state, meta)

    def save_best(self, step, params, meta):
        saves.append(("best", step))
        best(self, step, params, meta)

    monkeypatch.setattr(checkpoint.CheckpointStore, "save_latest", save_latest)
    monkeypatch.setattr(checkpoint.CheckpointStore, "save_best", save_best)
    return saves


@pytest.mark.parametrize("final_state", [False, True])
def test_the_latest_state_is_written_on_its_cadence_and_the_best_only_with_it(tmp_path, monkeypatch, final_state):
    saves = _record_saves(monkeypatch)
    cfg = config.load(SMOKE, tiny_overrides(tmp_path, **CADENCE, **{"checkpoints.final_state": final_state}))
    r = run_cell(cfg.resolved_cell()).to_dict()
    t = r["training"]["target"]
    assert t["steps"] == 18 and [p["step"] for p in t["curve"]] == list(range(2, 19, 2))   # 9 dev evaluations
    # The end of the phase writes the best params the evaluation reads, not a state nothing resumes (unless asked).
    assert [s for kind, s in saves if kind == "latest"] == ([6, 12, 18] if final_state else [6, 12])
    # Each best write comes just before a latest write and is no newer than it (at most one per cadence), or
    # is the phase's last write.
    for i, (kind, s) in enumerate(saves):
        if kind == "best" and i + 1 < len(saves):
            assert saves[i + 1][0] == "latest" and s <= saves[i + 1][1], saves
    assert ("best", t["best_step"]) in saves
    states = sorted(p.name for p in (tmp_path / "cells" / r["cell_id"] / "target" / "ckpt" / "latest").iterdir())
    assert states == (["12", "18"] if final_state else ["12", "6"])


def test_the_wall_time_cadence_writes_the_latest_state_once_per_interval(tmp_path, monkeypatch):
    """checkpoints.every_minutes: a clock on which every train step takes 30 s and a 1.5-minute cadence write the
    latest state every third step (and no state at the end), with no step cadence in the way. The clock restarts
    at each write: a cadence that kept the phase's start as its origin would write at every step after the
    third (the bug ab012f6 fixed)."""
    from repro import signals

    monkeypatch.setattr(signals, "where", {})
    monkeypatch.setattr(train, "_clock", lambda: 30.0 * signals.where.get("step", 0))
    saves = _record_saves(monkeypatch)
    overrides = {**CADENCE, "target.checkpoint_every": 100, "checkpoints.every_minutes": 1.5}
    r = run_cell(config.load(SMOKE, tiny_overrides(tmp_path, **overrides)).resolved_cell()).to_dict()
    assert r["training"]["target"]["steps"] == 18
    assert [s for kind, s in saves if kind == "latest"] == [3, 6, 9, 12, 15]
    assert ("best", r["training"]["target"]["best_step"]) in saves


def test_without_checkpoint_every_the_state_is_written_by_wall_time_only(tmp_path, monkeypatch):
    """checkpoint_every unset (the default): no state at the dev evaluations, one per checkpoints.every_minutes
    (30 by default) of wall time, and the best params once, at the end. Here each step takes 12 simulated
    minutes: a state after every third step (36 min), none at the other 6 evaluations."""
    from repro import signals

    monkeypatch.setattr(signals, "where", {})
    monkeypatch.setattr(train, "_clock", lambda: 720.0 * signals.where.get("step", 0))
    saves = _record_saves(monkeypatch)
    overrides = {**CADENCE, "target.checkpoint_every": "null"}
    cfg = config.load(SMOKE, tiny_overrides(tmp_path, **overrides))
    assert cfg.target.checkpoint_every is None and cfg.checkpoints.every_minutes == 30
    r = run_cell(cfg.resolved_cell()).to_dict()
    t = r["training"]["target"]
    assert t["steps"] == 18 and len(t["curve"]) == 9
    assert [s for kind, s in saves if kind == "latest"] == [3, 6, 9, 12, 15]
    monkeypatch.setattr(train, "_clock", lambda: 0.0)   # a phase shorter than the cadence: the best params only
    saves.clear()
    r = run_cell(config.load(SMOKE, tiny_overrides(tmp_path / "short", **overrides)).resolved_cell()).to_dict()
    assert saves == [("best", r["training"]["target"]["best_step"])]


def test_a_crash_after_a_phase_without_a_final_state_retrains_it_to_the_same_run(tmp_path, monkeypatch):
    """No cadence state before the end (as the mini preset: checkpoint_every = the phase's steps) and a crash in
    the evaluation: the rerun starts the phase afresh (dropping the finished attempt's best) and ends bitwise
    where the first attempt ended."""
    from repro.study import cell as cell_module

    out = tmp_path / "run"
    cfg = config.load(SMOKE, tiny_overrides(out, **{**CADENCE, "target.checkpoint_every": 100})).resolved_cell()

    def crash(*a, **k):
        raise RuntimeError("planted crash in the evaluation")

    saves = _record_saves(monkeypatch)
    monkeypatch.setattr(cell_module.inference, "zero_shot_eval", crash)
    with pytest.raises(RuntimeError, match="planted crash"):
        run_cell(cfg)
    assert [kind for kind, _ in saves] == ["best"]
    first_log = train_log(out / "cells" / CELL / "target")
    first_best = sorted((out / "cells" / CELL / "target" / "ckpt" / "best").iterdir())
    monkeypatch.undo()
    run_cell(cfg)
    assert train_log(out / "cells" / CELL / "target") == first_log
    assert sorted((out / "cells" / CELL / "target" / "ckpt" / "best").iterdir()) == first_best


def test_a_crash_after_an_unwritten_best_resumes_to_the_same_run(tmp_path, monkeypatch, caplog):
    straight = tmp_path / "straight"
    cfg = config.load(SMOKE, tiny_overrides(straight, **CADENCE)).resolved_cell()
    run_cell(cfg)
    # The crash comes where the latest state of step 12 would be written: the held best of steps 8-12 is lost
    # with it, and the rerun replays from step 6, its dev evaluations included.
    out = tmp_path / "crashed"
    cfg = config.load(SMOKE, tiny_overrides(out, **CADENCE)).resolved_cell()
    saves = _record_saves(monkeypatch, fail_at_latest=12)
    with pytest.raises(RuntimeError, match="planted crash"):
        run_cell(cfg)
    assert [s for kind, s in saves if kind == "latest"] == [6]
    monkeypatch.undo()
    with caplog.at_level("INFO"):
        run_cell(cfg)
    assert "resumed at step 6" in caplog.text
    assert_same_run(straight / "cells" / CELL, out / "cells" / CELL)



def test_every_train_step_checks_the_host_memory_bound_and_the_phase_end_frees_the_train_state(tmp_path, monkeypatch):
    """The loop calls host_memory.bound() after every train step (the heap's free pages go back once the process
    passes XT_HOST_RETAIN_MB; tests/repro/test_host_memory.py checks when it trims).

    And the end of a phase holds one model, not four: when the best checkpoint is restored, no array of the
    word embedding's shape is alive beyond the model the cell built (the train state's params and AdamW's two
    moments are gone; the restore reads into a template of shapes). Before this, the end of the mini's NLI
    phase peaked 1.5 GB above its steps (docs/benchmarks.md). (One test, one cell: the suite's time.)"""
    import jax

    from repro import signals
    from repro.training import checkpoint, host_memory

    calls = []
    monkeypatch.setattr(host_memory, "bound", lambda: calls.append(signals.where.get("step")) or False)
    monkeypatch.setattr(host_memory, "release", lambda: calls.append("release") or (None, None))
    cfg = config.load(SMOKE, tiny_overrides(tmp_path, **CADENCE)).resolved_cell()
    width = config.to_dict(cfg)["models"][cfg.cell.model]["hf_config"]
    shape = (width["vocab_size"], width["hidden_size"])

    def embeddings() -> int:
        return sum(1 for a in jax.live_arrays() if a.shape == shape)

    seen: list[int] = []
    restore_best = checkpoint.CheckpointStore.restore_best

    def recording(self, like, expected_step):
        seen.append(embeddings())
        return restore_best(self, like, expected_step)

    monkeypatch.setattr(checkpoint.CheckpointStore, "restore_best", recording)
    before = embeddings()
    r = run_cell(cfg).to_dict()
    # The heap's free pages go back (release) before the first step, whatever the limit: the free pages that
    # loading the model and creating the train state left would otherwise sit beneath the first step's buffer.
    # Then bound() after every train step (called before the step counter moves on, so steps 0-17), after each of
    # the 9 dev evaluations (every 2 steps), and twice at the phase's end, around the restore of the best params
    # (the eval step's and the restore's buffers are other sizes than the train step's); release once the
    # phase is done (the cell, before the evaluation).
    assert r["training"]["target"]["steps"] == 18
    assert calls[0] == "release", calls[:3]
    assert calls[1:-1] == [s for step in range(1, 19)
                           for s in ([step - 1, step] if step % 2 == 0 else [step - 1])] + [18, 18], calls
    assert calls[-1] == "release", calls[-3:]
    assert len(seen) == 1 and seen[0] - before <= 1, (seen, before)
