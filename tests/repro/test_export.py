"""`repro export`: a finished cell's model as a transformers folder with a model card (repro.study.export)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from repro.study import export
from tests.support.cli import CELL, cli, results


@pytest.fixture(scope="module")
def exported(sweep_run, tmp_path_factory):
    """The sweep's first cell exported by the command (in this process: jax is imported already): (cell, OUT)."""
    from repro.__main__ import main

    cell = sweep_run.out / "cells" / f"{CELL}__lr1e-03"
    out = tmp_path_factory.mktemp("export") / "model"
    assert main(["export", str(cell), str(out)]) == 0
    return cell, out


def test_transformers_loads_the_export_and_reproduces_the_cells_english_logits(exported):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import data_prep as dp
    from repro import config
    from repro.study import cell as cell_mod
    from repro.study import inputs

    cell, out = exported
    cfg = config.load(cell / "config.yaml").resolved_cell()
    task = dp.get_task(cfg.cell.target_task)
    _, test, _ = cell_mod.load_eval_splits(cfg, task)
    english = test["en"]
    ours, tokenizer, _ = export.load_best_model(cell, cfg, results_of(cell))
    feats = dp.featurize(task, english, tokenizer, inputs.max_length(cfg, task))

    hf_tok = AutoTokenizer.from_pretrained(out)
    hf_feats = dp.featurize(task, english, hf_tok, inputs.max_length(cfg, task))
    for k in ("input_ids", "attention_mask", "token_type_ids"):
        np.testing.assert_array_equal(hf_feats.arrays[k], feats.arrays[k], err_msg=k)   # the same tokenizer

    a = feats.arrays
    flax_logits = np.asarray(ours(a["input_ids"], attention_mask=a["attention_mask"],
                                  token_type_ids=a["token_type_ids"]).logits)
    model = AutoModelForSequenceClassification.from_pretrained(out).eval()
    assert not model.training and type(model).__name__ == "BertForSequenceClassification"
    with torch.no_grad():
        torch_logits = model(**{k: torch.as_tensor(np.asarray(a[k], dtype=np.int64))
                                for k in ("input_ids", "attention_mask", "token_type_ids")}).logits.numpy()
    assert np.max(np.abs(torch_logits - flax_logits)) <= 1e-4
    # ... and they are the logits the cell scored: English accuracy as results.json has it
    gold = np.array([task.labels.index(e.label) for e in english])
    assert 100 * np.mean(torch_logits.argmax(-1) == gold) == pytest.approx(results(cell)["per_language"]["en"])
    assert model.config.id2label == dict(enumerate(task.labels))


def results_of(cell):
    from repro.results import load_cell

    return load_cell(cell / "results.json")


def test_the_model_card_has_the_hub_metadata_and_every_languages_score(exported):
    from huggingface_hub import ModelCard

    from repro.results import CellResults

    cell, out = exported
    r = results(cell)
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert data.language == sorted(r["per_language"]) and data.license == "other"
    assert data.library_name == "transformers" and data.pipeline_tag == "text-classification"
    assert {"xtreme-transfer", "cross-lingual-transfer", "synthetic"} <= set(data.tags)
    assert data.metrics == ["accuracy"]
    scores = {e.dataset_name.split("(")[1].rstrip(")"): e.metric_value for e in data.eval_results}
    assert scores == {lang: round(v, 2) for lang, v in r["per_language"].items()}
    assert {e.dataset_split for e in data.eval_results} == {r["eval_split"]}
    assert [e.dataset_config for e in data.eval_results] == list(r["per_language"])   # synthetic: the codes
    real = CellResults.from_dict({**r, "synthetic": False, "target_task": "udpos"}, "a real-data cell")
    assert export._hub_config(real, "en") == "udpos.English"   # real data: the hub dataset's own config name
    text = card.text
    for lang, v in r["per_language"].items():
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| {lang} |"))
        lo, hi = (float(x) for x in line.split("[")[1].split("]")[0].split(","))
        assert lo <= round(v, 1) <= hi and hi - lo > 0, line   # a 95 % interval around the score
    assert "**Intermediate task**: none" in text and "Synthetic data." in text
    assert "## Data licence" in text and f"commit `{r['environment']['commit'] or 'unknown'}`" in text
    assert "learning_rate: 0.001" in text   # the recipe (the resolved config)
    assert json.loads((out / export.RESULTS_COPY).read_text()) == r
    assert (out / export.CONFIG_COPY).read_text() == (cell / "config.yaml").read_text()


def test_out_is_written_only_where_nothing_is_lost(exported, tmp_path):
    from repro.errors import OutputDirError

    cell, out = exported
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    export.export_cell(cell, out)   # a previous export: replaced as a whole, the same bytes
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "weights.bin").write_bytes(b"mine")
    with pytest.raises(OutputDirError, match=f"OUT {mine} is not empty"):
        export.export_cell(cell, mine)
    assert [p.name for p in mine.iterdir()] == ["weights.bin"]
    with pytest.raises(OutputDirError, match="holds the folder it reads"):   # the cell's own parents
        export.export_cell(cell, cell.parent)
    with pytest.raises(OutputDirError, match="is the folder it reads"):
        export.export_cell(cell, cell)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]   # no temporary folder left
    # the command: one line, exit 2 (this one stops before importing jax)
    r = cli("export", cell.parent, tmp_path / "x")   # not a cell folder
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "no results.json" in r.stderr and not (tmp_path / "x").exists()


def test_push_to_hub_uploads_the_export(exported, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from repro.__main__ import main

    cell, _ = exported
    calls = []

    class FakeApi:   # huggingface_hub.HfApi's two calls, recorded with what the folder held at upload time
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, private=False, exist_ok=False, repo_type=None):
            calls.append(("create_repo", repo_id, private, exist_ok, repo_type))

        def upload_folder(self, folder_path, repo_id, repo_type=None, commit_message=None, ignore_patterns=None):
            from pathlib import Path
            files = sorted(p.name for p in Path(folder_path).iterdir())
            calls.append(("upload_folder", folder_path, repo_id, repo_type, files, ignore_patterns))
            return type("CommitInfo", (), {"commit_url": f"https://hub.example/{repo_id}/commit/1"})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "pushed"
    assert main(["export", str(cell), str(out), "--push-to-hub", "someone/xt-model", "--private"]) == 0
    assert calls[1] == ("create_repo", "someone/xt-model", True, True, "model")
    _, folder, repo, kind, files, ignore = calls[2]
    assert (folder, repo, kind) == (str(out), "someone/xt-model", "model")
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(files)
    assert ignore == [".xtreme-transfer-*"]   # the export's marker stays local
    assert "pushed to someone/xt-model (https://hub.example/someone/xt-model/commit/1)" in capsys.readouterr().out

    class Refused(FakeApi):
        def create_repo(self, *a, **k):
            raise OSError("401 Unauthorized")

    monkeypatch.setattr(huggingface_hub, "HfApi", Refused)
    assert main(["export", str(cell), str(out), "--push-to-hub", "someone/xt-model"]) == 2
    err = capsys.readouterr().err
    assert "upload to someone/xt-model failed (OSError: 401 Unauthorized)" in err and (out / "README.md").exists()
