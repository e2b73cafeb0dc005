"""The host heap policy of a training process: freed memory is kept for reuse, not handed back to the OS.

XLA:CPU allocates an executable's temporary buffer at every call and frees it after: 3.3 GB for the
multilingual-e5-small train step at B=32, T=128. glibc's malloc serves a block that large with a fresh
`mmap` and returns it with `munmap`, so each step page-faults the whole buffer in again (840 k faults a
step) and the kernel zeroes it: 1.3 s of system time a step on 2 cores, 4-6 s once other work in the
process (a PyTorch reference step) has churned the heap. Page faults, not compute, made the JAX train
step slower than PyTorch's (docs/benchmarks.md, "Train step against PyTorch").

`retain_freed_memory()` sets three documented `mallopt(3)` options: one arena (XLA's worker threads
allocate from the main heap, where a large block can be reused, not from per-thread heaps that fall back
to `mmap` for blocks over 64 MB), no `mmap` for large blocks, and no trimming of the heap's top. The
second step on reuses the first one's pages: no faults. What is computed does not change (the same
executable on the same values; tests/repro/test_host_memory.py checks both).

The cost: the process's resident memory stays at its high-water mark (it would reach that peak anyway,
every step), as PyTorch's caching allocators do. `XT_HOST_ALLOCATOR=system` keeps glibc's defaults.
Call it before the first JAX computation: an XLA thread that has already allocated keeps its own heap.
Not glibc (macOS, musl): nothing is changed.

Only where it helps: on XLA:CPU. When the default backend is a GPU or TPU the step's buffers are device
memory, the host heap holds only batches and checkpoints, and a heap kept at its peak buys nothing:
`retain_freed_memory()` then keeps glibc's defaults ("system (gpu backend)"). The backend is found without
starting JAX (which would create XLA's threads first): JAX_PLATFORMS / jax_platforms when set, else an
installed GPU/TPU plugin whose device is present.

Bounded across phases and cells: a cell calls `release()` after each training phase and a grid after every
cell, which hands the heap's free pages back (`malloc_trim(0)`): one phase's or cell's peak is not carried into
the next, and the next phase's steps fault their buffer in once, then reuse it again. Within a phase,
`bound()` after every step trims the heap once resident memory passes XT_HOST_RETAIN_MB (default: 40 % of the
machine's memory): the kept heap fragments across the buckets' buffer sizes and would otherwise grow to ~12 GB
in one e5-small phase, whatever the machine.
"""
from __future__ import annotations

import ctypes
import gc
import glob
import importlib.util
import math
import os
import platform

ENV = "XT_HOST_ALLOCATOR"
POLICIES = ("retain", "system")

# mallopt(3) parameter numbers (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

_applied: str | None = None


class HostAllocatorError(ValueError):
    pass


def requested() -> str:
    value = os.environ.get(ENV, "retain").strip().lower() or "retain"
    if value not in POLICIES:
        raise HostAllocatorError(f"{ENV}={os.environ[ENV]!r}: expected one of {', '.join(POLICIES)}")
    return value


# An installed plugin names the accelerator; its device files say whether one is present.
_PLUGINS = {"gpu": (("jax_cuda13_plugin", "jax_cuda12_plugin", "jax_rocm7_plugin", "jax_rocm60_plugin"),
                    ("/dev/nvidia[0-9]*", "/dev/kfd")),
            "tpu": (("libtpu",), ("/dev/accel[0-9]*", "/dev/vfio/[0-9]*"))}


