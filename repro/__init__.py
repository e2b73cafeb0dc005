"""repro: config -> intermediate training -> target training -> zero-shot evaluation -> results -> report.

    python -m repro grid configs/smoke.yaml      (docs/pipeline.md)

config (the dataclass tree), steps (pure jitted train/eval steps), train (one phase's loop),
checkpoint (orbax latest/best), distributed (mesh, shardings, multi-host), pipeline (cells and the grid).
"""
