"""Losses per task kind, the optimiser schedule and accumulation, on hand-made arrays."""
from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from repro.training import steps


def out(**kw):
    return types.SimpleNamespace(**{"logits": None, "start_logits": None, "end_logits": None, **kw})


def test_classification_loss_ignores_padding_rows():
    logits = jnp.array([[2.0, 0.0], [0.0, 1.0], [5.0, -5.0]])
    labels = jnp.array([0, 1, -1])       # the Batcher labels padding rows -1 (and masks them)
    loss, sums = steps.task_loss("classification", out(logits=logits),
                              {"labels": labels, "example_mask": jnp.array([1.0, 1.0, 0.0])})
    expect = -(jax.nn.log_softmax(logits[0])[0] + jax.nn.log_softmax(logits[1])[1]) / 2
    np.testing.assert_allclose(loss, expect, rtol=1e-6)
    assert float(sums["count"]) == 2 and float(sums["correct"]) == 2


def test_tagging_loss_counts_only_labelled_tokens_of_real_examples():
    logits = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4))
    labels = jnp.array([[1, -100, 2], [3, 3, 3]])
    loss, sums = steps.task_loss("tagging", out(logits=logits),
                              {"labels": labels, "example_mask": jnp.array([1.0, 0.0])})
    lp = jax.nn.log_softmax(logits[0])
    np.testing.assert_allclose(loss, -(lp[0, 1] + lp[2, 2]) / 2, rtol=1e-6)
    assert float(sums["count"]) == 2


def test_regression_nan_label_of_padding_row_cannot_poison_the_loss():
    loss, _ = steps.task_loss("regression", out(logits=jnp.array([[1.0], [2.0]])),
                           {"labels": jnp.array([3.0, jnp.nan]), "example_mask": jnp.array([1.0, 0.0])})
    assert float(loss) == 4.0


def test_qa_loss_is_mean_of_start_and_end():
    s = jnp.array([[0.0, 3.0, 0.0]])
    e = jnp.array([[0.0, 0.0, 3.0]])
    loss, _ = steps.task_loss("qa", out(start_logits=s, end_logits=e),
                           {"start_positions": jnp.array([1]), "end_positions": jnp.array([2]),
                            "example_mask": jnp.array([1.0])})
    np.testing.assert_allclose(loss, -jax.nn.log_softmax(s[0])[1], rtol=1e-6)


def test_schedule_warms_up_then_decays_to_zero():
    spec = steps.OptimizerSpec(learning_rate=1.0, weight_decay=0.0, warmup_fraction=0.2, clip_norm=1.0,
                            accumulation=1, total_updates=10)
    lr = steps.lr_schedule(spec)
    assert [round(float(lr(i)), 4) for i in (0, 1, 2, 6, 10)] == [0.0, 0.5, 1.0, 0.5, 0.0]


def test_weight_decay_skips_biases_and_layer_norm():
    params = {"layer": {"kernel": 1.0, "bias": 1.0}, "LayerNorm": {"scale": 1.0, "bias": 1.0},
              "rel_attn": {"r_w_bias": 1.0, "q": 1.0}}
    mask = steps.decay_mask(params)
    assert mask == {"layer": {"kernel": True, "bias": False}, "LayerNorm": {"scale": False, "bias": False},
                    "rel_attn": {"r_w_bias": False, "q": True}}


@pytest.mark.parametrize("clip", [0.0, 1.0])
def test_accumulation_of_two_halves_equals_one_full_batch(clip):
    """MultiSteps(k=2) over two half batches = one step on the full batch (equal-size halves)."""
    w = {"w": jnp.array([[0.3, -0.2], [0.1, 0.4]])}
    x = jax.random.normal(jax.random.PRNGKey(1), (8, 2))
    y = jnp.array([0, 1, 1, 0, 1, 0, 0, 1])

    def grads(p, xs, ys):
        return jax.grad(lambda p: optax.softmax_cross_entropy_with_integer_labels(xs @ p["w"], ys).mean())(p)

    def spec(k):
        return steps.OptimizerSpec(learning_rate=0.1, weight_decay=0.01, warmup_fraction=0.0, clip_norm=clip,
                                accumulation=k, total_updates=5)

    full = steps.make_optimizer(spec(1))
    u, _ = full.update(grads(w, x, y), full.init(w), w)
    one = optax.apply_updates(w, u)
    acc = steps.make_optimizer(spec(2))
    s = acc.init(w)
    u1, s = acc.update(grads(w, x[:4], y[:4]), s, w)
    p = optax.apply_updates(w, u1)
    np.testing.assert_array_equal(p["w"], w["w"])          # nothing happens on the first micro-batch
    u2, s = acc.update(grads(p, x[4:], y[4:]), s, p)
    np.testing.assert_allclose(optax.apply_updates(p, u2)["w"], one["w"], rtol=1e-6, atol=1e-7)
