"""What a cell reads, resolved from its config: tasks, the tokenizer, the model, data splits and features.

Each function turns a failure it can name into a one-line user error (`ConfigError`, `DataError`,
`ModelError`) raised `from` the original exception, so repro.log keeps the cause.
"""
from __future__ import annotations

import logging
import random

import jax.numpy as jnp

import data_prep as dp
import flax_models as fm
from flax_models.weights import weight_files
from repro.training import steps
from repro.config import CONTROL, Config, TrainingConfig, trains_target
from repro.errors import ConfigError, DataError, ModelError, did_you_mean

log = logging.getLogger("repro")

# Targets without English training data train on another task's (xtreme: XQuAD and MLQA train on SQuAD).
TRAIN_TASK = {"xquad": "squad", "mlqa": "squad"}


# Intermediate tasks whose training data is a target's own English training data under another name:
# XNLI's English train set *is* MultiNLI's (392,702 pairs both).
SAME_TRAINING_DATA = {("mnli", "xnli"): "XNLI's English training set is MultiNLI (392,702 pairs both)"}


def repeats_target_data(cfg: Config) -> str | None:
    """Why the cell's intermediate phase trains on the target's own training data (so the pairing is the
    same data trained twice, not intermediate-task transfer), or None."""
    if cfg.intermediate_task is None or not trains_target(cfg.cell.target_task):
        return None
    target = dp.get_task(cfg.cell.target_task)
    inter, train = cfg.intermediate_data_task, train_task_of(target, cfg).name
    if inter == train:
        return f"the intermediate task {inter} is the data {target.name} trains on"
    return SAME_TRAINING_DATA.get((inter, train)) or SAME_TRAINING_DATA.get((inter, target.name))


def train_task_of(task, cfg: Config | None = None):
    """The task whose train/dev data trains a target: `data.train_tasks`, else TRAIN_TASK for targets without
    a train split, else the target itself."""
    configured = cfg.data.train_tasks if cfg is not None else {}
    if task.name in configured:
        name = configured[task.name]
        if name not in dp.TASKS:
            raise ConfigError(f"config: data.train_tasks.{task.name}={name!r} is not a task")
        return dp.get_task(name)
    if "train" in task.splits:
        return task
    if task.name in TRAIN_TASK:
        return dp.get_task(TRAIN_TASK[task.name])
    raise ConfigError(f"config: target task {task.name!r} has no train split and no training task "
                      f"(set data.train_tasks.{task.name})")


def check_tasks(cfg: Config) -> None:
    """Unknown task names and untrainable kinds -> ConfigError."""
    def known(key, name, trainable=True):
        if name not in dp.TASKS:
            raise ConfigError(f"config: {key}={name!r} is not a task{did_you_mean(name, dp.TASKS)} "
                              f"(known: {', '.join(sorted(dp.TASKS))})")
        if trainable and dp.TASKS[name].kind not in steps.TRAINABLE_KINDS:
            raise ConfigError(f"config: {key}={name!r} is a {dp.TASKS[name].kind} task, which has no "
                              f"training head (kinds: {', '.join(steps.TRAINABLE_KINDS)})")

    def target(key, name):   # a retrieval target is scored without training (repro.study.retrieval)
        known(key, name, trainable=trains_target(name))
        if trains_target(name):
            train_task_of(dp.get_task(name), cfg)

    for i, t in enumerate(cfg.grid.target_tasks):
        target(f"grid.target_tasks.{i}", t)
    for i, t in enumerate(cfg.grid.intermediate_tasks):
        if t not in ("none", CONTROL):
            known(f"grid.intermediate_tasks.{i}", t)
    for key, t in [("grid.control_for", cfg.grid.control_for), ("cell.control_for", cfg.cell.control_for)]:
        if t is not None:
            known(key, t)
    for t, i in cfg.grid.pairings.items():
        target(f"grid.pairings.{t}", t)
        known(f"grid.pairings.{t}", i)
    if cfg.cell.target_task is not None:
        target("cell.target_task", cfg.cell.target_task)
    for t in cfg.per_target:
        target(f"per_target.{t}", t)
    if cfg.cell.intermediate_task not in (None, "none", CONTROL):
        known("cell.intermediate_task", cfg.cell.intermediate_task)


def dtype_of(cfg: Config):
    return jnp.bfloat16 if cfg.precision == "bf16" else jnp.float32


