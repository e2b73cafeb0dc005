"""Metrics as the official xtreme scorer (evaluate.py and third_party/) computes them, on its 0-100
scale. scipy does the correlations; span F1 follows the seqeval version XTREME's numbers were computed
with (data_prep.chunks); the SQuAD/MLQA answer normalisation, MRR and mAP@k are short enough to state
here and have no maintained library that matches the official scripts. Inputs without gold are refused
(ValueError), never scored: `evaluate` turns that into a NoGoldError.
"""
from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter

import numpy as np

from . import chunks


def accuracy(golds, preds) -> dict:
    if len(golds) != len(preds):
        raise ValueError(f"accuracy: {len(preds)} predictions for {len(golds)} references")
    correct = sum(int(p == g) for p, g in zip(preds, golds))
    return {"accuracy": 100.0 * correct / len(preds)}


def seqeval_f1(golds, preds) -> dict:
    """evaluate.py `f1`: seqeval 0.0.12's span F1 on the raw tags - used for PAN-X *and* UD-POS."""
    golds, preds = [list(g) for g in golds], [list(p) for p in preds]
    if len(golds) != len(preds):
        raise ValueError(f"seqeval_f1: {len(preds)} predicted sentences for {len(golds)} gold ones")
    for i, (g, p) in enumerate(zip(golds, preds)):
        if len(g) != len(p):
            raise ValueError(f"seqeval_f1: sentence {i} has {len(g)} gold tags but {len(p)} predicted")
    if not any(golds):
        raise ValueError("seqeval_f1: no gold tags (every sentence is empty)")
    return {k: 100.0 * v for k, v in chunks.span_f1(golds, preds).items()}


def token_accuracy(golds, preds) -> dict:
    pairs = [(g, p) for gs, ps in zip(golds, preds) for g, p in zip(gs, ps)]
    if not pairs:
        raise ValueError("token_accuracy: no gold tags (every sentence is empty)")
    return {"accuracy": 100.0 * sum(g == p for g, p in pairs) / len(pairs)}


def pearson_spearman(golds, preds) -> dict:
    from scipy.stats import pearsonr, spearmanr

    golds, preds = np.asarray(golds, float), np.asarray(preds, float)
    return {"pearson": 100.0 * float(pearsonr(preds, golds)[0]),
            "spearman": 100.0 * float(spearmanr(preds, golds)[0])}


# --- SQuAD v1.1 (third_party/evaluate_squad.py) ---------------------------------------------------
_ASCII_PUNCT = frozenset(string.punctuation)

def squad_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _ASCII_PUNCT)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


# --- MLQA (third_party/evaluate_mlqa.py) ----------------------------------------------------------
class _Punctuation:
    """Membership as evaluate_mlqa.py's PUNCT set (Unicode category P*, plus ASCII punctuation), without
    building that set (a scan of all of Unicode, 0.17 s on every import) - U+10FFFF, which the official
    range() leaves out, is unassigned (category Cn) anyway."""

    def __contains__(self, ch) -> bool:
        return ch in _ASCII_PUNCT or (isinstance(ch, str) and len(ch) == 1
                                      and unicodedata.category(ch).startswith("P"))


PUNCT = _Punctuation()
WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MIXED_SEGMENTATION_LANGS = ("zh",)
ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": r"\sال^|ال",     # as in the official script: every "ال" is removed
}


def _mixed_segmentation(text: str) -> list[str]:
    """zh: every CJK character and punctuation mark is a token; the rest splits on whitespace."""
    out, run = [], ""
    for ch in text:
        if re.search(r"[\u4e00-\u9fa5]", ch) or ch in PUNCT:
            if run:
                out.extend(run.split())
                run = ""
            out.append(ch)
        else:
            run += ch
    if run:
        out.extend(run.split())
    return out


def mlqa_normalize(s: str, lang: str) -> str:
    if lang not in WHITESPACE_LANGS + MIXED_SEGMENTATION_LANGS:
        raise ValueError(f"MLQA normalisation: unknown language {lang!r}")
    s = "".join(ch for ch in s.lower() if ch not in PUNCT)
    if lang in ARTICLES:
        s = re.sub(ARTICLES[lang], " ", s)
    tokens = s.split() if lang in WHITESPACE_LANGS else _mixed_segmentation(s)
    return " ".join(t for t in tokens if t.strip())


def _f1(pred_tokens, gold_tokens) -> float:
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    p, r = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * p * r / (p + r)


