"""The report: files written, numbers traced to the results and predictions files, intervals where the data
allow them, old results folders still reported, bad input refused without damage."""
from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
from unittest import mock

import pytest

from repro import report
from repro.__main__ import main as cli_main
from repro.report import latex, plots, stats
from tests.support.paths import ROOT
from tests.support.results_files import (edited, make_cell, make_results, smoke_grid_v3, write_cells, write_grid,
                                         write_results)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
RESAMPLES = 300


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One smoke-shaped schema-3 run (3 seeds, per-example predictions) and its report: build once."""
    root = tmp_path_factory.mktemp("run")
    cells = write_cells(root, smoke_grid_v3(seeds=(0, 1, 2)))
    bench = root / "bench.json"
    bench.write_text(json.dumps(_bench_json()))
    with mock.patch.dict(os.environ, {plots.FORMATS_ENV: "png,pdf,svg"}):   # the suite's default is png only
        out = report.build_report(root, benchmarks=bench, resamples=RESAMPLES)
    return root, cells, out


@pytest.fixture(scope="module")
def old(tmp_path_factory):
    """A schema-1 run (no predictions, two seeds) and its report."""
    root = tmp_path_factory.mktemp("old")
    cells = write_grid(root)
    return root, cells, report.build_report(root, resamples=RESAMPLES)


def _bench_json():
    def entry(impl, median_s):
        return {"name": f"test_latency[{impl}-bert-tiny]", "stats": {"median": median_s, "mean": median_s * 1.1,
                "stddev": median_s / 10, "rounds": 7},
                # the keys tests/benchmarks/conftest.py's bench_info records
                "extra_info": {"kind": "forward", "family": "bert", "model": "bert-tiny",
                               "head": "sequence_classification", "batch": 8, "seq_len": 64, "dtype": "float32",
                               "impl": impl, "params": {"total": 57000, "embedding": 32000},
                               "flops_per_batch": 12345678}}
    return {"machine_info": {}, "benchmarks": [entry("jax", 0.00123), entry("torch", 0.00456)]}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _cells_of(cells, task, model, inter):
    return [c for c in cells if c["target_task"] == task and c["model"]["name"] == model
            and (c["intermediate_task"] or "none") == inter]


def test_report_files_tables_and_figures(built):
    root, cells, out = built
    assert out == root / "report"
    md = (out / "report.md").read_text()
    assert md.startswith("# xtreme-transfer report — SYNTHETIC RUN")
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    for task in ("synth_sentiment", "synth_nli"):
        for stem in ("scores", "heatmap", "curves"):
            assert f"{stem}_{task}.png" in pngs
            assert f"plots/{stem}_{task}.png" in md
    assert {"transfer_gap.png", "training_flops.png", "wall_time.png", "benchmark_latency.png"} <= set(pngs)
    assert not any(p.startswith("pareto_") for p in pngs)     # latency/parameters cannot differ between arms
    for p in (out / "plots").glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000, p
        svg = p.with_suffix(".svg")       # every figure also as a vector file
        assert svg.exists() and svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()[:2000]
    for name in ("per_language", "transfer_gap", "learning_curves", "steps_to_target", "cost", "cost_effect",
                 "efficiency", "identical_by_construction", "training_cost", "bootstrap", "deviations",
                 "environment", "config_common", "config_varying", "cells", "benchmarks"):
        assert (out / "tables" / f"{name}.csv").stat().st_size > 0, name
    texs = sorted(p.name for p in (out / "tables").glob("*.tex"))
    assert {"per_language_synth_nli.tex", "per_language_synth_sentiment.tex", "transfer_gap.tex", "findings.tex",
            "deviations.tex", "steps_to_target.tex", "cost_effect.tex"} <= set(texs)
    data = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in data["findings"]] == [1, 2, 3, 4, 5, 11]
    assert [d["id"] for d in data["deviations"]] == [6, 7, 8, 9, 10]
    assert data["bootstrap"]["resamples"] == RESAMPLES and data["bootstrap"]["seed"] == 0
    assert data["bootstrap"]["method"] == stats.METHOD
    assert f"{RESAMPLES} resamples, RNG seed 0" in md
    assert len(_rows(out / "claims.csv")) == 6
    assert set(json.loads((out / "configs.json").read_text())) == {c["cell_id"] for c in cells}
    for section in ("## Uncertainty", "## Findings of the seed study", "## Deviations from the seed study's setup",
                    "## Efficiency that can differ", "### Learning-curve area and steps to 95 % of the",
                    "## Parameters and inference latency: identical by construction", "## Checkpoint selection"):
        assert section in md, section
    assert "oracle" in md and "**not computed**" in md


def test_every_per_language_number_is_recomputed_from_the_results(built):
    _, cells, out = built
    rows = _rows(out / "tables" / "per_language.csv")
    assert len(rows) == 2 * 3 * 5     # tasks × models × (3 languages + average + non-English average)
    for r in rows:
        langs = {"en": ["en"], "average": ["en", "de", "sw"], "non_english": ["de", "sw"]}.get(r["language"],
                                                                                              [r["language"]])

        def get(c):
            return statistics.mean(c["per_language"][lang] for lang in langs)
        w = _cells_of(cells, r["target_task"], r["model"], r["intermediate_task"])
        wo = _cells_of(cells, r["target_task"], r["model"], "none")
        assert float(r["with_mean"]) == pytest.approx(statistics.mean(map(get, w)), abs=1e-9)
        assert float(r["with_std"]) == pytest.approx(statistics.stdev(map(get, w)), abs=1e-9)
        assert float(r["without_mean"]) == pytest.approx(statistics.mean(map(get, wo)), abs=1e-9)
        base = {c["seed"]: get(c) for c in wo}
        diffs = [get(c) - base[c["seed"]] for c in w]
        assert float(r["diff_mean"]) == pytest.approx(statistics.mean(diffs), abs=1e-9)
        assert int(r["diff_n"]) == 3 and r["ci_method"] == "seeds+examples" and r["ci_examples"] == "400"
        for prefix in ("with", "without", "diff"):     # every shown statistic has an interval around it
            lo, m, hi = (float(r[f"{prefix}_{k}"]) for k in ("ci_low", "mean", "ci_high"))
            assert lo < m < hi
        assert (r["diff_ci_excludes_0"] == "True") == (float(r["diff_ci_low"]) > 0 or float(r["diff_ci_high"]) < 0)


def test_verdicts_multiplicity_and_what_the_design_can_detect(built):
    """Every comparison carries a verdict of the four kinds; languages are Holm-adjusted within their family and
    bold only where the adjusted p survives; each primary endpoint has its MDE and seeds needed."""
    _, _, out = built
    rows = _rows(out / "tables" / "per_language.csv")
    md = (out / "report.md").read_text()
    assert {r["diff_verdict"] for r in rows} <= set(stats.VERDICTS)
    families = {}
    for r in rows:
        if r["role"] == "exploratory":
            families.setdefault((r["target_task"], r["model"], r["contrast"]), []).append(r)
    for fam in families.values():
        adjusted = stats.holm([float(r["diff_p"]) for r in fam])
        for r, p in zip(fam, adjusted):
            assert float(r["diff_p_holm"]) == pytest.approx(p)
            assert (r["diff_bold"] == "True") == (p < 0.05)
    for r in rows:
        if r["role"] == "secondary":
            assert r["diff_bold"] == "False"
        cell = f"{float(r['diff_mean']):.4g} [" if r["diff_mean"] else None
        if r["diff_bold"] == "True":
            assert f"**{cell}" in md
    primary = [r for r in rows if r["role"] == "primary"]
    assert {r["language"] for r in primary} == {"non_english"} and len(primary) == 6
    detectable = _rows(out / "tables" / "detectable.csv")
    assert len(detectable) == len(primary) and "## What this design can detect" in md
    for r in detectable:
        assert float(r["diff_mde"]) > 0 and r["diff_few_seeds"] == "True" and r["diff_delta"] == "1.0"
        assert r["diff_seeds_needed_1pt"] == "" or int(r["diff_seeds_needed_1pt"]) >= 3


def test_a_language_whose_difference_does_not_survive_holm_is_not_called_different():
    """An exploratory language's "different" needs its Holm-adjusted p below 5 %; one that only its own interval
    calls different gets the verdict its row has without that test (the mini's PAN-X sw: p 0.008, Holm 0.055,
    MDE 5.8 > δ = 1 -> underpowered), and the unadjusted verdict stays in `diff_verdict_unadjusted`."""
    from repro.report import rows as report_rows

    def row(lang, p, verdict, lo90=-1.0, hi90=1.0, mde=5.0):
        return {"target_task": "panx", "model": "m", "train_size": "1600", "contrast": "xnli - none",
                "intermediate_task": "xnli", "language": lang, "diff_p": p, "diff_verdict": verdict,
                "diff_ci_excludes_0": verdict == "different", "diff_ci90_low": lo90, "diff_ci90_high": hi90,
                "diff_delta": 1.0, "diff_mde": mde}

    out = {r["language"]: r for r in report_rows._roles_and_holm([
        row("en", 0.001, "different"),                 # Holm: 0.001 x 4 = 0.004 -> survives
        row("sw", 0.008, "different"),                 # 0.008 x 3 = 0.024 -> survives
        row("de", 0.03, "different", mde=5.0),         # 0.03 x 2 = 0.06 -> not different: underpowered
        row("hi", 0.04, "different", -0.9, -0.1, 0.8),  # 0.06: its 90 % interval inside +-1 -> equivalent
        row("non_english", 0.01, "different")])}
    assert [out[k]["diff_bold"] for k in ("en", "sw", "de", "hi")] == [True, True, False, False]
    assert [out[k]["diff_verdict"] for k in ("en", "sw", "de", "hi")] == [
        "different", "different", "underpowered", "equivalent"]
    assert out["de"]["diff_verdict_unadjusted"] == "different"
    assert out["non_english"]["role"] == "primary" and out["non_english"]["diff_verdict"] == "different"


def test_old_results_without_predictions_still_report(old):
    _, cells, out = old
    md = (out / "report.md").read_text()
    rows = _rows(out / "tables" / "per_language.csv")
    assert rows and all(r["diff_ci_low"] == "" and "no per-example predictions" in r["no_ci"] for r in rows)
    assert "no CI" in md and "seeds only: no per-example predictions" in md
    data = json.loads((out / "claims.json").read_text())
    assert {c["verdict"] for c in data["findings"]} <= {"inconclusive", "not tested"}
    steps = _rows(out / "tables" / "steps_to_target.csv")
    assert steps and {r["reached"] for r in steps} == {"no curve"}
    assert "no curve (schema < 3)" in md


def test_three_old_seeds_get_a_seeds_only_interval(tmp_path):
    for seed, (a, b) in enumerate([(70, 60), (72, 61), (71, 63)]):
        write_results(tmp_path, make_results("bert-tiny", "imdb", "xnli", seed, per_language={"en": a, "de": a - 5}))
        write_results(tmp_path, make_results("bert-tiny", None, "xnli", seed, per_language={"en": b, "de": b - 5}))
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    row = next(r for r in _rows(out / "tables" / "per_language.csv") if r["language"] == "en")
    assert row["ci_method"] == "seeds" and row["ci_seeds"] == "3"
    # The t interval of the three per-seed differences 10, 11, 8: 9.67 ± t(2) · 1.53 / √3 (t(2) = 4.303).
    half = 4.302653 * statistics.stdev([10, 11, 8]) / math.sqrt(3)
    assert float(row["diff_ci_low"]) == pytest.approx(29 / 3 - half, abs=1e-4)
    assert float(row["diff_ci_high"]) == pytest.approx(29 / 3 + half, abs=1e-4)
    assert row["diff_few_seeds"] == "True" and float(row["diff_seed_share"]) == 1.0 and row["role"] == "exploratory"


def test_efficiency_tables_come_from_the_results(built):
    _, cells, out = built
    for r in _rows(out / "tables" / "efficiency.csv"):
        cs = [c for c in cells if c["target_task"] == r["target_task"] and c["model"]["name"] == r["model"]]
        assert int(r["params_total"]) == cs[0]["param_count"]["total"]
    for r in _rows(out / "tables" / "training_cost.csv"):
        cs = _cells_of(cells, r["target_task"], r["model"], r["intermediate_task"])
        assert float(r["wall_time_s_mean"]) == pytest.approx(
            statistics.mean(c["training"][r["phase"]]["wall_time_s"] for c in cs), abs=1e-12)
    cost = {r["cell_id"]: r for r in _rows(out / "tables" / "cost.csv")}
    for c in cells:
        r = cost[c["cell_id"]]
        if c["intermediate_task"]:     # one intermediate run per (model, seed), reused by the two targets
            assert int(r["intermediate_shared_by"]) == 2
            assert float(r["intermediate_flops_share"]) == pytest.approx(c["training"]["intermediate"]["flops"] / 2)
            t = c["training"]["target"]
            assert float(r["target_steps_s"]) == pytest.approx(
                t["wall_time_s"] - sum(t["timing"].values()), abs=1e-9)
        assert float(r["total_flops"]) == pytest.approx(c["training"]["target"]["flops"]
                                                        + float(r["intermediate_flops_share"]))
    effect = _rows(out / "tables" / "cost_effect.csv")
    per = {(r["target_task"], r["model"], r["language"]): r for r in _rows(out / "tables" / "per_language.csv")}
    for r in effect:
        d = float(per[(r["target_task"], r["model"], "non_english")]["diff_mean"])
        assert float(r["delta_non_english"]) == pytest.approx(d, abs=1e-6)
        extra = float(r["total_flops_with"]) - float(r["total_flops_without"])
        assert float(r["delta_per_pflop"]) == pytest.approx(d / (extra / 1e15), rel=1e-6)
    same = _rows(out / "tables" / "identical_by_construction.csv")
    assert all(r["params_equal"] == "True" for r in same)
    bench = _rows(out / "tables" / "benchmarks.csv")
    assert [float(b["median_ms"]) for b in bench] == pytest.approx([1.23, 4.56])


def test_steps_to_target_on_hand_made_logs(tmp_path):
    def curve(devs, flops_per_step=1e9):
        return [{"step": 10 * (i + 1), "examples": 160 * (i + 1), "flops": 10 * (i + 1) * flops_per_step, "dev": d}
                for i, d in enumerate(devs)]
    made = [make_cell("bert-tiny", None, "synth_nli", 0, curve=curve([50, 60, 70, 68])),
            make_cell("bert-tiny", "synth_int_sentiment", "synth_nli", 0, curve=curve([65, 69.9, 70, 75])),
            make_cell("bert-tiny", "synth_int_sentiment", "synth_sentiment", 0, curve=curve([40, 45])),
            make_cell("bert-tiny", None, "synth_sentiment", 0, curve=curve([50, 55]))]
    for r, _ in made:
        if r["intermediate_task"]:
            r["training"]["intermediate"]["flops"] = 8e10
    write_cells(tmp_path, made)
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    rows = {r["target_task"]: r for r in _rows(out / "tables" / "steps_to_target.csv")}
    nli = rows["synth_nli"]
    # The twin's final smoothed score: mean(60, 70, 68) = 66; the goal 95 % of it, 62.7: the twin at step 30.
    assert float(nli["twin_final_dev"]) == pytest.approx(66) and float(nli["goal_dev"]) == pytest.approx(62.7)
    assert nli["twin_steps"] == "30" and nli["reached"] == "yes" and nli["steps"] == "10"
    assert float(nli["steps_diff"]) == -20 and float(nli["target_flops"]) == 1e10
    assert float(nli["total_flops"]) == pytest.approx(1e10 + 8e10 / 2)   # amortized: the run serves 2 targets
    assert float(nli["total_flops_ratio"]) == pytest.approx((1e10 + 4e10) / 3e10)
    assert float(nli["total_flops_ratio_marginal"]) == pytest.approx((1e10 + 8e10) / 3e10)   # one target pays all
    # AUC: trapezoids over steps 10-40 divided by 30: (674.5 + 699.5 + 725) / 30 and (550 + 650 + 690) / 30.
    assert float(nli["auc"]) == pytest.approx(2099 / 30) and float(nli["twin_auc"]) == pytest.approx(63.0)
    sent = rows["synth_sentiment"]     # the twin reaches 95 % of 52.5 at step 10; the other arm never: censored
    assert sent["reached"] == "never" and sent["steps"] == "20" and sent["censored"] == "True"
    md = (out / "report.md").read_text()
    assert "never (0 of 1)" in md and "(censored: a bound)" in md
    curves = _rows(out / "tables" / "learning_curves.csv")
    assert len(curves) == 4 + 4 + 2 + 2
    assert any(float(r["total_flops"]) == pytest.approx(1e10 + 4e10)
               for r in curves if r["intermediate_task"] != "none")


def test_sample_efficiency_when_the_train_size_varies(tmp_path):
    made = []
    for size, gap in ((100, 15.0), (None, 1.0)):
        for inter, bonus in (("synth_int_sentiment", gap), (None, 0.0)):
            made.append(make_cell("bert-tiny", inter, "synth_nli", 0, train_size=size,
                                  per_language={"en": 60 + bonus, "de": 50 + bonus}))
    write_cells(tmp_path, made)
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    rows = _rows(out / "tables" / "sample_efficiency.csv")
    assert sorted((r["train_size"], r["intermediate_task"]) for r in rows) == [
        ("100", "none"), ("100", "synth_int_sentiment"), ("all", "none"), ("all", "synth_int_sentiment")]
    small = next(r for r in rows if r["train_size"] == "100" and r["intermediate_task"] != "none")
    assert float(small["diff_mean"]) == pytest.approx(15.0, abs=0.5) and small["score"] == "non_english"
    assert (out / "plots" / "sample_efficiency_synth_nli.png").exists()
    md = (out / "report.md").read_text()
    assert "### Sample efficiency" in md and "### synth_nli (accuracy), train size 100" in md
    assert (out / "plots" / "scores_synth_nli_n100.png").exists()


def test_same_data_pairing_is_marked(tmp_path):
    why = "the intermediate task mnli is the data xnli trains on"
    write_cells(tmp_path, [make_cell("bert-tiny", "mnli", "xnli", 0, same_data_as_target=why, synthetic=False),
                           make_cell("bert-tiny", None, "xnli", 0, synthetic=False)])
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    md = (out / "report.md").read_text()
    assert "**Same data twice**: mnli→xnli (bert-tiny): " + why in md
    assert "| bert-tiny | mnli ⚠ | none | en |" in md
    assert _rows(out / "tables" / "same_data_pairings.csv")[0]["why"] == why
    assert "(same data)" in (out / "tables" / "per_language_xnli.tex").read_text()


def test_tagging_averages_with_and_without_ja_zh(tmp_path):
    langs = {"en": 90.0, "de": 70.0, "ja": 20.0, "zh": 30.0}
    write_cells(tmp_path, [make_cell("bert-tiny", i, "udpos", 0, per_language=langs, synthetic=False)
                           for i in ("siqa", None)])
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    rows = {r["language"]: r for r in _rows(out / "tables" / "per_language.csv")}
    assert float(rows["non_english"]["with_mean"]) == pytest.approx(40.0)
    assert float(rows["non_english_excl_ja_zh"]["with_mean"]) == pytest.approx(70.0)
    assert "without ja, zh" in (out / "report.md").read_text()


def test_latex_tables_parse(built):
    _, _, out = built
    for path in sorted((out / "tables").glob("*.tex")):
        tex = path.read_text()
        begins, ends = re.findall(r"\\begin\{(\w+)\}", tex), re.findall(r"\\end\{(\w+)\}", tex)
        assert begins == ends[::-1] == ["table", "tabular"][:len(begins)], path
        assert tex.count(r"\toprule") == tex.count(r"\midrule") == tex.count(r"\bottomrule") == 1, path
        body = tex[tex.index(r"\midrule"):tex.index(r"\bottomrule")]
        spec = next(l for l in tex.splitlines() if l.startswith(r"\begin{tabular}"))[len(r"\begin{tabular}{"):-1]
        cols = len(re.sub(r"\{[^}]*\}", "", spec))      # l, r, p{width}: one letter a column
        for line in body.splitlines()[1:]:
            assert line.endswith(r"\\") and line.count(" & ") == cols - 1, (path, line)
        text = re.sub(r"\$[^$]*\$", "", tex.replace(" & ", "  "))      # math ($m^{+a}_{-b}$) may use _
        assert not re.search(r"(?<!\\)[_%&#]", text), path     # specials in text are escaped
    nli = (out / "tables" / "per_language_synth_nli.tex").read_text()
    assert r"synth\_int\_sentiment" in nli and re.search(r"\$\d+(\.\d+)?\^\{\+[\d.]+\}_\{-[\d.]+\}\$", nli)
    if shutil.which("pdflatex"):
        doc = out.parent / "tables.tex"
        doc.write_text(latex.standalone([p.read_text() for p in sorted((out / "tables").glob("*.tex"))]))
        r = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=doc.parent,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout[-2000:]


def test_latex_escapes_and_intervals():
    assert latex.escape("a_b 5% & #1 {x}") == r"a\_b 5\% \& \#1 \{x\}"
    assert latex.mean_ci(70.0, 68.0, 73.0) == "$70^{+3}_{-2}$"
    assert latex.mean_ci(70.0, math.nan, math.nan) == "$70$" and latex.mean_ci(math.nan, 1, 2) == "--"


def test_no_zero_height_error_bars_and_heatmap_marks():
    one_seed = {"with_mean": 70.0, "with_ci_low": "", "with_ci_high": "", "with_n": 1}
    assert plots.interval(one_seed, "with") is None
    assert plots.interval({"with_mean": 70.0, "with_ci_low": 68.0, "with_ci_high": 73.0}, "with") == (2.0, 3.0)
    assert plots.ci_contains_zero({"diff_ci_low": -1.0, "diff_ci_high": 2.0}) is True
    assert plots.ci_contains_zero({"diff_ci_low": 0.5, "diff_ci_high": 2.0}) is False
    assert plots.ci_contains_zero({"diff_ci_low": "", "diff_ci_high": ""}) is None


def test_changing_one_prediction_changes_the_report(built, tmp_path):
    root, cells, out = built
    shutil.copytree(root / "cells", tmp_path / "cells")
    victim = _cells_of(cells, "synth_nli", "roberta-tiny", "synth_int_sentiment")[0]
    path = tmp_path / "cells" / victim["cell_id"] / "predictions.json"
    preds = json.loads(path.read_text())
    preds["languages"]["de"]["rows"] = [[1.0]] * len(preds["languages"]["de"]["rows"])
    path.write_text(json.dumps(preds))
    write_results(tmp_path, edited(victim, **{"per_language.de": 100.0}))
    out2 = report.build_report(tmp_path, resamples=RESAMPLES)
    old, new = (out / "report.md").read_text(), (out2 / "report.md").read_text()
    other = [c["per_language"]["de"] for c in _cells_of(cells, "synth_nli", "roberta-tiny", "synth_int_sentiment")[1:]]
    expected = f"{statistics.mean([100.0, *other]):.4g}"
    line = next(l for l in new.splitlines() if l.startswith("| roberta-tiny | synth_int_sentiment | none | de |"))
    assert f"| {expected} [" in line and line not in old


def test_real_run_is_not_labelled_synthetic(tmp_path):
    for seed in (0, 1):
        for inter in ("imdb", None):
            write_results(tmp_path, make_results("bert-tiny", inter, "xnli", seed, synthetic=False))
    md = (report.build_report(tmp_path, tmp_path / "r", resamples=RESAMPLES) / "report.md").read_text()
    assert "SYNTHETIC" not in md and "xnli" in md


def test_english_only_target_has_no_transfer_gap(tmp_path):
    for seed in (0, 1):
        for inter in ("synth_int_sentiment", None):
            write_results(tmp_path, make_results("xlnet-tiny", inter, "synth_sentiment_domain", seed,
                                                 per_language={"en": 0.6 + seed / 10}))
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    assert _rows(out / "tables" / "transfer_gap.csv") == []
    assert "| xlnet-tiny | synth_int_sentiment | none | en | 0.65 (n=2), no CI |" in (out / "report.md").read_text()


def _run_main(argv, capsys):
    code = cli_main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


@pytest.mark.parametrize("damage, expect", [
    (lambda p: p.write_text("{not json"), "malformed JSON"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "schema_version": 99})), "schema_version 99"),
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "average"})),
     "missing key 'average'"),
    (lambda p: (p.parent / "predictions.json").write_text("[]"), "not a predictions file"),
])
def test_bad_input_names_the_file_and_keeps_the_old_report(built, tmp_path, capsys, damage, expect):
    root, _, out = built
    shutil.copytree(root / "cells", tmp_path / "cells")
    shutil.copytree(out, tmp_path / "report")
    before = (tmp_path / "report" / "report.md").read_text()
    bad = sorted((tmp_path / "cells").glob("*/results.json"))[3]
    damage(bad)
    code, err = _run_main([str(tmp_path)], capsys)
    assert code != 0 and len(err) == 1
    assert str(bad.parent) in err[0] and expect in err[0]
    assert (tmp_path / "report" / "report.md").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cells", "report"]   # no temp folder left behind


def test_no_results_is_an_error(tmp_path, capsys):
    code, err = _run_main([str(tmp_path), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and len(err) == 1 and str(tmp_path / "cells") in err[0]
    assert not (tmp_path / "r").exists()


def test_bad_benchmark_json_is_an_error(built, tmp_path, capsys):
    root, _, _ = built
    bench = tmp_path / "b.json"
    bench.write_text(json.dumps({"benchmarks": [{"name": "x", "stats": {}}]}))
    code, err = _run_main([str(root), "--out", str(tmp_path / "r"), "--benchmarks", str(bench)], capsys)
    assert code == 2 and str(bench) in err[0] and "stats.median" in err[0]


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["report", "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "RESULTS_DIR" in out and "--benchmarks" in out and "--out" in out


def test_python_m_repro_report_still_works(old, tmp_path):
    """The documented `python -m repro.report RESULTS_DIR` is `python -m repro report RESULTS_DIR`."""
    root, _, _ = old
    r = subprocess.run([sys.executable, "-m", "repro.report", str(root), "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"report: wrote {tmp_path / 'r' / 'report.md'}"


def test_results_builder_is_consistent(tmp_path):
    cells = write_grid(tmp_path)
    assert len(list((tmp_path / "cells").glob("*/results.json"))) == len(cells) == 24
    c = cells[0]
    assert abs(c["transfer_gap"] - (c["per_language"]["en"] - c["average_non_english"])) < 1e-12
    r, p = make_cell(per_language={"en": 61.3, "de": 40.0}, examples=200)
    assert r["per_language"]["en"] == pytest.approx(100 * sum(row[0] for row in p["languages"]["en"]["rows"]) / 200)
    assert r["per_language"]["en"] == pytest.approx(61.5)      # rounded to whole examples
    assert p["languages"]["en"]["ids"] == make_cell(seed=5, examples=200)[1]["languages"]["en"]["ids"]


def test_published_anchors_stand_beside_the_scores_and_never_in_them(tmp_path):
    from repro.report import published

    for inter in ("siqa", None):
        write_results(tmp_path, make_results("e5-small", inter, "udpos", 0, synthetic=False,
                                             per_language={"en": 90.0, "vi": 60.0, "zh": 50.0}))
        write_results(tmp_path, make_results("e5-small", inter, "xcopa", 0, synthetic=False,
                                             per_language={"en": 65.0, "et": 55.0}))
        write_results(tmp_path, make_results("e5-small", inter, "xquad", 0, synthetic=False,
                                             per_language={"en": 65.0, "de": 55.0}))
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    rows = {(r["target_task"], r["language"], r["intermediate_task"]): r
            for r in _rows(out / "tables" / "per_language.csv")}
    avg = rows[("udpos", "average", "siqa")]
    expected = {a.model: a.value for a in published.anchors_for("udpos", "avg")}
    assert expected == {"mBERT": 70.3, "XLM-R": 73.8, "XTREME-R mBERT": 70.9, "XTREME-R XLM-R": 75.0}
    assert {m: float(avg[f"published_{m}"]) for m in expected} == expected
    assert float(avg["with_mean"]) == pytest.approx(200 / 3) and float(avg["without_mean"]) == pytest.approx(200 / 3)
    assert "Table 2" in avg["published_source"] and "average of 33 languages" in avg["published_source"]
    assert "arXiv 2104.07412" in avg["published_source"] and "average of 38 languages" in avg["published_source"]
    assert rows[("udpos", "vi", "siqa")].get("published_mBERT", "") == ""   # no per-language anchor recorded
    md = (out / "report.md").read_text()
    assert ("| e5-small | siqa | none | average (secondary) | 66.67 (n=1), no CI | 66.67 (n=1), no CI | 0 (n=1), "
            "no CI | — | — | — | no interval | mBERT 70.3; XLM-R 73.8; XTREME-R mBERT 70.9; XTREME-R XLM-R 75 |") in md
    xcopa = md[md.index("### xcopa"):].split("###")[1]
    assert "XTREME-R mBERT 56.1" in xcopa and "transcription unchecked" in xcopa
    xquad = md[md.index("### xquad"):].split("###")[1]
    assert "no number of the XTREME papers is recorded for this task" in xquad


def test_training_compute_names_the_task_that_trained_a_target_without_train_data(tmp_path):
    r = make_results("e5-small", None, "mlqa", 0, synthetic=False, per_language={"en": 20.0, "de": 10.0})
    r["training"]["target"]["train_task"] = "tydiqa"
    write_results(tmp_path, r)
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    (row,) = _rows(out / "tables" / "training_cost.csv")
    assert (row["target_task"], row["phase_task"]) == ("mlqa", "tydiqa")
    assert "| mlqa | e5-small | none | all | target | tydiqa |" in (out / "report.md").read_text()


def test_a_diverged_cell_is_listed_and_never_scored(tmp_path):
    from repro.results import Divergence
    write_cells(tmp_path, smoke_grid_v3(seeds=(0,)))
    cell_id = "bert-tiny__int-synth_int_sentiment__tgt-synth_tagging__seed1"
    d = tmp_path / "cells" / cell_id
    d.mkdir(parents=True)
    Divergence(cell_id=cell_id, phase="target", step=17, message=f"{cell_id}: target phase diverged: loss nan at "
               "step 17", last_checkpoint="target/checkpoints/best", config={}).write(d / "diverged.json")
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    md = (out / "report.md").read_text()
    assert "**1 cell(s) diverged**" in md and "## Diverged cells" in md
    assert f"| {cell_id} | target | 17 | target/checkpoints/best |" in md
    assert [r["cell_id"] for r in _rows(out / "tables" / "diverged.csv")] == [cell_id]
    # never a score: the cell is in no score table
    for name in ("per_language", "cells", "transfer_gap"):
        assert cell_id not in (out / "tables" / f"{name}.csv").read_text()


def test_latency_equality_is_an_equivalence_test_within_3_percent():
    from repro.report.efficiency import identical_by_construction_rows
    from repro.results import CellResults

    def cells(with_ms, without_ms):
        out = []
        for seed, (a, b) in enumerate(zip(with_ms, without_ms)):
            for inter, ms in (("synth_int_sentiment", a), (None, b)):
                r = make_results("bert-tiny", inter, "synth_nli", seed)
                r["inference"]["latency_ms_median"] = ms
                out.append(CellResults.from_dict(r, r["cell_id"]))
        return out
    # Means 10.0 vs 10.0, pooled sd 0.1, n 3+3: 90 % CI ±2.132·0.1·√(2/3) = ±0.174 inside ±0.3.
    (row,) = identical_by_construction_rows(cells([9.9, 10.0, 10.1], [9.9, 10.0, 10.1]))
    assert row["latency_equivalent"] == "yes" and row["latency_margin_ms"] == pytest.approx(0.3)
    assert row["latency_ci90_high_ms"] == pytest.approx(2.131847 * 0.1 * math.sqrt(2 / 3), rel=1e-5)
    # The same means with sd 1: the interval ±1.74 is wider than the margin: equality not shown.
    (row,) = identical_by_construction_rows(cells([9.0, 10.0, 11.0], [9.0, 10.0, 11.0]))
    assert row["latency_equivalent"] == "no"
    (row,) = identical_by_construction_rows(cells([10.0], [10.0]))
    assert row["latency_equivalent"] == "not measured"


def test_a_control_arm_adds_intermediate_vs_control_and_control_vs_none(tmp_path):
    from repro.results import CellResults

    if "control_for" not in CellResults.__dataclass_fields__:
        pytest.skip("results.json has no control_for field in this tree")
    made = []
    for s in range(3):
        for inter, bonus in (("synth_int_sentiment", 6.0), ("control", 2.0), (None, 0.0)):
            r, p = make_cell("bert-tiny", inter, "synth_nli", s, per_language={"en": 70 + bonus, "de": 60 + bonus + s})
            if inter == "control":
                r["control_for"] = "synth_int_sentiment"
            made.append((r, p))
    write_cells(tmp_path, made)
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    rows = [r for r in _rows(out / "tables" / "per_language.csv") if r["language"] == "non_english"]
    by = {(r["intermediate_task"], r["baseline"]): r for r in rows}
    assert set(by) == {("synth_int_sentiment", "none"), ("synth_int_sentiment", "control"), ("control", "none")}
    assert by[("synth_int_sentiment", "control")]["contrast"] == "intermediate vs control"
    assert float(by[("synth_int_sentiment", "control")]["diff_mean"]) == pytest.approx(4.0, abs=0.5)
    assert float(by[("control", "none")]["diff_mean"]) == pytest.approx(2.0, abs=0.5)
    assert all(r["diff_verdict"] in stats.VERDICTS for r in rows)
    detect = _rows(out / "tables" / "detectable.csv")
    assert len(detect) == 3


def test_the_smallest_effect_of_interest_comes_from_the_results_config(tmp_path):
    made = []
    for s in range(3):
        for inter in ("synth_int_sentiment", None):
            r, p = make_cell("bert-tiny", inter, "synth_nli", s, per_language={"en": 70, "de": 60 + s})
            r["config"]["report"] = {"smallest_effect": 2.0, "smallest_effect_per_task": {"synth_nli": 5.0}}
            made.append((r, p))
    write_cells(tmp_path, made)
    out = report.build_report(tmp_path, resamples=RESAMPLES)
    (row,) = _rows(out / "tables" / "detectable.csv")
    # Both arms score the same in every seed: per-seed differences 0; the example part alone, inside ±5.
    assert row["diff_delta"] == "5.0" and row["diff_verdict"] == "equivalent"
