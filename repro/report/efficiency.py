"""Efficiency where the two arms can differ: the target's English dev learning curve against steps and FLOPs,
the steps and FLOPs an intermediate-trained cell needs to reach its no-intermediate twin's best dev score,
each cell's total training cost with the shared intermediate phase divided among the targets reusing it, the
change in the zero-shot average per unit of that cost, and the score against the target's training size.

And where they cannot: parameters and inference latency are the same network with and without intermediate
training, so `identical_by_construction_rows` only checks that the measurements agree within their noise.
Input: the cells' results (repro.results) and the run's Bootstrap (repro.report.stats); output: rows.
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict

from scipy.stats import t as student_t

from repro.report.rows import NON_ENGLISH, arm_groups, size_label, statistic, with_minus_without
from repro.report.stats import Bootstrap, mean_std
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


# ---- learning curves and steps to the twin's best --------------------------------------------------------
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


def steps_to_target_rows(cells) -> list[dict]:
    """For each cell with intermediate training and its twin without (same model, target, train size, seed):
    the twin's best English dev score, and the target steps / FLOPs each needed to reach it ("never")."""
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
        goal = max(p.dev for p in twin_curve)
        own = first_reaching(twin_curve, goal)
        hit = first_reaching(curve, goal)
        row.update({"twin_best_dev": goal, "twin_steps": own.step, "twin_flops": own.flops,
                    "best_dev": max(p.dev for p in curve)})
        if hit is None:
            row.update({"reached": NEVER, "steps": None, "target_flops": None, "total_flops": None,
                        "step_ratio": None, "total_flops_ratio": None})
        else:
            total = hit.flops + amortised_intermediate_flops(c, shares)
            row.update({"reached": "yes", "steps": hit.step, "target_flops": hit.flops, "total_flops": total,
                        "step_ratio": hit.step / own.step if own.step else None,
                        "total_flops_ratio": total / own.flops if own.flops else None})
        rows.append(row)
    return rows


def steps_to_target_summary(rows) -> list[dict]:
    """steps_to_target_rows per (target, model, train size, intermediate task): in how many seeds the twin's
    best was reached, the mean steps and total-FLOPs ratio over the seeds that reached it."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["target_task"], r["model"], r["train_size"], r["intermediate_task"])].append(r)
    out = []
    for (task, model, size, inter), rs in groups.items():
        hit = [r for r in rs if r["reached"] == "yes"]
        curves = [r for r in rs if r["reached"] != NO_CURVE]
        out.append({"target_task": task, "model": model, "train_size": size, "intermediate_task": inter,
                    "same_data_as_target": rs[0]["same_data_as_target"], "seeds": len(rs),
                    "with_curve": len(curves), "reached": len(hit),
                    "twin_best_dev": mean_std([r["twin_best_dev"] for r in curves])[0] if curves else None,
                    "twin_steps": mean_std([r["twin_steps"] for r in curves])[0] if curves else None,
                    "steps": mean_std([r["steps"] for r in hit])[0] if hit else None,
                    "total_flops_ratio": mean_std([r["total_flops_ratio"] for r in hit])[0] if hit else None})
    return out


# ---- the zero-shot gain per unit of cost ----------------------------------------------------------------
def cost_effect_rows(cells, boot: Bootstrap) -> list[dict]:
    """Per (target, model, train size, intermediate task): the change in the non-English average (paired,
    with its interval), the mean total training FLOPs of each arm, and the change per extra PFLOP."""
    totals = {r["cell_id"]: r["total_flops"] for r in cost_rows(cells)}
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
            extra = cost_w - cost_wo
            lo, hi = diff.ci()
            per = (lambda v: v / (extra / PFLOP)) if extra > 0 else (lambda v: math.nan)
            rows.append({"target_task": task, "model": model, "train_size": size_label(size),
                         "intermediate_task": inter, "same_data_as_target": with_[0].same_data_as_target,
                         "delta_non_english": diff.point, "delta_ci_low": lo, "delta_ci_high": hi,
                         "ci_method": diff.method, "total_flops_with": cost_w, "total_flops_without": cost_wo,
                         "extra_flops": extra, "cost_ratio": cost_w / cost_wo if cost_wo else math.nan,
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
def identical_by_construction_rows(cells) -> list[dict]:
    """Per (target, model, inference shape): parameter counts of every cell equal, and the latency medians of
    the two arms within noise: |mean with − mean without| ≤ t · s · sqrt(1/n_with + 1/n_without), s the pooled
    spread of the two arms' measurements and t the 97.5 % Student-t quantile (the two-sample 95 % interval of
    the difference contains 0; needs two measurements per arm, else "not measured")."""
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
                    "latency_n_with": nw, "latency_n_without": no})
        if nw >= 2 and no >= 2:
            pooled = math.sqrt(((nw - 1) * sw ** 2 + (no - 1) * so ** 2) / (nw + no - 2))
            bound = float(student_t.ppf(0.975, nw + no - 2)) * pooled * math.sqrt(1 / nw + 1 / no)
            row.update({"latency_noise_bound_ms": bound, "latency_within_noise": abs(mw - mo) <= bound})
        else:
            row.update({"latency_noise_bound_ms": None, "latency_within_noise": "not measured"})
        rows.append(row)
    return rows
