"""Output folders are the user's (repro.outputs): `repro report --out`, run/grid output_dir and --json files
write only into what is absent, empty or their own earlier output, refuse anything else with one line and
exit 2, and delete nothing they did not create. Through the CLI entry (`main`) as a user runs it."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from repro import outputs
from repro.__main__ import main as cli_main
from repro.errors import OutputDirError
from tests.support.cli import SMOKE
from tests.support.results_files import make_cell, write_cells


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (symlinks not followed) with its content's hash: what must not change."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            out[rel] = "link" if p.is_symlink() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run folder (cells with results and predictions, a checkpoint, repro.log), read by the report."""
    root = tmp_path_factory.mktemp("run")
    write_cells(root, [make_cell("bert-tiny", i, "synth_sentiment", s) for i in ("synth_int_sentiment", None)
                       for s in (0, 1)])
    ckpt = next((root / "cells").iterdir()) / "target" / "ckpt" / "best" / "12"
    ckpt.mkdir(parents=True)
    (ckpt / "state").write_bytes(b"weights")
    (root / "repro.log").write_text("=== grid\n")
    return root


@pytest.fixture(autouse=True)
def one_plot(monkeypatch):
    """One small figure instead of the report's dozen (drawn in test_report): these tests are about folders."""
    from repro.report import build

    def write_plots(tables, bench, plot_dir, synthetic):
        (plot_dir / "scores.png").write_bytes(b"\x89PNG\r\n\x1a\n")
        return ["scores.png"]
    monkeypatch.setattr(build.plots, "write_plots", write_plots)


@pytest.fixture()
def run(run_dir, tmp_path):
    """A private copy of the run (tests may try to damage it)."""
    dst = tmp_path / "my run"
    shutil.copytree(run_dir, dst)
    return dst


def report(capsys, results, *more) -> tuple[int, list[str]]:
    code = cli_main(["report", str(results), *map(str, more)])
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def test_out_equal_to_the_run_is_refused_and_the_run_is_untouched(run, capsys):
    before = tree(run)
    code, err = report(capsys, run, "--out", run)
    assert code == 2 and len(err) == 1 and "is the folder it reads" in err[0] and str(run) in err[0]
    assert tree(run) == before
    # the run's own parts and a folder that holds the run are refused too
    for out in (run / "cells", run / "cells" / "new", run / "intermediate" / "x", run.parent):
        code, err = report(capsys, run, "--out", out)
        assert code == 2 and len(err) == 1, (out, err)
    assert tree(run) == before
    assert sorted(p.name for p in run.parent.iterdir()) == ["my run"]   # no temp folder beside it either


def test_a_folder_of_other_files_is_refused_and_kept(run, tmp_path, capsys):
    thesis = tmp_path / "my thesis"   # a space in the name
    (thesis / "figs").mkdir(parents=True)
    (thesis / "thesis.tex").write_text("\\documentclass{article}")
    (thesis / "figs" / "a.png").write_bytes(b"png")
    before = tree(thesis)
    code, err = report(capsys, run, "--out", thesis)
    assert code == 2 and len(err) == 1
    assert str(thesis) in err[0] and ("thesis.tex" in err[0] or "figs" in err[0])
    assert tree(thesis) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["my run", "my thesis"]


def test_another_run_as_out_is_refused(run, tmp_path, capsys):
    other = tmp_path / "other run"
    shutil.copytree(run, other)
    before = tree(other)
    code, err = report(capsys, run, "--out", other)
    assert code == 2 and len(err) == 1 and "holds a run" in err[0]
    assert tree(other) == before


