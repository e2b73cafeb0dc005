"""One cell of the study, end to end: intermediate model (shared), target training, zero-shot evaluation.

    cell = model × intermediate task (or none) × target task × seed

The intermediate model of a (model, intermediate task, seed) is trained once and reused by every target
task (`run_intermediate`); the target model starts from its encoder (`flax_models.transfer_encoder`) with
a fresh head, always loaded from the saved `model/` folder so that a cached and a freshly trained
intermediate model give the same numbers. Every split a cell reads is loaded before any training step, so
missing data fails fast. results.json is written last; a cell with a valid one is finished (`is_finished`).
Folder layout: repro.rundir.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
from pathlib import Path

import jax
from flax import nnx

import data_prep as dp
import flax_models as fm
from repro import config
from repro.training import distributed, host_memory, inference, precision
from repro.study import control, inputs, record, retrieval
from repro import rundir
from repro.training import steps
from repro.config import Config
from repro.errors import ConfigError, DataError, ModelError, NonFiniteLossError, UserError
from repro.results import (DIVERGED_NAME, RESULTS_NAME, CellResults, Divergence, make_predictions,
                           ResultsError, load_cell, read_json)
from repro.training.loop import TrainingPlan, flops_per_example, train_phase
from repro.training.tracking import TrackingSpec

log = logging.getLogger("repro")


def cell_config(cfg: Config) -> Config:
    """The resolved cell config, reduced to what the cell uses (so it repeats on its own)."""
    c = cfg.resolved_cell()
    cell = c.cell
    return dataclasses.replace(
        c, models={cell.model: c.model},
        grid=config.GridConfig(models=(cell.model,), intermediate_tasks=(cell.intermediate_task,),
                                target_tasks=(cell.target_task,), seeds=(cell.seed,),
                                sweep={k: (v,) for k, v in (cell.sweep or {}).items()}))


def cell_dir(cfg: Config) -> Path:
    return rundir.cell_dir(cfg.output_dir, cfg.cell_id)


def intermediate_dir(cfg: Config) -> Path:
    c = cfg.cell
    name = f"{config.CONTROL}-{c.control_for}" if c.intermediate_task == config.CONTROL else c.intermediate_task
    return rundir.intermediate_dir(cfg.output_dir, c.model, name, c.seed)


def make_plan(cfg: Config, phase: config.TrainingConfig, task) -> TrainingPlan:
    hp = inputs.phase_hparams(phase, task)
    o = phase.optimizer
    return TrainingPlan(
        task=task, kind=task.kind, batch_size=hp["batch_size"], epochs=hp["epochs"], max_steps=phase.max_steps,
        optimizer=steps.OptimizerSpec(
            learning_rate=hp["learning_rate"], weight_decay=hp["weight_decay"],
            warmup_fraction=hp["warmup_fraction"], clip_norm=o.clip_norm, accumulation=o.accumulation,
            total_updates=1, b1=o.adam_b1, b2=o.adam_b2, eps=o.adam_eps),
        eval_every=phase.eval_every, checkpoint_every=phase.checkpoint_every, log_every=phase.log_every,
        seed=cfg.cell.seed, checkpoint_every_minutes=cfg.checkpoints.every_minutes,
        final_state=cfg.checkpoints.final_state)


class TrainingData:
    """The data and plan of one training phase, loaded before any step runs."""

    def __init__(self, cfg: Config, task, phase_cfg: config.TrainingConfig, tokenizer, mesh, key: str,
                 relabel=None):
        task = inputs.train_task_of(task, cfg)
        self.task = task
        self.key = key
        self.plan = make_plan(cfg, phase_cfg, task)
        n = distributed.data_size(mesh)
        if self.plan.batch_size % n:
            raise ConfigError(f"config: {key}.batch_size={self.plan.batch_size} is not a multiple of the "
                              f"{n} devices of mesh.data")
        self.lang = task.train_language or "en"
        train_split, holdout = phase_cfg.train_split, phase_cfg.dev_from_train
        self.train_examples = inputs.load_split(cfg, task, train_split, self.lang, phase_cfg.max_train_examples,
                                                holdout=holdout, part="rest")
        if holdout:
            self.dev_examples = inputs.load_split(cfg, task, train_split, self.lang, phase_cfg.max_dev_examples,
                                                  holdout=holdout, part="held")
            self.dev_source = f"{train_split} (held out: {holdout})"
        else:
            dev_split = cfg.eval.dev_split if cfg.eval.dev_split in task.splits else "test"
            self.dev_examples = inputs.load_split(cfg, task, dev_split, self.lang, phase_cfg.max_dev_examples,
                                                  for_eval=True)
            self.dev_source = dev_split
        if relabel is not None:   # the control arm: the same examples, supervision permuted (repro.study.control)
            self.train_examples, self.dev_examples = relabel(task, self.train_examples), relabel(task, self.dev_examples)
        # Rows the loaders dropped (no gold label, answer not in its context): recorded in results.json.
        self.dropped = {f"{key} {task.name} {name}/{self.lang}": d for name, d in
                        (("train", self.train_examples.dropped), ("dev", self.dev_examples.dropped)) if d}
        self.train_feats = inputs.featurize(cfg, task, self.train_examples, tokenizer)
        self.dev_feats = inputs.featurize(cfg, task, self.dev_examples, tokenizer)
        self.buckets = inputs.buckets(cfg, inputs.max_length(cfg, task))
        self.batcher = dp.Batcher(self.train_feats, self.plan.batch_size, buckets=self.buckets, shuffle=True,
                                  seed=cfg.cell.seed, process_index=distributed.process_index(),
                                  process_count=distributed.process_count())

    def run(self, cfg: Config, model, head, num_labels, phase_dir: Path, mesh, identity: dict, label: str):
        def dev_eval(params, compiled):
            raw = inference.predict(params, self.dev_feats, compiled, cfg.eval.batch_size, self.buckets, mesh)
            return inference.score(self.task, self.dev_feats, raw, self.dev_examples, self.lang)

        try:
            result = train_phase(
                phase_dir=phase_dir, model=model, plan=self.plan, train_batcher=self.batcher,
                steps_per_epoch=len(self.batcher), train_examples=len(self.train_examples),
                dev_eval=dev_eval, mesh=mesh, identity=identity,
                flops_per_example=flops_per_example(model, head, num_labels), label=label,
                tracking=TrackingSpec(cfg.tracking.tensorboard, cfg.tracking.wandb, run=label, group=cfg.name,
                                      phase=self.key, config=config.to_dict(cfg)))
        except NonFiniteLossError as e:   # name the cell and the phase, not only the folder
            detail = str(e).removeprefix(f"{label}: ")
            err = NonFiniteLossError(f"{cfg.cell_id}: {self.key} phase diverged: {detail}", e.step, e.checkpoint)
            err.phase = self.key
            raise err from e
        result.stats["compilations"] = result.compilations
        # The phase's train state and step buffers are freed now: hand their pages back before the next phase or
        # the evaluation, so that one phase's heap does not stack on the next one's (host_memory.release).
        before, after = host_memory.release()
        if before is not None and after is not None:
            log.debug("%s: %s phase done, %.0f MB resident, %.0f MB once freed pages are returned", label,
                      self.key, before, after)
        return result


def _identity(cfg: Config, phase: str, task, head, num_labels, snapshot: dict) -> dict:
    """What a checkpoint of this phase must have been written by: model, task, head and the semantic config."""
    return {"model": cfg.cell.model, "family": cfg.model.family, "phase": phase, "task": task.name,
            "head": head, "num_labels": num_labels, "config": rundir.semantic(snapshot)}


def _intermediate_snapshot(cfg: Config) -> dict:
    """What the shared intermediate model depends on (not the target task)."""
    d = config.to_dict(cfg)
    return {"model": d["models"][cfg.cell.model], "model_name": cfg.cell.model,
            "intermediate_task": cfg.cell.intermediate_task, "seed": cfg.cell.seed, "data": d["data"],
            "intermediate": d["intermediate"], "precision": d["precision"], "mesh": d["mesh"],
            "eval": {"dev_split": d["eval"]["dev_split"], "batch_size": d["eval"]["batch_size"]},
            **({"control_for": cfg.cell.control_for} if cfg.cell.control_for else {})}


_INTERMEDIATE_STATS = ("task", "train_examples", "epochs", "steps", "tokens", "flops", "wall_time_s", "best_step",
                       "best_dev", "curve", "timing")
_TARGET_STATS = _INTERMEDIATE_STATS + ("compilations",)
_OPTIONAL_STATS = ("curve", "timing")   # absent from an intermediate model trained by an older version


def run_intermediate(cfg: Config, tokenizer, mesh) -> tuple[Path, dict]:
    """Trains (or finds) the intermediate model of the cell's model × intermediate task × seed."""
    folder = intermediate_dir(cfg)
    done = folder / "done.json"
    snapshot = _intermediate_snapshot(cfg)
    writer = distributed.is_main()
    if distributed.main_decides(done.exists()):
        rundir.claim_folder(folder, snapshot, "intermediate model", writer=False)
        log.info("intermediate %s: cached", folder.name)
        return folder / "model", json.loads(done.read_text())
    with distributed.locked(folder, "intermediate model"):
        if distributed.main_decides(done.exists()):   # trained by another process meanwhile
            return run_intermediate(cfg, tokenizer, mesh)
        task = dp.get_task(cfg.intermediate_data_task)
        head, num_labels = steps.head_for(task)
        relabel = ((lambda t, ex: control.permuted(t, ex, cfg.cell.seed))
                   if cfg.intermediate_task == config.CONTROL else None)
        phase = TrainingData(cfg, task, cfg.intermediate, tokenizer, mesh, "intermediate", relabel)
        model = inputs.build_model(cfg, head, num_labels, tokenizer)
        inputs.check_max_length(cfg, model, phase.task)
        rundir.claim_folder(folder, snapshot, "intermediate model", writer=writer)   # everything loaded: claim
        result = phase.run(cfg, model, head, num_labels, folder, mesh,
                           _identity(cfg, "intermediate", task, head, num_labels, snapshot), f"{folder.name}")
        graphdef, _, rest = steps.split_model(model)
        best = nnx.merge(graphdef, result.params, rest)   # (no host copy: save_pretrained reads leaf by leaf)
        stats = {**result.stats, "dropped": phase.dropped}
        if writer:
            fm.save_pretrained(best, folder / "model")
            rundir.atomic_write(done, json.dumps(stats, indent=1) + "\n")
        distributed.barrier("intermediate model saved")   # the others load model/ next
    log.info("intermediate %s: best dev %.4g at step %d", folder.name, result.best_dev, result.best_step)
    return folder / "model", stats


