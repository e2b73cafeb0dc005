"""Training throughput: one jitted AdamW step (forward, backward, update; dropout on) against PyTorch eager.

JAX: the pipeline's own pure train_step (repro.training.steps, via tests.benchmarks.harness.jax_train_call) under
jax.jit with the state donated, compiled ahead of time (compile time in extra_info). Parameters are float32
master weights and `dtype` is the compute dtype (mixed precision). PyTorch: the same weights, loss from the
transformers head, the same global-norm clipping, AdamW, and torch.autocast(bfloat16) for the bf16 cases.
extra_info has tokens/s and the achieved FLOP/s of the analytic training FLOPs (3 x forward);
scripts/bench_table.py turns the latter into MFU.

Interleaved: before each timed round of the JAX case (pytest-benchmark's untimed `setup`) a PyTorch step
of the same case runs and is timed apart, so the JAX case's extra_info holds a ratio taken under the same
machine load (`torch_median_ms`, `ratio_vs_torch` = JAX median / PyTorch median, `ratio_vs_torch_min`,
`round_ratios`); the PyTorch case of its own still runs for the table. On a shared machine, where load
changes between two benchmarks, the interleaved ratio is the one to read.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from tests.benchmarks import harness

KIND = "train"


def _torch_call(case, bank, info, batch):
    model = bank.torch_model(case.model, case.head, case.dtype, weights_dtype="float32",
                             device=harness.torch_device())
    return harness.torch_train_call(model, case.head, batch, case.dtype, info)


def test_train_step(benchmark, case, bank, rounds, bench_info):
    info = bench_info
    assert info["params"] == info["torch_params"], "parameter counts differ from the PyTorch model's"
    batch = harness.train_batch(bank.config(case.model), case.head, case.batch, case.seq_len)
    jax_times, torch_times = [], []
    try:
        if case.impl == "jax":
            model = bank.jax_model(case.model, case.head, case.dtype)
            call, _ = harness.jax_train_call(model, case.head, batch, info)
            torch_step = _torch_call(case, bank, {}, batch)

            def setup():   # untimed by pytest-benchmark: one PyTorch step before each JAX round
                start = time.perf_counter()
                torch_step()
                torch_times.append(time.perf_counter() - start)

            def timed():
                start = time.perf_counter()
                out = call()
                jax_times.append(time.perf_counter() - start)
                return out

            # Warm-up in the timed rounds' pattern (a PyTorch step, then a JAX call): the host heap both share
            # reaches the layout the rounds will see before the first is timed.
            for _ in range(max(rounds["warmup"], 1)):
                torch_step()
                loss = call()
            out = benchmark.pedantic(timed, setup=setup, rounds=rounds["min_rounds"], warmup_rounds=0, iterations=1)
            loss = loss if out is None else out
        else:
            loss = harness.run_pedantic(benchmark, _torch_call(case, bank, info, batch), **rounds)
    finally:
        bank.forget_torch()  # its weights are trained now: later cases must reload them
    median = harness.median_seconds(benchmark)
    if median is not None:
        info.update(median_ms=median * 1e3, tokens_per_s=info["tokens"] / median,
                    achieved_flops=info["flops_per_batch"] / median)
    if torch_times and len(torch_times) == len(jax_times):
        info.update(torch_median_ms=statistics.median(torch_times) * 1e3,
                    torch_times_ms=[t * 1e3 for t in torch_times], jax_times_ms=[t * 1e3 for t in jax_times],
                    ratio_vs_torch=statistics.median(jax_times) / statistics.median(torch_times),
                    ratio_vs_torch_min=min(jax_times) / min(torch_times),
                    round_ratios=[j / t for j, t in zip(jax_times, torch_times)])
    benchmark.extra_info.update(info)
    loss = float(np.asarray(loss.float() if hasattr(loss, "float") else loss))
    assert np.isfinite(loss) and loss > 0, f"training loss {loss}"
