"""`fm.usable_length`: the longest input each family takes, checked on the models themselves and against
the transformers classes (which index past their position table one token later)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import transformers

import flax_models as fm
from tests.support import tiny

ROBERTA_66 = dict(tiny.ROBERTA, max_position_embeddings=66, pad_token_id=1, layer_norm_eps=1e-5)


def ids(length: int, pad: int) -> np.ndarray:
    row = np.arange(length) % 90 + 2
    return np.where(row == pad, pad + 1, row)[None].astype(np.int32)


def test_roberta_takes_max_positions_minus_the_padding_offset(tmp_path):
    model = fm.from_config(ROBERTA_66, seed=3)
    assert fm.usable_length(model) == fm.usable_length(ROBERTA_66) == 64
    model.save_pretrained(tmp_path)
    reference = transformers.RobertaModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        expected = reference(torch.tensor(ids(64, 1), dtype=torch.long)).last_hidden_state.numpy()
    np.testing.assert_allclose(np.asarray(model(ids(64, 1)).last_hidden_state), expected, atol=1e-5)

    with pytest.raises(ValueError, match=r"sequence length 65 exceeds 64 positions \(max_position_embeddings 66 "
                                         r"minus padding offset 2\)"):
        model(ids(65, 1))
    with pytest.raises((IndexError, RuntimeError), match="66"), torch.no_grad():  # position 66: off its table
        reference(torch.tensor(ids(65, 1), dtype=torch.long))


def test_bert_takes_max_positions_and_xlnet_any_length():
    bert = fm.from_config(tiny.BERT)
    assert fm.usable_length(bert) == tiny.BERT["max_position_embeddings"] == 40
    bert(ids(40, 0))
    with pytest.raises(ValueError, match="sequence length 41 exceeds max_position_embeddings 40"):
        bert(ids(41, 0))
    xlnet = fm.from_config(tiny.XLNET)
    assert fm.usable_length(xlnet) is None and fm.usable_length(tiny.XLNET) is None
    assert xlnet(ids(100, 5)).last_hidden_state.shape == (1, 100, 32)


def test_defaults_are_the_reference_configs():
    assert fm.usable_length({"model_type": "xlm-roberta", "max_position_embeddings": 514}) == 512
    assert fm.usable_length({"model_type": "roberta"}) == 512 - 1 - 1   # RobertaConfig's 512, pad 1
    assert fm.usable_length({"model_type": "bert"}) == 512
    with pytest.raises(ValueError, match="unknown model_type 'gpt2'"):
        fm.usable_length({"model_type": "gpt2"})
