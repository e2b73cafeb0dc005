"""Length-bucketed batches with fixed shapes, for jit.

Each feature goes to the smallest bucket (sequence length) that holds it, so a jitted step compiles
once per bucket. `batch_size` is the global batch: every process gets the same number of steps and
the same shapes, rows [process_index * b/p, (process_index + 1) * b/p) of each global batch. Partial
batches are filled with copies of a real row whose `example_mask` is 0 (and whose labels are ignored),
so padding never counts in a loss or a metric. Order depends only on (seed, epoch); `iterate(epoch,
start=k)` resumes after k batches.
"""
from __future__ import annotations

import numpy as np

from .features import IGNORE, Features


def default_buckets(max_length: int) -> tuple[int, ...]:
    """Powers of two from max_length/8 (at least 16) up to max_length: at most four shapes."""
    length = 16
    while length < max_length // 8:
        length *= 2
    buckets = []
    while length < max_length:
        buckets.append(length)
        length *= 2
    return tuple(buckets) + (max_length,)


class Batcher:
    def __init__(self, feats: Features, batch_size: int, buckets=None, shuffle: bool = True, seed: int = 0,
                 process_index: int = 0, process_count: int = 1, drop_remainder: bool = False):
        if batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} is not divisible by process_count {process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} outside [0, {process_count})")
        self.feats, self.batch_size, self.shuffle, self.seed = feats, batch_size, shuffle, seed
        self.process_index, self.process_count, self.drop_remainder = process_index, process_count, drop_remainder
        self.buckets = tuple(sorted(buckets or default_buckets(feats.max_length)))
        if self.buckets[-1] < feats.max_length:
            raise ValueError(f"largest bucket {self.buckets[-1]} is shorter than max_length {feats.max_length}")
        self.bucket_of = np.searchsorted(np.asarray(self.buckets), feats.lengths)   # smallest that fits
        self.local_batch_size = batch_size // process_count

    def _plan(self, epoch: int) -> list[tuple[int, np.ndarray]]:
        """(bucket length, global row indices padded with -1) for every batch of the epoch."""
        rng = np.random.default_rng([self.seed, epoch])
        plan = []
        for b, length in enumerate(self.buckets):
            rows = np.nonzero(self.bucket_of == b)[0]
            if self.shuffle:
                rows = rng.permutation(rows)
            for i in range(0, len(rows), self.batch_size):
                chunk = rows[i:i + self.batch_size]
                if len(chunk) < self.batch_size:
                    if self.drop_remainder:
                        continue
                    chunk = np.concatenate([chunk, np.full(self.batch_size - len(chunk), -1)])
                plan.append((length, chunk))
        if self.shuffle:
            plan = [plan[i] for i in rng.permutation(len(plan))]
        return plan

    def __len__(self):
        return len(self._plan(0))

    def num_batches(self, epoch: int = 0) -> int:
        return len(self._plan(epoch))

    def iterate(self, epoch: int = 0, start: int = 0):
        """Yields (batch, position); position is what to pass as `start` to resume after it."""
        plan = self._plan(epoch)
        lo = self.process_index * self.local_batch_size
        for k in range(start, len(plan)):
            length, rows = plan[k]
            yield self.make_batch(rows[lo:lo + self.local_batch_size], length), k + 1

    def __iter__(self):
        for batch, _ in self.iterate(0):
            yield batch

    def make_batch(self, rows: np.ndarray, length: int) -> dict:
        feats = self.feats
        real = rows >= 0
        take = np.where(real, rows, rows[real][0] if real.any() else 0)
        cut = feats.max_length - length
        batch = {}
        for name, arr in feats.arrays.items():
            a = arr[take]
            if a.ndim >= 2:   # (B, T) or (B, C, T): cut to the bucket on the padding side
                a = a[..., cut:] if feats.padding_side == "left" else a[..., :length]
            elif name in ("start_positions", "end_positions") and feats.padding_side == "left":
                a = a - cut   # positions count from the left edge of the cut window
            batch[name] = a.copy()
        if "labels" in batch and not real.all():
            batch["labels"][~real] = IGNORE if batch["labels"].ndim > 1 else (
                -1 if batch["labels"].dtype.kind == "i" else np.nan)
        batch["example_mask"] = real.astype(np.float32)
        batch["feature_index"] = np.where(real, rows, -1).astype(np.int32)
        return batch


def collect_outputs(feats: Features, outputs) -> dict:
    """Per-batch model outputs -> one array per name with a row per feature, as `postprocess` wants.

    outputs: iterable of (feature_index, {name: array with leading batch axis}), feature_index being the
    batch's `feature_index` (-1 on padding rows). Token-level outputs (tagging logits, QA start/end logits,
    axis 1 = the batch's bucket length) are padded back to max_length on the padding side.
    """
    merged, seen = {}, np.zeros(len(feats), bool)
    token_level = feats.task.kind in ("tagging", "qa")
    for feature_index, out in outputs:
        idx = np.asarray(feature_index)
        real = idx >= 0
        for name, value in out.items():
            value = np.asarray(value)
            if token_level and value.ndim >= 2:
                pad = [(0, 0)] * value.ndim
                missing = feats.max_length - value.shape[1]
                pad[1] = (missing, 0) if feats.padding_side == "left" else (0, missing)
                value = np.pad(value, pad, constant_values=-1e9 if value.dtype.kind == "f" else 0)
            if name not in merged:
                merged[name] = np.zeros((len(feats),) + value.shape[1:], value.dtype)
            merged[name][idx[real]] = value[real]
        seen[idx[real]] = True
    if not seen.all():
        raise ValueError(f"collect_outputs: {int((~seen).sum())} of {len(feats)} features have no output")
    return merged
