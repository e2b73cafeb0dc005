"""The report's figures (matplotlib, Agg), each as PDF and SVG for a paper and a 300-dpi PNG for report.md, all
cropped to their content: per-language scores and the transfer gap with their 95 % intervals, per-language
heatmaps of the scores and of with − without, learning curves against steps and FLOPs, score against
training size, training FLOPs, wall time with compile time apart, benchmark latency.
Input: the report's tables (repro.report.build), never results files.

Print size: no figure is wider than a two-column paper's text width (TEXT_WIDTH, 7 in) and no text is
smaller than 8 pt, so placed at its own width every label is at least 8 pt; a figure over languages grows
with their number up to that width. Titles are wrapped to the figure's width, log axes label decades only
(never the 2×10⁹ 3×10⁹ … run of minor labels), long category labels go on a horizontal bar chart's y axis.
tests/repro/test_plots.py draws every figure and checks that no two texts overlap.
"""
from __future__ import annotations

import math
import os
import textwrap
from collections import defaultdict
from pathlib import Path
from typing import Callable

from repro.errors import ConfigError
from repro.results import NONE

TEXT_WIDTH = 7.0        # inches: a two-column paper's full text width (a one-column figure: 3.3)
FONT_PT = 8             # the smallest text in any figure
FORMATS = ("png", "pdf", "svg")
LANGS_PER_PANEL = 24    # bar charts over languages: beyond this, the languages continue on another row
PNG_DPI = 300


def figure_width(n: int, per_item: float, fixed: float, least: float = 3.3) -> float:
    """A figure's width for n categories (languages, bars): fixed margins plus per_item each, within
    [least, TEXT_WIDTH]."""
    return min(TEXT_WIDTH, max(least, fixed + per_item * n))


def wrap_title(text: str, width_in: float, size: float) -> str:
    """Title text wrapped to the figure's width (an average glyph is ~0.55 em wide)."""
    chars = max(20, int(width_in * 72 / (size * 0.55)))
    return "\n".join(textwrap.wrap(text, chars, break_on_hyphens=False))


def fit_titles(fig) -> None:
    """Re-wraps each axes title to its axes' drawn width and the figure title to the figure's, measured
    with the renderer (a title wider than its figure was cut at both edges, or widened the saved image)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    pairs = [(ax.title, ax.get_window_extent(renderer).width) for ax in fig.axes if ax.get_title()]
    if getattr(fig, "_suptitle", None) is not None:
        pairs.append((fig._suptitle, fig.bbox.width))
    for text, room in pairs:
        words = " ".join(text.get_text().split())
        chars = len(words)
        while chars > 12:
            text.set_text("\n".join(textwrap.wrap(words, chars, break_on_hyphens=False)))
            if text.get_window_extent(renderer).width <= room:
                break
            chars = int(chars * 0.9)


def _few_log_ticks(lo: float, hi: float) -> list[float]:
    if not (lo > 0 and hi > lo):
        return []
    for subs in ((1.0, 3.0), (1.0, 2.0, 5.0)):
        ticks = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                 for m in subs if lo <= m * 10.0 ** k <= hi]
        if 2 <= len(ticks) <= 4:
            return ticks
    step = (math.log10(hi) - math.log10(lo)) / 4
    return [float(f"{10 ** (math.log10(lo) + step * j):.1g}") for j in (1, 2, 3)]


def log_axis(ax, which: str = "x") -> None:
    """A log axis labelled at powers of ten only (major ticks), minor ticks unlabelled; where fewer than two
    powers of ten fall inside, at 1× and 3× each decade ("3e9", "1e10"), so labels never run into each other."""
    from matplotlib import ticker

    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = (ax.get_xlim() if which == "x" else ax.get_ylim())
    axis.set_minor_formatter(ticker.NullFormatter())
    decades = math.floor(math.log10(hi)) - math.ceil(math.log10(lo)) + 1 if lo > 0 and hi > 0 else 0
    if decades >= 2:
        axis.set_major_locator(ticker.LogLocator(base=10, numticks=6))
        axis.set_major_formatter(ticker.LogFormatterSciNotation(base=10, labelOnlyBase=True))
    else:
        # 1× and 3× each decade, or 1×, 2×, 5×, or 3 rounded values: 2-4 labels, never 2×, 3×, 4× … in a row
        axis.set_major_locator(ticker.FixedLocator(_few_log_ticks(lo, hi)))
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.0e}".replace("e+", "e")))


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


WORKERS_ENV = "XT_PLOT_WORKERS"
FORMATS_ENV = "XT_PLOT_FORMATS"


def plot_formats() -> tuple[str, ...]:
    """XT_PLOT_FORMATS (comma-separated, among png, pdf, svg; png always, as report.md shows the PNGs), else all
    three. PDF and SVG are ~half of the figures' time: a draft report can leave them out."""
    raw = os.environ.get(FORMATS_ENV, "").strip()
    if not raw:
        return FORMATS
    asked = [f.strip().lower() for f in raw.split(",") if f.strip()]
    unknown = [f for f in asked if f not in FORMATS]
    if unknown or "png" not in asked:
        why = f"unknown {', '.join(map(repr, unknown))}" if unknown else "png is missing (report.md shows the PNGs)"
        raise ConfigError(f"{FORMATS_ENV}={raw!r}: {why}; expected a comma-separated list of {', '.join(FORMATS)} "
                          f"with png")
    return tuple(f for f in FORMATS if f in asked)


