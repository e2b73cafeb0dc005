"""The report's figures (matplotlib, Agg), each as PNG and SVG: per-language scores and the transfer gap with
their 95 % intervals, the per-language heatmap of with − without, learning curves against steps and FLOPs,
score against training size, training FLOPs, wall time with compile time apart, benchmark latency.
Input: the report's tables (repro.report.build), never results files."""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from repro.results import NONE


def bench_label(r: dict) -> str:
    parts = [str(r[k]) for k in ("kind", "impl", "model", "head", "batch", "batch_size", "seq_len", "dtype")
             if r.get(k) is not None]
    return " ".join(parts) or r["name"]


def _num(v) -> float:
    return math.nan if v is None or v == "" else float(v)


def interval(row: dict, prefix: str) -> tuple[float, float] | None:
    """(distance below, distance above) the mean of the row's interval, or None where it has none: a bar
    without an interval gets no error bar at all (never a zero-height one)."""
    m, lo, hi = _num(row.get(f"{prefix}_mean")), _num(row.get(f"{prefix}_ci_low")), _num(row.get(f"{prefix}_ci_high"))
    if any(math.isnan(v) for v in (m, lo, hi)):
        return None
    return max(m - lo, 0.0), max(hi - m, 0.0)


def ci_contains_zero(row: dict, prefix: str = "diff") -> bool | None:
    lo, hi = _num(row.get(f"{prefix}_ci_low")), _num(row.get(f"{prefix}_ci_high"))
    return None if math.isnan(lo) or math.isnan(hi) else lo <= 0 <= hi


def _bars(ax, xs, ys, width, rows, prefix, **kw):
    ax.bar(xs, ys, width, **kw)
    errs = [(x, y, interval(r, prefix)) for x, y, r in zip(xs, ys, rows) if r is not None]
    errs = [(x, y, e) for x, y, e in errs if e is not None and not math.isnan(y)]
    if errs:
        ax.errorbar([x for x, _, _ in errs], [y for _, y, _ in errs],
                    yerr=[[e[0] for _, _, e in errs], [e[1] for _, _, e in errs]], fmt="none", ecolor="black",
                    capsize=2, lw=0.8)


def _suffix(size: str, sizes: set) -> str:
    return "" if len(sizes) <= 1 else f"_n{size}"


