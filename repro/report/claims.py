"""The seed study's ten claims, each checked against the numbers of one run.

Input: the results of a run (`repro.results.CellResults`, one per cell). Output: one `Claim` per claim
with a verdict — "supported", "not supported" or "not tested" — and the numbers behind it.

Definitions (docs/report.md repeats them for readers of the report):

- score of a model in an experiment: the results' `average` (primary metric averaged over the evaluated
  languages), averaged over seeds. A family's score (BERT, RoBERTa, XLNet = `model.family`) is the score of
  its best model in that experiment (e.g. mBERT vs BERT: the better one speaks for the family).
- experiment: one target task × one intermediate task ("none" = without intermediate training).
- best: the highest score; worst: the lowest; `a > b` is a strict comparison of scores.
- a ≈ b: |a − b| ≤ max(one point, pooled seed std), where one point is 0.01 on a 0–1 metric scale (1.0 if
  any score exceeds 1) and the pooled std is sqrt((s_a² + s_b²) / 2) of the two seed stds (0 with one seed).
- setting: the results' `setting` (task_type × transfer); six settings exist. Claims 2 and 3 compare
  families trained with intermediate training, a setting's family score being the mean over its target
  tasks.
- not tested: the cells the claim needs are absent (e.g. settings the smoke grid does not contain).
  Claims 6–10 describe the setup; they are checked against what the run did (its config and data sizes),
  so a run that, say, trains 1 intermediate epoch does not support "100 epochs".
"""
from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from typing import Any, Iterable

from repro.results import CellResults
from repro.report.stats import mean_std

SUPPORTED, NOT_SUPPORTED, NOT_TESTED = "supported", "not supported", "not tested"
FAMILIES = ("bert", "roberta", "xlnet")
# data_prep's names (TaskSpec.setting); the longer names of the study are accepted as aliases.
TASK_TYPES = ("classification", "sentiment", "similarity")
TRANSFERS = ("domain", "cross_lingual")
_ALIASES = {"text_classification": "classification", "sentence_similarity": "similarity",
            "domain_adaptation": "domain", "crosslingual": "cross_lingual"}
SETTINGS = tuple((t, x) for t in TASK_TYPES for x in TRANSFERS)
INTERMEDIATE_EPOCHS = 100
SIZE_RATIO = 10

CLAIMS = {
    1: "RoBERTa and BERT with intermediate training are the best models, depending on the task.",
    2: "RoBERTa is best in three of the six settings.",
    3: "BERT is best in the other three settings.",
    4: "XLNet is the worst model in every experiment.",
    5: "Without intermediate training the same order holds: RoBERTa ≈ BERT > XLNet.",
    6: f"Intermediate training ran {INTERMEDIATE_EPOCHS} epochs on the large dataset.",
    7: "Target fine-tuning runs the same way after and without intermediate training.",
    8: "No layer is frozen: all weights are updated.",
    9: f"Each intermediate dataset is at least {SIZE_RATIO}× larger than its target dataset.",
    10: "Text classification uses IMDB for intermediate training.",
}


@dataclasses.dataclass(frozen=True)
class Claim:
    id: int
    text: str
    verdict: str
    evidence: str                 # one line: the numbers behind the verdict
    numbers: dict[str, Any]       # the same, machine-readable


# ------------------------------------------------------------------------------------------------
# Helpers

def _norm(name: str | None) -> str | None:
    return None if name is None else str(name).strip().lower().replace(" ", "_").replace("-", "_")


def _base_task(name: str) -> str:
    """A synthetic stand-in counts as the task it stands in for: synth_imdb -> imdb."""
    n = _norm(name)
    for prefix in ("synthetic_", "synth_"):
        if n.startswith(prefix):
            return n[len(prefix):]
    return n


def _setting(cell) -> tuple[str, str] | None:
    s = cell.setting
    if s is None:
        return None
    task_type, transfer = _norm(s.task_type), _norm(s.transfer)
    return _ALIASES.get(task_type, task_type), _ALIASES.get(transfer, transfer)


def _intermediate(cell) -> str:
    return cell.intermediate_name


def _mean_std(xs: list[float]) -> tuple[float, float, int]:
    """repro.report.stats.mean_std, with a single seed's (undefined) spread counted as 0 in the ≈ tolerance."""
    mean, std, n = mean_std(xs)
    return mean, (std if n > 1 else 0.0), n


def _fmt(x: float) -> str:
    return f"{x:.4g}"


@dataclasses.dataclass(frozen=True)
class _Score:
    model: str
    mean: float
    std: float
    n: int

    def as_dict(self):
        return {"model": self.model, "mean": self.mean, "std": self.std, "n": self.n}