def _platforms() -> str:
    """JAX_PLATFORMS, else jax's jax_platforms setting (read without starting a backend); "" when unset."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if not platforms:
        import jax

        platforms = jax.config.jax_platforms or ""
    return platforms


def default_backend() -> str:
    """"cpu", "gpu" or "tpu": the platform JAX will compute on by default, found without starting JAX."""
    platforms = _platforms()
    if platforms:
        first = platforms.split(",")[0].strip().lower()
        return {"cuda": "gpu", "rocm": "gpu"}.get(first, first)
    for backend, (modules, devices) in _PLUGINS.items():
        if any(importlib.util.find_spec(m) is not None for m in modules) and any(glob.glob(d) for d in devices):
            return backend
    return "cpu"


def retain_freed_memory() -> str:
    """Apply the policy (once a process) and return what is in effect: "retain", "system" (asked for with
    XT_HOST_ALLOCATOR=system), "system (not glibc)" or "system (<backend> backend)" (not XLA:CPU)."""
    global _applied
    if _applied is not None:
        return _applied
    policy = requested()
    limit_mb()   # a bad XT_HOST_RETAIN_MB stops here, before any work, not at the first train step
    backend = default_backend() if policy == "retain" else "cpu"
    if policy == "retain" and backend != "cpu":
        policy = f"system ({backend} backend)"
    if policy == "retain":
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            policy = "system (not glibc)"
        else:
            libc = ctypes.CDLL(None)
            # mallopt returns 1 on success; -1 as the trim threshold disables trimming (mallopt(3)).
            for param, value in ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1)):
                if libc.mallopt(param, value) != 1:
                    raise HostAllocatorError(f"mallopt({param}, {value}) was refused by this glibc; "
                                             f"set {ENV}=system to run with its defaults")
    _applied = policy
    return policy


def applied() -> str | None:
    """The policy retain_freed_memory() put in effect in this process, or None when it was not called."""
    return _applied


def resident_mb() -> float | None:
    """This process's resident memory now (Linux /proc), in MB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return None


# Below this resident memory release() skips its full garbage collection: in a process of small models it costs
# ~0.2 s a call and frees next to nothing (the smoke grid calls release 27 times: ~6 s of a 92 s run, its cells
# at 0.6-1.0 GB resident), while the trim after it, which returns the freed pages, costs milliseconds.
GC_FLOOR_MB = 2048.0


def release() -> tuple[float | None, float | None]:
    """Under the retain policy, hand the heap's free pages back to the OS (malloc_trim(0)); returns the
    resident memory (MB) before and after. Elsewhere only measures. A cell calls it after each training phase
    and the grid after each cell: the next phase's steps fault their buffers in once, then reuse them."""
    before = resident_mb()
    if _applied == "retain":
        if before is None or before >= GC_FLOOR_MB:
            gc.collect()   # cycles holding the last cell's host arrays (batches, results) go first
        ctypes.CDLL(None).malloc_trim(0)
    return before, resident_mb()


release_between_cells = release   # the grid's name for it

LIMIT_ENV = "XT_HOST_RETAIN_MB"
DEFAULT_LIMIT_FRACTION = 0.4   # of the machine's memory: 6.4 GB on a 16 GB laptop, 51 GB on a 128 GB node
_floor_mb = 0.0    # resident memory after the last bound() trim


def default_limit_mb() -> float:
    """40 % of the machine's physical memory (Linux sysconf), or 6,144 MB where that is unknown."""
    try:
        return DEFAULT_LIMIT_FRACTION * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (OSError, ValueError, AttributeError):
        return 6144.0


def limit_mb() -> float:
    """XT_HOST_RETAIN_MB, else `default_limit_mb()`: the resident memory above which bound() hands free pages
    back. Sized to the machine: where memory is plentiful the heap is never trimmed within a phase (the full
    speed of the kept heap); where it is short, the phase's peak stays near the limit."""
    raw = os.environ.get(LIMIT_ENV, "").strip()
    if not raw:
        return default_limit_mb()
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise HostAllocatorError(f"{LIMIT_ENV}={raw!r}: expected a positive number of MB")
    return value


def bound() -> bool:
    """Under the retain policy, after a train step: when resident memory exceeds the limit (`limit_mb`, and at
    least 1 GB above what the last trim left, so that live memory above the limit is not trimmed at every
    step), hand the heap's free pages back (`release`). Returns whether it trimmed.

    Why: the kept heap fragments. Steps of three length buckets allocate temporary buffers of three sizes,
    which land in ever new places of a heap that is never trimmed, so one e5-small phase's resident memory
    climbed from 2.8 to 12.2 GB (docs/benchmarks.md), and the 3-seed mini grid peaked at 14.3 GB. A trim costs
    the next steps their page faults once; between trims the steps reuse the heap as before."""
    global _floor_mb
    if _applied != "retain":
        return False
    now = resident_mb()
    if now is None or now <= max(limit_mb(), _floor_mb + 1024):
        return False
    _, after = release()
    _floor_mb = after or 0.0
    return True
