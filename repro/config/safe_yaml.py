"""YAML as the package reads it (configs, presets, `a.b=value` overrides, a run's config.yaml): bounded.

PyYAML's safe loader still expands anchors and aliases, so a few hundred bytes ("billion laughs": each
level an alias list of the previous one) grow to gigabytes in memory and hang whatever walks the result;
and nesting thousands deep overflows its recursive composer. A config never needs either, so here:

- an anchor (`&name`) or alias (`*name`), merge keys included, is refused at its line;
- nesting is at most MAX_DEPTH levels, and the text at most MAX_BYTES;
- an integer literal too long for Python to convert is refused, not a traceback.

`load(text, where)` returns the data or raises `UnsafeYAML` (a ConfigError) whose one line names `where` and
the line.
"""
from __future__ import annotations

from typing import Any

import yaml

from repro.errors import ConfigError

MAX_BYTES = 1 << 20    # the paper preset is ~4 KB; a run's config.yaml ~3 KB
MAX_DEPTH = 64         # the config tree is 5 levels deep


class UnsafeYAML(ConfigError):
    """YAML the package will not read: an anchor or alias, too deep, too large, or not YAML."""


class NotYAML(UnsafeYAML):
    """Text that does not parse as YAML at all."""


class _Refused(yaml.YAMLError):
    def __init__(self, what: str, mark):
        super().__init__(what)
        self.what, self.problem_mark = what, mark


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases and deep nesting while composing (before anything grows)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(f"alias *{event.anchor} (anchors and aliases are not allowed in a config)", event.start_mark)
        if getattr(event, "anchor", None) is not None:
            raise _Refused(f"anchor &{event.anchor} (anchors and aliases are not allowed in a config)",
                           event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nesting deeper than {MAX_DEPTH} levels", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def load(text: str, where: str) -> Any:
    """The YAML `text` as data; `where` names it in errors ("configs/x.yaml", "override a.b=...")."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise UnsafeYAML(f"config: {where} is {len(text):,} characters; a config is at most {MAX_BYTES:,} bytes")
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    except _Refused as e:
        line = f" line {e.problem_mark.line + 1}" if e.problem_mark is not None else ""
        raise UnsafeYAML(f"config: {where}{line}: {e.what}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or "not valid YAML"
        raise NotYAML(f"config: {where}{line} is not valid YAML ({problem})") from None
    except (ValueError, OverflowError) as e:   # an integer literal of thousands of digits (int's digit limit)
        raise UnsafeYAML(f"config: {where} holds a number too large to read ({' '.join(str(e).split())[:120]})") \
            from None
    except RecursionError:
        raise UnsafeYAML(f"config: {where} is nested too deeply") from None
    finally:
        loader.dispose()
