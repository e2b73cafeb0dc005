"""Model outputs -> predictions (`postprocess`) -> official-scorer metrics (`evaluate`)."""
from __future__ import annotations

import numpy as np

from . import metrics
from .errors import NoGoldError
from .examples import Example
from .features import Features
from .gold import gold_problem
from .tasks import get_task

TOP_K = 20        # retrieval: candidates returned per query (Mewsli-X / LAReQA score the top 20)
N_BEST = 20       # qa: start/end candidates considered per window (run_squad.py n_best_size)


def postprocess(task, feats: Features, raw_outputs: dict):
    """raw_outputs: arrays with one row per feature (see `collect_outputs`):
    logits (classification, regression, multiple choice, tagging), start_logits + end_logits (qa),
    query_embeddings + candidate_embeddings (retrieval). Returns one prediction per example."""
    task = get_task(task)
    kind = task.kind
    if kind in ("classification", "pair_classification"):
        return [task.labels[i] for i in np.asarray(raw_outputs["logits"]).argmax(-1)]
    if kind == "regression":
        return [float(v) for v in np.asarray(raw_outputs["logits"]).reshape(len(feats))]
    if kind == "multiple_choice":
        return [str(i) for i in np.asarray(raw_outputs["logits"]).argmax(-1)]
    if kind == "tagging":
        return _tags(task, feats, np.asarray(raw_outputs["logits"]))
    if kind == "qa":
        return _spans(task, feats, np.asarray(raw_outputs["start_logits"]),
                      np.asarray(raw_outputs["end_logits"]))
    return _rank(feats, np.asarray(raw_outputs["query_embeddings"]),
                 np.asarray(raw_outputs["candidate_embeddings"]), ties_to_higher=task.name == "lareqa")


def _tags(task, feats, logits):
    """The tag of each word is the prediction at its first sub-word; a word no window reached gets
    the first label ("O" for NER)."""
    preds = [[task.labels[0]] * len(ex.tokens) for ex in feats.examples]
    best = logits.argmax(-1)
    for f in range(len(feats)):
        ex = feats.example_index[f]
        for t in np.nonzero(feats.word_index[f] >= 0)[0]:
            preds[ex][feats.word_index[f, t]] = task.labels[best[f, t]]
    return preds


def _spans(task, feats, start_logits, end_logits):
    max_answer = task.hparams.max_answer_length
    best = [(-np.inf, "") for _ in feats.examples]
    for f in range(len(feats)):
        ex = feats.example_index[f]
        offs = feats.offsets[f]
        valid = offs[:, 0] >= 0
        s_log, e_log = np.where(valid, start_logits[f], -np.inf), np.where(valid, end_logits[f], -np.inf)
        for s in np.argsort(s_log)[::-1][:N_BEST]:
            if not valid[s]:
                break
            for e in np.argsort(e_log)[::-1][:N_BEST]:
                if not valid[e]:
                    break
                if e < s or e - s + 1 > max_answer:
                    continue
                score = s_log[s] + e_log[e]
                if score > best[ex][0]:
                    best[ex] = (score, feats.examples[ex].context[offs[s, 0]:offs[e, 1]])
    return [text for _, text in best]