def test_a_symlinked_folder_is_judged_by_what_it_points_to(run, tmp_path, capsys):
    # a link to the run itself
    link = tmp_path / "link to run"
    link.symlink_to(run, target_is_directory=True)
    before = tree(run)
    code, err = report(capsys, run, "--out", link)
    assert code == 2 and len(err) == 1 and str(run) in err[0]
    assert tree(run) == before and link.is_symlink()
    # a link to a folder of the user's files
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("mine")
    (tmp_path / "link to docs").symlink_to(docs, target_is_directory=True)
    code, err = report(capsys, run, "--out", tmp_path / "link to docs")
    assert code == 2 and len(err) == 1 and (docs / "notes.md").read_text() == "mine"
    assert os.listdir(docs) == ["notes.md"]
    # a link to an empty folder: the report lands there, the link stays a link
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "link to empty").symlink_to(empty, target_is_directory=True)
    code, err = report(capsys, run, "--out", tmp_path / "link to empty")
    assert code == 0, err
    assert (tmp_path / "link to empty").is_symlink() and (empty / "report.md").is_file()


def test_empty_and_absent_folders_get_the_report(run, tmp_path, capsys):
    empty = tmp_path / "an empty folder"
    empty.mkdir()
    assert report(capsys, run, "--out", empty)[0] == 0
    assert (empty / "report.md").is_file() and (empty / outputs.marker_name("report")).is_file()
    absent = tmp_path / "new" / "deeper"
    assert report(capsys, run, "--out", absent)[0] == 0
    assert (absent / "report.md").is_file()


def test_a_previous_report_is_replaced_and_the_default_still_works(run, capsys):
    assert report(capsys, run)[0] == 0
    first = (run / "report" / "report.md").stat().st_ino
    (run / "report" / "INCOMPLETE").write_text("run_all.sh's note")   # a companion the package itself adds
    assert report(capsys, run)[0] == 0
    assert (run / "report" / "report.md").stat().st_ino != first and not (run / "report" / "INCOMPLETE").exists()
    assert sorted(p.name for p in run.iterdir()) == [".xtreme-transfer-run", "cells", "report", "repro.log"] or \
        sorted(p.name for p in run.iterdir()) == ["cells", "report", "repro.log"]


def test_a_file_added_to_a_previous_report_stops_the_replace(run, capsys):
    assert report(capsys, run)[0] == 0
    (run / "report" / "my notes.md").write_text("keep me")
    code, err = report(capsys, run)
    assert code == 2 and len(err) == 1 and "my notes.md" in err[0]
    assert (run / "report" / "my notes.md").read_text() == "keep me" and (run / "report" / "report.md").exists()


def test_a_report_folder_without_the_marker_is_refused(run, tmp_path, capsys):
    out = tmp_path / "r"
    assert report(capsys, run, "--out", out)[0] == 0
    (out / outputs.marker_name("report")).unlink()
    (out / "draft.tex").write_text("mine")   # not a report's own file: no shape to recognise it by
    before = tree(out)
    code, err = report(capsys, run, "--out", out)
    assert code == 2 and len(err) == 1 and "not a report written by" in err[0]
    assert tree(out) == before


def test_a_report_from_before_the_marker_is_still_replaced(run, capsys):
    """Nothing that works today changes: a report folder written before the marker (exactly a report's files)
    is replaced as before."""
    assert report(capsys, run)[0] == 0
    (run / "report" / outputs.marker_name("report")).unlink()
    assert report(capsys, run)[0] == 0
    assert (run / "report" / outputs.marker_name("report")).is_file()


def test_leftovers_of_others_beside_the_output_are_not_touched(run, tmp_path, capsys):
    """Recovery after a killed report removes only its own temp/aside folders: a user's folder that happens to
    match the naming (not empty, no marker) stays."""
    out = tmp_path / "rep"
    theirs = tmp_path / ".rep.tmp-999999999-x"
    theirs.mkdir()
    (theirs / "data.csv").write_text("1,2")
    aside = tmp_path / ".rep.old-y"
    aside.mkdir()
    (aside / "rep").mkdir()
    (aside / "rep" / "x.txt").write_text("x")
    assert report(capsys, run, "--out", out)[0] == 0
    assert (theirs / "data.csv").read_text() == "1,2" and (aside / "rep" / "x.txt").read_text() == "x"


def test_replace_dir_rechecks_the_target(tmp_path):
    """A folder that filled with the user's files after the check is not moved aside."""
    out = tmp_path / "out"
    outputs.check_output_dir(out, "report")
    tmp = outputs.new_temp_dir(out, "report")
    (tmp / "a.txt").write_text("new")
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    with pytest.raises(OutputDirError):
        outputs.replace_dir(tmp, out, "report")
    assert os.listdir(out) == ["mine.txt"]