def plot_workers() -> int:
    """XT_PLOT_WORKERS (a positive integer), else the CPUs this process may use, at most 4."""
    raw = os.environ.get(WORKERS_ENV, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) < 1:
            raise ConfigError(f"{WORKERS_ENV}={raw!r}: expected a positive integer")
        return int(raw)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(4, cpus)


def write_plots(tables: dict[str, list[dict]], bench: list[dict], plot_dir: Path, synthetic: bool,
                inspect: Callable | None = None, workers: int | None = None) -> list[str]:
    """The figures of the report's tables into plot_dir (PNG, PDF and SVG of each, or the formats of
    XT_PLOT_FORMATS); returns the PNG names.
    inspect(name, fig), if given, sees each drawn figure before it is closed (the tests' overlap check).

    workers: processes that lay out and save the figures (default: XT_PLOT_WORKERS, else the CPUs this process
    may use, at most 4; 1 with `inspect`). Each worker builds every figure's artists and lays out and saves every
    n-th figure, so the files are those one process writes. The smoke report's 9 figures took 20 of its 22 s in
    one process; with 2 workers on 2 cores the report took 15 s."""
    plot_dir = Path(plot_dir)
    plot_dir.mkdir(parents=True, exist_ok=True)
    n = 1 if inspect is not None else (workers or plot_workers())
    formats = plot_formats()
    if n <= 1:
        return [name for _, name in _write_share(tables, bench, plot_dir, synthetic, formats, inspect, 0, 1)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # spawn: a report may run inside a process with threads (a test session, a notebook), where fork is unsafe.
    with ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn")) as pool:
        shares = [pool.submit(_write_share, tables, bench, plot_dir, synthetic, formats, None, k, n) for k in range(n)]
        written = sorted(item for share in shares for item in share.result())
    return [name for _, name in written]


def _write_share(tables, bench, plot_dir: Path, synthetic: bool, formats: tuple[str, ...], inspect, share: int,
                 shares: int) -> list[tuple[int, str]]:
    """Draws every figure and lays out and saves those whose index is `share` modulo `shares`; returns
    (index, PNG name) of the figures it saved."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    tag = " [SYNTHETIC]" if synthetic else ""
    written: list[tuple[int, str]] = []
    index = 0
    style = {"svg.fonttype": "none",            # SVG text stays text
             "pdf.fonttype": 42,                # TrueType in the PDF: editable, and what journals ask for
             "font.size": FONT_PT, "axes.titlesize": FONT_PT + 1, "axes.labelsize": FONT_PT,
             "xtick.labelsize": FONT_PT, "ytick.labelsize": FONT_PT, "legend.fontsize": FONT_PT,
             "figure.titlesize": FONT_PT + 1, "savefig.bbox": "tight", "savefig.pad_inches": 0.02}

    def title(fig_or_ax, text, suptitle=False):
        width = fig_or_ax.get_figwidth() if suptitle else fig_or_ax.figure.get_figwidth() * \
            fig_or_ax.get_position().width
        wrapped = wrap_title(text, width, FONT_PT + 1)
        return fig_or_ax.suptitle(wrapped) if suptitle else fig_or_ax.set_title(wrapped)

    def save(fig, name):
        nonlocal index
        i, index = index, index + 1
        if i % shares != share:   # another worker's figure
            plt.close(fig)
            return
        fig.tight_layout()
        fit_titles(fig)
        top = 1.0
        if getattr(fig, "_suptitle", None) is not None:   # the axes start below the figure title, whatever its lines
            fig.canvas.draw()
            top = 1.0 - (fig._suptitle.get_window_extent(fig.canvas.get_renderer()).height + 6) / fig.bbox.height
        fig.tight_layout(rect=(0, 0, 1, top))
        stem = name[:-4]
        for fmt_ in formats:
            fig.savefig(plot_dir / f"{stem}.{fmt_}", **({"dpi": PNG_DPI} if fmt_ == "png" else {}))
        if inspect is not None:
            inspect(name, fig)
        plt.close(fig)
        written.append((i, name))

    with matplotlib.rc_context(style):
        _draw(tables, bench, synthetic, tag, plt, TwoSlopeNorm, matplotlib, title, save)
    return written


def _draw(tables, bench, synthetic, tag, plt, TwoSlopeNorm, matplotlib, title, save) -> None:

    per_lang = tables["per_language"]
    sizes_of = defaultdict(set)
    for r in per_lang:
        sizes_of[r["target_task"]].add(r["train_size"])

    # per-language scores with intervals
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task and r["train_size"] == size]
        models = sorted({r["model"] for r in rows})
        all_langs = list(dict.fromkeys(r["language"] for r in rows))
        n_series = len({r["intermediate_task"] for r in rows} | {NONE})
        # At most LANGS_PER_PANEL languages side by side (8-pt labels need ~0.15 in each); more go on further rows.
        parts = math.ceil(len(all_langs) / LANGS_PER_PANEL)
        chunk = math.ceil(len(all_langs) / parts)
        panels = [(m, all_langs[j:j + chunk]) for m in models for j in range(0, len(all_langs), chunk)]
        per_lang_in = max(0.15, 0.06 * n_series + 0.05)
        fig, axes = plt.subplots(len(panels), 1, figsize=(figure_width(chunk, per_lang_in, 3.4),
                                                          2.1 * len(panels) + 0.5), squeeze=False)
        for ax, (model, langs) in zip(axes[:, 0], panels):
            mr = [r for r in rows if r["model"] == model and r["language"] in langs]
            series = [("without", NONE, "#999999")] + [
                ("with", i, None) for i in sorted({r["intermediate_task"] for r in mr} - {NONE})]
            width = 0.8 / len(series)
            for k, (prefix, inter, color) in enumerate(series):
                src = {r["language"]: r for r in mr if prefix == "without" or r["intermediate_task"] == inter}
                ys = [_num(src[lang][f"{prefix}_mean"]) if lang in src else math.nan for lang in langs]
                xs = [i + (k - (len(series) - 1) / 2) * width for i in range(len(langs))]
                _bars(ax, xs, ys, width, [src.get(lang) for lang in langs], prefix, color=color,
                      label="no intermediate" if prefix == "without" else f"int. {inter}")
            ax.set_xticks(range(len(langs)), [lang.replace("_", " ") for lang in langs], rotation=90)
            ax.set_xlim(-0.6, len(langs) - 0.4)
            title(ax, model if parts == 1 else f"{model} ({langs[0]}–{langs[-1]})")
            ax.set_ylabel(mr[0]["metric"])
            if ax is axes[0, 0]:   # one legend for the figure, beside the first panel
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        title(fig, f"{task}: score per language, 95% CI{tag}", suptitle=True)
        save(fig, f"scores_{task}{_suffix(size, sizes_of[task])}.png")

    # heatmaps per language: the scores of every arm (top) and with − without (bottom; hatched where the
    # difference's interval contains 0)
    for task, size in sorted({(r["target_task"], r["train_size"]) for r in per_lang}):
        rows = [r for r in per_lang if r["target_task"] == task and r["train_size"] == size
                and r["intermediate_task"] != NONE and not math.isnan(_num(r["diff_mean"]))]
        if not rows:
            continue
        pairs = list(dict.fromkeys((r["model"], r["intermediate_task"]) for r in rows))
        langs = list(dict.fromkeys(r["language"] for r in rows))
        at = {(r["model"], r["intermediate_task"], r["language"]): r for r in rows}
        arms = []   # (label, {language: score}) for the scores panel: each model without, then each arm with
        for m in dict.fromkeys(m for m, _ in pairs):
            first = next(r for r in rows if r["model"] == m)
            arms.append((f"{m} / {first.get('baseline') or NONE}",
                         {r["language"]: _num(r["without_mean"]) for r in rows if r["model"] == m
                          and r["intermediate_task"] == first["intermediate_task"]}))
            arms += [(f"{m} / {i}", {r["language"]: _num(r["with_mean"]) for r in rows
                                     if r["model"] == m and r["intermediate_task"] == i}) for mm, i in pairs if mm == m]
        scores = [[v.get(lang, math.nan) for lang in langs] for _, v in arms]
        grid = [[_num(at[(m, i, lang)]["diff_mean"]) if (m, i, lang) in at else math.nan for lang in langs]
                for m, i in pairs]
        span = max([abs(v) for row in grid for v in row if not math.isnan(v)] + [1e-9])
        label_in = 0.075 * max(len(a) for a, _ in arms) + 0.3   # the arm labels' length at 8 pt
        cell_in = 0.42                                           # a cell that holds "-10.5" at 8 pt
        # Few languages: languages across, scores above the differences. Many: languages down the side and the
        # two maps beside each other, so the figure keeps 8-pt labels within the text width at any count.
        across = label_in + 1.2 + 0.2 * len(langs) <= TEXT_WIDTH
        if across:
            cell_in = min(cell_in, (TEXT_WIDTH - label_in - 1.2) / len(langs))
            fig, (ax_s, ax_d) = plt.subplots(
                2, 1, figsize=(min(TEXT_WIDTH, label_in + 1.2 + cell_in * len(langs)),
                               0.3 * (len(arms) + len(pairs)) + 2.2),
                gridspec_kw={"height_ratios": [max(len(arms), 1), max(len(pairs), 1)]})
        else:
            cell_in = min(cell_in, (TEXT_WIDTH - 2.4) / (len(arms) + len(pairs)))
            fig, (ax_s, ax_d) = plt.subplots(
                1, 2, figsize=(TEXT_WIDTH, 0.17 * len(langs) + label_in + 1.0),
                gridspec_kw={"width_ratios": [max(len(arms), 1), max(len(pairs), 1)]})
        annotate = across and cell_in >= 0.38   # values in the cells only where 8 pt fits
        orient = (lambda m: m) if across else (lambda m: [list(c) for c in zip(*m)])   # rows = arms, or languages
        at_xy = (lambda lang_i, arm_i: (lang_i, arm_i)) if across else (lambda lang_i, arm_i: (arm_i, lang_i))
        im_s = ax_s.imshow(orient(scores), cmap="viridis", aspect="auto")
        im_d = ax_d.imshow(orient(grid), cmap="RdBu", norm=TwoSlopeNorm(0, -span, span), aspect="auto")
        for a, row in enumerate(scores):
            for li, v in enumerate(row):
                if annotate and not math.isnan(v):
                    ax_s.text(*at_xy(li, a), f"{v:.0f}", ha="center", va="center", fontsize=FONT_PT,
                              color="white" if im_s.norm(v) < 0.5 else "black")
        for a, (m, i) in enumerate(pairs):
            for li, lang in enumerate(langs):
                r = at.get((m, i, lang))
                if r is None:
                    continue
                open_ = ci_contains_zero(r)
                x, y = at_xy(li, a)
                if open_ is not False:
                    ax_d.add_patch(matplotlib.patches.Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="///",
                                                                edgecolor="#777777", lw=0))
                if annotate:
                    ax_d.text(x, y, f"{_num(r['diff_mean']):.1f}", ha="center", va="center", fontsize=FONT_PT,
                              fontweight="normal" if open_ is not False else "bold")
        lang_labels = [lang.replace("_", " ") for lang in langs]
        for ax, labels in ((ax_s, [a for a, _ in arms]), (ax_d, [f"{m} / {i}" for m, i in pairs])):
            if across:
                ax.set_xticks(range(len(langs)), lang_labels, rotation=90)
                ax.set_yticks(range(len(labels)), labels)
            else:
                ax.set_yticks(range(len(langs)), lang_labels)
                ax.set_xticks(range(len(labels)), labels, rotation=90)
                ax.xaxis.tick_top()   # the arm labels on top (the titles go above them), the colour bars below
        if across:
            ax_s.tick_params(labelbottom=False)
        else:
            ax_d.tick_params(labelleft=False)
        metric = rows[0]["metric"]
        bar = {"fraction": 0.04, "pad": 0.02} if across else {"location": "bottom", "fraction": 0.03, "pad": 0.01}
        fig.colorbar(im_s, ax=ax_s, label=metric, **bar)
        fig.colorbar(im_d, ax=ax_d, label="with − without", **bar)
        title(ax_s, f"{metric} per language")
        title(ax_d, "with − without (hatched: 95% CI contains 0 or none; bold: excludes 0)")
        title(fig, f"{task}: scores and differences per language{tag}", suptitle=True)
        save(fig, f"heatmap_{task}{_suffix(size, sizes_of[task])}.png")

    gap = tables["transfer_gap"]
    if gap:   # horizontal bars: the (task, model, intermediate) labels read along the y axis at 8 pt
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.32 * len(gap) + 1.2))
        labels = [f"{r['target_task']} · {r['model']} · {r['intermediate_task']}" for r in gap]
        ys = list(range(len(gap)))
        for offset, prefix, label, color in ((-0.2, "without", "no intermediate", "#999999"),
                                             (0.2, "with", "with intermediate", "C0")):
            vals = [_num(r[f"gap_{prefix}_mean"]) for r in gap]
            ax.barh([y + offset for y in ys], vals, 0.4, color=color, label=label)
            errs = [(y + offset, v, interval({f"{prefix}_mean": r[f"gap_{prefix}_mean"],
                                              f"{prefix}_ci_low": r.get(f"gap_{prefix}_ci_low"),
                                              f"{prefix}_ci_high": r.get(f"gap_{prefix}_ci_high")}, prefix))
                    for y, v, r in zip(ys, vals, gap)]
            errs = [e for e in errs if e[2] is not None and not math.isnan(e[1])]
            if errs:
                ax.errorbar([e[1] for e in errs], [e[0] for e in errs], xerr=[[e[2][0] for e in errs],
                            [e[2][1] for e in errs]], fmt="none", ecolor="black", capsize=2, lw=0.8)
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlabel("transfer gap: en − mean(other languages)")
        title(ax, f"Transfer gap, 95% CI{tag}: without (grey) and with (blue) intermediate training")
        save(fig, "transfer_gap.png")

    # learning curves: English dev against target steps and against total training FLOPs
    curves = tables.get("learning_curves", [])
    for task in sorted({r["target_task"] for r in curves}):
        rows = [r for r in curves if r["target_task"] == task]
        panels = sorted({(r["model"], r["train_size"]) for r in rows})
        fig, axes = plt.subplots(len(panels), 2, figsize=(TEXT_WIDTH, 2.4 * len(panels) + 0.9), squeeze=False)
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
            ax_f.set_xlabel("training FLOPs (target + intermediate share)")
            ax_f.set_xscale("log")
            log_axis(ax_f, "x")
            for ax in (ax_s, ax_f):
                ax.set_ylabel("English dev")
                title(ax, f"{model}, train size {size}")
            ax_s.legend(loc="lower right", frameon=False)
        title(fig, f"{task}: learning curves (band: min–max over seeds){tag}", suptitle=True)
        save(fig, f"curves_{task}.png")

    # sample efficiency
    eff = tables.get("sample_efficiency", [])
    for task in sorted({r["target_task"] for r in eff}):
        rows = [r for r in eff if r["target_task"] == task]
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH * 0.6, 3.0))
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
        log_axis(ax, "x")
        ax.set_xlabel("target training examples")
        ax.set_ylabel(f"{rows[0]['score'].replace('_', ' ')}, 95% CI")
        title(ax, f"{task}: score against training size{tag}")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
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

        one_size = len({k[2] for k in keys}) == 1   # task · model · [train size ·] intermediate
        labels = [" · ".join(str(v) for j, v in enumerate(k) if not (one_size and j == 2)) for k in keys]
        ys = list(range(len(keys)))
        height = 0.3 * len(keys) + 1.3
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, height))
        inter = [mean_of(k, "intermediate_flops_share") for k in keys]
        target = [mean_of(k, "target_flops") for k in keys]
        power = int(math.floor(math.log10(max(a + b for a, b in zip(inter, target))))) if any(inter + target) else 0
        inter, target = [v / 10 ** power for v in inter], [v / 10 ** power for v in target]   # no offset text
        ax.barh(ys, inter, 0.6, color="C1")
        ax.barh(ys, target, 0.6, left=inter, color="C0")
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlabel(f"training FLOPs, ×1e{power} (mean over seeds)")
        title(ax, f"Training cost in FLOPs{tag}: target (blue) and the share of the intermediate run (orange)")
        save(fig, "training_flops.png")

        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.45 * len(keys) + 1.5))
        parts = (("compile_s", "compile", "C3"), ("eval_s", "dev evaluation", "C2"),
                 ("checkpoint_s", "checkpoints", "C4"), ("steps_s", "training steps", "C0"))
        for offset, phase in ((-0.2, "intermediate"), (0.2, "target")):
            left = [0.0] * len(keys)
            for col, label, color in parts:
                xs = [mean_of(k, f"{phase}_{col}") for k in keys]
                ax.barh([y + offset for y in ys], xs, 0.38, left=left, color=color,
                        hatch="//" if phase == "intermediate" else None,
                        label=f"{label}" if phase == "target" else None)
                left = [a + b for a, b in zip(left, xs)]
        ax.set_yticks(ys, labels)
        ax.invert_yaxis()
        ax.set_xlabel("wall time, s (hatched: the intermediate run, whole)")
        title(ax, f"Wall time{tag}: compilation (red), dev evaluation (green), checkpoints (purple), "
                  "training steps (blue); upper bar of a pair: the intermediate run (hatched)")
        save(fig, "wall_time.png")

    if bench:
        fig, ax = plt.subplots(figsize=(TEXT_WIDTH, 0.28 * len(bench) + 1.2))
        labels = [bench_label(r) for r in bench]
        ax.barh(range(len(bench)), [r["median_ms"] for r in bench],
                color=["C0" if r.get("impl", "jax") == "jax" else "C1" for r in bench])
        ax.set_yticks(range(len(bench)), labels)
        ax.invert_yaxis()
        ax.set_xlabel("median latency, ms")
        title(ax, "Benchmarks (pytest-benchmark; blue: jax, orange: other)")
        save(fig, "benchmark_latency.png")