def _intermediate_record(cfg: Config, tokenizer, mesh) -> tuple[Path, dict, dict]:
    """The cell's intermediate model folder, its results.json record, and the rows its loaders dropped."""
    model_dir, stats = run_intermediate(cfg, tokenizer, mesh)
    record = {k: stats[k] for k in _INTERMEDIATE_STATS if k in stats or k not in _OPTIONAL_STATS}
    return model_dir, record, stats.get("dropped", {})


class CellDiverged(UserError):
    """The cell's training diverged and, with on_divergence: record, diverged.json says where."""

    def __init__(self, divergence: Divergence):
        super().__init__(f"{divergence.message} (recorded in {DIVERGED_NAME}; the report lists it as diverged)")
        self.divergence = divergence


def recorded_divergence(cfg: Config) -> Divergence | None:
    """The cell's diverged.json, where on_divergence is record and the cell diverged before."""
    path = cell_dir(cfg) / DIVERGED_NAME
    if cfg.on_divergence != "record" or not path.exists():
        return None
    try:
        return Divergence.from_dict(read_json(path), path)
    except ResultsError:
        return None   # unreadable: the cell runs again


def is_finished(cfg: Config) -> bool:
    """The cell's results.json is there and valid, or (on_divergence: record) its diverged.json; and the
    folder's config.yaml is this cell's."""
    c = cell_config(cfg)
    path = cell_dir(c) / RESULTS_NAME
    if not path.exists():
        if recorded_divergence(c) is not None:
            rundir.claim_folder(cell_dir(c), config.to_dict(c), "cell", writer=False)
            return True
        return False
    rundir.claim_folder(cell_dir(c), config.to_dict(c), "cell", writer=False)
    try:
        load_cell(path)
    except ResultsError:
        return False   # redone by run_cell, which moves the bad file aside
    return True