def write_plots(tables: dict[str, list[dict]], bench: list[dict], plot_dir: Path, synthetic: bool) -> list[str]:
    """The figures of the report's tables into plot_dir (PNG and, beside it, SVG); returns the PNG names."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    matplotlib.rcParams["svg.fonttype"] = "none"     # SVG text stays text
    tag = " [SYNTHETIC]" if synthetic else ""
    written = []

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(plot_dir / name, dpi=100)
        fig.savefig(plot_dir / f"{name[:-4]}.svg")
        plt.close(fig)
        written.append(name)

    per_lang = tables["per_language"]
    sizes_of = defaultdict(set)
    for r in per_lang:
        sizes_of[r["target_task"]].add(r["train_size"])

    # per-language scores with intervals
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task and r["train_size"] == size]
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
                ys = [_num(src[lang][f"{prefix}_mean"]) if lang in src else math.nan for lang in langs]
                xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(langs))]
                _bars(ax, xs, ys, width, [src.get(lang) for lang in langs], prefix, color=color,
                      label="no intermediate" if prefix == "without" else f"int. {inter}")
            ax.set_xticks(range(len(langs)), [lang.replace("_", " ") for lang in langs], rotation=60, fontsize=7)
            ax.set_title(model, fontsize=9)
            ax.set_ylabel(mr[0]["metric"])
            ax.legend(fontsize=7)
        fig.suptitle(f"{task}: score per language, 95% CI{tag}", fontsize=10)
        save(fig, f"scores_{task}{_suffix(size, sizes_of[task])}.png")

    # heatmap of with − without, cells whose interval contains 0 hatched
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task and r["train_size"] == size
                and r["intermediate_task"] != NONE and not math.isnan(_num(r["diff_mean"]))]
        if not rows:
            continue
        pairs = list(dict.fromkeys((r["model"], r["intermediate_task"]) for r in rows))
        langs = list(dict.fromkeys(r["language"] for r in rows))
        at = {(r["model"], r["intermediate_task"], r["language"]): r for r in rows}
        grid = [[_num(at[(m, i, lang)]["diff_mean"]) if (m, i, lang) in at else math.nan for lang in langs]
                for m, i in pairs]
        span = max([abs(v) for row in grid for v in row if not math.isnan(v)] + [1e-9])
        fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(langs) + 2.5), 0.6 * len(pairs) + 1.8))
        im = ax.imshow(grid, cmap="RdBu", norm=TwoSlopeNorm(0, -span, span), aspect="auto")
        for y, (m, i) in enumerate(pairs):
            for x, lang in enumerate(langs):
                r = at.get((m, i, lang))
                if r is None:
                    continue
                open_ = ci_contains_zero(r)
                if open_ is not False:
                    ax.add_patch(matplotlib.patches.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///",
                                                              edgecolor="#777777", lw=0))
                ax.text(x, y, f"{_num(r['diff_mean']):.1f}", ha="center", va="center", fontsize=6,
                        fontweight="normal" if open_ is not False else "bold")
        ax.set_xticks(range(len(langs)), [lang.replace("_", " ") for lang in langs], rotation=60, fontsize=7)
        ax.set_yticks(range(len(pairs)), [f"{m} / {i}" for m, i in pairs], fontsize=7)
        fig.colorbar(im, ax=ax, label="with − without")
        ax.set_title(f"{task}: with − without intermediate training (hatched: 95% CI contains 0 or none){tag}",
                     fontsize=9)
        save(fig, f"heatmap_{task}{_suffix(size, sizes_of[task])}.png")

    gap = tables["transfer_gap"]
    if gap:
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(gap) + 2), 3.6))
        labels = [f"{r['target_task']}\n{r['model']}\n{r['intermediate_task']}" for r in gap]
        xs = list(range(len(gap)))
        _bars(ax, [x - 0.2 for x in xs], [_num(r["gap_without_mean"]) for r in gap], 0.4,
              [{"without_mean": r["gap_without_mean"], "without_ci_low": r.get("gap_without_ci_low"),
                "without_ci_high": r.get("gap_without_ci_high")} for r in gap], "without",
              label="no intermediate", color="#999999")
        _bars(ax, [x + 0.2 for x in xs], [_num(r["gap_with_mean"]) for r in gap], 0.4,
              [{"with_mean": r["gap_with_mean"], "with_ci_low": r.get("gap_with_ci_low"),
                "with_ci_high": r.get("gap_with_ci_high")} for r in gap], "with", label="with intermediate")
        ax.set_xticks(xs, labels, fontsize=7)
        ax.set_ylabel("en − mean(other languages)")
        ax.set_title(f"Transfer gap, 95% CI{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "transfer_gap.png")

    # learning curves: English dev against target steps and against total training FLOPs
    curves = tables.get("learning_curves", [])
    for task in sorted({r["target_task"] for r in curves}):
        rows = [r for r in curves if r["target_task"] == task]
        panels = sorted({(r["model"], r["train_size"]) for r in rows})
        fig, axes = plt.subplots(len(panels), 2, figsize=(9, 3.2 * len(panels)), squeeze=False)
        for (model, size), (ax_s, ax_f) in zip(panels, axes):
            for k, inter in enumerate(sorted({r["intermediate_task"] for r in rows}, key=lambda i: i != NONE)):
                sub = [r for r in rows if r["model"] == model and r["train_size"] == size
                       and r["intermediate_task"] == inter]
                if not sub:
                    continue
                color = "#777777" if inter == NONE else f"C{k}"
                label = "no intermediate" if inter == NONE else f"int. {inter}"
                by_step: dict[int, list[dict]] = defaultdict(list)
                for r in sub:
                    by_step[r["step"]].append(r)
                seeds = len({r["seed"] for r in sub})
                steps = sorted(s for s, rs in by_step.items() if len(rs) == seeds)
                for ax, xkey in ((ax_s, "step"), (ax_f, "total_flops")):
                    xs = [sum(r[xkey] for r in by_step[s]) / seeds for s in steps]
                    ys = [sum(r["dev"] for r in by_step[s]) / seeds for s in steps]
                    ax.plot(xs, ys, "o-", ms=3, color=color, label=f"{label} (mean of {seeds})")
                    if seeds > 1:
                        ax.fill_between(xs, [min(r["dev"] for r in by_step[s]) for s in steps],
                                        [max(r["dev"] for r in by_step[s]) for s in steps], color=color, alpha=0.15)
            ax_s.set_xlabel("target steps")
            ax_f.set_xlabel("training FLOPs (target + share of the intermediate run)")
            ax_f.set_xscale("log")
            for ax in (ax_s, ax_f):
                ax.set_ylabel("English dev")
                ax.set_title(f"{model}, train size {size}", fontsize=9)
                ax.legend(fontsize=7)
        fig.suptitle(f"{task}: learning curves (band: min–max over seeds){tag}", fontsize=10)
        save(fig, f"curves_{task}.png")

    # sample efficiency
    eff = tables.get("sample_efficiency", [])
    for task in sorted({r["target_task"] for r in eff}):
        rows = [r for r in eff if r["target_task"] == task]
        fig, ax = plt.subplots(figsize=(5.5, 4))
        for k, (model, inter) in enumerate(sorted({(r["model"], r["intermediate_task"]) for r in rows})):
            sub = sorted((r for r in rows if r["model"] == model and r["intermediate_task"] == inter),
                         key=lambda r: r["train_examples"])
            xs, ys = [r["train_examples"] for r in sub], [_num(r["mean"]) for r in sub]
            ax.plot(xs, ys, "o-" if inter != NONE else "s--", color=f"C{k}", label=f"{model} / {inter}")
            errs = [(x, y, interval({"m_mean": r["mean"], "m_ci_low": r["ci_low"], "m_ci_high": r["ci_high"]}, "m"))
                    for x, y, r in zip(xs, ys, sub)]
            errs = [e for e in errs if e[2] is not None]
            if errs:
                ax.errorbar([e[0] for e in errs], [e[1] for e in errs], yerr=[[e[2][0] for e in errs],
                            [e[2][1] for e in errs]], fmt="none", ecolor=f"C{k}", capsize=2)
        ax.set_xscale("log")
        ax.set_xlabel("target training examples")
        ax.set_ylabel(f"{rows[0]['score'].replace('_', ' ')}, 95% CI")
        ax.set_title(f"{task}: score against training size{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, f"sample_efficiency_{task}.png")

    cost = tables.get("cost", [])
    if cost:
        keys = list(dict.fromkeys((r["target_task"], r["model"], r["train_size"], r["intermediate_task"])
                                  for r in cost))

        def mean_of(k, col):
            vs = [_num(r.get(col)) for r in cost if (r["target_task"], r["model"], r["train_size"],
                                                    r["intermediate_task"]) == k]
            vs = [v for v in vs if not math.isnan(v)]
            return sum(vs) / len(vs) if vs else 0.0

        labels = ["\n".join(map(str, k)) for k in keys]
        fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(keys) + 2), 3.8))
        inter = [mean_of(k, "intermediate_flops_share") for k in keys]
        target = [mean_of(k, "target_flops") for k in keys]
        ax.bar(range(len(keys)), inter, 0.6, label="intermediate (share of the shared run)", color="C1")
        ax.bar(range(len(keys)), target, 0.6, bottom=inter, label="target", color="C0")
        ax.set_xticks(range(len(keys)), labels, fontsize=6)
        ax.set_ylabel("training FLOPs (mean over seeds)")
        ax.set_title(f"Training cost in FLOPs{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "training_flops.png")

        fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(keys) + 2), 3.8))
        parts = (("compile_s", "compile", "C3"), ("eval_s", "dev evaluation", "C2"),
                 ("checkpoint_s", "checkpoints", "C4"), ("steps_s", "training steps", "C0"))
        for offset, phase in ((-0.2, "intermediate"), (0.2, "target")):
            bottom = [0.0] * len(keys)
            for col, label, color in parts:
                ys = [mean_of(k, f"{phase}_{col}") for k in keys]
                ax.bar([x + offset for x in range(len(keys))], ys, 0.38, bottom=bottom, color=color,
                       hatch="//" if phase == "intermediate" else None,
                       label=f"{label}" if phase == "target" else None)
                bottom = [b + y for b, y in zip(bottom, ys)]
        ax.set_xticks(range(len(keys)), labels, fontsize=6)
        ax.set_ylabel("wall time, s (hatched: intermediate run, whole)")
        ax.set_title(f"Wall time, compilation apart{tag}", fontsize=10)
        ax.legend(fontsize=7)
        save(fig, "wall_time.png")

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