def _family_scores(cells: Iterable[dict]) -> dict[str, _Score]:
    """family -> the score of its best model (mean over seeds of `average`)."""
    by_model: dict[tuple[str, str], list[float]] = defaultdict(list)
    for c in cells:
        by_model[(c.model.family, c.model.name)].append(c.average)
    best: dict[str, _Score] = {}
    for (family, model), xs in sorted(by_model.items()):
        s = _Score(model, *_mean_std(xs))
        if family not in best or s.mean > best[family].mean:
            best[family] = s
    return best


def _point(cells: list[dict]) -> float:
    return 1.0 if any(abs(c.average) > 1.0 for c in cells) else 0.01


def _approx(a: _Score, b: _Score, point: float) -> tuple[bool, float]:
    tol = max(point, math.sqrt((a.std ** 2 + b.std ** 2) / 2))
    return abs(a.mean - b.mean) <= tol, tol


def _experiments(cells: list[dict]) -> dict[tuple[str, str], list[dict]]:
    out: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in cells:
        out[(c.target_task, _intermediate(c))].append(c)
    return dict(sorted(out.items()))


def _scores_str(scores: dict[str, _Score]) -> str:
    return ", ".join(f"{f} {_fmt(s.mean)}" for f, s in sorted(scores.items(), key=lambda kv: -kv[1].mean))


def _claim(i: int, verdict: str, evidence: str, numbers: dict) -> Claim:
    return Claim(i, CLAIMS[i], verdict, evidence, numbers)


# ------------------------------------------------------------------------------------------------
# The claims

def _claim1(cells):
    by_task: dict[str, list[dict]] = defaultdict(list)
    for c in cells:
        by_task[c.target_task].append(c)
    tested, skipped, parts = {}, [], []
    for task, cs in sorted(by_task.items()):
        with_ = _family_scores(c for c in cs if c.intermediate_task)
        without = _family_scores(c for c in cs if not c.intermediate_task)
        if len(set(with_) | set(without)) < 2 or not with_ or not without:
            skipped.append(task)
            continue
        entries = [(s.mean, f, "with") for f, s in with_.items()] + [(s.mean, f, "without") for f, s in without.items()]
        top_mean, top_family, top_regime = max(entries)
        ok = top_family in ("bert", "roberta") and top_regime == "with"
        tested[task] = {"best_family": top_family, "best_regime": top_regime, "best_score": top_mean, "holds": ok,
                        "with_intermediate": {f: s.as_dict() for f, s in with_.items()},
                        "without_intermediate": {f: s.as_dict() for f, s in without.items()}}
        parts.append(f"{task}: best {top_family} {top_regime} intermediate ({_fmt(top_mean)})")
    numbers = {"tasks": tested, "skipped_tasks": skipped}
    if not tested:
        return _claim(1, NOT_TESTED, "no target task has ≥2 model families with and without intermediate training",
                      numbers)
    verdict = SUPPORTED if all(t["holds"] for t in tested.values()) else NOT_SUPPORTED
    return _claim(1, verdict, "; ".join(parts), numbers)


