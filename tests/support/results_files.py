"""Builds results files in the schema of docs/design.md, shaped like the smoke grid: schema 1 (`make_results`,
no per-example predictions) and schema 3 (`make_cell`: learning curves, time split, train_size and a
predictions file whose rows give exactly the cell's per-language scores).

Imported by tests/repro/test_report.py, test_claims.py and test_stats.py (which also check the builder).
"""
from __future__ import annotations

import copy
import json
import random
import zlib
from pathlib import Path

MODELS = {"bert-tiny": "bert", "roberta-tiny": "roberta", "xlnet-tiny": "xlnet"}
# The smoke grid: tiny models, one intermediate task or none, synthetic targets in two of the six settings.
TARGETS = {
    "synth_sentiment": ("sentiment", "cross_lingual"),
    "synth_nli": ("classification", "cross_lingual"),
}
LANGUAGES = ("en", "de", "sw")
PARAMS = {"bert-tiny": 57_000, "roberta-tiny": 58_000, "xlnet-tiny": 61_000}
LATENCY = {"bert-tiny": 1.5, "roberta-tiny": 1.7, "xlnet-tiny": 2.9}
# Family strength, so that the claims come out as the study says unless a test plants otherwise.
BASE = {"bert": 0.70, "roberta": 0.71, "xlnet": 0.55}


def make_results(model="bert-tiny", intermediate="synth_int_sentiment", target="synth_sentiment", seed=0,
                 per_language=None, synthetic=True, rng=None) -> dict:
    family = MODELS.get(model, model.split("-")[0])
    rng = rng or random.Random(zlib.crc32(f"{model}/{intermediate}/{target}/{seed}".encode()))
    if per_language is None:
        bonus = 0.05 if intermediate else 0.0
        per_language = {lang: round(BASE[family] + bonus - 0.08 * (lang != "en") + rng.uniform(-0.02, 0.02), 6)
                        for lang in LANGUAGES}
    others = [v for k, v in per_language.items() if k != "en"]
    non_en = sum(others) / len(others) if others else None   # domain settings evaluate English only
    cell_id = f"{model}__int-{intermediate or 'none'}__tgt-{target}__seed{seed}"
    n_tgt = 200
    config = {
        "name": "smoke", "output_dir": "runs/smoke",
        "models": {model: {"family": family}},     # a cell's config holds only its own model
        "cell": {"model": model, "intermediate_task": intermediate or "none", "target_task": target, "seed": seed},
        "data": {"source": "synthetic", "max_length": 32},
        "intermediate": {"epochs": 1.0, "batch_size": 16},
        "target": {"epochs": 2.0, "batch_size": 16, "optimizer": {"learning_rate": None}},
        "eval": {"split": "test", "batch_size": 64},
        "precision": "fp32",
    }
    total = PARAMS.get(model, 50_000)
    return {
        "schema_version": 1,
        "cell_id": cell_id,
        "synthetic": synthetic,
        "config": config,
        "model": {"name": model, "family": family, "model_type": family},
        "intermediate_task": intermediate,
        "target_task": target,
        "setting": ({"task_type": TARGETS[target][0], "transfer": TARGETS[target][1]} if target in TARGETS
                    else None),
        "seed": seed,
        "metric": "accuracy",
        "scores": {k: {"accuracy": v} for k, v in per_language.items()},
        "per_language": per_language,
        "average": sum(per_language.values()) / len(per_language),
        "average_non_english": non_en,
        "transfer_gap": per_language["en"] - non_en if others else None,
        "param_count": {"total": total, "embedding": 32_000, "non_embedding": total - 32_000, "trainable": total},
        "frozen_parameters": 0,
        "training": {
            "intermediate": ({"task": intermediate, "train_examples": 4000, "epochs": 1, "steps": 250,
                              "tokens": 128_000, "flops": 1.1e10, "wall_time_s": 12.5 + rng.random()}
                             if intermediate else None),
            "target": {"task": target, "train_examples": n_tgt, "epochs": 2, "steps": 26, "tokens": 12_800,
                       "flops": 1.1e9, "wall_time_s": 3.0 + rng.random(), "best_step": 26, "best_dev": 0.7},
        },
        "inference": {"batch_size": 32, "seq_len": 128, "latency_ms_median": LATENCY.get(model, 2.0) + rng.random() / 10,
                      "dtype": "float32"},
        "checkpoint": f"runs/smoke/cells/{cell_id}/best",
        "environment": {"device": "cpu", "jax": "0.10.2", "flax": "0.12.8", "python": "3.11.7",
                        "commit": "abc1234", "hostname": "test"},
        "finished_at": "2026-11-23T21:00:00Z",
    }


def write_results(results_dir: Path, results: dict, predictions: dict | None = None) -> Path:
    path = Path(results_dir) / "cells" / results["cell_id"] / "results.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1))
    if predictions is not None:
        (path.parent / "predictions.json").write_text(json.dumps(predictions))
    return path