def _rank(feats, queries, candidates, ties_to_higher=False):
    """Top-k candidate ids by cosine similarity. Equal scores: the lower index first, except for LAReQA,
    whose official ranking (utils_lareqa.mean_avg_prec_at_k: `scores.argsort()[::-1]`) reverses an
    ascending sort and so puts the higher index first; a stable sort makes both independent of numpy's
    sort algorithm."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=-1, keepdims=True), 1e-12)
    c = candidates / np.maximum(np.linalg.norm(candidates, axis=-1, keepdims=True), 1e-12)
    ids = feats.candidates.extra["ids"]
    scores = q @ c.T
    if ties_to_higher:
        order = np.argsort(scores, axis=-1, kind="stable")[:, ::-1][:, :TOP_K]
    else:
        order = np.argsort(-scores, axis=-1, kind="stable")[:, :TOP_K]
    return [[ids[j] for j in row] for row in order]


def references(task, examples: list[Example]) -> list:
    """The gold value of each example in the form `evaluate` compares predictions with."""
    task = get_task(task)
    if task.kind == "tagging":
        return [list(e.tags) for e in examples]
    if task.kind == "qa":
        return [[t for t, _ in e.answers] for e in examples]
    return [e.label for e in examples]


def _raw_gold_problem(task, refs) -> str | None:
    """gold_problem for plain gold values (as `references` returns them)."""
    if not refs:
        return "no references"
    missing = sum(r is None or (task.kind in ("qa", "retrieval") and not r) for r in refs)
    if missing:
        return f"{missing} of {len(refs)} references have no gold"
    if task.kind == "tagging" and not any(len(r) for r in refs):
        return f"all {len(refs)} sentences are empty (no tokens to score)"
    return None


def evaluate(task, predictions, references_, language: str | None = None) -> dict:
    """Scores on the official scorer's 0-100 scale. references_: the Examples (or their gold values
    as `references` returns them). QA predictions may be a dict id -> text (needs Examples).
    References without usable gold raise NoGoldError: no score exists without gold."""
    task = get_task(task)
    refs = list(references_)
    if refs and isinstance(refs[0], Example):
        if isinstance(predictions, dict):
            predictions = [predictions.get(e.id) for e in refs]
        language = language or refs[0].language
        problem = gold_problem(task, refs)
        refs = references(task, refs) if problem is None else refs
    else:
        problem = _raw_gold_problem(task, refs)
    if problem:
        raise NoGoldError(task, None, language, None, f"cannot score: {problem}")
    predictions = list(predictions)
    if len(predictions) != len(refs):
        raise ValueError(f"evaluate {task.name!r}: {len(predictions)} predictions for {len(refs)} references")
    kind = task.kind
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return metrics.accuracy(refs, predictions)
    if kind == "regression":
        return metrics.pearson_spearman(refs, predictions)
    if kind == "tagging":
        return {**metrics.seqeval_f1(refs, predictions),
                "token_accuracy": metrics.token_accuracy(refs, predictions)["accuracy"]}
    if kind == "qa":
        if task.name == "mlqa":
            if language is None:
                raise ValueError("evaluate 'mlqa': the answer language is needed for its normalisation")
            return metrics.mlqa_em_f1(refs, predictions, language)
        return metrics.squad_em_f1(refs, predictions)
    if task.name == "mewslix":
        return metrics.mrr_at_k(refs, predictions, TOP_K)
    if task.name == "lareqa":
        return metrics.map_at_k(refs, predictions, TOP_K)
    return {**metrics.top1_accuracy(refs, predictions), **metrics.map_at_k(refs, predictions, TOP_K)}


def per_example(task, predictions, references_, language: str | None = None) -> tuple[str, list[list[float]]]:
    """(kind, rows): one row per example for `metrics.from_rows`, whose metric over all rows is `evaluate`'s
    primary metric (task.metric) on the same predictions. Same inputs and refusals as `evaluate`."""
    task = get_task(task)
    refs = list(references_)
    examples = refs if refs and isinstance(refs[0], Example) else None
    evaluate(task, predictions, references_, language)   # the same checks (gold, lengths); raises as it does
    if examples is not None:
        if isinstance(predictions, dict):
            predictions = [predictions.get(e.id) for e in examples]
        language = language or examples[0].language
        refs = references(task, examples)
    predictions = list(predictions)
    kind = task.kind
    if kind in ("classification", "pair_classification", "multiple_choice"):
        return "accuracy", [[float(p == g)] for p, g in zip(predictions, refs)]
    if kind == "regression":
        return "pearson", [[float(p), float(g)] for p, g in zip(predictions, refs)]
    if kind == "tagging":
        if task.metric != "f1":
            raise ValueError(f"per_example: tagging metric {task.metric!r} has no per-example rows")
        return "span_f1", [list(map(float, metrics.span_counts(g, p))) for g, p in zip(refs, predictions)]
    if kind == "qa":
        one = ((lambda g, p: metrics.mlqa_em_f1([g], [p], language)) if task.name == "mlqa"
               else (lambda g, p: metrics.squad_em_f1([g], [p])))
        return "mean", [[one(g, p)[task.metric]] for g, p in zip(refs, predictions)]
    if task.name == "mewslix":
        return "mean", [[metrics.mrr_at_k([g], [p], TOP_K)[task.metric]] for g, p in zip(refs, predictions)]
    if task.name == "lareqa":
        return "mean", [[metrics.map_at_k([g], [p], TOP_K)[task.metric]] for g, p in zip(refs, predictions)]
    if task.metric == "accuracy":   # tatoeba: top-1
        return "accuracy", [[float(len(p) > 0 and list(p)[0] == (g[0] if isinstance(g, (list, tuple)) else g))]
                            for g, p in zip(refs, predictions)]
    return "mean", [[metrics.map_at_k([g], [p], TOP_K)[task.metric]] for g, p in zip(refs, predictions)]
