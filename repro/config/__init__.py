"""The run configuration: one frozen dataclass tree, loaded from YAML with `a.b=value` overrides.

A preset (configs/*.yaml) describes a whole grid: named models, the intermediate tasks (`none` included),
the target tasks and the seeds. A *cell* is one point of that grid; its config is the same tree with
`cell` filled in, and that resolved tree is what `config.yaml` in the cell's folder holds, so

    python -m repro run runs/smoke/cells/<cell_id>/config.yaml

repeats the cell. Every key is checked when loaded: an unknown key or a value of the wrong type is a
`ConfigError` whose one-line message names the key and the value. An override `a.b=value` takes a YAML
value; a mapping value merges into the mapping already at `a.b` (its other keys stay).
"""
from __future__ import annotations

import dataclasses
import itertools
import re
from pathlib import Path
from typing import Any, Literal

import yaml

from repro import typed
from repro.config import bounds as config_bounds, safe_yaml
from repro.errors import ConfigError, did_you_mean


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    family: Literal["bert", "roberta", "xlnet"]
    # Exactly one of the two: hub id / local folder of weights, or a config.json dict for a random init.
    name_or_path: str | None = None
    hf_config: dict[str, Any] | None = None
    # Tokenizer: hub id / folder. None: the synthetic tokenizer for synthetic data, else name_or_path.
    tokenizer: str | None = None
    # A checkpoint that lacks backbone weights is an error; true trains it anyway with those weights random
    # (listed in results.json `model.fresh_weights` and repro.log).
    allow_missing_weights: bool = False
    # What the model was pretrained on: results.json `model_languages`, so that English-only models on cross-lingual
    # targets are reported apart from multilingual ones (bert-base-cased, roberta-base, xlnet-base-cased: english).
    languages: Literal["multilingual", "english"] = "multilingual"


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    # None = the task's own hyper-parameter from the data_prep task registry (TaskSpec.hparams).
    learning_rate: float | None = None
    weight_decay: float | None = None
    warmup_fraction: float | None = None
    clip_norm: float = 1.0
    accumulation: int = 1              # micro-batches per optimiser update
    adam_b1: float = 0.9
    adam_b2: float = 0.999
    adam_eps: float = 1e-8


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How one training phase (intermediate or target) runs; None = the task registry's value."""

    optimizer: OptimizerConfig = OptimizerConfig()
    epochs: float | None = None
    max_steps: int | None = None       # cap on micro-steps (batches); None = epochs decide
    batch_size: int | None = None      # global batch size (all devices, all hosts)
    max_train_examples: int | None = None
    max_dev_examples: int | None = None
    eval_every: int | None = None      # steps between English dev evaluations; None = once per epoch
    checkpoint_every: int | None = None  # steps between `latest` checkpoints; None = by checkpoints.every_minutes only
    log_every: int = 10
    train_split: str = "train"         # the split trained on (e.g. "dev" for a task whose train is absent)
    # Pick checkpoints on this many examples held out of the training split (a fixed seeded sample, the same
    # for every cell) instead of the task's dev split: for a dev split without gold, or to keep every
    # language's dev split a clean evaluation set. None = the dev split.
    dev_from_train: int | None = None


@dataclasses.dataclass(frozen=True)
class DataConfig:
    source: Literal["synthetic", "hub", "xtreme"] = "synthetic"
    data_dir: str | None = None
    buckets: tuple[int, ...] | None = None   # length buckets; None = data_prep's default for the task
    max_length: int | None = None           # None = the task's max_length
    # Target -> the task whose English train/dev data trains it, for targets without a train split; merged
    # over repro.study.inputs.TRAIN_TASK (xtreme's: xquad and mlqa train on squad). E.g. {mlqa: tydiqa}.
    train_tasks: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class LatencyConfig:
    batch_size: int = 32
    seq_len: int = 128
    repeats: int = 20
    warmup: int = 3


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    split: str = "test"                     # split evaluated zero-shot in every language
    dev_split: str = "dev"                  # English split that picks the best checkpoint
    languages: tuple[str, ...] | None = None  # None = the target task's zero-shot languages
    # A language the data source lacks (no file, no hub config): "error" stops the cell before training;
    # "skip" evaluates the others and records the missing one (results.json `missing_languages`, the report).
    # A split without gold labels is never scored: it is an error either way.
    missing_languages: Literal["error", "skip"] = "error"
    batch_size: int = 64
    max_examples: int | None = None          # per language
    latency: LatencyConfig = LatencyConfig()


