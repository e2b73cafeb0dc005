"""The safetensors format read without the library, validated as the library validates it.

    [8 bytes]  N, little-endian u64
    [N bytes]  a JSON object: {tensor name: {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
               plus an optional "__metadata__": {str: str}
    [rest]     the data section; offsets are relative to its start

`read_header` refuses, before any tensor buffer exists, what huggingface/safetensors refuses
(`SafeTensors::read_metadata` and `Metadata::validate`, safetensors/src/tensor.rs): N above 100,000,000 or
past the end of the file, a header that is not UTF-8 JSON or not an object, an entry without a known dtype,
a shape of non-negative integers or two data offsets, a byte count other than dtype size x prod(shape), and
offsets that do not tile the data section (sorted by offset, each tensor starts where the previous one ended
and the last ends at the end of the file: no gap, no overlap, nothing after). A name given twice, which the
library's map would silently collapse, is refused too. Every refusal is one `CheckpointError` line naming
the file and the tensor or header field.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import NamedTuple

import ml_dtypes
import numpy as np

from flax_models.errors import CheckpointError
from flax_models.host_buffers import aligned_empty

MAX_HEADER_SIZE = 100_000_000  # the library's limit
# The library's whole-byte dtypes (its sub-byte F4 / F6_* are refused as unsupported).
DTYPES = {
    "BOOL": np.bool_, "U8": np.uint8, "I8": np.int8, "F8_E5M2": ml_dtypes.float8_e5m2,
    "F8_E4M3": ml_dtypes.float8_e4m3fn, "F8_E8M0": ml_dtypes.float8_e8m0fnu, "I16": np.int16, "U16": np.uint16,
    "F16": np.float16, "BF16": ml_dtypes.bfloat16, "I32": np.int32, "U32": np.uint32, "F32": np.float32,
    "F64": np.float64, "C64": np.complex64, "I64": np.int64, "U64": np.uint64,
}


class TensorEntry(NamedTuple):
    dtype: np.dtype
    shape: tuple[int, ...]
    start: int      # absolute offset in the file
    nbytes: int


def _unique_keys(pairs: list) -> dict:
    seen = set()
    for key, _ in pairs:
        if key in seen:
            raise CheckpointError(f"name {key!r} appears twice in the header")
        seen.add(key)
    return dict(pairs)


def _is_count(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 0


def _entry(path: Path, name: str, meta) -> tuple[np.dtype, tuple[int, ...], int, int]:
    """(dtype, shape, begin, end) of one header entry, each field checked."""
    where = f"{path}: tensor {name!r}"
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where}: header entry is {type(meta).__name__}, not an object")
    for key in ("dtype", "shape", "data_offsets"):
        if key not in meta:
            raise CheckpointError(f"{where}: header entry lacks {key!r}")
    code, shape, offsets = meta["dtype"], meta["shape"], meta["data_offsets"]
    if not isinstance(code, str) or code not in DTYPES:
        raise CheckpointError(f"{where}: unsupported dtype {code!r:.40}")
    if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
        raise CheckpointError(f"{where}: shape {shape!r:.80} is not a list of non-negative integers")
    if len(shape) > 64:   # numpy's limit on an array's dimensions
        raise CheckpointError(f"{where}: shape has {len(shape)} dimensions, over numpy's 64")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(n) for n in offsets):
        raise CheckpointError(f"{where}: data_offsets {offsets!r:.80} are not two non-negative integers")
    dtype, (begin, end) = np.dtype(DTYPES[code]), offsets
    nbytes = math.prod(shape) * dtype.itemsize  # Python ints: a claimed 10**30 elements stays exact
    if end - begin != nbytes:
        raise CheckpointError(f"{where}: data_offsets [{begin}, {end}] hold {end - begin} bytes, but {code} "
                              f"{tuple(shape)} needs {nbytes}")
    return dtype, tuple(shape), begin, end


def read_header(path: str | Path) -> dict[str, TensorEntry]:
    """The validated header of a .safetensors file: tensor name -> (dtype, shape, file offset, bytes)."""
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{path}: not a safetensors file ({size} bytes, shorter than the 8-byte "
                                  "header length)")
        (length,) = struct.unpack("<Q", head)
        if length > MAX_HEADER_SIZE:
            raise CheckpointError(f"{path}: not a safetensors file (header length {length} exceeds the "
                                  f"{MAX_HEADER_SIZE:,}-byte limit)")
        if 8 + length > size:
            raise CheckpointError(f"{path}: not a safetensors file (header length {length} runs past the "
                                  f"end of the {size}-byte file)")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_keys)
    except CheckpointError as err:
        raise CheckpointError(f"{path}: {err}") from err
    except (ValueError, RecursionError) as err:   # not UTF-8, not JSON, nested too deep, a 5000-digit number
        raise CheckpointError(f"{path}: not a safetensors file (header is not UTF-8 JSON: "
                              f"{str(err).splitlines()[0]:.100})") from err
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: not a safetensors file (header is a JSON {type(header).__name__}, "
                              "not an object)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise CheckpointError(f"{path}: header field '__metadata__' is not an object of strings")

    base, data_size = 8 + length, size - 8 - length
    entries = {name: _entry(path, name, meta) for name, meta in header.items()}
    ended_at, last = 0, None
    for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
        if begin != ended_at:
            what = "overlaps the tensor before it" if begin < ended_at else "leaves a gap before it"
            raise CheckpointError(f"{path}: tensor {name!r}: data_offsets [{begin}, {end}] {what} (which ends "
                                  f"at {ended_at}); tensors must tile the data section")
        ended_at, last = end, name
    if ended_at > data_size:
        raise CheckpointError(f"{path}: truncated; tensor {last!r} ends past the end of the file (at data byte "
                              f"{ended_at} of {data_size})")
    if ended_at < data_size:
        raise CheckpointError(f"{path}: {data_size - ended_at} bytes after the last tensor's data; the data "
                              "section must end where the last tensor does")
    return {name: TensorEntry(dtype, shape, base + begin, end - begin)
            for name, (dtype, shape, begin, end) in entries.items()}


def read_tensor(fd: int, path: Path, name: str, entry: TensorEntry) -> np.ndarray:
    """One tensor of a header from `read_header`, in its own dtype, read into a fresh aligned buffer."""
    buffer = aligned_empty(entry.shape, entry.dtype)
    view = memoryview(buffer.reshape(-1).view(np.uint8))
    done = 0
    while done < len(view):  # preadv may return less than asked (large reads, signals)
        got = os.preadv(fd, [view[done:]], entry.start + done)
        if got == 0:  # the file shrank since its header was read
            raise CheckpointError(f"{path}: truncated; tensor {name!r} ends past the end of the file")
        done += got
    return buffer
