"""The errors a user can fix, in one place: each message is one line naming the file, key or value at fault.

`python -m repro` prints `error: <one line>` for these and exits 2; anything else is a bug whose traceback
goes to `<output_dir>/repro.log` while the console keeps one line.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Callable, Iterator


def did_you_mean(word: str, options) -> str:
    """" (did you mean 'x'?)" for the closest option to a mistyped key, task or model name (difflib), else ""."""
    import difflib
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class UserError(Exception):
    """Base of the errors whose message is the whole story for the user (exit 2)."""


class ConfigError(UserError, ValueError):
    """A bad config key or value; the message is one line naming it."""


class DataError(UserError, RuntimeError):
    """The data a cell needs cannot be loaded or cannot be scored."""


class ModelError(UserError, RuntimeError):
    """The model (weights, config or tokenizer) a cell needs cannot be loaded."""


class OutputDirError(UserError, RuntimeError):
    """The output directory cannot be written, or holds a run of another config."""


class CheckpointMismatchError(UserError, RuntimeError):
    """The checkpoint on disk was written for a different model, config or optimiser structure."""


class NonFiniteLossError(UserError, RuntimeError):
    """Training produced a NaN/inf loss or gradient; `step` and `checkpoint` say where (set by the loop)."""

    def __init__(self, message: str, step: int | None = None, checkpoint: str | None = None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint


@contextlib.contextmanager
def writing(path: str | Path, verb: str = "write", cleanup: Callable[[], None] | None = None) -> Iterator[None]:
    """Writing under the output folder: an OSError inside (disk full, read-only, permissions) becomes one
    OutputDirError "cannot <verb> <path>: <reason>"; `cleanup` runs first (e.g. removing a temporary file)."""
    try:
        yield
    except OSError as e:
        if cleanup is not None:
            cleanup()
        raise OutputDirError(f"cannot {verb} {path}: {e.strerror or e}") from e


def one_line(e: BaseException) -> str:
    """The exception as one line; the type name is added where the message alone would not say what failed."""
    text = " ".join(str(e).split())
    if isinstance(e, UserError) or (text and type(e).__name__ in text):
        return text
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
