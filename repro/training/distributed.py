"""Data parallelism: one `Mesh` with a "data" axis, the same code on 1 CPU, N devices or many hosts.

Batches are split along their first axis over "data"; parameters and optimiser state are replicated.
Each host feeds its own slice of the global batch (`data_prep.Batcher(process_index, process_count)`) and
`global_batch` stitches the slices into one global array. Multi-host runs call
`jax.distributed.initialize()` first when the environment asks for it (see `maybe_initialize`).

Processes of one run must take the same branches: every collective (a train step, an orbax save, a
gather) waits for all of them, and one process that goes its own way leaves the others waiting until
JAX's coordination service gives up on it. So a decision read from the shared file system (is a cell
finished, is a lock free) is process 0's, broadcast (`main_decides`, `locked`); a stop request is honoured
by all processes at the same step (`stop_requested`); and a file one process writes for another is
waited for (`barrier`). With one process every helper here is a plain local call.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from repro.errors import ConfigError

_initialized = False


def maybe_initialize() -> None:
    """jax.distributed.initialize() when XT_DISTRIBUTED=1 or a coordinator address is set.

    With XT_DISTRIBUTED=1 jax auto-detects the cluster (SLURM, TPU pods, Open MPI, ...); otherwise
    JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID describe it. CPU processes
    (JAX_PLATFORMS=cpu) exchange arrays through gloo.
    """
    global _initialized
    if _initialized:
        return
    explicit = bool(os.environ.get("JAX_COORDINATOR_ADDRESS"))
    if os.environ.get("XT_DISTRIBUTED") != "1" and not explicit:
        return
    # JAX's preemption service would catch SIGTERM in C++ before repro.signals sees it; our training loop
    # agrees on the stop step itself (`stop_requested`), for SIGINT too.
    jax.config.update("jax_enable_preemption_service", False)
    cpu = os.environ.get("JAX_PLATFORMS", "").strip().lower() == "cpu"
    if cpu:
        # The default CPU collectives ("none") cannot cross processes.
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    if explicit:
        kwargs = {"coordinator_address": os.environ["JAX_COORDINATOR_ADDRESS"]}
        for key, env in (("num_processes", "JAX_NUM_PROCESSES"), ("process_id", "JAX_PROCESS_ID")):
            raw = os.environ.get(env, "")
            if not raw.strip().isdigit():
                raise ConfigError(f"environment: JAX_COORDINATOR_ADDRESS is set, so {env} must be a number "
                                  f"(it is {raw!r})")
            kwargs[key] = int(raw)
        jax.distributed.initialize(**kwargs)
    else:
        jax.distributed.initialize()
    _initialized = True


def connect() -> None:
    """The first collective of a multi-process run, where its transport connects: call it once stray output
    goes to the log (gloo greets on stdout, "[Gloo] Rank 0 is connected ...", which holds results only)."""
    if jax.process_count() > 1:
        with _stdout_to_stderr():
            barrier("processes connected")


@contextlib.contextmanager
def _stdout_to_stderr():
    import sys
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def make_mesh(data: int = 0) -> Mesh:
    """A 1-D mesh over the first `data` devices (0 = all of them, across hosts)."""
    devices = jax.devices()
    n = data or len(devices)
    if n > len(devices):
        raise ConfigError(f"config: mesh.data={n} but only {len(devices)} devices are visible")
    if n % jax.process_count():
        raise ConfigError(f"config: mesh.data={n} is not a multiple of the {jax.process_count()} processes")
    return Mesh(np.asarray(devices[:n]), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P("data"))


def data_size(mesh: Mesh) -> int:
    return mesh.shape["data"]


def process_index() -> int:
    return jax.process_index()


def process_count() -> int:
    return jax.process_count()


def process_id() -> int:
    """This process's index, without starting JAX's backends when there is a single process (its plugins'
    start-up messages then land in the run's log, not on the console)."""
    return jax.process_index() if _initialized else 0


def is_main() -> bool:
    """Process 0: the one that writes shared files (results, logs, checksums, config.yaml) and takes locks."""
    return jax.process_index() == 0


def global_batch(local: dict, sharding: NamedSharding) -> dict:
    """This host's slice of the batch (numpy) -> global jax arrays sharded over "data"."""
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local.items()}


def local_rows(n: int) -> slice:
    """This process's rows of a global batch of `n` rows (the Batcher's split)."""
    per = n // jax.process_count()
    return slice(jax.process_index() * per, (jax.process_index() + 1) * per)


def to_host(x) -> np.ndarray:
    """A (possibly multi-host sharded) array -> the full numpy array on every host."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(jax.device_get(x))


# ---- agreeing across processes ------------------------------------------------------------------

def main_decides(value: bool) -> bool:
    """Process 0's `value` on every process: a fact read from the shared file system (a file exists, a
    result is valid) that another host could see differently for a moment (NFS attribute caches)."""
    if jax.process_count() == 1:
        return bool(value)
    from jax.experimental import multihost_utils
    return bool(multihost_utils.broadcast_one_to_all(np.int32(bool(value))))


def max_over_processes(value: int) -> int:
    """The largest of every process's `value` (0 where none has one)."""
    if jax.process_count() == 1:
        return int(value)
    from jax.experimental import multihost_utils
    return int(np.max(multihost_utils.process_allgather(np.int32(value))))


def barrier(name: str) -> None:
    """Waits until every process got here (after process 0 wrote something the others read)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils
        multihost_utils.sync_global_devices(name)


def stop_requested() -> bool:
    """Whether any process was asked to stop (SIGTERM/SIGINT): all of them then stop at this same step.

    A process that did not get the signal itself adopts the other's, so that its `stop_if_requested()`
    raises too."""
    from repro import signals

    mine = signals.requested_signal() or 0
    agreed = max_over_processes(mine)
    if agreed and not mine:
        signals.request(agreed)
    return bool(agreed)


@contextlib.contextmanager
def locked(folder: Path, what: str):
    """`rundir.locked` taken by process 0 for the whole run, with its outcome shared: when the folder is
    busy every process raises `BusyError`, not only the one that asked."""
    from repro import rundir
    from repro.errors import UserError

    if jax.process_count() == 1:
        with rundir.locked(folder, what):
            yield
        return
    with contextlib.ExitStack() as stack:
        refused = None
        if is_main():
            try:
                stack.enter_context(rundir.locked(folder, what))
            except UserError as e:   # busy, or the lock file cannot be made: the others must hear of it
                refused = e
        if not main_decides(refused is None):
            if refused is not None:
                raise refused
            raise rundir.BusyError(f"{what} {folder.name}: process 0 of this run could not take its lock "
                                   f"{rundir.lock_path(folder)} (its output says why)")
        yield
