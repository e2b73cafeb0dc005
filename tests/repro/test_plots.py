"""Every report figure at print size: PNG (300 dpi), PDF and SVG; no text smaller than 8 pt; no figure wider
than a paper's text width; no two texts overlapping and none outside the figure (bounding boxes after draw)."""
from __future__ import annotations

import itertools
import math

import pytest

from repro.report import plots

LANGS = ["en", "ar", "de", "el", "es", "fr", "hi", "ru", "sw", "th", "tr", "ur", "vi", "zh", "bg", "af",
         "bn", "et", "eu", "fa", "fi", "he", "hu", "id", "it", "ja", "jv", "ka", "kk", "ko", "ml", "mr", "ms",
         "my", "nl", "pt", "qu", "ta", "te", "tl", "yo", "pl", "uk", "az", "lt", "pa", "gu", "ro"]


def per_language_rows(task: str, langs: list[str], models=("xlm-roberta-base", "bert-base-multilingual-cased"),
                      inters=("mnli", "squad")) -> list[dict]:
    rows = []
    for m, i, (k, lang) in itertools.product(models, inters, enumerate(langs + ["average", "non_english"])):
        w, d = 40 + k % 50, (k % 7) - 3.5
        rows.append({"target_task": task, "train_size": "all", "model": m, "intermediate_task": i, "baseline": "none",
                     "metric": "f1", "language": lang, "without_mean": w, "without_ci_low": w - 2,
                     "without_ci_high": w + 2, "with_mean": w + d, "with_ci_low": w + d - 2, "with_ci_high": w + d + 2,
                     "diff_mean": d, "diff_ci_low": d - 1.5, "diff_ci_high": d + 1.5})
    return rows


def tables_for(langs: list[str]) -> dict:
    per_lang = per_language_rows("panx", langs) + per_language_rows("xcopa", langs[:12])
    gap = [{"target_task": t, "model": m, "intermediate_task": i, "train_size": "all",
            "gap_without_mean": 10.0, "gap_without_ci_low": 8.0, "gap_without_ci_high": 12.0,
            "gap_with_mean": 11.0, "gap_with_ci_low": 9.0, "gap_with_ci_high": 13.5}
           for t in ("panx", "xcopa") for m in ("xlm-roberta-base", "bert-base-multilingual-cased")
           for i in ("mnli", "squad")]
    curves = [{"target_task": "panx", "model": m, "train_size": "all", "intermediate_task": i, "seed": s,
               "step": st, "total_flops": (st + (500 if i != "none" else 0)) * 2.3e12, "dev": 30 + st / 10}
              for m in ("xlm-roberta-base",) for i in ("none", "mnli") for s in (0, 1) for st in range(50, 501, 50)]
    short = [dict(c, target_task="xcopa", total_flops=c["total_flops"] / 1e3 + 1.5e9) for c in curves]
    cost = [{"target_task": t, "model": m, "train_size": "all", "intermediate_task": i,
             "intermediate_flops_share": 1e15 if i != "none" else 0.0, "target_flops": 2e15,
             **{f"{p}_{c}": 10.0 for p in ("intermediate", "target")
                for c in ("compile_s", "eval_s", "checkpoint_s", "steps_s")}}
            for t in ("panx", "xcopa") for m in ("xlm-roberta-base", "bert-base-multilingual-cased")
            for i in ("none", "mnli", "squad")]
    eff = [{"target_task": "panx", "model": "xlm-roberta-base", "intermediate_task": i, "train_examples": n,
            "mean": 40 + n / 100, "ci_low": 38 + n / 100, "ci_high": 42 + n / 100, "score": "non_english"}
           for i in ("none", "mnli") for n in (100, 1000, 10000)]
    return {"per_language": per_lang, "transfer_gap": gap, "learning_curves": curves + short, "cost": cost,
            "sample_efficiency": eff}


def text_problems(fig) -> list[str]:
    """Pairs of visible texts whose boxes overlap, texts outside the figure, texts under 8 pt."""
    from matplotlib.text import Text
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ticks, drawn = set(), set()   # tick labels are drawn only for ticks inside the axis' view
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                labels = {id(tick.label1), id(tick.label2)}
                ticks |= labels
                if lo - abs(lo) * 1e-9 <= tick.get_loc() <= hi + abs(hi) * 1e-9:
                    drawn |= labels
    texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
             and (id(t) not in ticks or id(t) in drawn) and t.get_window_extent(renderer).width > 0]
    boxes = [(t, t.get_window_extent(renderer)) for t in texts]
    problems = [f"{t.get_text()!r} is {t.get_fontsize():.1f} pt" for t, _ in boxes if t.get_fontsize() < 8 - 1e-6]
    for (a, ba), (b, bb) in itertools.combinations(boxes, 2):
        if ba.overlaps(bb):
            inter_w = min(ba.x1, bb.x1) - max(ba.x0, bb.x0)
            inter_h = min(ba.y1, bb.y1) - max(ba.y0, bb.y0)
            if inter_w > 1 and inter_h > 1:   # touching edges (a pixel) is not an overlap
                problems.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    fb = fig.bbox
    for t, b in boxes:
        if b.x0 < fb.x0 - 1 or b.x1 > fb.x1 + 1 or b.y0 < fb.y0 - 1 or b.y1 > fb.y1 + 1:
            problems.append(f"{t.get_text()!r} runs outside the figure")
    return problems


