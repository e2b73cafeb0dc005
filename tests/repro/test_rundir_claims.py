"""A run folder claimed by an older version (its config.yaml lacks keys added since) is still the same run,
so a rerun skips or resumes its cells; a real difference is still refused."""
from __future__ import annotations

import pytest
import yaml

from repro import config, rundir
from repro.errors import OutputDirError
from tests.support.cli import SMOKE


def _cell(overrides=()):
    return config.to_dict(config.load(SMOKE, ["grid.models=[bert-tiny]", *overrides]).cells()[0])


def test_a_folder_from_before_new_keys_is_the_same_run_and_a_changed_one_is_not(tmp_path):
    new = _cell()
    old = {k: v for k, v in new.items() if k not in ("attention", "remat", "report", "precision")}
    old["grid"] = {k: v for k, v in new["grid"].items() if k not in ("pairings", "analysis", "sweep", "control_for")}
    assert old != new
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    (tmp_path / "results.json").write_text("{}")   # progress: a different config would be refused
    rundir.claim_folder(tmp_path, new, "cell")       # the keys it lacks take their defaults: the same run
    assert yaml.safe_load((tmp_path / "config.yaml").read_text()) == old   # and the old file is left as it was
    with pytest.raises(OutputDirError, match="another config .*cell.seed: 0 -> 1"):
        rundir.claim_folder(tmp_path, {**new, "cell": {**new["cell"], "seed": 1}}, "cell")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({**old, "remat": True}, sort_keys=False))
    with pytest.raises(OutputDirError, match="another config"):   # a key the old run set otherwise still counts
        rundir.claim_folder(tmp_path, new, "cell")
