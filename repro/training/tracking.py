"""Experiment tracking: TensorBoard event files for every training phase, and Weights & Biases where configured.

    <phase_dir>/tensorboard/events.out.tfevents.*     (phase_dir: cells/<cell_id>/target, intermediate/<name>)
        train/loss, train/learning_rate, train/grad_norm     every micro-step (the train_log.jsonl values)
        dev/score                                            the English dev score that picks the checkpoint
        dev/<metric>                                         every dev metric, at each dev evaluation
        throughput/examples_per_s, throughput/tokens_per_s   every log_every steps, training steps only (the
                                                             time of compilations, dev evaluations and
                                                             checkpoint writes in the window is left out)

`tensorboard --logdir runs/smoke` shows every phase of a run. The files are written synchronously by
`repro.training.tfevents` (the TFRecord framing and the few Event messages, encoded directly; no tensorboardX,
whose import pulls in torch where torch is installed, and no writer thread, which would die on a write error
such as a full disk and then block the next writes once its queue is full). Tracking only observes: a write that fails is one warning in repro.log and
the phase goes on untracked (the checkpoint and log writes report the disk themselves). They are on by default
(`tracking.tensorboard: false` turns them off): a phase's file is a few kB to a few MB, a tiny fraction of its
checkpoints, and TensorBoard is what people open first. A resumed phase starts a new file whose first record
tells TensorBoard to drop the older files' steps after the resumed checkpoint (tensorboardX's purge_step), so the
curves read as one run, as train_log.jsonl does.

W&B (`tracking.wandb: {project: ...}`, `pip install 'xtreme-transfer[wandb]'`) logs the same scalars to one run
per phase (named by the cell id, grouped by the config's name, the cell's config attached, resumed by a
stable id derived from the phase folder). Only process 0 of a multi-host run tracks.

`python -m repro tensorboard RUN_DIR` writes the event files of phases that have none from their
train_log.jsonl (`convert`): every scalar above except throughput, which the log does not time.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from repro.errors import ConfigError
from repro.training import tfevents

log = logging.getLogger("repro")
TB_DIR = "tensorboard"
LOG_NAME = "train_log.jsonl"


@dataclasses.dataclass(frozen=True)
class TrackingSpec:
    """What a phase is tracked with (config.TrackingConfig) and how its runs are named."""

    tensorboard: bool = True
    wandb: Any = None            # config.WandbConfig or None
    run: str = ""                # the cell id, or the intermediate folder's name
    group: str = ""              # the config's name
    phase: str = ""              # "target" | "intermediate"
    config: dict | None = None   # the cell's resolved config (W&B's run config)


def check_available(tracking) -> None:
    """A ConfigError naming the key when a configured tracker's library is not installed (before any step)."""
    if tracking.wandb is not None and importlib.util.find_spec("wandb") is None:
        raise ConfigError("config: tracking.wandb is set, but wandb is not installed "
                          "(pip install 'xtreme-transfer[wandb]', or remove tracking.wandb)")


def scalars(record: dict) -> dict[str, float]:
    """The scalars of one train_log.jsonl record (a step or a dev evaluation)."""
    out = {}
    if "loss" in record:
        out.update({"train/loss": record["loss"], "train/learning_rate": record["learning_rate"],
                    "train/grad_norm": record["grad_norm"]})
    if "dev" in record:
        out["dev/score"] = record["dev"]
        out.update({f"dev/{k}": v for k, v in (record.get("dev_scores") or {}).items()
                    if isinstance(v, (int, float))})
    return {k: float(v) for k, v in out.items()}


class EventFile:
    """One TensorBoard event file, written synchronously in the calling thread (repro.training.tfevents)."""

    _opened = 0

    def __init__(self, folder: Path, purge_step: int | None = None):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        EventFile._opened += 1   # unique per process: event files are named by the second and the host only
        self.writer = tfevents.EventsWriter(folder, filename_suffix=f".{os.getpid()}.{EventFile._opened}")
        self.last_flush = time.monotonic()
        if purge_step is not None:   # TensorBoard drops the earlier files' steps from here on
            self.writer.write(tfevents.session_start_event(time.time(), purge_step))

    def scalars(self, step: int, values: dict[str, float], flush_secs: float = 30.0) -> None:
        self.writer.write(tfevents.scalar_event(time.time(), step, values))
        if time.monotonic() - self.last_flush > flush_secs:
            self.writer.flush()
            self.last_flush = time.monotonic()

    def close(self) -> None:
        self.writer.close()


