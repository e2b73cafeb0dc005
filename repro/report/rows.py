"""The report's tables as rows (lists of dicts), built only from the cells' results (repro.results) and their
per-example predictions (through repro.report.stats.Bootstrap): per language with 95 % intervals, transfer
gap, training cost, environment, config."""
from __future__ import annotations

import json
import math
from collections import defaultdict
from typing import Any, Callable

from repro.report import published
from repro.report import stats
from repro.report.stats import Bootstrap, Estimate, mean_std
from repro.results import NONE, CellResults
from repro.tables import fmt

# Tagging targets whose ja/zh scores the README calls broken by tokenisation (words split into characters
# that the tagger's first-subword rule mislabels): their averages are shown with and without ja and zh.
TAGGING_TASKS = ("udpos", "panx", "synth_tagging")
TOKENISATION_CAVEAT = ("ja", "zh")
AVERAGE, NON_ENGLISH, NON_ENGLISH_EXCL = "average", "non_english", "non_english_excl_ja_zh"
def intermediate_name(cell: CellResults) -> str:
    return cell.intermediate_name


def size_label(train_size: int | None) -> str:
    return "all" if train_size is None else str(train_size)


def arm_groups(cells) -> dict[tuple[str, str, int | None], dict[str, list]]:
    """(target task, model, train_size) -> intermediate task (NONE included) -> cells (one per seed)."""
    out: dict[tuple, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        out[(c.target_task, c.model.name, c.train_size)][intermediate_name(c)].append(c)
    return {k: dict(v) for k, v in sorted(out.items(), key=lambda kv: (kv[0][0], kv[0][1], _size_order(kv[0][2])))}


def _size_order(n: int | None) -> float:
    return float("inf") if n is None else float(n)


# ---- the statistics a table shows, as functions of one cell's language scores ----------------------------
def score_keys(task: str, languages: list[str]) -> list[str]:
    """The rows of a task's per-language table: each language, the average, the zero-shot (non-English)
    average and, for tagging with ja or zh, that average without them."""
    keys = [*languages, AVERAGE]
    non_en = [lang for lang in languages if lang != "en"]
    if non_en:
        keys.append(NON_ENGLISH)
    if task in TAGGING_TASKS and set(TOKENISATION_CAVEAT) & set(non_en) and set(non_en) - set(TOKENISATION_CAVEAT):
        keys.append(NON_ENGLISH_EXCL)
    return keys


def statistic(key: str, languages: list[str]) -> tuple[Callable, list[str]] | None:
    """(scores -> value, the languages it needs) for a key: a language, an average or the transfer gap.
    The value function takes numbers or replicate arrays alike. None where the languages do not allow it."""
    non_en = [lang for lang in languages if lang != "en"]
    excl = [lang for lang in non_en if lang not in TOKENISATION_CAVEAT]

    def mean(langs):
        return lambda s: sum(s[lang] for lang in langs) / len(langs)

    if key == AVERAGE:
        return mean(languages), languages
    if key == NON_ENGLISH:
        return (mean(non_en), non_en) if non_en else None
    if key == NON_ENGLISH_EXCL:
        return (mean(excl), excl) if excl else None
    if key == "transfer_gap":
        if "en" not in languages or not non_en:
            return None
        m = mean(non_en)
        return (lambda s: s["en"] - m(s)), languages
    if key == "english":
        return ((lambda s: s["en"]), ["en"]) if "en" in languages else None
    return ((lambda s: s[key]), [key]) if key in languages else None


def value_of(cell, stat) -> float | None:
    """The statistic of a cell's results (its per_language), None where it lacks a language it needs."""
    fn, langs = stat
    return float(fn(cell.per_language)) if all(lang in cell.per_language for lang in langs) else None


def _common_languages(*groups) -> list[str]:
    cells = [c for g in groups for c in g]
    common = set.intersection(*(set(c.per_language) for c in cells)) if cells else set()
    return sorted(common, key=lambda lang: (lang != "en", lang))


# ---- estimates: an arm, and the difference of two paired by seed -------------------------------------------
def with_minus_without(boot: Bootstrap, with_cells, without_cells, fn) -> Estimate | None:
    """with − without of a statistic over the seeds both arms have, paired by example and by seed."""
    seeds = {c.seed for c in with_cells} & {c.seed for c in without_cells}
    if not seeds:
        return None
    w = [c for c in with_cells if c.seed in seeds]
    wo = [c for c in without_cells if c.seed in seeds]
    key = ("paired", w[0].model.name, w[0].train_size)
    return boot.arm(w, fn, key) - boot.arm(wo, fn, key)


# ---- what a comparison is judged against, and which rows are primary -------------------------------------
CONTROL = "control"
PRIMARY, SECONDARY, EXPLORATORY = "primary", "secondary", "exploratory"
ALPHA = 1 - stats.LEVEL


def point_unit(cells, task: str) -> float:
    """One point of the task's metric: 1.0, or 0.01 where every score is on a 0–1 scale (results of schema 1
    and 2 may be)."""
    cs = [c for c in cells if c.target_task == task]
    return 0.01 if cs and all(abs(v) <= 1.0 for c in cs for v in c.per_language.values()) else 1.0


def smallest_effect(cells, task: str) -> float:
    """δ of a target task, in the metric's units: the results' config `report.smallest_effect_per_task[task]`,
    else `report.smallest_effect`, else stats.SMALLEST_EFFECT points."""
    delta = stats.SMALLEST_EFFECT
    for c in cells:
        r = (c.config or {}).get("report") or {}
        if c.target_task == task and isinstance(r, dict):
            delta = (r.get("smallest_effect_per_task") or {}).get(task, r.get("smallest_effect", delta))
            break
    return float(delta) * point_unit(cells, task)


def primary_key(languages: list[str]) -> str:
    """The target's one declared primary endpoint: the zero-shot (non-English) average where the target has
    other languages than English, else the average."""
    return NON_ENGLISH if any(lang != "en" for lang in languages) else AVERAGE


def contrasts(by_inter: dict[str, list]) -> list[tuple[str, str, str]]:
    """(arm, baseline, name) of a (target, model, train size)'s arms: each intermediate task − none
    ("intermediate vs none"); with a control arm (intermediate task `control`, the compute-matched phase on
    permuted labels, results.json `control_for`): intermediate − control ("intermediate knowledge") and
    control − none ("more training")."""
    inters = sorted(i for i in by_inter if i not in (NONE, CONTROL))
    out = [(i, NONE, "intermediate vs none") for i in inters]
    if CONTROL in by_inter:
        matched = {getattr(c, "control_for", None) for c in by_inter[CONTROL]} - {None}
        out += [(i, CONTROL, "intermediate vs control") for i in inters if not matched or i in matched]
        out.append((CONTROL, NONE, "control vs none"))
    return out


def inference_columns(prefix: str, e: Estimate | None, delta: float, unit: float = 1.0, sizing: bool = True) -> dict:
    """The interval's design and what it says: seeds, few seeds, SE, df, p, the variance split, the MDE at
    80 % power, the 90 % (TOST) interval, the verdict against δ, and the seeds / examples MDE ≤ δ needs, and
    the seeds a 1- and a 2-point effect need (`unit`: one point in the metric's units)."""
    keys = ("few_seeds", "se", "df", "p", "seed_share", "example_share", "mde", "ci90_low", "ci90_high",
            "verdict", "seeds_needed", "examples_needed")
    if e is None:
        return {f"{prefix}_{k}": None for k in keys} | {f"{prefix}_verdict": stats.NO_INTERVAL}
    d = e.as_dict(delta, sizing)
    out = {f"{prefix}_{k}": d.get(k) for k in keys}
    out[f"{prefix}_delta"] = delta
    for pts in (1, 2):   # sizing: only where a row can be a primary endpoint (an average)
        out[f"{prefix}_seeds_needed_{pts}pt"] = e.seeds_needed(pts * unit) if sizing else None
    return out


def _ci_columns(prefix: str, e: Estimate | None) -> dict:
    if e is None:
        return {f"{prefix}_ci_low": None, f"{prefix}_ci_high": None}
    lo, hi = e.ci()
    return {f"{prefix}_ci_low": lo, f"{prefix}_ci_high": hi}


def _ci_meta(e: Estimate | None) -> dict:
    if e is None:
        return {"ci_method": None, "ci_examples": None, "ci_seeds": None, "no_ci": "no paired seeds"}
    return {"ci_method": e.method, "ci_examples": e.examples, "ci_seeds": e.seeds,
            "no_ci": None if e.has_ci else e.no_ci}


def _comparison(boot, with_cells, without_cells, key, languages, delta=1.0, unit=1.0) -> dict[str, Any] | None:
    stat = statistic(key, languages)
    if stat is None:
        return None
    fn, needs = stat
    with_cells = [c for c in with_cells if value_of(c, stat) is not None]
    without_cells = [c for c in without_cells if value_of(c, stat) is not None]
    row: dict[str, Any] = {}
    for prefix, cs in (("with", with_cells), ("without", without_cells)):
        m, s, n = mean_std([value_of(c, stat) for c in cs])
        row.update({f"{prefix}_mean": m, f"{prefix}_std": s, f"{prefix}_n": n})
        row.update(_ci_columns(prefix, boot.arm(cs, fn) if cs else None))
    base = {c.seed: value_of(c, stat) for c in without_cells}
    m, s, n = mean_std([value_of(c, stat) - base[c.seed] for c in with_cells if c.seed in base])
    row.update({"diff_mean": m, "diff_std": s, "diff_n": n})
    diff = with_minus_without(boot, with_cells, without_cells, fn) if with_cells and without_cells else None
    row.update(_ci_columns("diff", diff))
    row["diff_ci_excludes_0"] = None if diff is None or not diff.has_ci else diff.excludes_zero()
    row.update(_ci_meta(diff if with_cells else (boot.arm(without_cells, fn) if without_cells else None)))
    row.update(inference_columns("diff", diff, delta, unit, sizing=key in (AVERAGE, NON_ENGLISH)))
    return row


def _comparisons(cells, boot: Bootstrap, keys_of: Callable[[str, list[str]], list[str]]) -> list[dict]:
    """Rows comparing arms, per (target, model, train size, contrast, key): each intermediate task with no
    intermediate training and, where the grid has a control arm, with the control and the control with none
    (`contrasts`). `intermediate_task` is the compared arm, `baseline` the arm it is compared with (the
    `without_*` columns)."""
    rows = []
    for (task, model, size), by_inter in arm_groups(cells).items():
        delta, unit = smallest_effect(cells, task), point_unit(cells, task)
        pairs = contrasts(by_inter) or [(i, NONE, "arm alone") for i in sorted(by_inter)][:1]
        family = next(iter(by_inter.values()))[0].model.family
        for inter, baseline, name in pairs:
            with_ = by_inter.get(inter, []) if inter != NONE else []
            without = by_inter.get(baseline, [])
            languages = _common_languages(with_, without)
            same = next((c.same_data_as_target for c in with_ if c.same_data_as_target), None)
            for key in keys_of(task, languages):
                cmp = _comparison(boot, with_, without, key, languages, delta, unit)
                if cmp is None:
                    continue
                row = {"target_task": task, "model": model, "family": family, "train_size": size_label(size),
                       "intermediate_task": inter, "baseline": baseline, "contrast": name,
                       "metric": (with_ or without)[0].metric, "key": key, "same_data_as_target": same}
                row.update(cmp)
                rows.append(row)
    return rows


def _roles_and_holm(rows: list[dict]) -> list[dict]:
    """Each per-language table row's role — the target's primary endpoint (`primary_key`), a secondary summary
    (the other averages), or an exploratory language — and, for the languages, Holm's (1979) adjusted p within
    the family of one (target, model, train size, contrast)'s languages. Bold (`diff_bold`): a primary row
    whose interval excludes 0, a language whose Holm-adjusted p < 0.05; a secondary row never."""
    summaries = (AVERAGE, NON_ENGLISH, NON_ENGLISH_EXCL)
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["target_task"], r["model"], r["train_size"], r["contrast"], r["intermediate_task"])].append(r)
    families = []
    for group in groups.values():
        primary = primary_key([r["language"] for r in group if r["language"] not in summaries])
        for r in group:
            r["role"] = PRIMARY if r["language"] == primary else SECONDARY if r["language"] in summaries \
                else EXPLORATORY
            r["diff_p_holm"], r["holm_family_size"] = None, None
        families.append([r for r in group if r["role"] == EXPLORATORY])
    for fam in families:
        adjusted = stats.holm([math.nan if r["diff_p"] is None else r["diff_p"] for r in fam])
        for r, p in zip(fam, adjusted):
            r["diff_p_holm"] = None if math.isnan(p) else p
            r["holm_family_size"] = sum(not math.isnan(x) for x in adjusted)
    for r in rows:
        r["diff_bold"] = bool(r["diff_ci_excludes_0"]) if r["role"] == PRIMARY else \
            (r["diff_p_holm"] is not None and r["diff_p_holm"] < ALPHA) if r["role"] == EXPLORATORY else False
        r["diff_verdict_unadjusted"] = r.get("diff_verdict")
        if r["role"] == EXPLORATORY and r.get("diff_verdict") == stats.DIFFERENT and not r["diff_bold"]:
            r["diff_verdict"] = _verdict_without_difference(r)
    return rows


