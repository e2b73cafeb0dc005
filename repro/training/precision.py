"""What the config's `precision` means, on every backend: the compute dtype and the matmul precision.

    precision  compute dtype              matmul precision (jax_default_matmul_precision -> HLO precision_config)
    fp32       float32                    "highest" -> HIGHEST: full float32 on GPUs and TPUs too (XLA:GPU would
                                          otherwise run float32 matmuls as TF32); the precision CPU parity is
                                          proven at
    tf32       float32                    "tensorfloat32" -> HIGH: TF32 tensor cores on NVIDIA GPUs (10-bit
                                          mantissa inputs, float32 accumulation); on CPU the same as fp32
    bf16       bfloat16 over float32      "default" -> DEFAULT: bf16 operands, float32 accumulation; attention
               master weights             scores and softmax, logits, loss and the embedding gradient stay float32

jax reads the matmul precision when it traces a function (it is part of jit's cache key), so `scope` around
the code that calls the jitted steps fixes what every step of a cell lowers to; tests/repro/test_precision.py
checks each setting's HLO. `record` is what results.json `compute` holds: the settings in effect, read back
from jax's config, not from the YAML.
"""
from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp

PRECISIONS = ("fp32", "tf32", "bf16")
MATMUL_PRECISION = {"fp32": "highest", "tf32": "tensorfloat32", "bf16": "default"}
# flax_models.flops.PEAK_FLOPS key of each precision's rate
PEAK_DTYPE = {"fp32": "float32", "tf32": "tensorfloat32", "bf16": "bfloat16"}


def compute_dtype(precision: str):
    return jnp.bfloat16 if precision == "bf16" else jnp.float32


def scope(precision: str) -> contextlib.AbstractContextManager:
    """Every matmul traced inside runs at `precision`'s matmul precision (see the table above)."""
    return jax.default_matmul_precision(MATMUL_PRECISION[precision])


def record(precision: str, compute: dict | None = None) -> dict:
    """results.json `compute`: the precision asked for, the compute dtype and the matmul precision in effect
    (call it inside `scope`), plus the model's attention/remat settings (modeling_utils.configure_compute)."""
    return {"precision": precision, "compute_dtype": jnp.dtype(compute_dtype(precision)).name,
            "matmul_precision": jax.config.jax_default_matmul_precision or "default", **(compute or {})}
