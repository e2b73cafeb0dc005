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
Not glibc (macOS, musl): nothing is changed. On a GPU the device buffers are XLA's own; this only
touches host memory.
"""
from __future__ import annotations

import ctypes
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


def retain_freed_memory() -> str:
    """Apply the policy (once a process) and return what is in effect: "retain", "system" (asked for with
    XT_HOST_ALLOCATOR=system) or "system (not glibc)"."""
    global _applied
    if _applied is not None:
        return _applied
    policy = requested()
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