def qa_em_f1(golds, preds, normalize=squad_normalize) -> dict:
    """golds: per question, its gold answer texts (a plain string is one answer); preds: answer text per
    question (None = unanswered, scores 0 as in the official scripts). A question without gold answers
    is refused: the official max() over no answers fails, and 0 would be a silent number."""
    golds = [[g] if isinstance(g, str) else list(g) for g in golds]
    if len(golds) != len(preds):
        raise ValueError(f"qa_em_f1: {len(preds)} predictions for {len(golds)} questions")
    if not golds:
        raise ValueError("qa_em_f1: no questions")
    empty = sum(not g for g in golds)
    if empty:
        raise ValueError(f"qa_em_f1: {empty} of {len(golds)} questions have no gold answer")
    em = f1 = 0.0
    for gold, pred in zip(golds, preds):
        if pred is None:
            continue
        norm_p = normalize(pred)
        em += max(float(norm_p == normalize(g)) for g in gold)
        f1 += max(_f1(norm_p.split(), normalize(g).split()) for g in gold)
    return {"exact_match": 100.0 * em / len(golds), "f1": 100.0 * f1 / len(golds)}


def squad_em_f1(golds, preds) -> dict:
    return qa_em_f1(golds, preds, squad_normalize)


def mlqa_em_f1(golds, preds, lang: str) -> dict:
    return qa_em_f1(golds, preds, lambda s: mlqa_normalize(s, lang))


# --- retrieval ------------------------------------------------------------------------------------
def mrr_at_k(golds, ranked, k: int = 20) -> dict:
    """Mewsli-X (utils_mewslix.evaluate): single gold id per query (stripped, as the official script
    does), reciprocal rank in the top k; reported as map@20 (MAP equals MRR with one gold)."""
    rr = []
    for gold, preds in zip(golds, ranked):
        g = (gold[0] if isinstance(gold, (list, tuple)) else gold).strip()
        hits = [r for r, p in enumerate(list(preds)[:k], start=1) if p == g]
        rr.append(1.0 / hits[0] if hits else 0.0)
    return {f"map@{k}": 100.0 * (sum(rr) / len(rr) if rr else 0.0)}


def map_at_k(golds, ranked, k: int = 20) -> dict:
    """LAReQA (utils_lareqa.average_precision_at_k): several gold candidates per query."""
    scores = []
    for gold, preds in zip(golds, ranked):
        preds, gold = list(preds)[:k], set(gold)
        hits = score = 0.0
        for i, p in enumerate(preds):
            if p in gold and p not in preds[:i]:
                hits += 1
                score += hits / (i + 1)
        scores.append(score / min(len(gold), k))
    return {f"map@{k}": 100.0 * float(np.mean(scores))}


def top1_accuracy(golds, ranked) -> dict:
    """Tatoeba: the nearest candidate must be the gold translation."""
    return accuracy([g[0] if isinstance(g, (list, tuple)) else g for g in golds],
                    [list(r)[0] if len(r) else None for r in ranked])


# --- per example: the rows a paired bootstrap resamples --------------------------------------------
# Each scored example becomes one row of numbers such that the metric of any sample of examples is
# `from_rows(kind, rows of the sample)`, equal to the scorer above on the same examples:
#   accuracy  [correct]                 100 * mean                       (classification, choice, top-1)
#   span_f1   [correct, predicted, gold] chunks; 100 * 2 sum(c) / (sum(p) + sum(g))   (seqeval micro F1)
#   mean      [score]                   mean of per-example 0-100 scores (QA F1, MRR / mAP@k)
#   pearson   [prediction, gold]        100 * Pearson r                  (regression)
ROW_KINDS = ("accuracy", "span_f1", "mean", "pearson")


def from_rows(kind: str, rows) -> float:
    """The metric (0-100) of the examples whose rows are given (rows: (n, k) array-like)."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or not len(rows):
        raise ValueError(f"from_rows({kind!r}): need a non-empty (n, k) array, got shape {rows.shape}")
    if kind == "accuracy":
        return 100.0 * float(rows[:, 0].mean())
    if kind == "span_f1":
        c, p, g = rows[:, 0].sum(), rows[:, 1].sum(), rows[:, 2].sum()
        return 100.0 * float(2 * c / (p + g)) if p + g else 0.0
    if kind == "mean":
        return float(rows[:, 0].mean())
    if kind == "pearson":
        return 100.0 * float(np.corrcoef(rows[:, 0], rows[:, 1])[0, 1])
    raise ValueError(f"from_rows: unknown kind {kind!r} (one of {', '.join(ROW_KINDS)})")


def span_counts(gold_tags, pred_tags) -> tuple[int, int, int]:
    """(correct, predicted, gold) chunks of one sentence; summed over sentences they give `seqeval_f1`
    (the joined sequence puts an "O" between sentences, so no chunk crosses one)."""
    gold, pred = chunks.chunks([list(gold_tags)]), chunks.chunks([list(pred_tags)])
    return len(gold & pred), len(pred), len(gold)