def tokenizer_for(cfg: Config):
    """models.X.tokenizer, else the checkpoint's own (from the folder the weights come from), else (a
    random-init model on synthetic data) the synthetic one."""
    m = cfg.model
    name = m.tokenizer or (None if cfg.data.source == "synthetic" else m.name_or_path)
    if name is None:
        if cfg.data.source != "synthetic":   # the synthetic vocabulary would turn real text into <unk>s
            raise ConfigError(f"config: models.{cfg.cell.model}.tokenizer is unset: a model built from hf_config "
                              f"needs a real tokenizer (hub id or folder) for data.source={cfg.data.source}")
        return dp.synthetic_tokenizer(m.family)
    try:
        if name == m.name_or_path:   # one download path for weights and tokenizer (the hub's snapshot)
            name = str(fm.loading.resolve(name))
        return dp.load_tokenizer(name)
    except (OSError, ValueError) as e:   # missing folder/files, hub errors (OSError), no fast tokenizer
        raise ModelError(f"tokenizer {name!r} cannot be loaded: {' '.join(str(e).split())[:300]}") from e


def build_model(cfg: Config, head, num_labels, tokenizer):
    m = cfg.model
    if m.hf_config is not None:
        hf = dict(m.hf_config)
        vocab = hf.get("vocab_size", hf.get("n_token"))
        if vocab is not None and vocab < len(tokenizer):
            raise ConfigError(f"config: models.{cfg.cell.model}.hf_config.vocab_size={vocab} is smaller than "
                              f"the tokenizer's {len(tokenizer)} tokens")
        model = fm.from_config(hf, head=head, num_labels=num_labels, dtype=dtype_of(cfg), seed=cfg.cell.seed)
    else:
        try:
            model = fm.from_pretrained(m.name_or_path, head=head, num_labels=num_labels, dtype=dtype_of(cfg),
                                       seed=cfg.cell.seed, allow_missing_backbone=m.allow_missing_weights)
        except (OSError, ValueError) as e:   # missing folder/weights, hub errors, wrong shapes, bad config
            raise ModelError(f"model {m.name_or_path!r} (models.{cfg.cell.model}) cannot be loaded: "
                             f"{' '.join(str(e).split())[:300]}") from e
    if model.family != m.family:
        raise ConfigError(f"config: models.{cfg.cell.model}.family={m.family!r} but the model is a {model.family}")
    fm.configure_compute(model, attention=cfg.attention, remat=cfg.remat)
    info = getattr(model, "loading_info", None)
    if info is not None and info.missing:
        log.info("%s: %d parameters not in %s, initialised at random: %s", cfg.cell.model, len(info.missing),
                 info.source, ", ".join(info.missing))
    return model


def fresh_weights(model) -> list[str] | None:
    """The parameters a checkpoint did not provide (None: the whole model is a random init from hf_config)."""
    info = getattr(model, "loading_info", None)
    return None if info is None else list(info.missing)


class ModelUnreachable(RuntimeError):
    """The model is on the hub, which cannot be reached now, and it is not in the local cache."""


def check_model(cfg: Config):
    """Everything about the cell's model that can go wrong before training, checked without loading weights
    into a model: the config (or the hub id / folder and its config.json), a weight file the run can read,
    the tokenizer and its vocabulary against the embedding table. Returns the abstract model (shapes only).
    Raises ModelError / ConfigError, or ModelUnreachable (hub offline and not cached)."""
    m, key = cfg.model, f"models.{cfg.cell.model}"
    if m.hf_config is not None:
        config, where = dict(m.hf_config), f"{key}.hf_config"
    else:
        try:
            folder = fm.loading.resolve(m.name_or_path)
        except fm.loading.HubUnreachableError as e:
            raise ModelUnreachable(f"model {m.name_or_path!r} ({key}): {e}") from e
        except OSError as e:
            raise ModelError(f"model {m.name_or_path!r} ({key}) cannot be had: {' '.join(str(e).split())}") from e
        where = str(folder / fm.loading.CONFIG_NAME)
        try:
            config = fm.loading.read_config(folder)
            weight_files(folder)
        except (OSError, ValueError) as e:
            raise ModelError(f"model {m.name_or_path!r} ({key}): {' '.join(str(e).split())}") from e
    try:
        model = fm.abstract_model(config)
    except (ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"config: {where}: {' '.join(str(e).split())}") from e
    if model.family != m.family:
        raise ConfigError(f"config: {key}.family={m.family!r} but {where} describes a {model.family}")
    tokenizer = tokenizer_for(cfg)
    vocab = config.get("vocab_size", config.get("n_token"))
    if vocab is not None and len(tokenizer) > vocab:
        raise ConfigError(f"config: {where}: vocab_size={vocab} is smaller than the tokenizer's "
                          f"{len(tokenizer)} tokens")
    return model


def check_max_length(cfg: Config, model, *tasks) -> None:
    """The sequences of every task fit the model (else a one-line ConfigError instead of a trace-time crash)."""
    usable = fm.usable_length(model)
    for task in tasks:
        length = max_length(cfg, task)
        if usable is not None and length > usable:
            key = "data.max_length" if cfg.data.max_length else f"the task's max_length ({task.name})"
            raise ConfigError(f"config: {key}={length} is longer than the {usable} positions of model "
                              f"{cfg.cell.model}; set data.max_length <= {usable}")


