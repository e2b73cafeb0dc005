"""booktabs LaTeX tables of the report (`tables/*.tex`): text only, no file writes.

Each table is a `table` float with `\\toprule`, `\\midrule`, `\\bottomrule` (needs `\\usepackage{booktabs}`);
a statistic with an interval prints as $m^{+a}_{-b}$: the mean with the distances to the 95 % interval's
bounds (a percentile interval need not be symmetric). Text is escaped for LaTeX.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

from repro.tables import fmt

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "−": "--", "–": "--", "—": "---", "≈": r"$\approx$", "×": r"$\times$", "→": r"$\rightarrow$",
            "±": r"$\pm$", "Δ": r"$\Delta$", "≤": r"$\leq$", "≥": r"$\geq$", "·": r"$\cdot$", "⚠": "(!)"}


def escape(text: Any) -> str:
    return "".join(_SPECIAL.get(ch, ch) for ch in str(text))


def _num(x: float) -> str:
    return fmt(x).replace("—", "--").replace(",", "{,}")


def mean_ci(mean: float | None, lo: float | None, hi: float | None, digits: int | None = None) -> str:
    """$m^{+a}_{-b}$, or the mean alone where there is no interval, or -- where there is no mean.
    digits: that many decimals (a score: one, as papers print them); None: 4 significant digits."""
    num = _num if digits is None else (lambda x: f"{x:.{digits}f}")
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "--"
    if lo is None or hi is None or math.isnan(lo) or math.isnan(hi):
        return f"${num(mean)}$"
    return f"${num(mean)}^{{+{num(max(hi - mean, 0.0))}}}_{{-{num(max(mean - lo, 0.0))}}}$"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str, label: str,
          align: str | None = None) -> str:
    """A booktabs table; cells that are already LaTeX (from `mean_ci`) are kept, other text is escaped."""
    align = align or "l" * len(header)

    def cell(v):
        if isinstance(v, Latex):
            return str(v)
        return escape(v if isinstance(v, str) else fmt(v))

    lines = [r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(escape(h) for h in header) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{escape(caption)}}}",
              rf"\label{{{re.sub(r'[^A-Za-z0-9:-]', '-', label)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


class Latex(str):
    """A string that is LaTeX already (not escaped again)."""


def ci_cell(mean, lo, hi, digits: int | None = None) -> Latex:
    return Latex(mean_ci(mean, lo, hi, digits))


DOCUMENT = r"""\documentclass{article}
\usepackage{booktabs}
\usepackage[T1]{fontenc}
\begin{document}
%s
\end{document}
"""


def standalone(tables: Sequence[str]) -> str:
    """A minimal document that inputs nothing and holds every table (what the test compiles)."""
    return DOCUMENT % "\n".join(tables)
