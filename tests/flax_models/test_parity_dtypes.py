"""check-parity against the right reference: a checkpoint stored in bfloat16 or float16 is compared with a
float32 PyTorch reference (transformers 5 would load it in the stored dtype: 2.6e-2 / 4.8e-3 apart on this
tiny BERT), and the output says what was compared."""
from __future__ import annotations

import json

import pytest
import torch
import transformers

from flax_models.__main__ import main
from tests.support import tiny


@pytest.fixture(scope="module", params=["bfloat16", "float16"])
def half_dir(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"bert-{request.param}")
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(transformers.BertConfig(**tiny.BERT_LIKE, num_labels=3))
    model.eval().to(getattr(torch, request.param)).save_pretrained(folder)
    return request.param, folder


def test_a_half_precision_checkpoint_passes_at_float32_tolerance(half_dir, tmp_path, capsys):
    stored, folder = half_dir
    out = tmp_path / "parity.json"
    code = main(["check-parity", str(folder), "--head", "sequence_classification", "--tolerance", "1e-4",
                 "--json", str(out)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"checkpoint stored as {stored}; PyTorch reference in float32" in printed and "PASS" in printed
    result = json.loads(out.read_text())
    assert result["stored_dtype"] == stored and result["reference_dtype"] == "float32"
    assert result["max_abs_hidden"] <= 1e-4 and result["max_abs_logits"] <= 1e-4


def test_a_half_precision_torch_bin_names_its_dtype_from_the_config(tmp_path, capsys):
    torch.manual_seed(0)
    model = transformers.BertModel(transformers.BertConfig(**tiny.BERT_LIKE)).eval().to(torch.bfloat16)
    model.save_pretrained(tmp_path)   # config.json records the dtype; the weights become a torch .bin
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    assert main(["check-parity", str(tmp_path), "--tolerance", "1e-4"]) == 0
    assert "stored as bfloat16; PyTorch reference in float32" in capsys.readouterr().out


def test_json_never_overwrites_a_file_the_check_did_not_write(half_dir, tmp_path, capsys):
    _, folder = half_dir
    mine = tmp_path / "notes.json"
    mine.write_text('{"mine": true}')
    assert main(["check-parity", str(folder), "--json", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was not written by" in err and mine.read_text() == '{"mine": true}'
    out = tmp_path / "parity.json"
    assert main(["check-parity", str(folder), "--head", "sequence_classification", "--json", str(out)]) == 0
    assert main(["check-parity", str(folder), "--head", "sequence_classification", "--json", str(out)]) == 0   # its own