@dataclasses.dataclass(frozen=True)
class WandbConfig:
    project: str
    entity: str | None = None
    mode: Literal["online", "offline"] = "online"
    tags: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
    """Learning curves beside train_log.jsonl (repro.training.tracking); not part of what a run computes."""

    tensorboard: bool = True                 # <phase>/tensorboard/ event files (tensorboardX)
    wandb: WandbConfig | None = None         # a W&B run per phase (pip install 'xtreme-transfer[wandb]')


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """What the report's verdicts are judged against (repro.report.stats), fixed before the run."""

    # The smallest effect of interest δ, in the metric's points (0-100): TOST equivalence is "the 90 % interval
    # inside ±δ", "underpowered" is "MDE > δ", and seeds_needed is for MDE <= δ. Per target task where given.
    smallest_effect: float = 1.0
    smallest_effect_per_task: dict[str, float] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class CheckpointsConfig:
    """How the resumable state is written (not what is computed: a resume is bitwise exact either way)."""

    every_minutes: float | None = 30.0   # also write it when this much wall time has passed since the last
    final_state: bool = False            # write it at the end of a phase too (nothing resumes a finished one)


@dataclasses.dataclass(frozen=True)
class MeshConfig:
    data: int = 0                            # size of the "data" axis; 0 = all devices


@dataclasses.dataclass(frozen=True)
class GridConfig:
    models: tuple[str, ...] = ()
    intermediate_tasks: tuple[str, ...] = ("none",)   # "none" = no intermediate training
    target_tasks: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (0,)
    # The sample-efficiency axis: caps on the target's English training examples ("all": no cap). Empty:
    # not an axis (target.max_train_examples applies). Set, each cell's id ends in __n<size>.
    train_sizes: tuple[int | Literal["all"], ...] = ()
    # The compute-matched control arm ("control" in intermediate_tasks) repeats one intermediate task's phase (its
    # examples, steps, batch and schedule) with the labels permuted (repro.study.control). control_for names that
    # task; None: the target's entry in `pairings`, else the grid's only other intermediate task.
    control_for: str | None = None
    # Matched pairings, target -> the intermediate task of its own type (e.g. xnli: mnli, xquad: squad).
    pairings: dict[str, str] = dataclasses.field(default_factory=dict)
    # matched: each target runs with none, control and its `pairings` entry only (the primary analysis);
    # cross: every intermediate task with every target (the secondary analysis).
    analysis: Literal["matched", "cross"] = "cross"
    # The hyper-parameter axis (the end of this module): target.* key -> values, e.g. {target.optimizer.learning_rate:
    # [1.0e-4, 2.0e-4]}; each cell's id ends in a tag per key (__lr1e-04); the report keeps, per model, intermediate
    # task and target, the value with the best mean English dev score (repro.report.sweep).
    sweep: dict[str, tuple[Any, ...]] = dataclasses.field(default_factory=dict)

    def in_analysis(self, intermediate: str, target: str) -> bool:
        """Whether the grid runs this pairing: every one under cross; under matched, none, control and the
        target's `pairings` entry."""
        return (self.analysis == "cross" or intermediate in ("none", CONTROL)
                or self.pairings.get(target) == intermediate)

    def control_for_of(self, target: str) -> str:
        """The intermediate task the control arm mirrors in a cell of `target`."""
        if self.control_for:
            return self.control_for
        if target in self.pairings:
            return self.pairings[target]
        real = [t for t in self.intermediate_tasks if t not in ("none", CONTROL)]
        if len(real) != 1:
            raise ConfigError(f"config: grid.control_for is unset and the control arm of {target} has "
                              f"{'no' if not real else len(real)} intermediate tasks to mirror "
                              f"({', '.join(real) or 'grid.intermediate_tasks has none'}): set grid.control_for "
                              f"or grid.pairings.{target}")
        return real[0]


