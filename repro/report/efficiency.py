"""Efficiency where the two arms can differ: the target's English dev learning curve against steps and FLOPs,
its area (AUC) and the steps to 95 % of the no-intermediate twin's final smoothed dev score, paired by seed
with t intervals over every seed (never-reached censored at the last step, not dropped), each cell's total
training cost with the intermediate phase amortized over the targets reusing it and marginal (one target
pays all of it), the change in the zero-shot average per unit of that cost, and the score against the
target's training size.

And where they cannot: parameters and inference latency are the same network with and without intermediate
training, so `identical_by_construction_rows` checks that parameters are equal and that latency is
equivalent within ±3 % (TOST), not merely "not shown to differ".
Input: the cells' results (repro.results) and the run's Bootstrap (repro.report.stats); output: rows.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np
from scipy.stats import t as student_t

from repro.report.rows import NON_ENGLISH, arm_groups, size_label, statistic, with_minus_without
from repro.report.stats import SMALLEST_EFFECT, TOST_LEVEL, Bootstrap, Estimate, SeedGroup, mean_std
from repro.results import NONE

PFLOP = 1e15
NEVER = "never"
NO_CURVE = "no curve"


# ---- the intermediate phase's cost, shared ----------------------------------------------------------------
def intermediate_shares(cells) -> Counter:
    """(model, intermediate task, seed) -> how many cells of this run reuse that one intermediate run."""
    return Counter((c.model.name, c.intermediate_task, c.seed) for c in cells if c.intermediate_task)


def amortised_intermediate_flops(cell, shares: Counter) -> float:
    if cell.training.intermediate is None:
        return 0.0
    return cell.training.intermediate.flops / shares[(cell.model.name, cell.intermediate_task, cell.seed)]


def cost_rows(cells) -> list[dict]:
    """One row per cell: training FLOPs (target, the intermediate's share, total) and wall time split."""
    shares = intermediate_shares(cells)
    rows = []
    for c in cells:
        t, i = c.training.target, c.training.intermediate
        share = amortised_intermediate_flops(c, shares)
        row = {"cell_id": c.cell_id, "target_task": c.target_task, "model": c.model.name,
               "train_size": size_label(c.train_size), "intermediate_task": c.intermediate_name, "seed": c.seed,
               "target_flops": t.flops, "intermediate_flops": i.flops if i else 0.0,
               "intermediate_shared_by": shares[(c.model.name, c.intermediate_task, c.seed)] if i else 0,
               "intermediate_flops_share": share, "total_flops": t.flops + share}
        for phase, block in (("target", t), ("intermediate", i)):
            if block is None:
                continue
            row[f"{phase}_wall_s"] = block.wall_time_s
            timing = block.timing
            for k in ("compile_s", "eval_s", "checkpoint_s"):
                row[f"{phase}_{k}"] = getattr(timing, k) if timing else None
            row[f"{phase}_steps_s"] = (block.wall_time_s - timing.compile_s - timing.eval_s - timing.checkpoint_s
                                       if timing else None)
        rows.append(row)
    return rows


# ---- learning curves, their area, and steps to a fraction of the twin's final score -----------------------
FRACTION = 0.95          # the goal: this fraction of the twin's final smoothed English dev score
SMOOTH = 3               # the twin's final score: the mean of its last SMOOTH dev evaluations


def curve_rows(cells) -> list[dict]:
    """Every English dev evaluation of every target phase, with the cumulative cost at that point (total
    FLOPs include the cell's share of its intermediate run)."""
    shares = intermediate_shares(cells)
    rows = []
    for c in cells:
        share = amortised_intermediate_flops(c, shares)
        for p in c.training.target.curve:
            rows.append({"cell_id": c.cell_id, "target_task": c.target_task, "model": c.model.name,
                         "train_size": size_label(c.train_size), "intermediate_task": c.intermediate_name,
                         "seed": c.seed, "step": p.step, "examples": p.examples, "target_flops": p.flops,
                         "total_flops": p.flops + share, "dev": p.dev})
    return rows


def first_reaching(curve, target: float):
    """The first curve point whose dev is at least `target`, or None."""
    return next((p for p in curve if p.dev >= target), None)


def curve_auc(curve) -> float:
    """The area under the English dev curve over its steps, divided by their span: the mean dev score over the
    target phase (trapezoids; a one-point curve is its value)."""
    if len(curve) == 1:
        return float(curve[0].dev)
    area = sum((b.step - a.step) * (a.dev + b.dev) / 2 for a, b in zip(curve, curve[1:]))
    return area / (curve[-1].step - curve[0].step)


def final_smoothed(curve) -> float:
    return sum(p.dev for p in curve[-SMOOTH:]) / len(curve[-SMOOTH:])


def _steps_to(curve, goal: float) -> tuple[int, bool, object]:
    """(steps, censored, point): the first step reaching goal, or the last step and censored=True."""
    hit = first_reaching(curve, goal)
    return (hit.step, False, hit) if hit is not None else (curve[-1].step, True, curve[-1])


def steps_to_target_rows(cells) -> list[dict]:
    """For each cell with intermediate training and its twin without (same model, target, train size, seed):
    the goal (FRACTION of the twin's final smoothed English dev score), the target steps and FLOPs each arm
    needed to reach it (never: censored at the phase's last step), and each arm's learning-curve AUC."""
    shares = intermediate_shares(cells)
    twins = {(c.model.name, c.target_task, c.train_size, c.seed): c for c in cells if not c.intermediate_task}
    rows = []
    for c in cells:
        twin = twins.get((c.model.name, c.target_task, c.train_size, c.seed))
        if not c.intermediate_task or twin is None:
            continue
        row = {"cell_id": c.cell_id, "twin_cell_id": twin.cell_id, "target_task": c.target_task, "model": c.model.name,
               "train_size": size_label(c.train_size), "intermediate_task": c.intermediate_task, "seed": c.seed,
               "same_data_as_target": c.same_data_as_target}
        curve, twin_curve = c.training.target.curve, twin.training.target.curve
        if not curve or not twin_curve:
            rows.append({**row, "reached": NO_CURVE})
            continue
        goal = FRACTION * final_smoothed(twin_curve)
        twin_steps, twin_censored, own = _steps_to(twin_curve, goal)
        steps, censored, hit = _steps_to(curve, goal)
        inter_flops = c.training.intermediate.flops if c.training.intermediate else 0.0
        amortised = hit.flops + amortised_intermediate_flops(c, shares)
        row.update({"twin_final_dev": final_smoothed(twin_curve), "goal_dev": goal, "twin_steps": twin_steps,
                    "twin_censored": twin_censored, "twin_flops": own.flops, "best_dev": max(p.dev for p in curve),
                    "reached": NEVER if censored else "yes", "steps": steps, "censored": censored,
                    "steps_diff": steps - twin_steps, "target_flops": hit.flops,
                    "total_flops": amortised, "total_flops_marginal": hit.flops + inter_flops,
                    "total_flops_ratio": amortised / own.flops if own.flops else None,
                    "total_flops_ratio_marginal": (hit.flops + inter_flops) / own.flops if own.flops else None,
                    "auc": curve_auc(curve), "twin_auc": curve_auc(twin_curve),
                    "auc_diff": curve_auc(curve) - curve_auc(twin_curve)})
        rows.append(row)
    return rows


def _seed_estimate(rs: list[dict], key: str, name: tuple) -> Estimate:
    values = np.array([float(r[key]) for r in rs])
    seeds = tuple(r["seed"] for r in rs)
    return Estimate(float(values.mean()), {name: SeedGroup(seeds, values, None)})


def steps_to_target_summary(rows, delta: float = SMALLEST_EFFECT) -> list[dict]:
    """steps_to_target_rows per (target, model, train size, intermediate task), over every seed with a curve:
    the paired difference of the learning-curve AUC (points; t interval over seeds, verdict against δ) and of
    the steps to the goal (never-reached counted at the phase's last step: censored, so the difference is a
    bound where any is), with how many seeds each arm reached the goal."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["target_task"], r["model"], r["train_size"], r["intermediate_task"])].append(r)
    out = []
    for (task, model, size, inter), rs in groups.items():
        curves = [r for r in rs if r["reached"] != NO_CURVE]
        row = {"target_task": task, "model": model, "train_size": size, "intermediate_task": inter,
               "same_data_as_target": rs[0]["same_data_as_target"], "seeds": len(rs), "with_curve": len(curves),
               "reached": sum(r["reached"] == "yes" for r in curves),
               "twin_reached": sum(not r["twin_censored"] for r in curves)}
        if curves:
            auc = _seed_estimate(curves, "auc_diff", (task, model, size, inter, "auc"))
            steps = _seed_estimate(curves, "steps_diff", (task, model, size, inter, "steps"))
            row.update({"goal_dev": mean_std([r["goal_dev"] for r in curves])[0],
                        "twin_final_dev": mean_std([r["twin_final_dev"] for r in curves])[0],
                        "steps": mean_std([r["steps"] for r in curves])[0],
                        "twin_steps": mean_std([r["twin_steps"] for r in curves])[0],
                        "censored": sum(r["censored"] for r in curves) + sum(r["twin_censored"] for r in curves),
                        "total_flops_ratio": mean_std([r["total_flops_ratio"] for r in curves
                                                       if r["total_flops_ratio"] is not None])[0],
                        "total_flops_ratio_marginal": mean_std([r["total_flops_ratio_marginal"] for r in curves
                                                                if r["total_flops_ratio_marginal"] is not None])[0]})
            for prefix, e in (("auc_diff", auc), ("steps_diff", steps)):
                lo, hi = e.ci()
                row.update({f"{prefix}_mean": e.point, f"{prefix}_ci_low": lo, f"{prefix}_ci_high": hi,
                            f"{prefix}_no_ci": e.no_ci or None})
            row["auc_verdict"] = auc.verdict(delta)
        out.append(row)
    return out


# ---- the zero-shot gain per unit of cost ----------------------------------------------------------------
def cost_effect_rows(cells, boot: Bootstrap) -> list[dict]:
    """Per (target, model, train size, intermediate task): the change in the non-English average (paired,
    with its interval), the mean total training FLOPs of each arm — amortized (the intermediate run divided
    among the cells of this folder reusing it, `intermediate_shared_by`) and marginal (one target pays the
    whole intermediate run) — and the change per extra (amortized) PFLOP."""
    totals = {r["cell_id"]: r["total_flops"] for r in cost_rows(cells)}
    shares = intermediate_shares(cells)
    rows = []
    for (task, model, size), by_inter in arm_groups(cells).items():
        without = by_inter.get(NONE, [])
        for inter, with_ in sorted(by_inter.items()):
            if inter == NONE or not without:
                continue
            languages = sorted(set.intersection(*(set(c.per_language) for c in [*with_, *without])))
            stat = statistic(NON_ENGLISH, languages)
            if stat is None:
                continue
            diff = with_minus_without(boot, with_, without, stat[0])
            if diff is None:
                continue
            cost_w = mean_std([totals[c.cell_id] for c in with_])[0]
            cost_wo = mean_std([totals[c.cell_id] for c in without])[0]
            marginal = mean_std([c.training.target.flops + (c.training.intermediate.flops
                                                            if c.training.intermediate else 0.0) for c in with_])[0]
            extra = cost_w - cost_wo
            lo, hi = diff.ci()
            per = (lambda v: v / (extra / PFLOP)) if extra > 0 else (lambda v: math.nan)
            shared = shares[(model, with_[0].intermediate_task, with_[0].seed)] if with_[0].intermediate_task else 0
            rows.append({"target_task": task, "model": model, "train_size": size_label(size),
                         "intermediate_task": inter, "same_data_as_target": with_[0].same_data_as_target,
                         "delta_non_english": diff.point, "delta_ci_low": lo, "delta_ci_high": hi,
                         "ci_method": diff.method, "total_flops_with": cost_w, "total_flops_without": cost_wo,
                         "extra_flops": extra, "cost_ratio": cost_w / cost_wo if cost_wo else math.nan,
                         "intermediate_shared_by": shared, "total_flops_with_marginal": marginal,
                         "cost_ratio_marginal": marginal / cost_wo if cost_wo else math.nan,
                         "delta_per_pflop": per(diff.point), "delta_per_pflop_ci_low": per(lo),
                         "delta_per_pflop_ci_high": per(hi)})
    return rows


# ---- sample efficiency -----------------------------------------------------------------------------------
def train_sizes_vary(cells) -> dict[str, list]:
    """target task -> its train sizes, for the tasks with more than one."""
    sizes: dict[str, set] = defaultdict(set)
    for c in cells:
        sizes[c.target_task].add(c.train_size)
    return {t: sorted(s, key=lambda n: math.inf if n is None else n) for t, s in sorted(sizes.items()) if len(s) > 1}


def sample_efficiency_rows(cells, boot: Bootstrap) -> list[dict]:
    """Score (the non-English average where there is one, else the average) against the target's training
    size, with and without intermediate training, each with its interval, and the paired difference."""
    varying = train_sizes_vary(cells)
    rows = []
    for (task, model, size), by_inter in arm_groups(cells).items():
        if task not in varying:
            continue
        without = by_inter.get(NONE, [])
        for inter, cs in sorted(by_inter.items()):
            languages = sorted(set.intersection(*(set(c.per_language) for c in cs)))
            key = NON_ENGLISH if any(lang != "en" for lang in languages) else "average"
            fn = statistic(key, languages)[0]
            e = boot.arm(cs, fn)
            lo, hi = e.ci()
            row = {"target_task": task, "model": model, "train_size": size_label(size),
                   "train_examples": mean_std([c.training.target.train_examples for c in cs])[0],
                   "intermediate_task": inter, "score": key, "mean": e.point, "ci_low": lo, "ci_high": hi,
                   "n": len(cs), "ci_method": e.method}
            if inter != NONE and without:
                d = with_minus_without(boot, cs, without, fn)
                if d is not None:
                    row.update({"diff_mean": d.point, "diff_ci_low": d.ci()[0], "diff_ci_high": d.ci()[1]})
            rows.append(row)
    return rows


# ---- parameters and latency: identical by construction ---------------------------------------------------
LATENCY_TOLERANCE = 0.03    # latency "equal": the 90 % interval of with − without inside ±3 % of without's mean


def identical_by_construction_rows(cells) -> list[dict]:
    """Per (target, model, inference shape): parameter counts of every cell equal, and the latency medians of
    the two arms equivalent within ±LATENCY_TOLERANCE of the without arm's mean — TOST (Schuirmann 1987): the
    90 % two-sample t interval of mean with − mean without (pooled spread, n_with + n_without − 2 df) inside
    the margin. "no" where it is not inside (equality not shown, which is not a difference either); needs
    two measurements per arm, else "not measured"."""
    groups: dict[tuple, list] = defaultdict(list)
    for c in cells:
        inf = c.inference
        groups[(c.target_task, c.model.name, inf.batch_size, inf.seq_len, inf.dtype, c.environment.device)].append(c)
    rows = []
    for (task, model, batch, seq, dtype, device), cs in sorted(groups.items()):
        params = {tuple(vars(c.param_count).values()) for c in cs}
        arms = {"with": [c.inference.latency_ms_median for c in cs if c.intermediate_task],
                "without": [c.inference.latency_ms_median for c in cs if not c.intermediate_task]}
        arms = {k: [v for v in vs if v is not None] for k, vs in arms.items()}
        row = {"target_task": task, "model": model, "batch_size": batch, "seq_len": seq, "dtype": dtype,
               "device": device, "cells": len(cs), "params_total": cs[0].param_count.total,
               "params_equal": len(params) == 1}
        (mw, sw, nw), (mo, so, no) = mean_std(arms["with"]), mean_std(arms["without"])
        row.update({"latency_with_ms": mw, "latency_without_ms": mo, "latency_diff_ms": mw - mo,
                    "latency_n_with": nw, "latency_n_without": no, "latency_tolerance": LATENCY_TOLERANCE})
        if nw >= 2 and no >= 2:
            pooled = math.sqrt(((nw - 1) * sw ** 2 + (no - 1) * so ** 2) / (nw + no - 2))
            half = float(student_t.ppf(TOST_LEVEL, nw + no - 2)) * pooled * math.sqrt(1 / nw + 1 / no)
            margin = LATENCY_TOLERANCE * abs(mo)
            lo, hi = mw - mo - half, mw - mo + half
            row.update({"latency_ci90_low_ms": lo, "latency_ci90_high_ms": hi, "latency_margin_ms": margin,
                        "latency_equivalent": "yes" if -margin < lo and hi < margin else "no"})
        else:
            row.update({"latency_ci90_low_ms": None, "latency_ci90_high_ms": None, "latency_margin_ms": None,
                        "latency_equivalent": "not measured"})
        rows.append(row)
    return rows
