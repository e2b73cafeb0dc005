"""The example types (one per input unit, before tokenization), shared by the three readers (hub,
xtreme_files, synthetic); `data_prep.sources.load_examples` is the one entry to them.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from .tasks import TaskSpec


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


class Split(list):
    """The Examples of one (task, split, language), with `dropped`: reason -> rows dropped while loading
    (rows without gold in a labelled split, answers whose text is not in their context, ...)."""

    def __init__(self, examples=(), dropped=None):
        super().__init__(examples)
        self.dropped = dict(dropped or {})


# amazon_polarity has no dev split: a fixed holdout of its train split (same for every cell and seed)
# picks checkpoints, so that the test split, which is reported, never does.
DEV_HOLDOUT_SEED = 0


def dev_holdout(n: int, size: int) -> set:
    """Row indices of train that form the dev split (`task.dev_holdout` rows, DEV_HOLDOUT_SEED)."""
    return set(random.Random(DEV_HOLDOUT_SEED).sample(range(n), min(size, n // 2)))


def check_label(task: TaskSpec, label: str, where: str) -> str:
    if label not in task.labels:
        raise ValueError(f"{where}: unknown label {label!r} for task {task.name!r} "
                         f"(labels: {', '.join(task.labels)})")
    return label
