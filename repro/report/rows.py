"""The report's tables as rows (lists of dicts), built only from the cells' results (repro.results): per
language, transfer gap, efficiency, accuracy vs efficiency, training cost, environment, config."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Iterable, Sequence

from repro.report import published
from repro.report.stats import mean_std
from repro.results import NONE, CellResults
from repro.tables import fmt


def intermediate_name(cell: CellResults) -> str:
    return cell.intermediate_name


def _languages(cells: Iterable[dict]) -> list[str]:
    langs = {lang for c in cells for lang in c.per_language}
    return sorted(langs, key=lambda lang: (lang != "en", lang))


def _groups(cells) -> dict[tuple[str, str], dict[str, list[dict]]]:
    """(target task, model) -> intermediate task (NONE included) -> cells."""
    out: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        out[(c.target_task, c.model.name)][intermediate_name(c)].append(c)
    return {k: dict(v) for k, v in sorted(out.items())}


def _paired_diff(with_cells, without_cells, value) -> list[float]:
    """with − without for each seed present in both groups (and a value in both)."""
    base = {c.seed: value(c) for c in without_cells}
    out = []
    for c in with_cells:
        a, b = value(c), base.get(c.seed)
        if a is not None and b is not None:
            out.append(a - b)
    return out


def _comparison(with_cells, without_cells, value) -> dict[str, Any]:
    w = [v for v in map(value, with_cells) if v is not None]
    wo = [v for v in map(value, without_cells) if v is not None]
    row = {}
    for prefix, xs in (("with", w), ("without", wo)):
        m, s, n = mean_std(xs)
        row.update({f"{prefix}_mean": m, f"{prefix}_std": s, f"{prefix}_n": n})
    m, s, n = mean_std(_paired_diff(with_cells, without_cells, value))
    row.update({"diff_mean": m, "diff_std": s, "diff_n": n})
    return row


def _comparisons(cells, value_fns: dict[str, Any]) -> list[dict]:
    """Rows comparing each intermediate task with no intermediate training, per (target, model, key)."""
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        without = by_inter.get(NONE, [])
        inters = sorted(i for i in by_inter if i != NONE) or [NONE]
        family = next(iter(by_inter.values()))[0].model.family
        for inter in inters:
            with_ = by_inter.get(inter, []) if inter != NONE else []
            for key, fn in value_fns.items():
                row = {"target_task": task, "model": model, "family": family, "intermediate_task": inter,
                       "metric": (with_ or without)[0].metric, "key": key}
                row.update(_comparison(with_, without, fn))
                rows.append(row)
    return rows


def per_language_rows(cells) -> list[dict]:
    langs = _languages(cells)
    fns = {lang: (lambda c, lang=lang: c.per_language.get(lang)) for lang in langs}
    fns["average"] = lambda c: c.average
    rows = [r for r in _comparisons(cells, fns)]
    for r in rows:
        r["language"] = r.pop("key")
        r.update(_published_columns(r["target_task"], r["language"]))
    # A model/task only has the languages its cells evaluated.
    return [r for r in rows if r["with_n"] or r["without_n"]]


def _published_columns(task: str, language: str) -> dict:
    """Published numbers for a per-language row (the "average" row takes the papers' averages): context only."""
    found = published.anchors_for(task, "avg" if language == "average" else language)
    cols = {f"published_{a.model}": a.value for a in found}
    if found:
        a = found[0]
        scope = f", average of {a.languages} languages" if a.language == "avg" else ""
        cols["published_source"] = f"{a.source} ({a.split}{scope})"
    return cols


def published_text(row: dict) -> str:
    values = [f"{m} {fmt(row[f'published_{m}'])}" for m in published.anchor_models() if f"published_{m}" in row]
    return "; ".join(values) if values else "—"


def transfer_gap_rows(cells) -> list[dict]:
    fns = {"transfer_gap": lambda c: c.transfer_gap,
           "english": lambda c: c.per_language.get("en"),
           "non_english": lambda c: c.average_non_english}
    wide: dict[tuple, dict] = {}
    for r in _comparisons(cells, fns):
        key = (r["target_task"], r["model"], r["intermediate_task"])
        out = wide.setdefault(key, {k: r[k] for k in ("target_task", "model", "family", "intermediate_task",
                                                       "metric")})
        name = r["key"]
        for stat in ("with_mean", "with_std", "with_n", "without_mean", "without_std", "without_n",
                     "diff_mean", "diff_std", "diff_n"):
            if name == "transfer_gap":
                out[f"gap_{stat}"] = r[stat]
            elif stat.endswith("_mean"):
                out[f"{name}_{stat}"] = r[stat]
    return list(wide.values())


def training_cost_rows(cells) -> list[dict]:
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        for inter, cs in sorted(by_inter.items()):
            for phase in ("intermediate", "target"):
                blocks = [getattr(c.training, phase) for c in cs if getattr(c.training, phase)]
                if not blocks:
                    continue
                row = {"target_task": task, "model": model, "intermediate_task": inter, "phase": phase,
                       "phase_task": blocks[0].train_task or blocks[0].task, "n": len(blocks)}
                for key in ("train_examples", "epochs", "steps", "tokens", "flops", "wall_time_s"):
                    row[f"{key}_mean"] = mean_std([float(getattr(b, key)) for b in blocks])[0]
                row["wall_time_s_std"] = mean_std([b.wall_time_s for b in blocks])[1]
                rows.append(row)
    return rows


def efficiency_rows(cells) -> list[dict]:
    """Per (target task, model): parameter counts and the jitted inference latency of the results files."""
    by: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        by[(c.target_task, c.model.name)].append(c)
    rows = []
    for (task, model), cs in sorted(by.items()):
        pc = cs[0].param_count
        lat = [c.inference.latency_ms_median for c in cs if c.inference.latency_ms_median is not None]
        m, s, n = mean_std(lat)
        inf = cs[0].inference
        rows.append({"target_task": task, "model": model, "family": cs[0].model.family,
                     "params_total": pc.total, "params_embedding": pc.embedding,
                     "params_non_embedding": pc.non_embedding, "params_trainable": pc.trainable,
                     "frozen_parameters": max(c.frozen_parameters for c in cs),
                     "latency_ms_mean": m, "latency_ms_std": s, "latency_n": n,
                     "batch_size": inf.batch_size, "seq_len": inf.seq_len,
                     "dtype": inf.dtype, "device": cs[0].environment.device})
    return rows


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (cost, score) points: True where no other point costs no more and scores no less (one strictly)."""
    out = []
    for i, (x, y) in enumerate(points):
        dominated = any(
            j != i and qx <= x and qy >= y and (qx < x or qy > y) for j, (qx, qy) in enumerate(points)
        )
        out.append(not (dominated or math.isnan(x) or math.isnan(y)))
    return out


def accuracy_efficiency_rows(cells) -> list[dict]:
    eff = {(r["target_task"], r["model"]): r for r in efficiency_rows(cells)}
    rows = []
    for (task, model), by_inter in _groups(cells).items():
        for inter, cs in sorted(by_inter.items()):
            m, s, n = mean_std([c.average for c in cs])
            e = eff[(task, model)]
            rows.append({"target_task": task, "model": model, "intermediate_task": inter, "metric": cs[0].metric,
                         "score_mean": m, "score_std": s, "n": n, "latency_ms": e["latency_ms_mean"],
                         "params_total": e["params_total"]})
    for task in sorted({r["target_task"] for r in rows}):
        sub = [r for r in rows if r["target_task"] == task]
        for cost in ("latency_ms", "params_total"):
            front = pareto_front([(float(r[cost]), r["score_mean"]) for r in sub])
            for r, f in zip(sub, front):
                r[f"pareto_{cost.split('_')[0]}"] = f
    return rows


def missing_language_rows(cells) -> list[dict]:
    """(target task, language, why) -> how many cells did not evaluate it."""
    count: dict[tuple[str, str, str], int] = defaultdict(int)
    for c in cells:
        for lang, why in c.missing_languages.items():
            count[(c.target_task, lang, why)] += 1
    return [{"target_task": t, "language": lang, "why": why, "cells": n} for (t, lang, why), n in sorted(count.items())]


def environment_rows(cells) -> list[dict]:
    rows = []
    for c in cells:
        env = c.environment
        rows.append({"cell_id": c.cell_id, "synthetic": c.synthetic, "device": env.device,
                     "jax": env.jax, "flax": env.flax, "python": env.python,
                     "commit": env.commit, "hostname": env.hostname,
                     "finished_at": c.finished_at, "checkpoint": c.checkpoint})
    return rows


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict) and d:
        out = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def config_rows(cells) -> tuple[list[dict], list[dict]]:
    """(keys with one value in every cell that has them, per-cell values of the keys that differ).

    A cell's config holds only its own model (`models.<name>.*`): such keys are "common" when every cell
    that has them agrees, with `cells` saying how many do."""
    flat = {c.cell_id: _flatten(c.config) for c in cells}
    keys = sorted({k for f in flat.values() for k in f})
    common, varying = [], []
    for k in keys:
        values = {json.dumps(f[k], sort_keys=True, default=str) for f in flat.values() if k in f}
        (common if len(values) == 1 else varying).append(k)
    common_rows = [{"key": k, "value": _json_value(next(f[k] for f in flat.values() if k in f)),
                    "cells": sum(k in f for f in flat.values())} for k in common]
    varying_rows = [{"cell_id": cid, **{k: _json_value(f.get(k)) for k in varying}} for cid, f in flat.items()]
    return common_rows, varying_rows


def _json_value(v):
    return v if isinstance(v, (str, int, float, bool)) or v is None else json.dumps(v, sort_keys=True)


# ------------------------------------------------------------------------------------------------
