"""The report's statistics: the one mean/spread over seeds, a language's score from per-example rows, and the
paired bootstrap that puts a 95 % interval on every comparison the report shows.

The bootstrap (`Bootstrap`) resamples what varies between two runs of the study: the evaluation examples and,
where a comparison has several, the training seeds. One replicate draws, for every (target task, language),
one multiset of that language's example ids (the same ids in every cell: evaluation subsets are fixed per task
and language), and for every group of seeds one multiset of seeds; each cell's language score is recomputed on
the drawn examples (`weighted_scores`, the rows' metric), each arm's statistic is averaged over the drawn
seeds. Because the draws are shared, a with − without difference is paired by example and by seed, and a
comparison across models is paired by example (their seeds are drawn apart). The interval is the percentile
interval of the replicates. A cell written before schema 3 kept no per-example rows: its task is resampled
over seeds alone (three seeds at least), and with fewer there is no interval.
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

ROW_KINDS = ("accuracy", "span_f1", "mean", "pearson")
METHOD = "paired bootstrap, percentile interval"
RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
MIN_SEEDS_WITHOUT_EXAMPLES = 3   # a seeds-only interval from two values is their range, not an interval
_CHUNK = 250                     # replicates drawn at once (bounds memory on 10,000-example languages)


def mean_std(xs: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the values (one per seed).

    Convention: with one value the standard deviation is undefined and returned as nan (the report prints
    "n=1" instead of a spread); with none, the mean is nan too. Callers that need a number for a missing
    spread say so where they use it.
    """
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(xs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return m, s, n


# ---- a language's score from its per-example rows -------------------------------------------------------
def from_rows(kind: str, rows) -> float:
    """The metric (0-100) of the examples whose rows are given; data_prep.metrics.from_rows, which the report
    may not import (no data_prep here), and a test keeps the two equal."""
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or not len(rows):
        raise ValueError(f"from_rows({kind!r}): need a non-empty (n, k) array, got shape {rows.shape}")
    return float(weighted_scores(kind, np.ones((1, len(rows))), rows)[0])


def weighted_scores(kind: str, weights: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The metric of each resample: weights (B, n) are how often each of the n examples was drawn."""
    w, rows = np.asarray(weights, dtype=np.float64), np.asarray(rows, dtype=np.float64)
    n = w.sum(axis=1)
    if kind == "accuracy":
        return 100.0 * (w @ rows[:, 0]) / n
    if kind == "span_f1":
        c, p, g = w @ rows[:, 0], w @ rows[:, 1], w @ rows[:, 2]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(p + g > 0, 100.0 * 2 * c / (p + g), 0.0)
    if kind == "mean":
        return (w @ rows[:, 0]) / n
    if kind == "pearson":
        x, y = rows[:, 0], rows[:, 1]
        mx, my = (w @ x) / n, (w @ y) / n
        cov = (w @ (x * y)) / n - mx * my
        vx, vy = (w @ (x * x)) / n - mx ** 2, (w @ (y * y)) / n - my ** 2
        with np.errstate(invalid="ignore", divide="ignore"):
            return 100.0 * cov / np.sqrt(vx * vy)   # nan where a resample is constant: left out of the interval
    raise ValueError(f"from_rows: unknown kind {kind!r} (one of {', '.join(ROW_KINDS)})")


# ---- an estimate and its interval -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Estimate:
    """A statistic of the results (a score, a difference) with its bootstrap replicates.

    `reps` is None where no interval exists (`why` says why). `examples` is the fewest paired examples of a
    language the statistic uses, `seeds` the fewest seeds of an arm in it."""

    point: float
    reps: np.ndarray | None
    method: str                      # examples | examples+seeds | seeds | none
    examples: int | None = None
    seeds: int = 0
    why: str = ""

    def ci(self, level: float = LEVEL) -> tuple[float, float]:
        if self.reps is None or not np.isfinite(self.reps).any():
            return math.nan, math.nan
        q = 100 * (1 - level) / 2
        lo, hi = np.nanpercentile(self.reps, [q, 100 - q])
        return float(lo), float(hi)

    @property
    def has_ci(self) -> bool:
        return not math.isnan(self.ci()[0])

    def excludes_zero(self) -> bool:
        lo, hi = self.ci()
        return self.has_ci and (lo > 0 or hi < 0)

    def sign(self) -> int:
        """+1 / −1 where the interval lies above / below 0, 0 where it contains 0 or does not exist."""
        lo, hi = self.ci()
        return 1 if self.has_ci and lo > 0 else -1 if self.has_ci and hi < 0 else 0

    def _combine(self, other: "Estimate", point: float, op) -> "Estimate":
        reps = None if self.reps is None or other.reps is None else op(self.reps, other.reps)
        return Estimate(point, reps, _method(self.method, other.method), _fewest(self.examples, other.examples),
                        _fewest(self.seeds, other.seeds) or 0, self.why or other.why)

    def __sub__(self, other: "Estimate") -> "Estimate":
        return self._combine(other, self.point - other.point, np.subtract)

    def __add__(self, other: "Estimate") -> "Estimate":
        return self._combine(other, self.point + other.point, np.add)

    def scaled(self, factor: float) -> "Estimate":
        return dataclasses.replace(self, point=self.point * factor,
                                   reps=None if self.reps is None else self.reps * factor)

    def as_dict(self) -> dict:
        lo, hi = self.ci()
        out = {"point": self.point, "ci_low": lo, "ci_high": hi, "ci_method": self.method,
               "ci_examples": self.examples, "ci_seeds": self.seeds}
        return out if self.has_ci else {**out, "no_ci": self.why}


def mean_of(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of estimates, replicate by replicate (so the draws they share stay paired)."""
    if not estimates:
        raise ValueError("mean_of: no estimates")
    total = estimates[0]
    for e in estimates[1:]:
        total = total + e
    return total.scaled(1 / len(estimates))


def _method(a: str, b: str) -> str:
    if a == b:
        return a
    if "none" in (a, b):
        return "none"
    return "+".join(sorted(set(a.split("+")) | set(b.split("+")), key=["examples", "seeds"].index))


def _fewest(a, b):
    vals = [v for v in (a, b) if v is not None]
    return min(vals) if vals else None


# ---- the bootstrap over a run's cells ---------------------------------------------------------------------
@dataclasses.dataclass
class TaskSample:
    """What one target task's cells are resampled over."""

    mode: str                                   # "examples" (every cell kept rows) or "seeds"
    ids: dict[str, tuple[str, ...]]             # language -> example ids scored in every cell (the pairing)
    unpaired: dict[str, int]                    # language -> ids some cell lacks (left out of the pairing)
    why: str = ""                               # why "seeds" (a cell without per-example predictions)


def _rng(*key) -> np.random.Generator:
    return np.random.default_rng([zlib.crc32(str(k).encode()) for k in key])


class Bootstrap:
    """Replicates of every cell's per-language scores, drawn once per run; `arm` turns them into estimates.

    cells: the run's results (repro.results.CellResults); predictions: cell_id -> its Predictions (None for
    a cell without). Reproducible: the draws depend only on `seed` and the names of the task, language and
    seed group, never on the order the report asks for them."""

    def __init__(self, cells: Iterable, predictions: Mapping[str, object | None], resamples: int = RESAMPLES,
                 seed: int = SEED, level: float = LEVEL):
        self.cells = list(cells)
        self.predictions = dict(predictions)
        self.resamples, self.seed, self.level = int(resamples), int(seed), float(level)
        by_task: dict[str, list] = defaultdict(list)
        for c in self.cells:
            by_task[c.target_task].append(c)
        self.by_task = dict(by_task)
        self.tasks = {t: self._sample(cs) for t, cs in sorted(self.by_task.items())}
        self._points: dict[str, dict[str, float]] = {}
        self._reps: dict[str, dict[str, np.ndarray]] = {}

    def describe(self) -> dict:
        return {"method": METHOD, "resamples": self.resamples, "seed": self.seed, "level": self.level,
                "tasks": {t: {"mode": s.mode, "paired_examples": {lang: len(ids) for lang, ids in s.ids.items()},
                              "unpaired_examples": s.unpaired, **({"why": s.why} if s.why else {})}
                          for t, s in self.tasks.items()}}

    def _sample(self, cells) -> TaskSample:
        preds = {c.cell_id: self.predictions.get(c.cell_id) for c in cells}
        lacking = [c.cell_id for c in cells if preds[c.cell_id] is None
                   or not set(c.per_language) <= set(preds[c.cell_id].languages)]
        if lacking:
            return TaskSample("seeds", {}, {}, f"no per-example predictions in {len(lacking)} of {len(cells)} "
                                               f"cells (e.g. {lacking[0]})")
        ids, unpaired = {}, {}
        for lang in sorted({lang for c in cells for lang in c.per_language}):
            sets = [preds[c.cell_id].languages[lang].ids for c in cells if lang in c.per_language]
            common = set(sets[0]).intersection(*map(set, sets[1:]))
            ids[lang] = tuple(i for i in sets[0] if i in common)
            unpaired[lang] = len(set().union(*map(set, sets)) - common)
        return TaskSample("examples", ids, unpaired)

    # -- per cell and language: the score on all paired examples, and on each resample of them
    def point_scores(self, cell) -> dict[str, float]:
        if cell.cell_id not in self._points:
            self._draw(cell.target_task)
        return self._points[cell.cell_id]

    def replicate_scores(self, cell) -> dict[str, np.ndarray] | None:
        if self.tasks[cell.target_task].mode != "examples":
            return None
        if cell.cell_id not in self._reps:
            self._draw(cell.target_task)
        return self._reps[cell.cell_id]

    def _draw(self, task: str) -> None:
        sample, cells = self.tasks[task], self.by_task[task]
        if sample.mode != "examples":
            for c in cells:
                self._points[c.cell_id] = dict(c.per_language)
            return
        aligned = {}
        for c in cells:
            p = self.predictions[c.cell_id]
            aligned[c.cell_id] = {}
            for lang, ids in sample.ids.items():
                if lang in c.per_language:
                    where = {i: k for k, i in enumerate(p.languages[lang].ids)}
                    aligned[c.cell_id][lang] = p.rows(lang)[[where[i] for i in ids]]
            self._points[c.cell_id] = {lang: from_rows(self.predictions[c.cell_id].kind, rows)
                                       for lang, rows in aligned[c.cell_id].items()}
            self._reps[c.cell_id] = {}
        for lang, ids in sample.ids.items():
            n = len(ids)
            users = [c for c in cells if lang in aligned[c.cell_id]]
            out = {c.cell_id: np.empty(self.resamples, dtype=np.float32) for c in users}
            rng = _rng(self.seed, "examples", task, lang)
            for start in range(0, self.resamples, _CHUNK):
                b = min(_CHUNK, self.resamples - start)
                idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
                weights = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
                for c in users:
                    out[c.cell_id][start:start + b] = weighted_scores(self.predictions[c.cell_id].kind, weights,
                                                                      aligned[c.cell_id][lang])
            for c in users:
                self._reps[c.cell_id][lang] = out[c.cell_id]

    def seed_weights(self, key: tuple, k: int) -> np.ndarray:
        """(B, k) how often each of k seeds is drawn; the same for every arm with the same key."""
        if k == 1:
            return np.ones((self.resamples, 1))
        return _rng(self.seed, "seeds", *key).multinomial(k, [1 / k] * k, size=self.resamples).astype(np.float64)

    def arm(self, cells: Sequence, stat: Callable[[Mapping], object], seed_key: tuple | None = None) -> Estimate:
        """The statistic `stat` (language -> score, a number or a replicate array) of one arm: cells of one
        target task, one per seed, averaged over the seeds. Arms with the same seed_key (and seeds) share their
        seed draws: pass the same key for the two sides of a comparison paired by seed."""
        cells = sorted(cells, key=lambda c: c.seed)
        if not cells:
            raise ValueError("arm: no cells")
        task = cells[0].target_task
        sample = self.tasks[task]
        k = len(cells)
        key = (task, *(seed_key or (cells[0].model.name, cells[0].intermediate_name)), tuple(c.seed for c in cells))
        points = [float(stat(self.point_scores(c))) for c in cells]
        point = float(np.mean(points))
        langs = set.intersection(*(set(self.point_scores(c)) for c in cells))
        examples = min((len(sample.ids[lang]) for lang in langs), default=None) if sample.mode == "examples" else None
        if sample.mode == "examples":
            per_seed = np.stack([np.asarray(stat(self.replicate_scores(c)), dtype=np.float64) for c in cells], axis=1)
            weights = self.seed_weights(key, k)
            reps = (per_seed * weights).sum(axis=1) / k
            return Estimate(point, reps, "examples+seeds" if k > 1 else "examples", examples, k)
        if k < MIN_SEEDS_WITHOUT_EXAMPLES:
            return Estimate(point, None, "none", None, k,
                            f"{sample.why}; {k} seed{'s' * (k != 1)} (a seeds-only interval needs "
                            f"{MIN_SEEDS_WITHOUT_EXAMPLES})")
        reps = self.seed_weights(key, k) @ np.asarray(points) / k
        return Estimate(point, reps, "seeds", None, k)
