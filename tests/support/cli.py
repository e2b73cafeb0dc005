"""Shared helpers of the repro tests (no tests here): tiny configs and subprocess runs of the CLI."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.support.paths import ROOT, SMOKE  # noqa: F401 - re-exported for the repro tests
# One XLA compilation cache for every repro test and subprocess: the tiny models compile once per machine.
JAX_CACHE = os.environ.get("XT_TEST_JAX_CACHE", "/tmp/xtreme-transfer-test-jax-cache")


def tiny_overrides(out: Path, model: str = "bert-tiny", target: str = "synth_sentiment",
                   intermediate: str = "none", **extra) -> list[str]:
    """A cell that trains in seconds: 64 train examples, 2 languages, few eval examples."""
    o = {
        "output_dir": str(out), "compilation_cache_dir": JAX_CACHE,
        "grid.models": f"[{model}]", "grid.intermediate_tasks": f"[{intermediate}]",
        "grid.target_tasks": f"[{target}]", "grid.seeds": "[0]",
        "target.epochs": 3, "target.max_train_examples": 96, "target.max_dev_examples": 32,
        "target.eval_every": 6, "target.checkpoint_every": 3,
        "intermediate.epochs": 1, "intermediate.max_train_examples": 96, "intermediate.max_dev_examples": 32,
        "eval.languages": "[en, x1]", "eval.max_examples": 32, "eval.batch_size": 32,
        "eval.latency.batch_size": 32, "eval.latency.repeats": 2, "eval.latency.warmup": 1,
    }
    o.update(extra)
    return [f"{k}={v}" for k, v in o.items()]


def env(devices: int | None = None) -> dict:
    e = dict(os.environ)
    e.update(JAX_PLATFORMS="cpu", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
             TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1",
             PYTHONPATH=str(ROOT) + os.pathsep + e.get("PYTHONPATH", ""))
    # Every subprocess's XLA compilations go to the suite's compilation cache, not only those of a config that
    # names it (compilation_cache_dir): the probes, parity and benchmark CLIs compile the same steps again and
    # again otherwise. A config's compilation_cache_dir still wins (python -m repro sets it after start-up).
    e.setdefault("JAX_COMPILATION_CACHE_DIR", JAX_CACHE)
    e.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    if devices:
        e["XLA_FLAGS"] = (e.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    return e


def cli(*args, devices: int | None = None, timeout: float = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repro", *map(str, args)], cwd=ROOT, env=env(devices),
                          capture_output=True, text=True, timeout=timeout, **kw)


def popen(*args, devices: int | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repro", *map(str, args)], cwd=ROOT, env=env(devices),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def cell_dirs(out: Path) -> list[Path]:
    return sorted((out / "cells").iterdir()) if (out / "cells").exists() else []


def results(cell: Path) -> dict:
    return json.loads((cell / "results.json").read_text())


def train_log(phase_dir: Path) -> list[dict]:
    return [json.loads(ln) for ln in (phase_dir / "train_log.jsonl").read_text().splitlines() if ln]


def best_params(phase_dir: Path) -> dict[str, np.ndarray]:
    """The best checkpoint's params as {path: array}, read with orbax (no model needed) onto one device,
    whatever mesh wrote them (a multi-process run's arrays span devices this process does not have)."""
    import jax
    import orbax.checkpoint as ocp
    from jax.sharding import SingleDeviceSharding

    best = phase_dir / "ckpt" / "best"
    step = max(int(p.name) for p in best.iterdir() if p.name.isdigit())
    one = SingleDeviceSharding(jax.devices()[0])
    path = (best / str(step) / "state").absolute()
    with ocp.StandardCheckpointer() as ckptr:
        target = jax.tree_util.tree_map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=one),
                                        ckptr.metadata(path).item_metadata)
        tree = ckptr.restore(path, target)
    return {jax.tree_util.keystr(p): np.asarray(v) for p, v in jax.tree_util.tree_leaves_with_path(tree)}


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under folder: bytes and mtime (ns)."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


CELL = "bert-tiny__int-none__tgt-synth_sentiment__seed0"   # the cell tiny_overrides makes by default


def run_cell_ok(out: Path, **overrides) -> Path:
    """Runs tiny_overrides' cell into `out` (which must succeed); returns the cell's folder."""
    r = cli("run", SMOKE, *tiny_overrides(out, **overrides))
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "cells" / CELL


def assert_same_run(a: Path, b: Path) -> None:
    """Two cell folders hold the same training: best params bitwise, train log and scores equal."""
    pa, pb = best_params(a / "target"), best_params(b / "target")
    assert pa.keys() == pb.keys()
    for k in pa:
        np.testing.assert_array_equal(pa[k], pb[k], err_msg=k)
    assert train_log(a / "target") == train_log(b / "target")
    ra, rb = results(a), results(b)
    for key in ("scores", "per_language", "average", "transfer_gap", "param_count"):
        assert ra[key] == rb[key], key
    for key in ("steps", "tokens", "flops", "best_step", "best_dev", "train_examples"):
        assert ra["training"]["target"][key] == rb["training"]["target"][key], key


def shared_run(tmp_path_factory, name: str, make) -> Path:
    """A folder that `make(folder)` fills once per test session, shared by pytest-xdist's workers (the first to
    come builds it under a file lock; the others wait and reuse it). Tests must only read it (copy to change)."""
    from filelock import FileLock

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name) / name
        make(folder)
        return folder
    root = tmp_path_factory.getbasetemp().parent   # this session's, shared by its workers
    folder, done = root / name, root / f"{name}.done"
    with FileLock(str(root / f"{name}.lock")):
        if not done.exists():
            make(folder)
            done.touch()
    return folder
