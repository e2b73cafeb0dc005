"""Training throughput: one jitted AdamW step (forward, backward, update; dropout on) against PyTorch eager.

JAX: the pipeline's own pure train_step (repro.training.steps, via tests.benchmarks.harness.jax_train_step) under
jax.jit with the state donated, compiled ahead of time (compile time in extra_info). Parameters are float32
master weights and `dtype` is the compute dtype (mixed precision). PyTorch: the same weights, loss from the
transformers head, the same global-norm clipping, AdamW, and torch.autocast(bfloat16) for the bf16 cases.
extra_info has tokens/s and the achieved FLOP/s of the analytic training FLOPs (3 x forward);
scripts/bench_table.py turns the latter into MFU.
"""
from __future__ import annotations

import time

import numpy as np

from tests.benchmarks import harness

KIND = "train"


def jax_call(case, bank, info):
    import jax
    import jax.numpy as jnp

    model = bank.jax_model(case.model, case.head, case.dtype)
    step, state = harness.jax_train_step(model, case.head)
    config = bank.config(case.model)
    inputs = harness.make_inputs(config, case.head, case.batch, case.seq_len)
    labels = harness.make_labels(case.head, inputs, harness.head_num_labels(case.head))
    example_mask = np.ones(inputs["input_ids"].shape[0], np.float32)  # every row is a real example
    batch = {k: jnp.asarray(v) for k, v in {**inputs, **labels, "example_mask": example_mask}.items()}
    # The model's own arrays must stay valid: the step donates (and so deletes) its input state.
    state = jax.tree.map(jnp.copy, state)
    jax.block_until_ready((state, batch))

    t0 = time.perf_counter()
    lowered = jax.jit(step, donate_argnums=0).lower(state, batch)
    t1 = time.perf_counter()
    compiled = lowered.compile()
    t2 = time.perf_counter()
    info.update(lower_s=t1 - t0, compile_s=t2 - t1, xla_flops_per_batch=harness.cost_analysis_flops(compiled),
                weights_dtype="float32")
    plant = harness.planted_slowdown()
    holder = [state]

    def call():
        for _ in range(plant):
            holder[0], metrics = compiled(holder[0], batch)
        return jax.block_until_ready(metrics["loss"])

    return call


def torch_call(case, bank, info):
    import contextlib

    import torch

    device = harness.torch_device()
    model = bank.torch_model(case.model, case.head, case.dtype, weights_dtype="float32", device=device)
    model.train()
    config = bank.config(case.model)
    inputs = harness.make_inputs(config, case.head, case.batch, case.seq_len)
    labels = harness.make_labels(case.head, inputs, harness.head_num_labels(case.head))
    kwargs = {k: torch.from_numpy(v).long().to(device) for k, v in {**inputs, **labels}.items()}
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5, weight_decay=0.01)
    autocast = (torch.autocast(device, dtype=torch.bfloat16) if case.dtype == "bfloat16"
                else contextlib.nullcontext())
    info.update(weights_dtype="float32", torch_attn_implementation=getattr(model.config, "_attn_implementation", None))
    plant = harness.planted_slowdown()

    def call():
        for _ in range(plant):
            with autocast:
                loss = model(**kwargs).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
        harness.torch_sync()
        return loss.detach()

    return call


def test_train_step(benchmark, case, bank, rounds, bench_info):
    info = bench_info
    assert info["params"] == info["torch_params"], "parameter counts differ from the PyTorch model's"
    if case.impl == "jax":
        loss = harness.run_pedantic(benchmark, jax_call(case, bank, info), **rounds)
    else:
        try:
            loss = harness.run_pedantic(benchmark, torch_call(case, bank, info), **rounds)
        finally:
            bank.forget_torch()  # its weights are trained now: later cases must reload them
    median = harness.median_seconds(benchmark)
    if median is not None:
        info.update(median_ms=median * 1e3, tokens_per_s=info["tokens"] / median,
                    achieved_flops=info["flops_per_batch"] / median)
    benchmark.extra_info.update(info)
    loss = float(np.asarray(loss.float() if hasattr(loss, "float") else loss))
    assert np.isfinite(loss) and loss > 0, f"training loss {loss}"
