"""The report's statistics: the one mean/spread over seeds, a language's score from per-example rows, and the
interval, test, power and verdict of every comparison the report shows.

Inference is at the level of the seed, the unit a training run redraws (`Estimate`): a t interval over the
per-seed values (a with − without difference: over the per-seed paired differences) with Satterthwaite's
degrees of freedom, to which the paired example bootstrap (`Bootstrap`) adds only the component the seeds
share because they are scored on the same examples. The bootstrap draws, for every (target task, language),
multisets of that language's example ids (the same ids in every cell: evaluation subsets are fixed per task
and language) and recomputes each cell's language score on them (`weighted_scores`, the rows' metric); seeds
are never resampled (a multinomial draw over three seeds has ten patterns: its "95 %" interval is the range
of the three values, which covers 75 %). A cell written before schema 3 kept no per-example rows: its task
has the seed part alone. tests/repro/test_coverage.py simulates results with a known effect and checks that
the 95 % interval covers 93–97 % at 3, 5 and 10 seeds, with the examples or the seeds dominating.

On top of each interval (docs/report.md defines each): the minimum detectable effect at 80 % power, TOST
equivalence within a smallest effect of interest δ, the verdict (different / equivalent / underpowered /
inconclusive), the seeds and evaluation examples that would bring the MDE to δ; and the multiplicity
corrections (Holm 1979, Benjamini & Hochberg 1995, Dror et al. 2017's partial conjunction count).
"""
from __future__ import annotations

import dataclasses
import math
import zlib
from collections import defaultdict
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
from scipy.stats import norm as student_norm
from scipy.stats import t as student_t

ROW_KINDS = ("accuracy", "span_f1", "mean", "pearson")
METHOD = ("t interval over seeds (Satterthwaite df) plus the shared-example component of a paired example "
          "bootstrap")
RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
TOST_LEVEL = 0.95                # each one-sided test of TOST at 5 %: the 90 % interval inside ±δ
POWER = 0.80
MIN_SEEDS = 3                    # a t interval from two values has t(1) = 12.7: none is given
FEW_SEEDS = 5                    # below it, the interval is marked "few seeds"
MAX_SEEDS_NEEDED = 100_000       # seeds_needed searches up to here
SMALLEST_EFFECT = 1.0            # δ in points where the results' config says none (repro.config ReportConfig)
DIFFERENT, EQUIVALENT, UNDERPOWERED, INCONCLUSIVE, NO_INTERVAL = (
    "different", "equivalent", "underpowered", "inconclusive", "no interval")
VERDICTS = (DIFFERENT, EQUIVALENT, UNDERPOWERED, INCONCLUSIVE, NO_INTERVAL)
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
class SeedGroup:
    """One arm's (or one paired difference's) statistic per seed: `values` (k,) on all paired examples and
    `reps` (B, k) on each example resample (None where the task kept no per-example predictions)."""

    seeds: tuple[int, ...]
    values: np.ndarray
    reps: np.ndarray | None

    @property
    def k(self) -> int:
        return len(self.seeds)


def t_quantile(p: float, df: float) -> float:
    """The p quantile of Student's t with df degrees of freedom (the normal's where df is infinite)."""
    return float(student_t.ppf(p, df)) if math.isfinite(df) else float(student_norm.ppf(p))


