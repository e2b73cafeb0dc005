"""The report's plots (matplotlib, Agg): per-language scores, transfer gap, accuracy vs cost with the Pareto
front, training cost, benchmark latency. Input: the report's tables (repro.report), never results files."""
from __future__ import annotations

import math
from pathlib import Path

from repro.results import NONE


def bench_label(r: dict) -> str:
    parts = [str(r[k]) for k in ("kind", "impl", "model", "head", "batch", "batch_size", "seq_len", "dtype")
             if r.get(k) is not None]
    return " ".join(parts) or r["name"]


def write_plots(tables: dict[str, list[dict]], bench: list[dict], plot_dir: Path, synthetic: bool) -> list[str]:
    """PNG plots of the report's tables into plot_dir; returns the file names written."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tag = " [SYNTHETIC]" if synthetic else ""
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(plot_dir / name, dpi=100)
        plt.close(fig)
        written.append(name)

    per_lang = tables["per_language"]
    for task in sorted({r["target_task"] for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task]
        models = sorted({r["model"] for r in rows})
        fig, axes = plt.subplots(1, len(models), figsize=(max(4.5, 4.5 * len(models)), 3.6), squeeze=False)
        for ax, model in zip(axes[0], models):
            mr = [r for r in rows if r["model"] == model]
            langs = list(dict.fromkeys(r["language"] for r in mr))
            series = [("without", NONE, "#999999")] + [
                ("with", i, None) for i in sorted({r["intermediate_task"] for r in mr} - {NONE})]
            width = 0.8 / len(series)
            for k, (prefix, inter, color) in enumerate(series):
                src = {r["language"]: r for r in mr if prefix == "without" or r["intermediate_task"] == inter}
                ys = [src[lang][f"{prefix}_mean"] if lang in src else math.nan for lang in langs]
                es = [src[lang][f"{prefix}_std"] if lang in src else math.nan for lang in langs]
                es = [0.0 if math.isnan(e) else e for e in es]
                xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(langs))]
                ax.bar(xs, ys, width, yerr=es, label="no intermediate" if prefix == "without" else f"int. {inter}",
                       color=color, capsize=2)
            ax.set_xticks(range(len(langs)), langs, rotation=45, fontsize=8)
            ax.set_title(model, fontsize=9)
            ax.set_ylabel(mr[0]["metric"])
            ax.legend(fontsize=7)
        fig.suptitle(f"{task}: score per language{tag}", fontsize=10)
        save(fig, f"scores_{task}.png")

    gap = tables["transfer_gap"]
    if gap:
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(gap) + 2), 3.6))
        labels = [f"{r['target_task']}\n{r['model']}\n{r['intermediate_task']}" for r in gap]
        xs = range(len(gap))
        ax.bar([x - 0.2 for x in xs], [r["gap_without_mean"] for r in gap], 0.4, label="no intermediate",
               color="#999999")
        ax.bar([x + 0.2 for x in xs], [r["gap_with_mean"] for r in gap], 0.4, label="with intermediate")
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel("en − mean(other languages)")
        ax.set_title(f"Transfer gap{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "transfer_gap.png")

    acc = tables["accuracy_efficiency"]
    for task in sorted({r["target_task"] for r in acc}):
        rows = [r for r in acc if r["target_task"] == task]
        for cost, label, flag in (("latency_ms", "inference latency, ms (median)", "pareto_latency"),
                                  ("params_total", "parameters", "pareto_params")):
            pts = [r for r in rows if not math.isnan(float(r[cost]))]
            if not pts:
                continue
            fig, ax = plt.subplots(figsize=(5.5, 4))
            for r in pts:
                ax.scatter(float(r[cost]), r["score_mean"], marker="o" if r["intermediate_task"] == NONE else "^",
                           color="C3" if r[flag] else "C0")
                ax.annotate(f"{r['model']} / {r['intermediate_task']}", (float(r[cost]), r["score_mean"]),
                            fontsize=7, xytext=(3, 3), textcoords="offset points")
            front = sorted((float(r[cost]), r["score_mean"]) for r in pts if r[flag])
            ax.step([p[0] for p in front], [p[1] for p in front], "C3--", where="post", label="Pareto front")
            ax.set_xlabel(label)
            ax.set_ylabel(f"{rows[0]['metric']} (mean over languages)")
            ax.set_title(f"{task}: accuracy vs {cost.split('_')[0]}{tag}", fontsize=10)
            ax.legend(fontsize=7)
            save(fig, f"pareto_{cost.split('_')[0]}_{task}.png")

    phases = tables["training_cost"]
    if phases:
        keys = list(dict.fromkeys((r["target_task"], r["model"], r["intermediate_task"]) for r in phases))
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(keys) + 2), 3.6))
        bottom = [0.0] * len(keys)
        for phase, color in (("intermediate", "C1"), ("target", "C0")):
            ys = [next((r["wall_time_s_mean"] for r in phases if (r["target_task"], r["model"],
                        r["intermediate_task"]) == k and r["phase"] == phase), 0.0) for k in keys]
            ax.bar(range(len(keys)), ys, 0.6, bottom=bottom, label=f"{phase} training", color=color)
            bottom = [b + y for b, y in zip(bottom, ys)]
        ax.set_xticks(range(len(keys)), ["\n".join(k) for k in keys], fontsize=7)
        ax.set_ylabel("wall time, s (mean over seeds)")
        ax.set_title(f"Training cost{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "training_cost.png")

    if bench:
        fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(bench) + 2), 3.6))
        labels = [bench_label(r) for r in bench]
        ax.bar(range(len(bench)), [r["median_ms"] for r in bench],
               color=["C0" if r.get("impl", "jax") == "jax" else "C1" for r in bench])
        ax.set_xticks(range(len(bench)), labels, rotation=60, ha="right", fontsize=6)
        ax.set_ylabel("median latency, ms")
        ax.set_title("Benchmarks (pytest-benchmark; blue: jax, orange: other)", fontsize=10)
        save(fig, "benchmark_latency.png")
    return written
