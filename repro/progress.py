"""Progress on the console: tqdm bars on a terminal, plain throttled lines otherwise (logs, `docker run`
without -t), so that a long run is never silent. Off with `--no-progress` / TQDM_DISABLE=1, and on every
process but the first of a multi-host run.

    ticker = progress.Ticker("cell-id target", total=130, unit="step", initial=0)
    ticker.update(1, loss=0.41)      # a line at most every XT_PROGRESS_INTERVAL seconds (default 30)
    ticker.update(1, compiled=True)  # a step that included XLA compilation: kept out of the time estimate
    ticker.close()                   # "<label>: 130/130 steps done in 21.0 s"
    progress.line("grid: cell 3/12 ...")
"""
from __future__ import annotations

import os
import time

import jax

from repro import console


def enabled() -> bool:
    return os.environ.get("TQDM_DISABLE") != "1" and jax.process_index() == 0


def on_terminal() -> bool:
    return console.is_terminal()


def interval() -> float:
    return float(os.environ.get("XT_PROGRESS_INTERVAL", "30"))


def line(message: str) -> None:
    """One progress line (only where progress is on and stderr is not a terminal's bars)."""
    if enabled():
        console.say(message)


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s" if m else f"{s}s"


class Ticker:
    """Progress of one loop of known length.

    The time left is estimated from the steps timed since the last step that compiled (`compiled=True`):
    a first step that compiles for a minute must not turn a 46 s phase into "~1h19m left". Until a step
    without compilation is timed, the line says the estimate is waiting for it."""

    def __init__(self, label: str, total: int, unit: str, initial: int = 0):
        self.label, self.total, self.unit, self.n = label, total, unit, initial
        self.start_n, self.t0 = initial, time.perf_counter()
        self.last = self.t0
        self.timed_n, self.timed_t0 = initial, self.t0   # the rate's window: after the last compiling step
        self.compiled_any = False
        self.bar = None
        if enabled() and on_terminal():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, desc=label, unit=unit, leave=False, dynamic_ncols=True,
                            file=console.stream())
        elif enabled():
            resumed = f" (resumed at {initial})" if initial else ""
            line(f"{label}: {total} {unit}s{resumed}")

    def update(self, n: int = 1, compiled: bool = False, **info) -> None:
        self.n += n
        now = time.perf_counter()
        if compiled:
            self.timed_n, self.timed_t0, self.compiled_any = self.n, now, True
        if self.bar is not None:
            self.bar.update(n)
            if compiled:   # tqdm's rate and ETA start again after the compiling step: reset, then resume at n
                self.bar.reset(self.total)
                self.bar.n = self.bar.initial = self.bar.last_print_n = self.n
                self.bar.refresh()
            if info:
                self.bar.set_postfix({k: f"{v:.4g}" if isinstance(v, float) else v for k, v in info.items()},
                                     refresh=False)
            return
        if not enabled() or now - self.last < interval() or self.n >= self.total:
            return
        self.last = now
        extra = "".join(f", {k} {v:.4g}" if isinstance(v, float) else f", {k} {v}" for k, v in info.items())
        line(f"{self.label}: {self.n}/{self.total} {self.unit}s ({100 * self.n / self.total:.0f} %), "
             f"{duration(now - self.t0)} elapsed, {self.time_left(now)}{extra}")

    def time_left(self, now: float | None = None) -> str:
        """"~2m10s left" from the steps timed after compilation, or why there is no estimate yet."""
        now = time.perf_counter() if now is None else now
        timed = self.n - self.timed_n
        if timed <= 0:
            return "time left: estimated once the first steps after compilation are timed"
        left = (self.total - self.n) * (now - self.timed_t0) / timed
        return f"~{duration(left)} left" + (" (compilation excluded)" if self.compiled_any else "")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif enabled():
            state = "done" if self.n >= self.total else "stopped"
            line(f"{self.label}: {self.n}/{self.total} {self.unit}s {state} after "
                 f"{duration(time.perf_counter() - self.t0)}")
