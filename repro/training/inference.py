"""Evaluation of a trained cell: predictions of the jitted eval step, official scores, inference latency.

`predict` runs the eval step over every feature (batches split over the mesh's "data" axis) and returns one
output row per feature; `score` turns them into the task's metrics against gold labels; `zero_shot_eval`
does both for every evaluated language; `measure_latency` times the same eval step at a fixed shape.
"""
from __future__ import annotations

import statistics
import time

import jax
import numpy as np

import data_prep as dp
from repro.training import distributed
from repro import signals
from flax_models import usable_length


def _round_up(n: int, k: int) -> int:
    return -(-n // k) * k


def predict(params, feats, compiled, batch_size: int, buckets, mesh) -> dict:
    """Raw outputs (one row per feature) of the jitted eval_step over every feature."""
    batcher = dp.Batcher(feats, _round_up(batch_size, distributed.data_size(mesh)), buckets=buckets,
                         shuffle=False, process_index=distributed.process_index(),
                         process_count=distributed.process_count())

    def outputs():
        for batch, _ in batcher.iterate(0):
            signals.check()
            keys = ("input_ids", "attention_mask", "token_type_ids", "feature_index")
            inputs = distributed.global_batch({k: batch[k] for k in keys if k in batch}, compiled.batch_sharding)
            index = inputs.pop("feature_index")   # global: every host's rows, as the outputs are
            out = compiled.eval_step(params, inputs)
            yield distributed.to_host(index), {k: distributed.to_host(v) for k, v in out.items()}

    return dp.collect_outputs(feats, outputs())


def score(task, feats, raw, examples, language) -> tuple[float, dict]:
    """(primary metric, every metric) of the predictions against the examples' gold labels."""
    primary, scores, _ = score_with_rows(task, feats, raw, examples, language)
    return primary, scores


def score_with_rows(task, feats, raw, examples, language) -> tuple[float, dict, tuple[str, list]]:
    """score's (primary, every metric) and the per-example rows (kind, rows) of data_prep.per_example."""
    preds = dp.postprocess(task, feats, raw)
    scores = {k: float(v) for k, v in dp.evaluate(task, preds, examples, language=language).items()}
    if task.metric not in scores:
        raise RuntimeError(f"data_prep.evaluate gave no {task.metric!r} for {task.name}: {sorted(scores)}")
    return scores[task.metric], scores, dp.per_example(task, preds, examples, language)


def pack(feats: list) -> tuple:
    """One Features holding every language's rows, in order, and the (start, end) row range of each: what the
    eval step runs over. Each length bucket then ends in one partly filled batch, not one per language (a
    PAN-X cell's seven languages: 30 % fewer padded token slots, XCOPA's eleven 45 %). A row's outputs do not
    depend on the other rows of its batch (same shapes, same executable: tests/repro/test_executables.py), so
    the scores are those of one language at a time."""
    import dataclasses

    first, bounds, start = feats[0], [], 0
    for f in feats:
        bounds.append((start, start + len(f)))
        start += len(f)
    if len(feats) == 1:
        return first, bounds
    arrays = {k: np.concatenate([f.arrays[k] for f in feats]) for k in first.arrays}
    return dataclasses.replace(
        first, arrays=arrays, example_index=np.concatenate([f.example_index for f in feats]),
        lengths=np.concatenate([f.lengths for f in feats]), examples=[e for f in feats for e in f.examples],
        offsets=None, word_index=None, candidates=None, extra={}), bounds


def zero_shot_eval(task, test: dict, featurize, params, compiled, batch_size: int, buckets, mesh):
    """Per language in `test` (language -> examples): all metrics, the primary metric, and
    (example ids, per-example rows) with the rows' kind. Every language's features go through the eval step
    together (`pack`), then each is scored on its own."""
    feats = {lang: featurize(examples) for lang, examples in test.items()}
    packed, bounds = pack(list(feats.values()))
    raw_all = predict(params, packed, compiled, batch_size, buckets, mesh)
    scores, per_language, rows, kind = {}, {}, {}, None
    for (lang, examples), (start, end) in zip(test.items(), bounds):
        raw = {k: v[start:end] for k, v in raw_all.items()}
        per_language[lang], scores[lang], (kind, lang_rows) = score_with_rows(task, feats[lang], raw, examples,
                                                                             lang)
        rows[lang] = ([e.id for e in examples], lang_rows)
    return scores, per_language, (kind, rows)


def measure_latency(params, compiled, model, lat, dtype: str, mesh) -> dict:
    """Median wall time of the jitted deterministic forward (the eval step) at a fixed shape.

    The batch is split over the mesh's "data" axis like every eval batch; on one device that is the plain
    single-device latency. With the smoke preset's shape equal to the eval batches, nothing new compiles.
    """
    usable = usable_length(model)
    seq_len = lat.seq_len if usable is None else min(lat.seq_len, usable)
    batch_size = _round_up(lat.batch_size, distributed.data_size(mesh))
    shape = (batch_size, 1, seq_len) if model.head == "multiple_choice" else (batch_size, seq_len)
    rng = np.random.default_rng(0)
    host = {"input_ids": rng.integers(5, 100, size=shape, dtype=np.int32),
            "attention_mask": np.ones(shape, np.int32), "token_type_ids": np.zeros(shape, np.int32)}
    rows = distributed.local_rows(batch_size)   # each process feeds its part of the one global batch
    batch = distributed.global_batch({k: v[rows] for k, v in host.items()}, compiled.batch_sharding)
    for _ in range(lat.warmup):
        jax.block_until_ready(compiled.eval_step(params, batch))
    times = []
    for _ in range(lat.repeats):
        t = time.perf_counter()
        jax.block_until_ready(compiled.eval_step(params, batch))
        times.append((time.perf_counter() - t) * 1e3)
    return {"batch_size": batch_size, "seq_len": seq_len, "latency_ms_median": round(statistics.median(times), 4),
            "dtype": dtype, "repeats": lat.repeats, "devices": distributed.data_size(mesh)}
