"""Executables reused (repro.training.steps HPARAMS): the learning rate, decay, warm-up and phase length enter
the train step as arrays, so a second cell with the same model, head, shapes and optimiser structure neither
re-traces nor re-compiles; the schedule computes the same bits as the optax schedules it replaced."""
from __future__ import annotations

import jax
import jax.monitoring
import numpy as np
import optax
import pytest

from repro import config
from repro.study.cell import run_cell
from repro.training import steps
from tests.support.cli import SMOKE, tiny_overrides


def _optax_schedule(spec: steps.OptimizerSpec):
    """The schedule as it was written before (optax.join_schedules of linear schedules)."""
    warmup = int(spec.warmup_fraction * spec.total_updates)
    decay = max(spec.total_updates - warmup, 1)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, spec.learning_rate, max(warmup, 1)) if warmup else
         optax.constant_schedule(spec.learning_rate),
         optax.linear_schedule(spec.learning_rate, 0.0, decay)], boundaries=[warmup])


@pytest.mark.parametrize("lr,warmup,total", [(1e-3, 0.1, 130), (2e-4, 0.1, 50), (3e-5, 0.0, 7), (1.0, 0.2, 10),
                                             (5e-5, 0.06, 12272), (2e-5, 0.5, 3)])
def test_traced_schedule_is_the_optax_schedule_bit_for_bit(lr, warmup, total):
    spec = steps.OptimizerSpec(learning_rate=lr, weight_decay=0.01, warmup_fraction=warmup, clip_norm=1.0,
                               accumulation=1, total_updates=total)
    counts = np.unique(np.r_[np.arange(0, min(total, 300) + 3), total - 1, total, total + 5]).astype(np.int32)
    old = jax.jit(jax.vmap(_optax_schedule(spec)))(counts)
    new = jax.jit(jax.vmap(lambda c, hp: steps.lr_at(hp, c), in_axes=(0, None)))(counts, steps.optimizer_hparams(spec))
    np.testing.assert_array_equal(np.asarray(new).view(np.uint32), np.asarray(old).view(np.uint32))


def test_a_second_cell_neither_retraces_nor_recompiles(tmp_path):
    """Two cells in one process (as a grid runs them): another seed, learning rate, warm-up, decay and length.
    The second's train step is not traced (results.json `compilations`) and XLA compiles nothing for it:
    jax.monitoring's backend-compile events, counted around each cell."""
    compiles = []

    def listener(event, duration, **_):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        first = config.load(SMOKE, tiny_overrides(tmp_path / "a", **{"target.epochs": 1}))
        r1 = run_cell(first)
        after_first = len(compiles)
        second = config.load(SMOKE, tiny_overrides(
            tmp_path / "b", **{"grid.seeds": "[1]", "target.epochs": 2, "target.optimizer.learning_rate": 3e-3,
                               "target.optimizer.warmup_fraction": 0.3, "target.optimizer.weight_decay": 0.0}))
        r2 = run_cell(second)
        after_second = len(compiles)
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert r1.training.target.compilations == 1
    assert r2.training.target.compilations == 0
    assert r2.training.target.steps != r1.training.target.steps   # another phase length
    assert after_first > 0 and after_second == after_first, (after_first, after_second)
