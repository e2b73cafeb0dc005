"""One class per head in every family, named as transformers names it; one input check; float32 logits."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest
import transformers

import flax_models as fm
from flax_models import loading, xlnet
from tests.support import tiny

CONFIGS = {"bert": tiny.BERT, "roberta": tiny.ROBERTA, "xlm-roberta": tiny.XLM_ROBERTA, "xlnet": tiny.XLNET}
HEAD_LABELS = {None: None, "sequence_classification": 3, "token_classification": 4, "question_answering": 2,
               "multiple_choice": None}


def inputs(head, shape=(2, 6)):
    shape = (2, 3, 6) if head == "multiple_choice" else shape
    return np.full(shape, 7, np.int32), np.ones(shape, np.int32), np.zeros(shape, np.int32)


@pytest.mark.parametrize("head", list(HEAD_LABELS))
@pytest.mark.parametrize("model_type", list(CONFIGS))
def test_class_per_head_named_as_transformers(model_type, head):
    model = fm.abstract_model(CONFIGS[model_type], head=head, num_labels=HEAD_LABELS[head])
    module = loading.family_for(model_type)
    assert type(model) is module.MODEL_CLASSES[head]
    assert type(model).__name__ == module.HEAD_CLASSES[head]
    assert isinstance(model, fm.pretrained.PretrainedModel)
    assert hasattr(transformers, type(model).__name__)  # the reference class of the same layout exists
    assert model.hf_class == loading.head_class_name(model_type, head)  # what save_pretrained declares
    prefix = module.BACKBONE_PREFIX
    assert hasattr(model, prefix) == (head is not None)  # heads hold the backbone under the HF prefix


@pytest.mark.parametrize("head", list(HEAD_LABELS))
@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlnet"])
def test_logits_are_float32_in_bfloat16(model_type, head):
    model = fm.from_config(CONFIGS[model_type], head=head, num_labels=HEAD_LABELS[head], dtype=jnp.bfloat16)
    out = model(*inputs(head))
    assert out.last_hidden_state.dtype == jnp.bfloat16
    logits = [x for x in (out.logits, out.start_logits, out.end_logits) if x is not None]
    assert bool(logits) == (head is not None)
    assert all(x.dtype == jnp.float32 for x in logits)


@pytest.mark.parametrize("model_type", ["bert", "roberta", "xlnet"])
def test_inputs_checked_the_same_way_in_every_family(model_type):
    model = fm.from_config(CONFIGS[model_type], head="multiple_choice")
    ids, mask, types = inputs("multiple_choice")
    with pytest.raises(ValueError, match=r"input_ids must be \(batch, choices, length\), got shape \(2, 6\)"):
        model(ids[:, 0])
    with pytest.raises(ValueError, match=r"attention_mask shape \(2, 3, 5\) differs from input_ids shape") as err:
        model(ids, mask[..., :5], types)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"token_type_ids shape \(2, 3\) differs"):
        model(ids, mask, types[..., 0])


def test_xlnet_config_is_a_frozen_dataclass_with_the_reference_defaults():
    config = xlnet.XLNetConfig.from_hf({"n_token": 50, "d_model": 8, "n_head": 2, "summary_activation": None,
                                        "summary_use_proj": None, "mem_len": None, "dropout": None})
    assert (config.vocab_size, config.d_head, config.n_layer) == (50, 4, 24)   # alias, derived, default
    assert config.summary_activation is None and config.summary_use_proj is False  # null = off, as the reference
    assert config.dropout == 0.1                                                   # null elsewhere = the default
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 16
    reference = transformers.XLNetConfig()
    defaults = xlnet.XLNetConfig()
    for field in dataclasses.fields(defaults):
        if hasattr(reference, field.name) and field.name != "d_head":
            assert getattr(defaults, field.name) == getattr(reference, field.name), field.name


@pytest.mark.parametrize("override, message", [
    ({"d_head": 5}, "XLNet d_head 5 must equal d_model // n_head"),
    ({"n_head": 5}, "XLNet d_model 32 is not a multiple of n_head 5"),
    ({"ff_activation": "swiglu"}, "unsupported activation 'swiglu'"),
])
def test_xlnet_config_errors_name_the_field(override, message):
    with pytest.raises(ValueError, match=message) as err:
        fm.from_config({**tiny.XLNET, **override})
    assert "\n" not in str(err.value)
