"""report.md: the report's tables, claims, plots and benchmarks rendered as markdown (no file writes)."""
from __future__ import annotations

import io
from pathlib import Path

from repro.report.rows import published_text
from repro.tables import fmt, markdown, mean_pm


# Output: markdown (tables and plots: repro.tables, repro.report.plots)

# extra_info keys of tests/benchmarks (older names too), shown when present.
_BENCH_KEYS = ("kind", "impl", "family", "model", "head", "batch", "batch_size", "seq_len", "dtype", "device_kind")
_BENCH_EXTRA = ("params.total", "params.embedding", "params.non_embedding", "param_count.total",
                "param_count.embedding", "flops", "flops_per_batch", "tokens_per_s", "compile_s")


def render(cells, tables, claims, bench, plots, results_dir: Path, bench_path) -> str:
    n_syn = sum(c.synthetic for c in cells)
    md = io.StringIO()
    w = md.write
    w(f"# xtreme-transfer report{' — SYNTHETIC RUN' if n_syn else ''}\n\n")
    if n_syn:
        w(f"> **SYNTHETIC**: {n_syn} of {len(cells)} cells ran on synthetic data with tiny models. The numbers "
          "check that the pipeline works; they say nothing about the models or the claims of the study.\n\n")
    w(f"Results: `{results_dir}` — {len(cells)} cells, "
      f"{len({c.model.name for c in cells})} models, {len({c.target_task for c in cells})} target tasks, "
      f"seeds {', '.join(str(s) for s in sorted({c.seed for c in cells}))}. "
      "Scores are the target task's primary metric; mean ± sample std over seeds (n = seeds); "
      "the difference is with − without intermediate training, paired by seed.\n\n")

    w("## Target scores with and without intermediate training\n\n")
    for task in sorted({r["target_task"] for r in tables["per_language"]}):
        rows = [r for r in tables["per_language"] if r["target_task"] == task]
        w(f"### {task} ({rows[0]['metric']})\n\n")
        sources = sorted({r["published_source"] for r in rows if "published_source" in r})
        w(markdown(["model", "intermediate", "language", "without", "with", "difference", "published (context)"],
                    [[r["model"], r["intermediate_task"], r["language"],
                      mean_pm(r["without_mean"], r["without_std"], r["without_n"]),
                      mean_pm(r["with_mean"], r["with_std"], r["with_n"]),
                      mean_pm(r["diff_mean"], r["diff_std"], r["diff_n"]), published_text(r)] for r in rows]))
        if sources:
            w(f"\nPublished: {'; '.join(sources)}. Other models, the paper's own split and language set: a sanity "
              "range, not a comparison. Our average is over the languages above.\n")
        else:
            w("\nPublished: no number of the XTREME papers is recorded for this task (repro/report/published.py).\n")
        if f"scores_{task}.png" in plots:
            w(f"\n![{task} scores](plots/scores_{task}.png)\n")
        w("\n")

    if tables["missing_languages"] or tables["dropped"]:
        w("## Data not scored\n\n")
    if tables["missing_languages"]:
        w("Languages of a target that were not evaluated (the data source lacks them; `eval.missing_languages: "
          "skip`). They are in no average above.\n\n")
        w(markdown(["task", "language", "why", "cells"],
                    [[r["target_task"], r["language"], r["why"], r["cells"]] for r in tables["missing_languages"]]))
        w("\n")
    if tables["dropped"]:
        w("Rows the loaders dropped (no gold label, answer text not in its context), per cell and split.\n\n")
        w(markdown(["cell", "part", "reason", "rows"],
                    [[r["cell_id"], r["part"], r["reason"], r["rows"]] for r in tables["dropped"]]))
        w("\n")

    w("## Transfer gap (English − mean of the other languages)\n\n")
    w(markdown(["task", "model", "intermediate", "gap without", "gap with", "difference"],
                [[r["target_task"], r["model"], r["intermediate_task"],
                  mean_pm(r["gap_without_mean"], r["gap_without_std"], r["gap_without_n"]),
                  mean_pm(r["gap_with_mean"], r["gap_with_std"], r["gap_with_n"]),
                  mean_pm(r["gap_diff_mean"], r["gap_diff_std"], r["gap_diff_n"])] for r in tables["transfer_gap"]]))
    if "transfer_gap.png" in plots:
        w("\n![transfer gap](plots/transfer_gap.png)\n")

    w("\n## Efficiency\n\n### Parameters and inference latency (results files)\n\n")
    w(markdown(["task", "model", "total", "embedding", "non-embedding", "trainable", "latency ms", "batch", "seq",
                 "dtype", "device"],
                [[r["target_task"], r["model"], r["params_total"], r["params_embedding"], r["params_non_embedding"],
                  r["params_trainable"], mean_pm(r["latency_ms_mean"], r["latency_ms_std"], r["latency_n"]),
                  r["batch_size"], r["seq_len"], r["dtype"], r["device"]] for r in tables["efficiency"]]))
    w("\n### Accuracy vs latency and parameters (Pareto front: no other point is cheaper and better)\n\n")
    w(markdown(["task", "model", "intermediate", "score", "latency ms", "parameters", "front (latency)",
                 "front (params)"],
                [[r["target_task"], r["model"], r["intermediate_task"], mean_pm(r["score_mean"], r["score_std"], r["n"]),
                  r["latency_ms"], r["params_total"], r["pareto_latency"], r["pareto_params"]]
                 for r in tables["accuracy_efficiency"]]))
    w("\n" + "".join(f"![{p}](plots/{p})\n" for p in plots if p.startswith("pareto_")))
    w("\n### Training compute\n\n")
    w(markdown(["task", "model", "intermediate", "phase", "phase task", "examples", "epochs", "steps", "tokens",
                 "FLOPs", "wall time s", "n"],
                [[r["target_task"], r["model"], r["intermediate_task"], r["phase"], r["phase_task"],
                  r["train_examples_mean"], r["epochs_mean"], r["steps_mean"], r["tokens_mean"], r["flops_mean"],
                  mean_pm(r["wall_time_s_mean"], r["wall_time_s_std"], r["n"]), r["n"]]
                 for r in tables["training_cost"]]))
    if "training_cost.png" in plots:
        w("\n![training cost](plots/training_cost.png)\n")
    if bench_path is not None:
        w(f"\n### Benchmarks (`{bench_path}`)\n\n")
        cols = [k for k in _BENCH_KEYS if any(k in r for r in bench)]
        extra = [k for k in _BENCH_EXTRA if any(k in r for r in bench)]
        w(markdown(["name", *cols, "median ms", "mean ms", "std ms", "rounds", *extra],
                    [[r["name"], *(r.get(k) for k in cols), r["median_ms"], r["mean_ms"], r["stddev_ms"],
                      r.get("rounds"), *(r.get(k) for k in extra)] for r in bench]))
        if "benchmark_latency.png" in plots:
            w("\n![benchmarks](plots/benchmark_latency.png)\n")

    w("\n## Claims of the seed study\n\n")
    w("Definitions: score = the results' `average` (primary metric over languages), mean over seeds; a family "
      "is represented by its best model; best/worst/> compare scores strictly; a ≈ b when |a − b| ≤ "
      "max(1 point, pooled seed std); claims 6–10 are checked against what this run did. "
      "Full numbers: `claims.json`.\n\n")
    w(markdown(["#", "claim", "verdict", "numbers"],
                [[str(c.id), c.text, f"**{c.verdict}**", c.evidence] for c in claims]))

    w("\n## Environment\n\n")
    w(markdown(["cell", "synthetic", "device", "jax", "flax", "python", "commit", "finished"],
                [[r["cell_id"], r["synthetic"], r["device"], r["jax"], r["flax"], r["python"], r["commit"],
                  r["finished_at"]] for r in tables["environment"]]))
    w("\n### Config (`configs.json` has every cell's full config)\n\nOne value in every cell that has the key:\n\n")
    w(markdown(["key", "value", "cells"],
                [[r["key"], fmt(r["value"]), r["cells"]] for r in tables["config_common"]]))
    varying = tables["config_varying"]
    if varying and len(varying[0]) > 1:
        keys = [k for k in varying[0] if k != "cell_id"]
        w("\nDiffering between cells:\n\n")
        w(markdown(["cell", *keys], [[r["cell_id"], *(fmt(r[k]) for k in keys)] for r in varying]))
    return md.getvalue()


