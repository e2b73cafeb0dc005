"""The range of every number a config may hold, checked when the config loads (repro.config._check).

A value outside its range (NaN, inf, 1e400, 10**30 steps, a negative seed) is a ConfigError naming the key and
the value in one line, before anything runs: later it would overflow an int32 step counter, a numpy seed or a
float conversion, or allocate without limit. Ranges are inclusive and generous (a real run is far inside);
each check beyond "finite and in range" (e.g. max_steps > 0) stays in repro.config._check.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

from repro.errors import ConfigError

INT32 = 2**31 - 1
# field name -> (lowest, highest). Steps and counts stay int32 (jax's step counters); lengths fit a position
# table; seeds fit numpy's SeedSequence words.
RANGES: dict[str, tuple[float, float]] = {
    "epochs": (0, 1e5),
    "max_steps": (0, INT32), "eval_every": (0, INT32), "checkpoint_every": (0, INT32), "log_every": (0, INT32),
    "batch_size": (0, 2**20), "accumulation": (0, 2**16),
    "max_train_examples": (0, INT32), "max_dev_examples": (0, INT32), "dev_from_train": (0, INT32),
    "max_examples": (0, INT32), "train_sizes": (0, INT32), "train_size": (0, INT32),
    "seeds": (0, 2**32 - 1), "seed": (0, 2**32 - 1),
    "max_length": (0, 2**16), "buckets": (0, 2**16), "seq_len": (0, 2**16),
    "repeats": (0, 10**6), "warmup": (0, 10**6),
    "learning_rate": (0, 1e6), "weight_decay": (0, 1e6), "warmup_fraction": (0, 1.0),   # 1e4: a divergence drill
    "clip_norm": (0, 1e9), "adam_b1": (0, 1.0), "adam_b2": (0, 1.0), "adam_eps": (0, 1.0),
    "data": (0, 2**16),
    "smallest_effect": (0, 1e6), "smallest_effect_per_task": (0, 1e6),
    "every_minutes": (0, 1e7),
}
# Any other number (a model's hf_config, a new key without a row above): finite and within int32.
DEFAULT = (-INT32, INT32)


def short(value: Any) -> str:
    """The value as a message shows it: a number of thousands of digits is cut (and would not even print)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'over 4000'} digits"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _numbers(value: Any, key: str):
    """(key, number) for every number in `value` (tuples, lists and mappings walked), bools left out."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        yield key, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{key}.{i}")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{key}.{k}")


def check(obj, prefix: str) -> None:
    """Every number held directly by the config node `obj` (its dataclass children are checked on their own)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            continue
        low, high = RANGES.get(f.name, DEFAULT)
        for key, v in _numbers(value, f"{prefix}.{f.name}" if prefix else f.name):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"config: {key}={short(v)} must be a finite number")
            if not low <= v <= high:
                raise ConfigError(f"config: {key}={short(v)} is out of range (allowed {_fmt(low)} to {_fmt(high)})")


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e12 else f"{x:g}"
