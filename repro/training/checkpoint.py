"""Training checkpoints: orbax `CheckpointManager`s for the latest state and the best parameters.

    <phase_dir>/ckpt/latest/<step>/  state (params, optimiser state, step, rng) + meta (data position,
                                     best-so-far, identity)                kept: 2
    <phase_dir>/ckpt/best/<step>/    params + meta (dev score)               kept: 1, by English dev metric
    <phase_dir>/ckpt/damaged/        checkpoints found damaged, moved aside (never deleted)

A save only replaces the previous checkpoint once it is complete (orbax writes to a temporary folder and
renames), so a run killed at any moment resumes from the last finished save. Saves are asynchronous: the
training thread waits only for the arrays to be copied off the device (orbax's synchronous device-to-host
transfer, so a donated buffer cannot change under the write); orbax writes the files in the background and
a finisher thread then hashes them, off the training thread. The next save, any restore or delete, and
`wait()`/`close()` first wait for the previous save (and raise its error, e.g. a full disk). After orbax
has finished, the sha256 of every file of the step is written to `<step>/xt_checksums.json`; opening the store verifies every
step against it. A step that fails (a changed, missing or truncated file, or no checksums: killed between
the two writes) is moved to `damaged/` with a warning naming it, so the run falls back to the previous latest
checkpoint and replays from there; a damaged best checkpoint cannot be recomputed and stops the phase
with a line saying what to delete.

The meta holds a fingerprint of the state's structure (paths, shapes, dtypes) and the run's identity:
model, phase, task, head and the semantic config (`config`). Restoring a checkpoint of another identity is
a one-line `CheckpointMismatchError` naming the first differing key, before orbax touches the arrays.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from repro.training import distributed
from repro.errors import CheckpointMismatchError, OutputDirError, writing
from repro.rundir import atomic_write, first_difference

log = logging.getLogger("repro")
CHECKSUMS = "xt_checksums.json"


class CheckpointDamagedError(CheckpointMismatchError):
    """A checkpoint the run needs is damaged and cannot be replaced by replaying; the message says what to delete."""


def fingerprint(tree) -> str:
    """Hash of the tree's paths, shapes and dtypes (of arrays, or of their `abstract` stand-ins)."""
    rows = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        shape = leaf.shape if isinstance(leaf, jax.ShapeDtypeStruct) else np.shape(leaf)
        rows.append(f"{jax.tree_util.keystr(path)}:{tuple(shape)}:{np.dtype(leaf.dtype).name}")
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()[:16]


def _files(step_dir: Path) -> list[Path]:
    return sorted(p for p in step_dir.rglob("*") if p.is_file() and p.name != CHECKSUMS)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def write_checksums(step_dir: Path) -> None:
    sums = {str(p.relative_to(step_dir)): _sha256(p) for p in _files(step_dir)}
    atomic_write(step_dir / CHECKSUMS, json.dumps(sums, indent=0, sort_keys=True) + "\n")


def damage(step_dir: Path) -> str | None:
    """Why the step's files differ from their checksums, or None when they all match."""
    try:
        expected = json.loads((step_dir / CHECKSUMS).read_text())
    except FileNotFoundError:
        return f"no {CHECKSUMS} (the save did not finish)"
    except (OSError, ValueError, RecursionError) as e:
        return f"{CHECKSUMS} unreadable ({' '.join(str(e).split())[:200]})"
    if not isinstance(expected, dict) or not all(isinstance(v, str) for v in expected.values()):
        return f"{CHECKSUMS} is not an object of file -> sha256"
    present = {str(p.relative_to(step_dir)) for p in _files(step_dir)}
    for name, digest in sorted(expected.items()):
        if name not in present:
            return f"{name} is missing"
        if _sha256(step_dir / name) != digest:
            return f"{name} differs from its checksum"
    extra = sorted(present - set(expected))
    return f"{extra[0]} was not part of the save" if extra else None


def _steps(folder: Path) -> list[int]:
    return sorted(int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()) if folder.is_dir() else []


_STORAGE_ERRORS = {"RESOURCE_EXHAUSTED": "No space left on device", "PERMISSION_DENIED": "Permission denied"}


def _storage_failure(e: Exception) -> str | None:
    """The file-system failure inside a tensorstore error message (disk full, permission), or None."""
    text = str(e)
    for code, why in _STORAGE_ERRORS.items():
        if code in text or why in text:
            return why
    return None


@contextlib.contextmanager
def _storage_errors(where: Path):
    """tensorstore reports file-system errors as ValueError("RESOURCE_EXHAUSTED: ..."): one OutputDirError
    naming the checkpoint folder."""
    try:
        yield
    except ValueError as e:
        why = _storage_failure(e)
        if why is None:
            raise
        raise OutputDirError(f"cannot write checkpoint {where}: {why}") from e


def _manager(directory: Path, max_to_keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                           enable_async_checkpointing=True)
    return ocp.CheckpointManager(directory.absolute(), options=options, item_names=("state", "meta"))


def abstract(tree):
    """The tree's shapes, dtypes and shardings without its buffers: a restore template that lets the arrays
    it stands for be freed first."""
    return jax.tree_util.tree_map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None)), tree)


