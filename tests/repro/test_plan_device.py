"""`repro plan --memory` against XLA's compiled memory analysis, and `repro plan --benchmarks` pricing from a
CPU-made benchmark JSON (issue 33)."""
from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import pytest

import flax_models as fm
from repro import config
from repro.study import measured, memory
from repro.training import steps
from tests.support import tiny
from tests.support.cli import SMOKE, cli

SHAPE = memory.Shape(model="bert-tiny", hf_config=json.dumps(tiny.BERT, sort_keys=True), head="sequence_classification",
                     num_labels=2, kind="classification", batch=8, length=32, choices=1, precision="fp32",
                     attention="einsum", remat=False, accumulation=1)
ONE_SHAPE = ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment]", "grid.intermediate_tasks=[none]"]


def test_memory_of_abstract_shapes_is_the_compiled_analysis_of_the_real_step():
    """The plan's figures (abstract model, eval_shape'd optimiser state) equal the memory analysis of the
    same step compiled from real weights, and its arguments are exactly the state and the batch."""
    got = memory.measure(SHAPE)
    model = fm.from_config(tiny.BERT, head="sequence_classification", num_labels=2)
    graphdef, params, rest = steps.split_model(model)
    spec = steps.OptimizerSpec(learning_rate=1e-5, weight_decay=0.01, warmup_fraction=0.1, clip_norm=1.0,
                               accumulation=1, total_updates=1000)
    tx = steps.make_optimizer(spec)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params),
             "rng": jax.random.PRNGKey(0)}
    ids = jnp.ones((8, 32), jnp.int32)
    batch = {"input_ids": ids, "attention_mask": ids, "token_type_ids": ids, "labels": jnp.zeros(8, jnp.int32),
             "example_mask": jnp.ones(8, jnp.int32)}
    step = steps.make_train_step(graphdef, rest, "classification", tx, steps.lr_schedule(spec), 1)
    with jax.default_matmul_precision("highest"):
        stats = jax.jit(step, donate_argnums=0).lower(state, batch).compile().memory_analysis()
    assert (got.argument, got.output, got.alias, got.temp) == (
        stats.argument_size_in_bytes, stats.output_size_in_bytes, stats.alias_size_in_bytes,
        stats.temp_size_in_bytes)
    state_bytes = sum(x.nbytes for x in jax.tree.leaves(state))
    assert got.argument == state_bytes + sum(x.nbytes for x in jax.tree.leaves(batch))
    assert got.alias == state_bytes   # the donated state is updated in place
    assert got.params == sum(x.nbytes for x in jax.tree.leaves(params))
    assert got.total == got.argument + got.output - got.alias + got.temp + got.code + got.params


def _named(shape, option: str):
    """The shape the option names ("remat=true batch_size=1 optimizer.accumulation=2")."""
    words = dict(w.split("=") for w in option.split())
    return dataclasses.replace(shape, remat=True, batch=int(words.get("batch_size", shape.batch)),
                               accumulation=int(words.get("optimizer.accumulation", shape.accumulation)))


@pytest.mark.slow   # several CPU compiles: 99 s on 2 loaded cores; the default run keeps the other memory tests
def test_the_option_named_makes_the_shape_fit():
    """Whatever option is named fits the budget, and "none" only where no option fits. (At this tiny shape
    accumulation costs memory: optax.MultiSteps keeps a parameter-sized gradient sum.)"""
    shape = dataclasses.replace(SHAPE, batch=2, length=16)
    base = memory.measure(shape)
    options = [memory.measure(dataclasses.replace(shape, remat=True)),
               memory.measure(dataclasses.replace(shape, remat=True, batch=1, accumulation=2))]
    assert memory.fitting_option(shape, base.total - 1) != ""   # an answer even below the base shape
    for budget in [m.total for m in options]:
        option = memory.fitting_option(shape, budget)
        assert not option.startswith("none") and memory.measure(_named(shape, option)).total <= budget, option
    smallest = min(m.total for m in options)
    assert memory.fitting_option(shape, smallest - 1).startswith("none: does not fit at batch 1")


def test_device_budgets():
    assert memory.device_budget("h100", None, 0.9) == ("h100", int(81559 * 2**20 * 0.9))
    assert memory.device_budget(None, 2, 0.5) == ("2 GiB", 2**30)
    assert memory.device_budget(None, None, None) is None
    for device, message in (("a100", "ambiguous"), ("tpu v9", "no memory size known")):
        with pytest.raises(memory.ConfigError, match=message):
            memory.device_budget(device, None, None)


