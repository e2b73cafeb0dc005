"""One cell over two processes (jax.distributed on 127.0.0.1, gloo collectives on CPU): the one-process loss
curve and scores, files written once, both processes stopping at the same step, and an exact resume after
killing both."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from repro.training.checkpoint import damage
from tests.support.cli import ROOT, SMOKE, best_params, cli, env, results, tiny_overrides, train_log

CELL = "bert-tiny__int-none__tgt-synth_sentiment__seed0"
# 128 examples, batch 16: 8 steps an epoch, 24 in all; a checkpoint every 4 steps, dev evaluations every 8.
RUN = {"target.max_train_examples": 128, "target.batch_size": 16, "target.checkpoint_every": 4,
       "target.eval_every": 8}
TWO = {**RUN, "mesh.data": 2}   # one CPU device per process


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Pair:
    """`python -m repro run` as processes 0 and 1 of one jax.distributed run; output in files beside `out`."""

    def __init__(self, out: Path, name: str):
        port = _free_port()
        self.out, self.procs, self.logs = out, [], []
        for pid in (0, 1):
            e = env()
            e.update(JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid))
            stdout, stderr = (out.parent / f"{name}.p{pid}.{s}" for s in ("out", "err"))
            self.logs.append((stdout, stderr))
            self.procs.append(subprocess.Popen([sys.executable, "-m", "repro", "run", str(SMOKE),
                                                *tiny_overrides(out, **TWO)], cwd=ROOT, env=e,
                                               stdout=stdout.open("w"), stderr=stderr.open("w")))

    def wait(self, timeout: float = 300) -> list[int]:
        deadline = time.time() + timeout
        codes = [p.wait(timeout=max(deadline - time.time(), 1)) for p in self.procs]
        return codes

    def output(self, pid: int) -> tuple[str, str]:
        return tuple(p.read_text() for p in self.logs[pid])

    def kill(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGKILL)
        self.wait()


def _latest(cell: Path) -> int:
    d = cell / "target" / "ckpt" / "latest"
    return max((int(p.name) for p in d.iterdir() if p.name.isdigit()), default=-1) if d.exists() else -1


def _wait_for_step(pair: Pair, cell: Path, step: int) -> None:
    deadline = time.time() + 300
    while _latest(cell) < step:
        assert all(p.poll() is None for p in pair.procs), [pair.output(i) for i in (0, 1)]
        assert time.time() < deadline
        time.sleep(0.005)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("one")
    r = cli("run", SMOKE, *tiny_overrides(out, **RUN))
    assert r.returncode == 0, r.stderr[-3000:]
    return out / "cells" / CELL


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("two") / "out"
    pair = Pair(out, "straight")
    assert pair.wait() == [0, 0], [pair.output(i) for i in (0, 1)]
    return out, pair


@pytest.mark.slow
def test_two_processes_give_the_one_process_loss_curve_and_scores(one_process, two_processes):
    out, pair = two_processes
    cell = out / "cells" / CELL
    one, two = results(one_process), results(cell)
    assert two["environment"]["process_count"] == 2 and two["environment"]["device_count"] == 2
    assert two["inference"]["devices"] == 2 and two["inference"]["batch_size"] == one["inference"]["batch_size"]
    a = [x["loss"] for x in train_log(one_process / "target") if "loss" in x]
    b = [x["loss"] for x in train_log(cell / "target") if "loss" in x]
    assert len(a) == len(b) == 24
    np.testing.assert_allclose(b, a, rtol=2e-4, atol=1e-5)   # tests/repro/test_train.py's 8-device tolerance
    assert two["per_language"] == one["per_language"] and two["scores"] == one["scores"]
    for key in ("steps", "tokens", "flops", "best_step", "train_examples"):
        assert two["training"]["target"][key] == one["training"]["target"][key], key
    pa, pb = best_params(one_process / "target"), best_params(cell / "target")
    for k in pa:
        np.testing.assert_allclose(pb[k], pa[k], rtol=2e-3, atol=1e-5, err_msg=k)


@pytest.mark.slow
def test_two_processes_write_each_file_once(two_processes):
    out, pair = two_processes
    cell = out / "cells" / CELL
    # the state every 4 steps, 2 kept; step 24 ends the phase, which writes the best params, not the state
    for kind, kept in (("latest", [16, 20]), ("best", None)):
        steps = sorted(int(p.name) for p in (cell / "target" / "ckpt" / kind).iterdir() if p.name.isdigit())
        assert kept is None or steps == kept
        for s in steps:   # process 0's checksums cover exactly the files orbax wrote for both
            assert damage(cell / "target" / "ckpt" / kind / str(s)) is None
    assert len([x for x in train_log(cell / "target") if "loss" in x]) == 24   # one line per step, not two
    assert (cell / "config.yaml").is_file() and json.loads((cell / "results.json").read_text())["cell_id"] == CELL
    main_log, other_log = (out / "repro.log").read_text(), (out / "repro.process-1.log").read_text()
    assert main_log.count("=== run") == 1 and f"cell {CELL}: accuracy" in main_log
    assert f"cell {CELL}: accuracy" in other_log     # process 1 logs to its own file
    (out0, _), (out1, _) = pair.output(0), pair.output(1)
    assert out0.strip() == f"{CELL}: accuracy " + " ".join(
        f"{k}={v:.2f}" for k, v in results(cell)["per_language"].items())
    assert out1 == "" and "Gloo" not in out0      # one result line, from process 0; no library greeting


@pytest.mark.slow
def test_a_stop_on_one_process_stops_both_and_a_kill_of_both_resumes_exactly(two_processes, tmp_path):
    reference = two_processes[0] / "cells" / CELL
    out = tmp_path / "out"
    cell = out / "cells" / CELL
    # SIGTERM to process 1 alone: both save the same step and stop (a lone stop would leave the other waiting).
    pair = Pair(out, "stopped")
    _wait_for_step(pair, cell, 4)
    pair.procs[1].send_signal(signal.SIGTERM)
    assert pair.wait() == [143, 143], [pair.output(i) for i in (0, 1)]
    stopped = _latest(cell)
    assert all(f"stopped at step {stopped} of {CELL}" in pair.output(i)[1] for i in (0, 1))
    # Both killed outright a few steps on, then started again (at the latest at the last cadence state, 20: the
    # phase's end at 24 writes no state).
    pair = Pair(out, "killed")
    _wait_for_step(pair, cell, min(stopped + 4, 20))
    pair.kill()
    assert not (cell / "results.json").exists(), "the kill came after the run finished"
    pair = Pair(out, "resumed")
    assert pair.wait() == [0, 0], [pair.output(i) for i in (0, 1)]
    # The second resume starts from the last checkpoint whose save finished (a later one the kill cut short
    # is moved aside by checkpoint.py), so at `stopped` or after.
    log = (out / "repro.log").read_text()
    assert f"resumed at step {stopped} " in log and log.count("resumed at step") == 2
    a, b = best_params(reference / "target"), best_params(cell / "target")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    assert train_log(reference / "target") == train_log(cell / "target")
    ra, rb = results(reference), results(cell)
    for key in ("scores", "per_language", "average", "transfer_gap"):
        assert ra[key] == rb[key], key
    for key in ("steps", "tokens", "flops", "best_step", "best_dev"):
        assert ra["training"]["target"][key] == rb["training"]["target"][key], key
