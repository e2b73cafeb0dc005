"""What a grid costs before it runs: per training phase the examples, steps, tokens and training FLOPs, and the
device-hours they take on a named accelerator at a given MFU.

    python -m repro plan CONFIG [a.b=value ...] [--device h100 --mfu 0.4] [--from auto|data|sizes]
                                [--format text|markdown|csv] [--shards N]

A phase is counted as the run counts it (repro.training.loop): the Batcher's steps over the phase's epochs (capped
at max_steps), the non-padding tokens of real examples, and `flax_models.flops.train_flops` at each batch's
length bucket per real example. Where the data can be read (basis "data": synthetic, the xtreme folder, or
the hub with `--from data`) the plan featurizes it with the model's tokenizer and batches it as the run
will, so its numbers are the run's results.json counters. Elsewhere (basis "sizes") the split's size comes
from repro.study.known_sizes and every example is put at the task's max_length: an upper bound on FLOPs, and no
token count. An intermediate run is counted once per (model, intermediate task, seed), as the grid shares
it. Device-hours = FLOPs / (the device's peak FLOP/s at the run's precision x MFU) / 3600.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from collections import Counter
from pathlib import Path

import numpy as np

import data_prep as dp
from flax_models import flops as fl
from repro.study import inputs, known_sizes
from repro import tables
from repro.training import steps
from repro.study.cell import cell_config, intermediate_dir, make_plan
from repro.config import Config, trains_target
from repro.errors import ConfigError, UserError, one_line
from repro.training.loop import phase_steps

BASES = ("auto", "data", "sizes")


@dataclasses.dataclass(frozen=True)
class CostEstimate:
    """One training run: a cell's target phase, or an intermediate run shared by `cells`."""

    kind: str                    # "intermediate" | "target"
    run: str                     # the intermediate folder's name, or the cell id
    model: str
    task: str                    # the task whose data trains it (xquad: squad)
    basis: str                   # "data" | "sizes" | "unknown"
    examples: int | None = None  # training examples (results.json train_examples)
    epochs: float | None = None
    steps: int | None = None
    tokens: int | None = None
    flops: int | None = None
    cells: tuple[str, ...] = ()
    note: str = ""


@dataclasses.dataclass(frozen=True)
class Device:
    name: str
    peak: float                  # FLOP/s at the run's precision
    mfu: float

    def hours(self, flops: int | None) -> float | None:
        return None if flops is None else flops / (self.peak * self.mfu) / 3600


def plan_grid(cfg: Config, basis: str = "auto", cells: list[Config] | None = None) -> list[CostEstimate]:
    """Every training run of the grid (or of `cells`), in grid order, each intermediate run once (before the
    first cell that uses it)."""
    if basis not in BASES:
        raise ConfigError(f"plan: --from {basis!r} is not one of {', '.join(BASES)}")
    est = _Estimator(basis)
    out: dict[str, CostEstimate] = {}
    for cell in cells if cells is not None else cfg.cells():
        c = cell_config(cell)
        if c.intermediate_task is not None:
            name = intermediate_dir(c).name
            if name not in out:
                out[name] = est.phase(c, "intermediate", dp.get_task(c.intermediate_data_task), name)
            out[name] = dataclasses.replace(out[name], cells=out[name].cells + (c.cell_id,))
        if not trains_target(c.cell.target_task):   # retrieval: the encoder as it is, one forward pass a language
            out[c.cell_id] = CostEstimate("target", c.cell_id, c.cell.model, c.cell.target_task, "none", 0, 0.0, 0, 0,
                                          0, (c.cell_id,), "retrieval: no training (embeddings of every language)")
            continue
        out[c.cell_id] = dataclasses.replace(est.phase(c, "target", dp.get_task(c.cell.target_task), c.cell_id),
                                             cells=(c.cell_id,))
    return list(out.values())