def _setting_winners(cells):
    """setting -> (best family, family -> mean score over the setting's target tasks), intermediate-trained."""
    by_setting: dict[tuple[str, str], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        s = _setting(c)
        if s is not None and c.intermediate_task:
            by_setting[s][c.target_task].append(c)
    out = {}
    for setting, tasks in by_setting.items():
        per_family: dict[str, list[float]] = defaultdict(list)
        for cs in tasks.values():
            for f, s in _family_scores(cs).items():
                per_family[f].append(s.mean)
        means = {f: sum(xs) / len(xs) for f, xs in per_family.items()}
        if len(means) >= 2:
            out[setting] = (max(means, key=means.get), means)
    return out


def _settings_numbers(winners):
    return {f"{t}/{x}": {"best": w, "scores": m} for (t, x), (w, m) in sorted(winners.items())}


def _claim2(cells):
    winners = _setting_winners(cells)
    tested = [s for s in SETTINGS if s in winners]
    k = sum(winners[s][0] == "roberta" for s in tested)
    missing = len(SETTINGS) - len(tested)
    numbers = {"settings": _settings_numbers(winners), "roberta_best": k, "settings_tested": len(tested),
               "settings_missing": missing}
    evidence = (f"RoBERTa best in {k} of {len(tested)} settings tested ({missing} of 6 missing)"
                + ("; " + "; ".join(f"{t}/{x}: {winners[(t, x)][0]}" for t, x in tested) if tested else ""))
    if k > 3 or k + missing < 3:
        return _claim(2, NOT_SUPPORTED, evidence, numbers)
    return _claim(2, SUPPORTED if missing == 0 else NOT_TESTED, evidence, numbers)


def _claim3(cells):
    winners = _setting_winners(cells)
    tested = [s for s in SETTINGS if s in winners]
    k_bert = sum(winners[s][0] == "bert" for s in tested)
    others = [s for s in tested if winners[s][0] not in ("bert", "roberta")]
    missing = len(SETTINGS) - len(tested)
    numbers = {"settings": _settings_numbers(winners), "bert_best": k_bert, "neither_best": len(others),
               "settings_tested": len(tested), "settings_missing": missing}
    evidence = (f"BERT best in {k_bert}, neither BERT nor RoBERTa in {len(others)}, of {len(tested)} settings "
                f"tested ({missing} of 6 missing)")
    if others or k_bert > 3 or k_bert + missing < 3:
        return _claim(3, NOT_SUPPORTED, evidence, numbers)
    return _claim(3, SUPPORTED if missing == 0 else NOT_TESTED, evidence, numbers)


def _claim4(cells):
    tested, parts = {}, []
    for (task, inter), cs in _experiments(cells).items():
        scores = _family_scores(cs)
        if "xlnet" not in scores or len(scores) < 2:
            continue
        x = scores["xlnet"].mean
        beaten_by = sorted(f for f, s in scores.items() if f != "xlnet" and s.mean <= x)
        tested[f"{task}/{inter}"] = {"scores": {f: s.as_dict() for f, s in scores.items()},
                                     "xlnet_worst": not beaten_by, "at_or_below_xlnet": beaten_by}
        parts.append(f"{task}/int-{inter}: {_scores_str(scores)}")
    if not tested:
        return _claim(4, NOT_TESTED, "no experiment has XLNet and another family", {"experiments": {}})
    verdict = SUPPORTED if all(t["xlnet_worst"] for t in tested.values()) else NOT_SUPPORTED
    return _claim(4, verdict, "; ".join(parts), {"experiments": tested})


def _claim5(cells):
    baseline = [c for c in cells if not c.intermediate_task]
    point = _point(cells) if cells else 0.01
    tested, parts = {}, []
    for (task, _), cs in _experiments(baseline).items():
        s = _family_scores(cs)
        if not all(f in s for f in FAMILIES):
            continue
        r, b, x = s["roberta"], s["bert"], s["xlnet"]
        approx, tol = _approx(r, b, point)
        above = min(r.mean, b.mean) > x.mean
        tested[task] = {"roberta": r.as_dict(), "bert": b.as_dict(), "xlnet": x.as_dict(), "tolerance": tol,
                        "roberta_approx_bert": approx, "both_above_xlnet": above}
        parts.append(f"{task}: RoBERTa {_fmt(r.mean)} vs BERT {_fmt(b.mean)} (|Δ| {_fmt(abs(r.mean - b.mean))}, "
                     f"tol {_fmt(tol)}), XLNet {_fmt(x.mean)}")
    if not tested:
        return _claim(5, NOT_TESTED, "no target task has BERT, RoBERTa and XLNet without intermediate training",
                      {"tasks": {}, "point": point})
    ok = all(t["roberta_approx_bert"] and t["both_above_xlnet"] for t in tested.values())
    return _claim(5, SUPPORTED if ok else NOT_SUPPORTED, "; ".join(parts), {"tasks": tested, "point": point})


def _intermediate_cells(cells):
    return [c for c in cells if c.intermediate_task and c.training.intermediate is not None]


def _claim6(cells):
    inter = _intermediate_cells(cells)
    if not inter:
        return _claim(6, NOT_TESTED, "no cell ran intermediate training", {"epochs": {}})
    epochs: dict[str, list[float]] = defaultdict(list)
    for c in inter:
        epochs[c.intermediate_task].append(c.training.intermediate.epochs)
    values = sorted({e for es in epochs.values() for e in es})
    ok = all(e == INTERMEDIATE_EPOCHS for e in values)
    evidence = "; ".join(f"{t}: epochs {', '.join(_fmt(e) for e in sorted(set(es)))} ({len(es)} cells)"
                         for t, es in sorted(epochs.items()))
    return _claim(6, SUPPORTED if ok else NOT_SUPPORTED, evidence,
                  {"epochs": {t: sorted(set(es)) for t, es in epochs.items()}, "required": INTERMEDIATE_EPOCHS})


_TARGET_TRAINING_KEYS = ("epochs", "train_examples", "steps", "tokens")
# Config parts that describe how the target phase runs (repro/config.py): the phase itself, the data,
# the evaluation and the precision. The cell, grid, intermediate phase and output paths differ by design.
_TARGET_CONFIG_KEYS = ("target", "data", "eval", "precision")


def _target_signature(cell) -> dict[str, Any]:
    cfg = cell.config
    sig = {f"config.{k}": cfg.get(k) for k in _TARGET_CONFIG_KEYS if k in cfg}
    sig.update({f"training.target.{k}": getattr(cell.training.target, k) for k in _TARGET_TRAINING_KEYS})
    return sig


def _claim7(cells):
    baseline = {(c.model.name, c.target_task, c.seed): c for c in cells if not c.intermediate_task}
    pairs, differing = 0, []
    for c in cells:
        if not c.intermediate_task:
            continue
        base = baseline.get((c.model.name, c.target_task, c.seed))
        if base is None:
            continue
        pairs += 1
        a, b = _target_signature(c), _target_signature(base)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if diff:
            differing.append({"cell": c.cell_id, "baseline": base.cell_id, "keys": diff,
                              "values": {k: [a.get(k), b.get(k)] for k in diff}})
    numbers = {"pairs": pairs, "pairs_differing": len(differing), "differences": differing,
               "compared": [f"config.{k}" for k in _TARGET_CONFIG_KEYS]
               + [f"training.target.{k}" for k in _TARGET_TRAINING_KEYS]}
    if not pairs:
        return _claim(7, NOT_TESTED, "no (model, target task, seed) has cells with and without intermediate training",
                      numbers)
    evidence = f"{pairs} paired cells, {len(differing)} differ in the target phase"
    if differing:
        d = differing[0]
        evidence += f" (e.g. {d['cell']}: {', '.join(d['keys'][:3])})"
    return _claim(7, NOT_SUPPORTED if differing else SUPPORTED, evidence, numbers)


def _claim8(cells):
    if not cells:
        return _claim(8, NOT_TESTED, "no cells", {})
    frozen = {c.cell_id: c.frozen_parameters for c in cells}
    partial = [c.cell_id for c in cells if c.param_count.trainable != c.param_count.total]
    bad = sorted({k for k, v in frozen.items() if v} | set(partial))
    evidence = (f"{len(cells)} cells: max frozen_parameters {max(frozen.values())}, "
                f"{len(partial)} with trainable != total")
    return _claim(8, NOT_SUPPORTED if bad else SUPPORTED, evidence,
                  {"cells": len(cells), "max_frozen_parameters": max(frozen.values()),
                   "cells_trainable_below_total": partial, "cells_failing": bad})


def _claim9(cells):
    ratios = {}
    for c in _intermediate_cells(cells):
        n_int = c.training.intermediate.train_examples
        n_tgt = c.training.target.train_examples
        ratios[c.cell_id] = {"intermediate_task": c.intermediate_task, "target_task": c.target_task,
                                "intermediate_examples": n_int, "target_examples": n_tgt,
                                "ratio": n_int / n_tgt if n_tgt else math.inf}
    if not ratios:
        return _claim(9, NOT_TESTED, "no cell ran intermediate training", {"cells": {}})
    worst_id = min(ratios, key=lambda k: ratios[k]["ratio"])
    w = ratios[worst_id]
    ok = w["ratio"] >= SIZE_RATIO
    evidence = (f"smallest ratio {_fmt(w['ratio'])}× ({w['intermediate_task']} {w['intermediate_examples']} vs "
                f"{w['target_task']} {w['target_examples']} examples) over {len(ratios)} cells")
    return _claim(9, SUPPORTED if ok else NOT_SUPPORTED, evidence,
                  {"cells": ratios, "min_ratio": w["ratio"], "required": SIZE_RATIO})


def _claim10(cells):
    tc = [c for c in cells if (_setting(c) or (None,))[0] == "classification" and c.intermediate_task]
    if not tc:
        return _claim(10, NOT_TESTED, "no (text) classification cell ran intermediate training", {"tasks": {}})
    used: dict[str, list[str]] = defaultdict(list)
    for c in tc:
        used[c.target_task].append(c.intermediate_task)
    ok = all(_base_task(c.intermediate_task) == "imdb" for c in tc)
    evidence = "; ".join(f"{t}: intermediate {', '.join(sorted(set(i)))}" for t, i in sorted(used.items()))
    return _claim(10, SUPPORTED if ok else NOT_SUPPORTED, evidence,
                  {"tasks": {t: sorted(set(i)) for t, i in used.items()}})


def evaluate_claims(cells: list[CellResults]) -> list[Claim]:
    """The ten claims, in order, evaluated on the parsed results of one run."""
    checks = (_claim1, _claim2, _claim3, _claim4, _claim5, _claim6, _claim7, _claim8, _claim9, _claim10)
    return [check(cells) for check in checks]