class Tracker:
    """The writers of one phase. `record` takes each train_log.jsonl record; `step_done` each step's counts."""

    def __init__(self, spec: TrackingSpec | None, phase_dir: Path, resume_step: int = 0, enabled: bool = True,
                 log_every: int = 10):
        self.tb = self.wandb_run = None
        self.log_every = log_every
        self._window = None   # (time, overhead seconds, examples, tokens) at the last throughput point
        if spec is None or not enabled:
            return
        if spec.tensorboard:
            self._guard(lambda: setattr(self, "tb", EventFile(phase_dir / TB_DIR, resume_step + 1 if resume_step
                                                               else None)), phase_dir / TB_DIR)
        if spec.wandb is not None:
            import wandb
            w = spec.wandb
            self.wandb_run = wandb.init(
                project=w.project, entity=w.entity, mode=w.mode, tags=list(w.tags), name=spec.run, group=spec.group,
                job_type=spec.phase, config=spec.config, dir=str(phase_dir), resume="allow",
                id=hashlib.sha256(str(Path(phase_dir).absolute()).encode()).hexdigest()[:16])

    def record(self, rec: dict) -> None:
        values = scalars(rec)
        if values:
            self._write(int(rec["step"]), values)

    def step_done(self, step: int, examples: int, tokens: int, overhead_s: float) -> None:
        """Counts one step; every log_every steps writes the examples and tokens per second of the steps since the
        last point (`overhead_s`: the phase's cumulative compile + eval + checkpoint seconds, left out)."""
        if self.tb is None and self.wandb_run is None:
            return
        now = time.perf_counter()
        if self._window is None:
            self._window = [now, overhead_s, 0, 0]
            return   # the first step's time includes its compilation
        self._window[2] += examples
        self._window[3] += tokens
        if step % self.log_every == 0:
            t0, o0, n, k = self._window
            busy = (now - t0) - (overhead_s - o0)
            if busy > 0 and n:
                self._write(step, {"throughput/examples_per_s": n / busy, "throughput/tokens_per_s": k / busy})
            self._window = [now, overhead_s, 0, 0]

    def _guard(self, write, where) -> None:
        """Runs a TensorBoard write; an OSError (a full disk, permissions) stops TensorBoard for this phase."""
        try:
            write()
        except OSError as e:
            log.warning("tensorboard: cannot write %s (%s); this phase goes on without event files", where,
                        e.strerror or e)
            tb, self.tb = self.tb, None
            if tb is not None:
                try:
                    tb.close()   # what was written before the failure stays readable
                except OSError:
                    pass

    def _write(self, step: int, values: dict[str, float]) -> None:
        if self.tb is not None:
            self._guard(lambda: self.tb.scalars(step, values), self.tb.folder)
        if self.wandb_run is not None:
            self.wandb_run.log(values, step=step)

    def close(self) -> None:
        if self.tb is not None:
            tb = self.tb
            self._guard(tb.close, tb.folder)
            self.tb = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


# ---- converting existing train logs ---------------------------------------------------------------

def phase_dirs(run_dir: Path) -> list[Path]:
    """Every folder under run_dir that holds a train_log.jsonl (phases of cells and intermediate runs)."""
    return sorted(p.parent for p in Path(run_dir).rglob(LOG_NAME)
                  if not ({TB_DIR, "ckpt"} & set(p.relative_to(run_dir).parts[:-1])))


def read_log(path: Path) -> list[dict]:
    """The records of a train_log.jsonl; a torn line (a killed write) is skipped."""
    out = []
    for ln in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(ln)
            int(rec["step"])
        except (ValueError, KeyError, TypeError):
            continue
        out.append(rec)
    return out


def has_events(folder: Path) -> bool:
    return folder.is_dir() and any(p.name.startswith("events.out.tfevents") for p in folder.iterdir())


def write_events(records: list[dict], folder: Path) -> int:
    """Event files in `folder` (assembled in a temporary sibling, then renamed) from train-log records; returns
    the number of scalars written."""
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)   # our own leftover of this pid only
    n = 0
    try:
        events = EventFile(tmp)
        for rec in records:
            values = scalars(rec)
            events.scalars(int(rec["step"]), values)
            n += len(values)
        events.close()
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return n


def convert(run_dir: Path, out: Path | None = None) -> list[tuple[Path, Path | None, int]]:
    """Event files from every phase's train_log.jsonl under run_dir: into each phase's tensorboard/ (phases that
    have event files are left as they are), or with `out` into out/<the phase's path under run_dir>/tensorboard.
    Returns (phase folder, event folder or None when skipped, scalars written)."""
    done = []
    for phase in phase_dirs(run_dir):
        target = phase / TB_DIR if out is None else out / phase.relative_to(run_dir) / TB_DIR
        if out is None and target.exists():
            done.append((phase, None, 0))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        done.append((phase, target, write_events(read_log(phase / LOG_NAME), target)))
    return done