def run_cell(cfg: Config, mesh=None) -> CellResults:
    """Runs one cell (resuming whatever it finds) and returns its results.

    Everything the cell reads (tokenizer, data, labels, model) is loaded before its folder is claimed, and
    the folder is locked while the cell runs (a second process is refused with who holds it).
    """
    cfg = cell_config(cfg)
    out = cell_dir(cfg)
    rundir.check_writable(out)
    if distributed.main_decides(is_finished(cfg)):
        log.info("cell %s: finished already", cfg.cell_id)
        return _finished(cfg, out)
    with distributed.locked(out, "cell"):
        if distributed.main_decides(is_finished(cfg)):   # finished by another process between the check and the lock
            return _finished(cfg, out)
        if distributed.is_main():
            _set_aside_invalid_results(out / RESULTS_NAME)
        try:
            with precision.scope(cfg.precision):   # what every jitted step of the cell lowers to
                return _run_cell(cfg, out, mesh)
        except NonFiniteLossError as e:
            if cfg.on_divergence != "record":
                raise
            divergence = Divergence(
                cell_id=cfg.cell_id, phase=getattr(e, "phase", "target"), step=int(e.step or 0), message=str(e),
                last_checkpoint=e.checkpoint, config=config.to_dict(cfg),
                finished_at=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
            if distributed.is_main():
                divergence.write(out / DIVERGED_NAME)
            raise CellDiverged(divergence) from e


def _finished(cfg: Config, out: Path) -> CellResults:
    if not (out / RESULTS_NAME).exists():
        raise CellDiverged(recorded_divergence(cfg))
    return load_cell(out / RESULTS_NAME)


def _set_aside_invalid_results(path: Path) -> None:
    if not path.exists():
        return
    try:
        load_cell(path)
    except ResultsError as e:
        target = path.with_name(f"{path.name}.invalid-{dt.datetime.now():%Y%m%dT%H%M%S}")
        path.rename(target)
        log.warning("%s; moved to %s, the cell is evaluated again", e, target.name)


def eval_languages(cfg: Config, target) -> tuple[str, ...]:
    languages = cfg.eval.languages or tuple(target.zero_shot_languages)
    unknown = [lang for lang in languages if lang not in target.languages]
    if unknown:
        raise ConfigError(f"config: eval.languages has {', '.join(unknown)}, not languages of {target.name}")
    return languages


def eval_split(cfg: Config, target) -> str:
    return cfg.eval.split if cfg.eval.split in target.splits else target.splits[-1]


def load_eval_splits(cfg: Config, target) -> tuple[str, dict, dict]:
    """(split, language -> examples with gold, language -> why it is not evaluated).

    A language the source lacks is an error, or with `eval.missing_languages: skip` left out and recorded;
    a split without gold is always an error (never scored).
    """
    split = eval_split(cfg, target)
    test, missing = {}, {}
    for lang in eval_languages(cfg, target):
        try:
            test[lang] = inputs.load_split(cfg, target, split, lang, cfg.eval.max_examples, for_eval=True)
        except DataError as e:
            absent = isinstance(e.__cause__, dp.MissingDataError) and e.__cause__.what in ("language", "split")
            if not (absent and cfg.eval.missing_languages == "skip"):
                raise
            missing[lang] = e.__cause__.why
            log.info("%s: %s %s/%s not evaluated: %s", cfg.cell_id, target.name, split, lang, e.__cause__.why)
    if missing:   # one line for all of them; results.json and repro.log keep each language's reason
        log.warning("%s: %d languages of %s %s not in %s, not evaluated (recorded in results.json): %s",
                    cfg.cell_id, len(missing), target.name, split, cfg.data.source, ", ".join(missing))
    if not test:
        raise DataError(f"data: no language of {target.name} {split} can be evaluated from {cfg.data.source} "
                        f"(missing: {', '.join(sorted(missing))})")
    return split, test, missing


def _run_cell(cfg: Config, out: Path, mesh) -> CellResults:
    t_cell = time.perf_counter()
    mesh = mesh or distributed.make_mesh(cfg.mesh.data)
    tokenizer = inputs.tokenizer_for(cfg)
    target = dp.get_task(cfg.cell.target_task)
    if not config.trains_target(target.name):   # retrieval: scored from the encoder, no target phase
        return retrieval.run_cell(cfg, out, mesh, tokenizer, load_eval_splits(cfg, target), _intermediate_record,
                                  t_cell)
    head, num_labels = steps.head_for(target)
    # Load every split before training, so that missing data fails fast.
    phase = TrainingData(cfg, target, cfg.target, tokenizer, mesh, "target")
    split, test, missing = load_eval_splits(cfg, target)

    model = inputs.build_model(cfg, head, num_labels, tokenizer)
    fresh = inputs.fresh_weights(model)
    inputs.check_max_length(cfg, model, phase.task, target)
    snapshot = config.to_dict(cfg)
    rundir.claim_folder(out, snapshot, "cell", writer=jax.process_index() == 0)   # everything loaded: claim

    intermediate_stats, intermediate_dropped = None, {}
    if cfg.intermediate_task is not None:
        int_head, int_labels = steps.head_for(dp.get_task(cfg.intermediate_data_task))
        model_dir, stats = run_intermediate(cfg, tokenizer, mesh)
        source = fm.from_pretrained(model_dir, head=int_head, num_labels=int_labels, dtype=inputs.dtype_of(cfg))
        if not fm.transfer_encoder(source, model):
            raise ModelError(f"transfer_encoder copied nothing from {model_dir}")
        source = None   # its encoder's arrays are the model's now; its head goes (train_phase hands the pages back)
        intermediate_stats = {k: stats[k] for k in _INTERMEDIATE_STATS if k in stats or k not in _OPTIONAL_STATS}
        intermediate_dropped = stats.get("dropped", {})

    result = phase.run(cfg, model, head, num_labels, out / "target", mesh,
                       _identity(cfg, "target", target, head, num_labels, snapshot), cfg.cell_id)
    t_eval = time.perf_counter()
    scores, per_language, (row_kind, rows) = inference.zero_shot_eval(
        target, test, lambda ex: inputs.featurize(cfg, target, ex, tokenizer), result.params, result.compiled,
        cfg.eval.batch_size, phase.buckets, mesh)
    eval_s = time.perf_counter() - t_eval

    graphdef, _, rest = steps.split_model(model)
    best_model = nnx.merge(graphdef, result.params, rest)   # (the structure and head: no host copy)
    counts = fm.param_count(best_model)
    target_stats = {k: result.stats[k] for k in _TARGET_STATS}
    target_stats["task"] = target.name
    if phase.task.name != target.name:
        target_stats["train_task"] = phase.task.name
    dtype = "bfloat16" if cfg.precision == "bf16" else "float32"
    t_latency = time.perf_counter()
    latency = inference.measure_latency(result.params, result.compiled, best_model, cfg.eval.latency, dtype, mesh)
    latency_s = time.perf_counter() - t_latency
    results = CellResults.assemble({
        **record.identity(cfg, target, {"family": model.family, "model_type": model.config.get("model_type"),
                                        "fresh_weights": fresh}, split, missing, test),
        "setting": ({"task_type": target.setting[0], "transfer": target.setting[1]} if target.setting else None),
        "dropped": {**intermediate_dropped, **phase.dropped},
        "scores": scores,
        "per_language": per_language,
        "param_count": counts.as_dict(),
        "frozen_parameters": int(counts.total - counts.trainable),
        "training": {"intermediate": intermediate_stats, "target": target_stats},
        "inference": latency,
        "timing": record.timing(t_cell, eval_s, latency_s),
        "checkpoint": result.checkpoint,
        "compute": precision.record(cfg.precision, fm.compute_settings(model)),
        "train_size": cfg.target.max_train_examples,
        "same_data_as_target": inputs.repeats_target_data(cfg),
    })
    record.write(out, results, make_predictions(cfg.cell_id, target.name, target.metric, row_kind, rows))
    log.info("cell %s: %s %s", cfg.cell_id, target.metric,
             " ".join(f"{k}={v:.2f}" for k, v in per_language.items()))
    return results

