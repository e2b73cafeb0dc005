"""Why a (task, split, language) cannot be loaded or scored: three errors a caller can tell apart.

    MissingDataError        the source does not have it (file or hub config absent, language not served)
    NoGoldError             it exists, but carries no usable gold (labels removed, placeholders, words only)
    SourceUnavailableError  the source could not be asked (hub unreachable / offline and not cached)

A grid runner skips a cell on the first two and records why; the third means "try again with a network or
a cache". Every message is one line naming task, split, language and source.
"""
from __future__ import annotations


class _DataError:
    """Shared attributes and the one-line message of the three errors below."""
    kind = ""

    def _init(self, task, split, language, source, why, what=None):
        self.task, self.split, self.language, self.source = _name(task), split, language, source
        self.why, self.what = " ".join(str(why).split()), what
        where = "/".join(x for x in (split, language) if x)
        return (f"{self.task}{' ' + where if where else ''}{' from ' + source if source else ''}: "
                f"{self.kind}{f' ({what})' if what else ''}: {self.why}")


def _name(task):
    return getattr(task, "name", task)


class MissingDataError(_DataError, ValueError):
    """The source lacks this task, split or language (`what` says which)."""
    kind = "not available"
    WHAT = ("task", "split", "language")

    def __init__(self, task, split, language, source, what, why):
        if what not in self.WHAT:
            raise ValueError(f"MissingDataError: what={what!r} is not one of {self.WHAT}")
        super().__init__(self._init(task, split, language, source, why, what))


class NoGoldError(_DataError, ValueError):
    """The split exists but cannot be scored: its gold labels are absent or placeholders."""
    kind = "no gold"

    def __init__(self, task, split, language, source, why):
        super().__init__(self._init(task, split, language, source, why))


class SourceUnavailableError(_DataError, RuntimeError):
    """The source could not be reached (hub offline and not cached, network down)."""
    kind = "source unavailable"

    def __init__(self, task, split, language, source, why):
        super().__init__(self._init(task, split, language, source, why))


class FileFormatError(ValueError):
    """A data file that is not what its reader expects (not UTF-8, not JSON, a missing key, a bad value): the
    message is one line naming the file, the line or entry where known, and what was expected. `path` and
    `line` say where, for a caller that points the user at the file (preflight's fix column)."""

    def __init__(self, path, why: str, line: int | None = None):
        self.path, self.line = str(path), line
        super().__init__(f"{path}{f':{line}' if line else ''}: {' '.join(str(why).split())}")
