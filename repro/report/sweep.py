"""The hyper-parameter sweep's selection (grid.sweep, repro.config): which value each arm keeps.

As xtreme picks its fine-tuning learning rate per task on English dev, each group of cells that differ only in
their sweep point and seed (one model, one intermediate task or none, one target, one train size) keeps the
point whose mean English dev score over its seeds (`training.target.best_dev`, the score that also picked
the cell's checkpoint) is highest; ties go to the point written first in grid.sweep. Only the kept cells
enter the report's scores, intervals and claims, so each arm is compared at its own selected value and no
zero-shot language takes part in the choice. Every point's dev score, the choice, and what the sweep cost
in target-phase FLOPs are the report's "Hyper-parameter sweep" section and tables/sweep_selection.csv.
"""
from __future__ import annotations

import json
from collections import defaultdict

from repro.report.stats import mean_std
from repro.results import CellResults
from repro.config import sweep_points, sweep_suffix, sweep_value_text
from repro.tables import fmt, markdown


def point_of(cell: CellResults) -> dict:
    return dict((cell.config.get("cell") or {}).get("sweep") or {})


def _group_key(cell: CellResults) -> str:
    """Everything that names the cell except its seed and its sweep point."""
    rest = {k: v for k, v in (cell.config.get("cell") or {}).items() if k not in ("seed", "sweep")}
    return json.dumps(rest, sort_keys=True, default=str)


def select(cells: list[CellResults]) -> tuple[list[CellResults], list[dict]]:
    """(the cells the report analyses, one row per group and sweep point). Without a sweep: (cells, [])."""
    groups: dict[str, dict[str, list[CellResults]]] = defaultdict(lambda: defaultdict(list))
    for c in cells:
        point = point_of(c)
        if point:
            groups[_group_key(c)][sweep_suffix(point)].append(c)
    if not groups:
        return cells, []
    dropped: set[str] = set()
    rows = []
    for by_point in groups.values():
        order = _grid_order(next(iter(by_point.values()))[0])
        points = sorted(by_point, key=lambda p: order.index(p) if p in order else len(order))

        def dev_mean(p):
            devs = [c.training.target.best_dev for c in by_point[p] if c.training.target.best_dev is not None]
            return mean_std(devs)[0] if devs else float("-inf")

        chosen = max(points, key=lambda p: (dev_mean(p), -points.index(p)))
        for p in points:
            members = sorted(by_point[p], key=lambda c: c.seed)
            first = members[0]
            if p != chosen:
                dropped.update(c.cell_id for c in members)
            devs = {str(c.seed): c.training.target.best_dev for c in members}
            mean = dev_mean(p)
            rows.append({
                "model": first.model.name, "intermediate_task": first.intermediate_name,
                "target_task": first.target_task, "train_size": "all" if first.train_size is None else first.train_size,
                "point": ", ".join(f"{k}={sweep_value_text(v)}" for k, v in point_of(first).items()),
                "seeds": len(members), "english_dev_mean": None if mean == float("-inf") else mean,
                "english_dev_by_seed": json.dumps(devs), "dev_metric": first.metric,
                "selected": p == chosen, "target_flops": sum(c.training.target.flops for c in members),
                "cell_ids": json.dumps([c.cell_id for c in members])})
    return [c for c in cells if c.cell_id not in dropped], rows


def _grid_order(cell: CellResults) -> list[str]:
    """The sweep points in the order grid.sweep writes them (the tie-break)."""
    sweep = ((cell.config.get("grid") or {}).get("sweep")) or {}
    return [sweep_suffix(p) for p in sweep_points({k: tuple(v) for k, v in sweep.items()})]


def section(rows: list[dict]) -> str:
    """The report's markdown section ("" without a sweep)."""
    if not rows:
        return ""
    kept = [r for r in rows if r["selected"]]
    all_flops = sum(r["target_flops"] for r in rows)
    kept_flops = sum(r["target_flops"] for r in kept)
    table = markdown(
        ["target", "model", "intermediate", "train size", "value", "seeds", "English dev (mean)", "selected"],
        [[r["target_task"], r["model"], r["intermediate_task"], r["train_size"], r["point"], r["seeds"],
          "-" if r["english_dev_mean"] is None else fmt(r["english_dev_mean"]), "**yes**" if r["selected"] else ""]
         for r in rows])
    return (
        "\n## Hyper-parameter sweep: selection on English dev\n\n"
        f"grid.sweep ran {len(rows)} settings in {len(kept)} groups. As xtreme picks its learning rate per task, "
        "each group (one model, intermediate task, target and train size) keeps the value with the highest mean "
        "English dev score over its seeds (the score that picked each cell's checkpoint; no zero-shot language "
        "takes part); ties go to the value written first. Every other section of this report uses only the "
        f"selected cells, so each arm is compared at its own selected value. The sweep's target phases cost "
        f"{all_flops:.3g} training FLOPs, {all_flops / kept_flops if kept_flops else float('nan'):.2f}× those of "
        "the selected cells (intermediate runs are shared by every value). Per seed and cell: "
        "tables/sweep_selection.csv.\n\n" + table)