CONTROL = "control"   # the compute-matched control arm's name in grid.intermediate_tasks and cell ids


def trains_target(task_name: str) -> bool:
    """False for retrieval targets: they are scored with the encoder as it is (no target phase, no size axis)."""
    from data_prep import TASKS   # lazy: config stays importable without loading the task registry first

    task = TASKS.get(task_name)
    return task is None or task.kind != "retrieval"


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """One grid point; a None field takes the first value of the matching grid list."""

    model: str | None = None
    intermediate_task: str | None = None
    target_task: str | None = None
    seed: int | None = None
    train_size: int | Literal["all"] | None = None   # only with grid.train_sizes (the first one where unset)
    control_for: str | None = None   # the control arm's mirrored intermediate task (GridConfig.control_for)
    sweep: dict[str, Any] | None = None   # the cell's point of grid.sweep (the first values where unset)


@dataclasses.dataclass(frozen=True)
class Config:
    name: str = "run"
    output_dir: str = "runs/run"
    models: dict[str, ModelConfig] = dataclasses.field(default_factory=dict)
    grid: GridConfig = GridConfig()
    cell: CellConfig = CellConfig()
    data: DataConfig = DataConfig()
    intermediate: TrainingConfig = TrainingConfig()
    target: TrainingConfig = TrainingConfig()
    eval: EvalConfig = EvalConfig()
    # fp32: float32 with full-float32 matmuls on every backend; tf32: float32 with TF32 matmuls on NVIDIA GPUs;
    # bf16: bfloat16 compute over float32 master weights (repro.training.precision has the table).
    precision: Literal["fp32", "tf32", "bf16"] = "fp32"
    # BERT/RoBERTa/XLM-R attention: einsum (written out, with attention-probability dropout), or
    # jax.nn.dot_product_attention's xla / cudnn (fused; no attention-probability dropout). XLNet keeps its own.
    attention: Literal["einsum", "xla", "cudnn"] = "einsum"
    remat: bool = False                      # recompute each layer's activations in the backward pass
    # A non-finite loss or gradient norm stops the phase at that step (the last good checkpoint is kept). stop:
    # the cell fails (exit 1; the grid goes on). record: the cell's diverged.json says where, the grid counts it
    # finished, and the report lists it as diverged; never a score.
    on_divergence: Literal["stop", "record"] = "stop"
    mesh: MeshConfig = MeshConfig()
    tracking: TrackingConfig = TrackingConfig()
    report: ReportConfig = ReportConfig()
    # Persistent XLA compilation cache shared by the cells of a grid (None = off).
    compilation_cache_dir: str | None = None
    # Tokenized features, built once and shared by every cell, seed and shard (repro.study.feature_cache;
    # None = <output_dir>/features). Content-keyed: a folder may be shared by several runs.
    feature_cache_dir: str | None = None
    checkpoints: CheckpointsConfig = CheckpointsConfig()
    # Target task -> {target: {...}, eval: {...}}: merged into the cells of that target (e.g. a QA target's
    # smaller batch). A cell's config.yaml holds the merged values and an empty per_target.
    per_target: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    # ---- derived -------------------------------------------------------------------------------
    def resolved_cell(self) -> "Config":
        """The config with every `cell` field set (from the first grid value where unset)."""
        c = self.cell

        def first(value, options, key):
            if value is not None:
                return value
            if not options:
                raise ConfigError(f"config: cell.{key} is unset and grid.{key}s is empty")
            return options[0]

        intermediate = first(c.intermediate_task, self.grid.intermediate_tasks, "intermediate_task")
        target = first(c.target_task, self.grid.target_tasks, "target_task")
        size = c.train_size if c.train_size is not None or not self.grid.train_sizes else self.grid.train_sizes[0]
        cell = CellConfig(
            model=first(c.model, self.grid.models, "model"), intermediate_task=intermediate, target_task=target,
            seed=first(c.seed, self.grid.seeds, "seed"), train_size=size if trains_target(target) else None,
            control_for=(c.control_for or self.grid.control_for_of(target)) if intermediate == CONTROL else None,
            sweep=c.sweep if c.sweep is not None or not (self.grid.sweep and trains_target(target))
            else sweep_points(self.grid.sweep)[0],
        )
        if cell.model not in self.models:
            raise ConfigError(f"config: cell.model={cell.model!r} is not one of models"
                              f"{did_you_mean(cell.model, self.models)}: {', '.join(self.models)}")
        resolved = _with_target_overrides(dataclasses.replace(self, cell=cell))
        if cell.sweep:
            resolved = from_dict(apply_sweep(to_dict(resolved), cell.sweep))
        if cell.train_size is None:
            return resolved
        cap = None if cell.train_size == "all" else cell.train_size
        return dataclasses.replace(resolved, target=dataclasses.replace(resolved.target, max_train_examples=cap))

    def cells(self) -> list["Config"]:
        """The grid's cross product models × intermediate tasks × target tasks × seeds."""
        g = self.grid
        for key in ("models", "target_tasks"):
            if not getattr(g, key):
                raise ConfigError(f"config: grid.{key} is empty")
        out = []
        for m in g.models:
            for it in g.intermediate_tasks:
                for tt in g.target_tasks:
                    if not g.in_analysis(it, tt):
                        continue
                    for s in g.seeds:
                        for n in (g.train_sizes if trains_target(tt) else ()) or (None,):
                            for point in sweep_points(g.sweep if trains_target(tt) else {}):
                                out.append(dataclasses.replace(self, cell=CellConfig(
                                    model=m, intermediate_task=it, target_task=tt, seed=s, train_size=n,
                                    sweep=point)).resolved_cell())
        return out

    @property
    def model(self) -> ModelConfig:
        return self.models[self.cell.model]

    @property
    def intermediate_task(self) -> str | None:
        it = self.cell.intermediate_task
        return None if it in (None, "none") else it

    @property
    def intermediate_data_task(self) -> str | None:
        """The task whose examples the intermediate phase trains on: the intermediate task, or for the control
        arm the task it mirrors (with permuted labels)."""
        it = self.intermediate_task
        return self.cell.control_for if it == CONTROL else it

    @property
    def cell_id(self) -> str:
        c = self.cell
        size = f"__n{c.train_size}" if c.train_size is not None else ""
        return (f"{c.model}__int-{c.intermediate_task or 'none'}__tgt-{c.target_task}__seed{c.seed}{size}"
                f"{sweep_suffix(c.sweep)}")


