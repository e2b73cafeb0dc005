"""What every cell's results.json says about itself, trained or retrieval: one place, so the two kinds of cell
cannot drift apart in the fields the report joins them on (cell, model, arm, target, seed, metric, split)."""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jax

from repro import config
from repro.config import Config
from repro.environment import environment
from repro.results import PREDICTIONS_NAME, RESULTS_NAME, CellResults, Predictions


def identity(cfg: Config, target: Any, model: dict, split: str, missing: Any, test: dict) -> dict:
    """The fields that name a cell and the data it was scored on. `model`: family, model_type, fresh_weights."""
    return {
        "cell_id": cfg.cell_id,
        "synthetic": bool(target.synthetic or cfg.data.source == "synthetic"),
        "config": config.to_dict(cfg),
        "model": {"name": cfg.cell.model, "family": model["family"], "model_type": model["model_type"],
                  "name_or_path": cfg.model.name_or_path, "fresh_weights": model["fresh_weights"]},
        "intermediate_task": cfg.intermediate_task,
        "control_for": cfg.cell.control_for,
        "model_languages": cfg.model.languages,
        "target_task": target.name,
        "seed": cfg.cell.seed,
        "metric": target.metric,
        "eval_split": split,
        "missing_languages": missing,
        "environment": environment(),
        "eval_examples": {lang: len(examples) for lang, examples in test.items()},
        "predictions": PREDICTIONS_NAME,
    }


def write(out: Path, results: CellResults, predictions: Predictions) -> None:
    """predictions.json before results.json (a finished cell has both), from the main process only."""
    if jax.process_index() == 0:
        predictions.write(out / PREDICTIONS_NAME)
        results.write(out / RESULTS_NAME)


def timing(t_cell: float, zero_shot_eval_s: float, latency_s: float) -> dict:
    """results.json `timing`: the cell's wall time since `t_cell` (a perf_counter reading at its start) and the
    seconds of its zero-shot evaluation and latency measurement (tests.benchmarks.grid_cost splits a grid's
    wall time with them)."""
    return {"cell_s": round(time.perf_counter() - t_cell, 3), "zero_shot_eval_s": round(zero_shot_eval_s, 3),
            "latency_s": round(latency_s, 3)}