class _Estimator:
    """Prices phases, keeping what several cells share: model configs, tokenizers, batched features."""

    def __init__(self, basis: str):
        self.basis = basis
        self.configs: dict[str, tuple[dict, str]] = {}
        self.tokenizers: dict[str, object] = {}
        self.batches: dict[tuple, tuple] = {}

    def phase(self, c: Config, kind: str, task, run: str) -> CostEstimate:
        phase_cfg = getattr(c, kind)
        head, num_labels = steps.head_for(task)          # the model's head is the phase's own task's
        train_task = inputs.train_task_of(task, c)
        plan = make_plan(c, phase_cfg, train_task)
        config, config_note = self.model_config(c)
        base = dict(kind=kind, run=run, model=c.cell.model, task=train_task.name)
        flops_of = lambda length, choices: fl.train_flops(config, length, head, num_labels, choices)  # noqa: E731
        note = ""
        if self.basis == "data" or (self.basis == "auto" and c.data.source != "hub"):
            try:
                return self._from_data(c, phase_cfg, train_task, plan, flops_of, base, config_note)
            except UserError as e:
                if self.basis == "data":
                    raise
                note = f"data not read ({one_line(e)[:160]}); "
        return self._from_sizes(c, phase_cfg, train_task, plan, flops_of, base, note + config_note)

    def model_config(self, c: Config) -> tuple[dict, str]:
        """The model's config.json: the preset's hf_config, a local folder's, the hub's (config.json only),
        else repro.study.known_sizes' copy."""
        name = c.cell.model
        if name not in self.configs:
            m = c.model
            if m.hf_config is not None:
                self.configs[name] = dict(m.hf_config), ""
            else:
                self.configs[name] = _checkpoint_config(name, m.name_or_path)
        return self.configs[name]

    def _from_data(self, c, phase_cfg, task, plan, flops_of, base, note) -> CostEstimate:
        # Everything that picks the phase's examples and batches (a train size is a cap on the examples).
        key = (c.cell.model, base["kind"], task.name, c.cell.seed, plan.batch_size, phase_cfg.train_split,
               phase_cfg.max_train_examples, phase_cfg.dev_from_train)
        if key not in self.batches:
            if c.cell.model not in self.tokenizers:
                self.tokenizers[c.cell.model] = inputs.tokenizer_for(c)
            lang = task.train_language or "en"
            examples = inputs.load_split(c, task, phase_cfg.train_split, lang, phase_cfg.max_train_examples,
                                         holdout=phase_cfg.dev_from_train, part="rest")
            feats = inputs.featurize(c, task, examples, self.tokenizers[c.cell.model])
            batcher = dp.Batcher(feats, plan.batch_size, buckets=inputs.buckets(c, inputs.max_length(c, task)),
                                 shuffle=True, seed=c.cell.seed)   # the run's global batches, in its order
            mask = feats.arrays["attention_mask"]
            self.batches[key] = (len(examples), batcher, mask.reshape(len(mask), -1).sum(1),
                                 np.asarray(batcher.buckets)[batcher.bucket_of], mask.shape[1] if mask.ndim == 3 else 1)
        n_examples, batcher, tokens_of, bucket_of, choices = self.batches[key]
        per_epoch = len(batcher)
        steps = phase_steps(plan.epochs, per_epoch, plan.max_steps)
        full, rest = divmod(steps, per_epoch)
        lengths = Counter({int(k): full * int(v) for k, v in zip(*np.unique(bucket_of, return_counts=True))})
        tokens = full * int(tokens_of.sum())
        for batch, _ in itertools.islice(batcher.iterate(full), rest):   # the last, partial epoch
            rows = batch["feature_index"][batch["feature_index"] >= 0]
            tokens += int(tokens_of[rows].sum())
            lengths[batch["input_ids"].shape[-1]] += len(rows)
        flops = sum(count * flops_of(length, choices) for length, count in lengths.items())
        return CostEstimate(**base, basis="data", examples=n_examples, epochs=round(steps / per_epoch, 4), steps=steps,
                         tokens=tokens, flops=int(flops), note=note.rstrip("; "))

    def _from_sizes(self, c, phase_cfg, task, plan, flops_of, base, note) -> CostEstimate:
        lang = task.train_language or "en"
        size = known_sizes.TRAIN_EXAMPLES.get((task.name, phase_cfg.train_split, lang))
        if size is None:
            return CostEstimate(**base, basis="unknown", note=note + f"no known size of {task.name} "
                             f"{phase_cfg.train_split}/{lang} (`--from data` reads it)")
        n = size.examples - (phase_cfg.dev_from_train or 0)
        if phase_cfg.max_train_examples is not None:
            n = min(n, phase_cfg.max_train_examples)
        per_epoch = math.ceil(n / plan.batch_size)
        steps = phase_steps(plan.epochs, per_epoch, plan.max_steps)
        full, rest = divmod(steps, per_epoch)
        seen = full * n + min(rest * plan.batch_size, n)
        length = inputs.max_length(c, task)
        choices = len(task.labels) if task.kind == "multiple_choice" else 1
        return CostEstimate(**base, basis="sizes", examples=n, epochs=round(steps / per_epoch, 4), steps=steps,
                         flops=int(seen * flops_of(length, choices)),
                         note=note + f"upper bound: all at max_length {length}")