# Sections a per_target entry may change: the target phase and the zero-shot evaluation, minus what the shared
# intermediate model depends on (its dev evaluation reads eval.dev_split and eval.batch_size).
PER_TARGET_SECTIONS = ("target", "eval")
PER_TARGET_FIXED = {"eval": ("dev_split", "batch_size")}


def _with_target_overrides(cfg: Config) -> Config:
    """The cell's config with its target's `per_target` entry merged in (and per_target emptied)."""
    if not cfg.per_target:
        return cfg
    return from_dict(_merged_sections(cfg, cfg.per_target.get(cfg.cell.target_task) or {}))


def _merged_sections(cfg: Config, overrides: dict) -> dict:
    data = to_dict(cfg)
    data["per_target"] = {}
    for section, values in overrides.items():
        data[section] = _merged(data[section], values)
    return data


def _check_per_target(cfg: Config) -> None:
    """Shapes and values of every entry (task names: repro.study.inputs.check_tasks; an entry for a target outside
    the grid is kept, so that a preset can carry the settings of an optional target)."""
    for task, overrides in cfg.per_target.items():
        key = f"per_target.{task}"   # a mapping already (typed.build checks the dict[str, dict] shape)
        for section, values in overrides.items():
            if section not in PER_TARGET_SECTIONS:
                raise ConfigError(f"config: {key}.{section}: only {', '.join(PER_TARGET_SECTIONS)} can differ per "
                                  "target (the intermediate model and the data are shared by every target)")
            if not isinstance(values, dict):
                raise ConfigError(f"config: {key}.{section}={values!r} must be a mapping")
            for fixed in PER_TARGET_FIXED.get(section, ()):
                if fixed in values:
                    raise ConfigError(f"config: {key}.{section}.{fixed}: cannot differ per target (the shared "
                                      "intermediate model's dev evaluation uses it)")
        try:
            from_dict(_merged_sections(cfg, overrides))
        except ConfigError as e:   # name the per_target key, not the merged one
            raise ConfigError(str(e).replace("config: ", f"config: {key}: ", 1)) from e


