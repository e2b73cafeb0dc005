"""The gold an example carries: whether a split can be scored, and where a QA answer really is.

"No silent numbers": a split whose gold was removed (xtreme blanks test answers and tags, writes
placeholder labels) must be refused, not scored as 0 or as chance. Loaders mark such gold as absent
(label None, tags None, no answers); `gold_problem` says why a list of examples cannot be scored.
"""
from __future__ import annotations

import math
from collections import Counter

from .tasks import get_task


NO_GOLD = "no_gold"   # Example.meta key: why a loader marked the example's gold absent (said by gold_problem)


def gold_problem(task, examples) -> str | None:
    """Why `examples` cannot be scored (one line), or None when every example carries gold."""
    why = _gold_problem(task, examples)
    note = next((e.meta[NO_GOLD] for e in examples if e.meta.get(NO_GOLD)), None) if why else None
    return f"{why} ({note})" if note else why


def _gold_problem(task, examples) -> str | None:
    task = get_task(task)
    n = len(examples)
    if not n:
        return "no examples"
    kind = task.kind
    if kind == "tagging":
        missing = sum(e.tags is None for e in examples)
        if missing:
            return f"{missing} of {n} sentences hold words only (no tags)"
        if not any(len(e.tokens) for e in examples):
            return f"all {n} sentences are empty (no tokens to score)"
        return None
    if kind == "qa":
        missing = sum(not e.answers for e in examples)
        return f"{missing} of {n} questions have no gold answer" if missing else None
    if kind == "regression":
        missing = sum(e.label is None or math.isnan(float(e.label)) for e in examples)
    elif kind == "retrieval":
        missing = sum(not e.label for e in examples)
    else:
        missing = sum(e.label is None for e in examples)
    return f"{missing} of {n} examples have no gold label" if missing else None


def drop_unlabelled(task, examples: list, dropped: Counter) -> list:
    """A labelled split keeps only rows with a label (SNLI marks pairs without annotator consensus -1);
    a split where no row has one (GLUE/SNLI test, xtreme's label-less test files) is kept whole, so that
    `gold_problem` refuses it instead of it silently becoming empty."""
    if get_task(task).kind not in ("classification", "pair_classification", "regression", "multiple_choice"):
        return examples
    kept = [e for e in examples if e.label is not None]
    if not kept or len(kept) == len(examples):
        return examples
    dropped["no gold label (-1)"] += len(examples) - len(kept)
    return kept


def anchor_answer(context: str, text: str, start: int) -> int | None:
    """Where answer `text` starts in `context`: at `start` if it is there, else the occurrence nearest to
    `start`, else None. The hub's SQuAD-style conversions strip contexts and answer texts but keep
    answer_start, so starts drift by the stripped whitespace (google/xquad: 100 of zh's answers)."""
    if context[start:start + len(text)] == text:
        return start
    # The nearest occurrence is the last one starting before `start` or the first from it (the earlier on a
    # tie): two searches, not a walk over every occurrence (a one-letter answer in a long context).
    at = max(start, 0)
    before = context.rfind(text, 0, at + len(text) - 1) if at > 0 else -1
    after = context.find(text, at)
    if before < 0 or (after >= 0 and after - at < at - before):
        return after if after >= 0 else None
    return before


def anchor_answers(context: str, answers, dropped: Counter) -> tuple | None:
    """(text, start) pairs re-anchored; blank answers (xtreme's stripped test annotations) are no gold.
    Returns None when the question had answers but none of their texts is in the context (the question
    is then dropped and counted), else the anchored answers (empty: no gold)."""
    out, given = [], 0
    for text, start in answers:
        if not text or not text.strip():
            continue
        given += 1
        at = anchor_answer(context, text, int(start))
        if at is None:
            dropped["answer text not in context"] += 1
            continue
        out.append((text, at))
    if given and not out:
        dropped["question without a locatable answer"] += 1
        return None
    return tuple(out)
