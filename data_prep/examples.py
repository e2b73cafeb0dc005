"""Examples (one per input unit, before tokenization) and `load_examples`, the one entry to the three
sources: the hub (`datasets`), the google-research/xtreme `download/` layout, and the synthetic generator.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .tasks import TaskSpec, get_task

SOURCES = ("synthetic", "hub", "xtreme")


@dataclass(frozen=True)
class Example:
    """One example of any kind; the fields a kind does not use stay empty.

    classification: text, label | pair_classification / regression: text, text_pair, label
    tagging: tokens, tags | qa: question, context, answers ((text, char_start), ...)
    multiple_choice: text (premise + question), choices, label (index as str)
    retrieval: text (the query), candidates (a shared Candidates pool), label (tuple of gold ids)
    """
    id: str
    language: str
    text: str = ""
    text_pair: str | None = None
    label: Any = None
    tokens: tuple = ()
    tags: tuple | None = None
    question: str = ""
    context: str = ""
    answers: tuple = ()
    choices: tuple = ()
    candidates: "Candidates | None" = None
    meta: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Candidates:
    """A retrieval pool shared by all queries of one (task, split, language)."""
    ids: tuple
    texts: tuple

    def __len__(self):
        return len(self.ids)


def load_examples(task, split: str, language: str, source: str = "synthetic", data_dir=None,
                  max_examples: int | None = None, seed: int = 0) -> list[Example]:
    """Examples of one task, split and language, from `source`.

    max_examples keeps a seeded random subset (order preserved), so a run with a budget stays stable.
    """
    task = get_task(task)
    if split not in task.splits:
        raise ValueError(f"task {task.name!r} has no split {split!r} (splits: {', '.join(task.splits)})")
    if language not in task.languages:
        raise ValueError(f"task {task.name!r} has no language {language!r} "
                         f"(languages: {', '.join(task.languages)})")
    if source == "synthetic":
        if not task.synthetic:
            raise ValueError(f"task {task.name!r} is real data; source='synthetic' serves only "
                             "synth_* tasks")
        from . import synthetic
        examples = synthetic.generate(task, split, language, seed=seed)
    elif task.synthetic:
        raise ValueError(f"task {task.name!r} is synthetic; load it with source='synthetic'")
    elif source == "hub":
        from . import hub
        examples = hub.load(task, split, language, data_dir=data_dir)
    elif source == "xtreme":
        if data_dir is None:
            raise ValueError("source='xtreme' needs data_dir (the xtreme download/ folder)")
        from . import xtreme_files
        examples = xtreme_files.load(task, split, language, data_dir)
    else:
        raise ValueError(f"unknown source {source!r} (one of {', '.join(SOURCES)})")
    if not examples:
        raise ValueError(f"empty split: task {task.name!r} split {split!r} language {language!r} "
                         f"from source {source!r}")
    if max_examples is not None and len(examples) > max_examples:
        keep = sorted(random.Random(seed).sample(range(len(examples)), max_examples))
        examples = [examples[i] for i in keep]
    return examples


def check_label(task: TaskSpec, label: str, where: str) -> str:
    if label not in task.labels:
        raise ValueError(f"{where}: unknown label {label!r} for task {task.name!r} "
                         f"(labels: {', '.join(task.labels)})")
    return label