def _check_sweep(cfg: Config) -> None:
    """The cell's point is one of grid.sweep's, and every value fits its key (checked on the config it makes)."""
    _check_sweep_point(cfg.cell.sweep, cfg.grid.sweep)
    if not cfg.grid.sweep:
        return
    base = to_dict(cfg)
    base["grid"]["sweep"], base["cell"]["sweep"] = {}, None
    for key, values in cfg.grid.sweep.items():
        for value in values:
            try:
                from_dict(apply_sweep(base, {key: value}))
            except ConfigError as e:   # name the sweep's key, not the key it sets
                raise ConfigError(f"config: grid.sweep.{key}: {str(e).removeprefix('config: ')}") from e


# ------------------------------------------------------------------------------------------------
# Loading: YAML -> dict -> checked dataclasses (repro.typed).

def _check(obj, prefix: str) -> None:
    """Value checks beyond types."""
    def bad(field, why):
        key = f"{prefix}.{field}" if prefix else field
        raise ConfigError(f"config: {key}={getattr(obj, field)!r} {why}")

    if isinstance(obj, ModelConfig):
        if (obj.name_or_path is None) == (obj.hf_config is None):
            raise ConfigError(f"config: {prefix}: set exactly one of name_or_path and hf_config")
    elif isinstance(obj, OptimizerConfig):
        for f in ("learning_rate", "weight_decay", "warmup_fraction"):
            v = getattr(obj, f)
            if v is not None and v < 0:
                bad(f, "must be >= 0")
        if obj.warmup_fraction is not None and obj.warmup_fraction > 1:
            bad("warmup_fraction", "must be <= 1")
        if obj.clip_norm < 0:
            bad("clip_norm", "must be >= 0 (0 = no clipping)")
        if obj.accumulation < 1:
            bad("accumulation", "must be >= 1")
    elif isinstance(obj, TrainingConfig):
        for f in ("epochs", "max_steps", "batch_size", "max_train_examples", "max_dev_examples",
                  "eval_every", "checkpoint_every", "log_every", "dev_from_train"):
            v = getattr(obj, f)
            if v is not None and v <= 0:
                bad(f, "must be > 0")
    elif isinstance(obj, CheckpointsConfig):
        if obj.every_minutes is not None and not obj.every_minutes > 0:
            bad("every_minutes", "must be > 0 (null = by steps only)")
    elif isinstance(obj, DataConfig):
        if obj.buckets is not None and (not obj.buckets or any(b <= 0 for b in obj.buckets)):
            bad("buckets", "must be a non-empty list of positive lengths")
    elif isinstance(obj, (EvalConfig, LatencyConfig)):
        if isinstance(obj, EvalConfig) and obj.languages is not None and not obj.languages:
            bad("languages", "is empty; leave it unset (null) to evaluate every language of the task")
        for f in ("batch_size", "seq_len", "repeats"):
            if hasattr(obj, f) and getattr(obj, f) <= 0:
                bad(f, "must be > 0")
    elif isinstance(obj, ReportConfig):
        if not obj.smallest_effect > 0:
            bad("smallest_effect", "must be > 0 (points of the metric)")
        for task, v in obj.smallest_effect_per_task.items():
            if not v > 0:
                raise ConfigError(f"config: {prefix}.smallest_effect_per_task.{task}={v!r} must be > 0")
    elif isinstance(obj, MeshConfig):
        if obj.data < 0:
            bad("data", "must be >= 0")
    elif isinstance(obj, GridConfig):
        for m in obj.intermediate_tasks + obj.target_tasks:
            if not m:
                raise ConfigError(f"config: {prefix}: empty task name")
        sizes = [n for n in obj.train_sizes if n != "all"]
        if any(n <= 0 for n in sizes) or len(set(obj.train_sizes)) != len(obj.train_sizes):
            bad("train_sizes", "must be distinct positive example counts or \"all\"")
        _check_sweep_keys(obj.sweep, obj.train_sizes)
        for f in ("intermediate_tasks", "seeds"):   # models and target_tasks: checked when the grid is built
            if not getattr(obj, f):
                bad(f, "is empty: a grid needs at least one (intermediate_tasks: [none] = no intermediate training)")
        for key, task in [("control_for", obj.control_for)] + [(f"pairings.{t}", i) for t, i in obj.pairings.items()]:
            if task in ("none", CONTROL):
                raise ConfigError(f"config: {prefix}.{key}={task!r} must name an intermediate task")
        if obj.analysis == "matched":
            for t in obj.target_tasks:
                if t not in obj.pairings:   # (a paired task left out of intermediate_tasks is simply not run)
                    raise ConfigError(f"config: {prefix}.pairings has no entry for target {t!r} (analysis: matched "
                                      "runs each target with its own intermediate task; analysis: cross runs all)")
        if CONTROL in obj.intermediate_tasks:
            for t in obj.target_tasks:
                obj.control_for_of(t)   # a ConfigError naming the target whose control has nothing to mirror
    elif isinstance(obj, Config):
        for m in obj.grid.models:
            if m not in obj.models:
                raise ConfigError(f"config: grid.models entry {m!r} is not one of models{did_you_mean(m, obj.models)}: "
                                  f"{', '.join(obj.models)}")
        if obj.cell.model is not None and obj.cell.model not in obj.models:
            raise ConfigError(f"config: cell.model={obj.cell.model!r} is not one of models"
                              f"{did_you_mean(obj.cell.model, obj.models)}: {', '.join(obj.models)}")
        _check_per_target(obj)
        _check_sweep(obj)
    config_bounds.check(obj, prefix)   # every number finite and in its range (after the checks above)


def parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise ConfigError(f"config: override {text!r} is not of the form a.b=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise ConfigError(f"config: override {text!r} has an empty key")
    try:   # bounded: no anchors or aliases (a "billion laughs" override), no deep nesting (repro.config.safe_yaml)
        value = safe_yaml.load(raw, f"override {key}") if raw.strip() else None
    except safe_yaml.NotYAML:
        raise ConfigError(f"config: override {key}={config_bounds.short(raw)} is not a YAML value") from None
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for i, p in enumerate(path[:-1]):
            nxt = node.get(p) if isinstance(node, dict) else None
            if nxt is None:
                nxt = {}
                node[p] = nxt
            elif not isinstance(nxt, dict):
                raise ConfigError(f"config: override {text!r}: {'.'.join(path[:i + 1])} is not a mapping")
            node = nxt
        old = node.get(path[-1])
        node[path[-1]] = _merged(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return data


def _merged(base: dict, update: dict) -> dict:
    """A mapping override merges into the mapping it replaces: `target.optimizer={learning_rate: 1e-4}`
    keeps the preset's other optimizer keys (set one to null to drop back to its default)."""
    out = dict(base)
    for k, v in update.items():
        out[k] = _merged(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def from_dict(data: dict) -> Config:
    return typed.build(Config, data, ConfigError, prefix="config: ", check=_check)


# ---- the presets that ship with the package, by name (`xtreme-transfer grid smoke`) ----------------------
# One copy: configs/*.yaml in a checkout; repro/presets links to it, so the wheel's package data (pyproject.toml)
# holds the same files and an installed package finds them with no checkout around it.
_CHECKOUT_PRESETS = Path(__file__).resolve().parents[2] / "configs"   # (repro/config/__init__.py)


def presets_dir() -> Path | None:
    """The shipped presets' folder: the package data, else a checkout's configs/ (a clone made without
    symlinks turns repro/presets into a one-line text file)."""
    from importlib import resources
    for d in (Path(str(resources.files("repro") / "presets")), _CHECKOUT_PRESETS):
        if d.is_dir():
            return d
    return None


def preset_names() -> list[str]:
    d = presets_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d else []


def resolve_path(arg: str | Path) -> Path:
    """CONFIG as a path: itself where it exists; else NAME, NAME.yaml or configs/NAME.yaml is the shipped
    preset NAME (so README's configs/smoke.yaml works outside a checkout too)."""
    path = Path(arg)
    if path.exists():
        return path
    parts, name = path.parts, None
    if len(parts) == 1:
        name = path.stem if path.suffix in (".yaml", ".yml") else path.name
    elif len(parts) == 2 and parts[0] == "configs" and path.suffix == ".yaml":
        name = path.stem
    d = presets_dir()
    if name and d is not None and (d / f"{name}.yaml").is_file():
        return d / f"{name}.yaml"
    return path


def load(path: str | Path, overrides: list[str] = ()) -> Config:
    """CONFIG: a YAML file, a run folder holding config.yaml, or a shipped preset's name (`resolve_path`)."""
    path = resolve_path(path)
    if path.is_dir():
        path = path / "config.yaml"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:   # name the line, as for a YAML error
        raw = path.read_bytes()
        line = raw.count(b"\n", 0, e.start) + 1
        raise ConfigError(f"config: {path} line {line} is not UTF-8 (byte {raw[e.start]:#04x})") from e
    except OSError as e:
        shipped = preset_names()
        hint = f"{did_you_mean(path.stem, shipped)} (shipped presets: {', '.join(shipped)})" if shipped else ""
        raise ConfigError(f"config: cannot read {path}: {e.strerror}{hint}") from None
    data = safe_yaml.load(text, str(path)) or {}   # one line naming the file and line; no alias bombs
    return from_dict(apply_overrides(data, list(overrides)))


def to_dict(cfg) -> dict:
    """Plain YAML/JSON-friendly dict (tuples -> lists)."""
    return typed.plain(cfg)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


# ------------------------------------------------------------------------------------------------
# The hyper-parameter axis: `grid.sweep`, one list of values per dotted key of the target phase.
#
#     grid:
#       sweep: {target.optimizer.learning_rate: [1.0e-4, 2.0e-4]}
#
# multiplies the grid's cells by the values (the cross product over several keys); each cell's `cell.sweep` holds its
# point, its config has the value at the key, and its id ends in a tag per key (`...__seed0__lr2e-04`). Only target.*
# keys can be swept: the intermediate model is shared by every target of a (model, intermediate task, seed) and by
# every point. Which value is kept is decided on English dev, as xtreme picks its learning rate (repro.report.sweep).

# Short names of the usual keys in a cell id; any other key is tagged with its last part, underscores dropped.
SWEEP_TAGS = {"learning_rate": "lr", "weight_decay": "wd", "warmup_fraction": "warmup", "batch_size": "bs",
              "epochs": "ep", "max_steps": "steps", "clip_norm": "clip", "accumulation": "acc",
              "max_train_examples": "ntrain"}
SWEEP_PREFIX = "target."
_SWEEP_SAFE = re.compile(r"[A-Za-z0-9.+-]+")
_SWEEP_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def sweep_tag(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return SWEEP_TAGS.get(leaf, leaf.replace("_", ""))


def _sweep_normal(value: Any) -> Any:
    """The value as the config reads it: PyYAML reads 1e-4 (no dot) as a string, the config's floats do not."""
    if isinstance(value, str) and _SWEEP_NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def sweep_value_text(value: Any) -> str:
    """A value as it appears in a cell id: floats in the shortest exponent form that reads back equal
    (2e-04, 3.5e-05), integers as they are."""
    value = _sweep_normal(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        for digits in range(17):
            text = f"{value:.{digits}e}"
            if float(text) == value:
                return text
    return str(value)


def sweep_suffix(point: dict[str, Any] | None) -> str:
    """The cell id's ending for a sweep point ("" without a sweep)."""
    return "".join(f"__{sweep_tag(k)}{sweep_value_text(v)}" for k, v in (point or {}).items())


def sweep_points(sweep: dict[str, tuple]) -> list[dict[str, Any] | None]:
    """Every point of the sweep (the cross product, in the order the keys and values are written); [None]
    without a sweep."""
    if not sweep:
        return [None]
    keys = list(sweep)
    return [dict(zip(keys, map(_sweep_normal, values))) for values in itertools.product(*(sweep[k] for k in keys))]


def _check_sweep_keys(sweep: dict[str, tuple], train_sizes: tuple) -> None:
    """Shapes of grid.sweep (the values' types are checked when a point is applied, naming its key)."""
    tags = {}
    for key, values in sweep.items():
        where = f"config: grid.sweep.{key}"
        if not key.startswith(SWEEP_PREFIX) or len(key) == len(SWEEP_PREFIX):
            raise ConfigError(f"{where}: only target.* keys can be swept (the intermediate model is shared by "
                              "every target and every point of the sweep; sweep it with separate output_dirs)")
        if not values:
            raise ConfigError(f"{where}=[] is empty: give at least one value")
        if any(isinstance(v, (dict, list, tuple)) for v in values):
            raise ConfigError(f"{where}={list(values)!r}: the values must be single numbers or strings")
        if len({sweep_value_text(v) for v in values}) != len(values):
            raise ConfigError(f"{where}={list(values)!r} repeats a value")
        if any(not _SWEEP_SAFE.fullmatch(sweep_value_text(v)) for v in values):
            raise ConfigError(f"{where}={list(values)!r}: a value cannot be written in a cell id")
        if key == "target.max_train_examples" and train_sizes:
            raise ConfigError(f"{where}: grid.train_sizes already sets target.max_train_examples")
        if sweep_tag(key) in tags:
            raise ConfigError(f"{where} and grid.sweep.{tags[sweep_tag(key)]} share the cell-id tag {sweep_tag(key)!r}")
        tags[sweep_tag(key)] = key


def _check_sweep_point(point: dict[str, Any] | None, sweep: dict[str, tuple]) -> None:
    """A cell's point must be one of the grid's."""
    for key, value in (point or {}).items():
        if key not in sweep:
            raise ConfigError(f"config: cell.sweep.{key} is not a key of grid.sweep "
                              f"({', '.join(sweep) or 'empty'})")
        if sweep_value_text(value) not in {sweep_value_text(v) for v in sweep[key]}:
            raise ConfigError(f"config: cell.sweep.{key}={value!r} is not one of grid.sweep.{key}: "
                              f"{list(sweep[key])}")


def apply_sweep(data: dict, point: dict[str, Any] | None) -> dict:
    """The config dict with the point's values set at their dotted keys (a copy)."""
    if not point:
        return data
    data = {**data}
    for key, value in point.items():
        parts = key.split(".")
        node = data
        for i, part in enumerate(parts[:-1]):
            child = node.get(part)
            if not isinstance(child, dict):
                raise ConfigError(f"config: {'.'.join(parts[:i + 1])} is not a section")
            node[part] = child = {**child}
            node = child
        if parts[-1] not in node:
            raise ConfigError(f"config: unknown key {parts[-1]!r} in {'.'.join(parts[:-1])} "
                              f"(known here: {', '.join(sorted(node))})")
        node[parts[-1]] = _sweep_normal(value)
    return data
