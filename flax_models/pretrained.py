"""The base of every top-level model, and the transformers checkpoint it writes.

One naming rule (docs/design.md) maps our parameters to transformers state-dict keys, for saving here and
for loading (flax_models/loading.py): the nnx path of a parameter joined with "." is its key once the leaf
is renamed

    nnx.Linear.kernel  <-> weight   (transposed: ours is (in, out), torch's is (out, in))
    nnx.Embed.embedding <-> weight
    nnx.LayerNorm.scale <-> weight,  bias <-> bias,  any other nnx.Param keeps its name and layout.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from flax_models.modeling_utils import labels_for_head
from flax_models.weights import CONFIG_NAME, WEIGHTS_NAME

_RENAMED_LEAVES = {"kernel": "weight", "embedding": "weight", "scale": "weight"}


class PretrainedModel(nnx.Module):
    """Base of every top-level model: carries the HF config and saves transformers-loadable checkpoints."""

    def save_pretrained(self, out_dir) -> Path:
        """Writes config.json + model.safetensors that the transformers PyTorch class of the head loads."""
        return save_pretrained(self, out_dir)


def hf_named_params(model: nnx.Module) -> dict[str, tuple[tuple, nnx.Variable]]:
    """transformers key -> (nnx path, Param) for every parameter of the model."""
    return hf_names(nnx.to_flat_state(nnx.state(model, nnx.Param)))


def hf_names(flat_state) -> dict[str, tuple[tuple, nnx.Variable]]:
    """transformers key -> (nnx path, Variable) for the Params of a flat state."""
    named = {}
    for path, variable in flat_state:
        if isinstance(variable, nnx.Param):
            *parents, leaf = (str(p) for p in path)
            named[".".join([*parents, _RENAMED_LEAVES.get(leaf, leaf)])] = (path, variable)
    return named


def is_linear_kernel(path: tuple) -> bool:
    return str(path[-1]) == "kernel"


def hf_shape(path: tuple, shape: tuple) -> tuple:
    return tuple(reversed(shape)) if is_linear_kernel(path) else tuple(shape)


def _to_hf_layout(path: tuple, value: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(value.T) if is_linear_kernel(path) else np.ascontiguousarray(value)


def hf_state_dict(model: nnx.Module) -> dict[str, np.ndarray]:
    """The model's parameters as the transformers class of its head names and lays them out (float32)."""
    return {key: _to_hf_layout(path, np.asarray(jax.device_get(variable.get_value()), dtype=np.float32))
            for key, (path, variable) in hf_named_params(model).items()}


def save_pretrained(model: nnx.Module, out_dir: str | os.PathLike) -> Path:
    """config.json + model.safetensors that the transformers class named in `architectures` loads as is."""
    from safetensors.numpy import save_file

    tensors = hf_state_dict(model)
    config, _ = labels_for_head(dict(model.config), model.head, model.num_labels)
    config["architectures"] = [model.hf_class]
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file(tensors, str(out / WEIGHTS_NAME), metadata={"format": "pt"})
    (out / WEIGHTS_NAME).chmod(0o644)   # safetensors writes 0600 whatever the umask; the folder's mode rules
    return out