DATA_ERRORS = (dp.MissingDataError, dp.NoGoldError, dp.SourceUnavailableError)


# Evaluation examples (dev and test, and the synthetic generator's) are drawn with this seed, never the cell's:
# every seed and both arms of a comparison are scored on the same examples, so differences can be paired.
EVAL_SUBSET_SEED = 0


def load_split(cfg: Config, task, split: str, language: str, max_examples: int | None, *,
               require_gold: bool = True, holdout: int | None = None, part: str = "all",
               for_eval: bool = False) -> list:
    """The examples of (task, split, language) from the configured source, or a one-line DataError whose
    cause is data_prep's MissingDataError / NoGoldError / SourceUnavailableError (or a malformed file).

    holdout/part: a fixed seeded sample of `holdout` examples ("held") and the rest ("rest"), so that a
    phase can pick checkpoints on examples it does not train on. max_examples subsets what is returned:
    with the cell's seed for training data, with EVAL_SUBSET_SEED for evaluation data (`for_eval`).
    """
    seed = EVAL_SUBSET_SEED if for_eval else cfg.cell.seed
    where = f"{cfg.data.source}{' ' + cfg.data.data_dir if cfg.data.data_dir else ''}"
    try:
        examples = dp.load_examples(task, split, language, source=cfg.data.source, data_dir=cfg.data.data_dir,
                                    seed=seed, require_gold=require_gold)
    except DATA_ERRORS as e:
        raise DataError(f"data: {e}") from e
    except (OSError, ValueError) as e:   # malformed rows, unknown labels, unreadable files
        raise DataError(f"data: cannot load {task.name} {split}/{language} from {where}: "
                        f"{' '.join(str(e).split())}") from e
    dropped = dict(getattr(examples, "dropped", {}))
    if holdout:
        if holdout >= len(examples):
            raise ConfigError(f"config: dev_from_train={holdout} leaves nothing to train on: {task.name} "
                              f"{split}/{language} has {len(examples)} examples")
        held = set(random.Random(HOLDOUT_SEED).sample(range(len(examples)), holdout))
        examples = [e for i, e in enumerate(examples) if (i in held) == (part == "held")]
    sampled = max_examples is not None and len(examples) > max_examples
    if sampled:
        keep = sorted(random.Random(seed).sample(range(len(examples)), max_examples))
        examples = [examples[i] for i in keep]
    split_examples = dp.Split(examples, dropped)
    # What was selected, for the feature cache's index (`repro preflight` says whether it is cached).
    split_examples.selection = selection(cfg, task, split, language, max_examples, holdout=holdout, part=part,
                                         for_eval=for_eval)
    return split_examples


def selection(cfg: Config, task, split: str, language: str, max_examples: int | None, *,
              holdout: int | None = None, part: str = "all", for_eval: bool = False) -> dict:
    """The arguments of `load_split` that decide which examples it returns."""
    return {"source": cfg.data.source, "data_dir": cfg.data.data_dir, "task": task.name, "split": split,
            "language": language, "max_examples": max_examples, "holdout": holdout,
            "part": part if holdout else "all",
            # the seed draws the sample, and the synthetic source's examples themselves
            "seed": (EVAL_SUBSET_SEED if for_eval else cfg.cell.seed)
            if max_examples is not None or cfg.data.source == "synthetic" else None}


# The held-out dev sample of `dev_from_train` is the same for every cell and seed.
HOLDOUT_SEED = 0


def max_length(cfg: Config, task) -> int:
    return int(cfg.data.max_length or task.max_length)


def buckets(cfg: Config, length: int) -> tuple[int, ...] | None:
    if cfg.data.buckets is None:
        return None
    return tuple(b for b in sorted(cfg.data.buckets) if b < length) + (length,)


def featurize(cfg: Config, task, examples, tokenizer):
    """The features of `examples`, from the run's feature cache (built there the first time)."""
    from repro.study import feature_cache

    return feature_cache.FeatureCache(feature_cache.cache_root(cfg)).features(
        task, examples, tokenizer, max_length(cfg, task), selection=getattr(examples, "selection", None),
        label=f"{task.name} {examples.selection['split']}/{examples.selection['language']}"
        if getattr(examples, "selection", None) else "")


def phase_hparams(phase: TrainingConfig, task) -> dict:
    """The phase's hyper-parameters: config values where set, else the task registry's."""
    hp, o = task.hparams, phase.optimizer
    pick = lambda value, default: default if value is None else value  # noqa: E731
    return {"batch_size": phase.batch_size or hp.batch_size, "epochs": float(pick(phase.epochs, hp.epochs)),
            "learning_rate": pick(o.learning_rate, hp.learning_rate),
            "weight_decay": pick(o.weight_decay, hp.weight_decay),
            "warmup_fraction": pick(o.warmup_fraction, hp.warmup_fraction)}