def _verdict_without_difference(r: dict) -> str:
    """An exploratory language's verdict once its "different" has not survived Holm: what the row's own test
    says without it (equivalent by TOST, else underpowered or inconclusive by its MDE against δ)."""
    lo, hi, delta, mde = (r.get(k) for k in ("diff_ci90_low", "diff_ci90_high", "diff_delta", "diff_mde"))
    if None in (lo, hi, delta, mde) or any(isinstance(x, float) and math.isnan(x) for x in (lo, hi, delta, mde)):
        return stats.INCONCLUSIVE
    return stats.verdict_without_difference((lo, hi), mde, delta)


def per_language_rows(cells, boot: Bootstrap) -> list[dict]:
    rows = _comparisons(cells, boot, score_keys)
    for r in rows:
        r["language"] = r.pop("key")
        r.update(_published_columns(r["target_task"], r["language"]))
    return _roles_and_holm([r for r in rows if r["with_n"] or r["without_n"]])


def _published_columns(task: str, language: str) -> dict:
    """Published numbers for a per-language row (the "average" row takes the papers' averages): context only."""
    found = published.anchors_for(task, "avg" if language == AVERAGE else language)
    cols: dict[str, Any] = {f"published_{a.model}": a.value for a in found}
    if found:
        cols["published_source"] = "; ".join(dict.fromkeys(a.citation() for a in found))
    return cols


