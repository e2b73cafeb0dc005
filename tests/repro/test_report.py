"""The report: files written, numbers traced to the results files, bad input refused without damage."""
from __future__ import annotations

import csv
import json
import math
import shutil
import statistics
import subprocess
import sys

import pytest

from repro import report
from repro.__main__ import main as cli_main
from repro.report.rows import pareto_front
from tests.support.paths import ROOT
from tests.support.results_files import edited, make_results, write_grid, write_results

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One smoke-shaped run and its report (plots take a second or two: build once)."""
    root = tmp_path_factory.mktemp("run")
    cells = write_grid(root)
    bench = root / "bench.json"
    bench.write_text(json.dumps(_bench_json()))
    out = report.build_report(root, benchmarks=bench)
    return root, cells, out


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


def test_report_files_and_plots(built):
    root, cells, out = built
    assert out == root / "report"
    md = (out / "report.md").read_text()
    assert md.startswith("# xtreme-transfer report — SYNTHETIC RUN")
    pngs = sorted(p.name for p in (out / "plots").glob("*.png"))
    for task in ("synth_sentiment", "synth_nli"):
        for stem in ("scores", "pareto_latency", "pareto_params"):
            assert f"{stem}_{task}.png" in pngs
            assert f"plots/{stem}_{task}.png" in md
    assert {"transfer_gap.png", "training_cost.png", "benchmark_latency.png"} <= set(pngs)
    for p in (out / "plots").glob("*.png"):
        data = p.read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 5000, p
    for name in ("per_language", "transfer_gap", "efficiency", "accuracy_efficiency", "training_cost",
                 "environment", "config_common", "config_varying", "cells", "benchmarks"):
        assert (out / "tables" / f"{name}.csv").stat().st_size > 0, name
    claims = json.loads((out / "claims.json").read_text())
    assert [c["id"] for c in claims] == list(range(1, 11))
    assert len(_rows(out / "claims.csv")) == 10
    assert set(json.loads((out / "configs.json").read_text())) == {c["cell_id"] for c in cells}
    varying = _rows(out / "tables" / "config_varying.csv")
    assert set(varying[0]) == {"cell_id", "cell.model", "cell.intermediate_task", "cell.target_task", "cell.seed"}
    common = {r["key"]: r for r in _rows(out / "tables" / "config_common.csv")}
    assert common["models.xlnet-tiny.family"]["cells"] == str(len(cells) // 3)
    assert common["target.epochs"]["value"] == "2.0" and "| target.epochs | 2 | 24 |" in md


def _cells_of(cells, task, model, inter):
    return [c for c in cells if c["target_task"] == task and c["model"]["name"] == model
            and (c["intermediate_task"] or "none") == inter]


def test_every_per_language_number_is_recomputed_from_the_results(built):
    _, cells, out = built
    rows = _rows(out / "tables" / "per_language.csv")
    assert len(rows) == 2 * 3 * 4     # tasks × models × (3 languages + average)
    for r in rows:
        get = (lambda c: c["average"]) if r["language"] == "average" else (lambda c: c["per_language"][r["language"]])
        w = _cells_of(cells, r["target_task"], r["model"], r["intermediate_task"])
        wo = _cells_of(cells, r["target_task"], r["model"], "none")
        assert float(r["with_mean"]) == pytest.approx(statistics.mean(map(get, w)), abs=1e-12)
        assert float(r["with_std"]) == pytest.approx(statistics.stdev(map(get, w)), abs=1e-12)
        assert float(r["without_mean"]) == pytest.approx(statistics.mean(map(get, wo)), abs=1e-12)
        base = {c["seed"]: get(c) for c in wo}
        diffs = [get(c) - base[c["seed"]] for c in w]
        assert float(r["diff_mean"]) == pytest.approx(statistics.mean(diffs), abs=1e-12)
        assert int(r["diff_n"]) == 2


def test_efficiency_and_training_tables_come_from_the_results(built):
    _, cells, out = built
    for r in _rows(out / "tables" / "efficiency.csv"):
        cs = [c for c in cells if c["target_task"] == r["target_task"] and c["model"]["name"] == r["model"]]
        assert int(r["params_total"]) == cs[0]["param_count"]["total"]
        assert int(r["params_embedding"]) == cs[0]["param_count"]["embedding"]
        assert float(r["latency_ms_mean"]) == pytest.approx(
            statistics.mean(c["inference"]["latency_ms_median"] for c in cs), abs=1e-12)
    for r in _rows(out / "tables" / "training_cost.csv"):
        cs = _cells_of(cells, r["target_task"], r["model"], r["intermediate_task"])
        assert float(r["wall_time_s_mean"]) == pytest.approx(
            statistics.mean(c["training"][r["phase"]]["wall_time_s"] for c in cs), abs=1e-12)
    for r in _rows(out / "tables" / "transfer_gap.csv"):
        cs = _cells_of(cells, r["target_task"], r["model"], r["intermediate_task"])
        assert float(r["gap_with_mean"]) == pytest.approx(statistics.mean(c["transfer_gap"] for c in cs), abs=1e-12)
    bench = _rows(out / "tables" / "benchmarks.csv")
    assert [float(b["median_ms"]) for b in bench] == pytest.approx([1.23, 4.56])
    assert bench[1]["impl"] == "torch" and bench[1]["params.total"] == "57000"
    md = (out / "report.md").read_text()
    assert "| test_latency[torch-bert-tiny] | forward | torch | bert | bert-tiny | sequence_classification | 8 | 64 " \
           "| float32 | 4.56 | 5.016 | 0.456 | 7 | 57,000 | 32,000 | 12,345,678 |" in md


def test_changing_one_results_value_changes_the_report(built, tmp_path):
    root, cells, out = built
    shutil.copytree(root / "cells", tmp_path / "cells")
    victim = _cells_of(cells, "synth_nli", "roberta-tiny", "synth_int_sentiment")[0]
    changed = edited(victim, **{"per_language.de": 0.123456})
    write_results(tmp_path, changed)
    out2 = report.build_report(tmp_path, benchmarks=root / "bench.json")
    old, new = (out / "report.md").read_text(), (out2 / "report.md").read_text()
    assert old != new
    other = _cells_of(cells, "synth_nli", "roberta-tiny", "synth_int_sentiment")[1]["per_language"]["de"]
    expected = f"{statistics.mean([0.123456, other]):.4g}"
    line = next(l for l in new.splitlines() if l.startswith("| roberta-tiny | synth_int_sentiment | de |")
                and expected in l)
    assert line not in old
    changed_lines = set(new.splitlines()) ^ set(old.splitlines())
    # The roberta de row of synth_nli (old and new) and the results path line; nothing else.
    assert all("roberta-tiny | synth_int_sentiment | de" in l or l.startswith("Results:") for l in changed_lines), changed_lines


def test_real_run_is_not_labelled_synthetic(tmp_path):
    for seed in (0, 1):
        for inter in ("imdb", None):
            write_results(tmp_path, make_results("bert-tiny", inter, "xnli", seed, synthetic=False))
    md = (report.build_report(tmp_path, tmp_path / "r") / "report.md").read_text()
    assert "SYNTHETIC" not in md and "xnli" in md


def test_english_only_target_without_transfer_gap(tmp_path):
    for seed in (0, 1):
        for inter in ("synth_int_sentiment", None):
            r = make_results("xlnet-tiny", inter, "synth_sentiment_domain", seed, per_language={"en": 0.6 + seed / 10})
            write_results(tmp_path, r)
    out = report.build_report(tmp_path)
    gap = _rows(out / "tables" / "transfer_gap.csv")
    assert gap[0]["gap_with_mean"] == "" and gap[0]["gap_with_n"] == "0"
    assert "| xlnet-tiny | synth_int_sentiment | en | 0.65 ± 0.07071 (n=2) |" in (out / "report.md").read_text()


def _run_main(argv, capsys):
    code = cli_main(["report", *argv])
    captured = capsys.readouterr()
    return code, captured.err.strip().splitlines()


@pytest.mark.parametrize("damage, expect", [
    (lambda p: p.write_text("{not json"), "malformed JSON"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "schema_version": 99})), "schema_version 99"),
    (lambda p: p.write_text(json.dumps({k: v for k, v in json.loads(p.read_text()).items() if k != "average"})),
     "missing key 'average'"),
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
    assert str(bad) in err[0] and expect in err[0]
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


def test_python_m_repro_report_still_works(built, tmp_path):
    """The documented `python -m repro.report RESULTS_DIR` is `python -m repro report RESULTS_DIR`."""
    root, _, _ = built
    r = subprocess.run([sys.executable, "-m", "repro.report", str(root), "--out", str(tmp_path / "r")],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == f"report: wrote {tmp_path / 'r' / 'report.md'}"


def test_pareto_front():
    pts = [(1.0, 0.5), (2.0, 0.7), (2.0, 0.6), (3.0, 0.7), (0.5, 0.4), (math.nan, 0.9)]
    assert pareto_front(pts) == [True, True, False, False, True, False]


def test_results_builder_is_consistent(tmp_path):
    cells = write_grid(tmp_path)
    assert len(list((tmp_path / "cells").glob("*/results.json"))) == len(cells) == 24
    c = cells[0]
    assert abs(c["transfer_gap"] - (c["per_language"]["en"] - c["average_non_english"])) < 1e-12


def test_published_anchors_stand_beside_the_scores_and_never_in_them(tmp_path):
    from repro.report import published

    for inter in ("siqa", None):
        write_results(tmp_path, make_results("e5-small", inter, "udpos", 0, synthetic=False,
                                             per_language={"en": 90.0, "vi": 60.0, "zh": 50.0}))
        write_results(tmp_path, make_results("e5-small", inter, "xcopa", 0, synthetic=False,
                                             per_language={"en": 65.0, "et": 55.0}))
    out = report.build_report(tmp_path)
    rows = {(r["target_task"], r["language"], r["intermediate_task"]): r for r in _rows(out / "tables" / "per_language.csv")}
    avg = rows[("udpos", "average", "siqa")]
    expected = {a.model: a.value for a in published.anchors_for("udpos", "avg")}
    assert expected == {"mBERT": 70.3, "XLM-R": 73.8}
    assert {m: float(avg[f"published_{m}"]) for m in expected} == expected
    assert float(avg["with_mean"]) == pytest.approx(200 / 3) and float(avg["without_mean"]) == pytest.approx(200 / 3)
    assert "Table 2" in avg["published_source"] and "average of 33 languages" in avg["published_source"]
    assert rows[("udpos", "vi", "siqa")].get("published_mBERT", "") == ""   # no per-language anchor recorded
    md = (out / "report.md").read_text()
    assert "| e5-small | siqa | average | 66.67 (n=1) | 66.67 (n=1) | 0 (n=1) | mBERT 70.3; XLM-R 73.8 |" in md
    xcopa = md[md.index("### xcopa"):]
    assert "no number of the XTREME papers is recorded for this task" in xcopa.split("###")[1]


def test_training_cost_names_the_task_that_trained_a_target_without_train_data(tmp_path):
    r = make_results("e5-small", None, "mlqa", 0, synthetic=False, per_language={"en": 20.0, "de": 10.0})
    r["training"]["target"]["train_task"] = "tydiqa"
    write_results(tmp_path, r)
    out = report.build_report(tmp_path)
    (row,) = _rows(out / "tables" / "training_cost.csv")
    assert (row["target_task"], row["phase_task"]) == ("mlqa", "tydiqa")
    assert "| mlqa | e5-small | none | target | tydiqa |" in (out / "report.md").read_text()
