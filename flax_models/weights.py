"""Which checkpoint file is read, and what of it becomes parameters: float32 arrays in aligned buffers.

    read_weights(folder) -> ({key: array}, file read)     model.safetensors (or its sharded index), else
                                                           pytorch_model.bin

This module owns the policy; the formats are parsed by flax_models/safetensors_format.py and
flax_models/torch_format.py, which validate a file before anything is allocated for it and know nothing of
what is kept. Kept: floating tensors (`is_floating`), as float32 (bfloat16 exactly, by widening its bits;
float64 rounded). Skipped, and not read: integer tensors (buffers such as `position_ids`, not parameters)
and the non-persistent buffers older checkpoints still carry (`IGNORED_SUFFIXES`). Safetensors are read by
two threads straight into their final buffers; the file is not mapped, so rewriting a checkpoint can never
pull memory from under a live model.
"""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import ml_dtypes
import numpy as np

from flax_models import safetensors_format, torch_format
from flax_models.errors import CheckpointError
from flax_models.host_buffers import ALIGN, aligned_empty

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = f"{WEIGHTS_NAME}.index.json"
TORCH_WEIGHTS_NAME = "pytorch_model.bin"
MAX_INDEX_BYTES = 64 * 2**20  # a shard index names each tensor once: a few MB for the largest models
# Non-persistent buffers that older checkpoints still carry; transformers ignores them silently too.
IGNORED_SUFFIXES = ("embeddings.position_ids", "embeddings.token_type_ids")
_THREADS = 2


def is_floating(dtype) -> bool:
    return np.issubdtype(dtype, np.floating) or dtype == ml_dtypes.bfloat16  # numpy files bfloat16 as kind "V"


def is_parameter(name: str, dtype) -> bool:
    """What a checkpoint entry must be to become a parameter: floating, and not an ignored buffer."""
    return is_floating(dtype) and not name.endswith(IGNORED_SUFFIXES)


def as_float32(array: np.ndarray) -> np.ndarray:
    """float32 in an aligned buffer: the array itself when it already is one, else one converting copy."""
    if array.dtype == np.float32 and array.flags.c_contiguous and array.ctypes.data % ALIGN == 0:
        return array
    out = aligned_empty(array.shape)
    np.copyto(out, array, casting="unsafe")  # exact from float16 / bfloat16, rounded from float64
    return out


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The parameters of one .safetensors file as float32 (aligned), read in parallel once its header holds."""
    entries = safetensors_format.read_header(path)
    wanted = {name: entry for name, entry in entries.items() if is_parameter(name, entry.dtype)}
    with open(path, "rb") as f, ThreadPoolExecutor(_THREADS) as pool:
        def read(name, entry):  # converted by the thread that read it: a float16 buffer is freed at once
            return as_float32(safetensors_format.read_tensor(f.fileno(), path, name, entry))

        futures = {name: pool.submit(read, name, entry) for name, entry in wanted.items()}
        return {name: future.result() for name, future in futures.items()}


def read_torch_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """The parameters of a pytorch_model.bin as float32 (aligned); the storages of skipped tensors unread."""
    return {name: as_float32(array) for name, array in torch_format.load_state_dict(path, is_parameter).items()}


def weight_files(folder: Path) -> list[Path]:
    """The files `read_weights` reads: model.safetensors, its shards (index), else pytorch_model.bin.

    Raises FileNotFoundError (no weights; a shard the index names is absent) or ValueError (a bad index)."""
    single, index = folder / WEIGHTS_NAME, folder / INDEX_NAME
    if single.is_file():
        return [single]
    if index.is_file():
        if index.stat().st_size > MAX_INDEX_BYTES:
            raise ValueError(f"{index}: {index.stat().st_size} bytes, over the {MAX_INDEX_BYTES}-byte limit "
                             "for a shard index")
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as e:
            raise ValueError(f"{index}: not a safetensors index ({' '.join(str(e).split())[:120]})") from e
        if not all(isinstance(name, str) and Path(name).name == name for name in names):
            bad = next(name for name in names if not isinstance(name, str) or Path(name).name != name)
            raise ValueError(f"{index}: weight_map names {bad!r:.80}, not a file in {folder}")
        files = [folder / name for name in names]
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise FileNotFoundError(f"{index} names {absent[0]}, which is not in {folder}")
        return files
    if (folder / TORCH_WEIGHTS_NAME).is_file():
        return [folder / TORCH_WEIGHTS_NAME]
    raise FileNotFoundError(f"no {WEIGHTS_NAME} or {TORCH_WEIGHTS_NAME} in {folder}")


def read_weights(folder: Path) -> tuple[dict[str, np.ndarray], str]:
    """All parameters of a checkpoint folder as aligned float32 numpy arrays, and the file read."""
    files = weight_files(folder)
    if files[0].name == TORCH_WEIGHTS_NAME:
        return read_torch_checkpoint(files[0]), str(files[0])
    weights, source = {}, {}
    for file in files:
        for name, array in read_safetensors(file).items():
            if name in weights:   # two shards with one tensor: which one is meant is not knowable
                raise CheckpointError(f"{file}: tensor {name!r} is also in {source[name].name}; a tensor "
                                      "belongs to one shard")
            weights[name], source[name] = array, file
    return weights, str(files[0])
