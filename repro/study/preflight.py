"""Preflight: every problem a grid will meet, found before its first training step, reported all at once.

    python -m repro preflight CONFIG [a.b=value ...]       (grid and run call it first; --no-preflight skips)

For every cell it lists what the cell reads — each model (config, tokenizer, a weight file the run can
load) and each (task, split, language) of data: the training task's train and dev splits of every phase,
and the target's evaluation split in every evaluated language — and checks each item once, however many
cells share it: the data loads, evaluation and dev splits carry gold labels, labels are in the label set.
Nothing is featurized and no weights are read beyond their presence.

Findings have a status: `problem` (the grid would fail or score without gold: exit 2), `skipped` (a language
the source lacks, left out and recorded because `eval.missing_languages: skip`) and `unchecked` (the source
could not be asked: hub unreachable or offline and not cached; also exit 2, the grid could not run) and `note`
(the grid runs, but a reader must know: an intermediate task whose data is the target's own). The
table groups the languages of one task and split that fail for the same reason; `preflight.json` in the
output folder has every (cell, item) row.
"""
from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from pathlib import Path

import data_prep as dp
from repro.study import feature_cache, inputs
from repro import progress, rundir, tables
from repro.study.cell import cell_config, eval_languages, eval_split
from repro.config import Config, trains_target
from repro.errors import ConfigError, DataError, ModelError, UserError

PROBLEM, SKIPPED, UNCHECKED, NOTE = "problem", "skipped", "unchecked", "note"


@dataclasses.dataclass(frozen=True)
class Item:
    """One thing a cell reads; `role` says what for (it decides how a failure counts)."""

    kind: str                   # "data" | "model"
    name: str                   # task or model name
    split: str = ""
    language: str = ""
    role: str = ""              # "train", "dev", "eval" (data); "model"

    @property
    def label(self) -> str:
        if self.kind == "model":
            return f"model {self.name}"
        return f"{self.name} {self.split}/{self.language}"


@dataclasses.dataclass
class Finding:
    item: Item
    status: str
    why: str
    fix: str
    error: str = ""             # the error class, for grouping
    cells: list[str] = dataclasses.field(default_factory=list)


class PreflightError(UserError):
    """Preflight found problems; the message is the summary line, the table was printed before it."""


# ---- what each cell reads -------------------------------------------------------------------------------

def _phase_items(cfg: Config, task, phase) -> list[Item]:
    task = inputs.train_task_of(task, cfg)
    lang = task.train_language or "en"
    items = [Item("data", task.name, phase.train_split, lang, "train")]
    if not phase.dev_from_train:
        dev = cfg.eval.dev_split if cfg.eval.dev_split in task.splits else "test"
        items.append(Item("data", task.name, dev, lang, "dev"))
    return items


def cell_items(cfg: Config) -> list[Item]:
    """Everything one (resolved) cell reads before and while it trains."""
    target = dp.get_task(cfg.cell.target_task)
    items = [Item("model", cfg.cell.model, role="model")]
    if cfg.intermediate_task is not None:
        items += _phase_items(cfg, dp.get_task(cfg.intermediate_data_task), cfg.intermediate)
    if trains_target(target.name):   # retrieval targets have no target phase
        items += _phase_items(cfg, target, cfg.target)
    split = eval_split(cfg, target)
    items += [Item("data", target.name, split, lang, "eval") for lang in eval_languages(cfg, target)]
    return items


# ---- checking one item ------------------------------------------------------------------------------------

