"""Where a finished grid's wall time went, from its results files: the issue-30 overhead measure.

    python -m tests.benchmarks.grid_cost RUN_DIR --wall SECONDS [--json]

SECONDS is the grid's wall time as the user saw it (e.g. /usr/bin/time's "Elapsed" of `./run_all.sh mini ...`).
Per phase (each target phase, and each intermediate run once however many cells reuse it), results.json's
`timing` splits the phase's wall time into compilation, dev evaluation and checkpoint writes; the rest is the
train steps with their data and logging. Each cell's `timing` (results written since issue 30's cost split) adds
its own wall time and its zero-shot evaluation (featurizing, forward passes and scoring; a retrieval cell's
embedding pass) and latency measurement. Overhead = the grid's wall time minus the train steps, the dev
evaluations and the zero-shot evaluations. Cells without `timing` count their zero-shot evaluation as overhead
(an upper bound). `outside_cells_s`: the wall time no cell accounts for (process start, preflight, the
report), where every cell has `timing`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def split(run_dir: Path) -> dict:
    phases, seen, out_timed = [], set(), []
    for results in sorted((run_dir / "cells").glob("*/results.json")):
        r = json.loads(results.read_text())
        timing = r.get("timing")
        if timing:
            out_timed.append(timing)
        t = r["training"]
        phases.append(("target", t["target"]))
        inter = t.get("intermediate")
        if inter:
            c = r["config"]["cell"]
            key = (c["model"], c["intermediate_task"], c["seed"])
            if key not in seen:
                seen.add(key)
                phases.append(("intermediate", inter))
    out = {"cells": sum(1 for p, _ in phases if p == "target"), "intermediate_runs": len(seen),
           "phase_wall_s": 0.0, "compile_s": 0.0, "dev_eval_s": 0.0, "checkpoint_s": 0.0, "steps_s": 0.0,
           "cells_s": 0.0, "zero_shot_eval_s": 0.0, "latency_s": 0.0, "cells_timed": 0}
    for _, t in phases:
        timing = t.get("timing") or {}
        compile_s, eval_s, ckpt_s = (float(timing.get(k, 0.0)) for k in ("compile_s", "eval_s", "checkpoint_s"))
        out["phase_wall_s"] += t["wall_time_s"]
        out["compile_s"] += compile_s
        out["dev_eval_s"] += eval_s
        out["checkpoint_s"] += ckpt_s
        out["steps_s"] += t["wall_time_s"] - compile_s - eval_s - ckpt_s
    for timing in out_timed:
        out["cells_s"] += float(timing["cell_s"])
        out["zero_shot_eval_s"] += float(timing["zero_shot_eval_s"])
        out["latency_s"] += float(timing["latency_s"])
    out["cells_timed"] = len(out_timed)
    return {k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--wall", type=float, required=True, help="the grid's wall time in seconds")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    s = split(args.run_dir)
    s["wall_s"] = args.wall
    s["overhead_s"] = round(args.wall - s["steps_s"] - s["dev_eval_s"] - s["zero_shot_eval_s"], 1)
    if s["cells_timed"] == s["cells"]:
        s["outside_cells_s"] = round(args.wall - s["cells_s"], 1)
    s["overhead_share"] = round(s["overhead_s"] / args.wall, 3)
    if args.json:
        print(json.dumps(s))
        return
    for k, v in s.items():
        print(f"{k:>18}: {v}")


if __name__ == "__main__":
    main()