@pytest.mark.parametrize("langs", [LANGS[:4], pytest.param(LANGS, marks=pytest.mark.slow)],
                         ids=["4-languages", "48-languages"])
def test_every_figure_renders_at_print_size_without_overlaps(tmp_path, langs, monkeypatch):
    monkeypatch.setenv(plots.FORMATS_ENV, "svg,png,pdf")   # the suite's default is png only; any order
    seen = {}

    def inspect(name, fig):
        seen[name] = (fig.get_figwidth(), text_problems(fig))

    bench = [{"name": f"b{i}", "kind": "forward", "impl": impl, "model": "bert-base-cased", "batch": 32,
              "seq_len": 128, "dtype": "float32", "median_ms": 10.0 + i} for i, impl in enumerate(["jax", "torch"] * 3)]
    written = plots.write_plots(tables_for(langs), bench, tmp_path, synthetic=True, inspect=inspect)
    expected = {"scores_panx.png", "scores_xcopa.png", "heatmap_panx.png", "heatmap_xcopa.png", "transfer_gap.png",
                "curves_panx.png", "curves_xcopa.png", "sample_efficiency_panx.png", "training_flops.png",
                "wall_time.png", "benchmark_latency.png"}
    assert set(written) == expected
    for name in written:
        stem = name[:-4]
        for ext in ("png", "pdf", "svg"):
            assert (tmp_path / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)
        width, problems = seen[name]
        assert width <= plots.TEXT_WIDTH + 1e-9, (name, width)
        assert not problems, (name, problems)
    from PIL import Image
    with Image.open(tmp_path / "heatmap_panx.png") as im:
        dpi = im.info.get("dpi", (0, 0))[0]
    assert math.isclose(dpi, plots.PNG_DPI, rel_tol=0.01), dpi


def test_figure_width_grows_with_the_languages_up_to_the_text_width():
    assert plots.figure_width(4, 0.3, 1.5) < plots.figure_width(12, 0.3, 1.5) < plots.TEXT_WIDTH
    assert plots.figure_width(48, 0.3, 1.5) == plots.TEXT_WIDTH


def test_log_axis_never_labels_the_minor_ticks():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    for lo, hi in ((1.5e9, 3e10), (2e9, 9e9), (1e6, 1e12)):   # about a decade, under one, six
        fig, ax = plt.subplots(figsize=(3.3, 2))
        ax.plot([lo, hi], [0, 1])
        ax.set_xscale("log")
        plots.log_axis(ax)
        fig.canvas.draw()
        labels = [t for t in ax.get_xticklabels() if t.get_visible() and t.get_text()
                  and lo * 0.999 <= t.get_position()[0] <= hi * 1.001]
        assert 1 <= len(labels) <= 7, (lo, hi, [t.get_text() for t in labels])
        assert not [p for p in text_problems(fig) if "overlaps" in p], (lo, hi)
        plt.close(fig)


def test_figures_saved_by_several_processes_are_those_one_process_saves(tmp_path):
    """write_plots' workers each lay out and save every n-th figure: the same figures, names and PNG bytes as one
    process (PDF and SVG carry a creation date). Three figures (the transfer gap, training FLOPs, wall time), so
    that two workers save unequal shares."""
    full = tables_for(["en", "de"])
    small = {"per_language": [], "learning_curves": [], "sample_efficiency": [],
             "transfer_gap": [r for r in full["transfer_gap"] if r["target_task"] == "panx"][:2],
             "cost": [r for r in full["cost"] if r["target_task"] == "panx" and r["model"] == "xlm-roberta-base"]}
    one = plots.write_plots(small, [], tmp_path / "one", synthetic=True, workers=1)
    two = plots.write_plots(small, [], tmp_path / "two", synthetic=True, workers=2)
    assert one == two == ["transfer_gap.png", "training_flops.png", "wall_time.png"]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in one:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes(), name


@pytest.mark.parametrize("name, value", [("XT_PLOT_WORKERS", "0"), ("XT_PLOT_WORKERS", "two"),
                                         ("XT_PLOT_WORKERS", "-1"), ("XT_PLOT_FORMATS", "pdf,svg"),
                                         ("XT_PLOT_FORMATS", "png,eps")])
def test_a_bad_plot_setting_is_one_line_and_the_report_writes_nothing(tmp_path, monkeypatch, capsys, name, value):
    from repro.__main__ import main

    monkeypatch.setenv(name, value)
    out = tmp_path / "report"
    code = main(["report", str(tmp_path), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and not out.exists()
    assert len(err) == 1 and err[0].startswith(f"report: error: {name}={value!r}"), err


def test_plot_formats_are_png_and_the_vector_formats_asked_for(monkeypatch):
    monkeypatch.delenv(plots.FORMATS_ENV, raising=False)
    assert plots.plot_formats() == ("png", "pdf", "svg")
    monkeypatch.setenv(plots.FORMATS_ENV, " SVG , png ")
    assert plots.plot_formats() == ("png", "svg")
