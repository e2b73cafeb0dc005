"""Every error names its place, through the CLI as a user meets it (issue 32): a non-UTF-8 byte in a data
file is one line naming the file, the line and the column; preflight's fix column names the file too; the
traceback goes to repro.log. tests/data_prep/test_malformed_files.py walks every reader."""
from __future__ import annotations

import json

import pytest

from tests.support.cli import SMOKE, cli


def _download(root):
    """An xtreme download/ with XNLI in English whose training file has a 0xff byte on line 3."""
    xnli = root / "download" / "xnli"
    xnli.mkdir(parents=True)
    good = b"a b\tc d\tentailment\ne f\tg h\tneutral\n"
    (xnli / "dev-en.tsv").write_bytes(good)
    (xnli / "test-en.tsv").write_bytes(good)
    (xnli / "train-en.tsv").write_bytes(good + b"i j\tk \xffl\tcontradiction\n")
    return root / "download", xnli / "train-en.tsv"


OVERRIDES = ["models.bert-tiny.tokenizer=synthetic:bert", "data.source=xtreme", "eval.languages=[en]"]


def test_a_bad_byte_is_named_by_file_line_and_column_in_preflight_and_run(tmp_path):
    data_dir, bad = _download(tmp_path)
    r = cli("preflight", SMOKE, f"output_dir={tmp_path / 'pre'}", f"data.data_dir={data_dir}", "grid.models=[bert-tiny]",
            "grid.target_tasks=[xnli]", "grid.intermediate_tasks=[none]", *OVERRIDES)
    assert r.returncode == 2, r.stderr[-2000:]
    rows = json.loads((tmp_path / "pre" / "preflight.json").read_text())   # what the console prints, unwrapped
    assert len(rows) == 1 and f"{bad}:3: not UTF-8: byte 0xff at column 7" in rows[0]["why"], rows
    assert rows[0]["fix"].startswith(f"fix {bad} line 3"), rows   # the fix names the file, not "the file named"
    assert "codec can't decode" not in r.stdout + r.stderr

    r = cli("run", SMOKE, "--no-preflight", f"output_dir={tmp_path / 'run'}", f"data.data_dir={data_dir}",
            "cell.model=bert-tiny", "cell.target_task=xnli", "cell.intermediate_task=none", *OVERRIDES)
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert lines == [f"error: data: cannot load xnli train/en from xtreme {data_dir}: {bad}:3: not UTF-8: byte 0xff "
                     "at column 7"], lines
    log = (tmp_path / "run" / "repro.log").read_text()
    assert "UnicodeDecodeError" in log and "FileFormatError" in log   # the traceback, with its cause


def test_a_bad_byte_in_a_yaml_preset_is_named_by_file_and_line(tmp_path):
    preset = tmp_path / "my preset.yaml"
    preset.write_bytes(b"name: mine\noutput_dir: runs/\xff\n")
    r = cli("preflight", preset)
    assert r.returncode == 2 and r.stderr.strip() == f"error: config: {preset} line 2 is not UTF-8 (byte 0xff)", r.stderr


@pytest.mark.slow   # ~27 s on a loaded machine; each file's refusal is unit-tested in tests/flax_models and tests/repro
def test_malformed_model_and_tokenizer_files_are_named_in_preflight(tmp_path):
    """Three models, three broken folders: a 5000-digit number in config.json, a nesting bomb as the shard
    index, a tokenizer.json with a bad byte. One preflight names each file."""
    from tests.support.tokenizers import bert_tokenizer

    digits = tmp_path / "digits"
    digits.mkdir()
    (digits / "config.json").write_bytes(b'{"model_type": "roberta", "vocab_size": ' + b"9" * 5000 + b"}")
    bomb = tmp_path / "bomb"
    bomb.mkdir()
    (bomb / "config.json").write_text(json.dumps({"model_type": "xlnet", "vocab_size": 512, "d_model": 32,
                                                  "n_layer": 2, "n_head": 4, "d_inner": 64}))
    (bomb / "model.safetensors.index.json").write_text('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}")
    tok = tmp_path / "tok"
    bert_tokenizer().save_pretrained(tok)
    raw = (tok / "tokenizer.json").read_bytes()
    (tok / "tokenizer.json").write_bytes(raw[:100] + b"\xff" + raw[100:])
    r = cli("preflight", SMOKE, f"output_dir={tmp_path / 'out'}", "grid.intermediate_tasks=[none]",
            "grid.target_tasks=[synth_sentiment]", f"models.bert-tiny.tokenizer={tok}",
            "models.roberta-tiny.hf_config=null", f"models.roberta-tiny.name_or_path={digits}",
            "models.xlnet-tiny.hf_config=null", f"models.xlnet-tiny.name_or_path={bomb}")
    assert r.returncode == 2, r.stderr[-2000:]
    whys = " | ".join(row["why"] for row in json.loads((tmp_path / "out" / "preflight.json").read_text()))
    assert f"{tok / 'tokenizer.json'}:" in whys and "not UTF-8 (byte 0xff" in whys, whys
    assert f"{digits / 'config.json'}: not JSON (Exceeds the limit" in whys, whys
    assert f"{bomb / 'model.safetensors.index.json'}: not a safetensors index (maximum recursion" in whys, whys
    assert "Traceback" not in r.stdout + r.stderr
