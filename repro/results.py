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

SCHEMA_VERSION = 3
# 1: no missing_languages / dropped (read as empty); 2: no learning curve, time split, train_size, predictions
READABLE_VERSIONS = (1, 2, 3)
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
class CurvePoint:
    """One English dev evaluation of a phase: the score against the training spent to reach it."""

    step: int                        # micro-steps done
    examples: int                    # training examples seen (real, not padding)
    flops: float                     # cumulative training FLOPs (TrainingRecord.flops' rule)
    dev: float                       # the phase task's primary metric on its English dev set


@dataclasses.dataclass(frozen=True)
class Timing:
    """Where a phase's wall time went (seconds, summed over resumed attempts); the rest of wall_time_s is
    the training steps themselves and their data."""

    compile_s: float                 # the train-step calls that compiled (one step's run included)
    eval_s: float                    # dev evaluations
    checkpoint_s: float              # latest/best checkpoint writes


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
    curve: tuple[CurvePoint, ...] = ()   # every dev evaluation, in step order (schema 3)
    timing: Timing | None = None


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
class Retrieval:
    """How a retrieval target was scored (repro.study.retrieval): no target phase, the encoder's embeddings."""

    layer: int                       # the encoder layer whose output is pooled (1-based)
    num_layers: int                  # the encoder's depth
    pooling: str                     # "mean" over the attention mask
    similarity: str                  # "cosine"
    wall_time_s: float               # embedding every evaluated language


@dataclasses.dataclass(frozen=True)
class CellTiming:
    """Where the cell's own wall time went, outside its training phases (whose `timing` is in `training`)."""

    cell_s: float                    # the cell's last attempt in this process: loading to results
    zero_shot_eval_s: float          # featurizing, forward passes and scoring of every evaluated language
    latency_s: float                 # the inference-latency measurement


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
    # Absent from results written before issue 34 (read as empty): repro.environment says what each holds.
    libraries: dict[str, str | None] = dataclasses.field(default_factory=dict)   # distribution -> version
    cpu: dict[str, Any] | None = None      # model, architecture, logical_cores, vector_flags, flags
    gpu: dict[str, Any] | None = None      # cuda_runtime, cudnn, cuda_driver, driver, libraries (GPU runs only)


@dataclasses.dataclass(frozen=True)
class Compute:
    """How the cell computed (repro.training.precision.record): read back from jax and the model."""

    precision: str                   # the config's fp32 | tf32 | bf16
    compute_dtype: str               # float32 | bfloat16 (parameters stay float32)
    matmul_precision: str            # jax_default_matmul_precision in effect: highest | tensorfloat32 | default
    attention: str = "einsum"        # einsum | xla | cudnn | own (XLNet's)
    attention_dropout: bool = True   # false on jax.nn.dot_product_attention's path
    remat: bool = False


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
    compute: Compute | None = None   # absent from results written before issue 33
    intermediate_task: str | None = None
    setting: Setting | None = None   # null outside the seed study's six settings
    eval_split: str | None = None
    # Languages of the task not evaluated, and why (the source lacks them; eval.missing_languages: skip).
    missing_languages: dict[str, str] = dataclasses.field(default_factory=dict)
    # "<phase> <task> <split>/<lang>" -> reason -> rows the loaders dropped (no gold label, answer not found).
    dropped: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None    # the orbax folder of the checkpoint evaluated
    # The cap on the target's training examples (the grid's sample-efficiency axis); None: all of them.
    train_size: int | None = None
    eval_examples: dict[str, int] = dataclasses.field(default_factory=dict)   # language -> examples scored
    predictions: str | None = None   # the per-example predictions file, beside results.json (PREDICTIONS_NAME)
    # Why the intermediate phase trained on the target's own training data (e.g. MNLI -> XNLI), or None.
    same_data_as_target: str | None = None
    # The control arm (intermediate_task "control"): the intermediate task whose phase it repeats with permuted labels.
    control_for: str | None = None
    # What the model was pretrained on (config models.X.languages): english | multilingual.
    model_languages: str | None = None
    retrieval: Retrieval | None = None   # set for a retrieval target (no target phase)
    timing: CellTiming | None = None     # absent from results written before issue 30's cost split
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
    except (ValueError, RecursionError) as e:   # not UTF-8, not JSON, nested too deep, a 5000-digit number
        raise ResultsError(f"{path}: malformed JSON ({' '.join(str(e).split())[:200]})") from e


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


# ---- per-example predictions: what a paired test resamples -----------------------------------------
PREDICTIONS_NAME = "predictions.json"
PREDICTIONS_FORMAT = "xtreme-transfer-predictions"
PREDICTIONS_VERSION = 1


