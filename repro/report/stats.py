"""The one summary statistic of the report and the claims check."""
from __future__ import annotations

import math
from typing import Sequence


def mean_std(xs: Sequence[float]) -> tuple[float, float, int]:
    """(mean, sample standard deviation, n) of the values (one per seed).

    Convention: with one value the standard deviation is undefined and returned as nan (the report prints
    "n=1" instead of a spread); with none, the mean is nan too. Callers that need a number for a missing
    spread (the claims' tolerance) say so where they use it.
    """
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, 0
    m = sum(xs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else math.nan
    return m, s, n