def _fix_for(cfg: Config, item: Item, cause: BaseException) -> str:
    task = dp.TASKS.get(item.name)
    if isinstance(cause, dp.SourceUnavailableError):
        return "run once with network access to fill the cache (HF_HOME), or use data.source=xtreme"
    if isinstance(cause, dp.NoGoldError):
        if item.role == "eval":
            others = [s for s in task.splits if s not in (item.split, "train")]
            return (f"eval.split={others[0]} (a split with gold)" if others
                    else f"leave {item.name} out of grid.target_tasks for this source")
        phase = "target" if item.name in {inputs.train_task_of(dp.get_task(t), cfg).name
                                           for t in cfg.grid.target_tasks} else "intermediate"
        return f"{phase}.dev_from_train=N (pick checkpoints on N held-out training examples)"
    if isinstance(cause, dp.MissingDataError):
        if item.role == "eval" and cause.what in ("language", "split"):
            return "eval.missing_languages=skip (recorded in results.json), or eval.languages=[...]"
        if cfg.data.source == "xtreme":
            if cfg.data.data_dir is None or not Path(cfg.data.data_dir).is_dir():
                return (f"data.data_dir={cfg.data.data_dir} does not exist: point it at an xtreme download/ "
                        "folder, or use data.source=hub")
            return f"add the files under {cfg.data.data_dir}, or use data.source=hub"
        return "use data.source=xtreme with a download/ folder that has it"
    if isinstance(cause, dp.FileFormatError):   # a malformed data file: name it (and its line) in the fix too
        return f"fix {cause.path}{f' line {cause.line}' if cause.line else ''} (or leave it out of the grid)"
    return "fix the file named, or the config value"


def check_data(cfg: Config, item: Item, loaded: dict) -> Finding | None:
    """The data item loads with gold; `loaded` remembers each (task, split, language) outcome across roles."""
    task = dp.get_task(item.name)
    key = (item.name, item.split, item.language)
    try:
        if key not in loaded:
            try:
                inputs.load_split(cfg, task, item.split, item.language, None)
                loaded[key] = None
            except DataError as e:
                loaded[key] = e
        if loaded[key] is not None:
            raise loaded[key]
    except DataError as e:
        cause = e.__cause__ if e.__cause__ is not None else e
        status = PROBLEM
        if isinstance(cause, dp.SourceUnavailableError):
            status = UNCHECKED
        elif (item.role == "eval" and isinstance(cause, dp.MissingDataError) and cause.what in ("language", "split")
              and cfg.eval.missing_languages == "skip"):
            status = SKIPPED
        why = getattr(cause, "why", None) or str(e).removeprefix("data: ")
        kind = getattr(cause, "kind", "") or "cannot load"
        return Finding(item, status, f"{kind}: {why}", _fix_for(cfg, item, cause), type(cause).__name__)
    return None


def check_model(cfg: Config, item: Item, models: dict) -> Finding | None:
    """The model of the cell; `models` keeps the abstract model for the per-cell length checks."""
    try:
        models[item.name] = inputs.check_model(cfg)
    except (ModelError, ConfigError) as e:
        return Finding(item, PROBLEM, str(e), f"check models.{item.name} (name_or_path, tokenizer, family)",
                       type(e).__name__)
    except inputs.ModelUnreachable as e:
        return Finding(item, UNCHECKED, str(e), "run once with network access to fill the cache (HF_HOME)",
                       type(e).__name__)
    return None


def check_lengths(cell: Config, model) -> Finding | None:
    """The cell's sequence lengths fit its model's positions."""
    target = dp.get_task(cell.cell.target_task)
    tasks = [inputs.train_task_of(target, cell), target] if trains_target(target.name) else [target]
    if cell.intermediate_task is not None:
        tasks.append(inputs.train_task_of(dp.get_task(cell.intermediate_data_task), cell))
    try:
        inputs.check_max_length(cell, model, *tasks)
    except ConfigError as e:
        return Finding(Item("model", cell.cell.model, role="model"), PROBLEM, str(e),
                       "set data.max_length (or use a model with more positions)", "ConfigError", [cell.cell_id])
    return None


# ---- the whole grid -----------------------------------------------------------------------------------

