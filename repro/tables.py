"""The one table renderer: values to text, rows to markdown, aligned plain text or CSV.

Every table the package prints or writes (the report, `repro table`, `repro preflight`, `repro plan`, the
benchmark table) goes through here, so a number looks the same everywhere.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Iterable, Sequence


def fmt(v: Any) -> str:
    """One table value as text: 4 significant digits, thousands separators for large counts, — for none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float) and v.is_integer() and 1 <= abs(v) < 1e6:
        v = int(v)   # a mean of equal counts (steps, examples) reads as the count
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1e6 else f"{v:.3e}"
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return str(v).replace("\n", " ")


def mean_pm(m: float, s: float, n: int) -> str:
    """mean ± std (n=k) as the report prints a statistic over seeds."""
    if not n:
        return "—"
    return f"{fmt(m)} ± {fmt(s)} (n={n})" if n > 1 else f"{fmt(m)} (n=1)"


def _text(v: Any) -> str:
    return v if isinstance(v, str) else fmt(v)


def markdown(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table (strings as they are, other values through `fmt`)."""
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(esc(_text(v)) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An aligned plain-text table for the terminal."""
    cells = [[_text(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(header)]
    line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in cells])


def _csv_value(v: Any) -> Any:
    """None/nan: an empty cell; a structure (dict, list, tuple): JSON that `json.loads` reads back."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(_no_nan(v), default=str)
    return v


def _no_nan(v: Any) -> Any:
    """nan -> null inside a structure (strict JSON has no NaN)."""
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dict):
        return {str(k): _no_nan(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_no_nan(x) for x in v]
    return v


def csv_text(rows: list[dict]) -> str:
    """Rows (dicts) as CSV with the union of their keys as columns; None/nan as empty cells; a structure as
    JSON (not Python's repr)."""
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: _csv_value(v) for k, v in r.items()})
    return buf.getvalue()


def write_csv(path: Path, rows: list[dict]) -> None:
    Path(path).write_text(csv_text(rows))