class CheckpointStore:
    """The two managers of one training phase."""

    def __init__(self, directory: str | Path, identity: dict[str, Any], writer: bool = True):
        self.directory = Path(directory)
        self.identity = identity          # {"model", "family", "phase", "task", "head", "num_labels", "config"}
        self.writer = writer              # process 0 of a multi-host run writes checksums and moves files
        if writer:
            for kind in ("latest", "best"):
                self._quarantine(self.directory / kind)
        distributed.barrier("checkpoint quarantine")   # the others list the steps only once damaged ones are gone
        self.latest = _manager(self.directory / "latest", max_to_keep=2)
        self.best = _manager(self.directory / "best", max_to_keep=1)
        self._pending: dict[int, tuple[threading.Thread, dict]] = {}   # id(manager) -> its save's finisher

    def _quarantine(self, folder: Path) -> None:
        for step in _steps(folder):
            why = damage(folder / str(step))
            if why is None:
                continue
            target = self.directory / "damaged" / f"{folder.name}-{step}-{time.strftime('%Y%m%dT%H%M%S')}"
            target.parent.mkdir(parents=True, exist_ok=True)
            (folder / str(step)).rename(target)
            log.warning("checkpoint %s is damaged (%s): moved to %s; using the one before it",
                        folder / str(step), why, target)

    # ---- saving ---------------------------------------------------------------------------------
    def _finish(self, mngr: ocp.CheckpointManager) -> None:
        """Waits for the manager's save in flight (files and checksums) and raises what it raised."""
        pending = self._pending.pop(id(mngr), None)
        if pending is None:
            return
        thread, outcome = pending
        thread.join()
        if "error" in outcome:
            where, e = outcome["where"], outcome["error"]
            with writing(where, "write checkpoint"), _storage_errors(where):
                raise e

    def wait(self) -> None:
        """Every save in flight finished (and hashed); raises a save's error."""
        for mngr in (self.latest, self.best):
            self._finish(mngr)

    def _save(self, mngr: ocp.CheckpointManager, step: int, tree, meta: dict) -> None:
        self._finish(mngr)
        folder = Path(mngr.directory)
        with writing(folder / str(step), "write checkpoint"), _storage_errors(folder / str(step)):
            if step in mngr.all_steps():
                # Only after a resume replays a step whose save outlived the crash; the replay rewrites it.
                mngr.delete(step)
            meta = {**meta, "fingerprint": fingerprint(tree), "identity": self.identity}
            # Returns once the arrays are on the host (a synchronous transfer); the files are written behind.
            mngr.save(step, args=ocp.args.Composite(state=ocp.args.StandardSave(tree),
                                                    meta=ocp.args.JsonSave(meta)))
        outcome = {"where": folder / str(step)}

        def finish():
            try:
                mngr.wait_until_finished()
                if self.writer:
                    write_checksums(folder / str(step))
            except BaseException as e:  # noqa: BLE001 - raised on the training thread by _finish
                outcome["error"] = e

        thread = threading.Thread(target=finish, name=f"checkpoint {folder.name}/{step}", daemon=True)
        thread.start()
        self._pending[id(mngr)] = (thread, outcome)

    def save_latest(self, step: int, state: dict, meta: dict) -> None:
        # The best params held since the last state are on disk before the state that records them: a state on
        # disk never names a best step the disk lacks.
        self._finish(self.best)
        self._save(self.latest, step, state, meta)

    def save_best(self, step: int, params, meta: dict) -> None:
        self._save(self.best, step, params, meta)

    def drop_best_after(self, step: int) -> None:
        """Best checkpoints newer than the resumed step belong to a future the resume replays."""
        self._finish(self.best)
        for s in self.best.all_steps():
            if s > step:
                self.best.delete(s)

    # ---- restoring ------------------------------------------------------------------------------
    def _where(self, mngr, step) -> Path:
        return self.directory / ("latest" if mngr is self.latest else "best") / str(step)

    def _meta(self, mngr, step) -> dict:
        try:
            return dict(mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore())).meta)
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointDamagedError(f"checkpoint {self._where(mngr, step)}: its meta cannot be read ({e}); "
                                         f"delete {self._where(mngr, step)} and rerun") from e

    def _check_identity(self, meta: dict, where: Path, like) -> None:
        theirs = meta.get("identity") or {}
        if theirs != self.identity:
            diff = first_difference(theirs, self.identity)
            raise CheckpointMismatchError(f"checkpoint {where} was written by another run ({diff}); use another "
                                          f"output_dir, or delete {self.directory} to start this phase afresh")
        expected = fingerprint(like)
        if meta.get("fingerprint") != expected:
            raise CheckpointMismatchError(f"checkpoint {where} has another structure ({meta.get('fingerprint')}, "
                                          f"this model {expected}); delete {self.directory} to start afresh")

    def _restore(self, mngr, like) -> tuple[Any, dict] | None:
        self._finish(mngr)
        step = mngr.latest_step()
        if step is None:
            return None
        where = self._where(mngr, step)
        meta = self._meta(mngr, step)
        self._check_identity(meta, where, like)
        try:
            restored = mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract(like))))
        except (ValueError, KeyError, TypeError) as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CheckpointMismatchError(f"checkpoint {where} does not fit this model: {first}") from e
        return restored.state, meta

    def restore_latest(self, like: dict) -> tuple[dict, dict] | None:
        return self._restore(self.latest, like)

    def restore_best(self, like_params, expected_step: int) -> tuple[Any, dict]:
        """The best parameters, which must be those of `expected_step` (the run's own record of its best)."""
        self._finish(self.best)
        step = self.best.latest_step()
        if step != expected_step:
            raise CheckpointDamagedError(
                f"the best checkpoint of {self.directory} (step {expected_step}) is missing or was moved to "
                f"{self.directory / 'damaged'}; it cannot be recomputed without retraining: delete "
                f"{self.directory.parent} and rerun to train this phase again")
        return self._restore(self.best, like_params)

    def best_step(self) -> int | None:
        self._finish(self.best)
        return self.best.latest_step()

    def latest_step(self) -> int | None:
        self._finish(self.latest)
        return self.latest.latest_step()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.latest.close()
            self.best.close()