def run(cells: list[Config]) -> list[Finding]:
    """Every finding of the cells (resolved configs: `cfg.cells()`, or `[cfg.resolved_cell()]`)."""
    by_item: dict[Item, list[str]] = defaultdict(list)
    cell_cfg: dict[Item, Config] = {}
    for cell in cells:
        c = cell_config(cell)
        for item in cell_items(c):
            by_item[item].append(c.cell_id)
            cell_cfg.setdefault(item, c)
    findings, models, loaded = [], {}, {}
    ticker = progress.Ticker("preflight", total=len(by_item), unit="item")
    for item, cell_ids in by_item.items():
        if item.kind == "model":
            finding = check_model(cell_cfg[item], item, models)
        else:
            finding = check_data(cell_cfg[item], item, loaded)
        if finding is not None:
            finding.cells = cell_ids
            findings.append(finding)
        ticker.update(1)
    ticker.close()
    same: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for cell in cells:
        c = cell_config(cell)
        why = inputs.repeats_target_data(cell)
        if why:
            same[(cell.intermediate_task, cell.cell.target_task, why)].append(c.cell_id)
        if c.cell.model in models:
            finding = check_lengths(c, models[c.cell.model])
            if finding is not None:
                findings.append(finding)
    for (inter, target, why), cell_ids in same.items():
        findings.append(Finding(Item("pairing", f"{inter}->{target}", role="intermediate"), NOTE,
                                f"{why}: the same data trained twice, not intermediate-task transfer (the report marks it)",
                                f"leave {inter} out of grid.intermediate_tasks for {target}, or keep it as a control",
                                "SameData", cell_ids))
    return findings


def grouped(findings: list[Finding]) -> list[dict]:
    """Table rows: the languages of one (status, task, split, role, error) together."""
    groups: dict[tuple, list[Finding]] = defaultdict(list)
    for f in findings:
        key = (f.status, f.item.kind, f.item.name, f.item.split, f.item.role, f.error)
        groups[key].append(f)
    rows = []
    order = {PROBLEM: 0, UNCHECKED: 1, SKIPPED: 2, NOTE: 3}
    for (status, kind, name, split, role, _), fs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1:])):
        langs = [f.item.language for f in fs if f.item.language]
        cells = sorted({c for f in fs for c in f.cells})
        what = (f"model {name}" if kind == "model" else f"pairing {name}" if kind == "pairing"
                else f"{name} {split} ({role})")
        rows.append({"status": status, "what": what, "languages": ", ".join(langs), "why": fs[0].why,
                     "fix": fs[0].fix, "cells": len(cells), "first_cell": cells[0]})
    return rows


def causes(findings: list[Finding]) -> list[dict]:
    """One entry per cause: the findings with the same status, error and fix (a missing data folder is one
    cause however many splits and languages it takes away), with their count, an example of the why, the
    task splits they hit and the cells."""
    groups: dict[tuple, list[Finding]] = defaultdict(list)
    for f in findings:
        groups[(f.status, f.error, f.fix)].append(f)
    order = {PROBLEM: 0, UNCHECKED: 1, SKIPPED: 2, NOTE: 3}
    out = []
    for (status, _, fix), fs in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], -len(kv[1]), kv[0][1:])):
        where: dict[str, int] = {}
        for f in fs:
            label = (f"model {f.item.name}" if f.item.kind == "model" else f"pairing {f.item.name}"
                     if f.item.kind == "pairing" else f"{f.item.name} {f.item.split} ({f.item.role})")
            where[label] = where.get(label, 0) + 1
        out.append({"status": status, "count": len(fs), "why": fs[0].why, "fix": fix, "where": where,
                    "cells": len({c for f in fs for c in f.cells})})
    return out


def report(findings: list[Finding], width: int | None = None, shown: int = 4) -> str:
    """The causes, one wrapped line each: status and count, the why (the first one, "and N alike" for the
    rest), where (up to `shown` task splits, "×k" languages each), the cells, and the fix. Every (cell, item)
    row is in preflight.json."""
    import shutil
    import textwrap

    found = causes(findings)
    if not found:
        return "preflight: no problem found"
    width = width or max(60, shutil.get_terminal_size((100, 24)).columns)
    lines = [f"preflight: {len(findings)} findings, {len(found)} cause{'s' if len(found) != 1 else ''} "
             "(every item: preflight.json):"]
    for c in found:
        places = [f"{w} ×{n}" if n > 1 else w for w, n in c["where"].items()]
        where = ", ".join(places[:shown]) + (f", and {len(places) - shown} more" if len(places) > shown else "")
        alike = f" (and {c['count'] - 1} alike)" if c["count"] > 1 else ""
        cells = f"{c['cells']} cell{'s' if c['cells'] != 1 else ''}"
        head = f"{c['status']} ×{c['count']}: "
        text = f"{head}{c['why']}{alike}; in {where}; {cells}. Fix: {c['fix']}"
        lines += textwrap.wrap(text, width=width, subsequent_indent=" " * len(head), break_on_hyphens=False,
                               break_long_words=False)
    return "\n".join(lines)


