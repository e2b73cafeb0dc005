"""Grid shards for schedulers that start N copies of one command: a SLURM job array, a Kubernetes Indexed
Job, or N shells with `--shard I/N`. All shards share one output_dir.

Which shard a process is (`resolve`): `--shard I/N` (I from 0), else SLURM's array variables
(SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN, over SLURM_ARRAY_TASK_STEP, of SLURM_ARRAY_TASK_COUNT), else
Kubernetes' JOB_COMPLETION_INDEX of `--shard-count N` or XT_SHARD_COUNT (a Job does not tell its pods its
completions count).

Which cells a shard runs (`select`): the grid is cut into units that must stay together, a (model,
intermediate task, seed) with all its target cells (the intermediate model is trained once, by the shard
that owns it) or a single cell without intermediate training. Units go to shards by the plan's training
FLOPs (repro.study.plan), greedy longest-processing-time first: the costliest unit to the least loaded shard. A
unit the plan cannot price counts as the mean of the others. The first shard to get here writes the
assignment to `<output_dir>/.shards/<N>-<hash of the cell ids>.json` (under a lock); every other shard, and
every rerun, reads it, so all agree even if their environments would price a phase differently.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
from pathlib import Path
from typing import Mapping

from repro import rundir
from repro.config import Config
from repro.errors import UserError, writing

SHARDS = ".shards"


class ShardError(UserError, ValueError):
    """A shard that cannot be worked out from the flags and the environment; the message names them."""


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int       # from 0
    count: int
    source: str      # where it came from, for the log: "--shard 1/4", "SLURM_ARRAY_TASK_ID=2 ..."

    def __str__(self) -> str:
        return f"shard {self.index}/{self.count}"

    @property
    def tag(self) -> str:
        """For file names: shard-1-of-4."""
        return f"shard-{self.index}-of-{self.count}"


def _int(environ: Mapping[str, str], name: str, default: int | None = None) -> int:
    raw = environ.get(name)
    if raw is None and default is not None:
        return default
    try:
        return int(str(raw).strip())
    except ValueError:
        raise ShardError(f"shard: {name}={raw!r} is not a whole number") from None


def parse(text: str) -> tuple[int, int]:
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"shard: --shard {text!r} is not of the form I/N (e.g. 0/4: the first of 4 shards)")
    return int(index), int(count)


def _check(index: int, count: int, source: str) -> Shard:
    if count < 1 or not 0 <= index < count:
        raise ShardError(f"shard: {source} gives shard {index} of {count}; shards are numbered 0 to N-1")
    return Shard(index, count, source)


def resolve(flag: str | None = None, count: int | None = None,
            environ: Mapping[str, str] | None = None) -> Shard | None:
    """This process's shard, or None (the whole grid)."""
    env = os.environ if environ is None else environ
    if flag is not None:
        index, n = parse(flag)
        if count is not None and count != n:
            raise ShardError(f"shard: --shard {flag} and --shard-count {count} disagree")
        return _check(index, n, f"--shard {flag}")
    if "SLURM_ARRAY_TASK_ID" in env:
        task, first = _int(env, "SLURM_ARRAY_TASK_ID"), _int(env, "SLURM_ARRAY_TASK_MIN", 0)
        step, n = _int(env, "SLURM_ARRAY_TASK_STEP", 1), _int(env, "SLURM_ARRAY_TASK_COUNT", -1)
        if n < 1:
            raise ShardError("shard: SLURM_ARRAY_TASK_ID is set but not SLURM_ARRAY_TASK_COUNT; pass --shard I/N")
        last = _int(env, "SLURM_ARRAY_TASK_MAX", first + (n - 1) * step)
        source = (f"SLURM_ARRAY_TASK_ID={task} (array {first}-{last}"
                  f"{':' + str(step) if step != 1 else ''}, {n} tasks)")
        if step < 1 or (task - first) % step or (last - first) // step + 1 != n:
            raise ShardError(f"shard: {source} is not an evenly spaced array (e.g. --array=1,4,9 or a "
                             f"throttled list); use --array=0-{n - 1} or pass --shard I/N")
        if count is not None and count != n:
            raise ShardError(f"shard: --shard-count {count} but the SLURM array has {n} tasks")
        return _check((task - first) // step, n, source)
    if "JOB_COMPLETION_INDEX" in env:
        index = _int(env, "JOB_COMPLETION_INDEX")
        if count is None:
            if "XT_SHARD_COUNT" not in env:
                raise ShardError(f"shard: JOB_COMPLETION_INDEX={index} is set but not the number of shards: set "
                                 f"XT_SHARD_COUNT to the Job's completions, or pass --shard-count N")
            count = _int(env, "XT_SHARD_COUNT")
        return _check(index, count, f"JOB_COMPLETION_INDEX={index} of {count}")
    if count is not None:
        raise ShardError("shard: --shard-count needs JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); "
                         "elsewhere pass --shard I/N")
    return None


# ---- units and the assignment ---------------------------------------------------------------------

def unit_of(cell: Config) -> str:
    """The cells that must run in one shard: those sharing an intermediate run; else the cell alone."""
    from repro.study.cell import cell_config, intermediate_dir

    c = cell_config(cell)
    return intermediate_dir(c).name if c.intermediate_task is not None else c.cell_id


def balance(costs: dict[str, float], count: int) -> list[list[str]]:
    """Greedy longest-processing-time: units by falling cost (then name), each to the least loaded shard
    (then the lowest index). Deterministic, within 4/3 of the best possible makespan."""
    loads = [0.0] * count
    shards: list[list[str]] = [[] for _ in range(count)]
    for unit in sorted(costs, key=lambda u: (-costs[u], u)):
        i = min(range(count), key=lambda k: (loads[k], k))
        shards[i].append(unit)
        loads[i] += costs[unit]
    return shards


def unit_costs(cells: list[Config], phases) -> dict[str, float]:
    """Training FLOPs per unit from the plan's phases; an unpriced unit costs the mean of the priced ones."""
    flops = {p.run: p.flops for p in phases}
    costs: dict[str, float] = {}   # exact integers where priced
    unknown, counted = set(), set()
    for cell in cells:
        unit = unit_of(cell)
        costs.setdefault(unit, 0)
        for run in sorted({unit, cell.cell_id} - counted):   # an intermediate run once per unit
            counted.add(run)
            if flops.get(run) is None:
                unknown.add(unit)
            else:
                costs[unit] += flops[run]
    priced = [c for u, c in costs.items() if u not in unknown]
    mean = sum(priced) / len(priced) if priced else 1.0
    return {u: (mean if u in unknown else c) for u, c in costs.items()}


def split(cells: list[Config], phases, count: int) -> list[dict]:
    """`count` shards of whole units balanced by cost: index, flops, units and cells (in grid order) of each."""
    costs = unit_costs(cells, phases)
    members: dict[str, list[str]] = {}
    for cell in cells:
        members.setdefault(unit_of(cell), []).append(cell.cell_id)
    return [{"index": i, "flops": sum(costs[u] for u in units), "units": units,
             "cells": [c for u in units for c in members[u]]} for i, units in enumerate(balance(costs, count))]


def assignment(cfg: Config, count: int, cells: list[Config] | None = None) -> dict:
    """The grid's cells in `count` shards, written once to <output_dir>/.shards/ and read by every shard."""
    cells = cells if cells is not None else cfg.cells()
    ids = [c.cell_id for c in cells]
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:12]
    folder = Path(cfg.output_dir) / SHARDS
    path = folder / f"{count}-{digest}.json"
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / "lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)   # the first shard prices the grid; the others wait, then read
        found = _read(path, ids, count)
        if found is not None:
            return found
        from repro.study.plan import plan_grid

        data = {"count": count, "cells": len(ids), "cost": "training FLOPs (repro.study.plan, basis auto)",
                "shards": split(cells, plan_grid(cfg, "auto", cells), count)}
        rundir.atomic_write(path, json.dumps(data, indent=1) + "\n")
        return {**data, "path": str(path)}
    finally:
        os.close(fd)


def _read(path: Path, ids: list[str], count: int) -> dict | None:
    try:
        data = json.loads(path.read_text())
        listed = sorted(c for s in data["shards"] for c in s["cells"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None   # unreadable or torn: priced again and rewritten
    if data.get("count") != count or listed != sorted(ids):
        return None
    return {**data, "path": str(path)}


def select(cfg: Config, shard: Shard) -> tuple[list[Config], dict]:
    """The cells of `shard` (in grid order) and the assignment they come from."""
    cells = cfg.cells()
    plan = assignment(cfg, shard.count, cells)
    mine = set(plan["shards"][shard.index]["cells"])
    return [c for c in cells if c.cell_id in mine], plan