# ---- run / grid output_dir ------------------------------------------------------------------------------

def test_run_output_dir_with_other_files_is_refused(tmp_path, capsys):
    folder = tmp_path / "my papers"
    folder.mkdir()
    (folder / "thesis.tex").write_text("mine")
    code = cli_main(["run", str(SMOKE), f"output_dir={folder}", "--no-preflight"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "thesis.tex" in err[0] and str(folder) in err[0], err
    assert os.listdir(folder) == ["thesis.tex"]


def test_run_output_dir_that_is_a_report_or_inside_a_run_is_refused(run, tmp_path):
    with pytest.raises(OutputDirError):
        outputs.claim_run_dir(run / "cells" / "x")
    rep = tmp_path / "rep"
    rep.mkdir()
    outputs._write_marker(rep, "report", [])
    with pytest.raises(OutputDirError, match="not a run"):
        outputs.claim_run_dir(rep)


def test_run_output_dir_accepts_absent_empty_and_previous_runs(run, tmp_path):
    outputs.claim_run_dir(tmp_path / "new")
    (tmp_path / "empty").mkdir()
    outputs.claim_run_dir(tmp_path / "empty")
    (run / "features").mkdir()   # the feature cache's default home
    outputs.claim_run_dir(run)   # a run from before the marker: resumed, then marked
    assert (run / outputs.marker_name("run")).is_file()
    (run / "notes.txt").write_text("mine")   # a marked run may hold the user's notes
    outputs.claim_run_dir(run)


# ---- --json files ---------------------------------------------------------------------------------------

def test_json_output_replaces_only_its_own_file(tmp_path):
    path = tmp_path / "out.json"
    outputs.write_json_output(path, {"a": 1}, "check")
    outputs.write_json_output(path, {"a": 2}, "check")
    assert json.loads(path.read_text())["a"] == 2
    mine = tmp_path / "mine.json"
    mine.write_text('{"a": 0}')
    with pytest.raises(OutputDirError, match="not written by"):
        outputs.write_json_output(mine, {"a": 1}, "check")
    assert mine.read_text() == '{"a": 0}'
    with pytest.raises(OutputDirError, match="is a folder"):
        outputs.write_json_output(tmp_path, {"a": 1}, "check")


@pytest.mark.parametrize("command", [["check-train-parity", "no-such-model"], ["fine-tune-parity", str(SMOKE)]])
def test_json_of_the_parity_commands_never_overwrites_a_users_file(command, tmp_path, capsys):
    """Refused before any work: the user's file stays, exit 2, one line."""
    mine = tmp_path / "my results.json"
    mine.write_text('{"accuracy": 91.2}')
    assert cli_main([*command, "--json", str(mine)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "was not written by" in err[0] and str(mine) in err[0], err
    assert mine.read_text() == '{"accuracy": 91.2}'


def test_a_folder_holding_only_the_feature_cache_is_a_run_to_resume(tmp_path):
    """`repro plan --from data` (and a test) leave the feature cache in a preset's output_dir before any cell ran:
    `./run_all.sh` then refused its own folder ("holds files that are not a run ('features')"). A feature cache
    of this package's shape is a run's part; a `features` folder of anything else is still refused."""
    from repro import outputs

    run = tmp_path / "run"
    (run / "features" / ".locks").mkdir(parents=True)
    (run / "features" / "index").mkdir()
    (run / "features" / ("0123456789abcdef" * 2)).mkdir()
    assert outputs.is_run_dir(run)
    outputs.claim_run_dir(run)
    assert (run / outputs.marker_name("run")).exists()
    other = tmp_path / "other"
    (other / "features").mkdir(parents=True)
    (other / "features" / "notes.txt").write_text("mine")
    with pytest.raises(outputs.OutputDirError, match="not a run"):
        outputs.claim_run_dir(other)
    assert (other / "features" / "notes.txt").read_text() == "mine"
