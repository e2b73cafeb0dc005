"""Dropout masks: flax_models' one-pass Bernoulli draw is jax.random.bernoulli bit for bit, so a train step
keeps its exact dropout masks (and every trained number) while the mask costs one fused loop."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from flax_models.modeling_utils import bernoulli, dropout


@pytest.mark.parametrize("shape,p", [((1,), 0.9), ((7,), 0.5), ((3, 5), 0.999), ((2, 3, 7, 11), 0.9),
                                     ((4, 2, 16, 16), 0.0), ((1537,), 1.0)])
def test_bernoulli_is_jax_random_bernoulli_bit_for_bit(shape, p):
    keys = jnp.stack([jax.random.fold_in(jax.random.key(s), f) for s, f in ((0, 0), (3, 7), (2**31 - 1, 12345))])
    want = jax.jit(jax.vmap(lambda k: jax.random.bernoulli(k, p, shape)))(keys)
    got = jax.jit(jax.vmap(lambda k: bernoulli(k, p, shape)))(keys)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert got.dtype == jnp.bool_ and got.shape == (3, *shape)


def test_bernoulli_eager_and_raw_keys():
    key = jax.random.key(5)
    np.testing.assert_array_equal(np.asarray(bernoulli(key, 0.9, (9, 13))),
                                  np.asarray(jax.random.bernoulli(key, 0.9, (9, 13))))
    raw = jax.random.PRNGKey(5)   # a raw uint32[2] key: jax.random's own path, same mask
    np.testing.assert_array_equal(np.asarray(bernoulli(raw, 0.9, (9, 13))),
                                  np.asarray(jax.random.bernoulli(raw, 0.9, (9, 13))))


def test_dropout_mask_is_drawn_without_a_loop():
    """The reason the function exists: jax.random's CPU lowering is a while loop over the whole array."""
    shape = (4, 8, 16)
    state = "tensor<4x8x16xui32>"   # a loop carrying the whole mask's threefry state (fold_in's scalar loops are fine)

    def loops_over_mask(fn):
        return any("stablehlo.while" in line and state in line
                   for line in jax.jit(fn).lower(jax.random.key(0)).as_text().splitlines())

    assert not loops_over_mask(lambda k: dropout(jnp.ones(shape), 0.1, nnx.Rngs(dropout=k)))
    if jax.default_backend() == "cpu":   # if JAX stops looping one day, bernoulli() can go
        assert loops_over_mask(lambda k: jax.random.bernoulli(k, 0.9, shape))


def test_dropout_keeps_the_reference_mask_and_scale():
    x = jax.random.normal(jax.random.key(1), (8, 32))
    key = jax.random.key(2)
    got = dropout(x, 0.25, nnx.Rngs(dropout=key))
    mask = jax.random.bernoulli(nnx.Rngs(dropout=key).dropout(), 0.75, x.shape)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(jnp.where(mask, x / 0.75, 0.0)))
