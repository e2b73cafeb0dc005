"""The host heap policy (repro.training.host_memory): a train step stops page-faulting its temporary buffer in
at every call, computes the same values, and a bad XT_HOST_ALLOCATOR is a one-line error.

The policy is process-wide and tests/conftest.py has applied it to this process, so each arm runs in a
fresh interpreter. Page-fault counts (getrusage's ru_minflt) are counted, not timed: a count does not depend
on the machine's load.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support import cli
from tests.support.paths import ROOT

# The pipeline's train step (repro.training.steps, as the benchmarks build it) on a model whose step needs a
# temporary buffer over glibc's 32 MB mmap ceiling: a 32k x 512 word embedding (64 MB) and its gradient.
PROBE = r"""
import hashlib, json, resource, sys
from repro.training import host_memory
policy = host_memory.retain_freed_memory()
import jax, jax.numpy as jnp, numpy as np
import flax_models as fm
from tests.benchmarks import harness
config = dict(model_type="bert", vocab_size=32000, hidden_size=512, num_hidden_layers=1, num_attention_heads=8,
              intermediate_size=1024, max_position_embeddings=64, type_vocab_size=2, pad_token_id=0)
head = "sequence_classification"
model = fm.from_config(config, head=head, num_labels=harness.head_num_labels(head))
call, compiled = harness.jax_train_call(model, head, harness.train_batch(config, head, 8, 64), {})
temp = compiled.memory_analysis().temp_size_in_bytes
losses, faults = [], []
for _ in range(8):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    losses.append(float(call()))
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
jax.block_until_ready(compiled)
print(json.dumps({"policy": policy, "temp_pages": temp // 4096, "faults": faults, "losses": losses}))
"""


def probe(policy: str) -> dict:
    env = cli.env()
    env["XT_HOST_ALLOCATOR"] = policy
    proc = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def arms() -> dict:
    return {policy: probe(policy) for policy in ("system", "retain")}


def test_glibc_defaults_fault_the_temporary_buffer_in_at_every_step(arms):
    """The cost the policy removes, shown to exist (else the next test could pass for want of it)."""
    system = arms["system"]
    assert system["policy"] == "system" and system["temp_pages"] > 64 * 1024 * 1024 // 4096
    assert min(system["faults"][1:]) > system["temp_pages"] / 2, system


def test_retained_heap_reuses_earlier_steps_pages(arms):
    """After the first step, most steps reuse the kept pages (fewer than 1/20 of the buffer faulted in), and all
    seven together fault at most three buffers' worth: the default arm faults the whole buffer in at every one
    of them (seven buffers' worth). A step may still find its buffer's place taken where a small block freed
    between two steps split the free one and the heap grew: under a loaded CI machine two of the seven did
    (faults [37145, 0, 0, 0, 36888, 36691, ...] for a 36,691-page buffer), which the earlier bound of one in
    the last four refused."""
    retain, temp = arms["retain"], arms["retain"]["temp_pages"]
    assert retain["policy"] == "retain"
    later = retain["faults"][1:]
    assert sum(1 for f in later if f < temp / 20) >= 4, retain
    assert sum(later) < 3 * temp, retain


def test_the_policy_does_not_change_what_is_computed(arms):
    assert arms["retain"]["losses"] == arms["system"]["losses"]   # eight steps, bitwise


@pytest.mark.parametrize("variable, value, message", [
    ("XT_HOST_ALLOCATOR", "jemalloc", "error: XT_HOST_ALLOCATOR='jemalloc': expected one of retain, system"),
    ("XT_HOST_RETAIN_MB", "-5", "error: XT_HOST_RETAIN_MB='-5': expected a positive number of MB"),
])
def test_a_bad_host_memory_setting_is_a_one_line_error(tmp_path, variable, value, message):
    env = {**cli.env(), variable: value}
    proc = subprocess.run([sys.executable, "-m", "repro", "run", "configs/smoke.yaml", f"output_dir={tmp_path}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert lines == [message], lines
    assert not any(tmp_path.iterdir())


# ---- only on XLA:CPU; bounded between the cells of a grid -------------------------------------------------

class _FakeLibc:
    def __init__(self):
        self.calls = []

    def mallopt(self, param, value):
        self.calls.append((param, value))
        return 1


@pytest.mark.parametrize("backend,expected", [("cpu", "retain"), ("gpu", "system (gpu backend)"),
                                              ("tpu", "system (tpu backend)")])
def test_the_policy_applies_on_xla_cpu_only(monkeypatch, backend, expected):
    from repro.training import host_memory

    libc = _FakeLibc()
    monkeypatch.setattr(host_memory, "_applied", None)
    monkeypatch.setattr(host_memory, "default_backend", lambda: backend)
    monkeypatch.setattr(host_memory.ctypes, "CDLL", lambda _: libc)
    monkeypatch.setattr(host_memory.platform, "libc_ver", lambda: ("glibc", "2.36"))
    monkeypatch.setattr(host_memory.platform, "system", lambda: "Linux")
    monkeypatch.delenv(host_memory.ENV, raising=False)
    assert host_memory.retain_freed_memory() == expected
    assert len(libc.calls) == (3 if backend == "cpu" else 0)


@pytest.mark.parametrize("platforms,plugin,device,expected", [
    ("cuda", False, False, "gpu"), ("tpu", False, False, "tpu"), ("cpu", True, True, "cpu"),
    ("", True, True, "gpu"), ("", True, False, "cpu"), ("", False, False, "cpu")])
def test_the_default_backend_is_found_without_starting_jax(monkeypatch, platforms, plugin, device, expected):
    from repro.training import host_memory

    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    assert host_memory._platforms() == (platforms or __import__("jax").config.jax_platforms or "")
    monkeypatch.setattr(host_memory, "_platforms", lambda: platforms)   # JAX_PLATFORMS / jax_platforms
    monkeypatch.setattr(host_memory.importlib.util, "find_spec",
                        lambda name: object() if plugin and name == "jax_cuda12_plugin" else None)
    monkeypatch.setattr(host_memory.glob, "glob", lambda pattern: ["/dev/nvidia0"] if device and "nvidia" in pattern
                        else [])
    assert host_memory.default_backend() == expected


TRIM_PROBE = r"""
import json
from repro.training import host_memory
assert host_memory.retain_freed_memory() == "retain"
blocks = [bytes(4096) + bytes([i % 256]) for i in range(100_000)]   # ~400 MB of heap blocks under the mmap ceiling
start = host_memory.resident_mb()
del blocks
kept = host_memory.resident_mb()
before, after = host_memory.release_between_cells()
print(json.dumps({"start": start, "kept": kept, "before": before, "after": after}))
"""


def test_freed_memory_is_returned_between_cells():
    """Under the policy the heap keeps freed pages (no trimming); release_between_cells (which run_grid calls
    after every cell) returns them to the OS."""
    env = {**cli.env(), "XT_HOST_ALLOCATOR": "retain"}
    proc = subprocess.run([sys.executable, "-c", TRIM_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = json.loads(proc.stdout.strip().splitlines()[-1])
    assert m["kept"] > m["start"] - 50, m            # freed, but kept by the heap
    assert m["after"] < m["before"] - 300, m         # returned by the trim


def test_the_bound_trims_above_the_limit_and_not_again_until_a_gigabyte_more(monkeypatch):
    """bound(): under the retain policy, a trim when resident memory passes XT_HOST_RETAIN_MB; after it, none
    until resident memory is also 1 GB above what that trim left (live memory over the limit is not trimmed at
    every step); never under the system policy; a bad limit is one line naming the variable."""
    from repro.training import host_memory

    resident = {"mb": 0.0}
    trims = []

    def release():
        trims.append(resident["mb"])
        resident["mb"] = resident.pop("after")
        return trims[-1], resident["mb"]

    monkeypatch.setattr(host_memory, "resident_mb", lambda: resident["mb"])
    monkeypatch.setattr(host_memory, "release", release)
    monkeypatch.setattr(host_memory, "_floor_mb", 0.0)
    monkeypatch.setenv(host_memory.LIMIT_ENV, "6000")
    monkeypatch.setattr(host_memory, "_applied", "system")
    resident["mb"] = 9000.0
    assert host_memory.bound() is False and trims == []
    monkeypatch.setattr(host_memory, "_applied", "retain")
    resident["mb"] = 5999.0
    assert host_memory.bound() is False
    resident.update(mb=6500.0, after=6300.0)      # live memory stays above the limit after the trim
    assert host_memory.bound() is True and trims == [6500.0]
    resident["mb"] = 7200.0                       # < 6,300 + 1,024: no trim at every step
    assert host_memory.bound() is False
    resident.update(mb=7400.0, after=3000.0)
    assert host_memory.bound() is True and trims == [6500.0, 7400.0]
    resident["mb"] = 6100.0                       # over the limit again (the floor is now 3,000)
    resident["after"] = 3100.0
    assert host_memory.bound() is True
    monkeypatch.setenv(host_memory.LIMIT_ENV, "lots")
    with pytest.raises(host_memory.HostAllocatorError, match="XT_HOST_RETAIN_MB='lots'"):
        host_memory.limit_mb()
    monkeypatch.delenv(host_memory.LIMIT_ENV)
    assert host_memory.limit_mb() == host_memory.default_limit_mb()
    total_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    assert host_memory.default_limit_mb() == pytest.approx(0.4 * total_mb)


def test_release_collects_garbage_only_above_its_floor_and_always_trims(monkeypatch):
    """release(): the full garbage collection (0.2 s a call in a grid of small models) only once resident memory
    reaches GC_FLOOR_MB; the trim every time; neither under the system policy."""
    from repro.training import host_memory

    calls = []
    resident = {"mb": 0.0}
    monkeypatch.setattr(host_memory, "resident_mb", lambda: resident["mb"])
    monkeypatch.setattr(host_memory.gc, "collect", lambda *a: calls.append("gc") or 0)

    class Libc:
        def malloc_trim(self, pad):
            calls.append("trim")
            return 1

    monkeypatch.setattr(host_memory.ctypes, "CDLL", lambda name: Libc())
    monkeypatch.setattr(host_memory, "_applied", "retain")
    resident["mb"] = host_memory.GC_FLOOR_MB - 1
    host_memory.release()
    assert calls == ["trim"]
    resident["mb"] = host_memory.GC_FLOOR_MB
    host_memory.release()
    assert calls == ["trim", "gc", "trim"]
    monkeypatch.setattr(host_memory, "_applied", "system")
    host_memory.release()
    assert calls == ["trim", "gc", "trim"]
