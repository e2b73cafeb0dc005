"""One training phase (intermediate or target): the loop around the jitted `train_step`.

Python owns the loop (data position, cadence, checkpoints, logging); arrays live in `train_step`. The loop
resumes exactly: the `latest` checkpoint holds the state (params, optimiser, micro-step, rng) and the data
position (epoch, batch index within the epoch), and the dropout key of micro-step s is fold_in(rng, s), so a
killed run that is started again replays the same batches with the same keys. `train_log.jsonl` (one line
per step and per dev evaluation) is cut back to the resumed step, so it reads as one uninterrupted run.

The loss of step s is read back while step s+1 runs (no pipeline stall); a non-finite loss or gradient
norm stops the phase with `NonFiniteLossError` before anything after the last good checkpoint is saved.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from repro.training import checkpoint
from repro.training import distributed
from repro.training import host_memory
from repro import progress, signals
from repro.training import steps, tracking as tracking_
from repro.errors import CheckpointMismatchError, NonFiniteLossError, writing

log = logging.getLogger("repro")
_clock = time.monotonic   # the wall-time checkpoint cadence's clock (a test replaces it)


@dataclasses.dataclass(frozen=True)
class TrainingPlan:
    """Resolved hyper-parameters of one phase (config values, else the task registry's)."""

    task: Any                    # data_prep TaskSpec
    kind: str
    batch_size: int              # global
    epochs: float
    max_steps: int | None
    optimizer: steps.OptimizerSpec  # total_updates filled in by `plan_steps`
    eval_every: int | None
    checkpoint_every: int | None
    log_every: int
    seed: int
    checkpoint_every_minutes: float | None = None   # also write the state when this much wall time has passed
    final_state: bool = False    # write the resumable state at the end of the phase (nothing resumes it)


@dataclasses.dataclass
class TrainingOutcome:
    params: Any                   # the best checkpoint's params (host-replicated arrays)
    best_step: int
    best_dev: float
    dev_scores: dict
    stats: dict                   # results.json "training" entry (task, train_examples, epochs, steps, ...)
    compilations: int             # train_step traces during this call
    checkpoint: str               # folder of the best checkpoint
    compiled: Any = None          # the jitted steps (eval_step for the zero-shot evaluation)


# ---- jitted steps, shared across phases and cells with the same model graph and optimiser ---------

_STEP_CACHE: dict = {}


class _Compiled:
    """A jitted train_step with a trace counter (one trace = one compilation)."""

    def __init__(self, graphdef, rest, kind, structure: steps.OptimizerSpec, mesh):
        self.traces = 0

        def count():
            self.traces += 1

        self.tx = steps.make_optimizer(structure)   # for `init` only: the state's shapes do not depend on HPARAMS
        self.replicated = distributed.replicated(mesh)
        self.batch_sharding = distributed.batch_sharding(mesh)
        fn = steps.make_train_step(graphdef, rest, kind, None, None, structure.accumulation, count,
                                   structure=structure)
        # train_step(state, batch, hp): hp = steps.optimizer_hparams(spec), arrays, so a phase with another
        # learning rate or length reuses this executable
        self.train_step = jax.jit(fn, donate_argnums=0,
                                  in_shardings=(self.replicated, self.batch_sharding, self.replicated),
                                  out_shardings=(self.replicated, self.replicated))
        self.eval_step = jax.jit(steps.make_eval_step(graphdef, rest, kind),
                                 in_shardings=(self.replicated, self.batch_sharding),
                                 out_shardings=self.batch_sharding)


def compiled_steps(graphdef, rest, kind: str, spec: steps.OptimizerSpec, mesh) -> _Compiled:
    structure = steps.optimizer_structure(spec)
    key = (graphdef, str(jax.tree_util.tree_structure(rest)), kind, structure, mesh)
    if key not in _STEP_CACHE:
        _STEP_CACHE[key] = _Compiled(graphdef, rest, kind, structure, mesh)
    return _STEP_CACHE[key]


# ---- helpers ------------------------------------------------------------------------------------

def _model_inputs(batch: dict, kind: str) -> dict:
    keys = ("input_ids", "attention_mask", "token_type_ids", "example_mask") + steps.label_keys(kind)
    return {k: batch[k] for k in keys if k in batch}


def _finite(metrics: dict) -> bool:
    return bool(np.isfinite(metrics["loss"]) and np.isfinite(metrics["grad_norm"]))


class _TrainLog:
    """train_log.jsonl, cut back to a resumed step so that it reads as one run.

    Lines are appended and flushed (with fsync) before every checkpoint, so the lines a checkpoint depends
    on are on disk first. A kill or a full disk can still leave a partial last line: reading skips lines that
    do not parse (with a warning in repro.log) and lines past the resumed step, and rewrites the file whole.
    """

    def __init__(self, path: Path, resume_step: int, enabled: bool):
        self.path, self.enabled = path, enabled
        if not enabled:
            return
        kept = []
        if resume_step > 0 and path.exists():
            for n, ln in enumerate(path.read_text(errors="replace").splitlines(), start=1):
                try:
                    record = json.loads(ln)
                    step = int(record["step"])
                except (ValueError, KeyError, TypeError, OverflowError, RecursionError):   # torn or hostile
                    if ln.strip():
                        log.warning("%s:%d: skipped a torn line (%d characters)", path, n, len(ln))
                    continue
                if step <= resume_step:
                    kept.append(ln)
        with writing(path):
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(ln + "\n" for ln in kept))
            os.replace(tmp, path)
            self.f = path.open("a")

    def write(self, record: dict) -> None:
        if self.enabled:
            with writing(self.path):
                self.f.write(json.dumps(record) + "\n")

    def flush(self) -> None:
        if self.enabled:
            with writing(self.path):
                self.f.flush()
                os.fsync(self.f.fileno())

    def close(self) -> None:
        if self.enabled:
            try:
                self.f.close()
            except OSError as e:   # the buffered tail could not be written: the next resume skips it
                log.warning("cannot write %s: %s", self.path, e.strerror or e)


