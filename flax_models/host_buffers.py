"""Host buffers that JAX on CPU adopts as parameters without a copy (device_put(..., may_alias=True))."""
from __future__ import annotations

import numpy as np

ALIGN = 64  # XLA:CPU aliases host memory only at this alignment; anything less is copied again


def aligned_empty(shape, dtype=np.float32) -> np.ndarray:
    """An uninitialised array whose data starts on an ALIGN-byte boundary."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = (-raw.ctypes.data) % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)