def _checkpoint_config(name: str, name_or_path: str) -> tuple[dict, str]:
    from flax_models.loading import read_config

    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        try:
            return read_config(folder), ""
        except (OSError, ValueError) as e:
            raise ConfigError(f"plan: models.{name}: {' '.join(str(e).split())}") from e
    try:
        from huggingface_hub import hf_hub_download
        return read_config(hf_hub_download(name_or_path, "config.json")), ""   # bounded, errors name the file
    except (OSError, ValueError) as e:   # offline / not cached / unreachable (huggingface_hub's are OSErrors)
        if name_or_path in known_sizes.MODEL_CONFIGS:
            return dict(known_sizes.MODEL_CONFIGS[name_or_path]), "model config from known_sizes; "
        raise ConfigError(f"plan: the size of models.{name} ({name_or_path}) is unknown: its config.json "
                          f"cannot be had ({' '.join(str(e).split())[:160]})") from e


# ---- devices and tables -------------------------------------------------------------------------

def device(name: str, precision: str, mfu: float, peak: float | None = None) -> Device:
    if not 0 < mfu <= 1:
        raise ConfigError(f"plan: --mfu {mfu} must be in (0, 1]")
    from repro.training.precision import PEAK_DTYPE

    dtype = PEAK_DTYPE[precision]
    peak = peak or fl.peak_flops(name, dtype)
    if peak is None:
        known = ", ".join(k for k, p in fl.PEAK_FLOPS if dtype in p)
        raise ConfigError(f"plan: no {dtype} peak known for --device {name!r} (precision={precision}; with "
                          f"{dtype}: {known}); use precision=bf16, another device or --peak-flops")
    return Device(name, peak, mfu)


COLUMNS = ("run", "phase", "task", "basis", "examples", "epochs", "steps", "tokens", "FLOPs", "device-h", "note")


def rows(phases: list[CostEstimate], dev: Device | None) -> list[dict]:
    shared = lambda p: f" ({len(p.cells)} cell{'s' if len(p.cells) != 1 else ''})"  # noqa: E731
    return [{"run": p.run, "phase": p.kind + (shared(p) if p.kind == "intermediate" else ""),
             "task": p.task, "basis": p.basis, "examples": p.examples, "epochs": p.epochs, "steps": p.steps,
             "tokens": p.tokens, "FLOPs": p.flops, "device-h": dev.hours(p.flops) if dev else None,
             "note": p.note} for p in phases]


def total(phases: list[CostEstimate]) -> int:
    return sum(p.flops for p in phases if p.flops is not None)


def summary(phases: list[CostEstimate], dev: Device | None) -> str:
    cells = sum(p.kind == "target" for p in phases)
    runs = sum(p.kind == "intermediate" for p in phases)
    flops = total(phases)
    lines = [f"total: {cells} cells and {runs} intermediate runs (each counted once): {tables.fmt(float(flops))} "
             f"training FLOPs"]
    if dev:
        hours = dev.hours(flops)
        lines[0] += (f"; {tables.fmt(hours)} device-hours ({tables.fmt(hours / 24)} device-days) on {dev.name} at "
                     f"{tables.fmt(dev.peak / 1e12)} TFLOP/s peak x MFU {dev.mfu}")
    bases = Counter(p.basis for p in phases)
    lines.append("basis: " + ", ".join(f"{n} runs from {b}" for b, n in sorted(bases.items())))
    if bases.get("sizes"):
        lines.append("  sizes = repro.study.known_sizes' split sizes with every example at max_length: FLOPs are an "
                     "upper bound, tokens unknown (`--from data` reads the data)")
    if bases.get("unknown"):
        lines.append(f"  {bases['unknown']} runs could not be priced: see their note; the total leaves them out")
    return "\n".join(lines)


def by_model(phases: list[CostEstimate], dev: Device | None) -> tuple[list[str], list[list]]:
    sums: dict[str, Counter] = {}
    for p in phases:
        sums.setdefault(p.model, Counter())[p.kind] += p.flops or 0
    header = ["model", "intermediate FLOPs", "target FLOPs", "total FLOPs"] + (["device-h"] if dev else [])
    body = [[m, float(s["intermediate"]), float(s["target"]), float(s["intermediate"] + s["target"])]
            + ([dev.hours(s["intermediate"] + s["target"])] if dev else []) for m, s in sums.items()]
    return header, body


def render(phases: list[CostEstimate], fmt: str, dev: Device | None) -> str:
    table = rows(phases, dev)
    if fmt == "csv":
        return tables.csv_text(table)
    # FLOPs as 1.234e+20 on screen; exact integers in the CSV.
    body = [[float(r[k]) if k == "FLOPs" and r[k] is not None else r[k] for k in COLUMNS] for r in table]
    header, models = by_model(phases, dev)
    draw = tables.markdown if fmt == "markdown" else tables.text
    return "\n\n".join([draw(COLUMNS, body).rstrip("\n"), draw(header, models).rstrip("\n"), summary(phases, dev)])