def verdict_without_difference(ci90: tuple[float, float], mde: float, delta: float) -> str:
    """The verdict of a comparison not called different: equivalent (TOST: the 90 % interval inside ±delta),
    else underpowered (MDE > delta) or inconclusive. Estimate.verdict and the report's Holm-adjusted language
    rows (repro.report.rows) both decide with it."""
    lo, hi = ci90
    if -delta < lo and hi < delta:
        return EQUIVALENT
    return UNDERPOWERED if mde > delta else INCONCLUSIVE


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A statistic of the results (a score, a difference, a mean of them) and what its interval rests on.

    `groups` maps a seed group (the arm's task, model, intermediate task or pairing, and its seeds) to its
    per-seed values: two arms with the same key are paired by seed (a with − without difference subtracts
    seed by seed), different keys are independent. `examples` is the fewest paired examples of a language
    the statistic uses, `why` says why there is no interval where there is none.

    The interval (Satterthwaite 1946; the crossed seed × example design of Clark 1973) is

        point ± t(df) · √(V_seed + V_example)

    V_seed = Σ_groups s²_g / k_g: the unbiased variance of the per-seed values over the seeds (a paired
    difference: of the per-seed differences), which holds every noise a fresh training run redraws, the
    run × example noise included. V_example: the part of the variance the seeds share because they are
    scored on the same examples — the covariance between different runs' values across example resamples
    (the paired example bootstrap, Efron & Tibshirani 1993): Var(Σ_g M_g) with each group's own variance
    Var(M_g) replaced by the mean covariance of its different seeds, (Var(M_g) − k_g·W_g)/(k_g − 1), where
    M_g = mean_s reps_gs and W_g = Σ_s Var(reps_gs)/k_g²; floored at 0. So the run × example noise, which
    the per-seed values already vary by, is counted once.
    df = V² / (Σ_g (s²_g/k_g)²/(k_g − 1) + V_example²/(n − 1)) (Welch–Satterthwaite), n the fewest paired
    examples: k − 1 where the seeds dominate, large where the examples do. With one seed the seed variance
    is unknown: the interval is over examples only (V = the bootstrap variance, df = n − 1) and says so;
    with two seeds there is none (t(1) makes it useless); fewer than FEW_SEEDS is marked few seeds.
    """

    point: float
    groups: dict = dataclasses.field(default_factory=dict, compare=False)
    examples: int | None = None
    why: str = ""

    # -- the design
    @property
    def seeds(self) -> int:
        return min((g.k for g in self.groups.values()), default=0)

    @property
    def few_seeds(self) -> bool:
        return self.seeds < FEW_SEEDS

    @property
    def method(self) -> str:
        """seeds+examples | seeds | examples (one seed) | none."""
        if self._variance() is None:
            return "none"
        if self.seeds == 1:
            return "examples"
        return "seeds+examples" if any(g.reps is not None for g in self.groups.values()) else "seeds"

    @property
    def no_ci(self) -> str:
        """Why there is no interval ("" where there is one)."""
        return self._no_interval()

    def _no_interval(self) -> str:
        if self.why:
            return self.why
        if not self.groups:
            return "no cells"
        ks = {g.k for g in self.groups.values()}
        if min(ks) == 1 and (ks != {1} or any(g.reps is None for g in self.groups.values())):
            return "1 seed and no per-example predictions" if ks == {1} else "an arm has 1 seed"
        if min(ks) == 2:
            return f"2 seeds: no interval (a t interval over seeds needs {MIN_SEEDS})"
        return ""

    def _variance(self) -> tuple[float, float, float, int | None] | None:
        """(V_seed, V_example, df, n) or None where there is no interval."""
        if self._no_interval():
            return None
        cache = self.__dict__.setdefault("_cache", {})
        if "v" in cache:
            return cache["v"]
        groups = list(self.groups.values())
        with_reps = [g for g in groups if g.reps is not None]
        n = self.examples
        v_seed = v_ex = 0.0
        df_den = 0.0
        if with_reps:
            total = sum(g.reps.mean(axis=1) for g in with_reps)
            ok = np.isfinite(total)
            total = total[ok]
            v_total = float(np.var(total, ddof=1)) if len(total) > 1 else math.nan
            # Var(T) with each group's own variance replaced by the covariance its different seeds share
            # (the off-diagonal mean: (Var(M_g) − k·W_g)/(k − 1) − Var(M_g), W_g = Σ_s Var(reps_gs)/k²).
            shared = sum((float(np.var(g.reps[ok].mean(axis=1), ddof=1))
                          - float(np.var(g.reps[ok], axis=0, ddof=1).sum()) / g.k) / (g.k - 1)
                         for g in with_reps if g.k > 1)
        if self.seeds == 1:                      # examples only: the whole bootstrap variance
            v_ex = v_total
            df = (n - 1) if n and n > 1 else math.inf
            cache["v"] = (0.0, v_ex, float(df), n)
            return cache["v"]
        for g in groups:
            s2 = float(np.var(g.values, ddof=1))
            v_seed += s2 / g.k
            df_den += (s2 / g.k) ** 2 / (g.k - 1)
        if with_reps:
            v_ex = max(v_total + shared, 0.0) if math.isfinite(v_total) else 0.0
            if n and n > 1:
                df_den += v_ex ** 2 / (n - 1)
        v = v_seed + v_ex
        df = v ** 2 / df_den if df_den > 0 else math.inf
        cache["v"] = (v_seed, v_ex, float(df), n)
        return cache["v"]

    # -- the interval and what it says
    @property
    def se(self) -> float:
        v = self._variance()
        return math.nan if v is None else math.sqrt(v[0] + v[1])

    @property
    def df(self) -> float:
        v = self._variance()
        return math.nan if v is None else v[2]

    def shares(self) -> tuple[float, float]:
        """(seed share, example share) of the variance (nan without an interval or with zero variance)."""
        v = self._variance()
        if v is None or v[0] + v[1] <= 0:
            return math.nan, math.nan
        return v[0] / (v[0] + v[1]), v[1] / (v[0] + v[1])

    def ci(self, level: float = LEVEL) -> tuple[float, float]:
        v = self._variance()
        if v is None or not math.isfinite(v[0] + v[1]):
            return math.nan, math.nan
        half = t_quantile(1 - (1 - level) / 2, v[2]) * math.sqrt(v[0] + v[1])
        return self.point - half, self.point + half

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

    def p_value(self) -> float:
        """Two-sided p of "the statistic is 0" under the same t (nan without an interval)."""
        if not self.has_ci:
            return math.nan
        se = self.se
        if se == 0:
            return 0.0 if self.point != 0 else 1.0
        return float(2 * student_t.sf(abs(self.point) / se, self.df))

    def mde(self, power: float = POWER, level: float = LEVEL) -> float:
        """Minimum detectable effect: the true difference a two-sided test at 1 − level finds with probability
        `power`, (t_{1−α/2, df} + t_{power, df}) · SE (Bloom 1995, "Minimum detectable effects"; the normal
        approximation to the noncentral t with t quantiles in place of z)."""
        if not self.has_ci:
            return math.nan
        return (t_quantile(1 - (1 - level) / 2, self.df) + t_quantile(power, self.df)) * self.se

    def equivalent(self, delta: float) -> bool:
        """TOST (Schuirmann 1987; Lakens 2017): both one-sided tests at 5 % reject, i.e. the 90 % interval lies
        inside ±delta."""
        lo, hi = self.ci(1 - 2 * (1 - TOST_LEVEL))
        return self.has_ci and -delta < lo and hi < delta

    def verdict(self, delta: float) -> str:
        """different (the 95 % interval excludes 0) | equivalent (TOST within ±delta) | underpowered (neither,
        MDE > delta) | inconclusive (neither, MDE ≤ delta) | no interval."""
        if not self.has_ci:
            return NO_INTERVAL
        if self.excludes_zero():
            return DIFFERENT
        return verdict_without_difference(self.ci(1 - 2 * (1 - TOST_LEVEL)), self.mde(), delta)

    def seeds_needed(self, delta: float, power: float = POWER, level: float = LEVEL) -> int | None:
        """The fewest seeds (≥ MIN_SEEDS) at which the MDE would be ≤ delta, the measured per-seed variances
        and example component held fixed; None where the example component alone keeps it above delta (more
        evaluation examples are needed: `examples_needed`) or no interval exists (nan in rows)."""
        v = self._variance()
        if v is None or self.seeds < 2:
            return None
        s2 = [float(np.var(g.values, ddof=1)) for g in self.groups.values()]
        v_ex, n = v[1], v[3]
        ex_den = v_ex ** 2 / (n - 1) if n and n > 1 else 0.0

        def mde_at(k: int) -> float:     # decreases with k: smaller seed variance, more df
            total = sum(s2) / k + v_ex
            den = sum(x ** 2 for x in s2) / k ** 2 / (k - 1) + ex_den
            df = total ** 2 / den if den > 0 else math.inf
            return (t_quantile(1 - (1 - level) / 2, df) + t_quantile(power, df)) * math.sqrt(total)

        if mde_at(MAX_SEEDS_NEEDED) > delta:
            return None
        lo, hi = MIN_SEEDS, MAX_SEEDS_NEEDED    # bisection: the first k with mde_at(k) <= delta
        if mde_at(lo) <= delta:
            return lo
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if mde_at(mid) <= delta else (mid, hi)
        return hi

    def examples_needed(self, delta: float, power: float = POWER, level: float = LEVEL) -> int | None:
        """The fewest paired examples per language below which no number of seeds brings the MDE to delta: the
        example component scales as 1/n, so n · V_example · (z_{1−α/2} + z_power)² / delta². None where no
        example component was measured (no per-example predictions, one seed, or an estimate of 0)."""
        v = self._variance()
        if v is None or self.seeds < 2 or not v[3] or v[1] <= 0:
            return None
        z = float(student_norm.ppf(1 - (1 - level) / 2) + student_norm.ppf(power))
        return int(math.ceil(v[3] * v[1] * z ** 2 / delta ** 2))

    # -- arithmetic: paired by seed where the seed groups are the same
    def _combine(self, other: "Estimate", factor: float) -> "Estimate":
        groups = dict(self.groups)
        for key, g in other.groups.items():
            mine = groups.get(key)
            if mine is None:
                groups[key] = _scaled_group(g, factor)
            else:
                reps = None if mine.reps is None or g.reps is None else mine.reps + factor * g.reps
                groups[key] = SeedGroup(mine.seeds, mine.values + factor * g.values, reps)
        return Estimate(self.point + factor * other.point, groups, _fewest(self.examples, other.examples),
                        self.why or other.why)

    def __sub__(self, other: "Estimate") -> "Estimate":
        return self._combine(other, -1.0)

    def __add__(self, other: "Estimate") -> "Estimate":
        return self._combine(other, 1.0)

    def scaled(self, factor: float) -> "Estimate":
        return Estimate(self.point * factor, {k: _scaled_group(g, factor) for k, g in self.groups.items()},
                        self.examples, self.why)

    def as_dict(self, delta: float | None = None, sizing: bool = True) -> dict:
        """The numbers of docs/report.md; with delta the verdict, and with sizing the seeds and examples MDE ≤
        delta needs (a search: leave it out for rows that are not primary endpoints)."""
        lo, hi = self.ci()
        seed_share, example_share = self.shares()
        out = {"point": self.point, "ci_low": lo, "ci_high": hi, "ci_method": self.method,
               "ci_examples": self.examples, "ci_seeds": self.seeds, "few_seeds": self.few_seeds, "se": self.se,
               "df": self.df, "p": self.p_value(), "seed_share": seed_share, "example_share": example_share,
               "mde": self.mde()}
        if delta is not None:
            lo90, hi90 = self.ci(1 - 2 * (1 - TOST_LEVEL))
            out.update({"delta": delta, "ci90_low": lo90, "ci90_high": hi90, "verdict": self.verdict(delta)})
            if sizing:
                out.update({"seeds_needed": self.seeds_needed(delta), "examples_needed": self.examples_needed(delta)})
        return out if self.has_ci else {**out, "no_ci": self._no_interval()}


def _scaled_group(g: SeedGroup, factor: float) -> SeedGroup:
    return SeedGroup(g.seeds, g.values * factor, None if g.reps is None else g.reps * factor)


def mean_of(estimates: Sequence[Estimate]) -> Estimate:
    """The mean of estimates, seed group by seed group (so the seeds and examples they share stay paired)."""
    if not estimates:
        raise ValueError("mean_of: no estimates")
    total = estimates[0]
    for e in estimates[1:]:
        total = total + e
    return total.scaled(1 / len(estimates))


def _fewest(a, b):
    vals = [v for v in (a, b) if v is not None]
    return min(vals) if vals else None


# ---- multiplicity ---------------------------------------------------------------------------------------
def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values: sorted ascending, p_(i) · (m − i + 1), made monotone, capped
    at 1 (nan stays nan and does not count in m). Controls the family-wise error at any dependence."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(sorted(idx, key=lambda i: pvalues[i])):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        out[i] = running
    return out


def benjamini_hochberg(pvalues: Sequence[float]) -> list[float]:
    """Benjamini & Hochberg's (1995) adjusted p-values (q-values): p_(i) · m / i, made monotone from the
    largest down, capped at 1; controls the false discovery rate under independence or positive dependence."""
    idx = [i for i, p in enumerate(pvalues) if not math.isnan(p)]
    m = len(idx)
    out = [math.nan] * len(pvalues)
    running = 1.0
    for rank, i in reversed(list(enumerate(sorted(idx, key=lambda i: pvalues[i]), start=1))):
        running = min(running, pvalues[i] * m / rank)
        out[i] = running
    return out


def partial_conjunction_count(pvalues: Sequence[float], alpha: float = 1 - LEVEL) -> int:
    """How many of N tasks show the effect, with the family-wise error of "at least u of N" controlled at alpha
    (Dror, Baumer, Bogomolov & Reichart 2017, "Replicability Analysis for NLP", TACL 5: 471–486), from
    Bonferroni's partial conjunction p-values (Benjamini & Heller 2008): p^(u/N) = (N − u + 1) · p_(u), p_(u)
    the u-th smallest; the count is the largest u whose p^(j/N) are all ≤ alpha for j = 1..u."""
    ps = sorted(p for p in pvalues if not math.isnan(p))
    n = len(ps)
    k = 0
    for u in range(1, n + 1):
        if min(1.0, (n - u + 1) * ps[u - 1]) <= alpha:
            k = u
        else:
            break
    return k


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

    def arm(self, cells: Sequence, stat: Callable[[Mapping], object], seed_key: tuple | None = None) -> Estimate:
        """The statistic `stat` (language -> score, a number or a replicate array) of one arm: cells of one
        target task, one per seed, averaged over the seeds. Arms with the same seed_key (and seeds) form one
        seed group: pass the same key for the two sides of a comparison paired by seed."""
        cells = sorted(cells, key=lambda c: c.seed)
        if not cells:
            raise ValueError("arm: no cells")
        task = cells[0].target_task
        sample = self.tasks[task]
        seeds = tuple(c.seed for c in cells)
        key = (task, *(seed_key or (cells[0].model.name, cells[0].intermediate_name)), seeds)
        values = np.array([float(stat(self.point_scores(c))) for c in cells])
        langs = set.intersection(*(set(self.point_scores(c)) for c in cells))
        if sample.mode == "examples":
            examples = min((len(sample.ids[lang]) for lang in langs), default=None)
            reps = np.stack([np.asarray(stat(self.replicate_scores(c)), dtype=np.float64) for c in cells], axis=1)
            return Estimate(float(values.mean()), {key: SeedGroup(seeds, values, reps)}, examples)
        why = f"{sample.why}; {len(cells)} seed{'s' * (len(cells) != 1)}" if len(cells) < MIN_SEEDS else ""
        return Estimate(float(values.mean()), {key: SeedGroup(seeds, values, None)}, None, why)
