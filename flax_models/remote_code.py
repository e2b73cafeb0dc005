"""No code from a model or tokenizer folder runs: the one door through which transformers reads a folder.

transformers runs Python that a folder names: an `auto_map` in tokenizer_config.json or config.json points
at a .py file beside it, and with `trust_remote_code` unset transformers asks "run the custom code? [y/N]"
on stdin, so a pipe or a careless "y" runs it. Nothing in this package needs such code, so every folder
transformers is given is inspected first (`refuse_remote_code`) and then loaded with
`trust_remote_code=False`; what could name code is refused in one line naming the file and the key:

    auto_map                          anywhere in the folder's config files
    tokenizer_class, architectures    a class name transformers itself does not have
    any value naming a .py file       ("custom.py", "module.py:Class")

The config files are read with bounds (size, JSON nesting, integer digits) before transformers sees them,
and the tokenizer's own files (tokenizer.json, vocab.txt, sentencepiece .model) are refused beyond a size
no real tokenizer reaches, so what a tokenizer load allocates stays linear in a bounded file.
"""
from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path

from flax_models.errors import RemoteCodeError

# The JSON files transformers' config and tokenizer loaders read (each optional).
CONFIG_FILES = ("config.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                "generation_config.json", "preprocessor_config.json", "processor_config.json")
# Files a tokenizer load reads in full: the largest real ones are tens of MB (XLM-R's tokenizer.json: 17 MB).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "merges.txt", "spiece.model",
                   "sentencepiece.bpe.model", "tokenizer.model")
MAX_CONFIG_FILE_BYTES = 64 * 2**20      # tokenizer_config.json with 250k added tokens is ~30 MB
MAX_TOKENIZER_FILE_BYTES = 256 * 2**20   # XLM-V (a 1M-token vocabulary) is ~40 MB
_CODE_KEYS = ("auto_map", "custom_pipelines")   # what transformers resolves to a module of the folder
_CODE_VALUE = re.compile(r"^\S*\w\.py(:[\w.]+)?$")   # "custom.py", "sub/module.py:Class" (not a ".py" token)


@functools.lru_cache(maxsize=1)
def _known_classes() -> frozenset[str]:
    import transformers   # a lazy module: dir() lists its classes without importing them

    return frozenset(dir(transformers))


def _is_transformers_class(name: str) -> bool:
    known = _known_classes()
    return name in known or name.removesuffix("Fast") in known


def read_json(path: Path, limit: int | None = None):
    """A bounded JSON file's content, or a ValueError naming it: too large, not UTF-8, not JSON, nested too
    deep, or holding an integer too long to convert."""
    size, limit = path.stat().st_size, MAX_CONFIG_FILE_BYTES if limit is None else limit
    if size > limit:
        raise ValueError(f"{path}: {size:,} bytes, over the {limit:,}-byte limit for this file")
    raw = path.read_bytes()
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        line, column = raw.count(b"\n", 0, e.start) + 1, e.start - raw.rfind(b"\n", 0, e.start)
        raise ValueError(f"{path}:{line}: not UTF-8 (byte {raw[e.start]:#04x} at column {column})") from e
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from e
    except RecursionError as e:
        raise ValueError(f"{path}: JSON nested too deeply to read") from e
    except ValueError as e:   # "Exceeds the limit (4300 digits) for integer string conversion"
        raise ValueError(f"{path}: {' '.join(str(e).split())[:120]}") from e


def _code_references(value, key: str = ""):
    """(key path, value) of every auto_map / custom_pipelines and every string naming a .py file, anywhere
    in `value` (iteratively: depth is bounded by the JSON reader, not by Python's stack here)."""
    stack = [(key, value)]
    while stack:
        where, v = stack.pop()
        if isinstance(v, dict):
            for k, item in v.items():
                sub = f"{where}.{k}" if where else str(k)
                if k in _CODE_KEYS:
                    yield sub, item
                else:
                    stack.append((sub, item))
        elif isinstance(v, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(v))
        elif isinstance(v, str) and _CODE_VALUE.search(v):
            yield where, v


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_config_file(path: Path) -> dict | list | None:
    """Refuses (RemoteCodeError) a config file that names code; returns its content."""
    data = read_json(path)
    for where, value in _code_references(data):
        raise RemoteCodeError(f"{path}: {where}={_short(value)} names code of the folder, which this package "
                              "never runs (remove the key)")
    if isinstance(data, dict):
        names = [("tokenizer_class", data.get("tokenizer_class"))]
        archs = data.get("architectures")
        names += [(f"architectures[{i}]", a) for i, a in enumerate(archs)] if isinstance(archs, list) else [
            ("architectures", archs)]
        for key, name in names:
            if name is None:
                continue
            if not isinstance(name, str) or not _is_transformers_class(name):
                raise RemoteCodeError(f"{path}: {key}={_short(name)} is not a class of transformers (a "
                                      "folder's own classes are never loaded)")
    return data


def refuse_remote_code(folder: str | os.PathLike) -> Path:
    """The folder, once none of its config files names code (RemoteCodeError otherwise, naming the file and
    key) and its tokenizer files are within bounds (ValueError naming the file)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no such folder: {folder}")
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file():
            check_config_file(path)
    for name in TOKENIZER_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if path.stat().st_size > MAX_TOKENIZER_FILE_BYTES:
            raise ValueError(f"{path}: {path.stat().st_size:,} bytes, over the {MAX_TOKENIZER_FILE_BYTES:,}-byte "
                             "limit for a tokenizer file (the largest real ones are tens of MB)")
        if name == "tokenizer.json":   # transformers parses it with Python's json too: name the file first
            data = read_json(path, MAX_TOKENIZER_FILE_BYTES)
            if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
                raise ValueError(f"{path}: not a tokenizers file (expected a JSON object with a \"model\" object)")
        elif name.endswith((".txt", ".json")):
            _check_utf8_lines(path)
    return folder


def _check_utf8_lines(path: Path) -> None:
    """A text file that is UTF-8, or a ValueError naming the line and column of the first bad byte."""
    with open(path, "rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}:{n}: not UTF-8 (byte {raw[e.start]:#04x} at column {e.start + 1})") from e


def auto_tokenizer(folder: str | os.PathLike):
    """transformers' AutoTokenizer on a local folder, after `refuse_remote_code`, with remote code off."""
    from transformers import AutoTokenizer

    folder = refuse_remote_code(folder)
    try:
        return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as e:
        raise ValueError(f"{folder}: its tokenizer files ({_tokenizer_files(folder)}) cannot be read: "
                         f"{type(e).__name__}: {' '.join(str(e).split())[:200]}") from e
    except Exception as e:
        if type(e) is not Exception:   # the tokenizers library raises plain Exception for a file it cannot read
            raise
        raise ValueError(f"{folder}: its tokenizer files ({_tokenizer_files(folder)}) cannot be read: "
                         f"{' '.join(str(e).split())[:200]}") from e


def _tokenizer_files(folder: Path) -> str:
    return ", ".join(name for name in TOKENIZER_FILES if (folder / name).is_file()) or "none"


def reference_model(hf_class: str, folder: str | os.PathLike, **kwargs):
    """transformers' PyTorch class `hf_class` from a local folder, after `refuse_remote_code`."""
    import transformers

    folder = refuse_remote_code(folder)
    if not _is_transformers_class(hf_class):
        raise RemoteCodeError(f"{hf_class!r} is not a class of transformers")
    return getattr(transformers, hf_class).from_pretrained(str(folder), trust_remote_code=False, **kwargs)