# ---- schema 3: curves, timing, train_size and per-example predictions ----------------------------------
def correct_rows(accuracy: float, n: int, rng: random.Random) -> list[list[float]]:
    """n accuracy rows ([correct]) of which exactly round(accuracy * n / 100) are right, at random places."""
    k = round(accuracy * n / 100)
    right = [1.0] * k + [0.0] * (n - k)
    rng.shuffle(right)
    return [[v] for v in right]


def default_curve(steps=(10, 20, 30), dev=(60.0, 70.0, 75.0), flops_per_step=4e7, examples_per_step=16):
    return [{"step": s, "examples": s * examples_per_step, "flops": s * flops_per_step, "dev": d}
            for s, d in zip(steps, dev)]


def make_cell(model="bert-tiny", intermediate="synth_int_sentiment", target="synth_sentiment", seed=0,
              per_language=None, examples=400, train_size=None, curve=None, intermediate_curve=None,
              same_data_as_target=None, synthetic=True, rng=None) -> tuple[dict, dict]:
    """(results.json, predictions.json) of one schema-3 cell: per_language (0-100 accuracy) is what the rows
    give (rounded to whole examples); the rows' ids are the same in every cell of a target task."""
    family = MODELS.get(model, model.split("-")[0])
    rng = rng or random.Random(zlib.crc32(f"{model}/{intermediate}/{target}/{seed}/{train_size}".encode()))
    if per_language is None:
        bonus = 5.0 if intermediate else 0.0
        per_language = {lang: 100 * BASE[family] + bonus - 8.0 * (lang != "en") + rng.uniform(-2, 2)
                        for lang in LANGUAGES}
    rows = {lang: correct_rows(v, examples, rng) for lang, v in per_language.items()}
    exact = {lang: 100.0 * sum(r[0] for r in rs) / len(rs) for lang, rs in rows.items()}
    r = make_results(model, intermediate, target, seed, per_language=exact, synthetic=synthetic, rng=rng)
    size = f"__n{train_size}" if train_size is not None else ""
    r["cell_id"] = r["cell_id"] + size
    r["config"]["cell"]["train_size"] = train_size
    r["schema_version"] = 3
    r["train_size"] = train_size
    r["eval_examples"] = {lang: examples for lang in per_language}
    r["predictions"] = "predictions.json"
    r["same_data_as_target"] = same_data_as_target
    target_curve = default_curve() if curve is None else curve
    r["training"]["target"].update({
        "curve": target_curve, "timing": {"compile_s": 1.5, "eval_s": 0.4, "checkpoint_s": 0.2},
        "steps": target_curve[-1]["step"] if target_curve else 30,
        "flops": target_curve[-1]["flops"] if target_curve else 1.2e9,
        "best_dev": max((p["dev"] for p in target_curve), default=None),
        "train_examples": train_size or 200})
    if r["training"]["intermediate"] is not None:
        inter_curve = (default_curve((100, 250), (50.0, 60.0), 4.4e7) if intermediate_curve is None
                       else intermediate_curve)
        r["training"]["intermediate"].update({"curve": inter_curve, "timing": {"compile_s": 2.0, "eval_s": 1.0,
                                                                               "checkpoint_s": 0.5}})
    predictions = {"format": "xtreme-transfer-predictions", "version": 1, "cell_id": r["cell_id"], "task": target,
                   "metric": "accuracy", "kind": "accuracy",
                   "languages": {lang: {"ids": [f"{target}-{lang}-{i}" for i in range(examples)], "rows": rs}
                                 for lang, rs in rows.items()}}
    return r, predictions


def write_cells(results_dir: Path, cells: list[tuple[dict, dict]]) -> list[dict]:
    """Writes make_cell pairs; returns the results dicts."""
    for results, predictions in cells:
        write_results(results_dir, results, predictions)
    return [r for r, _ in cells]


def smoke_grid_v3(seeds=(0, 1), models=tuple(MODELS), targets=tuple(TARGETS),
                  intermediates=("synth_int_sentiment", None), **kw) -> list[tuple[dict, dict]]:
    return [make_cell(m, i, t, s, **kw) for m in models for i in intermediates for t in targets for s in seeds]


def smoke_grid(seeds=(0, 1), models=tuple(MODELS), targets=tuple(TARGETS), intermediates=("synth_int_sentiment", None)):
    return [make_results(m, i, t, s) for m in models for i in intermediates for t in targets for s in seeds]


def write_grid(results_dir: Path, cells=None) -> list[dict]:
    cells = smoke_grid() if cells is None else cells
    for c in cells:
        write_results(results_dir, c)
    return cells


def edited(results: dict, **changes) -> dict:
    """A deep copy with dotted keys replaced, e.g. edited(r, **{"training.intermediate.epochs": 100})."""
    out = copy.deepcopy(results)
    for key, value in changes.items():
        *path, last = key.split(".")
        d = out
        for p in path:
            d = d[p]
        d[last] = value
    return out
