"""Where examples come from: the source dispatch (synthetic generator, HF hub, xtreme download/ folder).

The readers import the example types (data_prep.examples); this module imports the readers, so the types
and the dispatch live apart and no import runs in a circle.
"""
from __future__ import annotations

import random
from collections import Counter

from .errors import NoGoldError
from .examples import Split
from .gold import drop_unlabelled, gold_problem
from .tasks import get_task

SOURCES = ("synthetic", "hub", "xtreme")


def source_languages(task, source: str) -> tuple:
    """The task's languages `source` can serve, as far as is known without reading or downloading
    anything (a language listed here may still lack a file or a split)."""
    task = get_task(task)
    if source == "hub":
        from . import hub   # the readers are imported when used: `datasets` is heavy
        return hub.languages(task)
    if source == "xtreme":
        from . import xtreme_files
        return xtreme_files.languages(task)
    return tuple(task.languages)


def load_examples(task, split: str, language: str, source: str = "synthetic", data_dir=None,
                  max_examples: int | None = None, seed: int = 0, require_gold: bool = False) -> Split:
    """Examples of one task, split and language, from `source`.

    max_examples keeps a seeded random subset (order preserved), so a run with a budget stays stable.
    Raises MissingDataError when the source lacks the task, split or language (before any download where
    that is known statically), SourceUnavailableError when the hub cannot be reached, and, with require_gold,
    NoGoldError when the split carries no usable gold (`gold_problem`).
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"task {task.name!r} has no split {split!r} (splits: {', '.join(task.splits)})")
    if language not in task.languages:
        raise ValueError(f"task {task.name!r} has no language {language!r} "
                         f"(languages: {', '.join(task.languages)})")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    if (source == "synthetic") != task.synthetic:
        raise ValueError(f"task {task.name!r} is synthetic; load it with source='synthetic'" if task.synthetic
                         else f"task {task.name!r} is real data; source='synthetic' serves only synth_* tasks")
    dropped = Counter()
    if source == "synthetic":
        from . import synthetic
        examples = synthetic.generate(task, split, language, seed=seed)
    elif source == "hub":
        from . import hub
        examples = hub.load(task, split, language, data_dir=data_dir, dropped=dropped)
    else:
        if data_dir is None:
            raise ValueError("source='xtreme' needs data_dir (the xtreme download/ folder)")
        from . import xtreme_files
        examples = xtreme_files.load(task, split, language, data_dir, dropped=dropped)
    examples = drop_unlabelled(task, examples, dropped)
    if not examples:
        raise ValueError(f"empty split: task {task.name!r} split {split!r} language {language!r} "
                         f"from source {source!r}")
    if require_gold:
        problem = gold_problem(task, examples)
        if problem:
            raise NoGoldError(task, split, language, source, problem)
    if max_examples is not None and len(examples) > max_examples:
        keep = sorted(random.Random(seed).sample(range(len(examples)), max_examples))
        examples = [examples[i] for i in keep]
    return Split(examples, dropped)
