"""Test-wide settings: no network, CPU JAX, deterministic float32 matmuls."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import jax  # noqa: E402

# Parity checks compare against float32 PyTorch: keep XLA from using lower-precision matmul passes.
jax.config.update("jax_default_matmul_precision", "highest")