def flops_per_example(model, head, num_labels) -> Callable[[tuple], int]:
    """Training FLOPs of one example in a batch of a given input shape: 3 x analytic forward at the bucket length."""
    from flax_models.flops import train_flops

    config = dict(model.config)
    cache: dict = {}

    def per_example(shape: tuple) -> int:
        seq_len, choices = shape[-1], (shape[1] if len(shape) == 3 else 1)
        if (seq_len, choices) not in cache:
            cache[(seq_len, choices)] = int(train_flops(config, seq_len, head, num_labels, choices))
        return cache[(seq_len, choices)]

    return per_example


# ---- the phase ----------------------------------------------------------------------------------

def phase_steps(epochs: float, steps_per_epoch: int, max_steps: int | None) -> int:
    """Micro-steps a phase runs: its epochs' batches, capped at max_steps, at least one (repro.study.plan counts
    the same)."""
    steps = math.ceil(epochs * steps_per_epoch)
    if max_steps is not None:
        steps = min(steps, max_steps)
    return max(steps, 1)


def train_phase(*, phase_dir: Path, model, plan: TrainingPlan, train_batcher, steps_per_epoch: int,
                train_examples: int, dev_eval: Callable[[Any, Any], tuple[float, dict]], mesh,
                identity: dict, flops_per_example: Callable[[tuple], int], label: str = "",
                tracking: tracking_.TrackingSpec | None = None) -> TrainingOutcome:
    """Trains `model` (an NNX module whose params are the starting point) and returns the best params.

    dev_eval(params, compiled) -> (primary English dev score, all dev scores); higher is better;
    `compiled.eval_step` is the jitted eval step of this model graph.
    flops_per_example(input_ids.shape) -> training FLOPs of one example of a batch of that shape.
    tracking: TensorBoard / W&B for this phase (repro.training.tracking); None = neither.
    """
    phase_dir.mkdir(parents=True, exist_ok=True)
    total_steps = phase_steps(plan.epochs, steps_per_epoch, plan.max_steps)
    spec = dataclasses.replace(plan.optimizer, total_updates=math.ceil(total_steps / plan.optimizer.accumulation))
    eval_every = plan.eval_every or steps_per_epoch
    ckpt_every = plan.checkpoint_every   # None: by wall time (checkpoint_every_minutes) and on a stop only

    graphdef, params, rest = steps.split_model(model)
    comp = compiled_steps(graphdef, rest, plan.kind, spec, mesh)
    traces_before = comp.traces
    hparams = jax.device_put(steps.optimizer_hparams(spec), comp.replicated)

    params = jax.device_put(params, comp.replicated)
    state = {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": comp.tx.init(params),
             "rng": jax.random.PRNGKey(plan.seed)}
    state = jax.device_put(state, comp.replicated)
    is_main = jax.process_index() == 0
    store = checkpoint.CheckpointStore(phase_dir / "ckpt", identity, writer=is_main)
    meta = {"epoch": 0, "batch_index": 0, "best_dev": None, "best_step": None, "dev_scores": None,
            "tokens": 0, "flops": 0, "examples_seen": 0, "wall_time_s": 0.0,
            "total_steps": total_steps}
    restored = store.restore_latest(state)
    if restored is not None:
        state, meta = restored
        state = jax.device_put(state, comp.replicated)
        restored = None   # (the restored arrays: held by `state` alone, which the train step donates)
        if meta["total_steps"] != total_steps:
            raise CheckpointMismatchError(
                f"checkpoint {phase_dir / 'ckpt' / 'latest'} was for a {meta['total_steps']}-step run, this one "
                f"has {total_steps} steps; use another output_dir or delete it")
        store.drop_best_after(int(state["step"]))
        log.info("%s: resumed at step %d (epoch %d, batch %d)", label, int(state["step"]), meta["epoch"],
                 meta["batch_index"])
    else:   # a fresh start replays everything: a best of an earlier attempt (which kept no state) is replayed too
        store.drop_best_after(0)
    meta.setdefault("curve", [])   # (checkpoints of an older version have none)
    # Where the phase's wall time goes, summed over resumed attempts: compilation (the train-step calls that
    # traced, one step's run included), dev evaluation, checkpoint writes; the rest is training and data.
    timing = meta.setdefault("timing", {"compile_s": 0.0, "eval_s": 0.0, "checkpoint_s": 0.0})
    step = int(state["step"])
    # The tracker first: its writers' set-up (imports, files) is not deferred by a stop request, so it must not
    # sit between the train log's creation and the deferred loop (a stop there is "before any training step").
    tracker = tracking_.Tracker(tracking, phase_dir, step, is_main, plan.log_every)
    tlog = _TrainLog(phase_dir / "train_log.jsonl", step, is_main)
    t0 = time.perf_counter()
    wall_before = meta["wall_time_s"]
    epoch, index = meta["epoch"], meta["batch_index"]
    pending = None   # (step, metrics on device, flops of one example) not yet read back

    def drain():
        nonlocal pending
        if pending is None:
            return
        s, m, example_flops = pending
        pending = None
        m = {k: float(v) for k, v in jax.device_get(m).items()}
        if not _finite(m):
            last = store.latest_step()
            where = f"{phase_dir / 'ckpt' / 'latest' / str(last)}" if last is not None else "none yet"
            raise NonFiniteLossError(
                f"{label}: non-finite training loss {m['loss']} (grad norm {m['grad_norm']}) at step {s}; "
                f"stopped; last good checkpoint: {where}", step=s, checkpoint=None if last is None else where)
        meta["tokens"] += int(m["tokens"])
        meta["examples_seen"] += int(m["examples"])
        meta["flops"] += example_flops * int(m["examples"])
        record = {"step": s, "loss": m["loss"], "grad_norm": m["grad_norm"], "learning_rate": m["learning_rate"]}
        tlog.write(record)
        tracker.record(record)
        tracker.step_done(s, int(m["examples"]), int(m["tokens"]), sum(timing.values()))
        if s % plan.log_every == 0:
            log.info("%s: step %d/%d loss %.4f grad norm %.3g lr %.3g", label, s, total_steps, m["loss"],
                     m["grad_norm"], m["learning_rate"])

    # The best params since the last write of the latest state: held (a device copy, as the train step donates
    # its input) and written just before that state, so that the disk never holds a best checkpoint newer than
    # the latest one. A resume replays the steps after the latest state, dev evaluations included, and finds
    # the same best again; a phase writes each checkpoint once per checkpoint_every, not once per improvement.
    best_held = None   # (step, params, meta)
    last_saved = step  # the step of the latest state on disk (or resumed from)
    saved_at = _clock()   # when the latest state was last written (for checkpoint_every_minutes)

    def due_by_time() -> bool:
        if plan.checkpoint_every_minutes is None:
            return False   # (no collective: main_decides below syncs the processes of a multi-host run)
        return distributed.main_decides(_clock() - saved_at >= 60 * plan.checkpoint_every_minutes)

    def save_best_only() -> None:
        """The best params held since the last write (what evaluation reads); alone, the end of a phase, which
        writes no state that nothing will resume."""
        nonlocal best_held
        drain()
        meta.update(epoch=epoch, batch_index=index, wall_time_s=wall_before + time.perf_counter() - t0)
        tlog.flush()
        t = time.perf_counter()
        if best_held is not None:
            store.save_best(*best_held)
            best_held = None
        timing["checkpoint_s"] += time.perf_counter() - t

    def save_latest() -> None:
        """The latest state, after the best held since the last one (so the disk never holds a best newer than
        the latest state); also off the cadence, when a stop was requested."""
        nonlocal last_saved, saved_at
        save_best_only()
        t = time.perf_counter()
        store.save_latest(step, state, meta)
        last_saved, saved_at = step, _clock()
        timing["checkpoint_s"] += time.perf_counter() - t

    def state_due() -> bool:
        """This step is on the latest state's step cadence (checkpoint_every)."""
        return bool(ckpt_every) and step % ckpt_every == 0

    def save(final: bool, by_time: bool = False) -> None:
        nonlocal best_held
        drain()
        if step % eval_every == 0 or final:
            t = time.perf_counter()
            score, scores = dev_eval(state["params"], comp)
            host_memory.bound()   # the eval step's buffers are another size than the train step's: their own heap
            timing["eval_s"] += time.perf_counter() - t
            record = {"step": step, "dev": score, "dev_scores": scores, "examples": meta["examples_seen"],
                      "flops": meta["flops"]}
            tlog.write(record)
            tracker.record(record)
            # The learning curve: the dev score against the training spent to reach it (results.json).
            meta["curve"].append({"step": step, "examples": int(meta["examples_seen"]), "flops": float(meta["flops"]),
                                  "dev": float(score)})
            if meta["best_dev"] is None or score > meta["best_dev"]:
                meta.update(best_dev=score, best_step=step, dev_scores=scores)
                best_held = (step, jax.tree.map(jnp.copy, state["params"]),
                             {"dev": score, "dev_scores": scores, "step": step})
        if final and not plan.final_state:
            save_best_only()
        elif final or state_due() or by_time:
            save_latest()
        else:
            tlog.flush()

    # The heap's free pages go back before the first step: what loading the model (an intermediate checkpoint read
    # into a fresh model) and creating the train state left free would otherwise stay resident beneath the first
    # step's buffer, which bound() sees only after that step (the peak of the 3-seed mini, issue 30).
    host_memory.release()
    ticker = progress.Ticker(label, total=total_steps, unit="step", initial=step)
    signals.where.update(label=label, step=step)
    trained = False
    try:
        with signals.deferred():   # a stop request waits for the end of the step, then saves and stops
            while step < total_steps:
                for batch, _position in train_batcher.iterate(epoch, start=index):
                    inputs = _model_inputs(batch, plan.kind)
                    global_batch = distributed.global_batch(inputs, comp.batch_sharding)
                    traces, t = comp.traces, time.perf_counter()
                    state, metrics = comp.train_step(state, global_batch, hparams)
                    compiled = comp.traces != traces
                    if compiled:
                        jax.block_until_ready(metrics)
                        timing["compile_s"] += time.perf_counter() - t
                    drain()
                    host_memory.bound()   # the heap's free pages go back once the process passes its limit
                    step += 1
                    signals.where["step"] = step
                    pending = (step, metrics, flops_per_example(batch["input_ids"].shape))
                    index += 1
                    if index >= steps_per_epoch:
                        epoch, index = epoch + 1, 0
                    ticker.update(1, compiled=compiled, epoch=epoch + 1)   # compiling steps: not in the estimate
                    final = step >= total_steps
                    by_time = not final and due_by_time()
                    if final or state_due() or step % eval_every == 0 or by_time:
                        save(final, by_time)
                    if distributed.stop_requested():   # every process stops at this same step
                        if step != last_saved:
                            save_latest()
                        signals.stop_if_requested()
                    if final or index == 0:
                        break
            drain()
        trained = True
    finally:
        ticker.close()
        tlog.close()
        try:   # a save in flight finishes (and is hashed) before the phase ends, however it ends
            store.wait() if trained else store.close()   # (stopped: orbax's threads end now, not at exit)
        except Exception:
            if trained:
                raise
            log.warning("%s: the last checkpoint save failed too", label, exc_info=True)
        tracker.close()

    best_step = store.best_step()
    # The training state (params and AdamW's two moments: 3x the model) is freed before the best params are
    # read back, so the end of a phase holds one copy of the model, not four (host memory, issue 30).
    like = checkpoint.abstract(state["params"])
    state = params = metrics = global_batch = best_held = pending = None
    host_memory.bound()
    best_params, best_meta = store.restore_best(like, meta["best_step"])
    store.close()
    host_memory.bound()   # (the restore's host copies, before the export or the evaluation)
    stats = {"task": plan.task.name, "train_examples": int(train_examples),
             "epochs": round(step / steps_per_epoch, 4), "steps": int(step), "tokens": int(meta["tokens"]),
             "flops": int(meta["flops"]), "wall_time_s": round(float(meta["wall_time_s"]), 3),
             "best_step": int(best_step), "best_dev": float(best_meta["dev"]),
             "updates": int(math.ceil(step / spec.accumulation)),
             "examples_seen": int(meta["examples_seen"]), "curve": list(meta["curve"]),
             "timing": {k: round(float(v), 3) for k, v in timing.items()}}
    return TrainingOutcome(params=best_params, best_step=int(best_step), best_dev=float(best_meta["dev"]),
                       dev_scores=best_meta["dev_scores"], stats=stats,
                       compilations=comp.traces - traces_before,
                       checkpoint=str(phase_dir / "ckpt" / "best" / str(best_step)), compiled=comp)