def published_text(row: dict) -> str:
    values = [f"{m} {fmt(row[f'published_{m}'])}" for m in published.anchor_models() if f"published_{m}" in row]
    return "; ".join(values) if values else "—"


def transfer_gap_rows(cells, boot: Bootstrap) -> list[dict]:
    wide: dict[tuple, dict] = {}
    for r in _comparisons(cells, boot, lambda task, langs: ["transfer_gap", "english", NON_ENGLISH]):
        key = (r["target_task"], r["model"], r["train_size"], r["intermediate_task"], r["baseline"])
        out = wide.setdefault(key, {k: r[k] for k in ("target_task", "model", "family", "train_size",
                                                       "intermediate_task", "baseline", "contrast", "metric",
                                                       "same_data_as_target")})
        name = "gap" if r["key"] == "transfer_gap" else r["key"]
        stats_ = ("with_mean", "with_std", "with_n", "without_mean", "without_std", "without_n", "diff_mean",
                  "diff_std", "diff_n", "with_ci_low", "with_ci_high", "without_ci_low", "without_ci_high",
                  "diff_ci_low", "diff_ci_high", "diff_ci_excludes_0", "ci_method", "no_ci")
        for stat in stats_:
            if name == "gap" or stat.endswith("_mean"):
                out[f"{name}_{stat}"] = r[stat]
    return [r for r in wide.values() if "gap_with_mean" in r]


