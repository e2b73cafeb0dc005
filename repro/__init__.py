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
"""
