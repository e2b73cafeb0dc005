"""The compute-matched control arm: an intermediate phase that costs what the real one costs and teaches no task.

    grid.intermediate_tasks: [none, mnli, control]        cell ids ...__int-control__...

The control arm repeats the intermediate phase of the task it mirrors (`grid.control_for`, or the target's
`grid.pairings` entry): the same examples, batches, steps, learning-rate schedule, head and dev evaluations,
with the supervision permuted across examples, so nothing of the task can be learned. Its input tokens are the
real phase's token for token, so its steps, tokens and FLOPs are the real phase's exactly. It then hands its
encoder to the target phase as any intermediate model does. The two contrasts it buys:

    intermediate task - control   what the intermediate task teaches (same compute, same English text)
    control - none                what the extra English updates do by themselves

Why permuted labels rather than the target's own English data (the other common control): a run on the
target's data would be one per target and train size (the grid's low-resource cells would see 10x their
160 examples, or more target data than their cap allows), and the retrieval targets have no training data;
the permuted run is shared by every target, like the real intermediate model (repro.study.cell).

How each kind is permuted (the inputs are never changed, only what the loss is computed against):
- classification, pair classification, regression, multiple choice: the labels, shuffled across examples
  (the label distribution is kept exactly);
- tagging: all tags of the split, shuffled across every token of every sentence;
- qa: each answer moved to a random word span of its own context with the answer's word count.
"""
from __future__ import annotations

import dataclasses
import random

import data_prep as dp

# The permutation is seeded by the cell's seed (so seeds differ as the real arm's do) and by this salt.
PERMUTATION_SALT = "control"


def permuted(task, examples: list, seed: int) -> dp.Split:
    """The examples with their supervision permuted (see the module docstring); inputs unchanged."""
    rng = random.Random(f"{PERMUTATION_SALT}:{seed}")
    kind = task.kind
    dropped = getattr(examples, "dropped", {})
    examples = list(examples)
    if kind in ("classification", "pair_classification", "regression", "multiple_choice"):
        labels = [e.label for e in examples]
        rng.shuffle(labels)
        out = [dataclasses.replace(e, label=label) for e, label in zip(examples, labels)]
    elif kind == "tagging":
        tags = [t for e in examples for t in e.tags]
        rng.shuffle(tags)
        out, i = [], 0
        for e in examples:
            out.append(dataclasses.replace(e, tags=tuple(tags[i:i + len(e.tags)])))
            i += len(e.tags)
    elif kind == "qa":
        out = [dataclasses.replace(e, answers=_random_spans(e, rng)) for e in examples]
    else:
        raise ValueError(f"task {task.name!r} of kind {kind!r} has no training labels to permute")
    return dp.Split(out, dropped)


def _random_spans(example, rng: random.Random) -> tuple:
    """Each answer replaced by a random span of the context with as many words (text, char start)."""
    words, pos = [], 0
    for w in example.context.split():
        start = example.context.index(w, pos)
        words.append((start, start + len(w)))
        pos = start + len(w)
    if not words:
        return example.answers
    out = []
    for text, _ in example.answers:
        n = max(1, min(len(text.split()), len(words)))
        first = rng.randrange(len(words) - n + 1)
        s, e = words[first][0], words[first + n - 1][1]
        out.append((example.context[s:e], s))
    return tuple(out)