def training_cost_rows(cells) -> list[dict]:
    """Per (target, model, train size, intermediate task) and phase: means over seeds of what the phase cost."""
    rows = []
    for (task, model, size), by_inter in arm_groups(cells).items():
        for inter, cs in sorted(by_inter.items()):
            for phase in ("intermediate", "target"):
                blocks = [getattr(c.training, phase) for c in cs if getattr(c.training, phase)]
                if not blocks:
                    continue
                row = {"target_task": task, "model": model, "train_size": size_label(size), "intermediate_task": inter,
                       "phase": phase, "phase_task": blocks[0].train_task or blocks[0].task, "n": len(blocks)}
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
                     "finished_at": c.finished_at, "checkpoint": c.checkpoint,
                     # Absent (None/{}) in results written before issue 34.
                     "device_kind": env.device_kind, "cpu": (env.cpu or {}).get("model"),
                     "cpu_vector_flags": " ".join((env.cpu or {}).get("vector_flags") or []) or None,
                     "cpu_logical_cores": (env.cpu or {}).get("logical_cores"),
                     "libraries": dict(env.libraries), "gpu": env.gpu})
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


def detectable_rows(per_language: list[dict]) -> list[dict]:
    """What the design can detect, per primary endpoint (target, model, train size, contrast): the difference
    with its interval and verdict, the variance split, the MDE at 80 % power, and the seeds (at this
    evaluation size) and the examples per language that MDE ≤ δ needs, and the seeds a 1- and a 2-point
    effect need."""
    keys = ("target_task", "model", "train_size", "intermediate_task", "baseline", "contrast", "language",
            "metric", "diff_mean", "diff_ci_low", "diff_ci_high", "diff_n", "diff_few_seeds", "diff_df",
            "diff_seed_share", "diff_example_share", "diff_mde", "diff_delta", "diff_verdict", "diff_seeds_needed",
            "diff_seeds_needed_1pt", "diff_seeds_needed_2pt", "diff_examples_needed", "ci_examples")
    return [{k: r.get(k) for k in keys} for r in per_language if r.get("role") == PRIMARY]
