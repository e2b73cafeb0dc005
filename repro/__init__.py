"""repro: config -> intermediate training -> target training -> zero-shot evaluation -> results -> report.

    python -m repro grid configs/smoke.yaml      (docs/pipeline.md)

Three rooms, each importing only downwards (tests/test_structure.py checks it):

    study/      the experiment: cell (one cell end to end), grid, plan (its cost), preflight (its data
                and models, checked before any step), shards, inputs (what a cell reads), known_sizes
    training/   one phase: loop (resume, checkpoints, log), steps (pure jitted train/eval steps),
                checkpoint (orbax latest/best), inference (predictions, scores, latency), distributed
    report/     from results files only, no jax: rows, markdown, build (files written in one rename),
                claims, stats, plots, published

and the floor they share:

    config       the run config (frozen dataclasses)   typed        YAML/JSON -> dataclass checking
    results      the results.json schema and assembly  rundir       folder layout, claims, atomic writes
    errors       the user-facing errors; `writing`     environment  device, versions, commit
    tables       the one table renderer                console, progress, signals   the terminal and stops
    __main__     the CLI: plan, preflight, run, grid, report, table

The same pipeline from Python (a notebook), each function importing jax only when it runs:

    import repro
    cfg = repro.load_config("smoke", ["grid.models=[bert-tiny]", "output_dir=runs/nb"])
    results = repro.run_cell(cfg)             # one cell: a CellResults (results.json's typed tree)
    ran, skipped, failed = repro.run_grid(cfg)
    report_dir = repro.build_report("runs/nb")
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:   # the types only; importing them at run time would import jax
    from repro.config import Config
    from repro.results import CellResults

__all__ = ["load_config", "run_cell", "run_grid", "build_report", "__version__"]


def load_config(config: str | Path, overrides: Sequence[str] = ()) -> "Config":
    """A preset's name (`smoke`), a YAML file or a run folder, with `a.b=value` overrides; checked as the CLI
    checks it (repro.config.ConfigError names the key at fault)."""
    from repro.config import load
    return load(config, list(overrides))


def _config(config: "Config | str | Path", overrides: Sequence[str]) -> "Config":
    from repro.config import Config
    if isinstance(config, Config):
        if overrides:
            raise TypeError("overrides go with a config path or name; apply them with load_config")
        cfg = config
    else:
        cfg = load_config(config, overrides)
    from repro.study import inputs
    inputs.check_tasks(cfg)
    return cfg


def run_cell(config: "Config | str | Path", overrides: Sequence[str] = ()) -> "CellResults":
    """Trains and evaluates one cell (`cell.*`, else the first value of each grid list), as `repro run`
    does without its preflight; writes `<output_dir>/cells/<cell_id>/` and returns its results."""
    from repro.study.cell import run_cell as run
    return run(_config(config, overrides))


def run_grid(config: "Config | str | Path", overrides: Sequence[str] = ()) -> tuple[list[str], list[str], dict[str, str]]:
    """Every cell of the grid, as `repro grid` does without its preflight; finished cells are skipped.
    Returns (cell ids run, cell ids already finished, {failed cell id: reason})."""
    from repro.study.grid import run_grid as run
    return run(_config(config, overrides))


def build_report(results_dir: str | Path, out_dir: str | Path | None = None, **options) -> Path:
    """The report of a run's results files (no jax): report.md, tables, figures; returns its folder.
    `options` are repro.report.build_report's (benchmarks=, resamples=, ...)."""
    from repro.report import build_report as build
    return build(results_dir, out_dir, **options)


def __getattr__(name: str):
    if name == "__version__":
        from importlib import metadata
        try:
            return metadata.version("xtreme-transfer")
        except metadata.PackageNotFoundError:
            return "0+unknown"
    raise AttributeError(f"module 'repro' has no attribute {name!r}")
