"""The results file of one cell (`<output_dir>/cells/<cell_id>/results.json`): its schema, as one typed model.

The pipeline writes it (`CellResults.write`), the report, the claims check and `repro table` read it
(`load_cells`); docs/design.md describes each field. Reading validates everything: a file that does not
parse or does not fit the schema is a `ResultsError` naming the file and the key, never a half-read cell.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from repro import typed
from repro.errors import UserError

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)   # 1: no missing_languages / dropped (read as empty)
RESULTS_NAME = "results.json"


class ResultsError(UserError, ValueError):
    """A results file that cannot be read or does not fit the schema; one line naming the file."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    name: str                        # the config's model name (a key of `models`)
    family: str                      # bert | roberta | xlnet
    model_type: str | None = None    # config.json's model_type
    name_or_path: str | None = None  # hub id or folder; None for a random init from hf_config
    # Parameters the checkpoint did not provide, initialised at random: the new head, and backbone weights
    # only where models.<name>.allow_missing_weights let them be missing. None: random init from hf_config.
    fresh_weights: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Setting:
    task_type: str                   # sentiment | classification | similarity
    transfer: str                    # domain | cross_lingual


@dataclasses.dataclass(frozen=True)
class ParamCounts:
    total: int
    embedding: int
    non_embedding: int
    trainable: int


@dataclasses.dataclass(frozen=True)
class TrainingRecord:
    """The cost of one training phase; `flops` = 3 x analytic forward per real example at its bucket length."""

    task: str
    train_examples: int
    epochs: float
    steps: int
    tokens: int                      # non-padding tokens of real examples
    flops: float
    wall_time_s: float               # compilation and checkpointing included, summed over resumed attempts
    best_step: int | None = None
    best_dev: float | None = None
    compilations: int | None = None  # train_step traces of the run
    train_task: str | None = None    # the task whose data trained a target that has no train split


@dataclasses.dataclass(frozen=True)
class Training:
    target: TrainingRecord
    intermediate: TrainingRecord | None = None   # the shared intermediate run's cost, repeated in each cell using it


@dataclasses.dataclass(frozen=True)
class Inference:
    batch_size: int
    seq_len: int
    latency_ms_median: float | None
    dtype: str
    repeats: int | None = None
    devices: int | None = None


@dataclasses.dataclass(frozen=True)
class Environment:
    device: str
    jax: str
    flax: str
    python: str
    commit: str | None = None        # ends in "-dirty" when tracked files differed from the commit
    hostname: str | None = None
    device_kind: str | None = None
    device_count: int | None = None
    process_count: int | None = None


@dataclasses.dataclass(frozen=True)
class CellResults:
    schema_version: int
    cell_id: str
    synthetic: bool
    config: dict[str, Any]           # the cell's full resolved config
    model: ModelInfo
    target_task: str
    seed: int
    metric: str                      # the target task's primary metric
    scores: dict[str, dict[str, float]]   # language -> every metric (0-100, as xtreme's evaluate.py)
    per_language: dict[str, float]   # language -> primary metric
    average: float
    average_non_english: float | None
    transfer_gap: float | None       # en minus the mean of the other languages
    param_count: ParamCounts
    frozen_parameters: int
    training: Training
    inference: Inference
    environment: Environment
    intermediate_task: str | None = None
    setting: Setting | None = None   # null outside the seed study's six settings
    eval_split: str | None = None
    # Languages of the task not evaluated, and why (the source lacks them; eval.missing_languages: skip).
    missing_languages: dict[str, str] = dataclasses.field(default_factory=dict)
    # "<phase> <task> <split>/<lang>" -> reason -> rows the loaders dropped (no gold label, answer not found).
    dropped: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None    # the orbax folder of the checkpoint evaluated
    finished_at: str | None = None

    # ---- assembling, reading and writing ---------------------------------------------------------
    @classmethod
    def assemble(cls, fields: dict[str, Any]) -> "CellResults":
        """A finished cell's results from what the run measured: the schema version, the time and the
        averages (`score_summary` of per_language) are added here, and the whole is validated."""
        data = {"schema_version": SCHEMA_VERSION, **fields, **score_summary(fields["per_language"]),
                "finished_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        return cls.from_dict(data, f"results of {fields.get('cell_id')}")

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> "CellResults":
        def error(message: str) -> ResultsError:
            return ResultsError(f"{where}: {message}")

        if isinstance(data, dict) and data.get("schema_version") not in READABLE_VERSIONS:
            raise error(f"schema_version {data.get('schema_version')!r}, this version reads "
                        f"{', '.join(map(str, READABLE_VERSIONS))}")
        cell = typed.build(cls, data, error)
        if not cell.per_language:
            raise error("per_language is empty")
        if bool(cell.intermediate_task) != (cell.training.intermediate is not None):
            raise error("training.intermediate must be an object exactly when intermediate_task is set")
        return cell

    def to_dict(self) -> dict:
        return typed.plain(self)

    def write(self, path: Path) -> None:
        from repro.rundir import atomic_write

        atomic_write(path, json.dumps(self.to_dict(), indent=1) + "\n")

    # ---- derived ----------------------------------------------------------------------------------
    @property
    def intermediate_name(self) -> str:
        """The intermediate task, "none" for cells trained without one."""
        return self.intermediate_task or NONE


NONE = "none"


def score_summary(per_language: dict[str, float]) -> dict:
    """average, average_non_english and transfer_gap (en minus the mean of the others) of the scores."""
    def mean(xs):
        return float(np.mean(xs)) if xs else None
    non_en = mean([v for k, v in per_language.items() if k != "en"])
    gap = per_language["en"] - non_en if "en" in per_language and non_en is not None else None
    return {"average": mean(list(per_language.values())), "average_non_english": non_en, "transfer_gap": gap}


def read_json(path: str | Path) -> Any:
    """A JSON file's contents; a missing, unreadable or malformed file is a ResultsError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ResultsError(f"{path}: cannot read ({e.strerror or e})") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: malformed JSON ({e})") from e


def load_cell(path: str | Path) -> CellResults:
    return CellResults.from_dict(read_json(path), path)


def result_paths(results_dir: str | Path) -> list[Path]:
    return sorted((Path(results_dir) / "cells").glob(f"*/{RESULTS_NAME}"))


def load_cells(results_dir: str | Path) -> list[CellResults]:
    """Every cell's results under results_dir, checked, sorted by cell id."""
    results_dir = Path(results_dir)
    paths = result_paths(results_dir)
    if not paths:
        raise ResultsError(f"{results_dir / 'cells'}: no */{RESULTS_NAME} found")
    cells = [load_cell(p) for p in paths]
    seen: dict[str, Path] = {}
    for path, c in zip(paths, cells):
        if c.cell_id in seen:
            raise ResultsError(f"{results_dir / 'cells'}: cell_id {c.cell_id!r} appears in more than one "
                               f"{RESULTS_NAME} ({seen[c.cell_id].parent.name}, {path.parent.name})")
        seen[c.cell_id] = path
    return sorted(cells, key=lambda c: c.cell_id)
