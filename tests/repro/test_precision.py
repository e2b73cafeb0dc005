"""What each `precision` lowers to, read from the train step's HLO: no GPU is needed to catch a regression
(issue 33). tests/conftest.py sets "highest" globally for the parity tests; each case here first sets the
opposite default, so only `precision.scope` can produce what is asserted."""
from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest

import flax_models as fm
from repro.training import precision, steps
from tests.support import tiny

# precision -> (the StableHLO precision attribute of every dot, the compiled HLO's operand_precision)
EXPECTED = {"fp32": ("[HIGHEST, HIGHEST]", "{highest,highest}"), "tf32": ("[HIGH, HIGH]", "{high,high}"),
            "bf16": (None, None)}


def _train_step_lowered(name: str):
    model = fm.from_config(tiny.BERT, head="sequence_classification", num_labels=2,
                           dtype=precision.compute_dtype(name))
    graphdef, params, rest = steps.split_model(model)
    spec = steps.OptimizerSpec(learning_rate=1e-3, weight_decay=0.01, warmup_fraction=0.1, clip_norm=1.0,
                               accumulation=1, total_updates=10)
    tx = steps.make_optimizer(spec)
    step = steps.make_train_step(graphdef, rest, "classification", tx, steps.lr_schedule(spec), 1)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
             "rng": jax.random.PRNGKey(0)}
    batch = {"input_ids": jnp.ones((2, 8), jnp.int32), "attention_mask": jnp.ones((2, 8), jnp.int32),
             "token_type_ids": jnp.zeros((2, 8), jnp.int32), "labels": jnp.array([0, 1]),
             "example_mask": jnp.ones(2, jnp.int32)}
    opposite = "bfloat16" if name != "bf16" else "highest"
    with jax.default_matmul_precision(opposite), precision.scope(name):
        return jax.jit(step).lower(state, batch)


@pytest.mark.parametrize("name", precision.PRECISIONS)
def test_every_matmul_of_the_train_step_lowers_to_the_precision_asked_for(name):
    lowered = _train_step_lowered(name)
    text = lowered.as_text()
    dots = [line for line in text.splitlines() if "stablehlo.dot_general" in line]
    assert len(dots) > 20   # forward and backward of every dense layer and of the attention
    attribute, compiled_attribute = EXPECTED[name]
    for line in dots:
        found = re.search(r"precision = (\[[A-Z]+, [A-Z]+\])", line)
        if attribute is None:   # bf16: DEFAULT, which StableHLO leaves unwritten
            assert found is None or found.group(1) == "[DEFAULT, DEFAULT]", line
        else:
            assert found and found.group(1) == attribute, line
    if name == "bf16":   # bf16 operands for the dense layers (the master weights are cast, not stored, in bf16)
        operands = [re.findall(r"tensor<[^>]*>", line.split(":")[-1].split("->")[0]) for line in dots]
        assert sum(all(o.endswith("xbf16>") for o in ops) for ops in operands) >= len(dots) // 2
    if name == "fp32":   # and XLA keeps it through compilation
        hlo = lowered.compile().as_text()
        compiled = [line for line in hlo.splitlines() if " dot(" in line]
        assert compiled and all(f"operand_precision={compiled_attribute}" in line for line in compiled)


@pytest.mark.parametrize("name", precision.PRECISIONS)
def test_record_reads_the_setting_in_effect(name):
    with jax.default_matmul_precision("bfloat16"), precision.scope(name):
        got = precision.record(name, {"attention": "einsum"})
    assert got == {"precision": name, "compute_dtype": "bfloat16" if name == "bf16" else "float32",
                   "matmul_precision": precision.MATMUL_PRECISION[name], "attention": "einsum"}


def test_a_cell_records_how_it_computed(tmp_path):
    """results.json `compute` is read back inside the cell: a bf16 cell under an outer "highest" default
    records "default" only because the cell scopes its steps; the attention and remat keys reach the model."""
    from repro import config
    from repro.study.cell import run_cell
    from tests.support.cli import SMOKE, tiny_overrides

    overrides = tiny_overrides(tmp_path, **{"precision": "bf16", "attention": "xla", "remat": "true",
                                            "target.max_steps": 2, "target.eval_every": 2,
                                            "target.checkpoint_every": 2})
    cfg = config.load(SMOKE, overrides).resolved_cell()
    with jax.default_matmul_precision("highest"):
        r = run_cell(cfg).to_dict()
    assert r["compute"] == {"precision": "bf16", "compute_dtype": "bfloat16", "matmul_precision": "default",
                            "attention": "xla", "attention_dropout": False, "remat": True}
    assert r["inference"]["dtype"] == "bfloat16"
