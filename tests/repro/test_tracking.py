"""Tracking (repro.training.tracking): the TensorBoard event files a run writes, read back from their bytes; the
W&B calls (through a stand-in package); `repro tensorboard` converting existing train logs."""
from __future__ import annotations

import json
import shutil

import pytest

from repro.errors import ConfigError
from repro.training import tracking
from tests.support import tfevents
from tests.support.cli import cli, train_log

TRAIN_TAGS = ("train/loss", "train/learning_rate", "train/grad_norm")


def _phases(run):
    return sorted(p.parent for p in (run / "cells").glob("*/target/train_log.jsonl"))


def _expected(log: list[dict]) -> dict[str, dict[int, float]]:
    """The scalars of a train log, as float32 (TensorBoard's simple_value)."""
    import numpy as np

    out: dict[str, dict[int, float]] = {}
    for rec in log:
        for tag, v in tracking.scalars(rec).items():
            out.setdefault(tag, {})[rec["step"]] = float(np.float32(v))
    return out


def test_each_phase_writes_event_files_with_its_train_log_curves_and_throughput(sweep_run):
    phases = _phases(sweep_run.out)
    assert len(phases) == 2
    for phase in phases:
        log = train_log(phase)
        got = tfevents.scalars(phase / tracking.TB_DIR)
        expected = _expected(log)
        steps = [r["step"] for r in log if "loss" in r]
        assert steps == list(range(1, 10))   # 3 epochs of 3 batches
        for tag in TRAIN_TAGS:
            assert got[tag] == expected[tag], tag
        dev_steps = [r["step"] for r in log if "dev" in r]
        assert dev_steps == [6, 9]
        assert got["dev/score"] == got["dev/accuracy"] == expected["dev/score"]
        # throughput every log_every (3) steps, from the second step on (the first one compiles)
        for tag in ("throughput/examples_per_s", "throughput/tokens_per_s"):
            assert sorted(got[tag]) == [3, 6, 9] and all(v > 0 for v in got[tag].values()), tag
        # 32 examples a step of at most 32 tokens each
        ratio = {s: got["throughput/tokens_per_s"][s] / got["throughput/examples_per_s"][s] for s in (3, 6, 9)}
        assert all(1 < r <= 32 for r in ratio.values()), ratio


def test_wandb_gets_one_run_per_phase_with_the_same_scalars(sweep_run):
    calls = [json.loads(ln) for ln in sweep_run.wandb_log.read_text().splitlines()]
    inits = [c for c in calls if c["call"] == "init"]
    assert sorted(c["name"] for c in inits) == sorted(p.parent.name for p in _phases(sweep_run.out))
    for init in inits:
        assert (init["project"], init["mode"], init["tags"], init["job_type"]) == ("xt-test", "offline", ["ci"], "target")
        assert init["group"] == "smoke" and init["resume"] == "allow"
        assert init["config"]["cell"]["sweep"] is not None
        logs = [c for c in calls if c["call"] == "log" and c["id"] == init["id"]]
        phase = sweep_run.out / "cells" / init["name"] / "target"
        tb = tfevents.scalars(phase / tracking.TB_DIR)
        sent: dict[str, dict[int, float]] = {}
        for c in logs:
            for tag, v in c["data"].items():
                sent.setdefault(tag, {})[c["step"]] = v
        assert sent.keys() == tb.keys()
        for tag in TRAIN_TAGS + ("dev/score",):
            assert sent[tag] == pytest.approx(tb[tag], rel=1e-6), tag
        assert calls.index({"call": "finish", "id": init["id"]}) > calls.index(logs[-1])
    assert len({c["id"] for c in inits}) == 2


