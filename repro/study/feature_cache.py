"""Tokenized features built once: an on-disk cache shared by every cell, seed, arm and shard of a run.

    <root>/<key>/manifest.json        what the entry holds: task, max_length, padding side, arrays (dtype,
                                      shape, bytes, sha256), the examples' content hash
    <root>/<key>/<array>.bin          raw little-endian array data, opened with np.memmap (read-only)
    <root>/index/<selection>.json     which key a (task, split, language, selection, tokenizer, max_length)
                                      resolved to last: what `repro preflight` reads to say what is cached
    <root>/.locks/<key>.lock          flock held while an entry is built (other shards wait, then reuse it)

The key is a sha256 of everything the arrays depend on: the featurization code (data_prep/features.py and
tokenization.py, byte for byte, and this module's FORMAT), the task (kind, labels, doc stride, ...), the
tokenizer's content (its serialized vocabulary, normalizer and templates, padding side, pad ids), the
max length, and the content of the examples (every field of every example, in order). The data selection
(split, language, sample size, seed, holdout) is in the key through the examples it selects, so two cells
that train on the same examples share one entry whatever their seed, and a changed data file gets a new
entry. Length buckets are not in the key: features are padded to max_length and the Batcher cuts each
batch to its bucket, so the arrays do not depend on them.

Building streams: examples are featurized in chunks of CHUNK_EXAMPLES (data_prep.featurize on each chunk,
which gives the rows of the whole list, since every example is featurized on its own), each chunk's rows
are appended to the array files and dropped, so peak memory is one chunk's, not the split's. The entry is
written in a temporary sibling folder and renamed into place when complete; a reader never sees a part.
Opening an entry checks its manifest and the size of every file, and, once per process, the sha256 of
every file; a damaged entry is removed and rebuilt with one warning line. Retrieval features (a query set
and a candidate pool) are not cached: they are evaluation-only and small.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import weakref
from pathlib import Path

import numpy as np

import data_prep as dp
from data_prep import features as dp_features
from data_prep import tokenization as dp_tokenization
from repro import progress
from repro.errors import writing

log = logging.getLogger("repro")

FORMAT = 1
CHUNK_EXAMPLES = 2048
PROGRESS_EXAMPLES = 20_000   # a progress bar for builds at least this large (a split of a few seconds gets none)
MANIFEST = "manifest.json"
# Entries up to this size are verified by sha256 every time they are opened; larger ones once a process.
_ALWAYS_VERIFY_BYTES = 64 << 20
_verified: set[tuple[str, float]] = set()
_token_hashes: dict[int, tuple[weakref.ref, str]] = {}   # id -> (the tokenizer, weakly; its hash)

# Features fields stored as arrays besides `arrays` (None where the task kind has none).
_EXTRA_FIELDS = ("example_index", "lengths", "offsets", "word_index")


def code_version() -> str:
    h = hashlib.sha256(f"feature-cache format {FORMAT}\n".encode())
    for module in (dp_features, dp_tokenization):
        h.update(Path(module.__file__).read_bytes())
    return h.hexdigest()


def tokenizer_hash(tok) -> str:
    """sha256 of what the tokenizer does: its serialized fast tokenizer and the settings featurize reads."""
    hit = _token_hashes.get(id(tok))
    if hit is not None and hit[0]() is tok:
        return hit[1]
    h = hashlib.sha256(tok.backend_tokenizer.to_str().encode())
    h.update(json.dumps([tok.padding_side, tok.truncation_side, tok.pad_token_id, tok.pad_token_type_id,
                         tok.cls_token_id, tok.num_special_tokens_to_add(pair=False),
                         tok.num_special_tokens_to_add(pair=True), dp_tokenization.tokenizer_family(tok)]).encode())
    # A weak reference: the table must not keep a cell's tokenizer alive (a 250k-piece one holds ~300 MB of
    # native memory, and a grid loads one per cell: that was +300 MB resident per cell, issue 30).
    for key in [k for k, (ref, _) in _token_hashes.items() if ref() is None]:
        del _token_hashes[key]
    _token_hashes[id(tok)] = (weakref.ref(tok), h.hexdigest())
    return h.hexdigest()


def task_fingerprint(task) -> str:
    return repr(dataclasses.asdict(task) if dataclasses.is_dataclass(task) else task)


def examples_hash(examples) -> str:
    """sha256 over every field of every example (not `meta`), in order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(repr((e.id, e.language, e.text, e.text_pair, e.label, tuple(e.tokens), e.tags, e.question,
                       e.context, tuple(e.answers), tuple(e.choices))).encode())
        h.update(b"\x00")
    return h.hexdigest()


