"""What a user gets wrong gives one line on stderr, exit status 2, and loses nothing already written."""
from __future__ import annotations

import shutil

import numpy as np

from tests.support.cli import SMOKE, best_params, cli, snapshot, tiny_overrides

CELL = "bert-tiny__int-none__tgt-synth_sentiment__seed0"


def one_line_error(r, needle: str) -> str:
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    err = r.stderr.strip()
    assert "\n" not in err and err.startswith("error: ") and needle in err, err
    return err


def test_missing_data(tmp_path):
    r = cli("run", SMOKE, *tiny_overrides(tmp_path / "out", **{
        "data.source": "xtreme", "data.data_dir": tmp_path / "no-such-download",
        "models.bert-tiny.tokenizer": "synthetic:bert"}), "--no-preflight")
    one_line_error(r, "error: data: cannot load synth_sentiment train/en from xtreme")


def test_unwritable_output_dir(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("precious")
    r = cli("run", SMOKE, *tiny_overrides(blocker / "out"))
    one_line_error(r, f"output_dir {blocker / 'out'} is not writable")
    assert blocker.read_text() == "precious"


def test_checkpoint_or_config_of_another_model(tmp_path):
    out = tmp_path / "out"
    r = cli("run", SMOKE, *tiny_overrides(out, **{"target.max_steps": 6}))
    assert r.returncode == 0, r.stderr[-3000:]
    before = snapshot(out / "cells")

    # The same cell folder asked to hold a run of a different model: refused before anything is touched.
    r = cli("run", SMOKE, *tiny_overrides(out, **{"target.max_steps": 6,
                                                  "models.bert-tiny.hf_config.hidden_size": 64}))
    one_line_error(r, "holds a cell with another config (models.bert-tiny.hf_config.hidden_size: 32 -> 64)")

    # A checkpoint of a bert model dropped into the folder of a roberta cell.
    other = out / "cells" / CELL.replace("bert-tiny", "roberta-tiny")
    shutil.copytree(out / "cells" / CELL / "target" / "ckpt", other / "target" / "ckpt")
    copied = snapshot(other)
    r = cli("run", SMOKE, *tiny_overrides(out, model="roberta-tiny", **{"target.max_steps": 6}))
    one_line_error(r, "was written by another run (config.cell.model: 'bert-tiny' -> 'roberta-tiny')")
    assert snapshot(out / "cells" / CELL) == {k[len(CELL) + 1:]: v for k, v in before.items()
                                              if k.startswith(CELL + "/")}
    after = snapshot(other)
    assert {k: v for k, v in after.items() if k != "config.yaml"} == copied


def test_non_finite_loss_names_cell_phase_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "out"
    blow_up = tiny_overrides(out, **{"target.optimizer.learning_rate": 1e4, "target.optimizer.clip_norm": 0,
                                     "target.optimizer.warmup_fraction": 0.5, "target.checkpoint_every": 1,
                                     "target.eval_every": 1})
    r = cli("run", SMOKE, *blow_up)
    # The line names the cell, the phase and the step (one run serves both checks: the suite's time).
    err = one_line_error(r, f"{CELL}: target phase diverged: non-finite training loss")
    assert " at step " in err and "last good checkpoint: " in err and "none yet" not in err, err
    target = out / "cells" / CELL / "target"
    good = snapshot(target / "ckpt")
    assert not (out / "cells" / CELL / "results.json").exists()
    assert all(np.isfinite(v).all() for v in best_params(target).values())
    r = cli("run", SMOKE, *blow_up)        # the rerun hits the same wall and touches nothing
    assert one_line_error(r, "non-finite training loss") == err
    assert snapshot(target / "ckpt") == good


def test_recorded_divergence_is_never_a_score(tmp_path):
    """on_divergence: record: diverged.json says where, no results.json, the grid goes on and counts the cell
    finished; a rerun does not train it again."""
    import json

    out = tmp_path / "out"
    blow_up = tiny_overrides(out, **{"target.optimizer.learning_rate": 1e4, "target.optimizer.clip_norm": 0,
                                     "target.checkpoint_every": 1, "on_divergence": "record"})
    r = cli("run", SMOKE, *blow_up)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr.strip().startswith(f"DIVERGED {CELL}: target phase diverged") and "diverged.json" in r.stderr
    cell = out / "cells" / CELL
    assert not (cell / "results.json").exists() and not (cell / "predictions.json").exists()
    record = json.loads((cell / "diverged.json").read_text())
    assert record["phase"] == "target" and record["step"] >= 1 and record["cell_id"] == CELL
    before = snapshot(cell)
    r = cli("run", SMOKE, *blow_up)         # finished (diverged) already: nothing trained, nothing touched
    assert r.returncode == 0 and "DIVERGED" in r.stderr
    assert snapshot(cell) == before
    # with the default (stop), the same folder is a failure to fix, not a finished cell
    r = cli("run", SMOKE, *blow_up[:-1])
    assert r.returncode == 2 and "non-finite training loss" in r.stderr