def test_repro_tensorboard_converts_train_logs(sweep_run, tmp_path, capsys):
    from repro.__main__ import main

    # a run folder whose phases have no event files (trained before tracking, or with it off): written beside
    run = tmp_path / "run"
    shutil.copytree(sweep_run.out / "cells", run / "cells", ignore=shutil.ignore_patterns("ckpt", tracking.TB_DIR))
    r = cli("tensorboard", run)
    assert r.returncode == 0, r.stderr
    for phase in _phases(run):
        live = tfevents.scalars(sweep_run.out / phase.relative_to(run) / tracking.TB_DIR)
        converted = tfevents.scalars(phase / tracking.TB_DIR)
        assert converted == {k: v for k, v in live.items() if not k.startswith("throughput/")}
    assert r.stdout.count("scalars ->") == 2
    first = {p: sorted((p / tracking.TB_DIR).iterdir()) for p in _phases(run)}
    # again (in this process from here on): phases with event files are left as they are
    assert main(["tensorboard", str(run)]) == 0
    assert capsys.readouterr().out.count("has event files already") == 2
    assert {p: sorted((p / tracking.TB_DIR).iterdir()) for p in _phases(run)} == first
    # --out: every phase under DIR; a folder of the user's is refused, nothing written
    assert main(["tensorboard", str(sweep_run.out), "--out", str(tmp_path / "tb")]) == 0
    assert len(list((tmp_path / "tb" / "cells").glob(f"*/target/{tracking.TB_DIR}/events.out.tfevents.*"))) == 2
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["tensorboard", str(sweep_run.out), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "not empty" in err
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]
    assert main(["tensorboard", str(tmp_path / "nothing-here")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_a_resumed_phase_tells_tensorboard_to_drop_the_replayed_steps(tmp_path):
    spec = tracking.TrackingSpec(tensorboard=True)
    t = tracking.Tracker(spec, tmp_path, resume_step=6)
    t.record({"step": 7, "loss": 0.5, "grad_norm": 1.0, "learning_rate": 1e-3})
    t.close()
    events = tfevents.events(tmp_path / tracking.TB_DIR)
    purge = [e for e in events if e.HasField("session_log")]
    assert [(e.session_log.status, e.step) for e in purge] == [(purge[0].session_log.START, 7)]
    assert tfevents.scalars(tmp_path / tracking.TB_DIR)["train/loss"] == {7: 0.5}


def test_tracking_off_writes_nothing_and_missing_libraries_are_one_line(tmp_path, monkeypatch):
    t = tracking.Tracker(tracking.TrackingSpec(tensorboard=False), tmp_path)
    t.record({"step": 1, "loss": 0.5, "grad_norm": 1.0, "learning_rate": 1e-3})
    t.step_done(1, 32, 300, 0.0)
    t.close()
    assert list(tmp_path.iterdir()) == []
    from repro import config
    from tests.support.cli import SMOKE

    cfg = config.load(SMOKE, ["tracking.wandb={project: p}"])
    real = tracking.importlib.util.find_spec
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda n: None if n == "wandb" else real(n))
    with pytest.raises(ConfigError, match=r"tracking.wandb is set, but wandb is not installed \(pip install "
                                          r"'xtreme-transfer\[wandb\]'"):
        tracking.check_available(cfg.tracking)
    with pytest.raises(ConfigError, match="tracking.wandb.mode='cloud' must be one of online, offline"):
        config.load(SMOKE, ["tracking.wandb={project: p, mode: cloud}"])


def test_tracking_settings_are_not_part_of_what_a_folder_was_claimed_with(tmp_path):
    """Turning TensorBoard off or W&B on between a run and its resume is allowed: they change no number."""
    from repro import config, rundir
    from tests.support.cli import SMOKE

    a = config.to_dict(config.load(SMOKE))
    b = config.to_dict(config.load(SMOKE, ["tracking.tensorboard=false", "tracking.wandb={project: p}"]))
    rundir.claim_folder(tmp_path, a, "cell")
    (tmp_path / "results.json").write_text("{}")   # progress: a different semantic config would be refused
    rundir.claim_folder(tmp_path, b, "cell")
    assert rundir.semantic(a) == rundir.semantic(b)


def test_a_failing_event_write_is_one_warning_and_the_phase_goes_on(tmp_path, monkeypatch, caplog):
    import errno
    import logging

    t = tracking.Tracker(tracking.TrackingSpec(tensorboard=True), tmp_path, log_every=1)
    rec = {"step": 1, "loss": 0.5, "grad_norm": 1.0, "learning_rate": 1e-3}
    t.record(rec)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tracking.EventFile, "scalars", full)
    with caplog.at_level(logging.WARNING, logger="repro"):
        t.record({**rec, "step": 2})
        t.record({**rec, "step": 3})   # no second warning: TensorBoard is off for the rest of the phase
        t.step_done(3, 32, 300, 0.0)
        t.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "No space left on device" in warnings[0] and str(tmp_path) in warnings[0]
    assert tfevents.scalars(tmp_path / tracking.TB_DIR)["train/loss"] == {1: 0.5}   # what was written is kept


def test_event_files_are_what_tensorboards_protobufs_read(tmp_path):
    """repro.training.tfevents encodes the Event messages itself: parsed back with event.proto's classes
    (tensorboardX's copy), every field is what was written, and the first record is the file version."""
    from repro.training import tfevents as writer

    f = tracking.EventFile(tmp_path, purge_step=300)
    f.scalars(1, {"train/loss": 0.6931, "dev/score": -2.5})
    f.scalars(2**40, {"throughput/tokens_per_s": 1.5e6})
    f.close()
    events = tfevents.events(tmp_path)
    assert events[0].file_version == writer.FILE_VERSION and events[0].wall_time > 1.7e9
    assert (events[1].step, events[1].session_log.status) == (300, events[1].session_log.START)
    assert [(v.tag, v.simple_value) for v in events[2].summary.value] == [
        ("train/loss", pytest.approx(0.6931)), ("dev/score", -2.5)]
    assert events[2].step == 1 and events[3].step == 2**40
    assert len(events) == 4
    # The checksum is CRC-32C (the standard check value of "123456789"), masked as TFRecord masks it: the reader
    # above checks with this module's `masked`, so tensorboardX's own implementation checks that.
    from tensorboardX.record_writer import masked_crc32c

    assert writer.crc32c(b"123456789") == 0xE3069283
    for data in (b"", b"123456789", bytes(range(256)), (tmp_path / "x").as_posix().encode()):
        assert writer.masked(data) == masked_crc32c(data)