@dataclasses.dataclass(frozen=True)
class LanguagePredictions:
    ids: tuple[str, ...]             # the examples' ids (the same evaluation subset in every cell and seed)
    rows: tuple[tuple[float, ...], ...]   # one row per example (data_prep.metrics.from_rows' rows)


@dataclasses.dataclass(frozen=True)
class Predictions:
    """`<cell dir>/predictions.json`: per language, each scored example's id and its metric row, so that any
    comparison can be re-tested (paired by example id) without re-running the cell.
    `data_prep.metrics.from_rows(kind, rows)` of a language's rows is its per_language score."""

    format: str
    version: int
    cell_id: str
    task: str
    metric: str
    kind: str                        # accuracy | span_f1 | mean | pearson (data_prep.metrics.ROW_KINDS)
    languages: dict[str, LanguagePredictions]

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> "Predictions":
        def error(message: str) -> ResultsError:
            return ResultsError(f"{where}: {message}")

        if not isinstance(data, dict) or data.get("format") != PREDICTIONS_FORMAT:
            raise error(f"not a predictions file (format is not {PREDICTIONS_FORMAT!r})")
        if data.get("version") != PREDICTIONS_VERSION:
            raise error(f"predictions version {data.get('version')!r}, this version reads {PREDICTIONS_VERSION}")
        preds = typed.build(cls, data, error)
        for lang, p in preds.languages.items():
            if len(p.ids) != len(p.rows) or not p.rows:
                raise error(f"languages.{lang}: {len(p.ids)} ids for {len(p.rows)} rows")
            if len({len(r) for r in p.rows}) != 1:
                raise error(f"languages.{lang}: rows of different lengths")
            if len(set(p.ids)) != len(p.ids):
                raise error(f"languages.{lang}: repeated example ids")
        return preds

    def to_dict(self) -> dict:
        return typed.plain(self)

    def write(self, path: Path) -> None:
        from repro.rundir import atomic_write

        atomic_write(path, json.dumps(self.to_dict(), separators=(",", ":")) + "\n")

    def rows(self, language: str) -> np.ndarray:
        return np.asarray(self.languages[language].rows, dtype=np.float64)


def make_predictions(cell_id: str, task: str, metric: str, kind: str,
                     languages: dict[str, tuple[list[str], list[list[float]]]]) -> Predictions:
    return Predictions.from_dict({"format": PREDICTIONS_FORMAT, "version": PREDICTIONS_VERSION, "cell_id": cell_id,
                                  "task": task, "metric": metric, "kind": kind,
                                  "languages": {lang: {"ids": list(ids), "rows": rows}
                                                for lang, (ids, rows) in languages.items()}},
                                 f"predictions of {cell_id}")


def load_predictions(cell_dir: str | Path, cell: "CellResults") -> Predictions | None:
    """The predictions file of `cell` (its results.json is in cell_dir); None for a cell written before
    schema 3 (it kept none)."""
    if cell.predictions is None:
        return None
    path = Path(cell_dir) / cell.predictions
    preds = Predictions.from_dict(read_json(path), path)
    if preds.cell_id != cell.cell_id:
        raise ResultsError(f"{path}: predictions of {preds.cell_id!r}, not of the cell {cell.cell_id!r} beside it")
    return preds


# ---- a diverged cell: where it stopped, never a score ------------------------------------------------
DIVERGED_NAME = "diverged.json"


@dataclasses.dataclass(frozen=True)
class Divergence:
    """`<cell dir>/diverged.json` (on_divergence: record): the phase and step where the loss or gradient norm
    stopped being finite. The report lists the cell as diverged; it has no results.json and no score."""

    cell_id: str
    phase: str                       # intermediate | target
    step: int
    message: str                     # the one-line error
    last_checkpoint: str | None
    config: dict[str, Any]
    finished_at: str | None = None

    @classmethod
    def from_dict(cls, data: Any, where: str | Path) -> "Divergence":
        return typed.build(cls, data, lambda m: ResultsError(f"{where}: {m}"))

    def write(self, path: Path) -> None:
        from repro.rundir import atomic_write

        atomic_write(path, json.dumps(typed.plain(self), indent=1) + "\n")


def load_divergences(results_dir: str | Path) -> list[Divergence]:
    """Every recorded divergence under results_dir, sorted by cell id."""
    paths = sorted((Path(results_dir) / "cells").glob(f"*/{DIVERGED_NAME}"))
    return sorted((Divergence.from_dict(read_json(p), p) for p in paths), key=lambda d: d.cell_id)
