"""The run folder: where each piece of a run lives, who may write it, and how files are written.

    <output_dir>/repro.log
    <output_dir>/.locks/{cells,intermediate}/<name>.lock   who runs what now (flock; see `locked`)
    <output_dir>/intermediate/<model>__int-<task>__seed<s>/   shared by every target task of the triple:
        config.yaml, ckpt/{latest,best}/, train_log.jsonl, model/ (save_pretrained of the best), done.json
    <output_dir>/cells/<cell_id>/
        config.yaml, target/ckpt/{latest,best}/, target/train_log.jsonl, results.json (written last)

A folder is *claimed* by writing its config.yaml; a later run into the same folder must describe the same
run (the same config up to paths and names) or is refused. Every file a later step depends on is written
atomically (`atomic_write`: a temporary file in the same folder, then a rename).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sys
from pathlib import Path

from repro.errors import OutputDirError, UserError, writing

log = logging.getLogger("repro")
LOCKS = ".locks"

# Keys that name or place a run without changing what it computes.
NOT_SEMANTIC = ("output_dir", "compilation_cache_dir", "feature_cache_dir", "checkpoints", "name", "on_divergence",
                "tracking")


def cell_dir(output_dir: str | Path, cell_id: str) -> Path:
    return Path(output_dir) / "cells" / cell_id


def intermediate_dir(output_dir: str | Path, model: str, task: str, seed: int) -> Path:
    return Path(output_dir) / "intermediate" / f"{model}__int-{task}__seed{seed}"


def atomic_write(path: Path, text: str) -> None:
    """Writes `text` to `path` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with writing(path, cleanup=lambda: tmp.unlink(missing_ok=True)):
        tmp.write_text(text)
        os.replace(tmp, path)


def check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise OutputDirError(f"output_dir {path} is not writable ({e.strerror or e})") from e


def semantic(d: dict) -> dict:
    return {k: v for k, v in d.items() if k not in NOT_SEMANTIC}


def first_difference(a, b, prefix: str = "") -> str:
    """The first dotted key where two nested dicts differ, as `key: old -> new`."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if a.get(k) != b.get(k):
                return first_difference(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else k)
    return f"{prefix}: {a!r} -> {b!r}"


def has_progress(folder: Path) -> bool:
    """Whether a run in `folder` got anywhere: a checkpoint, a finished phase or results."""
    if any((folder / name).exists() for name in ("results.json", "done.json")):
        return True
    return any(p.is_dir() and p.name.isdigit() for p in folder.glob("**/ckpt/*/*"))


def claim_folder(folder: Path, snapshot: dict, what: str, *, writer: bool = True) -> None:
    """Writes config.yaml in `folder`, or checks that the one there describes the same run.

    A folder whose run never reached its first checkpoint is claimed anew (a corrected config after an
    error is not refused). `writer`: whether this process writes (process 0 of a multi-host run).
    """
    import yaml

    from repro.config import safe_yaml

    path = folder / "config.yaml"
    if path.exists():
        try:
            old = semantic(safe_yaml.load(path.read_text(), str(path)) or {})   # bounded: no alias bombs
        except (OSError, ValueError) as e:   # safe_yaml.UnsafeYAML is a ValueError; so is a non-UTF-8 byte
            raise OutputDirError(f"{path} cannot be read ({' '.join(str(e).split())[:200]}); delete it if "
                                 f"{folder} holds nothing you need") from e
        today = _as_read_today(old)
        if old == semantic(snapshot) or today == semantic(snapshot):
            return
        if has_progress(folder):
            raise OutputDirError(f"config: {folder} holds a {what} with another config "
                                 f"({first_difference(today or old, semantic(snapshot))}); use another output_dir")
        log.info("%s: re-claimed with a new config (the previous run saved nothing; %s)", folder,
                 first_difference(today or old, semantic(snapshot)))
    if writer:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write(path, yaml.safe_dump(snapshot, sort_keys=False, default_flow_style=None))


def _as_read_today(old: dict) -> dict | None:
    """A run's config.yaml as this version reads it: the keys added since it was written take their defaults,
    so a folder made by an older version is still the same run (None where it does not read as a config)."""
    from repro import config

    try:
        return semantic(config.to_dict(config.from_dict(old)))
    except (UserError, TypeError, ValueError):
        return None


class BusyError(UserError):
    """Another process holds the lock of a folder."""


def lock_path(folder: Path) -> Path:
    """`<output_dir>/.locks/<cells|intermediate>/<name>.lock` for a cell or intermediate folder."""
    return folder.parent.parent / LOCKS / folder.parent.name / f"{folder.name}.lock"


@contextlib.contextmanager
def locked(folder: Path, what: str, *, enabled: bool = True):
    """An exclusive lock on `folder` for as long as the block runs: one process per cell or intermediate model.

    flock(2) on `lock_path(folder)`: the kernel (or the NFS lock manager) drops it when the holder dies, so a
    lock left by a killed process is simply taken over. Lock files are never deleted (deleting one would let
    two processes lock two different files of one name). The file keeps who holds it (pid, host, since) for
    the message a second process prints. `enabled=False` (processes other than 0 of a multi-host run) does
    nothing.
    """
    if not enabled:
        yield
        return
    path = lock_path(folder)
    with writing(path.parent, "create"):
        path.parent.mkdir(parents=True, exist_ok=True)
    with writing(path, "create"):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            holder = _holder(fd)
            raise BusyError(f"{what} {folder.name} is being run by {holder}; wait for it, or stop it and "
                            f"rerun (lock {path})") from e
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv),
                "since": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        yield
    finally:
        os.close(fd)   # releases the lock


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another process"
    return f"pid {info.get('pid')} on {info.get('host')} since {info.get('since')}"