def test_plan_memory_cli_prints_the_table_and_what_fits(tmp_path):
    r = cli("plan", SMOKE, *ONE_SHAPE, "--memory", "--device", "h100", "--format", "csv")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("model,kind,batch x length"))
    assert "fits h100" in lines[head] and lines[head + 1].startswith("bert-tiny,classification,32x32,fp32,einsum")
    assert ",yes," in lines[head + 1]
    bad = cli("plan", SMOKE, *ONE_SHAPE, "--memory", "--device", "a100")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "a100-40gb or a100-80gb" in bad.stderr


def _bench(model: str, dtype: str, batch: int, median_s: float, flops_per_batch: float) -> dict:
    info = {"kind": "train", "impl": "jax", "model": model, "head": "sequence_classification", "dtype": dtype,
            "batch": batch, "seq_len": 32, "flops_per_batch": flops_per_batch, "device_kind": "cpu",
            "platform": "cpu"}
    return {"name": f"test_train_step[{model}-{batch}]", "stats": {"median": median_s}, "extra_info": info}


def test_plan_priced_from_a_benchmark_json(tmp_path):
    """bert-tiny has a measured train step (the largest shape is used); roberta-tiny has none and is priced at
    the assumed MFU; the output says which is which."""
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"benchmarks": [
        _bench("bert-tiny", "float32", 8, 0.5, 1e9), _bench("bert-tiny", "float32", 32, 0.1, 4e9),
        _bench("bert-tiny", "bfloat16", 32, 0.01, 4e9),
        {"name": "test_forward[x]", "stats": {"median": 1.0}, "extra_info": {"kind": "forward", "impl": "jax"}}]}))
    cfg = config.load(SMOKE, ["grid.models=[bert-tiny, roberta-tiny]", "grid.target_tasks=[synth_sentiment]"])
    rates = measured.load_rates(bench, "fp32")
    assert rates["bert-tiny"].flops_per_s == 4e10 and rates["bert-tiny"].batch == 32

    class Phase:   # plan.CostEstimate's fields that pricing reads
        def __init__(self, model, flops):
            self.model, self.flops = model, flops

    from repro.study.plan import Device
    rows, summary = measured.price(cfg, [Phase("bert-tiny", 4e10 * 3600), Phase("roberta-tiny", 1e12)], rates,
                                   Device("h100", 1e12, 0.5))
    assert rows[0]["device-h"] == pytest.approx(1.0) and rows[0]["priced from"].startswith("measured: bert-tiny")
    assert rows[1]["device-h"] == pytest.approx(1e12 / 5e11 / 3600) and rows[1]["priced from"].startswith("assumed")
    assert "device-hours from measurements: 1" in summary
    r = cli("plan", SMOKE, "grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment]", "--benchmarks", bench)
    assert r.returncode == 0, r.stderr
    assert "measured: bert-tiny train step 32x32 float32 100 ms on cpu" in r.stdout
    with pytest.raises(measured.ConfigError, match="no tf32 cases"):
        measured.load_rates(bench, "tf32")
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmarks": 3}')
    r = cli("plan", SMOKE, "--benchmarks", bad)
    assert r.returncode == 2 and "not a pytest-benchmark JSON" in r.stderr


def test_memory_shapes_of_a_control_arm_and_a_retrieval_target():
    """The control arm trains its intermediate task's data; a retrieval target trains nothing; a config.json
    holding a list (architectures) is a shape like any other (it once failed: 'control' is no task, and a
    list is not hashable)."""
    cfg = config.load(SMOKE, ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_sentiment, synth_retrieval]",
                              "grid.intermediate_tasks=[none, synth_int_sentiment, control]"])
    hf = dict(tiny.BERT, architectures=["BertModel"])
    got = memory.shapes(cfg, lambda c: hf)
    assert [(s.kind, s.head) for s in got] == [("classification", "sequence_classification")]   # one shape: all
    assert json.loads(got[0].hf_config) == hf
    assert memory.shapes(config.load(SMOKE, ["grid.models=[bert-tiny]", "grid.target_tasks=[synth_retrieval]",
                                             "grid.intermediate_tasks=[none]"]), lambda c: hf) == []
