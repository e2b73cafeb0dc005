"""The progress line's time estimate leaves XLA compilation out, and says so until steps are timed."""
from __future__ import annotations

import pytest

from repro import progress


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


@pytest.fixture
def lines(monkeypatch):
    clock = Clock()
    said = []
    monkeypatch.setattr(progress.time, "perf_counter", clock)
    monkeypatch.setattr(progress, "enabled", lambda: True)
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    monkeypatch.setattr(progress, "interval", lambda: 0.0)
    monkeypatch.setattr(progress.console, "say", said.append)
    return clock, said


def test_compiling_step_is_not_in_the_estimate(lines):
    clock, said = lines
    ticker = progress.Ticker("cell target", total=100, unit="step")
    clock.t += 60.0                      # the first step compiles for a minute
    ticker.update(1, compiled=True)
    assert "estimated once the first steps after compilation are timed" in said[-1]
    assert "~" not in said[-1]   # no number yet
    for _ in range(9):                   # then 0.5 s a step
        clock.t += 0.5
        ticker.update(1)
    # 90 steps left at 0.5 s = 45 s; counting the compilation would say (69.5 / 10) * 90 = 10m26s.
    assert said[-1].endswith("~45s left (compilation excluded)"), said[-1]
    assert "1m04s elapsed" in said[-1]


def test_recompilation_restarts_the_window(lines):
    clock, said = lines
    ticker = progress.Ticker("x", total=50, unit="step")
    for _ in range(10):
        clock.t += 1.0
        ticker.update(1)
    assert said[-1].endswith("~40s left")   # no compilation seen: no note
    clock.t += 30.0                       # a new length bucket compiles
    ticker.update(1, compiled=True)
    assert "estimated once" in said[-1]
    clock.t += 2.0
    ticker.update(1)
    assert said[-1].endswith("~1m16s left (compilation excluded)"), said[-1]   # 38 steps at 2 s


def test_terminal_bar_rate_restarts_after_compilation(monkeypatch):
    """tqdm's own ETA must not carry the compiling step either."""
    import io
    clock = Clock()
    monkeypatch.setattr(progress, "enabled", lambda: True)
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    monkeypatch.setattr(progress.console, "stream", lambda: io.StringIO())
    ticker = progress.Ticker("x", total=100, unit="step")
    ticker.bar._time = clock
    ticker.bar.start_t = ticker.bar.last_print_t = clock.t
    clock.t += 60.0
    ticker.update(1, compiled=True)
    assert ticker.bar.n == 1 and ticker.bar.initial == 1 and ticker.bar.start_t == clock.t
    for _ in range(4):
        clock.t += 0.5
        ticker.update(1)
    elapsed = clock.t - ticker.bar.start_t
    assert elapsed == pytest.approx(2.0)   # the bar's rate is 4 steps / 2 s, not 5 / 62 s
    ticker.close()