def summary(findings: list[Finding]) -> str:
    count = defaultdict(int)
    for f in findings:
        count[f.status] += 1
    cells = {c for f in findings if f.status not in (SKIPPED, NOTE) for c in f.cells}
    parts = [f"{count[s]} {s}" for s in (PROBLEM, UNCHECKED, SKIPPED, NOTE) if count[s]]
    return f"preflight: {', '.join(parts) or 'nothing to report'}; {len(cells)} cells affected"


def write_json(findings: list[Finding], path: Path) -> None:
    rows = [{"cell": c, "status": f.status, "what": f.item.label, "role": f.item.role, "why": f.why,
             "fix": f.fix, "error": f.error} for f in findings for c in f.cells]
    rundir.atomic_write(path, json.dumps(rows, indent=1) + "\n")


def blocking(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.status in (PROBLEM, UNCHECKED)]


# ---- what a grid will featurize: `repro preflight` -------------------------------------------------------

def feature_sets(cfg: Config) -> list[tuple[object, dict, int]]:
    """(task, selection, max_length) of every feature set the cell `cfg` builds or reads: the training and
    dev data of its phases and each evaluated language (as repro.study.cell loads them)."""
    cfg = cell_config(cfg)
    target = dp.get_task(cfg.cell.target_task)
    out = []

    def phase(task, phase_cfg):
        task = inputs.train_task_of(task, cfg)
        lang, holdout = task.train_language or "en", phase_cfg.dev_from_train
        out.append((task, inputs.selection(cfg, task, phase_cfg.train_split, lang, phase_cfg.max_train_examples,
                                           holdout=holdout, part="rest"), inputs.max_length(cfg, task)))
        if holdout:
            dev = inputs.selection(cfg, task, phase_cfg.train_split, lang, phase_cfg.max_dev_examples,
                                   holdout=holdout, part="held")
        else:
            split = cfg.eval.dev_split if cfg.eval.dev_split in task.splits else "test"
            dev = inputs.selection(cfg, task, split, lang, phase_cfg.max_dev_examples, for_eval=True)
        out.append((task, dev, inputs.max_length(cfg, task)))

    if target.kind != "retrieval":
        phase(target, cfg.target)
        inter = cfg.cell.intermediate_task
        if inter not in (None, "none") and inter in dp.TASKS:
            phase(dp.get_task(inter), cfg.intermediate)
        split = eval_split(cfg, target)
        for lang in eval_languages(cfg, target):
            out.append((target, inputs.selection(cfg, target, split, lang, cfg.eval.max_examples, for_eval=True),
                        inputs.max_length(cfg, target)))
    return out


def feature_summary(cells: list[Config]) -> str:
    """Which feature sets of the cells are in the feature cache and which will be built (the latter one line
    each, at most 20)."""
    status: dict[str, tuple[str, str]] = {}
    tokenizers: dict[str, object] = {}
    root = None
    for cfg in cells:
        root = feature_cache.cache_root(cfg)
        cache = feature_cache.FeatureCache(root)
        model = cfg.resolved_cell().cell.model
        if model not in tokenizers:
            tokenizers[model] = inputs.tokenizer_for(cfg.resolved_cell())
        tok = tokenizers[model]
        for task, sel, length in feature_sets(cfg):
            key = feature_cache.selection_key(sel, tok, length)
            if key not in status:
                seed = "" if sel["seed"] is None else f", seed {sel['seed']}"
                size = "" if sel["max_examples"] is None else f", {sel['max_examples']} examples"
                part = "" if sel["part"] == "all" else f", {sel['part']} of {sel['holdout']} held out"
                status[key] = (cache.status(sel, tok, length),
                               f"{model} {task.name} {sel['split']}/{sel['language']}{size}{part}{seed}")
    cached = sum(1 for s, _ in status.values() if s == "cached")
    lines = [f"features ({root}): {cached} of {len(status)} feature sets cached, {len(status) - cached} to build"]
    todo = [what for s, what in status.values() if s != "cached"]
    lines += [f"  to build: {what}" for what in todo[:20]]
    if len(todo) > 20:
        lines.append(f"  ... and {len(todo) - 20} more")
    return "\n".join(lines)
