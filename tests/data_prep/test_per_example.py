"""Per-example rows (`dp.per_example`, `metrics.from_rows`): over all examples they give `evaluate`'s primary
metric, and over any sample of them the metric of that sample. That is what makes a paired bootstrap over
examples valid (repro.report.stats resamples these rows)."""
import random

import numpy as np
import pytest

import data_prep as dp
from data_prep import metrics

from tests.support.paths import SHARED_XTREME

SYNTH = ["synth_sentiment", "synth_nli", "synth_sts", "synth_tagging", "synth_qa", "synth_choice", "synth_retrieval"]


def _noisy(task, examples, rng):
    """Predictions that are right for some examples and wrong for others, of the kind postprocess returns."""
    gold = dp.references(task, examples)
    out = []
    for ex, g in zip(examples, gold):
        right = rng.random() < 0.6
        if task.kind in ("classification", "pair_classification"):
            out.append(g if right else next(l for l in task.labels if l != g))
        elif task.kind == "multiple_choice":
            out.append(g if right else str((int(g) + 1) % len(ex.choices)))
        elif task.kind == "regression":
            out.append(float(g) + rng.gauss(0, 1))
        elif task.kind == "tagging":
            out.append([t if rng.random() < 0.8 else rng.choice(task.labels) for t in g])
        elif task.kind == "qa":
            text = g[0]
            out.append(text if right else (" ".join(text.split()[:1]) + " extra" if rng.random() < 0.5 else None))
        else:   # retrieval: a ranking of candidate ids
            ids = list(ex.candidates.ids)
            rng.shuffle(ids)
            if right:
                ids.remove(g[0])
                ids.insert(0, g[0])
            out.append(ids)
    return out


def _check(task, examples, language, seed=0):
    task = dp.get_task(task)
    rng = random.Random(seed)
    preds = _noisy(task, examples, rng)
    kind, rows = dp.per_example(task, preds, examples, language)
    assert kind in metrics.ROW_KINDS and len(rows) == len(examples)
    full = dp.evaluate(task, preds, examples, language=language)[task.metric]
    assert metrics.from_rows(kind, rows) == pytest.approx(full, abs=1e-9)
    for _ in range(5):   # any sample of examples (with repeats, as a bootstrap draws them)
        idx = [rng.randrange(len(examples)) for _ in range(len(examples))]
        if task.kind == "regression" and len(set(idx)) < 3:
            continue
        sample = [examples[i] for i in idx]
        expect = dp.evaluate(task, [preds[i] for i in idx], sample, language=language)[task.metric]
        assert metrics.from_rows(kind, np.asarray(rows)[idx]) == pytest.approx(expect, abs=1e-9)
    return full


@pytest.mark.parametrize("name", SYNTH)
def test_rows_give_the_metric_on_synthetic_tasks(name):
    task = dp.get_task(name)
    lang = task.languages[-1]
    examples = dp.load_examples(task, task.splits[-1], lang)
    _check(task, examples, lang)


@pytest.mark.parametrize("name,split,lang", [("udpos", "dev", "zh"), ("panx", "dev", "ar"), ("mlqa", "dev", "zh"),
                                             ("xcopa", "dev", "et"), ("tatoeba", "test", "de"),
                                             ("lareqa", "test", "de"), ("xnli", "dev", "de"), ("pawsx", "dev", "de")])
def test_rows_give_the_metric_on_real_files(name, split, lang):
    if not SHARED_XTREME.is_dir():
        pytest.skip(f"the real XTREME-R files are not at {SHARED_XTREME} (CI and the project's machines have them)")
    try:
        examples = dp.load_examples(name, split, lang, source="xtreme", data_dir=str(SHARED_XTREME),
                                    require_gold=True, max_examples=300)
    except (dp.MissingDataError, dp.NoGoldError) as e:
        pytest.skip(f"{name} {split}/{lang} is not scorable in the shared files: {e}")
    _check(name, examples, lang)


def test_span_f1_rows_are_per_sentence_counts():
    kind, rows = dp.per_example("panx", [["B-PER", "I-PER", "O"], ["O", "B-LOC"]],
                                [("B-PER", "I-PER", "O"), ("B-LOC", "O")], "de")
    assert kind == "span_f1" and rows == [[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]
    assert metrics.from_rows(kind, rows) == pytest.approx(100 * 2 * 1 / (2 + 2))


def test_unknown_kind_and_empty_rows_are_refused():
    with pytest.raises(ValueError, match="unknown kind 'median'"):
        metrics.from_rows("median", [[1.0]])
    with pytest.raises(ValueError, match="non-empty"):
        metrics.from_rows("accuracy", [])


def test_rows_refuse_what_evaluate_refuses():
    with pytest.raises(dp.NoGoldError):
        dp.per_example("panx", [["O"]], [None], "de")