def entry_key(task, tokenizer, max_length: int, content: str) -> str:
    h = hashlib.sha256()
    for part in (code_version(), task_fingerprint(task), tokenizer_hash(tokenizer), str(int(max_length)), content):
        h.update(part.encode())
        h.update(b"\x00")
    return h.hexdigest()[:32]


def selection_key(selection: dict, tokenizer, max_length: int) -> str:
    text = json.dumps({**selection, "tokenizer": tokenizer_hash(tokenizer), "max_length": int(max_length),
                       "code": code_version()}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@contextlib.contextmanager
def _lock(root: Path, key: str):
    """An exclusive flock on the entry's lock file (blocking: a shard waits for another one's build)."""
    path = root / ".locks" / f"{key}.lock"
    with writing(path.parent, "create"):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FeatureCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    # ---- reading --------------------------------------------------------------------------------
    def damage(self, key: str) -> str | None:
        """Why the entry cannot be used (its manifest or a file is missing, short, or differs from its
        checksum), or None."""
        folder = self.root / key
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError:
            return f"no {MANIFEST}"
        except (OSError, ValueError) as e:
            return f"{MANIFEST} unreadable ({e})"
        if manifest.get("format") != FORMAT or manifest.get("key") != key:
            return f"{MANIFEST} is of another format or entry"
        files = manifest["files"]
        for name, spec in files.items():
            path = folder / f"{name}.bin"
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                return f"{path.name} is missing"
            if size != spec["bytes"]:
                return f"{path.name} has {size} bytes, not {spec['bytes']}"
        stamp = (str(folder), (folder / MANIFEST).stat().st_mtime)
        total = sum(spec["bytes"] for spec in files.values())
        if stamp not in _verified or total <= _ALWAYS_VERIFY_BYTES:
            for name, spec in files.items():
                if _sha256(folder / f"{name}.bin") != spec["sha256"]:
                    return f"{name}.bin differs from its checksum"
            _verified.add(stamp)
        return None

    def _open(self, key: str, task, examples) -> dp.Features:
        folder = self.root / key
        manifest = json.loads((folder / MANIFEST).read_text())

        def array(name):
            spec = manifest["files"][name]
            if spec["bytes"] == 0:
                return np.zeros(spec["shape"], spec["dtype"])
            return np.memmap(folder / f"{name}.bin", dtype=spec["dtype"], mode="r", shape=tuple(spec["shape"]))

        arrays = {name.removeprefix("arrays."): array(name) for name in manifest["files"] if name.startswith("arrays.")}
        extra = {name: (array(name) if name in manifest["files"] else None) for name in _EXTRA_FIELDS}
        return dp.Features(task=task, arrays=arrays, examples=examples, max_length=manifest["max_length"],
                           padding_side=manifest["padding_side"], family=manifest["family"], **extra)

    def status(self, selection: dict, tokenizer, max_length: int) -> str:
        """"cached" when the last entry this selection resolved to is present and whole, else "to build"."""
        try:
            key = json.loads((self.root / "index" / f"{selection_key(selection, tokenizer, max_length)}.json")
                             .read_text())["key"]
        except (OSError, ValueError, KeyError):
            return "to build"
        return "cached" if self.damage(key) is None else "to build"

    # ---- the one entry point ----------------------------------------------------------------------
    def features(self, task, examples, tokenizer, max_length: int, selection: dict | None = None,
                 label: str = "") -> dp.Features:
        """The features of `examples`, from the cache or built into it (under the entry's lock)."""
        task = dp.get_task(task)
        if task.kind == "retrieval" or not examples:
            return dp.featurize(task, examples, tokenizer, max_length)
        content = examples_hash(examples)
        key = entry_key(task, tokenizer, max_length, content)
        with _lock(self.root, key):
            if (self.root / key).exists():
                why = self.damage(key)
                if why is None:
                    feats = self._open(key, task, examples)
                    self._index(selection, tokenizer, max_length, key)
                    return feats
                log.warning("feature cache entry %s is damaged (%s): rebuilding it", self.root / key, why)
                shutil.rmtree(self.root / key)
            self._build(key, task, examples, tokenizer, max_length, content, label)
            self._index(selection, tokenizer, max_length, key)
            return self._open(key, task, examples)

    def _index(self, selection, tokenizer, max_length, key) -> None:
        if selection is None:
            return
        path = self.root / "index" / f"{selection_key(selection, tokenizer, max_length)}.json"
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_text(json.dumps({"key": key, "selection": selection}, default=str) + "\n")
            os.replace(tmp, path)

    # ---- building -----------------------------------------------------------------------------------
    def _build(self, key, task, examples, tokenizer, max_length, content, label) -> None:
        folder = self.root / key
        tmp = self.root / f".tmp-{key}-{os.getpid()}"
        t0 = time.perf_counter()
        try:
            with writing(tmp, "write"):
                rows = self._write(tmp, key, task, examples, tokenizer, max_length, content, label, t0)
                os.replace(tmp, folder)   # the target is absent (checked under the lock): the entry appears whole
        except BaseException:   # a failed, stopped or interrupted build leaves nothing behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("features %s: %d examples -> %d features built in %.1f s (%s)", label or task.name, len(examples),
                 rows, time.perf_counter() - t0, folder)

    def _write(self, tmp, key, task, examples, tokenizer, max_length, content, label, t0) -> int:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files: dict[str, dict] = {}
        handles: dict[str, object] = {}
        hashes: dict[str, object] = {}
        rows, meta = 0, None
        ticker = (progress.Ticker(f"features {label or task.name}", total=len(examples), unit="example")
                  if len(examples) >= PROGRESS_EXAMPLES else None)
        try:
            for start in range(0, len(examples), CHUNK_EXAMPLES):
                chunk = examples[start:start + CHUNK_EXAMPLES]
                feats = dp.featurize(task, chunk, tokenizer, max_length)
                parts = {f"arrays.{k}": v for k, v in feats.arrays.items()}
                parts.update({name: getattr(feats, name) for name in _EXTRA_FIELDS
                              if getattr(feats, name) is not None})
                parts["example_index"] = feats.example_index + np.int32(start)
                if meta is None:
                    meta = {"max_length": feats.max_length, "padding_side": feats.padding_side,
                            "family": feats.family}
                if set(parts) != set(files) and files:
                    raise ValueError(f"featurize: chunk at example {start} gives arrays {sorted(parts)}, "
                                     f"the first chunk {sorted(files)}")
                for name, value in parts.items():
                    value = np.ascontiguousarray(value)
                    spec = files.setdefault(name, {"dtype": value.dtype.str, "tail": list(value.shape[1:]),
                                                   "bytes": 0})
                    if spec["dtype"] != value.dtype.str or spec["tail"] != list(value.shape[1:]):
                        raise ValueError(f"task {task.name!r}: the features of examples {start}.. have "
                                         f"{name} {value.dtype}{value.shape[1:]}, the first ones "
                                         f"{spec['dtype']}{tuple(spec['tail'])}")
                    if name not in handles:
                        handles[name] = open(tmp / f"{name}.bin", "wb")
                        hashes[name] = hashlib.sha256()
                    data = value.tobytes()
                    handles[name].write(data)
                    hashes[name].update(data)
                    spec["bytes"] += len(data)
                rows += len(feats)
                if ticker is not None:
                    ticker.update(len(chunk))
        finally:
            if ticker is not None:
                ticker.close()
            for f in handles.values():
                f.close()
        for name, spec in files.items():
            spec["shape"] = [rows] + spec.pop("tail")
            spec["sha256"] = hashes[name].hexdigest()
            # (no fsync: an entry torn by a power cut fails its checksum when opened and is rebuilt)
        manifest = {"format": FORMAT, "key": key, "task": task.name, "examples": len(examples),
                    "features": rows, "examples_sha256": content, **meta, "files": files,
                    "built_s": round(time.perf_counter() - t0, 3)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        return rows


def cache_root(cfg) -> Path:
    """`feature_cache_dir`, else `<output_dir>/features`."""
    return Path(cfg.feature_cache_dir or Path(cfg.output_dir) / "features")

