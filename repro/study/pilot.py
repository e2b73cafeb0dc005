"""Size a study from a pilot: `python -m repro plan CONFIG --pilot RESULTS_DIR`.

The pilot's results folder gives, per primary endpoint (each target's non-English average, or average; each
arm − baseline contrast; repro.report.rows), the per-seed variance of the paired difference and the example
component the seeds share (repro.report.stats.Estimate). From those, the seeds at which the minimum
detectable effect (80 % power, two-sided 5 %) would be at most δ, for δ = 1 and 2 points; the study needs
the largest of them over the endpoints. The grid of CONFIG is then priced at that seed count: its cost per
seed (repro.study.plan, the config's own seeds) times the seeds, since a seed changes the data order and
the initialisation, not the steps or FLOPs. An endpoint whose example component alone keeps the MDE above δ
needs more evaluation examples, not seeds: it is listed with the examples per language it needs and left
out of the seed count.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from repro import tables
from repro.errors import UserError

DELTAS = (1.0, 2.0)          # points


@dataclasses.dataclass(frozen=True)
class Endpoint:
    target_task: str
    model: str
    contrast: str               # "arm − baseline"
    endpoint: str               # non_english | average
    pilot_seeds: int
    mde: float | None           # points, at the pilot's seeds
    seeds_needed: dict          # δ (points) -> seeds, None where unreachable at this evaluation size
    examples_needed: dict       # δ (points) -> examples per language below which no seed count reaches δ
    examples: int | None        # the pilot's paired examples per language (fewest)
    why: str = ""               # why the pilot gives no interval here (then nothing is estimated from it)


def pilot_endpoints(results_dir: str | Path, deltas=DELTAS, resamples: int | None = None) -> list[Endpoint]:
    """The primary endpoints of a pilot results folder (each target, model, train size and contrast), with the
    seeds each δ needs. The bootstrap is the report's (its resamples and RNG seed unless `resamples` is given),
    so the plan and the report print the same seeds and MDE."""
    from repro.report.rows import (_common_languages, arm_groups, contrasts, point_unit, primary_key, statistic,
                                   with_minus_without)
    from repro.report.stats import RESAMPLES, Bootstrap
    from repro.results import load_cells, load_predictions, read_json, result_paths

    results_dir = check_dir(results_dir)
    cells = load_cells(results_dir)
    dirs = {read_json(p)["cell_id"]: p.parent for p in result_paths(results_dir)}
    boot = Bootstrap(cells, {c.cell_id: load_predictions(dirs[c.cell_id], c) for c in cells},
                     resamples=RESAMPLES if resamples is None else resamples)
    out = []
    for (task, model, _size), by_inter in arm_groups(cells).items():
        unit = point_unit(cells, task)
        for arm, baseline, _name in contrasts(by_inter):
            a, b = by_inter.get(arm, []), by_inter.get(baseline, [])
            languages = _common_languages(a, b)
            key = primary_key(languages)
            e = with_minus_without(boot, a, b, statistic(key, languages)[0]) if a and b and languages else None
            if e is None:
                continue
            out.append(Endpoint(task, model, f"{arm} − {baseline}", key, e.seeds,
                                e.mde() / unit if e.has_ci else None,
                                {d: e.seeds_needed(d * unit) for d in deltas},
                                {d: e.examples_needed(d * unit) for d in deltas}, e.examples, e.no_ci))
    if not out:
        raise UserError(f"plan: --pilot {results_dir}: no primary endpoint with both arms of a contrast (a pilot "
                        "needs cells with and without intermediate training, on the same seeds)")
    return out


def seeds_for(endpoints: list[Endpoint], delta: float) -> tuple[int | None, list[Endpoint]]:
    """(the seeds the study needs for δ: the largest over the endpoints that seeds can bring to δ, the
    endpoints that no seed count brings to δ at the pilot's evaluation size)."""
    sized = [e for e in endpoints if not e.why]
    reachable = [e.seeds_needed[delta] for e in sized if e.seeds_needed[delta] is not None]
    return (max(reachable) if reachable else None), [e for e in sized if e.seeds_needed[delta] is None]


def price(flops_per_seed: float, seeds: int, hours_of=None) -> tuple[float, float | None]:
    """(training FLOPs, device-hours) of the grid at `seeds` seeds, from its FLOPs per seed."""
    flops = flops_per_seed * seeds
    return flops, (hours_of(flops) if hours_of else None)


def render(endpoints: list[Endpoint], grid_flops: float, grid_seeds: int, dev=None, deltas=DELTAS) -> str:
    """The pilot's table and the grid priced at each δ's seed count."""
    per_seed = grid_flops / grid_seeds
    lines = ["pilot: primary endpoints (MDE at 80 % power; seeds for MDE <= delta at the pilot's evaluation size)"]
    lines.append(tables.text(
        ["target", "model", "arm - baseline", "endpoint", "pilot seeds", "MDE", *(f"seeds for {d:g} pt" for d in deltas),
         "examples/lang"],
        [[e.target_task, e.model, e.contrast.replace("−", "-"), e.endpoint, e.pilot_seeds,
          "-" if e.mde is None else f"{e.mde:.2f}",
          *(f"- ({e.why})" if e.why else "more examples" if e.seeds_needed[d] is None else e.seeds_needed[d]
            for d in deltas),
          "-" if e.examples is None else e.examples] for e in endpoints]).rstrip("\n"))
    for d in deltas:
        k, stuck = seeds_for(endpoints, d)
        if k is None:
            lines.append(f"delta = {d:g} point(s): no endpoint of the pilot can be sized (see the table)")
        else:
            flops, hours = price(per_seed, k, dev.hours if dev else None)
            cost = f"{tables.fmt(flops)} training FLOPs"
            if hours is not None:
                cost += f", {tables.fmt(hours)} device-hours ({tables.fmt(hours / 24)} device-days) on {dev.name}"
            lines.append(f"delta = {d:g} point(s): {k} seeds -> {cost} (the grid's {tables.fmt(per_seed)} FLOPs a "
                         f"seed x {k})")
        for e in stuck:
            need = e.examples_needed[d]
            lines.append(f"  {e.target_task}/{e.model} {e.contrast.replace('−', '-')}: the example component alone "
                         f"keeps the MDE above {d:g}; needs"
                         + (f" >= {need:,} examples per language (has {e.examples})" if need else " more examples")
                         + " - not counted above")
    if not dev:
        lines.append("device-hours: pass --device (and --mfu)")
    return "\n".join(lines)


def grid_seed_count(cfg) -> int:
    return max(len(cfg.grid.seeds), 1)


def check_dir(path) -> Path:
    p = Path(path)
    if not (p / "cells").is_dir():
        raise UserError(f"plan: --pilot {path}: not a results folder (no cells/ inside)")
    return p

