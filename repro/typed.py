"""Frozen dataclass trees from plain data (YAML/JSON), checked field by field.

Both the run config (`repro.config`) and the results file (`repro.results`) are such trees. `build(cls,
data, error)` converts a dict into `cls`, checking every key against the annotations (unknown keys, wrong
types, bad literals) and raising `error(message)` with a one-line message naming the dotted key and value;
`plain(obj)` goes back to plain dicts and lists. Value checks beyond types belong to the tree's owner (the
`check` callback).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Callable, Literal, Union

from repro.errors import did_you_mean

ErrorType = Callable[[str], Exception]


def _type_name(tp) -> str:
    """`int or "all"`, `str`, ...: how a config key's type reads in an error."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None))
    if origin is Literal:
        return " or ".join(repr(a) if isinstance(a, str) else str(a) for a in args)
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


class Invalid(ValueError):
    """Raised inside the conversion; `build` turns it into the owner's error type."""


class _Converter:
    def __init__(self, check: Callable[[Any, str], None] | None):
        self.check = check

    @staticmethod
    def fail(message: str) -> Invalid:
        return Invalid(message)

    def convert(self, tp, value, key: str):
        """Checks `value` against the annotation `tp` and converts it (lists -> tuples, int -> float)."""
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            if value is None and type(None) in args:
                return None
            errors = []
            for a in args:
                if a is type(None):
                    continue
                try:
                    return self.convert(a, value, key)
                except Invalid as e:
                    errors.append(e)
            if len(errors) == 1:
                raise errors[0]
            raise self.fail(f"{key}={value!r} is not a valid {_type_name(tp)}")
        if origin is Literal:
            if value not in args:
                raise self.fail(f"{key}={value!r} must be one of {', '.join(map(str, args))}"
                                f"{did_you_mean(value, args) if isinstance(value, str) else ''}")
            return value
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise self.fail(f"{key}={value!r} must be a mapping")
            return self.build(tp, value, key)
        if origin is tuple:
            if not isinstance(value, (list, tuple)):
                raise self.fail(f"{key}={value!r} must be a list")
            return tuple(self.convert(args[0], v, f"{key}.{i}") for i, v in enumerate(value))
        if origin is dict:
            if not isinstance(value, dict):
                raise self.fail(f"{key}={value!r} must be a mapping")
            return {str(k): self.convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
        if tp is bool:
            if not isinstance(value, bool):
                raise self.fail(f"{key}={value!r} must be true or false")
            return value
        if tp is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(f"{key}={value!r} must be an integer")
            return value
        if tp is float:
            if isinstance(value, str):  # PyYAML reads 3e-3 (no dot) as a string
                try:
                    value = float(value)
                except ValueError:
                    pass
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.fail(f"{key}={value!r} must be a number")
            try:
                return float(value)
            except OverflowError:   # an integer past float's range (10**400): no number a key can mean
                raise self.fail(f"{key}=<an integer of {value.bit_length()} bits> is too large for a number") from None
        if tp is str:
            if not isinstance(value, str):
                raise self.fail(f"{key}={value!r} must be a string")
            return value
        raise TypeError(f"unsupported annotation {tp!r} at {key}")

    def build(self, cls, data: dict, prefix: str = ""):
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {}
        for k, v in data.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k not in names:
                near = did_you_mean(key, [f"{prefix}.{n}" if prefix else n for n in names])
                raise self.fail(f"unknown key {key!r}{near} (known here: {', '.join(sorted(names))})")
            kwargs[k] = self.convert(hints[k], v, key)
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            where = f"{prefix}." if prefix else ""
            raise self.fail(f"missing key {where}{missing[0]!r}")
        obj = cls(**kwargs)
        if self.check is not None:
            self.check(obj, prefix)
        return obj


def build(cls, data: Any, error: ErrorType, *, prefix: str = "", check: Callable[[Any, str], None] | None = None):
    """`data` (a dict) as the dataclass `cls`; errors are `error("<prefix><key>=<value> ...")`.

    `check(obj, key)` runs on every dataclass node once built (value checks beyond types); it raises
    `Invalid` (or the owner's error type directly) with a message naming the key.
    """
    try:
        if not isinstance(data, dict):
            raise Invalid("the top level must be a mapping")
        return _Converter(check).build(cls, data)
    except Invalid as e:
        raise error(f"{prefix}{e}") from None


def plain(v):
    """Plain YAML/JSON-friendly data (dataclasses -> dicts, tuples -> lists)."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {str(k): plain(x) for k, x in v.items()}
    return v
