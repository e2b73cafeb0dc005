"""How the models compute, checked without a GPU (issue 33): the fused attention path against transformers,
per-layer rematerialisation against the plain layers, and what bf16 lowers to (attention scores and the
word-embedding gradient in float32)."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import flax_models as fm
from flax_models import parity
from repro.training import steps
from tests.flax_models.test_bert_roberta import (FAMILIES, HEAD_LABELS, max_abs, our_outputs, saved,  # noqa: F401
                                                 torch_outputs)
from tests.support import tiny

TOL = 1e-4


@pytest.mark.parametrize("case", ["sequence_classification", "token_classification", "question_answering"])
@pytest.mark.parametrize("model_type", list(FAMILIES))
def test_fused_attention_matches_transformers(saved, model_type, case):
    """jax.nn.dot_product_attention (implementation "xla") on a right-padded batch: the same masks, so the
    same outputs as the PyTorch class to 1e-4 (and as our written-out attention)."""
    reference, folder = saved(model_type, case)
    head, _ = HEAD_LABELS[case]
    model = fm.from_pretrained(folder, head=head)
    batch = parity.make_batch(dict(model.config), head, side="right")
    assert batch["attention_mask"].min() == 0
    written_out = our_outputs(model, batch, head)
    used = fm.configure_compute(model, attention="xla")
    assert used == {"attention": "xla", "attention_dropout": False, "remat": False}
    ref_hidden, ref_logits = torch_outputs(reference, batch, head)
    hidden, logits = our_outputs(model, batch, head)
    assert max_abs(hidden, ref_hidden) <= TOL and max_abs(logits, ref_logits) <= TOL
    assert max_abs(hidden, written_out[0]) <= 1e-5
    text = jax.jit(lambda ids, m: model(ids, m).last_hidden_state).lower(
        batch["input_ids"], batch["attention_mask"]).as_text()
    batch_size, length = batch["input_ids"].shape
    products = _score_products(text, batch_size, reference.config.num_attention_heads, length)
    assert products and all(fused for fused, _, _ in products)   # jax.nn.s grouped scores ran


def test_fused_attention_has_no_probability_dropout():
    """The stated difference: with hidden dropout off, the written-out path still drops attention
    probabilities; the fused path does not (its output equals the deterministic one)."""
    config = dict(tiny.BERT, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.5)
    model = fm.from_config(config)
    ids = jnp.arange(2 * 7).reshape(2, 7) % 90 + 5
    key = jax.random.key(3)
    plain = model(ids).last_hidden_state
    assert float(jnp.abs(model(ids, dropout_rng=key).last_hidden_state - plain).max()) > 1e-3
    fm.configure_compute(model, attention="xla")
    assert float(jnp.abs(model(ids, dropout_rng=key).last_hidden_state - plain).max()) <= 1e-5


def test_xlnet_keeps_its_own_attention_and_bad_names_are_errors():
    model = fm.from_config(tiny.XLNET, head="sequence_classification", num_labels=2)
    assert fm.configure_compute(model, attention="xla") == {"attention": "own", "attention_dropout": True,
                                                            "remat": False}
    with pytest.raises(ValueError, match="'flash' is not one of einsum, xla, cudnn"):
        fm.configure_compute(model, attention="flash")


def _loss_and_grads(model, batch, key):
    graphdef, params, rest = steps.split_model(model)

    def loss(p):
        out = steps._forward(graphdef, rest, p, batch, key)
        return steps.task_loss("classification", out, batch)[0]

    return jax.jit(jax.value_and_grad(loss))(params)


# XLNet's variant (~50 s of compilation on 2 cores) runs with --run-slow; BERT's checks the same wrapper in CI.
@pytest.mark.parametrize("config", [tiny.BERT, pytest.param(tiny.XLNET, marks=pytest.mark.slow)], ids=["bert", "xlnet"])
def test_remat_gives_the_same_loss_and_gradients(config):
    """Per-layer rematerialisation recomputes activations (dropout keys included): the same values."""
    config = dict(config, hidden_dropout_prob=0.2, dropout=0.2)
    batch = {"input_ids": jnp.arange(3 * 9).reshape(3, 9) % 90 + 6, "attention_mask": jnp.ones((3, 9), jnp.int32),
             "labels": jnp.array([0, 1, 1]), "example_mask": jnp.ones(3, jnp.int32)}
    key = jax.random.key(0)
    model = fm.from_config(config, head="sequence_classification", num_labels=2)
    loss, grads = _loss_and_grads(model, batch, key)
    assert fm.configure_compute(model, remat=True)["remat"]
    graphdef, params, rest = steps.split_model(model)
    jaxpr = jax.make_jaxpr(lambda p: steps._forward(graphdef, rest, p, batch, key).logits)(params)
    assert str(jaxpr).count("remat2[") == 2   # each of the 2 layers really is rematerialised (jax.checkpoint)
    loss_r, grads_r = _loss_and_grads(model, batch, key)
    np.testing.assert_allclose(loss_r, loss, rtol=1e-6)
    for g, g_r in zip(jax.tree.leaves(grads), jax.tree.leaves(grads_r)):
        np.testing.assert_allclose(g_r, g, rtol=1e-5, atol=1e-7)


def _dots(text: str) -> list[tuple[list[str], str]]:
    """(operand types, result type) of every dot_general in StableHLO text."""
    out = []
    for line in text.splitlines():
        if "stablehlo.dot_general" in line:
            m = re.search(r": \((.*)\) -> (tensor<[^>]*>)", line)
            out.append((re.findall(r"tensor<[^>]*>", m.group(1)), m.group(2)))
    return out


def _score_products(text: str, batch: int, heads: int, length: int) -> list[tuple[bool, list[str], str]]:
    """(fused, operand types, result type) of the Q K^T products: (B, H, T, T) written out, or jax.nn's
    grouped-query (B, H, T, 1, T)."""
    found = []
    for ops, res in _dots(text):
        m = re.match(rf"tensor<{batch}x{heads}x{length}x(1x)?{length}x", res)
        if m:
            found.append((m.group(1) is not None, ops, res))
    return found


@pytest.mark.parametrize("attention", ["einsum", "xla"])
def test_bf16_attention_scores_are_float32(attention):
    """Under bf16 the Q K^T product takes bf16 operands and yields float32 scores (preferred_element_type),
    so the (B, heads, T, T) scores never round to 8 bits before the softmax."""
    model = fm.from_config(tiny.BERT, dtype=jnp.bfloat16)
    fm.configure_compute(model, attention=attention)
    ids = jnp.ones((2, 7), jnp.int32)
    text = jax.jit(lambda i: model(i).last_hidden_state).lower(ids).as_text()
    scores = _score_products(text, 2, 4, 7)
    assert scores and all(fused == (attention != "einsum") for fused, _, _ in scores)
    for _, ops, res in scores:
        assert all(o.endswith("xbf16>") for o in ops) and res.endswith("xf32>"), (ops, res)


def test_bf16_word_embedding_gradient_is_scattered_in_float32():
    """The gradient of the embedding lookups is a scatter-add into a float32 table (the master weights'
    dtype), not into a bf16 copy of it."""
    model = fm.from_config(tiny.BERT, head="sequence_classification", num_labels=2, dtype=jnp.bfloat16)
    batch = {"input_ids": jnp.ones((2, 7), jnp.int32), "attention_mask": jnp.ones((2, 7), jnp.int32),
             "labels": jnp.array([0, 1]), "example_mask": jnp.ones(2, jnp.int32)}
    graphdef, params, rest = steps.split_model(model)

    def loss(p):
        return steps.task_loss("classification", steps._forward(graphdef, rest, p, batch, None), batch)[0]

    text = jax.jit(jax.grad(loss)).lower(params).as_text()
    scatters = re.findall(r"stablehlo\.scatter.*\n(?:.*\n)*?.*?\) -> (tensor<[^>]*>)", text)
    word = [t for t in scatters if t.startswith(f"tensor<{tiny.BERT['vocab_size']}x")]
    assert word, "no scatter into the word-embedding table"
    assert all(t.endswith("xf32>") for t in word), word
